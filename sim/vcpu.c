/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vCPU fds: kvm_vcpu_ioctl() and kvm_arch_vcpu_ioctl().  The model runs no
 * guest: the state ioctls are a store (what a setter stored, the getter
 * returns; zeros at first), so that a plain SEV guest's vCPUs can be captured
 * and restored, and KVM_RUN reports a HLT exit.  The protected-state rules of
 * SEV-ES are KVM's: with kvm->arch.has_protected_state (a KVM_X86_SEV_ES_VM)
 * and guest_state_protected, the register ioctls are -EINVAL.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* msr_io(): MAX_IO_MSRS */
#define MAX_IO_MSRS		256
/* KVM_MAX_CPUID_ENTRIES is 256; the model keeps fewer */
#define DEFAULT_TSC_KHZ		2000000u

enum gate {
	GATE_NONE,
	GATE_PROTECTED,	/* has_protected_state && guest_state_protected: -EINVAL */
	GATE_FPU,	/* fpstate_is_confidential(): -EINVAL, or 0 without data */
	GATE_LAPIC,	/* no in-kernel LAPIC: -EINVAL */
};

struct item {
	unsigned long get, set;
	size_t off, size;
	enum gate gate;
};

#define ITEM(get_, set_, field, gate_) \
	{ get_, set_, offsetof(struct sim_vcpu, field), sizeof(((struct sim_vcpu *)0)->field), gate_ }

static const struct item items[] = {
	ITEM(KVM_GET_REGS, KVM_SET_REGS, regs, GATE_PROTECTED),
	ITEM(KVM_GET_SREGS, KVM_SET_SREGS, sregs, GATE_PROTECTED),
	ITEM(KVM_GET_SREGS2, KVM_SET_SREGS2, sregs2, GATE_PROTECTED),
	ITEM(KVM_GET_FPU, KVM_SET_FPU, fpu, GATE_FPU),
	ITEM(KVM_GET_XSAVE, KVM_SET_XSAVE, xsave, GATE_FPU),
	ITEM(KVM_GET_XSAVE2, 0, xsave, GATE_FPU),
	ITEM(KVM_GET_XCRS, KVM_SET_XCRS, xcrs, GATE_PROTECTED),
	ITEM(KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, debugregs, GATE_PROTECTED),
	ITEM(KVM_GET_LAPIC, KVM_SET_LAPIC, lapic, GATE_LAPIC),
	ITEM(KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, events, GATE_NONE),
	ITEM(KVM_GET_MP_STATE, KVM_SET_MP_STATE, mp_state, GATE_NONE),
};

/* <0: refused; 0: go on; 1: answered without touching the store (a confidential FPU) */
static int gate(const struct sim_vm *vm, const struct sim_vcpu *v, enum gate g)
{
	switch (g) {
	case GATE_PROTECTED:
		return sim__has_protected_state(vm) && v->protected ? -EINVAL : 0;
	case GATE_FPU:
		if (!v->fpu_confidential)
			return 0;
		return sim__has_protected_state(vm) ? -EINVAL : 1;
	case GATE_LAPIC:
		return vm->irqchip ? 0 : -EINVAL;
	default:
		return 0;
	}
}

static int state_io(const struct sim_vm *vm, struct sim_vcpu *v, const struct item *it,
		    bool get, void *arg)
{
	uint8_t buf[sizeof(struct kvm_xsave)];
	int g;

	_Static_assert(sizeof(buf) >= sizeof(struct kvm_lapic_state), "largest item");
	if (get) {
		g = gate(vm, v, it->gate);
		if (g < 0)
			return g;
		/* a confidential FPU reads as the zeroed buffer KVM allocated */
		if (g)
			memset(buf, 0, it->size);
		else
			memcpy(buf, (uint8_t *)v + it->off, it->size);
		return sim__copy_to_user((uintptr_t)arg, buf, it->size);
	}
	/* setters copy the struct in first, then decide */
	if (sim__copy_from_user(buf, (uintptr_t)arg, it->size))
		return -EFAULT;
	g = gate(vm, v, it->gate);
	if (g)
		return g < 0 ? g : 0;
	memcpy((uint8_t *)v + it->off, buf, it->size);
	return 0;
}

static int msr_slot(uint32_t index)
{
	for (int i = 0; i < SIM_NR_MSRS; i++)
		if (sim__msr_list[i] == index)
			return i;
	return -1;
}

