/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Model fds: real fds, so that they pass through SCM_RIGHTS, dup and close
 * like KVM's anon-inode files.  Each is a one-page memfd ("sevsim-kvm",
 * "sevsim-vm", "sevsim-vcpu", "sevsim-sev") whose last bytes hold a token
 * naming the host, the kind and the slot.  An fd is a VM or vCPU of this host
 * when its token says so and its (st_dev, st_ino) is the one the slot
 * recorded (a recycled inode number cannot pass for a destroyed VM's).  A
 * vCPU's page is also its struct kvm_run, which the VMM mmaps.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

_Static_assert(sizeof(struct kvm_run) <= SIM_TOKEN_OFF, "kvm_run ends before the token");
_Static_assert(sizeof(struct sim_token) <= SIM_FD_SIZE - SIM_TOKEN_OFF, "token fits");

static const char *const fd_names[] = {
	[SIM_FD_NONE] = "sevsim-fd",
	[SIM_FD_KVM] = "sevsim-kvm",
	[SIM_FD_SEV] = "sevsim-sev",
	[SIM_FD_VM] = "sevsim-vm",
	[SIM_FD_VCPU] = "sevsim-vcpu",
};

int sim__fd_set_token(struct sevsim *sim, int fd, enum sim_fd_kind kind, uint32_t vm,
		      uint32_t vcpu, uint32_t gen)
{
	struct sim_token t = {
		.magic = SIM_MAGIC, .kind = kind, .vm = vm, .vcpu = vcpu, .gen = gen,
	};

	memcpy(t.host_id, sim->sh->host_id, sizeof(t.host_id));
	if (pwrite(fd, &t, sizeof(t), SIM_TOKEN_OFF) != (ssize_t)sizeof(t))
		return -EIO;
	return 0;
}

/* /dev/sev opened read-only: a second open file of the same inode, without FMODE_WRITE. */
static int reopen_read_only(int fd, int flags)
{
	char path[64];
	int ro;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	/* at fd's number, as a plain open would have returned */
	if (ro < 0 || dup3(ro, fd, flags & O_CLOEXEC) < 0) {
		int r = -errno;

		if (ro >= 0)
			close(ro);
		close(fd);
		return r;
	}
	close(ro);
	return fd;
}

int sim__fd_new(struct sevsim *sim, enum sim_fd_kind kind, uint32_t vm, uint32_t vcpu,
		uint32_t gen, int flags, dev_t *dev, ino_t *ino)
{
	unsigned int mfd = MFD_ALLOW_SEALING | ((flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
	struct stat st;
	int fd, r;

	fd = memfd_create(fd_names[kind], mfd);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, SIM_FD_SIZE) < 0) {
		r = -errno;
		goto fail;
	}
	if (kind != SIM_FD_NONE) {
		r = sim__fd_set_token(sim, fd, kind, vm, vcpu, gen);
		if (r)
			goto fail;
	}
	/* The page must stay a page: a VMM mmaps vCPU fds. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = -errno;
		goto fail;
	}
	if (kind == SIM_FD_SEV && (flags & O_ACCMODE) == O_RDONLY) {
		fd = reopen_read_only(fd, flags);
		if (fd < 0)
			return fd;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (dev)
		*dev = st.st_dev;
	if (ino)
		*ino = st.st_ino;
	return fd;
fail:
	close(fd);
	return r;
}

static bool vm_fd_matches(struct sim_shared *sh, const struct sim_token *t,
			  const struct stat *st, struct sim_ident *id)
{
	struct sim_vm *vm = sim__vm(sh, t->vm, t->gen);

	if (!vm)
		return false;
	if (t->kind == SIM_FD_VM) {
		if (!sim__id_is(&vm->dev, &vm->ino, st->st_dev, st->st_ino))
			return false;
	} else {
		uint32_t n = __atomic_load_n(&vm->online_vcpus, __ATOMIC_ACQUIRE);
		const struct sim_vcpu *v = &vm->vcpus[t->vcpu];

		if (t->vcpu >= n || !sim__id_is(&v->dev, &v->ino, st->st_dev, st->st_ino))
			return false;
	}
	id->vm = t->vm;
	id->vcpu = t->vcpu;
	return true;
}

int sim__ident(struct sevsim *sim, int fd, struct sim_ident *id)
{
	struct sim_token t;
	struct stat st;
	int fl;

	memset(id, 0, sizeof(*id));
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size != SIM_FD_SIZE)
		return 0;
	if (pread(fd, &t, sizeof(t), SIM_TOKEN_OFF) != (ssize_t)sizeof(t))
		return 0;
	if (t.magic != SIM_MAGIC || memcmp(t.host_id, sim->sh->host_id, sizeof(t.host_id)))
		return 0;
	switch (t.kind) {
	case SIM_FD_KVM:
	case SIM_FD_SEV:
		fl = fcntl(fd, F_GETFL);
		id->writable = fl >= 0 && (fl & O_ACCMODE) != O_RDONLY;
		id->kind = t.kind;
		return 0;
	case SIM_FD_VM:
	case SIM_FD_VCPU:
		if (vm_fd_matches(sim->sh, &t, &st, id))
			id->kind = t.kind;
		return 0;
	default:
		return 0;
	}
}

int sim__sev_fd_check(struct sevsim *sim, int fd)
{
	struct sim_ident id;

	/* __sev_issue_cmd(): fdget() of the number fails */
	if (fd < 0 || fcntl(fd, F_GETFD) < 0)
		return -EBADF;
	/* sev_issue_cmd_external_user(): f_op != &sev_fops */
	if (sim__ident(sim, fd, &id) < 0 || id.kind != SIM_FD_SEV)
		return -EBADF;
	return 0;
}
