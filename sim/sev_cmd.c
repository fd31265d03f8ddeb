/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KVM_MEMORY_ENCRYPT_OP and the encrypted-region ioctls: KVM's side of SEV
 * (arch/x86/kvm/svm/sev.c), check for check and in the kernel's order, in
 * front of the firmware of fw.c and fw_migrate.c.  The v7.0 rules are
 * modelled (LAUNCH_UPDATE_VMSA and LAUNCH_FINISH refuse in-flight vCPU
 * creation; a second VMSA encryption is -EINVAL).  One extension is not
 * upstream's: SEND_UPDATE_VMSA and RECEIVE_UPDATE_VMSA (README).  Section
 * numbers are sev-kernel-rules.md's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* SVM_SEV_FEAT_DEBUG_SWAP: the one vmsa_features bit KVM offers (§5) */
#define SIM_VMSA_FEATURES	(1ull << 5)
#define GHCB_VERSION_MAX	2
#define GHCB_VERSION_DEFAULT	2
#define GHCB_VERSION_MIN	1
#define DR7_FIXED_1		0x400ull

struct cmd {
	struct sevsim *sim;
	struct sim_shared *sh;
	struct sim_vm *vm;
	struct kvm_sev_cmd *c;
};

uint64_t sim__supported_vmsa_features(const struct sim_shared *sh)
{
	return sh->cfg.sev_es ? SIM_VMSA_FEATURES : 0;
}

/* ---- Reaching the firmware ------------------------------------------------ */

/*
 * __sev_issue_cmd(fd): the fd NUMBER is resolved in the calling process
 * (-EBADF unless it is /dev/sev), then the command runs under fw_lock.
 * Callers pass argp->sev_fd (LAUNCH_START, RECEIVE_START) or the saved
 * sev->fd (sev_issue_cmd(), every other command).
 */
static int fw_enter(struct cmd *k, int fd)
{
	int r = sim__sev_fd_check(k->sim, fd);

	if (r)
		return r;
	sim__lock(&k->sh->fw_lock);
	return 0;
}

/* sev-dev.c __sev_do_cmd_locked(): status into error; nonzero status -> -EIO */
static int fw_leave(struct cmd *k, uint32_t status)
{
	sim__unlock(&k->sh->fw_lock);
	k->c->error = status;
	return status ? -EIO : 0;
}

/*
 * After LAUNCH_START or RECEIVE_START ran in the firmware (fw_lock held,
 * status st): bind the VM's ASID to the new handle (sev_bind_asid(); a failed
 * bind decommissions the context, v7.0), write the caller's struct back, and
 * undo the bind if that faults (sev_unbind_asid()).  The VM then keeps the
 * handle and the /dev/sev fd number it came through.
 */
static int bind_context(struct cmd *k, uint32_t st, uint32_t handle, const void *p, size_t len)
{
	struct sim_sev *sev = &k->vm->sev;
	int r;

	if (!st) {
		st = sim__fw_activate(k->sh, handle, sev->asid);
		if (st)
			sim__fw_decommission(k->sh, handle);
	}
	r = fw_leave(k, st);
	if (r)
		return r;
	if (sim__copy_to_user(k->c->data, p, len)) {
		sim__lock(&k->sh->fw_lock);
		sim__fw_deactivate(k->sh, handle);
		sim__fw_decommission(k->sh, handle);
		sim__unlock(&k->sh->fw_lock);
		return -EFAULT;
	}
	sev->handle = handle;
	sev->fd = (int32_t)k->c->sev_fd;
	return 0;
}

/* psp_copy_user_blob() (§4.0): a kernel copy of a user blob */
static int copy_blob(uint64_t uaddr, uint32_t len, uint8_t **out)
{
	uint8_t *b;

	if (!uaddr || !len || len > SEVM_ABI_SEV_FW_BLOB_MAX_SIZE)
		return -EINVAL;
	b = malloc(len);
	if (!b)
		return -ENOMEM;
	if (sim__copy_from_user(b, uaddr, len)) {
		free(b);
		return -EFAULT;
	}
	*out = b;
	return 0;
}

/* ---- INIT, ES_INIT, INIT2 (§4.2, §5) ------------------------------------ */

static int guest_init(struct cmd *k, const struct sevm_abi_sev_init *d, uint32_t vm_type)
{
	struct sim_sev *sev = &k->vm->sev;
	bool es = vm_type != KVM_X86_SEV_VM;
	uint64_t valid = es ? sim__supported_vmsa_features(k->sh) : 0;
	uint32_t asid;
	int r;

	/* __sev_guest_init(): vCPUs, flags, features, GHCB version, then active */
	if (k->vm->created_vcpus)
		return -EINVAL;
	if (d->flags)
		return -EINVAL;
	if (d->vmsa_features & ~valid)
		return -EINVAL;
	if (d->ghcb_version > GHCB_VERSION_MAX || (!es && d->ghcb_version))
		return -EINVAL;
	if (sev->active)
		return -EINVAL;
	sim__lock(&k->sh->fw_lock);
	/* sev_asid_new(): -ENOTTY (no class), the cgroup's error, -EBUSY */
	r = sim__asid_new(k->sh, es, &asid);
	/* sev_platform_init(): the only INIT path that would set argp->error */
	if (!r)
		sim__fw_platform_init(k->sh);
	sim__unlock(&k->sh->fw_lock);
	if (r)
		return r;
	sev->active = true;
	sev->es_active = es;
	sev->vmsa_features = d->vmsa_features;
	sev->ghcb_version = d->ghcb_version;
	if (es && !sev->ghcb_version)
		sev->ghcb_version = GHCB_VERSION_DEFAULT;
	sev->asid = asid;
	sev->nr_regions = 0;
	sev->need_init = false;
	return 0;
}

