/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SEV certificates: the SEV format (sev-firmware.md §1), signature checks by
 * either kind of signer (§1.4, §1.5, §2.2), the chain rules (§3) and the
 * public API.  AMD's own format is located in amd_cert.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "../core/error.h"
#include "../core/opts.h"
#include "cert.h"

/* Big enough for any key this format holds: 4096-bit RSA. */
#define MAX_RSA_BYTES 512

const char *sevm__cert_usage_name(uint32_t usage)
{
	switch (usage) {
	case SEVM_CERT_ARK: return "ARK";
	case SEVM_CERT_ASK: return "ASK";
	case SEVM_CERT_OCA: return "OCA";
	case SEVM_CERT_PEK: return "PEK";
	case SEVM_CERT_PDH: return "PDH";
	case SEVM_CERT_CEK: return "CEK";
	}
	return NULL;
}

const char *sevm__cert_algo_name(uint32_t algo)
{
	switch (algo) {
	case SEVM__ALGO_RSA_SHA256: return "RSA_SHA256";
	case SEVM__ALGO_ECDSA_SHA256: return "ECDSA_SHA256";
	case SEVM__ALGO_ECDH_SHA256: return "ECDH_SHA256";
	case SEVM__ALGO_RSA_SHA384: return "RSA_SHA384";
	case SEVM__ALGO_ECDSA_SHA384: return "ECDSA_SHA384";
	case SEVM__ALGO_ECDH_SHA384: return "ECDH_SHA384";
	}
	return NULL;
}

/* "PEK" or "usage 0x1007", into a caller's buffer. */
static const char *usage_str(uint32_t usage, char *buf, size_t n)
{
	const char *s = sevm__cert_usage_name(usage);

	if (s)
		return s;
	snprintf(buf, n, "usage 0x%x", usage);
	return buf;
}

static const char *algo_str(uint32_t algo, char *buf, size_t n)
{
	const char *s = sevm__cert_algo_name(algo);

	if (s)
		return s;
	snprintf(buf, n, "algo 0x%x", algo);
	return buf;
}

static bool algo_is_rsa(uint32_t algo)
{
	return algo == SEVM__ALGO_RSA_SHA256 || algo == SEVM__ALGO_RSA_SHA384;
}

static bool algo_is_ecdsa(uint32_t algo)
{
	return algo == SEVM__ALGO_ECDSA_SHA256 || algo == SEVM__ALGO_ECDSA_SHA384;
}

/* §1.3: the high byte of the code names the hash. */
static const EVP_MD *algo_md(uint32_t algo)
{
	return (algo >> 8) == 1 ? EVP_sha384() : EVP_sha256();
}

/* ---- The SEV format ------------------------------------------------------ */

