/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <linux/kvm.h>

#include "../core/error.h"
#include "../core/seam.h"
#include "state.h"

/*
 * KVM completes an instruction whose port-I/O or MMIO exit userspace handled
 * only on the next KVM_RUN.  With immediate_exit set that entry finishes the
 * instruction and returns EINTR before running the guest further, so the
 * state captured afterwards is at an instruction boundary.  On its way out
 * KVM_RUN stores the kvm_valid_regs fields into run->s, even then.
 */
static int run_once(int vcpu_fd, struct kvm_run *r, uint64_t valid)
{
	uint64_t was = r->kvm_valid_regs;
	int err;

	r->kvm_valid_regs = valid;
	r->immediate_exit = 1;
	err = sevm__ioctl_quiet(vcpu_fd, KVM_RUN, NULL);
	r->immediate_exit = 0;
	r->kvm_valid_regs = was;
	if (err == -EINTR)
		return 0;
	if (err < 0)
		return sevm__fail(err, "KVM_RUN with immediate_exit");
	return sevm__fail(-EAGAIN, "KVM_RUN with immediate_exit returned exit reason %u",
			  r->exit_reason);
}

int sevm_vcpu_quiesce(int vcpu_fd, void *run)
{
	struct kvm_run *r = run;

	if (vcpu_fd < 0 || !run)
		return sevm__fail(-EINVAL, "sevm_vcpu_quiesce: vCPU fd %d, run %p", vcpu_fd, run);
	return run_once(vcpu_fd, r, r->kvm_valid_regs);
}

/* No CR0 has every bit set (its reserved bits read as 0): a stored one replaces it. */
#define UNSTORED_CR0 UINT64_MAX

int sevm__vcpu_quiesce_sync(int vcpu_fd, struct kvm_run *run, struct kvm_sync_regs *sync,
			    bool *synced)
{
	int err;

	run->s.regs.sregs.cr0 = UNSTORED_CR0;
	err = run_once(vcpu_fd, run, SEVM__SYNC_FIELDS);
	*synced = !err && run->s.regs.sregs.cr0 != UNSTORED_CR0;
	if (*synced)
		memcpy(sync, &run->s.regs, sizeof(*sync));
	return err;
}
