/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The plain intra-host handoff on real KVM, every call of one side failing
 * in turn (sweep.h).  The other side is tests/fault/fault-peer, a process
 * of its own that runs without faults; a tinyvm guest plays the VMMs'.
 *
 *   plain-send   this process hands its running guest over, each vCPU
 *                thread capturing its own vCPU as it pauses
 *   plain-recv   this process takes the guest fault-peer hands over,
 *                restoring on the library's restore threads
 *   rollback     this process hands its guest to a receiver that dies after
 *                the commit (GO): the sender learns it is gone and resumes
 *   plain-send-serial, plain-recv-serial
 *                the same on one thread each: the switch captures every
 *                vCPU, the calling thread restores every vCPU
 *
 * The first three count the calls of every thread (sweep.h, all_threads).
 *
 * Promised after a failure (doc/handoff.md, "Rollback and failure"): the
 * sender resumes and its guest runs on exactly, and the receiver runs
 * nothing; -SEVM_ERR_INDOUBT (only after GO) leaves the guest paused.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "fault-peer.h"
#include "sweep.h"
#include "testutil.h"
#include "tinyvm-handoff.h"
#include "tu-tinyvm.h"

static const char *peer_path;
static const struct sevm_handoff_opts opts = { .sz = sizeof(opts),
					       .timeout_ms = PEER_TIMEOUT_MS };

struct side {
	const char *peer_mode;
	bool serial;		/* one thread captures, one restores */
	struct tinyvm vm;
	int sock;
	pid_t peer;
};