int sevm__sev_cert_locate(const uint8_t *p, size_t len, struct sevm__cert *c)
{
	memset(c, 0, sizeof(*c));
	if (len < SEVM__SEV_CERT_LEN)
		return sevm__fail(-SEVM_ERR_FORMAT, "SEV certificate: %zu bytes, it takes %d",
				  len, SEVM__SEV_CERT_LEN);
	c->raw = p;
	c->len = SEVM__SEV_CERT_LEN;
	c->body_len = SEVM__SEV_CERT_BODY;
	c->version = sevm__le32(p);
	c->api_major = p[4];
	c->api_minor = p[5];
	c->usage = sevm__le32(p + 0x08);
	c->algo = sevm__le32(p + 0x0c);
	/* §1.2: PUBKEY is a union, and the algorithm says which member. */
	c->key.rsa = algo_is_rsa(c->algo);
	if (c->key.rsa) {
		c->key.bits = sevm__le32(p + 0x10);
		c->key.exp = p + 0x14;
		c->key.exp_len = MAX_RSA_BYTES;
		c->key.mod = p + 0x214;
		c->key.mod_len = MAX_RSA_BYTES;
	} else {
		c->key.bits = 384;
		c->key.curve = sevm__le32(p + 0x10);
		c->key.qx = p + 0x14;
		c->key.qy = p + 0x5c;
	}
	for (int i = 0; i < 2; i++) {
		const uint8_t *s = p + 0x414 + i * 0x208;

		c->slot[i].usage = sevm__le32(s);
		c->slot[i].algo = sevm__le32(s + 4);
		c->slot[i].sig = s + 8;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * §1.7 step 3 and the key rules of §1.2.  Stricter than FW's `0 < algo <
 * 0x104` range: a code outside §1.3 names no key type, so no layout.  The
 * usage must fit the key: AMD keys are RSA, platform keys P-384.
 */
static int sev_cert_check_fields(const struct sevm__cert *c)
{
	char ub[24], ab[24];

	if (c->version != 1)
		return sevm__fail(-SEVM_ERR_FORMAT, "SEV certificate: VERSION is %u, not 1",
				  c->version);
	if (!sevm__cert_usage_name(c->usage))
		return sevm__fail(-SEVM_ERR_FORMAT, "SEV certificate: PUBKEY_USAGE 0x%x is not "
				  "a certificate's", c->usage);
	if (!sevm__cert_algo_name(c->algo))
		return sevm__fail(-SEVM_ERR_FORMAT, "SEV certificate: PUBKEY_ALGO 0x%x is not "
				  "a known algorithm", c->algo);
	if ((c->usage == SEVM_CERT_ARK || c->usage == SEVM_CERT_ASK) != c->key.rsa)
		return sevm__fail(-SEVM_ERR_FORMAT, "SEV certificate: a %s key cannot be %s",
				  usage_str(c->usage, ub, sizeof(ub)),
				  algo_str(c->algo, ab, sizeof(ab)));
	if (c->key.rsa && c->key.bits != 2048 && c->key.bits != 4096)
		return sevm__fail(-SEVM_ERR_FORMAT, "SEV certificate: RSA MODULUS_SIZE is %u "
				  "bits, not 2048 or 4096", c->key.bits);
	if (!c->key.rsa && c->key.curve != SEVM__EC_CURVE_P384)
		return sevm__fail(-SEVM_ERR_FORMAT, "SEV certificate: CURVE %u; certificate "
				  "keys are on P-384 (2)", c->key.curve);
	if (!c->key.rsa && (!all_zero(c->key.qx + SEVM__P384_BYTES,
				      SEVM__EC_FIELD - SEVM__P384_BYTES) ||
			    !all_zero(c->key.qy + SEVM__P384_BYTES,
				      SEVM__EC_FIELD - SEVM__P384_BYTES)))
		return sevm__fail(-SEVM_ERR_FORMAT, "SEV certificate: QX or QY is larger than "
				  "a P-384 coordinate");
	return 0;
}

/* ---- Keys ---------------------------------------------------------------- */

static void reverse(uint8_t *dst, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = src[n - 1 - i];
}

static int import(const char *type, OSSL_PARAM *params, EVP_PKEY **out)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	int ok;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_PKEY_fromdata_init(ctx) == 1 &&
	     EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok ? 0 : -SEVM_ERR_FORMAT;
}

/* An RSA key as FW would take it: n of exactly the declared size, odd; e odd, 3 ≤ e < n. */
static int rsa_key(const struct sevm__cert_key *k, EVP_PKEY **out)
{
	BIGNUM *n = BN_lebin2bn(k->mod, (int)k->mod_len, NULL);
	BIGNUM *e = BN_lebin2bn(k->exp, (int)k->exp_len, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	int r = -ENOMEM;

	if (!n || !e || !bld)
		goto out;
	r = -SEVM_ERR_FORMAT;
	if (BN_num_bits(n) != (int)k->bits || !BN_is_odd(n) || !BN_is_odd(e) ||
	    BN_num_bits(e) < 2 || BN_cmp(e, n) >= 0) {
		sevm__fail(r, "RSA key: the %u-bit modulus or its exponent is not valid",
			   k->bits);
		goto out;
	}
	r = -ENOMEM;
	if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)))
		goto out;
	r = import("RSA", params, out);
	if (r == -SEVM_ERR_FORMAT)
		sevm__fail(r, "RSA key: OpenSSL refused the %u-bit key", k->bits);
out:
	if (r == -ENOMEM)
		sevm__fail(r, "RSA key");
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(e);
	BN_free(n);
	return r;
}

/* A P-384 point from little-endian QX, QY; FW `ecc_pubkey_is_valid` wants it on the curve. */
static int ec_key(const struct sevm__cert_key *k, EVP_PKEY **out)
{
	uint8_t pt[1 + 2 * SEVM__P384_BYTES];
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *chk;
	int r;

	pt[0] = 0x04;	/* SEC 1 uncompressed point */
	reverse(pt + 1, k->qx, SEVM__P384_BYTES);
	reverse(pt + 1 + SEVM__P384_BYTES, k->qy, SEVM__P384_BYTES);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     (char *)SN_secp384r1, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt));
	params[2] = OSSL_PARAM_construct_end();
	r = import("EC", params, out);
	if (r == 0) {
		chk = EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL);
		if (!chk)
			r = -ENOMEM;
		/* On the curve and not infinity; P-384's cofactor 1 makes the order check moot. */
		else if (EVP_PKEY_public_check_quick(chk) != 1)
			r = -SEVM_ERR_FORMAT;
		EVP_PKEY_CTX_free(chk);
		if (r < 0) {
			EVP_PKEY_free(*out);
			*out = NULL;
		}
	}
	if (r == -SEVM_ERR_FORMAT)
		return sevm__fail(r, "EC key: (QX, QY) is not a point on P-384");
	if (r < 0)
		return sevm__fail(r, "EC key");
	return 0;
}

static int cert_key(const struct sevm__cert *c, EVP_PKEY **out)
{
	*out = NULL;
	return c->key.rsa ? rsa_key(&c->key, out) : ec_key(&c->key, out);
}

/* Every field and the key of a located certificate; the key goes to *pk if asked for. */
static int cert_check(const struct sevm__cert *c, EVP_PKEY **pk)
{
	EVP_PKEY *k;
	int r;

	r = c->amd ? sevm__amd_cert_check(c) : sev_cert_check_fields(c);
	if (r < 0)
		return r;
	r = cert_key(c, &k);
	if (r < 0)
		return sevm__context(r, "%s certificate", c->amd ? "AMD" : "SEV");
	if (pk)
		*pk = k;
	else
		EVP_PKEY_free(k);
	return 0;
}

static int cert_parse(const void *buf, size_t len, struct sevm__cert *c, EVP_PKEY **pk)
{
	const uint8_t *p = buf;
	int r;

	if (len < 16)
		return sevm__fail(-SEVM_ERR_FORMAT, "%zu bytes: too short for a certificate of "
				  "either format", len);
	/*
	 * The formats share only VERSION.  Where the SEV format has its usage and
	 * algorithm, AMD's has random KEY_ID bytes, which name a known pair by
	 * chance about once in 2^60.
	 */
	if (sevm__cert_usage_name(sevm__le32(p + 0x08)) &&
	    sevm__cert_algo_name(sevm__le32(p + 0x0c)))
		r = sevm__sev_cert_locate(p, len, c);
	else
		r = sevm__amd_cert_locate(p, len, c);
	return r < 0 ? r : cert_check(c, pk);
}

int sevm__cert_parse(const void *buf, size_t len, struct sevm__cert *c)
{
	return cert_parse(buf, len, c, NULL);
}

/* ---- Signatures ---------------------------------------------------------- */

/* 0, -EKEYREJECTED (recorded against `what`), or -ENOMEM. */
static int digest_verify(EVP_PKEY *pk, const EVP_MD *md, bool pss, const uint8_t *sig,
			 size_t sig_len, const uint8_t *msg, size_t msg_len, const char *what)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok;

	if (!mctx)
		return sevm__fail(-ENOMEM, "%s", what);
	ok = EVP_DigestVerifyInit(mctx, &pctx, md, NULL, pk) == 1;
	/* §1.4b, §2.2: PSS, MGF1 on the same hash, salt as long as the digest. */
	if (ok && pss)
		ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
		     EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1;
	if (!ok) {
		EVP_MD_CTX_free(mctx);
		return sevm__fail(-ENOMEM, "%s: OpenSSL could not set up the check", what);
	}
	ok = EVP_DigestVerify(mctx, sig, sig_len, msg, msg_len) == 1;
	EVP_MD_CTX_free(mctx);
	if (!ok)
		return sevm__fail(-EKEYREJECTED, "%s does not verify", what);
	return 0;
}

/* §1.4b and §2.2: the little-endian signature integer, as long as the signer's modulus. */
static int rsa_verify(EVP_PKEY *pk, const EVP_MD *md, const uint8_t *sig_le, size_t sig_len,
		      const uint8_t *msg, size_t msg_len, const char *what)
{
	uint8_t sig[MAX_RSA_BYTES];

	reverse(sig, sig_le, sig_len);
	return digest_verify(pk, md, true, sig, sig_len, msg, msg_len, what);
}

/* §1.4a: r and s little-endian in 72-byte fields; FW refuses 0 and ≥ n (`ecdsa_verify`). */
static int ecdsa_verify(EVP_PKEY *pk, const EVP_MD *md, const uint8_t *slot,
			const uint8_t *msg, size_t msg_len, const char *what)
{
	BIGNUM *r = BN_lebin2bn(slot, SEVM__EC_FIELD, NULL);
	BIGNUM *s = BN_lebin2bn(slot + SEVM__EC_FIELD, SEVM__EC_FIELD, NULL);
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_secp384r1);
	ECDSA_SIG *sig = ECDSA_SIG_new();
	unsigned char *der = NULL;
	const BIGNUM *n;
	int der_len, err;

	if (!r || !s || !g || !sig) {
		err = sevm__fail(-ENOMEM, "%s", what);
		goto out;
	}
	n = EC_GROUP_get0_order(g);
	if (BN_is_zero(r) || BN_is_zero(s) || BN_cmp(r, n) >= 0 || BN_cmp(s, n) >= 0) {
		err = sevm__fail(-EKEYREJECTED, "%s: r or s is 0 or not below the order of "
				 "P-384", what);
		goto out;
	}
	if (ECDSA_SIG_set0(sig, r, s) != 1) {
		err = sevm__fail(-ENOMEM, "%s", what);
		goto out;
	}
	r = s = NULL;	/* sig owns them now */
	der_len = i2d_ECDSA_SIG(sig, &der);
	if (der_len <= 0)
		err = sevm__fail(-ENOMEM, "%s: encoding r and s", what);
	else
		err = digest_verify(pk, md, false, der, (size_t)der_len, msg, msg_len, what);
out:
	OPENSSL_free(der);
	ECDSA_SIG_free(sig);
	EC_GROUP_free(g);
	BN_free(s);
	BN_free(r);
	return err;
}

/* One slot of an SEV certificate, made by `signer` (whose algorithm it names). */
static int slot_verify(const struct sevm__cert *c, int i, const struct sevm__cert *signer,
		       EVP_PKEY *pk)
{
	const struct sevm__cert_slot *sl = &c->slot[i];
	char what[64];

	snprintf(what, sizeof(what), "SIG%d (%s, %s)", i + 1,
		 sevm__cert_usage_name(sl->usage), sevm__cert_algo_name(sl->algo));
	if (algo_is_rsa(sl->algo))
		return rsa_verify(pk, algo_md(sl->algo), sl->sig, signer->key.bits / 8,
				  c->raw, c->body_len, what);
	if (algo_is_ecdsa(sl->algo))
		return ecdsa_verify(pk, algo_md(sl->algo), sl->sig, c->raw, c->body_len, what);
	return sevm__fail(-EKEYREJECTED, "%s: an ECDH key makes no signatures", what);
}

/*
 * §1.7 step 2: a malformed slot stops at once; slots that do not name the
 * signer's (usage, algorithm) are skipped, whatever their position (§1.6:
 * the PEK holds the OCA's signature first, the CEK's second); a bad
 * signature moves on; no matching slot at all is a format error.
 */
static int slots_verify(const struct sevm__cert *c, const struct sevm__cert *signer,
			EVP_PKEY *pk)
{
	char ub[24], ab[24];
	int r = 1;

	for (int i = 0; i < 2; i++) {
		const struct sevm__cert_slot *sl = &c->slot[i];

		if ((sl->algo == SEVM__ALGO_NONE) != (sl->usage == SEVM__USAGE_NONE))
			return sevm__fail(-SEVM_ERR_FORMAT, "SIG%d is malformed: usage 0x%x "
					  "with algo 0x%x", i + 1, sl->usage, sl->algo);
		if (sl->usage != signer->usage || sl->algo != signer->algo)
			continue;
		r = slot_verify(c, i, signer, pk);
		if (r != -EKEYREJECTED)
			return r;
	}
	if (r == 1)
		return sevm__fail(-SEVM_ERR_FORMAT, "no signature slot names the signer "
				  "(%s, %s); SIG1 is (0x%x, 0x%x), SIG2 (0x%x, 0x%x)",
				  usage_str(signer->usage, ub, sizeof(ub)),
				  algo_str(signer->algo, ab, sizeof(ab)), c->slot[0].usage,
				  c->slot[0].algo, c->slot[1].usage, c->slot[1].algo);
	return r;
}

/* §2.2: RSA-PSS over header, exponent and modulus; the hash follows the key size. */
static int amd_sig_verify(const struct sevm__cert *c, const struct sevm__cert *signer,
			  EVP_PKEY *pk)
{
	if (!signer->amd)
		return sevm__fail(-SEVM_ERR_FORMAT, "an AMD certificate is signed by an ARK in "
				  "AMD's format, not an SEV-format one");
	if (c->sig_len != signer->key.mod_len)
		return sevm__fail(-EKEYREJECTED, "the signature has %zu bits, the signer's "
				  "key %u: another key made it", c->sig_len * 8, signer->key.bits);
	return rsa_verify(pk, signer->key.bits == 2048 ? EVP_sha256() : EVP_sha384(),
			  c->sig, c->sig_len, c->raw, c->body_len, "RSA-PSS signature");
}

/* §1.7 step 4 and §2.3: who may sign whom. */
static bool role_ok(uint32_t subject, uint32_t signer)
{
	switch (subject) {
	case SEVM_CERT_PDH: return signer == SEVM_CERT_PEK;
	case SEVM_CERT_PEK: return signer == SEVM_CERT_OCA || signer == SEVM_CERT_CEK;
	case SEVM_CERT_OCA: return signer == SEVM_CERT_OCA;
	case SEVM_CERT_CEK: return signer == SEVM_CERT_ASK;
	case SEVM_CERT_ASK: return signer == SEVM_CERT_ARK;
	case SEVM_CERT_ARK: return signer == SEVM_CERT_ARK;
	}
	return false;
}

/*
 * The firmware's order: the signer must be a valid key; then the signature;
 * then the subject's own fields; then the roles (and for AMD's format, that
 * CERTIFYING_ID names the signer).  `label` gets "PDH <- PEK" as soon as the
 * usages are known.  The subject's format follows from the signer: only the
 * ARK signs AMD-format certificates (§3).
 */
static int verify(const uint8_t *cert, size_t cert_len, const uint8_t *signer,
		  size_t signer_len, char *label, size_t label_len)
{
	struct sevm__cert c, s;
	char ub[2][24];
	EVP_PKEY *pk = NULL;
	int r;

	r = cert_parse(signer, signer_len, &s, &pk);
	if (r < 0)
		return sevm__context(r, "signer");
	r = s.usage == SEVM_CERT_ARK ? sevm__amd_cert_locate(cert, cert_len, &c)
				     : sevm__sev_cert_locate(cert, cert_len, &c);
	if (r < 0) {
		EVP_PKEY_free(pk);
		return sevm__context(r, "certificate (the %s signs %s)",
				     sevm__cert_usage_name(s.usage),
				     s.usage == SEVM_CERT_ARK ? "AMD-format certificates"
							      : "SEV-format certificates");
	}
	snprintf(label, label_len, "%s <- %s", usage_str(c.usage, ub[0], sizeof(ub[0])),
		 usage_str(s.usage, ub[1], sizeof(ub[1])));
	r = c.amd ? amd_sig_verify(&c, &s, pk) : slots_verify(&c, &s, pk);
	EVP_PKEY_free(pk);
	if (r < 0)
		return r;
	r = cert_check(&c, NULL);
	if (r < 0)
		return r;
	if (!role_ok(c.usage, s.usage))
		return sevm__fail(-EKEYREJECTED, "a %s may not sign a %s",
				  usage_str(s.usage, ub[1], sizeof(ub[1])),
				  usage_str(c.usage, ub[0], sizeof(ub[0])));
	if (c.amd && memcmp(c.certifying_id, s.key_id, 16) != 0)
		return sevm__fail(-EKEYREJECTED, "CERTIFYING_ID is not the signer's KEY_ID");
	return 0;
}

/* ---- Public API ---------------------------------------------------------- */

int sevm_cert_parse(const void *cert, size_t len, struct sevm_cert_info *info)
{
	struct sevm_cert_info out = { .sz = sizeof(out) };
	struct sevm__cert c;
	int r;

	if (!cert)
		return sevm__fail(-EINVAL, "sevm_cert_parse: NULL certificate");
	if (info && (r = SEVM_OPTS_CHECK(info, "sevm_cert_info")) < 0)
		return r;
	ERR_set_mark();
	r = sevm__cert_parse(cert, len, &c);
	ERR_pop_to_mark();
	if (r < 0)
		return r;
	if (!info)
		return 0;
	out.usage = c.usage;
	out.algo = c.algo;
	out.len = (uint32_t)c.len;
	out.key_bits = c.key.bits;
	out.api_major = c.api_major;
	out.api_minor = c.api_minor;
	if (c.amd) {
		memcpy(out.key_id, c.key_id, sizeof(out.key_id));
		memcpy(out.certifying_id, c.certifying_id, sizeof(out.certifying_id));
	}
	sevm__report_out(info, &out, sizeof(out));
	return 0;
}

int sevm_cert_verify(const void *cert, size_t cert_len, const void *signer, size_t signer_len)
{
	char label[64] = "certificate";
	int r;

	if (!cert || !signer)
		return sevm__fail(-EINVAL, "sevm_cert_verify: NULL certificate");
	ERR_set_mark();
	r = verify(cert, cert_len, signer, signer_len, label, sizeof(label));
	ERR_pop_to_mark();
	return r < 0 ? sevm__context(r, "%s", label) : 0;
}

struct link {
	const char *name;
	int subject, signer;	/* indices into the chain's certificates */
};

enum { PDH, PEK, OCA, CEK, ASK, ARK, NCERTS };

int sevm_cert_chain_verify(const struct sevm_cert_chain *chain)
{
	/* §3, VS's order: from the root. */
	static const struct link links[] = {
		{ "ARK <- ARK", ARK, ARK }, { "ASK <- ARK", ASK, ARK },
		{ "CEK <- ASK", CEK, ASK }, { "OCA <- OCA", OCA, OCA },
		{ "PEK <- OCA", PEK, OCA }, { "PEK <- CEK", PEK, CEK },
		{ "PDH <- PEK", PDH, PEK },
	};
	static const uint32_t usage[NCERTS] = {
		SEVM_CERT_PDH, SEVM_CERT_PEK, SEVM_CERT_OCA, SEVM_CERT_CEK, SEVM_CERT_ASK,
		SEVM_CERT_ARK,
	};
	static const char *const name[NCERTS] = { "PDH", "PEK", "OCA", "CEK", "ASK", "ARK" };
	struct sevm_cert_chain ch = { 0 };
	const void *p[NCERTS];
	size_t len[NCERTS];
	struct sevm__cert c;
	char label[64];
	int r, n = 0;

	r = SEVM_OPTS_CHECK(chain, "sevm_cert_chain");
	if (r < 0)
		return r;
	memcpy(&ch, chain, chain->sz < sizeof(ch) ? chain->sz : sizeof(ch));
	p[PDH] = ch.pdh, p[PEK] = ch.pek, p[OCA] = ch.oca;
	p[CEK] = ch.cek, p[ASK] = ch.ask, p[ARK] = ch.ark;
	len[PDH] = ch.pdh_len, len[PEK] = ch.pek_len, len[OCA] = ch.oca_len;
	len[CEK] = ch.cek_len, len[ASK] = ch.ask_len, len[ARK] = ch.ark_len;
	for (int i = NCERTS - 1; i >= 0; i--) {
		if (!p[i])
			continue;
		n++;
		ERR_set_mark();
		r = sevm__cert_parse(p[i], len[i], &c);
		ERR_pop_to_mark();
		if (r < 0)
			return sevm__context(r, "chain: %s", name[i]);
		if (c.usage != usage[i])
			return sevm__fail(-SEVM_ERR_FORMAT, "chain: the %s is a %s certificate",
					  name[i], sevm__cert_usage_name(c.usage));
	}
	if (!n)
		return sevm__fail(-EINVAL, "sevm_cert_chain_verify: no certificate given");
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		const struct link *l = &links[i];

		if (!p[l->subject] || !p[l->signer])
			continue;
		ERR_set_mark();
		r = verify(p[l->subject], len[l->subject], p[l->signer], len[l->signer],
			   label, sizeof(label));
		ERR_pop_to_mark();
		if (r < 0)
			return sevm__context(r, "chain link %s", l->name);
	}
	return 0;
}
