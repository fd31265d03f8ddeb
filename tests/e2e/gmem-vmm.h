/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The old VMM of the guest_memfd handoff tests (test-gmem-handoff and
 * tests/fault/test-fault-gmem): its guest's RAM is a guest_memfd created
 * with SEVM_GMEM_MMAP | SEVM_GMEM_INIT_SHARED and bound as slot 0, holding
 * the program of gmem-guest.h; vCPU 0 starts it in real mode.
 */
#ifndef GMEM_VMM_H
#define GMEM_VMM_H

#include "gmem-guest.h"

struct gmem_vmm {
	int kvm, vm, gmem, vcpu;
	void *mem;
	struct kvm_run *run;
};

/* Exit with TU_SKIP, saying why, when KVM cannot make a mappable, shared guest_memfd. */
void gmem_require_shared(void);
/* vCPU 0 of the VM, in real mode at GMEM_CODE_GPA (the program copied there already). */
void gmem_vmm_vcpu(struct gmem_vmm *o);
/* The whole guest, ready to run. */
void gmem_vmm_boot(struct gmem_vmm *o);
void gmem_vmm_shut(struct gmem_vmm *o);

#endif
