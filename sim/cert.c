/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Certificates as the firmware makes and checks them: the SEV format (PDH,
 * PEK, OCA, CEK; sev-firmware.md §1), AMD's (ARK, ASK; §2), and the chains
 * SEND_START validates (§3, §8.1).  Checks run in the firmware's order and
 * answer its status codes (§1.7, §2.3).
 *
 * The model's firmware takes only P-384 keys in SEV-format certificates:
 * platform keys are always ECC (§1.2b), and the SEV-format RSA form appears
 * only inside the firmware, for the ASK that signs a CEK.
 */
#include <string.h>

#include <openssl/evp.h>

#include "internal.h"

#define OK		SEVM_ABI_SEV_RET_SUCCESS
#define BAD_CERT	SEVM_ABI_SEV_RET_INVALID_CERTIFICATE
#define BAD_SIG		SEVM_ABI_SEV_RET_BAD_SIGNATURE

/* §2.1 offsets */
#define AMD_KEY_ID	0x04
#define AMD_CERTIFYING	0x14
#define AMD_USAGE	0x24
#define AMD_EXP_BITS	0x38
#define AMD_MOD_BITS	0x3c
#define AMD_HDR		0x40

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* §1.3: the high byte of an algorithm names the hash */
static const EVP_MD *algo_md(uint32_t algo)
{
	return (algo >> 8) == 1 ? EVP_sha384() : EVP_sha256();
}

static bool algo_rsa(uint32_t algo)
{
	return algo == SIM_ALGO_RSA_SHA256 || algo == SIM_ALGO_RSA_SHA384;
}

static bool algo_ecdsa(uint32_t algo)
{
	return algo == SIM_ALGO_ECDSA_SHA256 || algo == SIM_ALGO_ECDSA_SHA384;
}

static bool algo_ec(uint32_t algo)
{
	return algo_ecdsa(algo) || algo == SIM_ALGO_ECDH_SHA256 || algo == SIM_ALGO_ECDH_SHA384;
}

/* ---- Making certificates ------------------------------------------------ */

void sim__sev_cert_init(uint8_t cert[SIM_CERT_LEN], const struct sim_config *cfg, uint32_t usage,
			uint32_t algo, const uint8_t qx[SIM_P384_BYTES],
			const uint8_t qy[SIM_P384_BYTES])
{
	memset(cert, 0, SIM_CERT_LEN);
	put_le32(cert, 1);
	/* FW `sev_cert_init` stamps the firmware's API version into every certificate */
	cert[4] = cfg->api_major;
	cert[5] = cfg->api_minor;
	put_le32(cert + 0x08, usage);
	put_le32(cert + 0x0c, algo);
	put_le32(cert + 0x10, 2);	/* §1.2a CURVE: P-384 */
	memcpy(cert + 0x14, qx, SIM_P384_BYTES);
	memcpy(cert + 0x5c, qy, SIM_P384_BYTES);
	/* §1.6: an empty slot is usage 0x1000, algo 0 */
	put_le32(cert + 0x414, SIM_USAGE_NONE);
	put_le32(cert + 0x61c, SIM_USAGE_NONE);
}

int sim__sev_cert_sign(uint8_t cert[SIM_CERT_LEN], int slot, uint32_t usage, uint32_t algo,
		       EVP_PKEY *signer)
{
	uint8_t *s = cert + 0x414 + slot * 0x208;

	put_le32(s, usage);
	put_le32(s + 4, algo);
	/* §1.5: both slots sign the body, 0x000-0x413 */
	if (algo_rsa(algo))
		return sim__rsa_sign(signer, algo_md(algo), cert, SIM_CERT_BODY, s + 8,
				     (size_t)EVP_PKEY_get_size(signer));
	return sim__ecdsa_sign(signer, algo_md(algo), cert, SIM_CERT_BODY, s + 8);
}

