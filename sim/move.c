/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KVM_CAP_VM_MOVE_ENC_CONTEXT_FROM and KVM_CAP_VM_COPY_ENC_CONTEXT_FROM
 * (sev_vm_move_enc_context_from(), sev_vm_copy_enc_context_from()), in the
 * kernel's order (sev-kernel-rules.md §1.2, §2.1).  The source is named by
 * an fd of the calling process; it may be a VM another process created.
 */
#include <errno.h>
#include <fcntl.h>

#include "internal.h"

/* fdget() and file_is_kvm(): steps 1 and 2 */
static int source_vm(struct sevsim *sim, unsigned int fd, struct sim_vm **out)
{
	struct sim_ident id;

	/* 1: the number is not an open fd (the kernel took args[0] as unsigned int) */
	if (fd > (unsigned int)INT32_MAX || fcntl((int)fd, F_GETFD) < 0)
		return -EBADF;
	/* 2: not a VM file of this host: a vCPU, /dev/kvm, /dev/sev, anything else */
	if (sim__ident(sim, (int)fd, &id) < 0 || id.kind != SIM_FD_VM)
		return -EBADF;
	*out = &sim->sh->vms[id.vm];
	return 0;
}

static bool take_flag(int *flag)
{
	int zero = 0;

	return __atomic_compare_exchange_n(flag, &zero, 1, false, __ATOMIC_ACQUIRE,
					   __ATOMIC_RELAXED);
}

static void drop_flag(int *flag)
{
	__atomic_store_n(flag, 0, __ATOMIC_RELEASE);
}

/*
 * sev_lock_two_vms(): step 3.  The flags are taken with a compare-and-swap
 * and never waited for, so two VMs migrating into each other cannot
 * deadlock: the loser gets -EBUSY.
 */
static int lock_two_vms(struct sim_vm *dst, struct sim_vm *src)
{
	/* 3a */
	if (dst == src)
		return -EINVAL;
	/* 3b */
	if (!take_flag(&dst->migration_in_progress))
		return -EBUSY;
	/* 3c: dst's flag is released first */
	if (!take_flag(&src->migration_in_progress)) {
		drop_flag(&dst->migration_in_progress);
		return -EBUSY;
	}
	/*
	 * 3d, 3e: mutex_lock_killable() of dst's kvm->lock, then src's; no
	 * fatal signal reaches the model, so never -EINTR.  With both flags
	 * held no other thread locks this pair, so the order is free: the model
	 * takes the lower slot first, which ThreadSanitizer (blind to the
	 * flags, as lockdep is without its _nested annotation) can follow.
	 */
	if (dst < src) {
		sim__lock(&dst->lock);
		sim__lock(&src->lock);
	} else {
		sim__lock(&src->lock);
		sim__lock(&dst->lock);
	}
	return 0;
}

/* sev_unlock_two_vms() */
static void unlock_two_vms(struct sim_vm *dst, struct sim_vm *src)
{
	sim__unlock(&dst->lock);
	sim__unlock(&src->lock);
	drop_flag(&dst->migration_in_progress);
	drop_flag(&src->migration_in_progress);
}

static uint32_t online(const struct sim_vm *vm)
{
	return __atomic_load_n(&vm->online_vcpus, __ATOMIC_ACQUIRE);
}

/* kvm_lock_all_vcpus() / kvm_unlock_all_vcpus(): kvm->lock held, so the count is stable */
static void lock_all_vcpus(struct sim_vm *vm)
{
	for (uint32_t i = 0; i < online(vm); i++)
		sim__lock(&vm->vcpus[i].mutex);
}

static void unlock_all_vcpus(struct sim_vm *vm)
{
	for (uint32_t i = online(vm); i-- > 0;)
		sim__unlock(&vm->vcpus[i].mutex);
}

/* sev_check_source_vcpus(): step 8 */
static int check_source_vcpus(struct sim_vm *dst, struct sim_vm *src)
{
	/* 8a: a vCPU creation in flight on either VM */
	if (src->created_vcpus != online(src) || dst->created_vcpus != online(dst))
		return -EBUSY;
	/* 8b: plain SEV needs no matching vCPUs */
	if (!sim__sev_es_guest(src))
		return 0;
	/* 8c */
	if (online(src) != online(dst))
		return -EINVAL;
	/* 8d: every source VMSA encrypted by LAUNCH_UPDATE_VMSA */
	for (uint32_t i = 0; i < online(src); i++)
		if (!src->vcpus[i].protected)
			return -EINVAL;
	return 0;
}

