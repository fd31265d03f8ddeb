/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <sevmigrate.h>

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

static struct tu_fault *fault;
static struct sevm_backend below;

/* True when this call is the one to fail. */
static bool hit(enum tu_op op, unsigned long request)
{
	if (!(fault->ops & op))
		return false;
	if (op == TU_OP_IOCTL && fault->request && fault->request != request)
		return false;
	if (++fault->calls != fault->fail_at)
		return false;
	fault->injected++;
	return true;
}

static int f_open(void *ctx, const char *path, int flags)
{
	(void)ctx;
	if (hit(TU_OP_OPEN, 0))
		return fault->err;
	if (below.open)
		return below.open(below.ctx, path, flags);
	int fd = open(path, flags);
	return fd < 0 ? -errno : fd;
}

static int f_ioctl(void *ctx, int fd, unsigned long request, void *arg)
{
	(void)ctx;
	if (hit(TU_OP_IOCTL, request))
		return fault->err;
	if (below.ioctl)
		return below.ioctl(below.ctx, fd, request, arg);
	int r = ioctl(fd, request, arg);
	return r < 0 ? -errno : r;
}

static int f_close(void *ctx, int fd)
{
	(void)ctx;
	/* The descriptor is released even when close is made to fail. */
	if (hit(TU_OP_CLOSE, 0)) {
		if (below.close)
			below.close(below.ctx, fd);
		else
			close(fd);
		return fault->err;
	}
	if (below.close)
		return below.close(below.ctx, fd);
	return close(fd) < 0 ? -errno : 0;
}

static ssize_t f_sendmsg(void *ctx, int fd, const struct msghdr *msg, int flags)
{
	(void)ctx;
	if (hit(TU_OP_SENDMSG, 0))
		return fault->err;
	if (below.sendmsg)
		return below.sendmsg(below.ctx, fd, msg, flags);
	ssize_t r = sendmsg(fd, msg, flags);
	return r < 0 ? -errno : r;
}

static ssize_t f_recvmsg(void *ctx, int fd, struct msghdr *msg, int flags)
{
	(void)ctx;
	if (hit(TU_OP_RECVMSG, 0))
		return fault->err;
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