/* sev_guest_init(): KVM_SEV_INIT and KVM_SEV_ES_INIT */
static int sev_guest_init(struct cmd *k)
{
	struct sevm_abi_sev_init d = { 0 };

	if (k->vm->vm_type != KVM_X86_DEFAULT_VM)
		return -EINVAL;
	/* KVM_SEV_ES_INIT keeps the minimal GHCB protocol */
	if (k->c->id == SEVM_ABI_SEV_ES_INIT)
		d.ghcb_version = GHCB_VERSION_MIN;
	return guest_init(k, &d, k->c->id == SEVM_ABI_SEV_INIT ? KVM_X86_SEV_VM : KVM_X86_SEV_ES_VM);
}

/* sev_guest_init2() */
static int sev_guest_init2(struct cmd *k)
{
	struct sevm_abi_sev_init d;

	if (!k->vm->sev.need_init)
		return -EINVAL;
	if (k->vm->vm_type != KVM_X86_SEV_VM && k->vm->vm_type != KVM_X86_SEV_ES_VM &&
	    k->vm->vm_type != KVM_X86_SNP_VM)
		return -EINVAL;
	if (sim__copy_from_user(&d, k->c->data, sizeof(d)))
		return -EFAULT;
	return guest_init(k, &d, k->vm->vm_type);
}

/* ---- Launch (§4.4 - §4.9) ------------------------------------------------ */

/* sev_launch_start() */
static int launch_start(struct cmd *k)
{
	struct sevm_abi_sev_launch_start p;
	struct sim_fw_launch_start fw = { 0 };
	struct sim_sev *sev = &k->vm->sev;
	uint8_t *dh = NULL, *session = NULL;
	uint32_t st;
	int r;

	if (!sim__sev_guest(k->vm))
		return -ENOTTY;
	if (sim__copy_from_user(&p, k->c->data, sizeof(p)))
		return -EFAULT;
	/* stored before anything else can fail */
	sev->policy = p.policy;
	if (p.dh_uaddr) {
		r = copy_blob(p.dh_uaddr, p.dh_len, &dh);
		if (r)
			return r;
	}
	if (p.session_uaddr) {
		r = copy_blob(p.session_uaddr, p.session_len, &session);
		if (r)
			goto out;
	}
	fw.handle = p.handle;
	fw.policy = p.policy;
	fw.dh_cert = dh != NULL;
	fw.dh_len = dh ? p.dh_len : 0;
	fw.session = session != NULL;
	fw.session_len = session ? p.session_len : 0;
	/* through argp->sev_fd, not the saved one */
	r = fw_enter(k, (int)k->c->sev_fd);
	if (r)
		goto out;
	st = sim__fw_launch_start(k->sh, &fw);
	p.handle = fw.handle;
	r = bind_context(k, st, fw.handle, &p, sizeof(p));
out:
	free(session);
	free(dh);
	return r;
}

/*
 * sev_launch_update_data().  The model treats every pinned range as
 * physically contiguous: one firmware command for the whole range.
 */
static int launch_update_data(struct cmd *k)
{
	struct sevm_abi_sev_launch_update_data p;
	uint64_t n;
	int r;

	if (!sim__sev_guest(k->vm))
		return -ENOTTY;
	if (sim__copy_from_user(&p, k->c->data, sizeof(p)))
		return -EFAULT;
	r = sim__pin(k->vm, p.uaddr, p.len, true, &n);
	if (r)
		return r;
	r = fw_enter(k, k->vm->sev.fd);
	if (!r)
		r = fw_leave(k, sim__fw_launch_update_data(k->sh, k->vm->sev.handle, p.uaddr,
							   p.len));
	sim__unpin(k->vm, n);
	return r;
}

/*
 * sev_es_sync_vmsa(): the VMSA the firmware measures.  The model's is the
 * vCPU's REGS and SREGS as stored, not AMD's save-area layout.
 */
#define VMSA_SREGS	0x400

static void build_vmsa(const struct sim_vcpu *v, uint8_t page[SIM_PAGE_SIZE])
{
	memset(page, 0, SIM_PAGE_SIZE);
	memcpy(page, &v->regs, sizeof(v->regs));
	memcpy(page + VMSA_SREGS, &v->sregs, sizeof(v->sregs));
}

/* RECEIVE_UPDATE_VMSA's page back into the vCPU (the model's extension, below) */
static void load_vmsa(struct sim_vcpu *v, const uint8_t page[SIM_PAGE_SIZE])
{
	memcpy(&v->regs, page, sizeof(v->regs));
	memcpy(&v->sregs, page + VMSA_SREGS, sizeof(v->sregs));
}

/* __sev_launch_update_vmsa() for one vCPU, its mutex held */
static int update_vmsa_one(struct cmd *k, struct sim_vcpu *v, uint8_t *page)
{
	int r;

	/* v7.0: a VMSA that is already encrypted */
	if (v->protected)
		return -EINVAL;
	/* sev_es_sync_vmsa(): DR7 beyond its fixed bits */
	if (v->debugregs.dr7 & ~DR7_FIXED_1)
		return -EINVAL;
	build_vmsa(v, page);
	r = fw_enter(k, k->vm->sev.fd);
	if (r)
		return r;
	r = fw_leave(k, sim__fw_launch_update_vmsa(k->sh, k->vm->sev.handle, page,
						   SIM_PAGE_SIZE));
	if (r)
		return r;
	v->fpu_confidential = true;
	v->protected = true;
	return 0;
}

