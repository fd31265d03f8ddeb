/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The firmware's remote-migration commands: SEND_START, SEND_UPDATE_DATA /
 * _VMSA, SEND_FINISH, SEND_CANCEL, RECEIVE_START, RECEIVE_UPDATE_DATA /
 * _VMSA, RECEIVE_FINISH (sev-firmware.md §5, §6, §8), each with its checks
 * in FW's order.  The crypto is channel.c's, the certificates cert.c's.
 * Like fw.c, everything here runs under fw_lock and returns an SEV status.
 *
 * Guest memory is read and written in the calling process, as LAUNCH_UPDATE_DATA
 * does: the sender's pages are decrypted with its VEK, the receiver's
 * encrypted with its own.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

#define FLAG_COMPRESSED	1u	/* §5.1 FLAGS bit 0 */

/* ---- SEND_START (§8.1) ---------------------------------------------------- */

/* §9.1 SEV: the receiver's PEK must carry at least the policy's API version */
static bool pek_api_ok(const uint8_t *pek, uint32_t policy)
{
	uint32_t major = (policy >> 16) & 0xff, minor = (policy >> 24) & 0xff;

	return pek[4] > major || (pek[4] == major && pek[5] >= minor);
}

/* Steps 6 and 7: what the policy asks of the receiver */
static uint32_t check_receiver(const struct sim_shared *sh, const struct sim_guest *g,
			       const struct sim_fw_send_start *p)
{
	uint32_t st;

	if (g->policy & SIM_POLICY_SEV) {
		st = sim__chain_platform(sh, p->pdh, p->pdh_len, p->plat, p->plat_len, p->amd,
					 p->amd_len);
		if (st)
			return st;
		if (!pek_api_ok(p->plat, g->policy))
			return SEVM_ABI_SEV_RET_POLICY_FAILURE;
	}
	if (g->policy & SIM_POLICY_DOMAIN)
		return sim__chain_domain(sh, p->pdh, p->pdh_len, p->plat, p->plat_len);
	return SEVM_ABI_SEV_RET_SUCCESS;
}

/* Steps 9 and 10: Z with the receiver's PDH, fresh TEK, TIK, NONCE, WRAP_IV */
static uint32_t open_send_channel(const struct sim_shared *sh, const uint8_t *remote_pdh,
				  uint32_t policy, uint8_t session[SIM_SESSION_LEN],
				  uint8_t tek[16], uint8_t tik[16])
{
	uint8_t z[SIM_P384_BYTES], nonce[16], iv[16];
	uint32_t st = sim__pdh_agree(sh, remote_pdh, z);

	if (st)
		return st;
	if (sim__random(tek, 16) || sim__random(tik, 16) || sim__random(nonce, 16) ||
	    sim__random(iv, 16) ||
	    sim__session_build(z, sizeof(z), nonce, iv, tek, tik, policy, session))
		st = SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	OPENSSL_cleanse(z, sizeof(z));
	return st;
}

uint32_t sim__fw_send_start(struct sim_shared *sh, struct sim_fw_send_start *p)
{
	uint8_t tek[16], tik[16];
	struct sim_guest *g;
	uint32_t st = sim__fw_need_working(sh);

	if (st)
		return st;
	g = sim__fw_guest(sh, p->handle);
	if (!g)
		return SEVM_ABI_SEV_RET_INVALID_GUEST;
	/* step 3, before the state: KVM's session-length query */
	if (p->session_len != SIM_SESSION_LEN) {
		p->session_len = SIM_SESSION_LEN;
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	}
	if (g->state != SEVSIM_GSTATE_RUNNING)
		return SEVM_ABI_SEV_RET_INVALID_GUEST_STATE;
	if (g->policy & SIM_POLICY_NOSEND)
		return SEVM_ABI_SEV_RET_POLICY_FAILURE;
	st = check_receiver(sh, g, p);
	if (st)
		return st;
	if (p->pdh_len != SIM_CERT_LEN)
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	st = open_send_channel(sh, p->pdh, g->policy, p->session, tek, tik);
	if (st)
		return st;
	memcpy(g->tek, tek, sizeof(tek));
	memcpy(g->tik, tik, sizeof(tik));
	OPENSSL_cleanse(tek, sizeof(tek));
	OPENSSL_cleanse(tik, sizeof(tik));
	p->policy = g->policy;
	/* §7.2: RUNNING -> SUPDATE; the ASID need not be active */
	g->state = SEVSIM_GSTATE_SUPDATE;
	return SEVM_ABI_SEV_RET_SUCCESS;
}

