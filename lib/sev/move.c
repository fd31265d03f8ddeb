/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * MOVE and COPY of an SEV encryption context between VMs.  The kernel says
 * EINVAL for half a dozen different refusals (sev_vm_move_enc_context_from
 * step 4, sev_check_source_vcpus): after a refusal the library asks the VMs
 * what it can, without touching the success path, and names the cause.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "../abi/compat.h"
#include "../core/error.h"
#include "../core/seam.h"
#include "cmd.h"

static bool same_file(int a, int b)
{
	return a == b || syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, a, b) == 0;
}

static const char *fd_what(int fd, char *buf, size_t len)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, len - 1);
	if (n < 0)
		return "not open";
	buf[n] = '\0';
	return buf;
}

static int explain_einval(int err, const char *op, int dst, int src, bool move)
{
	long cap = move ? KVM_CAP_VM_MOVE_ENC_CONTEXT_FROM : KVM_CAP_VM_COPY_ENC_CONTEXT_FROM;
	enum sevm__sev_answer d, s;

	if (same_file(dst, src))
		return sevm__fail(err, "%s: source and destination are the same VM", op);
	if (sevm__ioctl_quiet(dst, KVM_CHECK_EXTENSION, (void *)cap) <= 0)
		return sevm__fail(err, "%s: the kernel lacks the capability", op);
	/* sev_mem_enc_ioctl(): a NULL argument is the documented "is SEV enabled" probe. */
	if (sevm__ioctl_quiet(dst, KVM_MEMORY_ENCRYPT_OP, NULL) == -ENOTTY)
		return sevm__fail(err, "%s: SEV is not enabled in this KVM (no SEV hardware, or "
				  "kvm_amd.sev=0), so it refuses every move and mirror", op);
	d = sevm__sev_guest(dst, NULL, NULL);
	if (d == SEVM_IS_SEV)
		return sevm__fail(err, "%s: the destination is already an SEV guest (or a mirror)", op);
	s = sevm__sev_guest(src, NULL, NULL);
	if (s == SEVM_NOT_SEV)
		return sevm__fail(err, "%s: the source is not an SEV guest (plain VM, SEV never "
				  "initialised, or its context already moved away)", op);
	if (move)
		return sevm__fail(err, "%s: the source%s is not an SEV guest, the VM types differ "
				  "(KVM_CREATE_VM type; legacy-init VMs are the default type), or, "
				  "for SEV-ES, the vCPU counts differ or a source vCPU has no VMSA "
				  "(LAUNCH_UPDATE_VMSA)", op, s == SEVM_NO_ANSWER ? " (another process's VM, or a dead one)" : "");
	return sevm__fail(err, "%s: the source%s is not an SEV guest or is itself a mirror, or "
			  "the destination already has vCPUs", op,
			  s == SEVM_NO_ANSWER ? " (another process's VM, or a dead one)" : "");
}

static int enc_context_from(int dst, int src, bool move)
{
	struct kvm_enable_cap c = {
		.cap = move ? KVM_CAP_VM_MOVE_ENC_CONTEXT_FROM : KVM_CAP_VM_COPY_ENC_CONTEXT_FROM,
		.args[0] = (uint64_t)src,
	};
	const char *op = move ? "SEV move (KVM_CAP_VM_MOVE_ENC_CONTEXT_FROM)" :
				"SEV mirror (KVM_CAP_VM_COPY_ENC_CONTEXT_FROM)";
	char what[128];
	int err;

	if (dst < 0 || src < 0)
		return sevm__fail(-EBADF, "%s: VM fds %d and %d", op, dst, src);
	err = sevm__ioctl_quiet(dst, KVM_ENABLE_CAP, &c);
	switch (err) {
	case 0:
		return 0;
	case -EBADF:
		if (fcntl(dst, F_GETFD) < 0)
			return sevm__fail(err, "%s: destination fd %d is not open", op, dst);
		return sevm__fail(err, "%s: source fd %d is not a KVM VM fd (%s)", op, src,
				  fd_what(src, what, sizeof(what)));
	case -EBUSY:
		/* sev_lock_two_vms(); for MOVE also sev_check_source_vcpus() and the misc cgroup. */
		return sevm__fail(err, move ? "%s: a migration is already in progress on one of the "
				  "VMs, a vCPU of either is being created, or this process's misc "
				  "cgroup has no SEV ASID to spare" :
				  "%s: a migration is already in progress on one of the VMs", op);
	case -EIO:
		return sevm__fail(err, "%s: the destination VM belongs to another process or is "
				  "dead (a VM fd works only in the process that created it)", op);
	case -EINVAL:
		return explain_einval(err, op, dst, src, move);
	default:
		return sevm__fail(err, "%s", op);
	}
}

int sevm_sev_move(int dst_vm_fd, int src_vm_fd)
{
	return enc_context_from(dst_vm_fd, src_vm_fd, true);
}

int sevm_sev_mirror(int dst_vm_fd, int src_vm_fd)
{
	return enc_context_from(dst_vm_fd, src_vm_fd, false);
}