/* sev_launch_update_vmsa(); data is ignored */
static int launch_update_vmsa(struct cmd *k)
{
	uint32_t online = __atomic_load_n(&k->vm->online_vcpus, __ATOMIC_ACQUIRE);
	uint8_t *page;
	int r = 0;

	if (!sim__sev_es_guest(k->vm))
		return -ENOTTY;
	/* v7.0: kvm_is_vcpu_creation_in_progress() */
	if (k->vm->created_vcpus != online)
		return -EBUSY;
	page = malloc(SIM_PAGE_SIZE);
	if (!page)
		return -ENOMEM;
	/* Progress is partial on failure: earlier vCPUs stay encrypted. */
	for (uint32_t i = 0; i < online && !r; i++) {
		struct sim_vcpu *v = &k->vm->vcpus[i];

		sim__lock(&v->mutex);
		r = update_vmsa_one(k, v, page);
		sim__unlock(&v->mutex);
	}
	free(page);
	return r;
}

/*
 * The length query of §4.7, which sev_launch_measure() and
 * sev_get_attestation_report() share: a zero length or address asks for the
 * length; a blob comes back only on success; the length is written back
 * whatever the firmware said, except when a real buffer was refused.
 * *write_back says whether the caller copies its struct (with *len) out.
 */
static int sized_blob(struct cmd *k, uint64_t uaddr, uint32_t *len, const uint8_t *mnonce,
		      bool *write_back)
{
	uint8_t *blob = NULL;
	uint32_t dlen = 0;
	int r;

	*write_back = false;
	if (*len && uaddr) {
		if (*len > SEVM_ABI_SEV_FW_BLOB_MAX_SIZE)
			return -EINVAL;
		blob = calloc(1, *len);
		if (!blob)
			return -ENOMEM;
		dlen = *len;
	}
	r = fw_enter(k, k->vm->sev.fd);
	if (!r)
		r = fw_leave(k, mnonce ?
			     sim__fw_attestation(k->sh, k->vm->sev.handle, mnonce, blob, &dlen) :
			     sim__fw_launch_measure(k->sh, k->vm->sev.handle, blob, &dlen));
	if (*len && r)
		goto out;
	if (*len && blob && sim__copy_to_user(uaddr, blob, *len))
		r = -EFAULT;
	*len = dlen;
	*write_back = true;
out:
	free(blob);
	return r;
}

/* sev_launch_measure() */
static int launch_measure(struct cmd *k)
{
	struct sevm_abi_sev_launch_measure p;
	bool write_back;
	int r;

	if (!sim__sev_guest(k->vm))
		return -ENOTTY;
	if (sim__copy_from_user(&p, k->c->data, sizeof(p)))
		return -EFAULT;
	r = sized_blob(k, p.uaddr, &p.len, NULL, &write_back);
	if (write_back && sim__copy_to_user(k->c->data, &p, sizeof(p)))
		r = -EFAULT;
	return r;
}

/* sev_launch_secret() */
static int launch_secret(struct cmd *k)
{
	struct sevm_abi_sev_launch_secret p;
	uint8_t *trans = NULL, *hdr = NULL;
	uint64_t n;
	int r;

	if (!sim__sev_guest(k->vm))
		return -ENOTTY;
	if (sim__copy_from_user(&p, k->c->data, sizeof(p)))
		return -EFAULT;
	r = sim__pin(k->vm, p.guest_uaddr, p.guest_len, true, &n);
	if (r)
		return r;
	/* The pages must be physically contiguous: the model's always are. */
	r = copy_blob(p.trans_uaddr, p.trans_len, &trans);
	if (!r)
		r = copy_blob(p.hdr_uaddr, p.hdr_len, &hdr);
	if (!r)
		r = fw_enter(k, k->vm->sev.fd);
	if (!r)
		r = fw_leave(k, sim__fw_launch_secret(k->sh, k->vm->sev.handle, hdr, p.hdr_len,
						      p.guest_uaddr, p.guest_len, trans,
						      p.trans_len));
	free(hdr);
	free(trans);
	sim__unpin(k->vm, n);
	return r;
}

/* sev_launch_finish(); data is ignored */
static int launch_finish(struct cmd *k)
{
	int r;

	if (!sim__sev_guest(k->vm))
		return -ENOTTY;
	/* v7.0 (624bf3440d72): not while a vCPU is being created */
	if (k->vm->created_vcpus != __atomic_load_n(&k->vm->online_vcpus, __ATOMIC_ACQUIRE))
		return -EBUSY;
	r = fw_enter(k, k->vm->sev.fd);
	return r ? r : fw_leave(k, sim__fw_launch_finish(k->sh, k->vm->sev.handle));
}

/* sev_guest_status() (§4.10): no copy-out when the firmware fails */
static int guest_status(struct cmd *k)
{
	struct sevm_abi_sev_guest_status p = { 0 };
	uint32_t asid;
	int r;

	if (!sim__sev_guest(k->vm))
		return -ENOTTY;
	r = fw_enter(k, k->vm->sev.fd);
	if (r)
		return r;
	r = fw_leave(k, sim__fw_guest_status(k->sh, k->vm->sev.handle, &p.policy, &asid,
					     &p.state));
	if (r)
		return r;
	p.handle = k->vm->sev.handle;
	return sim__copy_to_user(k->c->data, &p, sizeof(p));
}

/* ---- DBG_DECRYPT / DBG_ENCRYPT (§4.11) --------------------------------- */

static uint64_t round_down16(uint64_t v)
{
	return v & ~15ull;
}

static uint64_t round_up16(uint64_t v)
{
	return (v + 15) & ~15ull;
}

