/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The platform's identity (sev-firmware.md §3): a PDH, a PEK, a CEK and an
 * OCA on P-384, made when the host is created, each certificate stamped with
 * the host's firmware version, and the model's AMD root (amd_root.c) above
 * them:
 *
 *   ARK (self) -> ASK -> CEK -+
 *                             +-> PEK -> PDH
 *                OCA (self) --+
 *
 * The PEK carries the OCA's signature in slot 1 and the CEK's in slot 2, as
 * FW PEK_GEN makes it (§1.6).  The CEK is signed by the ASK, as the CEK AMD's
 * KDS serves; Genoa's own PDH_CERT_EXPORT gives it unsigned (§3, §17.10),
 * the model gives the signed one so that its exported chain verifies whole.
 * A host made with domain_of takes that host's OCA key and certificate: two
 * platforms of one owner (§9.1 DOMAIN).
 */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "internal.h"

/* A P-384 key and a certificate of it, signature slots empty. */
static EVP_PKEY *new_key(const struct sim_config *cfg, uint32_t usage, uint32_t algo,
			 uint8_t priv[SIM_P384_BYTES], uint8_t cert[SIM_CERT_LEN])
{
	uint8_t qx[SIM_P384_BYTES], qy[SIM_P384_BYTES];
	EVP_PKEY *k = sim__ec_generate(priv, qx, qy);

	if (k)
		sim__sev_cert_init(cert, cfg, usage, algo, qx, qy);
	return k;
}

/* The private key of a certificate whose scalar is kept. */
static EVP_PKEY *cert_key(const uint8_t priv[SIM_P384_BYTES], const uint8_t cert[SIM_CERT_LEN])
{
	return sim__ec_private(priv, cert + 0x14, cert + 0x5c);
}

/* §2: the ARK self-signed, the ASK signed by it; the ASK's key to *ask */
static int amd_root(struct sim_platform *id, EVP_PKEY **ask)
{
	EVP_PKEY *ark = sim__amd_root_key(false);
	int r = -EIO;

	*ask = sim__amd_root_key(true);
	if (ark && *ask)
		r = sim__amd_cert_make(id->ark, sim__ark_key_id, sim__ark_key_id, SIM_USAGE_ARK,
				       ark, ark);
	if (!r)
		r = sim__amd_cert_make(id->ask, sim__ask_key_id, sim__ark_key_id, SIM_USAGE_ASK,
				       *ask, ark);
	EVP_PKEY_free(ark);
	return r;
}

/* The OCA: self-signed, or the domain's very key and certificate. */
static EVP_PKEY *oca_key(struct sim_platform *id, const struct sim_config *cfg,
			 const struct sim_shared *domain)
{
	EVP_PKEY *k;

	if (domain) {
		memcpy(id->oca_priv, domain->fw.id.oca_priv, sizeof(id->oca_priv));
		memcpy(id->oca, domain->fw.id.oca, sizeof(id->oca));
		return cert_key(id->oca_priv, id->oca);
	}
	k = new_key(cfg, SIM_USAGE_OCA, SIM_ALGO_ECDSA_SHA256, id->oca_priv, id->oca);
	if (k && sim__sev_cert_sign(id->oca, 0, SIM_USAGE_OCA, SIM_ALGO_ECDSA_SHA256, k)) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	return k;
}