/* msr_io(): stops at the first MSR it cannot do; returns how many it did */
static int msrs_io(struct sim_vcpu *v, void *arg, bool get)
{
	struct kvm_msr_entry e[MAX_IO_MSRS];
	struct kvm_msrs head;
	uint32_t i;

	if (sim__copy_from_user(&head, (uintptr_t)arg, sizeof(head)))
		return -EFAULT;
	if (head.nmsrs >= MAX_IO_MSRS)
		return -E2BIG;
	if (sim__copy_from_user(e, (uintptr_t)arg + sizeof(head), head.nmsrs * sizeof(e[0])))
		return -EFAULT;
	for (i = 0; i < head.nmsrs; i++) {
		int s = msr_slot(e[i].index);

		if (s < 0)
			break;
		if (get)
			e[i].data = v->msrs[s];
		else
			v->msrs[s] = e[i].data;
	}
	if (get && sim__copy_to_user((uintptr_t)arg + sizeof(head), e, head.nmsrs * sizeof(e[0])))
		return -EFAULT;
	return (int)i;
}

static int cpuid_io(struct sim_vcpu *v, void *arg, bool get)
{
	struct kvm_cpuid2 head;

	if (sim__copy_from_user(&head, (uintptr_t)arg, sizeof(head)))
		return -EFAULT;
	if (get) {
		/* kvm_vcpu_ioctl_get_cpuid2(): too small, -E2BIG, nothing written */
		if (head.nent < v->nr_cpuid)
			return -E2BIG;
		if (sim__copy_to_user((uintptr_t)arg + sizeof(head), v->cpuid,
				      v->nr_cpuid * sizeof(v->cpuid[0])))
			return -EFAULT;
		head.nent = v->nr_cpuid;
		return sim__copy_to_user((uintptr_t)arg, &head, sizeof(head));
	}
	if (head.nent > SIM_MAX_CPUID)
		return -E2BIG;
	if (sim__copy_from_user(v->cpuid, (uintptr_t)arg + sizeof(head),
				head.nent * sizeof(v->cpuid[0])))
		return -EFAULT;
	v->nr_cpuid = head.nent;
	return 0;
}

/*
 * KVM_RUN: an immediate_exit is -EINTR before anything runs; a VM that a
 * MOVE killed answers -EIO (KVM_REQ_VM_DEAD stays pending); otherwise the
 * guest "halts" at once.
 */
static int run(const struct sim_vm *vm, int fd, void *arg)
{
	uint32_t reason = KVM_EXIT_HLT;
	uint8_t immediate = 0;

	if (arg)
		return -EINVAL;
	if (pread(fd, &immediate, 1, offsetof(struct kvm_run, immediate_exit)) != 1)
		return -EFAULT;
	if (immediate)
		return -EINTR;
	if (__atomic_load_n(&vm->dead, __ATOMIC_ACQUIRE))
		return -EIO;
	if (pwrite(fd, &reason, sizeof(reason), offsetof(struct kvm_run, exit_reason)) !=
	    sizeof(reason))
		return -EFAULT;
	return 0;
}

static int vcpu_ioctl_locked(struct sim_vm *vm, struct sim_vcpu *v, int fd, unsigned long req,
			     void *arg)
{
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		if (items[i].get == req)
			return state_io(vm, v, &items[i], true, arg);
		if (items[i].set && items[i].set == req)
			return state_io(vm, v, &items[i], false, arg);
	}
	switch (req) {
	case KVM_RUN:
		return run(vm, fd, arg);
	case KVM_GET_MSRS:
		return msrs_io(v, arg, true);
	case KVM_SET_MSRS:
		return msrs_io(v, arg, false);
	case KVM_GET_CPUID2:
		return cpuid_io(v, arg, true);
	case KVM_SET_CPUID2:
		return cpuid_io(v, arg, false);
	case KVM_GET_TSC_KHZ:
		return (int)v->tsc_khz;
	case KVM_SET_TSC_KHZ:
		/* 0 asks for the host's rate */
		v->tsc_khz = (uint32_t)(uintptr_t)arg ? (uint32_t)(uintptr_t)arg : DEFAULT_TSC_KHZ;
		return 0;
	default:
		/* KVM_GET_NESTED_STATE without nesting, and everything else */
		return -EINVAL;
	}
}

/* kvm_vcpu_ioctl(): the mm check, then vcpu->mutex for the whole ioctl */
int sim__vcpu_ioctl(struct sevsim *sim, uint32_t vmi, uint32_t vcpu, int fd,
		    unsigned long req, void *arg)
{
	struct sim_vm *vm = &sim->sh->vms[vmi];
	struct sim_vcpu *v = &vm->vcpus[vcpu];
	int r;

	if (vm->creator != getpid())
		return -EIO;
	if (sim->sh->cfg.dead_vm_rejects_ioctls && __atomic_load_n(&vm->dead, __ATOMIC_ACQUIRE))
		return -EIO;
	sim__lock(&v->mutex);
	r = vcpu_ioctl_locked(vm, v, fd, req, arg);
	sim__unlock(&v->mutex);
	return r;
}