/* __sev_dbg_decrypt(): a 16-byte window around [src, src + size) into buf */
static int dbg_decrypt_window(struct cmd *k, uint64_t src, uint32_t size, uint8_t *buf)
{
	uint64_t off = src & 15;
	int r = fw_enter(k, k->vm->sev.fd);

	if (r)
		return r;
	return fw_leave(k, sim__fw_dbg_decrypt(k->sh, k->vm->sev.handle, round_down16(src), buf,
					       (uint32_t)round_up16(size + off)));
}

/* __sev_dbg_decrypt_user(): through a bounce page, or straight into dst */
static int dbg_decrypt_chunk(struct cmd *k, uint64_t src, uint64_t dst, uint32_t size,
			     uint8_t *bounce)
{
	int r = dbg_decrypt_window(k, src, size, bounce);

	if (r)
		return r;
	return sim__copy_to_user(dst, bounce + (src & 15), size);
}

/*
 * __sev_dbg_encrypt_user().  Its read-modify-write path decrypts
 * round_up(size + offset) bytes around dst but re-encrypts only
 * round_up(size) from the aligned start, as the kernel does: with an
 * unaligned dst the tail of the data can be lost (README).
 */
static int dbg_encrypt_chunk(struct cmd *k, uint64_t src, uint64_t dst, uint32_t size,
			     uint8_t *bounce)
{
	uint64_t at = dst;
	uint32_t len = size;
	int r;

	if (!(dst & 15) && !(size & 15)) {
		r = sim__copy_from_user(bounce, src, size);
	} else {
		r = dbg_decrypt_window(k, dst, size, bounce);
		if (!r)
			r = sim__copy_from_user(bounce + (dst & 15), src, size);
		at = round_down16(dst);
		len = (uint32_t)round_up16(size);
	}
	if (r)
		return r;
	r = fw_enter(k, k->vm->sev.fd);
	return r ? r : fw_leave(k, sim__fw_dbg_encrypt(k->sh, k->vm->sev.handle, bounce, at, len));
}

/* sev_dbg_crypt(): page by page, each step pinning a source and a destination page */
static int dbg_crypt(struct cmd *k, bool dec)
{
	struct sevm_abi_sev_dbg d;
	uint64_t vaddr, dst, size;
	uint8_t *bounce;
	int r = 0;

	if (!sim__sev_guest(k->vm))
		return -ENOTTY;
	if (sim__copy_from_user(&d, k->c->data, sizeof(d)))
		return -EFAULT;
	if (!d.len || d.src_uaddr + d.len < d.src_uaddr)
		return -EINVAL;
	if (!d.dst_uaddr)
		return -EINVAL;
	bounce = malloc(2 * SIM_PAGE_SIZE);
	if (!bounce)
		return -ENOMEM;
	for (vaddr = d.src_uaddr, dst = d.dst_uaddr, size = d.len; size && !r;) {
		uint64_t s_off = vaddr % SIM_PAGE_SIZE, ns, nd;
		uint32_t len = (uint32_t)(SIM_PAGE_SIZE - s_off < size ? SIM_PAGE_SIZE - s_off : size);

		r = sim__pin(k->vm, vaddr & ~(SIM_PAGE_SIZE - 1), SIM_PAGE_SIZE, false, &ns);
		if (r)
			break;
		r = sim__pin(k->vm, dst & ~(SIM_PAGE_SIZE - 1), SIM_PAGE_SIZE, true, &nd);
		if (r) {
			sim__unpin(k->vm, ns);
			break;
		}
		r = dec ? dbg_decrypt_chunk(k, vaddr, dst, len, bounce)
			: dbg_encrypt_chunk(k, vaddr, dst, len, bounce);
		sim__unpin(k->vm, ns);
		sim__unpin(k->vm, nd);
		vaddr += len;
		dst += len;
		size -= len;
	}
	free(bounce);
	return r;
}

/* sev_get_attestation_report(): the length protocol of §4.12, as §4.7's */
static int attestation_report(struct cmd *k)
{
	struct sevm_abi_sev_attestation_report p;
	bool write_back;
	int r;

	if (!sim__sev_guest(k->vm))
		return -ENOTTY;
	if (sim__copy_from_user(&p, k->c->data, sizeof(p)))
		return -EFAULT;
	r = sized_blob(k, p.uaddr, &p.len, p.mnonce, &write_back);
	if (write_back && sim__copy_to_user(k->c->data, &p, sizeof(p)))
		r = -EFAULT;
	return r;
}

/* ---- SEND_* / RECEIVE_* (§4.13 - §4.17) ------------------------------------ */

/* sev_issue_cmd(): SEND_* and RECEIVE_UPDATE_* go through the saved sev->fd */
static int fw_send_start(struct cmd *k, struct sim_fw_send_start *fw)
{
	int r = fw_enter(k, k->vm->sev.fd);

	fw->handle = k->vm->sev.handle;
	return r ? r : fw_leave(k, sim__fw_send_start(k->sh, fw));
}

static int fw_packet(struct cmd *k, struct sim_fw_packet *fw, bool send)
{
	int r = fw_enter(k, k->vm->sev.fd);

	fw->handle = k->vm->sev.handle;
	if (r)
		return r;
	return fw_leave(k, send ? sim__fw_send_update(k->sh, fw)
				: sim__fw_receive_update(k->sh, fw));
}

/*
 * sev_send_start().  A zero session_len is __sev_send_start_query_session_length():
 * a command with only the handle.  Either way the firmware's policy and
 * session_len come back in the struct, even when it failed.
 */
