/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Intra-host handoff between two processes on real KVM.  This process is the
 * old VMM; tests/e2e/handoff-peer is the new one, started per case.  Every
 * case ends with the guest running somewhere with exact heartbeats, and no
 * fd left behind in this process.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "handoff/wire.h"
#include "testutil.h"
#include "tinyvm-handoff.h"
#include "tu-tinyvm.h"

static const char *peer;
static const struct sevm_handoff_opts opts = { .sz = sizeof(opts), .timeout_ms = 5000 };

static void boot(struct tinyvm *vm, unsigned int nr_vcpus)
{
	ck_assert_int_eq(tinyvm_create(vm, nr_vcpus, 64 << 20, TINYVM_F_PIT), 0);
	ck_assert_int_eq(tinyvm_load_guest(vm, 256), 0);
	ck_assert_int_eq(tinyvm_start(vm), 0);
	ck_assert(tu_beats_advance(vm, 3));
}

/* After a failed handoff the guest must run on here, exactly. */
static void assert_runs_on(struct tinyvm *vm)
{
	ck_assert_msg(tu_beats_advance(vm, 3), "the guest did not resume after rollback");
	ck_assert_uint_eq(tinyvm_total_errors(vm), 0);
}

static pid_t spawn(const char *mode, const char *arg, int *sock)
{
	int sv[2];
	pid_t pid;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char fd[16];

		snprintf(fd, sizeof(fd), "%d", dup(sv[1]));
		execl(peer, peer, mode, fd, arg, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	*sock = sv[0];
	return pid;
}

static int hand_over(struct tinyvm *vm, int sock, bool serial)
{
	struct tinyvm_handoff_times t = { .verify_ram = true, .capture_in_switch = serial };
	struct sevm_handoff *h;
	int err = sevm_handoff_from_fd(sock, true, &opts, &h);

	ck_assert_msg(err == 0, "from_fd: %s", sevm_last_error());
	err = tinyvm_handoff_send(vm, h, &t);
	sevm_handoff_free(h);
	return err;
}

static int child_status(pid_t pid)
{
	int status;

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* One case: the peer in `mode`; `ok` says whether the guest should move. */
static void run_case(const char *mode, const char *arg, bool ok, int *err_out)
{
	struct tinyvm vm = { 0 };
	int before = tu_count_fds();
	int sock, err;
	pid_t pid;

	boot(&vm, 4);
	pid = spawn(mode, arg, &sock);
	/* "serial": one thread captures (the switch), one restores, as before issue 9. */
	err = hand_over(&vm, sock, !strcmp(mode, "serial"));
	if (ok) {
		ck_assert_msg(err == 0, "%s: %s", mode, sevm_last_error());
	} else {
		ck_assert_msg(err < 0 && err != -SEVM_ERR_INDOUBT, "%s: handoff returned %d", mode, err);
		ck_assert_str_ne(sevm_last_error(), "");
		assert_runs_on(&vm);
	}
	if (err_out)
		*err_out = err;
	tinyvm_destroy(&vm);
	if (strncmp(mode, "crash-", 6))
		ck_assert_int_eq(child_status(pid), 0);
	else
		ck_assert_int_eq(child_status(pid), 128 + SIGKILL);
	ck_assert_int_eq(tu_count_fds(), before);
}

START_TEST(guest_moves_and_continues_exactly)
{
	run_case("ok", NULL, true, NULL);
}
END_TEST

START_TEST(guest_moves_captured_and_restored_on_one_thread_each)
{
	run_case("serial", NULL, true, NULL);
}
END_TEST

START_TEST(chain_of_three_vmms)
{
	run_case("chain", NULL, true, NULL);
}
END_TEST

START_TEST(rollback_when_receiver_quits)
{
	int err;

	run_case("free-after-hello", NULL, false, &err);
	printf("receiver quit: %s\n", sevm_last_error());
}
END_TEST

START_TEST(rollback_when_receiver_crashes_mid_restore)
{
	/* the 1st write ioctl sets the memory slot; the 5th is inside the restore */
	run_case("crash-in-restore", "5", false, NULL);
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "switch"));
}
END_TEST

/*
 * After the commit only a dead receiver makes resuming safe: the old VMM
 * must see it is dead (not merely silent) and resume, not report in doubt.
 */