int sim__amd_cert_make(uint8_t cert[SIM_AMD_CERT_LEN], const uint8_t key_id[16],
		       const uint8_t certifying_id[16], uint32_t usage, EVP_PKEY *key,
		       EVP_PKEY *signer)
{
	const size_t body = AMD_HDR + 2 * SIM_AMD_KEY_BYTES;
	int r;

	memset(cert, 0, SIM_AMD_CERT_LEN);
	put_le32(cert, 1);
	memcpy(cert + AMD_KEY_ID, key_id, 16);
	memcpy(cert + AMD_CERTIFYING, certifying_id, 16);
	put_le32(cert + AMD_USAGE, usage);
	put_le32(cert + AMD_EXP_BITS, SIM_AMD_KEY_BYTES * 8);
	put_le32(cert + AMD_MOD_BITS, SIM_AMD_KEY_BYTES * 8);
	r = sim__rsa_parts(key, cert + AMD_HDR, cert + AMD_HDR + SIM_AMD_KEY_BYTES,
			   SIM_AMD_KEY_BYTES);
	/* §2.2: a 2048-bit signer signs with SHA-256 */
	return r ? r : sim__rsa_sign(signer, EVP_sha256(), cert, body, cert + body,
				     SIM_AMD_KEY_BYTES);
}

/* ---- Checking them (the firmware's side) -------------------------------- */

/* A signer as §1.7 matches it to a slot: its usage and algorithm, and its key. */
struct signer {
	uint32_t usage, algo;
	EVP_PKEY *pk;
	size_t rsa_len;		/* RSA: modulus bytes */
};

static bool usage_known(uint32_t usage)
{
	return usage == SIM_USAGE_ARK || usage == SIM_USAGE_ASK ||
	       (usage >= SIM_USAGE_OCA && usage <= SIM_USAGE_CEK);
}

/* §1.7 step 1 / step 3: the certificate's own key, if it is a valid one */
static uint32_t sev_key(const uint8_t *cert, struct signer *k)
{
	uint8_t qx[SIM_P384_BYTES], qy[SIM_P384_BYTES];

	k->usage = le32(cert + 0x08);
	k->algo = le32(cert + 0x0c);
	k->rsa_len = 0;
	k->pk = NULL;
	if (!usage_known(k->usage) || !algo_ec(k->algo) || le32(cert + 0x10) != 2)
		return BAD_CERT;
	/* §1.2a: only the low 48 bytes of QX and QY count; the rest must be zero */
	for (int i = SIM_P384_BYTES; i < SIM_EC_FIELD; i++)
		if (cert[0x14 + i] || cert[0x5c + i])
			return BAD_CERT;
	memcpy(qx, cert + 0x14, sizeof(qx));
	memcpy(qy, cert + 0x5c, sizeof(qy));
	k->pk = sim__ec_public(qx, qy);
	return k->pk ? OK : BAD_CERT;
}

/* §1.7 step 4 */
static bool role_ok(uint32_t subject, uint32_t signer)
{
	switch (subject) {
	case SIM_USAGE_PDH: return signer == SIM_USAGE_PEK;
	case SIM_USAGE_PEK: return signer == SIM_USAGE_OCA || signer == SIM_USAGE_CEK;
	case SIM_USAGE_OCA: return signer == SIM_USAGE_OCA;
	case SIM_USAGE_CEK: return signer == SIM_USAGE_ASK;
	}
	return false;
}

static uint32_t slot_verify(const uint8_t *cert, const uint8_t *sig, const struct signer *s)
{
	bool ok = false;

	if (algo_rsa(s->algo))
		ok = sim__rsa_verify(s->pk, algo_md(s->algo), cert, SIM_CERT_BODY, sig, s->rsa_len);
	else if (algo_ecdsa(s->algo))
		ok = sim__ecdsa_verify(s->pk, algo_md(s->algo), cert, SIM_CERT_BODY, sig);
	return ok ? OK : BAD_SIG;
}

