/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SEV firmware (legacy SEV and SEV-ES): platform state, guest contexts
 * and their state machine, the ASID pool, and the launch and debug commands
 * (SEND_* and RECEIVE_* are fw_migrate.c's, the platform's keys platform.c's).
 * Sections cited are sev-firmware.md's (SEV API, FW = AMD's Genoa firmware
 * as read for that sheet).  Every function here runs under fw_lock, like a
 * command under the PSP driver's sev_cmd_mutex, and returns an SEV status.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "internal.h"

/* ---- The ASID pool (sev_asid_new(), sev_asid_free(), misc cgroup) -------- */

static uint32_t min_sev_asid(const struct sim_shared *sh)
{
	return sh->cfg.sev_es_asids + 1;
}

static uint32_t max_sev_asid(const struct sim_shared *sh)
{
	return sh->cfg.sev_es_asids + sh->cfg.sev_asids;
}

/* misc.capacity: sev_hardware_setup() sets SEV_ES only when SEV-ES is enabled. */
static uint32_t misc_capacity(const struct sim_shared *sh, bool es)
{
	if (es)
		return sh->cfg.sev_es ? sh->cfg.sev_es_asids : 0;
	return sh->cfg.sev_asids;
}

static bool bit_test(const uint64_t *map, uint32_t n)
{
	return map[n / 64] & (1ull << (n % 64));
}

static void bit_set(uint64_t *map, uint32_t n)
{
	map[n / 64] |= 1ull << (n % 64);
}

static uint32_t *misc_usage(struct sim_shared *sh, bool es)
{
	return es ? &sh->misc_sev_es : &sh->misc_sev;
}

/* misc_cg_try_charge() of kernel/cgroup/misc.c: one cgroup, max = capacity. */
static int misc_try_charge(struct sim_shared *sh, bool es)
{
	uint32_t cap = misc_capacity(sh, es);
	uint32_t *use = misc_usage(sh, es);

	if (!cap)
		return -EINVAL;
	if (*use + 1 > cap)
		return -EBUSY;
	(*use)++;
	return 0;
}

static void misc_uncharge(struct sim_shared *sh, bool es)
{
	uint32_t *use = misc_usage(sh, es);

	if (*use)
		(*use)--;
}

/* __sev_recycle_asids(): DF_FLUSH makes the reclaimed ASIDs free again. */
static bool recycle_asids(struct sim_shared *sh, uint32_t min, uint32_t max)
{
	bool any = false;

	/* sev_flush_asids(): nothing to reclaim in the range -> no flush */
	for (uint32_t a = min; a <= max && !any; a++)
		any = bit_test(sh->asid_reclaim, a);
	if (!any)
		return false;
	for (size_t i = 0; i < SIM_MAX_ASIDS / 64; i++) {
		sh->asid_used[i] ^= sh->asid_reclaim[i];
		sh->asid_reclaim[i] = 0;
	}
	return true;
}

int sim__asid_new(struct sim_shared *sh, bool es, uint32_t *out)
{
	/* sev_asid_new(): SEV-ES uses 1 .. min_sev_asid - 1, SEV the rest */
	uint32_t min = es ? 1 : min_sev_asid(sh);
	uint32_t max = es ? min_sev_asid(sh) - 1 : max_sev_asid(sh);
	bool retry = true;
	int r;

	if (min > max)
		return -ENOTTY;
	r = misc_try_charge(sh, es);
	if (r)
		return r;
again:
	for (uint32_t a = min; a <= max; a++) {
		if (!bit_test(sh->asid_used, a)) {
			bit_set(sh->asid_used, a);
			*out = a;
			return 0;
		}
	}
	if (retry && recycle_asids(sh, min, max)) {
		retry = false;
		goto again;
	}
	misc_uncharge(sh, es);
	return -EBUSY;
}

void sim__asid_free(struct sim_shared *sh, uint32_t asid, bool es)
{
	/* sev_asid_free(): to the reclaim bitmap until the next DF_FLUSH */
	if (asid && asid < SIM_MAX_ASIDS)
		bit_set(sh->asid_reclaim, asid);
	misc_uncharge(sh, es);
}

