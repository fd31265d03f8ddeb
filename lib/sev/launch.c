/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The launch, status, debug and attestation commands: thin, checked, explained. */
#include <errno.h>
#include <string.h>

#include "../abi/compat.h"
#include "../core/error.h"
#include "../core/opts.h"
#include "cmd.h"

int sevm_sev_launch_start(int vm_fd, int sev_fd, struct sevm_sev_launch *launch,
			  uint32_t *fw_error)
{
	struct sevm_sev_launch l = { 0 };
	struct sevm_abi_sev_launch_start a;
	int err = sevm__fw_zero(fw_error);

	if (!err)
		err = SEVM_OPTS_CHECK(launch, "sevm_sev_launch");
	if (err)
		return err;
	/* The kernel saves this number for the VM's life; fd 0 by accident would be worse. */
	if (sev_fd < 0)
		return sevm__fail(-EBADF, "SEV LAUNCH_START: sev_fd %d", sev_fd);
	SEVM_OPTS_IN(l, launch);
	a = (struct sevm_abi_sev_launch_start){
		.handle = l.handle, .policy = l.policy,
		.dh_uaddr = (uintptr_t)l.dh_cert, .dh_len = l.dh_cert_len,
		.session_uaddr = (uintptr_t)l.session, .session_len = l.session_len,
	};
	err = sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_LAUNCH_START, &a, sev_fd, fw_error);
	if (!err)
		launch->handle = a.handle;
	return err;
}

int sevm_sev_launch_update_data(int vm_fd, void *addr, uint64_t len, uint32_t *fw_error)
{
	struct sevm_abi_sev_launch_update_data a = { .uaddr = (uintptr_t)addr, .len = (uint32_t)len };

	sevm__fw_zero(fw_error);
	if (!addr || !len || len > UINT32_MAX)
		return sevm__fail(-EINVAL, "SEV LAUNCH_UPDATE_DATA of %llu bytes at %p",
				  (unsigned long long)len, addr);
	return sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_LAUNCH_UPDATE_DATA, &a, -1, fw_error);
}

int sevm_sev_launch_update_vmsa(int vm_fd, uint32_t *fw_error)
{
	sevm__fw_zero(fw_error);
	return sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_LAUNCH_UPDATE_VMSA, NULL, -1, fw_error);
}

/*
 * LAUNCH_MEASURE and GET_ATTESTATION_REPORT answer a zero length with the
 * length they need, -EIO and INVALID_LEN (sev_launch_measure): a caller
 * asking with buf == NULL gets the length and 0.
 */
static int sized(int vm_fd, uint32_t id, void *arg, uint32_t *arg_len, void *buf,
		 uint32_t *len, uint32_t *fw_error)
{
	uint32_t fw = 0;
	int err;

	if (!len || (buf && !*len))
		return sevm__fail(-EINVAL, "SEV %s: no length", id == SEVM_ABI_SEV_LAUNCH_MEASURE ?
				  "LAUNCH_MEASURE" : "GET_ATTESTATION_REPORT");
	*arg_len = buf ? *len : 0;
	err = sevm__sev_cmd(vm_fd, id, arg, -1, &fw);
	if (fw_error)
		*fw_error = fw;
	*len = *arg_len;
	if (!buf && err == -EIO && fw == SEVM_ABI_SEV_RET_INVALID_LEN)
		return 0;
	return err;
}

int sevm_sev_launch_measure(int vm_fd, void *buf, uint32_t *len, uint32_t *fw_error)
{
	struct sevm_abi_sev_launch_measure a = { .uaddr = (uintptr_t)buf };

	sevm__fw_zero(fw_error);
	return sized(vm_fd, SEVM_ABI_SEV_LAUNCH_MEASURE, &a, &a.len, buf, len, fw_error);
}

int sevm_sev_attestation_report(int vm_fd, const uint8_t mnonce[16], void *buf,
				uint32_t *len, uint32_t *fw_error)
{
	struct sevm_abi_sev_attestation_report a = { .uaddr = (uintptr_t)buf };

	sevm__fw_zero(fw_error);
	if (!mnonce)
		return sevm__fail(-EINVAL, "SEV GET_ATTESTATION_REPORT: no nonce");
	memcpy(a.mnonce, mnonce, sizeof(a.mnonce));
	return sized(vm_fd, SEVM_ABI_SEV_GET_ATTESTATION_REPORT, &a, &a.len, buf, len, fw_error);
}

int sevm_sev_launch_secret(int vm_fd, const struct sevm_sev_secret *secret, uint32_t *fw_error)
{
	struct sevm_sev_secret s = { 0 };
	struct sevm_abi_sev_launch_secret a;
	int err = sevm__fw_zero(fw_error);

	if (!err)
		err = SEVM_OPTS_CHECK(secret, "sevm_sev_secret");
	if (err)
		return err;
	SEVM_OPTS_IN(s, secret);
	a = (struct sevm_abi_sev_launch_secret){
		.hdr_uaddr = (uintptr_t)s.hdr, .hdr_len = s.hdr_len,
		.guest_uaddr = (uintptr_t)s.guest_addr, .guest_len = s.guest_len,
		.trans_uaddr = (uintptr_t)s.trans, .trans_len = s.trans_len,
	};
	return sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_LAUNCH_SECRET, &a, -1, fw_error);
}

int sevm_sev_launch_finish(int vm_fd, uint32_t *fw_error)
{
	sevm__fw_zero(fw_error);
	return sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_LAUNCH_FINISH, NULL, -1, fw_error);
}

int sevm_sev_guest_status(int vm_fd, struct sevm_sev_status *status, uint32_t *fw_error)
{
	struct sevm_abi_sev_guest_status a = { 0 };
	struct sevm_sev_status out;
	int err = sevm__fw_zero(fw_error);

	if (!err)
		err = SEVM_OPTS_CHECK(status, "sevm_sev_status");
	if (!err)
		err = sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_GUEST_STATUS, &a, -1, fw_error);
	if (err)
		return err;
	out = (struct sevm_sev_status){ .sz = sizeof(out), .handle = a.handle,
					.policy = a.policy, .state = a.state };
	sevm__report_out(status, &out, sizeof(out));
	return 0;
}

static int dbg(int vm_fd, uint32_t id, const void *src, void *dst, uint32_t len,
	       uint32_t *fw_error)
{
	struct sevm_abi_sev_dbg a = { .src_uaddr = (uintptr_t)src, .dst_uaddr = (uintptr_t)dst,
				      .len = len };

	sevm__fw_zero(fw_error);
	if (!src || !dst || !len)
		return sevm__fail(-EINVAL, "SEV %s: %u bytes from %p to %p",
				  id == SEVM_ABI_SEV_DBG_DECRYPT ? "DBG_DECRYPT" : "DBG_ENCRYPT",
				  len, src, dst);
	return sevm__sev_cmd(vm_fd, id, &a, -1, fw_error);
}

int sevm_sev_dbg_decrypt(int vm_fd, const void *src, void *dst, uint32_t len,
			 uint32_t *fw_error)
{
	return dbg(vm_fd, SEVM_ABI_SEV_DBG_DECRYPT, src, dst, len, fw_error);
}

int sevm_sev_dbg_encrypt(int vm_fd, const void *src, void *dst, uint32_t len,
			 uint32_t *fw_error)
{
	return dbg(vm_fd, SEVM_ABI_SEV_DBG_ENCRYPT, src, dst, len, fw_error);
}
