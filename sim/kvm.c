/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * /dev/kvm and VM fds: kvm_dev_ioctl(), kvm_vm_ioctl() and the x86 parts the
 * library and a VMM touch.  Everything else on a VM fd is -ENOTTY and on
 * /dev/kvm -EINVAL, the kernel's defaults.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define KVM_MAX_VCPU_IDS	SIM_MAX_VCPU_ID
#define DEFAULT_TSC_KHZ		2000000u
/* KVM_CLOCK_VALID_FLAGS */
#define CLOCK_VALID_FLAGS	(KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)

/* ---- Capabilities ----------------------------------------------------------- */

/* bit n: KVM_CREATE_VM takes type n (sev_set_cpu_caps()) */
static uint64_t vm_types(const struct sim_shared *sh)
{
	uint64_t t = 1u << KVM_X86_DEFAULT_VM;

	if (sh->cfg.vm_types) {
		t |= 1u << KVM_X86_SEV_VM;
		if (sh->cfg.sev_es)
			t |= 1u << KVM_X86_SEV_ES_VM;
	}
	return t;
}

/* kvm_vm_ioctl_check_extension(): the same answers on /dev/kvm and on a VM */
static int check_extension(const struct sim_shared *sh, long cap)
{
	switch (cap) {
	case KVM_CAP_VM_TYPES:
		return (int)vm_types(sh);
	case KVM_CAP_VM_MOVE_ENC_CONTEXT_FROM:
	case KVM_CAP_VM_COPY_ENC_CONTEXT_FROM:
		return 1;
	case KVM_CAP_MAX_VCPUS:
	case KVM_CAP_NR_VCPUS:
		return SIM_MAX_VCPUS;
	case KVM_CAP_MAX_VCPU_ID:
		return KVM_MAX_VCPU_IDS;
	case KVM_CAP_NR_MEMSLOTS:
		return SIM_MAX_MEMSLOTS;
	case KVM_CAP_XSAVE2:
		return sizeof(struct kvm_xsave);
	case KVM_CAP_ADJUST_CLOCK:
		return CLOCK_VALID_FLAGS;
	case KVM_CAP_USER_MEMORY:
	case KVM_CAP_SYNC_MMU:
	case KVM_CAP_IRQCHIP:
	case KVM_CAP_EXT_CPUID:
	case KVM_CAP_MP_STATE:
	case KVM_CAP_XSAVE:
	case KVM_CAP_XCRS:
	case KVM_CAP_SREGS2:
	case KVM_CAP_DEBUGREGS:
	case KVM_CAP_VCPU_EVENTS:
	case KVM_CAP_TSC_CONTROL:
	case KVM_CAP_GET_TSC_KHZ:
	case KVM_CAP_DEVICE_CTRL:
		return 1;
	default:
		return 0;
	}
}

/* ---- /dev/kvm ---------------------------------------------------------------- */

static const struct kvm_cpuid_entry2 cpuid_base[] = {
	/* "AuthenticAMD", leaves up to 0xd */
	{ .function = 0, .eax = 0xd, .ebx = 0x68747541, .ecx = 0x444d4163, .edx = 0x69746e65 },
	{ .function = 1, .eax = 0x00a00f11, .ecx = 0x76d8320b, .edx = 0x178bfbff },
	{ .function = 7, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX },
	{ .function = 0xd, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0x7,
	  .ebx = 0x340, .ecx = 0x340 },
	{ .function = 0x80000000, .eax = 0x8000001f, .ebx = 0x68747541, .ecx = 0x444d4163,
	  .edx = 0x69746e65 },
	{ .function = 0x80000001, .ecx = 0x75c237ff, .edx = 0x2fd3fbff },
};

#define NR_CPUID	((uint32_t)(sizeof(cpuid_base) / sizeof(cpuid_base[0])) + 1)

