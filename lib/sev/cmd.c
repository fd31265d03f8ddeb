/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>

#include "../abi/compat.h"
#include "../core/error.h"
#include "../core/names.h"
#include "../core/seam.h"
#include "cmd.h"

static bool is_init(uint32_t id)
{
	return id == SEVM_ABI_SEV_INIT || id == SEVM_ABI_SEV_ES_INIT || id == SEVM_ABI_SEV_INIT2;
}

/* What an errno from KVM_MEMORY_ENCRYPT_OP means for command id (sev_mem_enc_ioctl and its handlers). */
static const char *meaning(int err, int vm_fd, uint32_t id)
{
	switch (err) {
	case -ENOTTY:
		if (is_init(id))
			return "SEV (or SEV-ES) is not enabled in KVM (kvm_amd.sev, sev_es), or it has "
			       "no ASIDs of that kind";
		if (id == SEVM_ABI_SEV_LAUNCH_UPDATE_VMSA)
			return "the VM is not an SEV-ES guest";
		return "the VM is not an SEV guest (never initialised, or its context was moved "
		       "away), or SEV is disabled in KVM";
	case -EBADF:
		if (fcntl(vm_fd, F_GETFD) < 0)
			return "the VM fd is not open";
		/*
		 * sev_issue_cmd() resolves the fd number saved at LAUNCH_START or
		 * RECEIVE_START in the calling process; MOVE does not carry it, so
		 * after a move it is fd 0.
		 */
		return id == SEVM_ABI_SEV_LAUNCH_START || id == SEVM_ABI_SEV_RECEIVE_START ?
		       "sev_fd is not an open /dev/sev" :
		       "the /dev/sev fd number saved at LAUNCH_START/RECEIVE_START (fd 0 after a "
		       "MOVE) is not /dev/sev in this process";
	case -EPERM:
		return "SNP VMs take only SNP commands";
	case -EINVAL:
		/* sev_receive_update_data() answers a non-SEV VM with -EINVAL, not -ENOTTY */
		if (id == SEVM_ABI_SEV_RECEIVE_UPDATE_DATA)
			return "the VM is not an SEV guest, or a mirror, or an argument is out of "
			       "range";
		return "the VM is a mirror (it runs only LAUNCH_UPDATE_VMSA, GUEST_STATUS and "
		       "DBG_*), or an argument is out of range, or this kernel does not know the "
		       "command";
	case -EIO:
		/* The firmware's own failures carry a status and never get here. */
		return "the VM belongs to another process, or it was the source of a MOVE and is "
		       "dead (kernels before 6.17)";
	case -EBUSY:
		if (is_init(id))
			return "no free ASID of that kind, or the misc cgroup's sev/sev_es limit is "
			       "reached";
		if (id == SEVM_ABI_SEV_LAUNCH_UPDATE_VMSA || id == SEVM_ABI_SEV_LAUNCH_FINISH)
			return "a vCPU is being created";
		return "the SEV firmware is busy or dead";
	case -ENODEV:
		return "no SEV firmware device";
	default:
		return NULL;
	}
}

int sevm__sev_cmd(int vm_fd, uint32_t id, void *data, int sev_fd, uint32_t *fw_error)
{
	struct kvm_sev_cmd c = { .id = id, .data = (uintptr_t)data, .error = 0,
				 .sev_fd = sev_fd < 0 ? 0 : (uint32_t)sev_fd };
	const char *name = sevm__sev_cmd_name(id);
	char num[16];
	int r;

	if (!name) {
		snprintf(num, sizeof(num), "%u", id);
		name = num;
	}
	r = sevm__ioctl_quiet(vm_fd, KVM_MEMORY_ENCRYPT_OP, &c);
	if (fw_error)
		*fw_error = c.error;
	if (r >= 0)
		return r;
	if (c.error) {
		const char *fw = sevm__fw_status_name(c.error);

		return sevm__fail(r, "SEV %s: firmware status 0x%x %s", name, c.error,
				  fw ? fw : "(unknown)");
	}
	if (meaning(r, vm_fd, id))
		return sevm__fail(r, "SEV %s: %s", name, meaning(r, vm_fd, id));
	return sevm__fail(r, "SEV %s", name);
}

enum sevm__sev_answer sevm__sev_guest(int vm_fd, int *err, uint32_t *fw)
{
	struct sevm_abi_sev_guest_status st = { 0 };
	struct kvm_sev_cmd c = { .id = SEVM_ABI_SEV_GUEST_STATUS, .data = (uintptr_t)&st };
	int r = sevm__ioctl_quiet(vm_fd, KVM_MEMORY_ENCRYPT_OP, &c);

	if (fw)
		*fw = r < 0 ? c.error : 0;
	if (r == -ENOTTY)
		return SEVM_NOT_SEV;
	if (r == -EIO && !c.error)
		return SEVM_NO_ANSWER;
	/* A firmware status means KVM took the VM for an SEV guest. */
	if (r >= 0 || c.error)
		return SEVM_IS_SEV;
	r = sevm__fail(r, "SEV GUEST_STATUS, asking whether VM fd %d holds an SEV context", vm_fd);
	if (err)
		*err = r;
	return SEVM_SEV_UNKNOWN;
}