bool sim__asid_exhausted(struct sim_shared *sh, bool es)
{
	return *misc_usage(sh, es) >= misc_capacity(sh, es);
}

/* ---- Platform --------------------------------------------------------------- */

static uint32_t nr_guests(const struct sim_shared *sh)
{
	uint32_t n = 0;

	for (int i = 0; i < SIM_MAX_GUESTS; i++)
		n += sh->fw.guests[i].handle != 0;
	return n;
}

uint32_t sim__fw_platform_init(struct sim_shared *sh)
{
	/* §7.4: INIT moves UNINIT to INIT; sev_platform_init() skips an INIT platform */
	if (sh->fw.platform_state == SEVM_ABI_SEV_STATE_UNINIT) {
		sh->fw.platform_state = SEVM_ABI_SEV_STATE_INIT;
		sh->fw.es_ready = sh->cfg.sev_es;
	}
	return SEVM_ABI_SEV_RET_SUCCESS;
}

void sim__fw_platform_status(struct sim_shared *sh, struct sevm_abi_sev_user_data_status *st)
{
	memset(st, 0, sizeof(*st));
	st->api_major = sh->cfg.api_major;
	st->api_minor = sh->cfg.api_minor;
	st->build = sh->cfg.build;
	st->state = (uint8_t)sh->fw.platform_state;
	/* §11: in UNINIT the owner and ES flags and the guest count read 0 */
	if (sh->fw.platform_state != SEVM_ABI_SEV_STATE_UNINIT) {
		st->flags = sh->fw.es_ready ? SEV_STATUS_FLAGS_CONFIG_ES : 0;
		st->guest_count = nr_guests(sh);
	}
}

/* §7.4 platform gates */
uint32_t sim__fw_need_working(const struct sim_shared *sh)
{
	return sh->fw.platform_state == SEVM_ABI_SEV_STATE_WORKING ?
	       SEVM_ABI_SEV_RET_SUCCESS : SEVM_ABI_SEV_RET_INVALID_PLATFORM_STATE;
}

uint32_t sim__fw_need_init_or_working(const struct sim_shared *sh)
{
	return sh->fw.platform_state == SEVM_ABI_SEV_STATE_INIT ||
	       sh->fw.platform_state == SEVM_ABI_SEV_STATE_WORKING ?
	       SEVM_ABI_SEV_RET_SUCCESS : SEVM_ABI_SEV_RET_INVALID_PLATFORM_STATE;
}

/* ---- Guest contexts ------------------------------------------------------------ */

struct sim_guest *sim__fw_guest(struct sim_shared *sh, uint32_t handle)
{
	if (!handle)
		return NULL;
	for (int i = 0; i < SIM_MAX_GUESTS; i++)
		if (sh->fw.guests[i].handle == handle)
			return &sh->fw.guests[i];
	return NULL;
}

uint32_t sim__fw_guest_state(struct sim_shared *sh, uint32_t handle)
{
	struct sim_guest *g = sim__fw_guest(sh, handle);

	return g ? g->state : SEVSIM_GSTATE_UNINIT;
}

/*
 * The gates most guest commands open with: platform WORKING (§7.4), a valid
 * handle (INVALID_GUEST, §10), then the state of §7.3.
 */
uint32_t sim__fw_guest_gate(struct sim_shared *sh, uint32_t handle, uint32_t state,
			    struct sim_guest **out)
{
	uint32_t st = sim__fw_need_working(sh);

	if (st)
		return st;
	*out = sim__fw_guest(sh, handle);
	if (!*out)
		return SEVM_ABI_SEV_RET_INVALID_GUEST;
	if ((*out)->state != state)
		return SEVM_ABI_SEV_RET_INVALID_GUEST_STATE;
	return SEVM_ABI_SEV_RET_SUCCESS;
}

static uint32_t new_handle(struct sim_shared *sh)
{
	for (;;) {
		uint32_t h = sh->fw.next_handle++;

		if (h && !sim__fw_guest(sh, h))
			return h;
	}
}