/*
 * §1.7 sev_cert_validate(), the signer already valid: the slots (a
 * malformed one stops at once; one naming another signer is skipped; a bad
 * signature moves on, anything else ends the loop), the body, the roles.
 */
static uint32_t sev_validate(const uint8_t *cert, const struct signer *s)
{
	struct signer own;
	uint32_t st = BAD_CERT;

	for (int i = 0; i < 2; i++) {
		const uint8_t *slot = cert + 0x414 + i * 0x208;
		uint32_t usage = le32(slot), algo = le32(slot + 4);

		if ((algo == SIM_ALGO_NONE) != (usage == SIM_USAGE_NONE))
			return BAD_SIG;
		if (usage != s->usage || algo != s->algo)
			continue;
		st = slot_verify(cert, slot + 8, s);
		if (st != BAD_SIG)
			break;
	}
	if (st)
		return st;
	if (le32(cert) != 1)
		return BAD_CERT;
	st = sev_key(cert, &own);
	EVP_PKEY_free(own.pk);
	if (st)
		return st;
	return role_ok(own.usage, s->usage) ? OK : BAD_CERT;
}

/* Validate cert against s, and make it the next signer (*next) on success. */
static uint32_t sev_link(const uint8_t *cert, const struct signer *s, struct signer *next)
{
	uint32_t st = sev_validate(cert, s);

	return st ? st : sev_key(cert, next);
}

uint32_t sim__cert_sanity(const uint8_t *cert, uint32_t usage, uint32_t algo, EVP_PKEY **key)
{
	struct signer k;
	uint32_t st;

	if (le32(cert) != 1)
		return BAD_CERT;
	st = sev_key(cert, &k);
	if (!st && (k.usage != usage || k.algo != algo))
		st = BAD_CERT;
	if (st)
		EVP_PKEY_free(k.pk);
	else
		*key = k.pk;
	return st;
}

/*
 * §2.3 amd_cert_validate(): the signature first (by parent, or by the
 * certificate's own key when parent is NULL), then VERSION, KEY_USAGE and
 * CERTIFYING_ID.  bits: the key size the chain's length implied.
 */
static uint32_t amd_validate(const uint8_t *cert, uint32_t bits, const struct signer *parent,
			     const uint8_t *parent_id, uint32_t usage, struct signer *out)
{
	size_t n = bits / 8, body = AMD_HDR + 2 * n;
	const struct signer *by = parent ? parent : out;
	uint32_t st = OK;

	out->usage = le32(cert + AMD_USAGE);
	out->rsa_len = n;
	/* ST: a 2K key is RSA_SHA256 when it signs a CEK, a 4K one RSA_SHA384 (§2.2) */
	out->algo = bits == 2048 ? SIM_ALGO_RSA_SHA256 : SIM_ALGO_RSA_SHA384;
	if (le32(cert + AMD_EXP_BITS) != bits || le32(cert + AMD_MOD_BITS) != bits)
		return BAD_CERT;
	out->pk = sim__rsa_public(cert + AMD_HDR, cert + AMD_HDR + n, n);
	if (!out->pk)
		return BAD_CERT;
	if (!sim__rsa_verify(by->pk, algo_md(by->algo), cert, body, cert + body, by->rsa_len))
		st = BAD_SIG;
	else if (le32(cert) != 1 || out->usage != usage ||
		 memcmp(cert + AMD_CERTIFYING, parent_id ? parent_id : cert + AMD_KEY_ID, 16))
		st = BAD_CERT;
	if (st) {
		EVP_PKEY_free(out->pk);
		out->pk = NULL;
	}
	return st;
}

/* §2.3 amd_cert_chain_length_is_valid(): ASK || ARK, and the key sizes each length means */
static const struct {
	uint32_t len, ask_bits, ark_bits;
} amd_layouts[] = {
	{ 1664, 2048, 2048 }, { 2176, 4096, 2048 }, { 2688, 2048, 4096 }, { 3200, 4096, 4096 },
};

