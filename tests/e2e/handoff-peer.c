/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The new VMM of the handoff tests, a separate process as in real life:
 *   handoff-peer MODE FD [ARG]
 * FD is its end of a socketpair with the test (the old VMM).  Exit 0 means
 * this side saw what MODE expects; anything else is printed to stderr.
 *
 *   ok              take the guest, run it, check it continues exactly
 *   chain           take it, run it, hand it to another peer ("ok"), wait
 *   free-after-hello  read the hello, then drop the handle (a receiver that quits)
 *   crash-in-restore  die by SIGKILL at the ARG-th KVM set ioctl of the restore
 *   crash-after-go  die by SIGKILL after the commit, before saying RESUMED
 *   expect-fail     taking the guest must fail with -SEVM_ERR_<ARG> (FORMAT, CHECKSUM)
 *   other-uid       FD is a socket path: become uid 65534, listen there and
 *                   refuse the (root) sender that connects (-EPERM)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "handoff/wire.h"
#include "testutil.h"
#include "tinyvm-handoff.h"
#include "tu-tinyvm.h"

static const struct sevm_handoff_opts opts = { .sz = sizeof(opts), .timeout_ms = 5000 };

static int peer_fail(const char *what, int err)
{
	fprintf(stderr, "handoff-peer %d: %s: %d (%s)\n", (int)getpid(), what, err, sevm_last_error());
	return 1;
}

/* serial: the calling thread restores every vCPU, as before restore threads. */
static int take(int fd, struct tinyvm *vm, bool serial)
{
	struct tinyvm_handoff_times t = { .verify_ram = true };
	struct sevm_handoff_opts o = opts;
	struct sevm_handoff *h;
	int err;

	o.restore_threads = serial ? 1 : 0;
	err = sevm_handoff_from_fd(fd, false, &o, &h);

	if (err)
		return peer_fail("from_fd", err);
	err = tinyvm_handoff_receive(vm, h, &t);
	sevm_handoff_free(h);
	if (err)
		return peer_fail("receive", err);
	/* The guest must keep beating on every vCPU with no wrong beat. */
	if (!tu_runs(vm, 2)) {
		fprintf(stderr, "handoff-peer: the guest does not run here (%llu wrong "
			"heartbeats or exits)\n", (unsigned long long)tinyvm_total_errors(vm));
		return 1;
	}
	return 0;
}

static int pass_on(const char *self, struct tinyvm *vm)
{
	struct tinyvm_handoff_times t = { .verify_ram = true };
	struct sevm_handoff *h;
	int sv[2], status, err;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return peer_fail("socketpair", -errno);
	pid = fork();
	if (pid == 0) {
		char fd[16];

		snprintf(fd, sizeof(fd), "%d", dup(sv[1]));
		execl(self, self, "ok", fd, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	err = sevm_handoff_from_fd(sv[0], true, &opts, &h);
	if (err)
		return peer_fail("from_fd (sender)", err);
	err = tinyvm_handoff_send(vm, h, &t);
	sevm_handoff_free(h);
	if (err)
		return peer_fail("pass on", err);
	tinyvm_destroy(vm);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* Dies in the middle of the restore, as a crashing new VMM would. */
static unsigned int crash_at, sets;

static int crashing_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	(void)ctx;
	/* _IOW: KVM_SET_USER_MEMORY_REGION, then the KVM_SET_* of the restore. */
	if ((req & 0xff00) == 0xae00 && (req >> 30) == 1 && ++sets == crash_at)
		raise(SIGKILL);
	int r = ioctl(fd, req, arg);
	return r < 0 ? -errno : r;
}

static int crash_after_go(int fd)
{
	struct tinyvm vm = { 0 };

	tu_die_before_msg(SEVM_MSG_RESUMED);
	take(fd, &vm, false);
	return peer_fail("still alive after GO", -EINVAL);
}

static int crash_in_restore(int fd, unsigned int n)
{
	struct sevm_backend b = { .sz = sizeof(b), .ioctl = crashing_ioctl };
	struct tinyvm vm = { 0 };

	crash_at = n;
	sevm_set_backend(&b);
	take(fd, &vm, false);
	return peer_fail("still alive after the crash point", -EINVAL);
}

static int expect_fail(int fd, const char *what)
{
	int want = !strcmp(what, "CHECKSUM") ? -SEVM_ERR_CHECKSUM :
		   !strcmp(what, "PEER") ? -SEVM_ERR_PEER : -SEVM_ERR_FORMAT;
	struct tinyvm_handoff_times t = { 0 };
	struct tinyvm vm = { 0 };
	struct sevm_handoff *h;
	int err = sevm_handoff_from_fd(fd, false, &opts, &h);

	if (err)
		return peer_fail("from_fd", err);
	err = tinyvm_handoff_receive(&vm, h, &t);
	sevm_handoff_free(h);
	tinyvm_destroy(&vm);
	if (err != want)
		return peer_fail("expected another failure", err);
	printf("handoff-peer: refused as expected: %s\n", sevm_last_error());
	return 0;
}

int main(int argc, char **argv)
{
	struct tinyvm vm = { 0 };
	struct sevm_handoff *h;
	int fd, fds_before, err, r;

	if (argc < 3)
		return 2;
	fd = !strcmp(argv[1], "other-uid") ? -1 : atoi(argv[2]);
	fds_before = tu_count_fds();
	if (!strcmp(argv[1], "ok") || !strcmp(argv[1], "serial")) {
		r = take(fd, &vm, !strcmp(argv[1], "serial"));
		tinyvm_destroy(&vm);
		/* The socket went with the handle; nothing else may be left open. */
		if (!r && tu_count_fds() != fds_before - 1)
			r = peer_fail("fd count", tu_count_fds() - fds_before);
		return r;
	}
	if (!strcmp(argv[1], "chain"))
		return take(fd, &vm, false) ? 1 : pass_on(argv[0], &vm);
	if (!strcmp(argv[1], "free-after-hello")) {
		err = sevm_handoff_from_fd(fd, false, &opts, &h);
		if (err)
			return peer_fail("from_fd", err);
		sevm_handoff_free(h);
		return 0;
	}
	if (!strcmp(argv[1], "crash-in-restore") && argc > 3)
		return crash_in_restore(fd, (unsigned int)atoi(argv[3]));
	if (!strcmp(argv[1], "crash-after-go"))
		return crash_after_go(fd);
	if (!strcmp(argv[1], "expect-fail") && argc > 3)
		return expect_fail(fd, argv[3]);
	if (!strcmp(argv[1], "other-uid")) {
		int l;

		if (setgid(65534) < 0 || setuid(65534) < 0)
			return peer_fail("dropping to uid 65534", -errno);
		l = sevm_handoff_listen(argv[2]);
		if (l < 0)
			return peer_fail("listen", l);
		printf("listening\n");
		fflush(stdout);
		err = sevm_handoff_accept(l, &opts, &h);
		close(l);
		return err == -EPERM ? 0 : peer_fail("a root peer was accepted", err);
	}
	return 2;
}
