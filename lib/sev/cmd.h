/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* KVM_MEMORY_ENCRYPT_OP: one place that issues SEV commands and explains their failures. */
#ifndef SEVM_SEV_CMD_H
#define SEVM_SEV_CMD_H

#include <stdint.h>

/*
 * Issue SEV command `id` with data on vm_fd; sev_fd is read by the kernel
 * only at LAUNCH_START and RECEIVE_START (pass -1 elsewhere).  0 or -errno.
 * *fw_error (if not NULL) gets the firmware status: 0 when the firmware was
 * not reached (the kernel refused first).  The message names the command,
 * the firmware status by name, and what the errno means for SEV.
 */
int sevm__sev_cmd(int vm_fd, uint32_t id, void *data, int sev_fd, uint32_t *fw_error);

/*
 * Whether vm_fd holds an SEV context, asked with GUEST_STATUS, which KVM
 * refuses before the firmware: ENOTTY for a VM that is not an SEV guest
 * (never was, or its context moved away), EIO without a firmware status for
 * another process's VM or, before Linux 6.17, a dead one.
 */
enum sevm__sev_answer { SEVM_IS_SEV, SEVM_NOT_SEV, SEVM_NO_ANSWER, SEVM_SEV_UNKNOWN };

/*
 * SEVM_SEV_UNKNOWN: GUEST_STATUS failed otherwise (ENOMEM, EFAULT, ...), so
 * nothing is known; *err (if not NULL) gets that errno, recorded.  *fw (if
 * not NULL): the firmware's status when it answered with one.
 */
enum sevm__sev_answer sevm__sev_guest(int vm_fd, int *err, uint32_t *fw);

/* 0 if KVM handles SEND/RECEIVE_UPDATE_VMSA on vm_fd, else -EOPNOTSUPP saying so. */
int sevm__sev_vmsa_supported(int vm_fd);

/* Every wrapper starts with the firmware status "not reached". */
static inline int sevm__fw_zero(uint32_t *fw_error)
{
	if (fw_error)
		*fw_error = 0;
	return 0;
}

#endif