int sim__platform_create(struct sim_shared *sh, const struct sim_shared *domain)
{
	struct sim_platform *id = &sh->fw.id;
	const struct sim_config *cfg = &sh->cfg;
	uint8_t pek_priv[SIM_P384_BYTES], cek_priv[SIM_P384_BYTES];
	EVP_PKEY *ask = NULL, *oca, *cek, *pek, *pdh;
	int r;

	oca = oca_key(id, cfg, domain);
	cek = new_key(cfg, SIM_USAGE_CEK, SIM_ALGO_ECDSA_SHA256, cek_priv, id->cek);
	pek = new_key(cfg, SIM_USAGE_PEK, SIM_ALGO_ECDSA_SHA256, pek_priv, id->pek);
	pdh = new_key(cfg, SIM_USAGE_PDH, SIM_ALGO_ECDH_SHA256, id->pdh_priv, id->pdh);
	r = oca && cek && pek && pdh ? amd_root(id, &ask) : -EIO;
	/* §2.2: a 2048-bit ASK signs a CEK as RSA_SHA256 */
	if (!r)
		r = sim__sev_cert_sign(id->cek, 0, SIM_USAGE_ASK, SIM_ALGO_RSA_SHA256, ask);
	if (!r)
		r = sim__sev_cert_sign(id->pek, 0, SIM_USAGE_OCA, SIM_ALGO_ECDSA_SHA256, oca);
	if (!r)
		r = sim__sev_cert_sign(id->pek, 1, SIM_USAGE_CEK, SIM_ALGO_ECDSA_SHA256, cek);
	if (!r)
		r = sim__sev_cert_sign(id->pdh, 0, SIM_USAGE_PEK, SIM_ALGO_ECDSA_SHA256, pek);
	EVP_PKEY_free(ask);
	EVP_PKEY_free(oca);
	EVP_PKEY_free(cek);
	EVP_PKEY_free(pek);
	EVP_PKEY_free(pdh);
	/* only the PDH's and the OCA's scalars outlive this */
	OPENSSL_cleanse(pek_priv, sizeof(pek_priv));
	OPENSSL_cleanse(cek_priv, sizeof(cek_priv));
	return r;
}

/* §8.1 step 9, §8.2 step 4: the remote PDH is only sanity-checked, then ECDH */
uint32_t sim__pdh_agree(const struct sim_shared *sh, const uint8_t *remote_pdh,
			uint8_t z[SIM_P384_BYTES])
{
	EVP_PKEY *peer = NULL, *own;
	uint32_t st = sim__cert_sanity(remote_pdh, SIM_USAGE_PDH, SIM_ALGO_ECDH_SHA256, &peer);

	if (st)
		return st;
	own = cert_key(sh->fw.id.pdh_priv, sh->fw.id.pdh);
	if (!own || sim__ecdh(own, peer, z))
		st = SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	EVP_PKEY_free(own);
	EVP_PKEY_free(peer);
	return st;
}

/* §13 PDH_CERT_EXPORT: INIT or WORKING; either buffer short -> both lengths back */
uint32_t sim__fw_pdh_cert_export(struct sim_shared *sh, uint8_t *pdh, uint32_t *pdh_len,
				 uint8_t *chain, uint32_t *chain_len)
{
	const struct sim_platform *id = &sh->fw.id;
	uint32_t st = sim__fw_need_init_or_working(sh);

	if (st)
		return st;
	if (*pdh_len < SIM_CERT_LEN || *chain_len < SEVM_ABI_SEV_CERT_CHAIN_SIZE || !pdh ||
	    !chain) {
		*pdh_len = SIM_CERT_LEN;
		*chain_len = SEVM_ABI_SEV_CERT_CHAIN_SIZE;
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	}
	/* §3: the chain is PEK, OCA, CEK */
	memcpy(pdh, id->pdh, SIM_CERT_LEN);
	memcpy(chain, id->pek, SIM_CERT_LEN);
	memcpy(chain + SIM_CERT_LEN, id->oca, SIM_CERT_LEN);
	memcpy(chain + 2 * SIM_CERT_LEN, id->cek, SIM_CERT_LEN);
	*pdh_len = SIM_CERT_LEN;
	*chain_len = SEVM_ABI_SEV_CERT_CHAIN_SIZE;
	return SEVM_ABI_SEV_RET_SUCCESS;
}

/* KDS's stand-in: ASK || ARK, the order SEND_START takes (§2.3) */
int sevsim_amd_certs(struct sevsim *sim, void *buf, uint32_t *len)
{
	const uint32_t need = 2 * SIM_AMD_CERT_LEN;

	if (!sim || !len)
		return -EINVAL;
	if (!buf || *len < need) {
		*len = need;
		return -ENOSPC;
	}
	memcpy(buf, sim->sh->fw.id.ask, SIM_AMD_CERT_LEN);
	memcpy((uint8_t *)buf + SIM_AMD_CERT_LEN, sim->sh->fw.id.ark, SIM_AMD_CERT_LEN);
	*len = need;
	return 0;
}
