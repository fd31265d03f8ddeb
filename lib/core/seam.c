/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../abi/compat.h"
#include "error.h"
#include "names.h"
#include "opts.h"
#include "seam.h"

/*
 * Process-wide by design: the model must also serve calls made on the
 * library's own worker threads.  It is set before the VMM starts threads
 * (sevm_set_backend(3)).  The kernel path tests one flag and calls straight
 * through, so the seam costs a predictable branch.
 */
static struct sevm_backend backend;
static bool backend_on;

#define OP(name) (backend_on && backend.name)

int sevm_set_backend(const struct sevm_backend *b)
{
	int r;

	if (!b) {
		backend_on = false;
		memset(&backend, 0, sizeof(backend));
		return 0;
	}
	r = SEVM_OPTS_CHECK(b, "sevm_set_backend");
	if (r)
		return r;
	memset(&backend, 0, sizeof(backend));
	memcpy(&backend, b, b->sz < sizeof(backend) ? b->sz : sizeof(backend));
	backend_on = true;
	return 0;
}

int sevm_get_backend(struct sevm_backend *out)
{
	if (!out || out->sz < sizeof(size_t))
		return sevm__fail(-EINVAL, "sevm_get_backend: NULL struct or sz unset");
	sevm__report_out(out, &backend, sizeof(backend));
	return 0;
}

static int kernel_open(const char *path, int flags)
{
	int fd;

	do
		fd = open(path, flags);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

static int kernel_ioctl(int fd, unsigned long request, void *arg)
{
	int r = ioctl(fd, request, arg);

	return r < 0 ? -errno : r;
}

static ssize_t kernel_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t r = sendmsg(fd, msg, flags);

	return r < 0 ? -errno : r;
}

static ssize_t kernel_recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t r = recvmsg(fd, msg, flags);

	return r < 0 ? -errno : r;
}

static const char *request_name(unsigned long request, char *buf, size_t len)
{
	const char *name = sevm__ioctl_name(request);

	if (name)
		return name;
	snprintf(buf, len, "ioctl 0x%lx", request);
	return buf;
}

int sevm__open_quiet(const char *path, int flags)
{
	int fd;

	flags |= O_CLOEXEC;
	do
		fd = OP(open) ? backend.open(backend.ctx, path, flags)
			      : kernel_open(path, flags);
	while (fd == -EINTR);
	return fd;
}

int sevm__open(const char *path, int flags)
{
	int fd = sevm__open_quiet(path, flags);

	return fd < 0 ? sevm__fail(fd, "open %s", path) : fd;
}

int sevm__ioctl_quiet(int fd, unsigned long request, void *arg)
{
	int r;

	/* KVM_RUN's EINTR is its answer (immediate_exit), not an interruption. */
	do
		r = OP(ioctl) ? backend.ioctl(backend.ctx, fd, request, arg)
			      : kernel_ioctl(fd, request, arg);
	while (r == -EINTR && request != KVM_RUN);
	return r;
}

int sevm__ioctl(int fd, unsigned long request, void *arg)
{
	int r = sevm__ioctl_quiet(fd, request, arg);

	if (r < 0) {
		char buf[32];
		return sevm__fail(r, "%s", request_name(request, buf, sizeof(buf)));
	}
	return r;
}

void sevm__close(int fd)
{
	if (fd < 0)
		return;
	/* Linux frees the descriptor even when close fails: never retry. */
	if (OP(close))
		backend.close(backend.ctx, fd);
	else
		close(fd);
}

ssize_t sevm__sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t r;

	do
		r = OP(sendmsg) ? backend.sendmsg(backend.ctx, fd, msg, flags)
				: kernel_sendmsg(fd, msg, flags);
	while (r == -EINTR);
	return r < 0 ? sevm__fail((int)r, "sendmsg") : r;
}

ssize_t sevm__recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t r;

	do
		r = OP(recvmsg) ? backend.recvmsg(backend.ctx, fd, msg, flags)
				: kernel_recvmsg(fd, msg, flags);
	while (r == -EINTR);
	return r < 0 ? sevm__fail((int)r, "recvmsg") : r;
}

int sevm_open(const char *path, int flags)
{
	return sevm__open(path, flags);
}

int sevm_ioctl(int fd, unsigned long request, void *arg)
{
	return sevm__ioctl(fd, request, arg);
}

void sevm_close(int fd)
{
	sevm__close(fd);
}