static int send_start(struct cmd *k)
{
	struct sevm_abi_sev_send_start p;
	struct sim_fw_send_start fw = { 0 };
	uint8_t *pdh = NULL, *plat = NULL, *amd = NULL, *session = NULL;
	int r;

	if (!sim__sev_guest(k->vm))
		return -ENOTTY;
	if (sim__copy_from_user(&p, k->c->data, sizeof(p)))
		return -EFAULT;
	if (p.session_len) {
		if (!p.pdh_cert_uaddr || !p.pdh_cert_len || !p.session_uaddr ||
		    p.session_len > SEVM_ABI_SEV_FW_BLOB_MAX_SIZE)
			return -EINVAL;
		session = calloc(1, p.session_len);
		if (!session)
			return -ENOMEM;
		/* plat_certs and amd_certs are blobs too: mandatory whatever the policy */
		r = copy_blob(p.pdh_cert_uaddr, p.pdh_cert_len, &pdh);
		if (!r)
			r = copy_blob(p.plat_certs_uaddr, p.plat_certs_len, &plat);
		if (!r)
			r = copy_blob(p.amd_certs_uaddr, p.amd_certs_len, &amd);
		if (r)
			goto out;
		fw = (struct sim_fw_send_start){
			.pdh = pdh, .pdh_len = p.pdh_cert_len, .plat = plat,
			.plat_len = p.plat_certs_len, .amd = amd, .amd_len = p.amd_certs_len,
			.session = session, .session_len = p.session_len };
	}
	r = fw_send_start(k, &fw);
	/* the session first; its fault skips the struct */
	if (!r && session && sim__copy_to_user(p.session_uaddr, session, p.session_len)) {
		r = -EFAULT;
		goto out;
	}
	p.policy = fw.policy;
	p.session_len = fw.session_len;
	if (sim__copy_to_user(k->c->data, &p, sizeof(p)))
		r = -EFAULT;
out:
	free(session);
	free(amd);
	free(plat);
	free(pdh);
	return r;
}

/*
 * sev_send_update_data(): the single-page rule.  A zero trans_len or hdr_len
 * is __sev_send_update_data_query_lengths(): a command with only the handle,
 * whose hdr_len and trans_len come back in the struct.
 */
static int send_update_data(struct cmd *k)
{
	struct sevm_abi_sev_send_update_data p;
	struct sim_fw_packet fw = { 0 };
	uint64_t off, n;
	int r;

	if (!sim__sev_guest(k->vm))
		return -ENOTTY;
	if (sim__copy_from_user(&p, k->c->data, sizeof(p)))
		return -EFAULT;
	if (!p.trans_len || !p.hdr_len) {
		r = fw_packet(k, &fw, true);
		p.hdr_len = fw.hdr_len;
		p.trans_len = fw.trans_len;
		if (sim__copy_to_user(k->c->data, &p, sizeof(p)))
			r = -EFAULT;
		return r;
	}
	if (!p.trans_uaddr || !p.guest_uaddr || !p.guest_len || !p.hdr_uaddr)
		return -EINVAL;
	off = p.guest_uaddr & (SIM_PAGE_SIZE - 1);
	if (p.guest_len > SIM_PAGE_SIZE || p.guest_len + off > SIM_PAGE_SIZE)
		return -EINVAL;
	r = sim__pin(k->vm, p.guest_uaddr & ~(SIM_PAGE_SIZE - 1), SIM_PAGE_SIZE, false, &n);
	if (r)
		return r;
	/* no 16 KiB cap on these two: they are kmalloc'ed, not psp_copy_user_blob()'ed */
	fw.hdr = calloc(1, p.hdr_len);
	fw.trans = calloc(1, p.trans_len);
	r = -ENOMEM;
	if (fw.hdr && fw.trans) {
		fw.hdr_len = p.hdr_len;
		fw.trans_len = p.trans_len;
		fw.guest_addr = p.guest_uaddr;
		fw.guest_len = p.guest_len;
		r = fw_packet(k, &fw, true);
	}
	/* the transport buffer, then the header; no struct write-back */
	if (!r && sim__copy_to_user(p.trans_uaddr, fw.trans, p.trans_len))
		r = -EFAULT;
	if (!r && sim__copy_to_user(p.hdr_uaddr, fw.hdr, p.hdr_len))
		r = -EFAULT;
	free(fw.trans);
	free(fw.hdr);
	sim__unpin(k->vm, n);
	return r;
}

/*
 * sev_receive_start(): through argp->sev_fd; then ACTIVATE binds this VM's
 * own ASID, allocated at its INIT, to the new handle (sev_bind_asid()).
 */
static int receive_start(struct cmd *k)
{
	struct sevm_abi_sev_receive_start p;
	struct sim_fw_receive_start fw = { 0 };
	uint8_t *pdh = NULL, *session = NULL;
	uint32_t st;
	int r;

	if (!sim__sev_guest(k->vm))
		return -ENOTTY;
	if (sim__copy_from_user(&p, k->c->data, sizeof(p)))
		return -EFAULT;
	if (!p.pdh_uaddr || !p.pdh_len || !p.session_uaddr || !p.session_len)
		return -EINVAL;
	r = copy_blob(p.pdh_uaddr, p.pdh_len, &pdh);
	if (!r)
		r = copy_blob(p.session_uaddr, p.session_len, &session);
	if (!r)
		r = fw_enter(k, (int)k->c->sev_fd);
	if (r)
		goto out;
	fw = (struct sim_fw_receive_start){ .handle = p.handle, .policy = p.policy, .pdh = pdh,
					    .pdh_len = p.pdh_len, .session = session,
					    .session_len = p.session_len };
	st = sim__fw_receive_start(k->sh, &fw);
	p.handle = fw.handle;
	r = bind_context(k, st, fw.handle, &p, sizeof(p));
out:
	free(session);
	free(pdh);
	return r;
}