/* sev_migrate_from() (§1.3) */
static void migrate_from(struct sim_shared *sh, struct sim_vm *dst, struct sim_vm *src)
{
	struct sim_sev *d = &dst->sev, *s = &src->sev;
	int32_t di = (int32_t)sim__vm_index(sh, dst), si = (int32_t)sim__vm_index(sh, src);

	d->active = true;
	d->asid = s->asid;
	d->handle = s->handle;
	d->pages_locked = s->pages_locked;
	d->mirror = s->mirror;
	d->es_active = s->es_active;
	d->vmsa_features = s->vmsa_features;
	/* not moved: fd (dst keeps its own, 0), policy, ghcb_version, need_init */
	s->asid = 0;
	s->active = false;
	s->handle = 0;
	s->pages_locked = 0;
	s->mirror = false;
	s->es_active = false;
	/* regions_list is spliced over */
	d->nr_regions = s->nr_regions;
	for (uint32_t i = 0; i < s->nr_regions; i++)
		d->regions[i] = s->regions[i];
	s->nr_regions = 0;

	sim__lock(&sh->mirror_lock);
	/* mirror_vms: each mirror's reference moves to dst, its owner becomes dst */
	for (int i = 0; i < SIM_MAX_VMS; i++) {
		struct sim_vm *m = &sh->vms[i];

		if ((__atomic_load_n(&m->gen, __ATOMIC_ACQUIRE) & 1) && m != src && m != dst &&
		    m->sev.owner == si)
			m->sev.owner = di;
	}
	d->nr_mirrors = s->nr_mirrors;
	s->nr_mirrors = 0;
	/* dst, now the mirror, takes src's place in its owner's list */
	d->owner = s->owner;
	s->owner = -1;
	sim__unlock(&sh->mirror_lock);

	/* each dst vCPU: sev_init_vmcb(); SEV-ES state moves by index */
	for (uint32_t i = 0; i < online(dst) && d->es_active; i++) {
		dst->vcpus[i].protected = true;
		src->vcpus[i].protected = false;
	}
}

int sim__move_enc_context_from(struct sevsim *sim, struct sim_vm *dst, unsigned int fd)
{
	struct sim_vm *src;
	int r = source_vm(sim, fd, &src);

	if (r)
		return r;
	r = lock_two_vms(dst, src);
	if (r)
		return r;
	/* 4: one combined test */
	if (dst->vm_type != src->vm_type || sim__sev_guest(dst) || !sim__sev_guest(src)) {
		r = -EINVAL;
		goto out;
	}
	/*
	 * 5: dst_sev->misc_cg = the caller's cgroup; charged only if it is not
	 * src's.  Every process on the model's host is in the one misc cgroup
	 * "sevsim", so nothing is charged here or uncharged at the end.
	 */
	/* 6, 7: dst's vCPUs, then src's (in slot order, as the VM locks) */
	lock_all_vcpus(dst < src ? dst : src);
	lock_all_vcpus(dst < src ? src : dst);
	/* 8 */
	r = check_source_vcpus(dst, src);
	if (!r) {
		/* 9 */
		migrate_from(sim->sh, dst, src);
		__atomic_store_n(&src->dead, 1, __ATOMIC_RELEASE);
	}
	unlock_all_vcpus(dst < src ? src : dst);
	unlock_all_vcpus(dst < src ? dst : src);
out:
	unlock_two_vms(dst, src);
	return r;
}

int sim__copy_enc_context_from(struct sevsim *sim, struct sim_vm *dst, unsigned int fd)
{
	struct sim_shared *sh = sim->sh;
	struct sim_sev *d = &dst->sev, *s;
	struct sim_vm *src;
	int r = source_vm(sim, fd, &src);

	if (r)
		return r;
	r = lock_two_vms(dst, src);
	if (r)
		return r;
	s = &src->sev;
	/* 4: no vm_type comparison in COPY; no mirror of a mirror; no vCPUs yet */
	if (sim__sev_guest(dst) || !sim__sev_guest(src) || s->mirror || dst->created_vcpus) {
		r = -EINVAL;
		goto out;
	}
	/* kvm_get_kvm(source) and the mirror_vms entry */
	sim__lock(&sh->mirror_lock);
	s->nr_mirrors++;
	d->owner = (int32_t)sim__vm_index(sh, src);
	sim__unlock(&sh->mirror_lock);
	d->mirror = true;
	d->active = true;
	d->asid = s->asid;
	/* the fd NUMBER is copied, unlike MOVE */
	d->fd = s->fd;
	d->es_active = s->es_active;
	d->need_init = false;
	d->handle = s->handle;
	d->nr_regions = 0;
out:
	unlock_two_vms(dst, src);
	return r;
}
