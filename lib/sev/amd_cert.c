/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* AMD's certificate format (ARK, ASK): sev-firmware.md §2. */
#include <errno.h>
#include <string.h>

#include "../core/error.h"
#include "cert.h"

static bool key_size_ok(uint32_t bits)
{
	return bits == 2048 || bits == 4096;
}

/*
 * How long the signature is.  The format does not say: it is as long as the
 * signer's modulus (§2.1), and the signer is not at hand.  A self-signed
 * certificate (the ARK) uses its own modulus.  Otherwise a tail of exactly
 * one RSA size is the signature, and a longer buffer (several certificates
 * back to back) is read as signed by a key of the certificate's own size,
 * which every AMD chain published so far is.
 */
static int sig_len(const struct sevm__cert *c, size_t rest, size_t *out)
{
	size_t own = c->key.mod_len;

	if (memcmp(c->key_id, c->certifying_id, 16) == 0) {
		if (rest < own)
			return sevm__fail(-SEVM_ERR_FORMAT, "AMD certificate is self-signed, "
					  "so its signature takes %zu bytes, but only %zu follow "
					  "the modulus", own, rest);
		*out = own;
		return 0;
	}
	if (rest == 256 || rest == 512)
		*out = rest;
	else if (rest >= own)
		*out = own;
	else
		return sevm__fail(-SEVM_ERR_FORMAT, "AMD certificate: its signature is cut "
				  "short (%zu bytes after the modulus; 256 or 512 expected)", rest);
	return 0;
}

int sevm__amd_cert_locate(const uint8_t *p, size_t len, struct sevm__cert *c)
{
	uint32_t exp_bits, mod_bits;
	size_t rest;
	int r;

	memset(c, 0, sizeof(*c));
	if (len < SEVM__AMD_CERT_HDR)
		return sevm__fail(-SEVM_ERR_FORMAT, "AMD certificate: %zu bytes, shorter than "
				  "its %d-byte header", len, SEVM__AMD_CERT_HDR);
	exp_bits = sevm__le32(p + 0x38);
	mod_bits = sevm__le32(p + 0x3c);
	/* FW `amd_cert.c` accepts each of 2048 and 4096; nothing else has a layout. */
	if (!key_size_ok(exp_bits))
		return sevm__fail(-SEVM_ERR_FORMAT, "AMD certificate: PUBEXP_SIZE is %u bits, "
				  "not 2048 or 4096", exp_bits);
	if (!key_size_ok(mod_bits))
		return sevm__fail(-SEVM_ERR_FORMAT, "AMD certificate: MODULUS_SIZE is %u bits, "
				  "not 2048 or 4096", mod_bits);
	c->amd = true;
	c->raw = p;
	c->version = sevm__le32(p);
	c->key_id = p + 0x04;
	c->certifying_id = p + 0x14;
	c->usage = sevm__le32(p + 0x24);
	c->key.rsa = true;
	c->key.bits = mod_bits;
	c->key.exp = p + SEVM__AMD_CERT_HDR;
	c->key.exp_len = exp_bits / 8;
	c->key.mod = c->key.exp + c->key.exp_len;
	c->key.mod_len = mod_bits / 8;
	/* §2.2: the hash follows the key size (Naples SHA-256, Rome on SHA-384). */
	c->algo = mod_bits == 2048 ? SEVM__ALGO_RSA_SHA256 : SEVM__ALGO_RSA_SHA384;
	c->body_len = SEVM__AMD_CERT_HDR + c->key.exp_len + c->key.mod_len;
	if (len < c->body_len)
		return sevm__fail(-SEVM_ERR_FORMAT, "AMD certificate: %zu bytes, but its header, "
				  "%u-bit exponent and %u-bit modulus take %zu", len, exp_bits,
				  mod_bits, c->body_len);
	rest = len - c->body_len;
	if (rest == 0)
		return sevm__fail(-SEVM_ERR_FORMAT, "AMD certificate ends after its modulus and "
				  "has no signature (AMD published the Naples ARK so; append its "
				  "separately supplied signature)");
	r = sig_len(c, rest, &c->sig_len);
	if (r < 0)
		return r;
	c->sig = p + c->body_len;
	c->len = c->body_len + c->sig_len;
	return 0;
}

int sevm__amd_cert_check(const struct sevm__cert *c)
{
	if (c->version != 1)
		return sevm__fail(-SEVM_ERR_FORMAT, "AMD certificate: VERSION is %u, not 1",
				  c->version);
	if (c->usage != SEVM_CERT_ARK && c->usage != SEVM_CERT_ASK)
		return sevm__fail(-SEVM_ERR_FORMAT, "AMD certificate: KEY_USAGE 0x%x is neither "
				  "ARK (0x0) nor ASK (0x13)", c->usage);
	return 0;
}