START_TEST(rollback_when_receiver_dies_after_commit)
{
	run_case("crash-after-go", NULL, false, NULL);
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "did not take the guest"));
}
END_TEST

/* A sender-side seam that damages or drops the n-th STATE message. */
static unsigned int state_msgs, target_msg;
static bool drop;

static ssize_t tamper_sendmsg(void *ctx, int fd, const struct msghdr *msg, int flags)
{
	const struct iovec *iov = msg->msg_iov;
	size_t len = 0;
	uint16_t type = 0;

	(void)ctx;
	if (iov[0].iov_len >= SEVM_WIRE_HDR_LEN)
		memcpy(&type, (const char *)iov[0].iov_base + 4, 2);
	if (type != SEVM_MSG_STATE || ++state_msgs != target_msg) {
		ssize_t r = sendmsg(fd, msg, flags);
		return r < 0 ? -errno : r;
	}
	for (size_t i = 0; i < msg->msg_iovlen; i++)
		len += iov[i].iov_len;
	if (drop)
		return (ssize_t)len;
	char *copy = malloc(len);
	size_t at = 0;
	if (!copy || len <= SEVM_WIRE_HDR_LEN + 60)
		abort();
	for (size_t i = 0; i < msg->msg_iovlen; at += iov[i].iov_len, i++)
		memcpy(copy + at, iov[i].iov_base, iov[i].iov_len);
	copy[SEVM_WIRE_HDR_LEN + 60] ^= 0x10;	/* a payload byte of the first section */
	struct iovec one = { .iov_base = copy, .iov_len = len };
	struct msghdr m = *msg;
	m.msg_iov = &one;
	m.msg_iovlen = 1;
	ssize_t r = sendmsg(fd, &m, flags);
	free(copy);
	return r < 0 ? -errno : r;
}

static void tamper(bool drop_it, unsigned int which)
{
	struct sevm_backend b = { .sz = sizeof(b), .sendmsg = tamper_sendmsg };

	state_msgs = 0;
	target_msg = which;
	drop = drop_it;
	ck_assert_int_eq(sevm_set_backend(&b), 0);
}

START_TEST(rollback_on_corrupted_state)
{
	int err;

	tamper(false, 2);
	run_case("expect-fail", "CHECKSUM", false, &err);
	sevm_set_backend(NULL);
	ck_assert_int_eq(err, -SEVM_ERR_PEER);
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "Checksum mismatch"));
}
END_TEST

START_TEST(rollback_on_truncated_state)
{
	int err;

	tamper(true, 2);	/* vCPU 1's message never arrives */
	run_case("expect-fail", "FORMAT", false, &err);
	sevm_set_backend(NULL);
	ck_assert_int_eq(err, -SEVM_ERR_PEER);
	printf("truncated: %s\n", sevm_last_error());
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "VM state before every vCPU"));
}
END_TEST

/*
 * Each vCPU thread sends its vCPU twice as it pauses: the second may come
 * after the vCPU ran again, so it fails, and so does the switch.
 */
#define TWICE_VCPUS 4
static int first_try[TWICE_VCPUS], second_try[TWICE_VCPUS], out_of_range;

static bool capture_twice(struct tinyvm *vm, unsigned int i, void *h)
{
	first_try[i] = sevm_handoff_capture_vcpu(h, i, vm->vcpus[i].run);
	second_try[i] = sevm_handoff_capture_vcpu(h, i, NULL);
	if (i == 0)
		out_of_range = sevm_handoff_capture_vcpu(h, TWICE_VCPUS, NULL);
	return first_try[i] == 0;
}

