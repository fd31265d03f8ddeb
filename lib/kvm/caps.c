/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What this kernel can get and set for a vCPU, asked once per VM: the
 * capabilities on the VM fd (they may differ from /dev/kvm's, e.g. the XSAVE
 * size follows the process's permitted features) and the MSR index list,
 * which only /dev/kvm answers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../abi/compat.h"
#include "../core/error.h"
#include "../core/seam.h"
#include "state.h"

/*
 * KVM_GET_MSRS and KVM_SET_MSRS take fewer than MAX_IO_MSRS (256) entries
 * per call (arch/x86/kvm/x86.c, msr_io); capture reads the list in one call.
 */
#define MAX_MSRS_PER_CALL 255

static int check_extension(int vm_fd, long cap, const char *name)
{
	int r = sevm__ioctl(vm_fd, KVM_CHECK_EXTENSION, (void *)(uintptr_t)cap);

	return r < 0 ? sevm__context(r, "KVM_CAP_%s", name) : r;
}

/*
 * KVM_GET_MSR_INDEX_LIST answers a too-short nmsrs with E2BIG and the count it
 * needs; the loop also covers a list that grows between the two calls.
 */
static int msr_index_list(int kvm_fd, struct sevm__kvm_caps *caps)
{
	struct kvm_msr_list head = { .nmsrs = 0 };
	struct kvm_msr_list *list = NULL;
	int r;

	r = sevm__ioctl_quiet(kvm_fd, KVM_GET_MSR_INDEX_LIST, &head);
	while (r == -E2BIG) {
		uint32_t n = head.nmsrs;

		if (n > MAX_MSRS_PER_CALL) {
			free(list);
			return sevm__fail(-E2BIG, "KVM_GET_MSR_INDEX_LIST lists %u MSRs; "
					  "KVM_GET_MSRS takes at most %u per call", n,
					  MAX_MSRS_PER_CALL);
		}
		free(list);
		list = malloc(sizeof(*list) + (size_t)n * sizeof(list->indices[0]));
		if (!list)
			return sevm__fail(-ENOMEM, "MSR index list of %u", n);
		list->nmsrs = n;
		r = sevm__ioctl_quiet(kvm_fd, KVM_GET_MSR_INDEX_LIST, list);
		head.nmsrs = list->nmsrs;
	}
	if (r < 0) {
		free(list);
		return sevm__fail(r, "KVM_GET_MSR_INDEX_LIST");
	}
	caps->nr_msrs = list ? list->nmsrs : 0;
	caps->msrs = malloc(((size_t)caps->nr_msrs ? caps->nr_msrs : 1) * sizeof(uint32_t));
	if (!caps->msrs) {
		free(list);
		return sevm__fail(-ENOMEM, "MSR index list of %u", caps->nr_msrs);
	}
	if (caps->nr_msrs)
		memcpy(caps->msrs, list->indices, caps->nr_msrs * sizeof(uint32_t));
	free(list);
	return 0;
}

static int probe_vm(int vm_fd, struct sevm__kvm_caps *caps)
{
	int r;

	/* XSAVE2 gives the buffer size (>= 4096); plain XSAVE is the fixed 4 KiB one. */
	r = check_extension(vm_fd, KVM_CAP_XSAVE2, "XSAVE2");
	if (r < 0)
		return r;
	if (r > 0) {
		caps->xsave_size = (uint32_t)r < sizeof(struct kvm_xsave)
				   ? sizeof(struct kvm_xsave) : (uint32_t)r;
	} else {
		r = check_extension(vm_fd, KVM_CAP_XSAVE, "XSAVE");
		if (r < 0)
			return r;
		caps->xsave_size = r > 0 ? sizeof(struct kvm_xsave) : 0;
	}
#define BOOL_CAP(field, cap)						\
	do {								\
		r = check_extension(vm_fd, KVM_CAP_##cap, #cap);	\
		if (r < 0)						\
			return r;					\
		caps->field = r > 0;					\
	} while (0)
	BOOL_CAP(sregs2, SREGS2);
	BOOL_CAP(xcrs, XCRS);
	BOOL_CAP(debugregs, DEBUGREGS);
	BOOL_CAP(vcpu_events, VCPU_EVENTS);
	BOOL_CAP(tsc_control, TSC_CONTROL);
#undef BOOL_CAP
	/* The largest nested state this kernel produces; 0 without nesting. */
	r = check_extension(vm_fd, KVM_CAP_NESTED_STATE, "NESTED_STATE");
	if (r < 0)
		return r;
	caps->nested_size = (uint32_t)r;
	/* Which KVM_SYNC_X86_* fields a KVM_RUN can hand back in struct kvm_run. */
	r = check_extension(vm_fd, KVM_CAP_SYNC_REGS, "SYNC_REGS");
	if (r < 0)
		return r;
	caps->sync_regs = (uint32_t)r;
	return 0;
}

int sevm__kvm_caps_probe(int vm_fd, struct sevm__kvm_caps *caps)
{
	int kvm_fd, r;

	memset(caps, 0, sizeof(*caps));
	r = probe_vm(vm_fd, caps);
	if (r < 0)
		return sevm__context(r, "KVM capabilities");
	kvm_fd = sevm__open("/dev/kvm", O_RDWR);
	if (kvm_fd < 0)
		return sevm__context(kvm_fd, "KVM capabilities");
	r = msr_index_list(kvm_fd, caps);
	sevm__close(kvm_fd);
	if (r < 0)
		return sevm__context(r, "KVM capabilities");
	return 0;
}

void sevm__kvm_caps_free(struct sevm__kvm_caps *caps)
{
	free(caps->msrs);
	memset(caps, 0, sizeof(*caps));
}