/* ---- RECEIVE_START (§8.2) ------------------------------------------------- */

/* Step 6: HANDLE != 0 asks to share that guest's memory key (§9.1 NOKS) */
static uint32_t receive_share(struct sim_shared *sh, const struct sim_fw_receive_start *p,
			      struct sim_guest **share)
{
	*share = NULL;
	if (!p->handle)
		return SEVM_ABI_SEV_RET_SUCCESS;
	*share = sim__fw_guest(sh, p->handle);
	if (!*share)
		return SEVM_ABI_SEV_RET_INVALID_GUEST;
	if (((*share)->policy & SIM_POLICY_NOKS) || (*share)->policy != p->policy)
		return SEVM_ABI_SEV_RET_POLICY_FAILURE;
	return SEVM_ABI_SEV_RET_SUCCESS;
}

uint32_t sim__fw_receive_start(struct sim_shared *sh, struct sim_fw_receive_start *p)
{
	uint8_t z[SIM_P384_BYTES], tek[16], tik[16];
	struct sim_guest *share = NULL, *g;
	uint32_t st = sim__fw_need_init_or_working(sh);

	if (st)
		return st;
	if (p->session_len != SIM_SESSION_LEN || p->pdh_len != SIM_CERT_LEN)
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	/* step 4: no chain of the sender is checked, only its PDH's sanity (§17.7) */
	st = sim__pdh_agree(sh, p->pdh, z);
	if (!st)
		st = sim__session_open(z, sizeof(z), p->session, p->policy, tek, tik);
	OPENSSL_cleanse(z, sizeof(z));
	if (!st)
		st = sim__fw_check_policy(sh, p->policy);
	if (!st)
		st = receive_share(sh, p, &share);
	if (!st) {
		g = sim__fw_guest_slot(sh);
		if (!g)
			st = SEVM_ABI_SEV_RET_RESOURCE_LIMIT;
		else if ((p->policy & SIM_POLICY_ES) && !sh->fw.es_ready)
			st = SEVM_ABI_SEV_RET_UNSUPPORTED;
		else
			st = sim__fw_guest_open(sh, g, share, p->policy, SEVSIM_GSTATE_RUPDATE,
						tek, tik);
		/* the handle goes back on success only (§7.5) */
		if (!st)
			p->handle = g->handle;
	}
	OPENSSL_cleanse(tek, sizeof(tek));
	OPENSSL_cleanse(tik, sizeof(tik));
	return st;
}

/* ---- SEND_UPDATE_* (§5.3) ----------------------------------------------- */

/* Steps 3 - 6 of §5.3 and 2 - 5 of §5.4: handle, state, VMSA needs ES, ASID */
static uint32_t packet_gate(struct sim_shared *sh, const struct sim_fw_packet *p,
			    uint32_t state, struct sim_guest **g)
{
	*g = sim__fw_guest(sh, p->handle);
	if (!*g)
		return SEVM_ABI_SEV_RET_INVALID_GUEST;
	if ((*g)->state != state)
		return SEVM_ABI_SEV_RET_INVALID_GUEST_STATE;
	if (p->vmsa && !((*g)->policy & SIM_POLICY_ES))
		return SEVM_ABI_SEV_RET_UNSUPPORTED;
	if (!(*g)->asid)
		return SEVM_ABI_SEV_RET_INACTIVE;
	return SEVM_ABI_SEV_RET_SUCCESS;
}

/* The plaintext the packet carries: the VMSA page, or guest memory decrypted */
static uint32_t send_plaintext(const struct sim_guest *g, const struct sim_fw_packet *p,
			       uint8_t *plain)
{
	if (p->vmsa) {
		memcpy(plain, p->page, p->guest_len);
		return SEVM_ABI_SEV_RET_SUCCESS;
	}
	if (sim__copy_from_user(plain, p->guest_addr, p->guest_len))
		return SEVM_ABI_SEV_RET_INVALID_ADDRESS;
	return sim__mem_crypt(g->vek, false, p->guest_addr, plain, p->guest_len) ?
	       SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM : SEVM_ABI_SEV_RET_SUCCESS;
}