/* §9.2: local firmware API >= the policy's, reserved bits zero */
uint32_t sim__fw_check_policy(const struct sim_shared *sh, uint32_t policy)
{
	uint32_t major = (policy >> 16) & 0xff, minor = (policy >> 24) & 0xff;

	if (sh->cfg.api_major < major || (sh->cfg.api_major == major && sh->cfg.api_minor < minor))
		return SEVM_ABI_SEV_RET_POLICY_FAILURE;
	if (policy & SIM_POLICY_RESERVED)
		return SEVM_ABI_SEV_RET_POLICY_FAILURE;
	return SEVM_ABI_SEV_RET_SUCCESS;
}

/* LAUNCH_START checks before a context exists (§4.3, §9.2). */
static uint32_t launch_start_checks(struct sim_shared *sh, const struct sim_fw_launch_start *p,
				    struct sim_guest **share)
{
	uint32_t st = sim__fw_need_init_or_working(sh);

	if (st)
		return st;
	*share = NULL;
	/* §9.1 NOKS, §9.2: a shared key needs the same policy and NOKS clear */
	if (p->handle) {
		*share = sim__fw_guest(sh, p->handle);
		if (!*share)
			return SEVM_ABI_SEV_RET_INVALID_GUEST;
		if (((*share)->policy & SIM_POLICY_NOKS) || (*share)->policy != p->policy)
			return SEVM_ABI_SEV_RET_POLICY_FAILURE;
	}
	/* §9.1 ES: the platform must have SEV-ES initialised */
	if ((p->policy & SIM_POLICY_ES) && !sh->fw.es_ready)
		return SEVM_ABI_SEV_RET_UNSUPPORTED;
	/* §4.3: with a DH certificate, session 128 and certificate 2084 bytes, then §9.2 */
	if (p->dh_cert) {
		if (!p->session || p->session_len != SEVM_ABI_SEV_SESSION_SIZE ||
		    p->dh_len != SEVM_ABI_SEV_CERT_SIZE)
			return SEVM_ABI_SEV_RET_INVALID_LEN;
		st = sim__fw_check_policy(sh, p->policy);
		if (st)
			return st;
	}
	return SEVM_ABI_SEV_RET_SUCCESS;
}

struct sim_guest *sim__fw_guest_slot(struct sim_shared *sh)
{
	for (int i = 0; i < SIM_MAX_GUESTS; i++)
		if (!sh->fw.guests[i].handle)
			return &sh->fw.guests[i];
	return NULL;
}

uint32_t sim__fw_guest_open(struct sim_shared *sh, struct sim_guest *g,
			    const struct sim_guest *share, uint32_t policy, uint32_t state,
			    const uint8_t *tek, const uint8_t *tik)
{
	/* the context stays free (handle 0) until every key is there */
	memset(g, 0, sizeof(*g));
	if (share)
		memcpy(g->vek, share->vek, sizeof(g->vek));
	else if (sim__random(g->vek, sizeof(g->vek)))
		return SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	if (tek) {
		memcpy(g->tek, tek, sizeof(g->tek));
		memcpy(g->tik, tik, sizeof(g->tik));
	} else if (sim__random(g->tek, sizeof(g->tek)) || sim__random(g->tik, sizeof(g->tik))) {
		return SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	}
	g->handle = new_handle(sh);
	g->policy = policy;
	g->state = state;
	sim__digest_init(g->digest);
	/* §7.4: the first LAUNCH_START or RECEIVE_START moves INIT to WORKING */
	sh->fw.platform_state = SEVM_ABI_SEV_STATE_WORKING;
	return SEVM_ABI_SEV_RET_SUCCESS;
}

uint32_t sim__fw_launch_start(struct sim_shared *sh, struct sim_fw_launch_start *p)
{
	struct sim_guest *share, *g;
	uint32_t st = launch_start_checks(sh, p, &share);

	if (st)
		return st;
	g = sim__fw_guest_slot(sh);
	if (!g)
		return SEVM_ABI_SEV_RET_RESOURCE_LIMIT;
	/*
	 * §7.2: UNINIT -> LUPDATE.  The owner's session is not unwrapped: TEK and
	 * TIK are the firmware's own random keys, as for a launch without a DH
	 * certificate (README).
	 */
	st = sim__fw_guest_open(sh, g, share, p->policy, SEVSIM_GSTATE_LUPDATE, NULL, NULL);
	if (!st)
		p->handle = g->handle;
	return st;
}