/* 0x8000001f: SEV (bit 1), SEV-ES (bit 3); C-bit 51; ASID count; min SEV ASID */
static void cpuid_sev_leaf(const struct sim_shared *sh, struct kvm_cpuid_entry2 *e)
{
	memset(e, 0, sizeof(*e));
	e->function = 0x8000001f;
	e->eax = (1u << 1) | (sh->cfg.sev_es ? 1u << 3 : 0);
	e->ebx = 51 | (1u << 6);
	e->ecx = sh->cfg.sev_es_asids + sh->cfg.sev_asids;
	e->edx = sh->cfg.sev_es_asids + 1;
}

/* kvm_dev_ioctl_get_cpuid() */
static int get_supported_cpuid(const struct sim_shared *sh, void *arg)
{
	struct kvm_cpuid_entry2 e[NR_CPUID];
	struct kvm_cpuid2 head;

	if (sim__copy_from_user(&head, (uintptr_t)arg, sizeof(head)))
		return -EFAULT;
	if (head.nent < NR_CPUID)
		return -E2BIG;
	memcpy(e, cpuid_base, sizeof(cpuid_base));
	cpuid_sev_leaf(sh, &e[NR_CPUID - 1]);
	if (sim__copy_to_user((uintptr_t)arg + sizeof(head), e, sizeof(e)))
		return -EFAULT;
	head.nent = NR_CPUID;
	return sim__copy_to_user((uintptr_t)arg, &head, sizeof(head));
}

const uint32_t sim__msr_list[SIM_NR_MSRS] = {
	0x00000010, 0x0000001b, 0x00000174, 0x00000175, 0x00000176, 0x00000277,
	0xc0000080, 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000100,
	0xc0000101, 0xc0000102, 0xc0000103, 0x4b564d01,
};

/* KVM_GET_MSR_INDEX_LIST: the count goes back, then E2BIG if it did not fit */
static int get_msr_index_list(void *arg)
{
	struct kvm_msr_list head;
	uint32_t n;

	if (sim__copy_from_user(&head, (uintptr_t)arg, sizeof(head)))
		return -EFAULT;
	n = head.nmsrs;
	head.nmsrs = SIM_NR_MSRS;
	if (sim__copy_to_user((uintptr_t)arg, &head, sizeof(head)))
		return -EFAULT;
	if (n < SIM_NR_MSRS)
		return -E2BIG;
	return sim__copy_to_user((uintptr_t)arg + sizeof(head), sim__msr_list,
				 sizeof(sim__msr_list));
}

/* kvm_x86_dev_get_attr(), sev_dev_get_attr() */
static int dev_attr(const struct sim_shared *sh, void *arg, bool get)
{
	struct kvm_device_attr a;
	uint64_t val;

	if (sim__copy_from_user(&a, (uintptr_t)arg, sizeof(a)))
		return -EFAULT;
	if (a.group == KVM_X86_GRP_SYSTEM && a.attr == 0) {
		val = 0x7;	/* KVM_X86_XCOMP_GUEST_SUPP: x87, SSE, AVX */
	} else if (a.group == KVM_X86_GRP_SEV && sh->cfg.vm_types &&
		   a.attr == KVM_X86_SEV_VMSA_FEATURES) {
		val = sim__supported_vmsa_features(sh);
	} else {
		/* no dev_get_attr hook before v6.10; other groups or attrs */
		return -ENXIO;
	}
	if (get && sim__copy_to_user(a.addr, &val, sizeof(val)))
		return -EFAULT;
	return 0;
}

