/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include <sevmigrate.h>

#include "abi/compat.h"
#include "gmem-vmm.h"
#include "testutil.h"

void gmem_require_shared(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm, mask;

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	mask = vm < 0 ? 0 : ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
	close(vm);
	close(kvm);
	if (mask < 0 || (mask & 3) != 3) {
		printf("SKIP: KVM_CAP_GUEST_MEMFD_FLAGS is %d: no mappable, shared guest_memfd "
		       "(GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED, Linux 6.18)\n", mask);
		exit(TU_SKIP);
	}
}

void gmem_vmm_vcpu(struct gmem_vmm *o)
{
	struct kvm_regs regs = { .rip = GMEM_CODE_GPA, .rflags = 2 };
	struct kvm_sregs sregs;

	o->vcpu = gmem_vcpu_create(o->kvm, o->vm, &o->run);
	ck_assert_int_ge(o->vcpu, 0);
	ck_assert_int_eq(ioctl(o->vcpu, KVM_GET_SREGS, &sregs), 0);
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds = sregs.es = sregs.ss = sregs.cs;
	sregs.ds.type = sregs.es.type = sregs.ss.type = 3;
	ck_assert_int_eq(ioctl(o->vcpu, KVM_SET_SREGS, &sregs), 0);
	ck_assert_int_eq(ioctl(o->vcpu, KVM_SET_REGS, &regs), 0);
}

void gmem_vmm_boot(struct gmem_vmm *o)
{
	struct sevm_gmem_slot slot = { .sz = sizeof(slot), .slot = 0, .size = GMEM_RAM_SIZE };

	o->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	o->vm = ioctl(o->kvm, KVM_CREATE_VM, 0);
	ck_assert_int_ge(o->vm, 0);
	o->gmem = sevm_gmem_create(o->vm, GMEM_RAM_SIZE, SEVM_GMEM_MMAP | SEVM_GMEM_INIT_SHARED);
	ck_assert_msg(o->gmem >= 0, "%s", sevm_last_error());
	o->mem = mmap(NULL, GMEM_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, o->gmem, 0);
	ck_assert(o->mem != MAP_FAILED);
	memcpy((uint8_t *)o->mem + GMEM_CODE_GPA, gmem_guest_code, sizeof(gmem_guest_code));
	slot.host_addr = o->mem;
	slot.gmem_fd = o->gmem;
	ck_assert_msg(sevm_gmem_bind(o->vm, &slot) == 0, "%s", sevm_last_error());
	gmem_vmm_vcpu(o);
}

void gmem_vmm_shut(struct gmem_vmm *o)
{
	munmap(o->run, (size_t)ioctl(o->kvm, KVM_GET_VCPU_MMAP_SIZE, 0));
	munmap(o->mem, GMEM_RAM_SIZE);
	close(o->vcpu);
	close(o->gmem);
	close(o->vm);
	close(o->kvm);
}