START_TEST(vcpu_sent_twice_fails_the_switch_and_the_guest_runs_on)
{
	struct tinyvm_handoff_times t = { .capture_in_switch = true };
	struct tinyvm vm = { 0 };
	struct sevm_handoff *h;
	int before = tu_count_fds();
	unsigned int already = 0;
	int sock, err;
	pid_t pid;

	boot(&vm, TWICE_VCPUS);
	pid = spawn("expect-fail", "PEER", &sock);
	ck_assert_int_eq(sevm_handoff_from_fd(sock, true, &opts, &h), 0);
	ck_assert_int_eq(sevm_handoff_capture_vcpu(NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(sevm_handoff_capture_vcpu(h, 0, NULL), -EINVAL);	/* not prepared */
	tinyvm_set_park_hook(&vm, capture_twice, h);
	err = tinyvm_handoff_send(&vm, h, &t);
	ck_assert_msg(err == -EALREADY, "switch returned %d: %s", err, sevm_last_error());
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "sent already"));
	ck_assert_int_eq(out_of_range, -EINVAL);
	/* After the first failure no vCPU goes any more. */
	for (unsigned int i = 0; i < TWICE_VCPUS; i++) {
		ck_assert(first_try[i] == 0 || first_try[i] == -EPIPE);
		ck_assert(second_try[i] == -EALREADY || second_try[i] == -EPIPE);
		already += second_try[i] == -EALREADY;
	}
	ck_assert_uint_ge(already, 1);
	sevm_handoff_free(h);
	assert_runs_on(&vm);
	tinyvm_destroy(&vm);
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_eq(tu_count_fds(), before);
}
END_TEST

static pid_t spawn_other_uid(const char *path)
{
	int out[2];
	char line[32] = "";
	pid_t pid;

	ck_assert_int_eq(pipe(out), 0);
	pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		execl(peer, peer, "other-uid", path, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	/* Connect only once it listens. */
	ck_assert_int_gt(read(out[0], line, sizeof(line) - 1), 0);
	ck_assert_ptr_nonnull(strstr(line, "listening"));
	close(out[0]);
	return pid;
}

START_TEST(peer_of_another_uid_is_refused)
{
	char path[64] = "/tmp/sevm-uid-XXXXXX";	/* room for "/s" */
	struct sevm_handoff *h = NULL;
	int before = tu_count_fds();
	pid_t pid;

	ck_assert_ptr_nonnull(mkdtemp(path));
	ck_assert_int_eq(chmod(path, 0777), 0);
	strcat(path, "/s");
	pid = spawn_other_uid(path);
	ck_assert_int_eq(sevm_handoff_connect(path, &opts, &h), -EPERM);
	ck_assert_ptr_null(h);
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "uid 65534"));
	ck_assert_int_eq(child_status(pid), 0);
	ck_assert_int_eq(tu_count_fds(), before);
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
}
END_TEST

static int allow_nobody(pid_t pid, uid_t uid, gid_t gid, void *ctx)
{
	(void)pid;
	(void)gid;
	++*(int *)ctx;
	return uid == 65534 ? 0 : -EPERM;
}

START_TEST(policy_hook_may_allow_another_uid)
{
	char path[64] = "/tmp/sevm-uid-XXXXXX";	/* room for "/s" */
	int calls = 0;
	struct sevm_handoff_opts o = { .sz = sizeof(o), .timeout_ms = 5000,
				       .peer_policy = allow_nobody, .peer_policy_ctx = &calls };
	struct sevm_handoff *h = NULL;
	pid_t pid;

	ck_assert_ptr_nonnull(mkdtemp(path));
	ck_assert_int_eq(chmod(path, 0777), 0);
	strcat(path, "/s");
	pid = spawn_other_uid(path);
	ck_assert_int_eq(sevm_handoff_connect(path, &o, &h), 0);
	ck_assert_int_eq(calls, 1);
	sevm_handoff_free(h);
	/* The peer, without such a policy, still refuses us. */
	ck_assert_int_eq(child_status(pid), 0);
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("handoff-e2e");
	TCase *tc = tcase_create("two processes");

	tu_require_kvm();
	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-handoff-peer\n", argv[0]);
		return 2;
	}
	peer = argv[1];
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, guest_moves_and_continues_exactly);
	tcase_add_test(tc, guest_moves_captured_and_restored_on_one_thread_each);
	tcase_add_test(tc, chain_of_three_vmms);
	tcase_add_test(tc, rollback_when_receiver_quits);
	tcase_add_test(tc, rollback_when_receiver_crashes_mid_restore);
	tcase_add_test(tc, rollback_when_receiver_dies_after_commit);
	tcase_add_test(tc, rollback_on_corrupted_state);
	tcase_add_test(tc, rollback_on_truncated_state);
	tcase_add_test(tc, vcpu_sent_twice_fails_the_switch_and_the_guest_runs_on);
	tcase_add_test(tc, peer_of_another_uid_is_refused);
	tcase_add_test(tc, policy_hook_may_allow_another_uid);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