/* kvm_create_vm() into a free slot, table_lock held */
static int create_vm_locked(struct sevsim *sim, uint32_t type)
{
	struct sim_shared *sh = sim->sh;

	for (uint32_t i = 0; i < SIM_MAX_VMS; i++) {
		struct sim_vm *vm = &sh->vms[i];
		uint32_t gen = __atomic_load_n(&vm->gen, __ATOMIC_ACQUIRE);
		dev_t dev;
		ino_t ino;
		int fd, r;

		if (gen & 1)
			continue;
		/* gen is read without locks: it is the one field not reset */
		memset(&vm->lock, 0, offsetof(struct sim_vm, vcpus) - offsetof(struct sim_vm, lock));
		r = sim__mutex_init(&vm->lock);
		if (r)
			return r;
		vm->creator = getpid();
		vm->vm_type = type;
		vm->sev.owner = -1;
		/* svm_vm_init(): the SEV types wait for KVM_SEV_INIT2 */
		vm->sev.need_init = type == KVM_X86_SEV_VM || type == KVM_X86_SEV_ES_VM;
		fd = sim__fd_new(sim, SIM_FD_VM, i, 0, gen + 1, O_RDWR | O_CLOEXEC, &dev, &ino);
		if (fd < 0)
			return fd;
		sim__id_set(&vm->dev, &vm->ino, dev, ino);
		__atomic_store_n(&vm->gen, gen + 1, __ATOMIC_RELEASE);
		return fd;
	}
	return -ENOMEM;
}

static int create_vm(struct sevsim *sim, unsigned long type)
{
	struct sim_shared *sh = sim->sh;
	int fd;

	/* kvm_arch_init_vm(): a type KVM does not offer */
	if (type > 31 || !(vm_types(sh) & (1ull << type)))
		return -EINVAL;
	for (int attempt = 0; attempt < 2; attempt++) {
		sim__lock(&sh->table_lock);
		fd = create_vm_locked(sim, (uint32_t)type);
		sim__unlock(&sh->table_lock);
		if (fd != -ENOMEM)
			return fd;
		/* every slot taken: some may belong to VMs nobody holds any more */
		sim__gc(sim);
	}
	return fd;
}

/* kvm_dev_ioctl() and kvm_arch_dev_ioctl() */
int sim__kvm_ioctl(struct sevsim *sim, unsigned long req, void *arg)
{
	switch (req) {
	case KVM_GET_API_VERSION:
		return arg ? -EINVAL : KVM_API_VERSION;
	case KVM_CREATE_VM:
		return create_vm(sim, (unsigned long)arg);
	case KVM_CHECK_EXTENSION:
		return check_extension(sim->sh, (long)arg);
	case KVM_GET_VCPU_MMAP_SIZE:
		return arg ? -EINVAL : SIM_FD_SIZE;
	case KVM_GET_MSR_INDEX_LIST:
		return get_msr_index_list(arg);
	case KVM_GET_SUPPORTED_CPUID:
		return get_supported_cpuid(sim->sh, arg);
	case KVM_HAS_DEVICE_ATTR:
		return dev_attr(sim->sh, arg, false);
	case KVM_GET_DEVICE_ATTR:
		return dev_attr(sim->sh, arg, true);
	default:
		return -EINVAL;
	}
}

/* ---- VM fds --------------------------------------------------------------------- */

static void vcpu_init(struct sim_vcpu *v, uint32_t id, dev_t dev, ino_t ino)
{
	/* dev and ino are not reset: a stale fd's lookup may read them any time */
	memset(&v->mutex, 0, sizeof(*v) - offsetof(struct sim_vcpu, mutex));
	sim__mutex_init(&v->mutex);
	v->id = id;
	sim__id_set(&v->dev, &v->ino, dev, ino);
	v->tsc_khz = DEFAULT_TSC_KHZ;
	v->mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
}

/*
 * kvm_vm_ioctl_create_vcpu(): created_vcpus is counted under kvm->lock, the
 * vCPU built without it, and made online under it again: between the two a
 * MOVE sees a creation in flight (-EBUSY).
 */
