/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The model behind libsevmigrate's seam: opens of the devices and files it
 * models, ioctls and closes on its own fds.  Every other path and fd goes to
 * the kernel; sendmsg and recvmsg are always the kernel's.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "internal.h"

static int b_open(void *ctx, const char *path, int flags)
{
	struct sevsim *sim = ctx;
	int fd;

	sim__enter(sim);
	if (!strcmp(path, "/dev/kvm"))
		return sim__fd_new(sim, SIM_FD_KVM, 0, 0, 0, flags, NULL, NULL);
	if (!strcmp(path, "/dev/sev"))
		return sim__fd_new(sim, SIM_FD_SEV, 0, 0, 0, flags, NULL, NULL);
	fd = sim__file_open(sim, path, flags);
	if (fd != -ENOENT)
		return fd;
	fd = open(path, flags);
	return fd < 0 ? -errno : fd;
}

static int b_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	struct sevsim *sim = ctx;
	struct sim_ident id;
	int r;

	sim__enter(sim);
	if (sim__ident(sim, fd, &id) < 0)
		id.kind = SIM_FD_NONE;
	switch (id.kind) {
	case SIM_FD_KVM:
		return sim__kvm_ioctl(sim, req, arg);
	case SIM_FD_SEV:
		return sim__sev_dev_ioctl(sim, &id, req, arg);
	case SIM_FD_VM:
		return sim__vm_ioctl(sim, id.vm, req, arg);
	case SIM_FD_VCPU:
		return sim__vcpu_ioctl(sim, id.vm, id.vcpu, fd, req, arg);
	default:
		r = ioctl(fd, req, arg);
		return r < 0 ? -errno : r;
	}
}

/* The last close of a VM's fds destroys it (host.c): look after closing. */
static int b_close(void *ctx, int fd)
{
	struct sevsim *sim = ctx;
	struct sim_ident id;
	int r;

	sim__enter(sim);
	if (sim__ident(sim, fd, &id) < 0)
		id.kind = SIM_FD_NONE;
	r = close(fd) < 0 ? -errno : 0;
	if (id.kind == SIM_FD_VM || id.kind == SIM_FD_VCPU)
		sim__gc(sim);
	return r;
}

int sevsim_install(struct sevsim *sim)
{
	struct sevm_backend b = {
		.sz = sizeof(b), .ctx = sim, .open = b_open, .ioctl = b_ioctl, .close = b_close,
	};

	if (!sim)
		return -EINVAL;
	sim__enter(sim);
	return sevm_set_backend(&b);
}