/* sev_receive_update_data(): -EINVAL, not -ENOTTY, on a non-SEV VM */
static int receive_update_data(struct cmd *k)
{
	struct sevm_abi_sev_receive_update_data p;
	struct sim_fw_packet fw = { 0 };
	uint8_t *hdr = NULL, *trans = NULL;
	uint64_t off, n;
	int r;

	if (!sim__sev_guest(k->vm))
		return -EINVAL;
	if (sim__copy_from_user(&p, k->c->data, sizeof(p)))
		return -EFAULT;
	if (!p.hdr_uaddr || !p.hdr_len || !p.guest_uaddr || !p.guest_len ||
	    !p.trans_uaddr || !p.trans_len)
		return -EINVAL;
	off = p.guest_uaddr & (SIM_PAGE_SIZE - 1);
	if (p.guest_len > SIM_PAGE_SIZE || p.guest_len + off > SIM_PAGE_SIZE)
		return -EINVAL;
	r = copy_blob(p.hdr_uaddr, p.hdr_len, &hdr);
	if (!r)
		r = copy_blob(p.trans_uaddr, p.trans_len, &trans);
	if (!r) {
		r = sim__pin(k->vm, p.guest_uaddr & ~(SIM_PAGE_SIZE - 1), SIM_PAGE_SIZE, true, &n);
		if (!r) {
			fw = (struct sim_fw_packet){ .hdr = hdr, .hdr_len = p.hdr_len,
						     .guest_addr = p.guest_uaddr,
						     .guest_len = p.guest_len, .trans = trans,
						     .trans_len = p.trans_len };
			r = fw_packet(k, &fw, false);
			sim__unpin(k->vm, n);
		}
	}
	free(trans);
	free(hdr);
	return r;
}

/* sev_send_finish(), sev_send_cancel(), sev_receive_finish(); data is ignored */
static int migration_end(struct cmd *k, uint32_t (*fw_cmd)(struct sim_shared *, uint32_t))
{
	int r;

	if (!sim__sev_guest(k->vm))
		return -ENOTTY;
	r = fw_enter(k, k->vm->sev.fd);
	return r ? r : fw_leave(k, fw_cmd(k->sh, k->vm->sev.handle));
}

/* ---- SEND_UPDATE_VMSA (10) / RECEIVE_UPDATE_VMSA (14): the model's extension -- */

/*
 * Upstream KVM leaves ids 10 and 14 unhandled (-EINVAL).  The model carries
 * SEV-ES state as out-of-tree kernels do, with the library's argument
 * (struct sevm_abi_sev_update_vmsa), and answers as the neighbouring
 * commands do: a VM that is not an SEV guest, an unknown vCPU id, a missing
 * buffer or a transport length other than one page is -EINVAL (as upstream
 * for the first, so a probe of a non-SEV VM cannot tell); a plain SEV guest
 * reaches the firmware, which refuses a VMSA without ES (UNSUPPORTED).
 */
static struct sim_vcpu *vcpu_by_id(struct sim_vm *vm, uint32_t id)
{
	uint32_t n = __atomic_load_n(&vm->online_vcpus, __ATOMIC_ACQUIRE);

	for (uint32_t i = 0; i < n; i++)
		if (vm->vcpus[i].id == id)
			return &vm->vcpus[i];
	return NULL;
}

static int vmsa_args(struct cmd *k, struct sevm_abi_sev_update_vmsa *p, struct sim_vcpu **v)
{
	if (!sim__sev_guest(k->vm))
		return -EINVAL;
	if (sim__copy_from_user(p, k->c->data, sizeof(*p)))
		return -EFAULT;
	if (!p->hdr_uaddr || !p->hdr_len || !p->trans_uaddr || p->trans_len != SIM_PAGE_SIZE)
		return -EINVAL;
	*v = vcpu_by_id(k->vm, p->vcpu_id);
	return *v ? 0 : -EINVAL;
}

/* The VMSA page under vcpu->mutex: one packet of SIM_PAGE_SIZE, as SEND_UPDATE_DATA's */
static int send_update_vmsa(struct cmd *k)
{
	struct sevm_abi_sev_update_vmsa p;
	struct sim_fw_packet fw = { .vmsa = true, .guest_len = SIM_PAGE_SIZE };
	struct sim_vcpu *v;
	int r = vmsa_args(k, &p, &v);

	if (r)
		return r;
	fw.hdr = calloc(1, p.hdr_len);
	fw.trans = calloc(1, SIM_PAGE_SIZE);
	fw.page = malloc(SIM_PAGE_SIZE);
	r = -ENOMEM;
	if (fw.hdr && fw.trans && fw.page) {
		fw.hdr_len = p.hdr_len;
		fw.trans_len = SIM_PAGE_SIZE;
		sim__lock(&v->mutex);
		build_vmsa(v, fw.page);
		/* the firmware knows the VMSAs it encrypted (§5.3 step 9) */
		fw.vmsa_known = v->protected;
		r = fw_packet(k, &fw, true);
		sim__unlock(&v->mutex);
	}
	if (!r && sim__copy_to_user(p.trans_uaddr, fw.trans, SIM_PAGE_SIZE))
		r = -EFAULT;
	if (!r && sim__copy_to_user(p.hdr_uaddr, fw.hdr, p.hdr_len))
		r = -EFAULT;
	free(fw.page);
	free(fw.trans);
	free(fw.hdr);
	return r;
}

/*
 * The received state becomes the vCPU's, protected as after
 * LAUNCH_UPDATE_VMSA; as there (v7.0), a vCPU whose VMSA is already
 * encrypted is -EINVAL.
 */