static void spawn(struct side *s)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	s->peer = fork();
	ck_assert_int_ge(s->peer, 0);
	if (s->peer == 0) {
		char fd[16];

		snprintf(fd, sizeof(fd), "%d", dup(sv[1]));
		execl(peer_path, peer_path, s->peer_mode, fd, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	s->sock = sv[0];
}

static void boot_and_spawn(void *ctx)
{
	struct side *s = ctx;

	memset(&s->vm, 0, sizeof(s->vm));
	ck_assert_int_eq(tinyvm_create(&s->vm, PEER_VCPUS, PEER_MEM, TINYVM_F_PIT), 0);
	ck_assert_int_eq(tinyvm_load_guest(&s->vm, 256), 0);
	ck_assert_int_eq(tinyvm_start(&s->vm), 0);
	ck_assert(tu_runs(&s->vm, 2));
	spawn(s);
}

static void spawn_only(void *ctx)
{
	struct side *s = ctx;

	memset(&s->vm, 0, sizeof(s->vm));
	spawn(s);
}

static int send_guest(void *ctx)
{
	struct side *s = ctx;
	struct tinyvm_handoff_times t = { .verify_ram = true, .capture_in_switch = s->serial };
	struct sevm_handoff *h;
	int err = sevm_handoff_from_fd(s->sock, true, &opts, &h);

	if (err)
		return err;	/* the socket stays ours */
	s->sock = -1;
	err = tinyvm_handoff_send(&s->vm, h, &t);
	sevm_handoff_free(h);
	return err;
}

static int receive_guest(void *ctx)
{
	struct tinyvm_handoff_times t = { .verify_ram = true };
	struct side *s = ctx;
	struct sevm_handoff_opts o = opts;
	struct sevm_handoff *h;
	int err;

	o.restore_threads = s->serial ? 1 : 0;
	err = sevm_handoff_from_fd(s->sock, false, &o, &h);

	if (err)
		return err;
	s->sock = -1;
	err = tinyvm_handoff_receive(&s->vm, h, &t);
	sevm_handoff_free(h);
	return err;
}

static int finish(struct side *s)
{
	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
	/* The peer waits at most PEER_TIMEOUT_MS twice (a message, then the pidfd). */
	return tu_reap(s->peer, 3 * PEER_TIMEOUT_MS + 2000);
}

/* Sender: handed over, in doubt (after GO only) or resumed and running here. */
static void check_sender(void *ctx, int err, const struct tu_call *hit)
{
	struct side *s = ctx;
	int peer;

	if (err == 0) {
		peer = finish(s);
		sweep_expect(peer == 0, "handed over, but the receiver exited %d", peer);
	} else if (err == -SEVM_ERR_INDOUBT) {
		sweep_expect(hit && hit->op == TU_OP_RECVMSG, "in doubt, yet no wait for RESUMED failed");
		sweep_expect(tu_stays_paused(&s->vm), "in doubt, yet the guest runs here");
		peer = finish(s);
		sweep_expect(peer == 0, "in doubt: the receiver exited %d, not running the guest",
			     peer);
	} else {
		sweep_expect(tu_runs(&s->vm, 3), "failed with %d, but the guest does not run on "
			     "here (errors %llu)", err,
			     (unsigned long long)tinyvm_total_errors(&s->vm));
		peer = finish(s);
		sweep_expect(peer != 0, "failed with %d here, yet the receiver runs the guest", err);
		sweep_expect(peer != -1, "the receiver hung");
	}
	tinyvm_destroy(&s->vm);
}

/* Receiver: the guest runs here, or it runs on in the sender. */
static void check_receiver(void *ctx, int err, const struct tu_call *hit)
{
	struct side *s = ctx;
	int peer;

	if (err == 0) {
		sweep_expect(tu_runs(&s->vm, 3), "taken, but the guest does not run here");
		tinyvm_destroy(&s->vm);
		peer = finish(s);
		/* A RESUMED lost after GO leaves the sender in doubt, its guest paused. */
		sweep_expect(peer == 0 || peer == PEER_INDOUBT, "taken, but the sender exited %d",
			     peer);
		if (peer == PEER_INDOUBT)
			sweep_note("receiver took the guest, sender in doubt (RESUMED not sent)");
		return;
	}
	tinyvm_destroy(&s->vm);
	peer = finish(s);
	/*
	 * Our wait for GO failed after GO was sent: our ABORT comes only after
	 * the sender's wait for RESUMED ran out, so it is in doubt, as
	 * doc/handoff.md says for a silent receiver.
	 */
	if (peer == PEER_INDOUBT && hit && hit->op == TU_OP_RECVMSG) {
		sweep_note("receiver failed waiting for GO: the sender is in doubt, the guest "
			   "paused there");
		return;
	}
	sweep_expect(peer == PEER_ROLLED_BACK, "failed with %d here; the sender exited %d, not "
		     "%d (rolled back, running)", err, peer, PEER_ROLLED_BACK);
}

/*
 * Sender, the receiver dead after GO: resumed.  In doubt (a wait for RESUMED
 * failed otherwise) the VMM finds the receiver dead and resumes, as the doc
 * says it must find out.
 */
static void check_rollback(void *ctx, int err, const struct tu_call *hit)
{
	struct side *s = ctx;
	int peer;

	sweep_expect(err < 0, "the receiver died after GO, yet the switch returned %d", err);
	peer = finish(s);
	sweep_expect(peer != 0 && peer != -1, "the receiver exited %d", peer);
	if (err == -SEVM_ERR_INDOUBT) {
		sweep_expect(hit && hit->op == TU_OP_RECVMSG, "in doubt, yet no wait for RESUMED failed");
		sweep_expect(tu_stays_paused(&s->vm), "in doubt, yet the guest runs here");
		tinyvm_resume(&s->vm);
	}
	sweep_expect(tu_runs(&s->vm, 3), "returned %d, but the guest does not run on here", err);
	tinyvm_destroy(&s->vm);
}

START_TEST(plain_send)
{
	struct side s = { .peer_mode = "recv" };
	struct sweep_flow f = { .name = "plain-send", .ctx = &s, .setup = boot_and_spawn,
				.run = send_guest, .check = check_sender, .all_threads = true };

	sweep(&f);
}
END_TEST

START_TEST(plain_recv)
{
	struct side s = { .peer_mode = "send" };
	struct sweep_flow f = { .name = "plain-recv", .ctx = &s, .setup = spawn_only,
				.run = receive_guest, .check = check_receiver,
				.all_threads = true };

	sweep(&f);
}
END_TEST

START_TEST(plain_send_serial)
{
	struct side s = { .peer_mode = "recv", .serial = true };
	struct sweep_flow f = { .name = "plain-send-serial", .ctx = &s,
				.setup = boot_and_spawn, .run = send_guest, .check = check_sender };

	sweep(&f);
}
END_TEST

START_TEST(plain_recv_serial)
{
	struct side s = { .peer_mode = "send", .serial = true };
	struct sweep_flow f = { .name = "plain-recv-serial", .ctx = &s, .setup = spawn_only,
				.run = receive_guest, .check = check_receiver };

	sweep(&f);
}
END_TEST

START_TEST(rollback)
{
	struct side s = { .peer_mode = "die-after-go" };
	struct sweep_flow f = { .name = "rollback", .ctx = &s, .setup = boot_and_spawn,
				.run = send_guest, .check = check_rollback,
				.clean_result = -ECONNRESET, .all_threads = true };

	sweep(&f);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("fault-handoff");
	TCase *tc = tcase_create("plain handoff, real KVM");

	tu_require_kvm();
	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-fault-peer\n", argv[0]);
		return 2;
	}
	peer_path = argv[1];
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, plain_send);
	tcase_add_test(tc, plain_recv);
	tcase_add_test(tc, plain_send_serial);
	tcase_add_test(tc, plain_recv_serial);
	tcase_add_test(tc, rollback);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