/*
 * FW `amd_cert_validate_ark`: self-signed, then the KEY_ID is the built-in
 * root's and the body hashes to the fused value.  The model's fuse is its
 * own ARK: comparing the bodies is the hash comparison without the hash.
 */
static uint32_t ark_validate(const struct sim_shared *sh, const uint8_t *ark, uint32_t bits,
			     struct signer *out)
{
	size_t body = AMD_HDR + 2 * (bits / 8);
	uint32_t st = amd_validate(ark, bits, NULL, NULL, SIM_USAGE_ARK, out);

	if (!st && (memcmp(ark + AMD_KEY_ID, sim__ark_key_id, 16) ||
		    bits != SIM_AMD_KEY_BYTES * 8 || memcmp(ark, sh->fw.id.ark, body)))
		st = BAD_CERT;
	return st;
}

/* §8.1 step 6, as FW `validate_platform` */
uint32_t sim__chain_platform(const struct sim_shared *sh, const uint8_t *pdh, uint32_t pdh_len,
			     const uint8_t *plat, uint32_t plat_len, const uint8_t *amd,
			     uint32_t amd_len)
{
	struct signer ark = { 0 }, ask = { 0 }, cek = { 0 }, pek = { 0 };
	const uint8_t *ask_cert = amd;
	size_t ask_len = 0;
	uint32_t st, ask_bits = 0, ark_bits = 0;

	for (size_t i = 0; i < sizeof(amd_layouts) / sizeof(amd_layouts[0]); i++) {
		if (amd_layouts[i].len != amd_len)
			continue;
		ask_bits = amd_layouts[i].ask_bits;
		ark_bits = amd_layouts[i].ark_bits;
		ask_len = AMD_HDR + 2 * ask_bits / 8 + ark_bits / 8;
	}
	if (plat_len != SEVM_ABI_SEV_CERT_CHAIN_SIZE || pdh_len != SIM_CERT_LEN || !ask_bits)
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	st = ark_validate(sh, amd + ask_len, ark_bits, &ark);
	if (!st)
		st = amd_validate(ask_cert, ask_bits, &ark, amd + ask_len + AMD_KEY_ID,
				  SIM_USAGE_ASK, &ask);
	/* PDH_CERT_EXPORT's chain: PEK, OCA, CEK (§3) */
	if (!st)
		st = sev_link(plat + 2 * SIM_CERT_LEN, &ask, &cek);
	if (!st)
		st = sev_link(plat, &cek, &pek);
	if (!st)
		st = sev_validate(pdh, &pek);
	EVP_PKEY_free(ark.pk);
	EVP_PKEY_free(ask.pk);
	EVP_PKEY_free(cek.pk);
	EVP_PKEY_free(pek.pk);
	return st;
}

/* §8.1 step 7, as FW `validate_domain` */
uint32_t sim__chain_domain(const struct sim_shared *sh, const uint8_t *pdh, uint32_t pdh_len,
			   const uint8_t *plat, uint32_t plat_len)
{
	const uint8_t *oca_cert = plat + SIM_CERT_LEN;
	struct signer oca = { 0 }, pek = { 0 };
	uint32_t st;

	if (plat_len != SEVM_ABI_SEV_CERT_CHAIN_SIZE || pdh_len != SIM_CERT_LEN)
		return SEVM_ABI_SEV_RET_INVALID_LEN;
	st = sev_key(oca_cert, &oca);
	if (!st)
		st = sev_validate(oca_cert, &oca);
	if (!st)
		st = sev_link(plat, &oca, &pek);
	if (!st)
		st = sev_validate(pdh, &pek);
	if (!st && memcmp(oca_cert, sh->fw.id.oca, SIM_CERT_LEN))
		st = SEVM_ABI_SEV_RET_POLICY_FAILURE;
	EVP_PKEY_free(oca.pk);
	EVP_PKEY_free(pek.pk);
	return st;
}
