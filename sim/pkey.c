/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The firmware's public-key primitives on the SEV formats' numbers: P-384
 * keys, ECDSA and ECDH, RSA-PSS.  Every big number in a certificate is
 * little-endian (sev-firmware.md §0, §17.1); OpenSSL's are big-endian, so
 * the conversions live here and nowhere else.  Private keys kept in the
 * shared mapping are raw big-endian scalars, never OpenSSL objects: each
 * process rebuilds the EVP_PKEY it needs.
 */
#include <errno.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "internal.h"

static void reverse(uint8_t *dst, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = src[n - 1 - i];
}

/* ---- P-384 -------------------------------------------------------------- */

EVP_PKEY *sim__ec_generate(uint8_t priv[SIM_P384_BYTES], uint8_t qx[SIM_P384_BYTES],
			    uint8_t qy[SIM_P384_BYTES])
{
	EVP_PKEY *k = EVP_EC_gen(SN_secp384r1);
	BIGNUM *d = NULL, *x = NULL, *y = NULL;
	int ok;

	ok = k && EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1 &&
	     EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
	     EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1 &&
	     BN_bn2binpad(d, priv, SIM_P384_BYTES) == SIM_P384_BYTES &&
	     BN_bn2lebinpad(x, qx, SIM_P384_BYTES) == SIM_P384_BYTES &&
	     BN_bn2lebinpad(y, qy, SIM_P384_BYTES) == SIM_P384_BYTES;
	BN_clear_free(d);
	BN_free(x);
	BN_free(y);
	if (!ok) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	return k;
}

/* A key from its parts: the public point (little-endian), and the scalar if priv. */
static EVP_PKEY *ec_key(const uint8_t *priv, const uint8_t qx[SIM_P384_BYTES],
			const uint8_t qy[SIM_P384_BYTES])
{
	uint8_t pt[1 + 2 * SIM_P384_BYTES];
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *k = NULL;
	BIGNUM *d = priv ? BN_bin2bn(priv, SIM_P384_BYTES, NULL) : NULL;

	pt[0] = 0x04;	/* SEC 1 uncompressed point */
	reverse(pt + 1, qx, SIM_P384_BYTES);
	reverse(pt + 1 + SIM_P384_BYTES, qy, SIM_P384_BYTES);
	if (bld && ctx && (!priv || d) &&
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, SN_secp384r1, 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)) &&
	    (!d || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d)) &&
	    (params = OSSL_PARAM_BLD_to_param(bld)) && EVP_PKEY_fromdata_init(ctx) == 1)
		EVP_PKEY_fromdata(ctx, &k, d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_clear_free(d);
	return k;
}

EVP_PKEY *sim__ec_private(const uint8_t priv[SIM_P384_BYTES], const uint8_t qx[SIM_P384_BYTES],
			  const uint8_t qy[SIM_P384_BYTES])
{
	return ec_key(priv, qx, qy);
}

/* FW `ecc_pubkey_is_valid`: on the curve, not the point at infinity. */
EVP_PKEY *sim__ec_public(const uint8_t qx[SIM_P384_BYTES], const uint8_t qy[SIM_P384_BYTES])
{
	EVP_PKEY *k = ec_key(NULL, qx, qy);
	EVP_PKEY_CTX *chk = k ? EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL) : NULL;

	if (!chk || EVP_PKEY_public_check(chk) != 1) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	EVP_PKEY_CTX_free(chk);
	return k;
}

/* §4.2: Z is the x-coordinate of d·Q, big-endian, as EVP_PKEY_derive gives it. */
int sim__ecdh(EVP_PKEY *priv, EVP_PKEY *peer, uint8_t z[SIM_P384_BYTES])
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
	size_t n = SIM_P384_BYTES;
	int ok;

	ok = c && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer(c, peer) == 1 &&
	     EVP_PKEY_derive(c, z, &n) == 1 && n == SIM_P384_BYTES;
	EVP_PKEY_CTX_free(c);
	return ok ? 0 : -EIO;
}

/* §1.4a: r and s little-endian in 72-byte fields, the rest of the slot zero. */
int sim__ecdsa_sign(EVP_PKEY *k, const EVP_MD *md, const void *msg, size_t len,
		    uint8_t slot[SIM_SIG_LEN])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t der[256];
	const uint8_t *p = der;
	size_t n = sizeof(der);
	ECDSA_SIG *sig = NULL;
	const BIGNUM *r, *s;
	int ok;

	ok = c && EVP_DigestSignInit(c, NULL, md, NULL, k) == 1 &&
	     EVP_DigestSign(c, der, &n, msg, len) == 1 &&
	     (sig = d2i_ECDSA_SIG(NULL, &p, (long)n)) != NULL;
	memset(slot, 0, SIM_SIG_LEN);
	if (ok) {
		ECDSA_SIG_get0(sig, &r, &s);
		ok = BN_bn2lebinpad(r, slot, SIM_EC_FIELD) == SIM_EC_FIELD &&
		     BN_bn2lebinpad(s, slot + SIM_EC_FIELD, SIM_EC_FIELD) == SIM_EC_FIELD;
	}
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(c);
	return ok ? 0 : -EIO;
}