/* ACTIVATE (§7.3, §10) */
uint32_t sim__fw_activate(struct sim_shared *sh, uint32_t handle, uint32_t asid)
{
	struct sim_guest *g;
	uint32_t st = sim__fw_need_working(sh);

	if (st)
		return st;
	g = sim__fw_guest(sh, handle);
	if (!g)
		return SEVM_ABI_SEV_RET_INVALID_GUEST;
	if (g->state == SEVSIM_GSTATE_SENT)
		return SEVM_ABI_SEV_RET_INVALID_GUEST_STATE;
	/* §10 INVALID_ASID: an SEV-ES guest needs an SEV-ES ASID, an SEV guest an SEV one */
	if (!asid || asid > max_sev_asid(sh) ||
	    ((g->policy & SIM_POLICY_ES) ? asid >= min_sev_asid(sh) : asid < min_sev_asid(sh)))
		return SEVM_ABI_SEV_RET_INVALID_ASID;
	/* §10 ACTIVE: another ASID is bound to this guest */
	if (g->asid && g->asid != asid)
		return SEVM_ABI_SEV_RET_ACTIVE;
	/* The ASID is bound to another guest (model's choice of status, §10 ASID_OWNED) */
	for (int i = 0; i < SIM_MAX_GUESTS; i++) {
		struct sim_guest *o = &sh->fw.guests[i];

		if (o != g && o->handle && o->asid == asid)
			return SEVM_ABI_SEV_RET_ASID_OWNED;
	}
	g->asid = asid;
	return SEVM_ABI_SEV_RET_SUCCESS;
}

void sim__fw_deactivate(struct sim_shared *sh, uint32_t handle)
{
	struct sim_guest *g = sim__fw_guest(sh, handle);

	if (g)
		g->asid = 0;
}

void sim__fw_decommission(struct sim_shared *sh, uint32_t handle)
{
	struct sim_guest *g = sim__fw_guest(sh, handle);

	/* §7.3 DECOMMISSION: refused (ACTIVE) while the ASID is bound; KVM deactivates first */
	if (!g || g->asid)
		return;
	memset(g, 0, sizeof(*g));
	/* §7.4: decommissioning the last guest moves WORKING to INIT */
	if (!nr_guests(sh) && sh->fw.platform_state == SEVM_ABI_SEV_STATE_WORKING)
		sh->fw.platform_state = SEVM_ABI_SEV_STATE_INIT;
}

/* ---- Guest memory in the calling process ----------------------------------- */

static int mem_rw(bool write, uint8_t *buf, uint64_t addr, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)(uintptr_t)addr, len };
	ssize_t n = write ? process_vm_writev(getpid(), &l, 1, &r, 1, 0)
			  : process_vm_readv(getpid(), &l, 1, &r, 1, 0);

	return n == (ssize_t)len ? 0 : -EFAULT;
}

/*
 * Encrypt [addr, addr + len) in place, page by page, and return the new
 * launch-digest link over the plaintext (crypto.c).
 */
static uint32_t encrypt_in_place(struct sim_guest *g, uint64_t addr, uint64_t len)
{
	uint8_t *buf = malloc(SIM_PAGE_SIZE), next[32];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint32_t st = SEVM_ABI_SEV_RET_SUCCESS;
	unsigned int n = 0;

	if (!buf || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, g->digest, sizeof(g->digest)) != 1) {
		st = SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
		goto out;
	}
	while (len) {
		size_t chunk = SIM_PAGE_SIZE - addr % SIM_PAGE_SIZE;

		if (chunk > len)
			chunk = len;
		if (mem_rw(false, buf, addr, chunk)) {
			st = SEVM_ABI_SEV_RET_INVALID_ADDRESS;
			goto out;
		}
		if (EVP_DigestUpdate(md, buf, chunk) != 1 ||
		    sim__mem_crypt(g->vek, true, addr, buf, chunk) ||
		    mem_rw(true, buf, addr, chunk)) {
			st = SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
			goto out;
		}
		addr += chunk;
		len -= chunk;
	}
	if (EVP_DigestFinal_ex(md, next, &n) != 1)
		st = SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	else
		memcpy(g->digest, next, sizeof(next));
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return st;
}

