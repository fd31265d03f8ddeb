/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SEV and AMD certificate decoders (lib/sev/cert.c, amd_cert.c): the
 * input is split by its first byte into a certificate and a would-be signer,
 * parsed and verified both ways.  Invariants: a parsed certificate never
 * claims more bytes than it was given; verification answers 0, FORMAT or
 * EKEYREJECTED, nothing else; a chain of one certificate behaves like one
 * link.
 */
#include <errno.h>

#include <sevmigrate.h>

#include "fuzz.h"

static void parse(const uint8_t *p, size_t n)
{
	struct sevm_cert_info info = { .sz = sizeof(info) };
	int r = sevm_cert_parse(p, n, &info);

	FUZZ_CHECK(r == 0 || r == -SEVM_ERR_FORMAT);
	if (!r)
		FUZZ_CHECK(info.len <= n && info.len > 0);
}

static void verify(const uint8_t *c, size_t cn, const uint8_t *s, size_t sn)
{
	int r = sevm_cert_verify(c, cn, s, sn);

	FUZZ_CHECK(r == 0 || r == -SEVM_ERR_FORMAT || r == -EKEYREJECTED || r == -EINVAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cut;

	if (size < 2)
		return 0;
	/* Where the certificate ends and its signer begins: byte 0 picks a fraction. */
	cut = 1 + (size_t)data[0] * (size - 1) / 256;
	data++;
	size--;
	if (cut > size)
		cut = size;
	parse(data, size);
	parse(data, cut);
	parse(data + cut, size - cut);
	verify(data, cut, data + cut, size - cut);
	verify(data + cut, size - cut, data, cut);
	verify(data, size, data, size);	/* self-signed (ARK, OCA) */
	return 0;
}
