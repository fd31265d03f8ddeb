/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <linux/kvm.h>

#include "../core/error.h"
#include "../core/seam.h"

/*
 * KVM completes an instruction whose port-I/O or MMIO exit userspace handled
 * only on the next KVM_RUN.  With immediate_exit set that entry finishes the
 * instruction and returns EINTR before running the guest further, so the
 * state captured afterwards is at an instruction boundary.
 */
int sevm_vcpu_quiesce(int vcpu_fd, void *run)
{
	struct kvm_run *r = run;
	int err;

	if (vcpu_fd < 0 || !run)
		return sevm__fail(-EINVAL, "sevm_vcpu_quiesce: vCPU fd %d, run %p", vcpu_fd, run);
	r->immediate_exit = 1;
	err = sevm__ioctl_quiet(vcpu_fd, KVM_RUN, NULL);
	r->immediate_exit = 0;
	if (err == -EINTR)
		return 0;
	if (err < 0)
		return sevm__fail(err, "KVM_RUN with immediate_exit");
	return sevm__fail(-EAGAIN, "KVM_RUN with immediate_exit returned exit reason %u",
			  r->exit_reason);
}