/* §7.3 LAUNCH_UPDATE_DATA: LUPDATE, active, 16-aligned, a non-zero multiple of 16 */
uint32_t sim__fw_launch_update_data(struct sim_shared *sh, uint32_t handle, uint64_t addr,
				    uint32_t len)
{
	struct sim_guest *g;
	uint32_t st = sim__fw_guest_gate(sh, handle, SEVSIM_GSTATE_LUPDATE, &g);

	if (st)
		return st;
	if (!g->asid)
		return SEVM_ABI_SEV_RET_INACTIVE;
	if (addr % 16)
		return SEVM_ABI_SEV_RET_INVALID_ADDRESS;
	if (!len || len % 16)
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	return encrypt_in_place(g, addr, len);
}

/* §7.3 LAUNCH_UPDATE_VMSA: as UPDATE_DATA, and the guest must be SEV-ES (UNSUPPORTED) */
uint32_t sim__fw_launch_update_vmsa(struct sim_shared *sh, uint32_t handle, const void *vmsa,
				    uint32_t len)
{
	struct sim_guest *g;
	uint32_t st = sim__fw_guest_gate(sh, handle, SEVSIM_GSTATE_LUPDATE, &g);

	if (st)
		return st;
	if (!g->asid)
		return SEVM_ABI_SEV_RET_INACTIVE;
	if (!(g->policy & SIM_POLICY_ES))
		return SEVM_ABI_SEV_RET_UNSUPPORTED;
	if (!len || len % 16)
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	sim__digest_extend(g->digest, vmsa, len);
	return SEVM_ABI_SEV_RET_SUCCESS;
}

/* §14: HMAC-SHA256(TIK, 0x04 || API major || minor || build || policy || digest || mnonce) */
static int measure(const struct sim_shared *sh, const struct sim_guest *g,
		   const uint8_t mnonce[16], uint8_t out[32])
{
	uint8_t m[1 + 3 + 4 + 32 + 16];

	m[0] = 0x04;
	m[1] = sh->cfg.api_major;
	m[2] = sh->cfg.api_minor;
	m[3] = sh->cfg.build;
	for (int i = 0; i < 4; i++)
		m[4 + i] = (uint8_t)(g->policy >> (8 * i));
	memcpy(m + 8, g->digest, 32);
	memcpy(m + 40, mnonce, 16);
	return sim__hmac(g->tik, sizeof(g->tik), m, sizeof(m), out);
}

/* §7.3 LAUNCH_MEASURE: LUPDATE; MEASURE_LEN < 48 -> INVALID_LEN with 48 written back */
uint32_t sim__fw_launch_measure(struct sim_shared *sh, uint32_t handle, uint8_t *out,
				uint32_t *len)
{
	struct sim_guest *g;
	uint32_t st = sim__fw_guest_gate(sh, handle, SEVSIM_GSTATE_LUPDATE, &g);
	uint8_t mnonce[16];

	if (st)
		return st;
	if (*len < SEVM_ABI_SEV_MEASURE_SIZE || !out) {
		*len = SEVM_ABI_SEV_MEASURE_SIZE;
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	}
	if (sim__random(mnonce, sizeof(mnonce)) || measure(sh, g, mnonce, g->measure))
		return SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	memcpy(out, g->measure, 32);
	memcpy(out + 32, mnonce, 16);
	*len = SEVM_ABI_SEV_MEASURE_SIZE;
	/* §7.2: LUPDATE -> LSECRET */
	g->state = SEVSIM_GSTATE_LSECRET;
	return SEVM_ABI_SEV_RET_SUCCESS;
}