static int create_vcpu(struct sevsim *sim, struct sim_vm *vm, unsigned long id)
{
	uint32_t vmi = sim__vm_index(sim->sh, vm), idx, gen;
	dev_t dev;
	ino_t ino;
	int fd, r;

	if (id >= KVM_MAX_VCPU_IDS)
		return -EINVAL;
	sim__lock(&vm->lock);
	if (vm->created_vcpus >= SIM_MAX_VCPUS) {
		sim__unlock(&vm->lock);
		return -EINVAL;
	}
	vm->created_vcpus++;
	gen = __atomic_load_n(&vm->gen, __ATOMIC_ACQUIRE);
	sim__unlock(&vm->lock);

	fd = sim__fd_new(sim, SIM_FD_NONE, 0, 0, 0, O_RDWR | O_CLOEXEC, &dev, &ino);
	sim__lock(&vm->lock);
	r = fd;
	if (fd < 0)
		goto undo;
	idx = __atomic_load_n(&vm->online_vcpus, __ATOMIC_ACQUIRE);
	r = -EEXIST;
	for (uint32_t i = 0; i < idx; i++)
		if (vm->vcpus[i].id == id)
			goto undo;
	vcpu_init(&vm->vcpus[idx], (uint32_t)id, dev, ino);
	r = sim__fd_set_token(sim, fd, SIM_FD_VCPU, vmi, idx, gen);
	if (r)
		goto undo;
	__atomic_store_n(&vm->online_vcpus, idx + 1, __ATOMIC_RELEASE);
	sim__unlock(&vm->lock);
	return fd;
undo:
	vm->created_vcpus--;
	sim__unlock(&vm->lock);
	if (fd >= 0)
		close(fd);
	return r;
}

/* kvm_vm_ioctl_enable_cap(): x86 caps take no flags */
static int enable_cap(struct sevsim *sim, struct sim_vm *vm, void *arg)
{
	struct kvm_enable_cap cap;

	if (sim__copy_from_user(&cap, (uintptr_t)arg, sizeof(cap)))
		return -EFAULT;
	if (cap.flags)
		return -EINVAL;
	switch (cap.cap) {
	case KVM_CAP_VM_MOVE_ENC_CONTEXT_FROM:
		return sim__move_enc_context_from(sim, vm, (unsigned int)cap.args[0]);
	case KVM_CAP_VM_COPY_ENC_CONTEXT_FROM:
		return sim__copy_enc_context_from(sim, vm, (unsigned int)cap.args[0]);
	default:
		return -EINVAL;
	}
}

/* kvm_set_memory_region(), checks a VMM meets; the slots are only recorded */
static int check_memslot(const struct sim_vm *vm, const struct kvm_userspace_memory_region *m)
{
	uint32_t as_id = m->slot >> 16, id = (uint16_t)m->slot;

	if (m->flags & ~(uint32_t)(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY))
		return -EINVAL;
	/* kvm_arch_has_readonly_mem(): not with protected state */
	if ((m->flags & KVM_MEM_READONLY) && sim__has_protected_state(vm))
		return -EINVAL;
	if (as_id || id >= SIM_MAX_MEMSLOTS)
		return -EINVAL;
	if ((m->memory_size | m->guest_phys_addr) & (SIM_PAGE_SIZE - 1))
		return -EINVAL;
	if (m->memory_size && (m->userspace_addr & (SIM_PAGE_SIZE - 1)))
		return -EINVAL;
	if (m->guest_phys_addr + m->memory_size < m->guest_phys_addr)
		return -EINVAL;
	return 0;
}

static int set_memslot(struct sim_vm *vm, void *arg)
{
	struct kvm_userspace_memory_region m;
	struct sim_memslot *s;
	int r;

	if (sim__copy_from_user(&m, (uintptr_t)arg, sizeof(m)))
		return -EFAULT;
	r = check_memslot(vm, &m);
	if (r)
		return r;
	sim__lock(&vm->lock);
	s = &vm->memslots[(uint16_t)m.slot];
	for (int i = 0; i < SIM_MAX_MEMSLOTS && m.memory_size; i++) {
		const struct sim_memslot *o = &vm->memslots[i];

		if (o == s || !o->used)
			continue;
		if (m.guest_phys_addr < o->gpa + o->size && o->gpa < m.guest_phys_addr + m.memory_size) {
			sim__unlock(&vm->lock);
			return -EEXIST;
		}
	}
	s->used = m.memory_size != 0;
	s->slot = m.slot;
	s->flags = m.flags;
	s->gpa = m.guest_phys_addr;
	s->size = m.memory_size;
	s->uaddr = m.userspace_addr;
	sim__unlock(&vm->lock);
	return 0;
}

