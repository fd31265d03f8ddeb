/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SEV certificates, parsed in place: the SEV format (PDH, PEK, OCA, CEK; 2084
 * bytes, sev-firmware.md §1) and AMD's (ARK, ASK; variable length, §2).
 * Parsing is split as the firmware orders its checks: locate() bounds the
 * layout only, check() validates the fields.  A verifier locates the subject,
 * checks its signature, and only then its fields, so that a changed byte in a
 * signed body is reported as a bad signature (FW `sev_cert_validate`,
 * `amd_cert_validate`).
 */
#ifndef SEVM_SEV_CERT_H
#define SEVM_SEV_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sevmigrate.h"

#define SEVM__SEV_CERT_LEN 0x824	/* §1.1: 2084 bytes */
#define SEVM__SEV_CERT_BODY 0x414	/* §1.5: what SIG1 and SIG2 sign */
#define SEVM__AMD_CERT_HDR 0x40		/* §2.1: fixed header */
#define SEVM__EC_FIELD 72		/* §1.2a, §1.4a: QX, QY, R, S fields */
#define SEVM__P384_BYTES 48

/* §1.3 algorithm codes; the high byte names the hash, the low the key use. */
enum {
	SEVM__ALGO_NONE = 0x000,
	SEVM__ALGO_RSA_SHA256 = 0x001, SEVM__ALGO_ECDSA_SHA256 = 0x002,
	SEVM__ALGO_ECDH_SHA256 = 0x003, SEVM__ALGO_RSA_SHA384 = 0x101,
	SEVM__ALGO_ECDSA_SHA384 = 0x102, SEVM__ALGO_ECDH_SHA384 = 0x103,
};
#define SEVM__USAGE_NONE 0x1000	/* §1.6: an empty signature slot */
#define SEVM__EC_CURVE_P384 2

struct sevm__cert_key {
	bool rsa;
	uint32_t bits;			/* RSA modulus bits, or 384 */
	const uint8_t *exp, *mod;	/* RSA, little-endian */
	size_t exp_len, mod_len;
	uint32_t curve;			/* EC */
	const uint8_t *qx, *qy;		/* EC, SEVM__EC_FIELD bytes each, little-endian */
};

struct sevm__cert_slot {
	uint32_t usage, algo;
	const uint8_t *sig;		/* 512 bytes */
};

struct sevm__cert {
	bool amd;			/* AMD format (ARK, ASK) */
	const uint8_t *raw;
	size_t len;			/* bytes this certificate takes */
	size_t body_len;		/* signed range: raw[0 .. body_len) */
	uint32_t version, usage, algo;	/* AMD: algo derived from the key size */
	uint8_t api_major, api_minor;	/* SEV format */
	struct sevm__cert_key key;
	struct sevm__cert_slot slot[2];	/* SEV format */
	const uint8_t *key_id, *certifying_id;	/* AMD format, 16 bytes each */
	const uint8_t *sig;		/* AMD format, little-endian */
	size_t sig_len;
};

/* Little-endian u32 at p (the certificates' integers, §0). */
static inline uint32_t sevm__le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* "PDH", "ASK", ... or NULL for a code that names no certificate. */
const char *sevm__cert_usage_name(uint32_t usage);
/* "ECDSA_SHA256", ... or NULL. */
const char *sevm__cert_algo_name(uint32_t algo);

/* Layout only: 0 or -SEVM_ERR_FORMAT with the field named. */
int sevm__sev_cert_locate(const uint8_t *p, size_t len, struct sevm__cert *c);
int sevm__amd_cert_locate(const uint8_t *p, size_t len, struct sevm__cert *c);

/* Fields of a located certificate (AMD: version, usage; the key is checked in cert.c). */
int sevm__amd_cert_check(const struct sevm__cert *c);

/* Either format, guessed from the bytes, located and checked: 0 or -SEVM_ERR_FORMAT. */
int sevm__cert_parse(const void *p, size_t len, struct sevm__cert *c);

#endif /* SEVM_SEV_CERT_H */