/* FW `ecdsa_verify` also refuses r or s of 0 or >= n; OpenSSL does the same. */
bool sim__ecdsa_verify(EVP_PKEY *k, const EVP_MD *md, const void *msg, size_t len,
		       const uint8_t slot[SIM_SIG_LEN])
{
	BIGNUM *r = BN_lebin2bn(slot, SIM_EC_FIELD, NULL);
	BIGNUM *s = BN_lebin2bn(slot + SIM_EC_FIELD, SIM_EC_FIELD, NULL);
	ECDSA_SIG *sig = ECDSA_SIG_new();
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned char *der = NULL;
	int n = 0;
	bool ok = false;

	if (r && s && sig && c && ECDSA_SIG_set0(sig, r, s) == 1) {
		r = s = NULL;	/* sig owns them */
		n = i2d_ECDSA_SIG(sig, &der);
		ok = n > 0 && EVP_DigestVerifyInit(c, NULL, md, NULL, k) == 1 &&
		     EVP_DigestVerify(c, der, (size_t)n, msg, len) == 1;
	}
	OPENSSL_free(der);
	EVP_MD_CTX_free(c);
	ECDSA_SIG_free(sig);
	BN_free(r);
	BN_free(s);
	return ok;
}

/* ---- RSA ------------------------------------------------------------------ */

int sim__rsa_parts(EVP_PKEY *k, uint8_t *exp, uint8_t *mod, size_t len)
{
	BIGNUM *n = NULL, *e = NULL;
	int ok;

	ok = EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
	     EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e) == 1 &&
	     BN_bn2lebinpad(e, exp, (int)len) == (int)len &&
	     BN_bn2lebinpad(n, mod, (int)len) == (int)len;
	BN_free(n);
	BN_free(e);
	return ok ? 0 : -EIO;
}

EVP_PKEY *sim__rsa_public(const uint8_t *exp, const uint8_t *mod, size_t len)
{
	BIGNUM *n = BN_lebin2bn(mod, (int)len, NULL), *e = BN_lebin2bn(exp, (int)len, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	OSSL_PARAM *params = NULL;
	EVP_PKEY *k = NULL;

	/* FW takes a modulus of exactly the declared size with an odd exponent below it */
	if (n && e && bld && ctx && BN_num_bits(n) == (int)len * 8 && BN_is_odd(n) &&
	    BN_is_odd(e) && BN_num_bits(e) >= 2 && BN_cmp(e, n) < 0 &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) &&
	    (params = OSSL_PARAM_BLD_to_param(bld)) && EVP_PKEY_fromdata_init(ctx) == 1)
		EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params);
	OSSL_PARAM_free(params);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return k;
}

/* §1.4b, §2.2: PSS, MGF1 on the same hash, salt as long as the digest. */
static int pss_init(EVP_MD_CTX *c, bool sign, const EVP_MD *md, EVP_PKEY *k)
{
	EVP_PKEY_CTX *p = NULL;
	int ok = sign ? EVP_DigestSignInit(c, &p, md, NULL, k) : EVP_DigestVerifyInit(c, &p, md,
										    NULL, k);

	return ok == 1 && EVP_PKEY_CTX_set_rsa_padding(p, RSA_PKCS1_PSS_PADDING) == 1 &&
	       EVP_PKEY_CTX_set_rsa_pss_saltlen(p, RSA_PSS_SALTLEN_DIGEST) == 1 &&
	       EVP_PKEY_CTX_set_rsa_mgf1_md(p, md) == 1;
}

/* The signature little-endian, as long as the signer's modulus. */
int sim__rsa_sign(EVP_PKEY *k, const EVP_MD *md, const void *msg, size_t len, uint8_t *sig,
		  size_t sig_len)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t be[SIM_RSA_MAX_BYTES];
	size_t n = sizeof(be);
	int ok;

	ok = c && pss_init(c, true, md, k) && EVP_DigestSign(c, be, &n, msg, len) == 1 &&
	     n == sig_len;
	if (ok)
		reverse(sig, be, n);
	EVP_MD_CTX_free(c);
	return ok ? 0 : -EIO;
}

bool sim__rsa_verify(EVP_PKEY *k, const EVP_MD *md, const void *msg, size_t len,
		     const uint8_t *sig, size_t sig_len)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t be[SIM_RSA_MAX_BYTES];
	bool ok;

	if (sig_len > sizeof(be))
		return false;
	reverse(be, sig, sig_len);
	ok = c && pss_init(c, false, md, k) && EVP_DigestVerify(c, be, sig_len, msg, len) == 1;
	EVP_MD_CTX_free(c);
	return ok;
}