static int create_irqchip(struct sim_vm *vm)
{
	int r = 0;

	sim__lock(&vm->lock);
	if (vm->irqchip)
		r = -EEXIST;
	else if (vm->created_vcpus)
		r = -EINVAL;
	else
		vm->irqchip = true;
	sim__unlock(&vm->lock);
	return r;
}

/* KVM_GET_IRQCHIP / KVM_SET_IRQCHIP: copied in, then -ENXIO without one, -EINVAL for a bad chip */
static int irqchip_io(struct sim_vm *vm, void *arg, bool get)
{
	struct kvm_irqchip c;
	int r = 0;

	if (sim__copy_from_user(&c, (uintptr_t)arg, sizeof(c)))
		return -EFAULT;
	sim__lock(&vm->lock);
	if (!vm->irqchip)
		r = -ENXIO;
	else if (c.chip_id > KVM_IRQCHIP_IOAPIC)
		r = -EINVAL;
	else if (get)
		memcpy(&c.chip, vm->irqchip_state[c.chip_id], sizeof(c.chip));
	else
		memcpy(vm->irqchip_state[c.chip_id], &c.chip, sizeof(c.chip));
	sim__unlock(&vm->lock);
	if (!r && get)
		r = sim__copy_to_user((uintptr_t)arg, &c, sizeof(c));
	return r;
}

static int clock_io(struct sim_vm *vm, void *arg, bool get)
{
	struct kvm_clock_data c;

	if (get) {
		sim__lock(&vm->lock);
		c = vm->clock;
		sim__unlock(&vm->lock);
		return sim__copy_to_user((uintptr_t)arg, &c, sizeof(c));
	}
	if (sim__copy_from_user(&c, (uintptr_t)arg, sizeof(c)))
		return -EFAULT;
	if (c.flags & ~(uint32_t)CLOCK_VALID_FLAGS)
		return -EINVAL;
	sim__lock(&vm->lock);
	vm->clock = c;
	vm->clock.flags = 0;
	sim__unlock(&vm->lock);
	return 0;
}

/* kvm_vm_ioctl() */
int sim__vm_ioctl(struct sevsim *sim, uint32_t vmi, unsigned long req, void *arg)
{
	struct sim_vm *vm = &sim->sh->vms[vmi];

	/* kvm->mm != current->mm; v5.16..v6.16: kvm->vm_dead */
	if (vm->creator != getpid())
		return -EIO;
	if (sim->sh->cfg.dead_vm_rejects_ioctls && __atomic_load_n(&vm->dead, __ATOMIC_ACQUIRE))
		return -EIO;
	switch (req) {
	case KVM_CREATE_VCPU:
		return create_vcpu(sim, vm, (unsigned long)arg);
	case KVM_CHECK_EXTENSION:
		return check_extension(sim->sh, (long)arg);
	case KVM_ENABLE_CAP:
		return enable_cap(sim, vm, arg);
	case KVM_SET_USER_MEMORY_REGION:
		return set_memslot(vm, arg);
	case KVM_MEMORY_ENCRYPT_OP:
		return sim__mem_enc_op(sim, vm, arg);
	case KVM_MEMORY_ENCRYPT_REG_REGION:
		return sim__mem_enc_reg_region(sim, vm, arg);
	case KVM_MEMORY_ENCRYPT_UNREG_REGION:
		return sim__mem_enc_unreg_region(sim, vm, arg);
	case KVM_CREATE_IRQCHIP:
		return create_irqchip(vm);
	case KVM_GET_IRQCHIP:
		return irqchip_io(vm, arg, true);
	case KVM_SET_IRQCHIP:
		return irqchip_io(vm, arg, false);
	case KVM_GET_CLOCK:
		return clock_io(vm, arg, true);
	case KVM_SET_CLOCK:
		return clock_io(vm, arg, false);
	case KVM_GET_PIT2:
		/* no in-kernel PIT */
		return -ENXIO;
	default:
		return -ENOTTY;
	}
}