static int receive_vmsa_one(struct cmd *k, struct sim_vcpu *v, struct sim_fw_packet *fw)
{
	int r;

	if (v->protected)
		return -EINVAL;
	r = fw_packet(k, fw, false);
	if (r)
		return r;
	load_vmsa(v, fw->page);
	v->fpu_confidential = true;
	v->protected = true;
	return 0;
}

static int receive_update_vmsa(struct cmd *k)
{
	struct sevm_abi_sev_update_vmsa p;
	struct sim_fw_packet fw = { .vmsa = true, .guest_len = SIM_PAGE_SIZE };
	struct sim_vcpu *v;
	int r = vmsa_args(k, &p, &v);

	if (!r)
		r = copy_blob(p.hdr_uaddr, p.hdr_len, &fw.hdr);
	if (!r)
		r = copy_blob(p.trans_uaddr, SIM_PAGE_SIZE, &fw.trans);
	if (!r) {
		fw.page = malloc(SIM_PAGE_SIZE);
		r = fw.page ? 0 : -ENOMEM;
	}
	if (!r) {
		fw.hdr_len = p.hdr_len;
		fw.trans_len = SIM_PAGE_SIZE;
		sim__lock(&v->mutex);
		r = receive_vmsa_one(k, v, &fw);
		sim__unlock(&v->mutex);
	}
	free(fw.page);
	free(fw.trans);
	free(fw.hdr);
	return r;
}

/* ---- Dispatch (§3.2) -------------------------------------------------------- */

/* is_cmd_allowed_from_mirror() */
static bool allowed_from_mirror(uint32_t id)
{
	return id == SEVM_ABI_SEV_LAUNCH_UPDATE_VMSA || id == SEVM_ABI_SEV_GUEST_STATUS ||
	       id == SEVM_ABI_SEV_DBG_DECRYPT || id == SEVM_ABI_SEV_DBG_ENCRYPT;
}

/* 1 with *r set for a handled id; 0 for an id the switch does not know. */
static int dispatch(struct cmd *k, int *r)
{
	switch (k->c->id) {
	case SEVM_ABI_SEV_ES_INIT:
		/* sev_es_enabled is off: -ENOTTY, and no write-back */
		if (!k->sh->cfg.sev_es) {
			*r = -ENOTTY;
			return 0;
		}
		/* fallthrough */
	case SEVM_ABI_SEV_INIT:			*r = sev_guest_init(k); break;
	case SEVM_ABI_SEV_INIT2:		*r = sev_guest_init2(k); break;
	case SEVM_ABI_SEV_LAUNCH_START:		*r = launch_start(k); break;
	case SEVM_ABI_SEV_LAUNCH_UPDATE_DATA:	*r = launch_update_data(k); break;
	case SEVM_ABI_SEV_LAUNCH_UPDATE_VMSA:	*r = launch_update_vmsa(k); break;
	case SEVM_ABI_SEV_LAUNCH_MEASURE:	*r = launch_measure(k); break;
	case SEVM_ABI_SEV_LAUNCH_FINISH:	*r = launch_finish(k); break;
	case SEVM_ABI_SEV_GUEST_STATUS:		*r = guest_status(k); break;
	case SEVM_ABI_SEV_DBG_DECRYPT:		*r = dbg_crypt(k, true); break;
	case SEVM_ABI_SEV_DBG_ENCRYPT:		*r = dbg_crypt(k, false); break;
	case SEVM_ABI_SEV_LAUNCH_SECRET:	*r = launch_secret(k); break;
	case SEVM_ABI_SEV_GET_ATTESTATION_REPORT: *r = attestation_report(k); break;
	case SEVM_ABI_SEV_SEND_START:		*r = send_start(k); break;
	case SEVM_ABI_SEV_SEND_UPDATE_DATA:	*r = send_update_data(k); break;
	case SEVM_ABI_SEV_SEND_FINISH:		*r = migration_end(k, sim__fw_send_finish); break;
	case SEVM_ABI_SEV_SEND_CANCEL:		*r = migration_end(k, sim__fw_send_cancel); break;
	case SEVM_ABI_SEV_RECEIVE_START:	*r = receive_start(k); break;
	case SEVM_ABI_SEV_RECEIVE_UPDATE_DATA:	*r = receive_update_data(k); break;
	case SEVM_ABI_SEV_RECEIVE_FINISH:	*r = migration_end(k, sim__fw_receive_finish); break;
	case SEVM_ABI_SEV_SEND_UPDATE_VMSA:
	case SEVM_ABI_SEV_RECEIVE_UPDATE_VMSA:
		/* upstream: sev_mem_enc_ioctl()'s default, no write-back */
		if (k->sh->cfg.upstream_vmsa_ids) {
			*r = -EINVAL;
			return 0;
		}
		*r = k->c->id == SEVM_ABI_SEV_SEND_UPDATE_VMSA ? send_update_vmsa(k)
							       : receive_update_vmsa(k);
		break;
	/* No SNP VM exists in the model: the SNP handlers' !sev_snp_guest() answers. */
	case SEVM_ABI_SEV_SNP_LAUNCH_START:	*r = -ENOTTY; break;
	case SEVM_ABI_SEV_SNP_LAUNCH_UPDATE:	*r = -EINVAL; break;
	case SEVM_ABI_SEV_SNP_LAUNCH_FINISH:	*r = -ENOTTY; break;
	case SEVM_ABI_SEV_SNP_ENABLE_REQ_CERTS:	*r = -EINVAL; break;
	default:
		*r = -EINVAL;
		return 0;
	}
	return 1;
}

