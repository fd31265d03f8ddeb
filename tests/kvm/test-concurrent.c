/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Independent handles on independent threads: several guests handed over
 * at once in one process, each pair of threads on its own socket, round
 * after round.  The library keeps no state between handles but the seam's
 * backend and the per-thread message; this is what ThreadSanitizer looks at
 * in tools/test's TSan run.  Every wait is bounded (timeout_ms), so a lost
 * wake-up shows as a failure, not a hang.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "testutil.h"
#include "tinyvm-handoff.h"
#include "tu-tinyvm.h"

#define PAIRS	3
#define ROUNDS	3

static const struct sevm_handoff_opts opts = { .sz = sizeof(opts), .timeout_ms = 10000 };

struct pair {
	int sv[2];
	struct tinyvm old_vm, new_vm;
	int sent, received;
	char msg[2][256];
};

static void *sender(void *arg)
{
	struct pair *p = arg;
	struct tinyvm_handoff_times t = { 0 };
	struct sevm_handoff *h = NULL;

	p->sent = sevm_handoff_from_fd(p->sv[0], true, &opts, &h);
	if (!p->sent)
		p->sent = tinyvm_handoff_send(&p->old_vm, h, &t);
	snprintf(p->msg[0], sizeof(p->msg[0]), "%s", sevm_last_error());
	sevm_handoff_free(h);
	return NULL;
}

static void *receiver(void *arg)
{
	struct pair *p = arg;
	struct tinyvm_handoff_times t = { 0 };
	struct sevm_handoff *h = NULL;

	p->received = sevm_handoff_from_fd(p->sv[1], false, &opts, &h);
	if (!p->received)
		p->received = tinyvm_handoff_receive(&p->new_vm, h, &t);
	snprintf(p->msg[1], sizeof(p->msg[1]), "%s", sevm_last_error());
	sevm_handoff_free(h);
	return NULL;
}

START_TEST(handoffs_in_parallel)
{
	static struct pair pairs[PAIRS];
	int fd_before = tu_count_fds();

	for (int round = 0; round < ROUNDS; round++) {
		pthread_t th[2 * PAIRS];

		for (int i = 0; i < PAIRS; i++) {
			struct pair *p = &pairs[i];

			memset(p, 0, sizeof(*p));
			ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->sv), 0);
			ck_assert_int_eq(tinyvm_create(&p->old_vm, 1, 16 << 20, 0), 0);
			ck_assert_int_eq(tinyvm_load_guest(&p->old_vm, 256), 0);
			ck_assert_int_eq(tinyvm_start(&p->old_vm), 0);
			ck_assert(tu_beats_advance(&p->old_vm, 2));
		}
		for (int i = 0; i < PAIRS; i++) {
			ck_assert_int_eq(pthread_create(&th[2 * i], NULL, sender, &pairs[i]), 0);
			ck_assert_int_eq(pthread_create(&th[2 * i + 1], NULL, receiver, &pairs[i]), 0);
		}
		for (int i = 0; i < 2 * PAIRS; i++)
			ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		for (int i = 0; i < PAIRS; i++) {
			struct pair *p = &pairs[i];

			ck_assert_msg(p->sent == 0, "round %d pair %d sender: %s", round, i, p->msg[0]);
			ck_assert_msg(p->received == 0, "round %d pair %d receiver: %s", round, i,
				      p->msg[1]);
			ck_assert(tu_beats_advance(&p->new_vm, 2));
			ck_assert_uint_eq(tinyvm_total_errors(&p->new_vm), 0);
			tinyvm_destroy(&p->new_vm);
			tinyvm_destroy(&p->old_vm);
		}
	}
	ck_assert_int_eq(tu_count_fds(), fd_before);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("concurrent");
	TCase *tc = tcase_create("handoff");

	tu_require_kvm();
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, handoffs_in_parallel);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
