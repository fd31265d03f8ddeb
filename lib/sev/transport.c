/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SEND_* and RECEIVE_*: the firmware's transport channel between two
 * platforms (sev-kernel-rules.md §4.13-4.17).  Arguments are checked here
 * first, because KVM reads some mistakes as requests: a zero header or
 * transport length asks for the lengths instead of sending.
 */
#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../abi/compat.h"
#include "../core/error.h"
#include "../core/opts.h"
#include "../core/seam.h"
#include "cmd.h"

#define PAGE 4096u

_Static_assert(SEVM_SEV_PACKET_HDR_LEN == SEVM_ABI_SEV_PACKET_HDR_SIZE, "packet header");
_Static_assert(SEVM_SEV_SESSION_LEN == SEVM_ABI_SEV_SESSION_SIZE, "session blob");
_Static_assert(SEVM_SEV_CERT_LEN == SEVM_ABI_SEV_CERT_SIZE, "certificate");
_Static_assert(SEVM_SEV_CHAIN_LEN == SEVM_ABI_SEV_CERT_CHAIN_SIZE, "chain");

/* The firmware's INVALID_LEN is the answer a length query expects. */
static int query_answered(int err, uint32_t fw)
{
	return err == -EIO && fw == SEVM_ABI_SEV_RET_INVALID_LEN ? 0 : err;
}

int sevm_sev_send_start(int vm_fd, struct sevm_sev_send_start *start, uint32_t *fw_error)
{
	struct sevm_sev_send_start s = { 0 };
	struct sevm_abi_sev_send_start a = { 0 };
	uint32_t fw = 0;
	int err = sevm__fw_zero(fw_error);

	if (!err)
		err = SEVM_OPTS_CHECK(start, "sevm_sev_send_start");
	if (err)
		return err;
	/* Its outputs are its last fields: every caller's struct must reach them. */
	if (start->sz < offsetof(struct sevm_sev_send_start, session_len) + sizeof(uint32_t))
		return sevm__fail(-EINVAL, "sevm_sev_send_start: sz %zu stops before session_len",
				  start->sz);
	SEVM_OPTS_IN(s, start);
	if (!s.session) {
		/* __sev_send_start_query_session_length(): a zeroed struct */
		err = sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_SEND_START, &a, -1, &fw);
		if (fw_error)
			*fw_error = fw;
		if (!err || fw)
			start->session_len = a.session_len;
		return query_answered(err, fw);
	}
	if (!s.pdh || !s.pdh_len || !s.plat_certs || !s.plat_certs_len || !s.amd_certs ||
	    !s.amd_certs_len)
		return sevm__fail(-EINVAL, "SEV SEND_START: the destination's PDH, platform and AMD "
				  "certificates are all needed");
	/* The firmware takes exactly its session size (INVALID_LEN for any other). */
	if (s.session_len < SEVM_SEV_SESSION_LEN)
		return sevm__fail(-ENOSPC, "SEV SEND_START: a session buffer of %u bytes, the "
				  "session is %u", s.session_len, SEVM_SEV_SESSION_LEN);
	a = (struct sevm_abi_sev_send_start){
		.pdh_cert_uaddr = (uintptr_t)s.pdh, .pdh_cert_len = s.pdh_len,
		.plat_certs_uaddr = (uintptr_t)s.plat_certs, .plat_certs_len = s.plat_certs_len,
		.amd_certs_uaddr = (uintptr_t)s.amd_certs, .amd_certs_len = s.amd_certs_len,
		.session_uaddr = (uintptr_t)s.session, .session_len = SEVM_SEV_SESSION_LEN,
	};
	err = sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_SEND_START, &a, -1, &fw);
	if (fw_error)
		*fw_error = fw;
	/* sev_send_start() writes policy and session_len back once the firmware ran */
	if (!err || fw) {
		start->policy = a.policy;
		start->session_len = a.session_len;
	}
	return err;
}