/* §5.5 LAUNCH_SECRET: the length rules, then the MAC, then decrypt and re-encrypt */
static uint32_t secret_checks(const uint8_t *hdr, uint32_t hdr_len, uint64_t guest_addr,
			      uint32_t guest_len, uint32_t trans_len)
{
	uint32_t flags;

	if (hdr_len != SEVM_ABI_SEV_PACKET_HDR_SIZE)
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	if (!guest_len || guest_len != trans_len || guest_len % 16 || guest_len > 0x5000)
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	if (guest_addr % 16)
		return SEVM_ABI_SEV_RET_INVALID_ADDRESS;
	memcpy(&flags, hdr, sizeof(flags));
	if (flags & 1)
		return SEVM_ABI_SEV_RET_UNSUPPORTED;
	return SEVM_ABI_SEV_RET_SUCCESS;
}

static uint32_t secret_mac_ok(const struct sim_guest *g, const uint8_t *hdr, uint32_t guest_len,
			      const uint8_t *trans, uint32_t trans_len)
{
	size_t n = 1 + 4 + 16 + 4 + 4 + trans_len + 32;
	uint8_t *m = malloc(n), mac[32];
	uint32_t st = SEVM_ABI_SEV_RET_SUCCESS;

	if (!m)
		return SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	m[0] = 0x01;
	memcpy(m + 1, hdr, 4 + 16);
	memcpy(m + 21, &guest_len, 4);
	memcpy(m + 25, &trans_len, 4);
	memcpy(m + 29, trans, trans_len);
	memcpy(m + 29 + trans_len, g->measure, 32);
	if (sim__hmac(g->tik, sizeof(g->tik), m, n, mac))
		st = SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	else if (memcmp(mac, hdr + 20, 32))
		st = SEVM_ABI_SEV_RET_BAD_MEASUREMENT;
	free(m);
	return st;
}

uint32_t sim__fw_launch_secret(struct sim_shared *sh, uint32_t handle, const uint8_t *hdr,
			       uint32_t hdr_len, uint64_t guest_addr, uint32_t guest_len,
			       const uint8_t *trans, uint32_t trans_len)
{
	struct sim_guest *g;
	uint32_t st = sim__fw_guest_gate(sh, handle, SEVSIM_GSTATE_LSECRET, &g);
	uint8_t *plain;

	if (st)
		return st;
	if (!g->asid)
		return SEVM_ABI_SEV_RET_INACTIVE;
	st = secret_checks(hdr, hdr_len, guest_addr, guest_len, trans_len);
	if (!st)
		st = secret_mac_ok(g, hdr, guest_len, trans, trans_len);
	if (st)
		return st;
	plain = malloc(guest_len);
	if (!plain)
		return SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	if (sim__aes_ctr(g->tek, hdr + 4, trans, plain, guest_len) ||
	    sim__mem_crypt(g->vek, true, guest_addr, plain, guest_len) ||
	    mem_rw(true, plain, guest_addr, guest_len))
		st = SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	free(plain);
	return st;
}

uint32_t sim__fw_launch_finish(struct sim_shared *sh, uint32_t handle)
{
	struct sim_guest *g;
	uint32_t st = sim__fw_guest_gate(sh, handle, SEVSIM_GSTATE_LSECRET, &g);

	if (st)
		return st;
	/* §7.2: LSECRET -> RUNNING */
	g->state = SEVSIM_GSTATE_RUNNING;
	return SEVM_ABI_SEV_RET_SUCCESS;
}

/* §7.3 GUEST_STATUS: any state; an unknown handle is SUCCESS with STATE 0 */
uint32_t sim__fw_guest_status(struct sim_shared *sh, uint32_t handle, uint32_t *policy,
			      uint32_t *asid, uint32_t *state)
{
	struct sim_guest *g;
	uint32_t st = sim__fw_need_init_or_working(sh);

	if (st)
		return st;
	g = sim__fw_guest(sh, handle);
	*policy = g ? g->policy : 0;
	*asid = g ? g->asid : 0;
	*state = g ? g->state : SEVSIM_GSTATE_UNINIT;
	return SEVM_ABI_SEV_RET_SUCCESS;
}