uint32_t sim__fw_send_update(struct sim_shared *sh, struct sim_fw_packet *p)
{
	struct sim_guest *g;
	uint8_t *plain;
	uint32_t st = sim__fw_need_working(sh);

	if (st)
		return st;
	/* step 2, before the handle: KVM's header-length query */
	if (p->hdr_len < SIM_HDR_LEN) {
		p->hdr_len = SIM_HDR_LEN;
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	}
	st = packet_gate(sh, p, SEVSIM_GSTATE_SUPDATE, &g);
	if (st)
		return st;
	if (!p->guest_len || p->guest_len > SIM_PACKET_MAX || p->guest_len % 16 ||
	    !p->trans_len || p->trans_len < p->guest_len)
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	if (p->guest_addr % 16)
		return SEVM_ABI_SEV_RET_INVALID_ADDRESS;
	/* step 9: only a VMSA the firmware made (LAUNCH_ or RECEIVE_UPDATE_VMSA) passes */
	if (p->vmsa && !p->vmsa_known)
		return SEVM_ABI_SEV_RET_INVALID_PARAM;
	plain = malloc(p->guest_len);
	if (!plain)
		return SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	st = send_plaintext(g, p, plain);
	if (!st && sim__packet_seal(g->tek, g->tik, plain, p->guest_len, p->hdr, p->trans))
		st = SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	OPENSSL_cleanse(plain, p->guest_len);
	free(plain);
	if (!st)
		p->hdr_len = SIM_HDR_LEN;
	return st;
}

/* ---- RECEIVE_UPDATE_* (§5.4) ---------------------------------------------- */

/* Step 9's write: into the VMSA page, or into guest memory under this guest's VEK */
static uint32_t receive_plaintext(const struct sim_guest *g, const struct sim_fw_packet *p,
				  uint8_t *plain)
{
	if (p->vmsa) {
		memcpy(p->page, plain, p->guest_len);
		return SEVM_ABI_SEV_RET_SUCCESS;
	}
	if (sim__mem_crypt(g->vek, true, p->guest_addr, plain, p->guest_len))
		return SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	return sim__copy_to_user(p->guest_addr, plain, p->guest_len) ?
	       SEVM_ABI_SEV_RET_INVALID_ADDRESS : SEVM_ABI_SEV_RET_SUCCESS;
}

uint32_t sim__fw_receive_update(struct sim_shared *sh, struct sim_fw_packet *p)
{
	struct sim_guest *g;
	uint32_t flags, st = sim__fw_need_working(sh);
	uint8_t *plain;

	if (st)
		return st;
	st = packet_gate(sh, p, SEVSIM_GSTATE_RUPDATE, &g);
	if (st)
		return st;
	/* step 6: the buffer is input-only, no length goes back */
	if (!p->trans_len || p->trans_len > SIM_PACKET_MAX || p->guest_len != p->trans_len ||
	    p->guest_len % 16 || p->hdr_len < SIM_HDR_LEN)
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	if (p->guest_addr % 16)
		return SEVM_ABI_SEV_RET_INVALID_ADDRESS;
	memcpy(&flags, p->hdr, sizeof(flags));
	if (flags & FLAG_COMPRESSED)
		return SEVM_ABI_SEV_RET_UNSUPPORTED;
	plain = malloc(p->guest_len);
	if (!plain)
		return SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	/* step 9: the MAC before anything is decrypted or written */
	st = sim__packet_open(g->tek, g->tik, p->hdr, p->trans, p->guest_len, plain);
	if (!st)
		st = receive_plaintext(g, p, plain);
	OPENSSL_cleanse(plain, p->guest_len);
	free(plain);
	return st;
}

/* ---- SEND_FINISH, SEND_CANCEL, RECEIVE_FINISH (§6) ------------------------ */

/* WORKING, handle, state; then the channel keys are zeroed and the state moves */
static uint32_t channel_close(struct sim_shared *sh, uint32_t handle, uint32_t from,
			      uint32_t to)
{
	struct sim_guest *g;
	uint32_t st = sim__fw_guest_gate(sh, handle, from, &g);

	if (st)
		return st;
	OPENSSL_cleanse(g->tek, sizeof(g->tek));
	OPENSSL_cleanse(g->tik, sizeof(g->tik));
	g->state = to;
	return SEVM_ABI_SEV_RET_SUCCESS;
}

uint32_t sim__fw_send_finish(struct sim_shared *sh, uint32_t handle)
{
	return channel_close(sh, handle, SEVSIM_GSTATE_SUPDATE, SEVSIM_GSTATE_SENT);
}

/* RUNNING again: a new SEND_START may follow */
uint32_t sim__fw_send_cancel(struct sim_shared *sh, uint32_t handle)
{
	return channel_close(sh, handle, SEVSIM_GSTATE_SUPDATE, SEVSIM_GSTATE_RUNNING);
}

uint32_t sim__fw_receive_finish(struct sim_shared *sh, uint32_t handle)
{
	return channel_close(sh, handle, SEVSIM_GSTATE_RUPDATE, SEVSIM_GSTATE_RUNNING);
}