int sevm_sev_send_header_len(int vm_fd, uint32_t *hdr_len, uint32_t *fw_error)
{
	struct sevm_abi_sev_send_update_data a = { 0 };
	uint32_t fw = 0;
	int err;

	sevm__fw_zero(fw_error);
	if (!hdr_len)
		return sevm__fail(-EINVAL, "SEV SEND_UPDATE_DATA length query: no hdr_len");
	/* __sev_send_update_data_query_lengths(): zero lengths ask */
	err = sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_SEND_UPDATE_DATA, &a, -1, &fw);
	if (fw_error)
		*fw_error = fw;
	*hdr_len = a.hdr_len;
	return query_answered(err, fw);
}

/* sev_send_update_data() / sev_receive_update_data(): one page, and no zero length */
static int packet_args(const char *cmd, bool receive, const void *guest, uint32_t len, const void *hdr,
		       uint32_t hdr_len, const void *trans, uint32_t trans_len)
{
	if (!guest || !len || !hdr || !hdr_len || !trans || !trans_len)
		return sevm__fail(-EINVAL, "SEV %s: guest, header and transport buffers and their "
				  "lengths are all needed (KVM takes a zero length as a length query)",
				  cmd);
	if ((uintptr_t)guest % PAGE + len > PAGE)
		return sevm__fail(-EINVAL, "SEV %s of %u bytes at %p: KVM passes at most one page per "
				  "call, and this crosses a page boundary", cmd, len, guest);
	/* The sender's firmware writes len bytes; the receiver's takes exactly as many (§5.4). */
	if (receive ? trans_len != len : trans_len < len)
		return sevm__fail(-EINVAL, "SEV %s: transport buffer of %u bytes for %u of guest "
				  "memory", cmd, trans_len, len);
	return 0;
}

int sevm_sev_send_update_data(int vm_fd, const void *guest, uint32_t len, void *hdr,
			      uint32_t hdr_len, void *trans, uint32_t trans_len,
			      uint32_t *fw_error)
{
	struct sevm_abi_sev_send_update_data a = {
		.hdr_uaddr = (uintptr_t)hdr, .hdr_len = hdr_len,
		.guest_uaddr = (uintptr_t)guest, .guest_len = len,
		.trans_uaddr = (uintptr_t)trans, .trans_len = trans_len,
	};
	int err = sevm__fw_zero(fw_error);

	if (!err)
		err = packet_args("SEND_UPDATE_DATA", false, guest, len, hdr, hdr_len, trans, trans_len);
	return err ? err : sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_SEND_UPDATE_DATA, &a, -1, fw_error);
}

int sevm_sev_receive_update_data(int vm_fd, void *guest, uint32_t len, const void *hdr,
				 uint32_t hdr_len, const void *trans, uint32_t trans_len,
				 uint32_t *fw_error)
{
	struct sevm_abi_sev_receive_update_data a = {
		.hdr_uaddr = (uintptr_t)hdr, .hdr_len = hdr_len,
		.guest_uaddr = (uintptr_t)guest, .guest_len = len,
		.trans_uaddr = (uintptr_t)trans, .trans_len = trans_len,
	};
	int err = sevm__fw_zero(fw_error);

	if (!err)
		err = packet_args("RECEIVE_UPDATE_DATA", true, guest, len, hdr, hdr_len, trans, trans_len);
	return err ? err : sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_RECEIVE_UPDATE_DATA, &a, -1, fw_error);
}

/*
 * Upstream KVM leaves ids 10 and 14 unhandled: -EINVAL before any copy.  A
 * kernel that handles them reads the argument first, so the id with no
 * argument answers something else there (-EFAULT; -ENOTTY off SEV).
 */
int sevm__sev_vmsa_supported(int vm_fd)
{
	struct kvm_sev_cmd probe = { .id = SEVM_ABI_SEV_SEND_UPDATE_VMSA };

	if (sevm__ioctl_quiet(vm_fd, KVM_MEMORY_ENCRYPT_OP, &probe) != -EINVAL)
		return 0;
	return sevm__fail(-EOPNOTSUPP, "this kernel does not implement SEND_UPDATE_VMSA and "
			  "RECEIVE_UPDATE_VMSA (upstream KVM leaves command ids 10 and 14 "
			  "unhandled), so SEV-ES guests cannot be migrated to or from it");
}