/* Before kvm->lock: a VM whose fds were closed without the backend may hold the last ASID. */
static void reclaim_for_init(struct sevsim *sim, struct sim_vm *vm, uint32_t id)
{
	bool es, ex;

	if (id != SEVM_ABI_SEV_INIT && id != SEVM_ABI_SEV_ES_INIT && id != SEVM_ABI_SEV_INIT2)
		return;
	es = id == SEVM_ABI_SEV_ES_INIT || (id == SEVM_ABI_SEV_INIT2 &&
					     vm->vm_type == KVM_X86_SEV_ES_VM);
	sim__lock(&sim->sh->fw_lock);
	ex = sim__asid_exhausted(sim->sh, es);
	sim__unlock(&sim->sh->fw_lock);
	if (ex)
		sim__gc(sim);
}

/* sev_mem_enc_ioctl() */
int sim__mem_enc_op(struct sevsim *sim, struct sim_vm *vm, void *argp)
{
	struct kvm_sev_cmd c;
	struct cmd k = { sim, sim->sh, vm, &c };
	int r;

	/* 1: sev_enabled is always on in the model; 2: the documented probe */
	if (!argp)
		return 0;
	/* 3 */
	if (sim__copy_from_user(&c, (uintptr_t)argp, sizeof(c)))
		return -EFAULT;
	reclaim_for_init(sim, vm, c.id);
	/* 4 */
	sim__lock(&vm->lock);
	/* 5: a mirror runs four commands only, before data is looked at */
	if (vm->sev.mirror && !allowed_from_mirror(c.id)) {
		r = -EINVAL;
		goto out;
	}
	/* 6: sev_snp_guest() is never true here.  7: the handlers */
	if (!dispatch(&k, &r))
		goto out;
	/* 8: the struct (error included) goes back for every handled id */
	if (sim__copy_to_user((uintptr_t)argp, &c, sizeof(c)))
		r = -EFAULT;
out:
	sim__unlock(&vm->lock);
	return r;
}

/* ---- Encrypted regions (§9) ------------------------------------------------ */

/* sev_mem_enc_register_region(); the struct was copied by kvm_arch_vm_ioctl() */
int sim__mem_enc_reg_region(struct sevsim *sim, struct sim_vm *vm, void *argp)
{
	struct kvm_enc_region range;
	struct sim_region *reg;
	uint64_t n;
	int r;

	(void)sim;
	if (sim__copy_from_user(&range, (uintptr_t)argp, sizeof(range)))
		return -EFAULT;
	/* v7.0 checks sev_guest() under kvm->lock */
	sim__lock(&vm->lock);
	r = -ENOTTY;
	if (!sim__sev_guest(vm))
		goto out;
	r = -EINVAL;
	if (vm->sev.mirror)
		goto out;
	/* addr / size > ULONG_MAX cannot happen on 64-bit; the model's list is bounded */
	r = -ENOMEM;
	if (vm->sev.nr_regions == SIM_MAX_REGIONS)
		goto out;
	r = sim__pin(vm, range.addr, range.size, true, &n);
	if (r)
		goto out;
	reg = &vm->sev.regions[vm->sev.nr_regions++];
	reg->uaddr = range.addr;
	reg->size = range.size;
	reg->npages = n;
out:
	sim__unlock(&vm->lock);
	return r;
}

/* sev_mem_enc_unregister_region() */
int sim__mem_enc_unreg_region(struct sevsim *sim, struct sim_vm *vm, void *argp)
{
	struct kvm_enc_region range;
	struct sim_sev *sev = &vm->sev;
	int r = -EINVAL;

	(void)sim;
	if (sim__copy_from_user(&range, (uintptr_t)argp, sizeof(range)))
		return -EFAULT;
	sim__lock(&vm->lock);
	/* the mirror check comes before kvm->lock in the kernel; same answer */
	if (sev->mirror)
		goto out;
	r = -ENOTTY;
	if (!sim__sev_guest(vm))
		goto out;
	r = -EINVAL;
	for (uint32_t i = 0; i < sev->nr_regions; i++) {
		if (sev->regions[i].uaddr != range.addr || sev->regions[i].size != range.size)
			continue;
		sim__unpin(vm, sev->regions[i].npages);
		memmove(&sev->regions[i], &sev->regions[i + 1],
			(sev->nr_regions - i - 1) * sizeof(sev->regions[0]));
		sev->nr_regions--;
		r = 0;
		break;
	}
out:
	sim__unlock(&vm->lock);
	return r;
}

/* ---- Destruction ------------------------------------------------------------- */

/* sev_vm_destroy(): table_lock and vm->lock held */
void sim__sev_vm_destroy(struct sim_shared *sh, struct sim_vm *vm)
{
	struct sim_sev *sev = &vm->sev;

	if (!sim__sev_guest(vm))
		goto out;
	/* A mirror drops its reference on the owner and touches nothing else. */
	if (sev->mirror) {
		sim__lock(&sh->mirror_lock);
		if (sev->owner >= 0 && sh->vms[sev->owner].sev.nr_mirrors)
			sh->vms[sev->owner].sev.nr_mirrors--;
		sim__unlock(&sh->mirror_lock);
		goto out;
	}
	/* unpin what userspace left registered, unbind the ASID, free it */
	sev->nr_regions = 0;
	sev->pages_locked = 0;
	sim__lock(&sh->fw_lock);
	if (sev->handle) {
		sim__fw_deactivate(sh, sev->handle);
		sim__fw_decommission(sh, sev->handle);
	}
	sim__asid_free(sh, sev->asid, sev->es_active);
	sim__unlock(&sh->fw_lock);
out:
	/* mirror_lock: other VMs' MOVEs look at every slot's owner */
	sim__lock(&sh->mirror_lock);
	memset(sev, 0, sizeof(*sev));
	sev->owner = -1;
	sim__unlock(&sh->mirror_lock);
}