/*
 * §7.3 DBG_DECRYPT / DBG_ENCRYPT: no guest-state check; 16-aligned address,
 * length a multiple of 16, valid handle, NODBG (§9.1), active ASID.
 */
static uint32_t dbg_gate(struct sim_shared *sh, uint32_t handle, uint64_t addr, uint32_t len,
			 struct sim_guest **g)
{
	uint32_t st = sim__fw_need_working(sh);

	if (st)
		return st;
	if (addr % 16)
		return SEVM_ABI_SEV_RET_INVALID_ADDRESS;
	if (len % 16)
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	*g = sim__fw_guest(sh, handle);
	if (!*g)
		return SEVM_ABI_SEV_RET_INVALID_GUEST;
	if ((*g)->policy & SIM_POLICY_NODBG)
		return SEVM_ABI_SEV_RET_POLICY_FAILURE;
	if (!(*g)->asid)
		return SEVM_ABI_SEV_RET_INACTIVE;
	return SEVM_ABI_SEV_RET_SUCCESS;
}

uint32_t sim__fw_dbg_decrypt(struct sim_shared *sh, uint32_t handle, uint64_t src,
			     uint8_t *out, uint32_t len)
{
	struct sim_guest *g;
	uint32_t st = dbg_gate(sh, handle, src, len, &g);

	if (st)
		return st;
	if (mem_rw(false, out, src, len))
		return SEVM_ABI_SEV_RET_INVALID_ADDRESS;
	return sim__mem_crypt(g->vek, false, src, out, len) ? SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM
							     : SEVM_ABI_SEV_RET_SUCCESS;
}

uint32_t sim__fw_dbg_encrypt(struct sim_shared *sh, uint32_t handle, const uint8_t *in,
			     uint64_t dst, uint32_t len)
{
	struct sim_guest *g;
	uint32_t st = dbg_gate(sh, handle, dst, len, &g);
	uint8_t *buf;

	if (st)
		return st;
	buf = malloc(len ? len : 1);
	if (!buf)
		return SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	memcpy(buf, in, len);
	if (sim__mem_crypt(g->vek, true, dst, buf, len))
		st = SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	else if (mem_rw(true, buf, dst, len))
		st = SEVM_ABI_SEV_RET_INVALID_ADDRESS;
	free(buf);
	return st;
}

/*
 * §7.3, §13 ATTESTATION: LSECRET, RUNNING, SUPDATE or SENT; LEN < 0xD0 ->
 * INVALID_LEN with the length written back.  The model keeps no PEK private
 * key after host creation: the signature fields (usage, algorithm, SIG1)
 * are zero.
 */
uint32_t sim__fw_attestation(struct sim_shared *sh, uint32_t handle, const uint8_t mnonce[16],
			     uint8_t *out, uint32_t *len)
{
	struct sim_guest *g;
	uint32_t st = sim__fw_need_working(sh);

	if (st)
		return st;
	g = sim__fw_guest(sh, handle);
	if (!g)
		return SEVM_ABI_SEV_RET_INVALID_GUEST;
	if (g->state != SEVSIM_GSTATE_LSECRET && g->state != SEVSIM_GSTATE_RUNNING &&
	    g->state != SEVSIM_GSTATE_SUPDATE && g->state != SEVSIM_GSTATE_SENT)
		return SEVM_ABI_SEV_RET_INVALID_GUEST_STATE;
	if (*len < SIM_ATTESTATION_LEN || !out) {
		*len = SIM_ATTESTATION_LEN;
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	}
	memset(out, 0, SIM_ATTESTATION_LEN);
	memcpy(out, mnonce, 16);
	memcpy(out + 16, g->digest, 32);
	for (int i = 0; i < 4; i++)
		out[48 + i] = (uint8_t)(g->policy >> (8 * i));
	*len = SIM_ATTESTATION_LEN;
	return SEVM_ABI_SEV_RET_SUCCESS;
}