static int vmsa_cmd(int vm_fd, uint32_t id, struct sevm_abi_sev_update_vmsa *a,
		    uint32_t *fw_error)
{
	const char *name = id == SEVM_ABI_SEV_SEND_UPDATE_VMSA ? "SEND_UPDATE_VMSA" :
				"RECEIVE_UPDATE_VMSA";
	uint32_t fw = 0;
	int err;

	if (!a->hdr_uaddr || !a->hdr_len || !a->trans_uaddr || a->trans_len != PAGE)
		return sevm__fail(-EINVAL, "SEV %s: a header buffer and a transport buffer of "
				  "exactly 4096 bytes are needed", name);
	err = sevm__sev_cmd(vm_fd, id, a, -1, &fw);
	if (fw_error)
		*fw_error = fw;
	if (err != -EINVAL || fw)
		return err;
	err = sevm__sev_vmsa_supported(vm_fd);
	if (err)
		return sevm__context(err, "SEV %s", name);
	return sevm__fail(-EINVAL, "SEV %s: the kernel refused vCPU %u", name, a->vcpu_id);
}

int sevm_sev_send_update_vmsa(int vm_fd, uint32_t vcpu_id, void *hdr, uint32_t hdr_len,
			      void *trans, uint32_t trans_len, uint32_t *fw_error)
{
	struct sevm_abi_sev_update_vmsa a = {
		.vcpu_id = vcpu_id, .hdr_uaddr = (uintptr_t)hdr, .hdr_len = hdr_len,
		.trans_uaddr = (uintptr_t)trans, .trans_len = trans_len,
	};

	sevm__fw_zero(fw_error);
	return vmsa_cmd(vm_fd, SEVM_ABI_SEV_SEND_UPDATE_VMSA, &a, fw_error);
}

int sevm_sev_receive_update_vmsa(int vm_fd, uint32_t vcpu_id, const void *hdr,
				 uint32_t hdr_len, const void *trans, uint32_t trans_len,
				 uint32_t *fw_error)
{
	struct sevm_abi_sev_update_vmsa a = {
		.vcpu_id = vcpu_id, .hdr_uaddr = (uintptr_t)hdr, .hdr_len = hdr_len,
		.trans_uaddr = (uintptr_t)trans, .trans_len = trans_len,
	};

	sevm__fw_zero(fw_error);
	return vmsa_cmd(vm_fd, SEVM_ABI_SEV_RECEIVE_UPDATE_VMSA, &a, fw_error);
}

int sevm_sev_send_finish(int vm_fd, uint32_t *fw_error)
{
	sevm__fw_zero(fw_error);
	return sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_SEND_FINISH, NULL, -1, fw_error);
}

int sevm_sev_send_cancel(int vm_fd, uint32_t *fw_error)
{
	sevm__fw_zero(fw_error);
	return sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_SEND_CANCEL, NULL, -1, fw_error);
}

int sevm_sev_receive_start(int vm_fd, int sev_fd, struct sevm_sev_receive_start *start,
			   uint32_t *fw_error)
{
	struct sevm_sev_receive_start s = { 0 };
	struct sevm_abi_sev_receive_start a;
	int err = sevm__fw_zero(fw_error);

	if (!err)
		err = SEVM_OPTS_CHECK(start, "sevm_sev_receive_start");
	if (err)
		return err;
	SEVM_OPTS_IN(s, start);
	/* The kernel saves this number for the VM's life, as at LAUNCH_START. */
	if (sev_fd < 0)
		return sevm__fail(-EBADF, "SEV RECEIVE_START: sev_fd %d", sev_fd);
	if (!s.pdh || !s.pdh_len || !s.session || !s.session_len)
		return sevm__fail(-EINVAL, "SEV RECEIVE_START: the source's PDH and session blob "
				  "are needed");
	a = (struct sevm_abi_sev_receive_start){
		.handle = s.handle, .policy = s.policy,
		.pdh_uaddr = (uintptr_t)s.pdh, .pdh_len = s.pdh_len,
		.session_uaddr = (uintptr_t)s.session, .session_len = s.session_len,
	};
	err = sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_RECEIVE_START, &a, sev_fd, fw_error);
	if (!err)
		start->handle = a.handle;
	return err;
}

int sevm_sev_receive_finish(int vm_fd, uint32_t *fw_error)
{
	sevm__fw_zero(fw_error);
	return sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_RECEIVE_FINISH, NULL, -1, fw_error);
}
