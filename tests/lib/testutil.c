/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "abi/compat.h"
#include "handoff/wire.h"

#include "testutil.h"

void tu_require_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		printf("SKIP: /dev/kvm cannot be opened read-write (%m); "
		       "this test needs real KVM\n");
		exit(TU_SKIP);
	}
	close(fd);
}

int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

int tu_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static uint64_t rng_state = 1;

void tu_rng_seed(uint64_t seed)
{
	rng_state = seed ? seed : 1;
}

uint64_t tu_rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

void tu_rng_fill(void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		((uint8_t *)p)[i] = (uint8_t)tu_rng();
}

int tu_send_fd(int sock, int fd)
{
	char c = 'v', ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec io = { &c, 1 };
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);

	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

int tu_recv_fd(int sock)
{
	char c, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec io = { &c, 1 };
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	struct cmsghdr *h;
	int fd;

	if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1 || !(h = CMSG_FIRSTHDR(&m)))
		return -1;
	memcpy(&fd, CMSG_DATA(h), sizeof(int));
	return fd;
}

void tu_sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int tu_reap(pid_t pid, int timeout_ms)
{
	int status;

	for (int waited = 0;; waited += 2) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (r < 0)
			return -1;
		if (waited >= timeout_ms)
			break;
		tu_sleep_ms(2);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static uint16_t die_before;
static ssize_t (*die_below)(void *ctx, int fd, const struct msghdr *msg, int flags);

static ssize_t dying_sendmsg(void *ctx, int fd, const struct msghdr *msg, int flags)
{
	uint16_t type = 0;

	/* The type follows the header's magic (doc/handoff-protocol.md). */
	if (msg->msg_iov[0].iov_len >= SEVM_WIRE_HDR_LEN)
		memcpy(&type, (const char *)msg->msg_iov[0].iov_base + 4, sizeof(type));
	if (type == die_before)
		raise(SIGKILL);
	if (die_below)
		return die_below(ctx, fd, msg, flags);
	ssize_t r = sendmsg(fd, msg, flags);
	return r < 0 ? -errno : r;
}

void tu_die_before_msg(uint16_t type)
{
	struct sevm_backend b = { .sz = sizeof(b) };

	sevm_get_backend(&b);
	die_before = type;
	die_below = b.sendmsg;
	b.sendmsg = dying_sendmsg;
	sevm_set_backend(&b);
}

static struct tu_fault *fault;
static struct sevm_backend below;

/* An SEV command's id, for the names and the firmware status; false for other calls. */
static bool sev_command(unsigned long request, void *arg, uint32_t *id)
{
	if (!arg)
		return false;
	if (request == KVM_MEMORY_ENCRYPT_OP) {
		*id = ((struct kvm_sev_cmd *)arg)->id;
		return true;
	}
	if (request == SEV_ISSUE_CMD) {
		*id = ((struct sev_issue_cmd *)arg)->cmd;
		return true;
	}
	return false;
}

/* The firmware "ran" and refused: its status where the kernel would write it. */
static void write_fw_status(unsigned long request, void *arg, uint32_t status)
{
	/* KVM's "is SEV enabled" probe passes no argument: nothing to write to. */
	if (!arg)
		return;
	if (request == KVM_MEMORY_ENCRYPT_OP)
		((struct kvm_sev_cmd *)arg)->error = status;
	else
		((struct sev_issue_cmd *)arg)->error = status;
}

/* A non-blocking socket call that can only answer EAGAIN now. */
static bool would_block(enum tu_op op, int fd, int flags)
{
	struct pollfd p = { .fd = fd, .events = op == TU_OP_SENDMSG ? POLLOUT : POLLIN };

	if (!(op & (TU_OP_SENDMSG | TU_OP_RECVMSG)) || !(flags & MSG_DONTWAIT))
		return false;
	return poll(&p, 1, 0) == 0;
}

static bool queued(int fd)
{
	int n = 0;

	return ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/* 0 when this call goes on to the layer below, else the error to return. */
static int hit(enum tu_op op, unsigned long request, void *arg, int fd, int flags)
{
	/* Read once: another thread may remove the injector meanwhile. */
	struct tu_fault *f = fault;
	struct tu_call c = { .op = op, .request = request };

	if (!f || (f->tid && f->tid != gettid()))
		return 0;
	if (f->skip_would_block && would_block(op, fd, flags))
		return 0;
	/* Several threads may call at once: each call takes its own number. */
	__atomic_add_fetch(&f->per_op[TU_OP_INDEX(op)], 1, __ATOMIC_RELAXED);
	if (!(f->ops & op))
		return 0;
	if (op == TU_OP_IOCTL && f->request && f->request != request)
		return 0;
	if (op == TU_OP_IOCTL)
		c.sev = sev_command(request, arg, &c.sev_id);
	unsigned int n = __atomic_add_fetch(&f->calls, 1, __ATOMIC_RELAXED);

	if (f->log && n <= f->log_cap)
		f->log[n - 1] = c;
	if (n != f->fail_at)
		return 0;
	c.err = f->err;
	c.fw_status = c.sev ? f->fw_status : 0;
	if (f->choose)
		f->choose(&c, f->choose_ctx);
	if (!c.sev)
		c.fw_status = 0;
	/*
	 * A reset is reported only once the queued bytes are read (AF_UNIX:
	 * unix_stream_read_generic; TCP alike): with data waiting, a recvmsg can
	 * fail, but not with ECONNRESET.
	 */
	if (op == TU_OP_RECVMSG && c.err == -ECONNRESET && queued(fd))
		c.err = -ENOMEM;
	if (c.fw_status) {
		c.err = -EIO;
		write_fw_status(request, arg, c.fw_status);
	}
	f->hit = c;
	f->injected++;
	return c.err;
}

static int f_open(void *ctx, const char *path, int flags)
{
	int err = hit(TU_OP_OPEN, 0, NULL, -1, 0);

	(void)ctx;
	if (err)
		return err;
	if (below.open)
		return below.open(below.ctx, path, flags);
	int fd = open(path, flags);
	return fd < 0 ? -errno : fd;
}

static int f_ioctl(void *ctx, int fd, unsigned long request, void *arg)
{
	int err = hit(TU_OP_IOCTL, request, arg, fd, 0);

	(void)ctx;
	if (err)
		return err;
	if (below.ioctl)
		return below.ioctl(below.ctx, fd, request, arg);
	int r = ioctl(fd, request, arg);
	return r < 0 ? -errno : r;
}

static int f_close(void *ctx, int fd)
{
	int err = hit(TU_OP_CLOSE, 0, NULL, fd, 0);

	(void)ctx;
	/* The descriptor is released even when close is made to fail. */
	if (err) {
		if (below.close)
			below.close(below.ctx, fd);
		else
			close(fd);
		return err;
	}
	if (below.close)
		return below.close(below.ctx, fd);
	return close(fd) < 0 ? -errno : 0;
}

static ssize_t f_sendmsg(void *ctx, int fd, const struct msghdr *msg, int flags)
{
	int err = hit(TU_OP_SENDMSG, 0, NULL, fd, flags);

	(void)ctx;
	if (err)
		return err;
	if (below.sendmsg)
		return below.sendmsg(below.ctx, fd, msg, flags);
	ssize_t r = sendmsg(fd, msg, flags);
	return r < 0 ? -errno : r;
}

static ssize_t f_recvmsg(void *ctx, int fd, struct msghdr *msg, int flags)
{
	int err = hit(TU_OP_RECVMSG, 0, NULL, fd, flags);

	(void)ctx;
	if (err)
		return err;
	if (below.recvmsg)
		return below.recvmsg(below.ctx, fd, msg, flags);
	ssize_t r = recvmsg(fd, msg, flags);
	return r < 0 ? -errno : r;
}

void tu_fault_install(struct tu_fault *f)
{
	struct sevm_backend b = {
		.sz = sizeof(b), .open = f_open, .ioctl = f_ioctl, .close = f_close,
		.sendmsg = f_sendmsg, .recvmsg = f_recvmsg,
	};

	fault = f;
	f->calls = f->injected = 0;
	memset(&f->hit, 0, sizeof(f->hit));
	memset(f->per_op, 0, sizeof(f->per_op));
	below.sz = sizeof(below);
	sevm_get_backend(&below);
	sevm_set_backend(&b);
}

void tu_fault_remove(void)
{
	sevm_set_backend(below.open || below.ioctl || below.close ||
			 below.sendmsg || below.recvmsg ? &below : NULL);
	fault = NULL;
}
