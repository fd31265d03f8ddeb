/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bitmap deserialization (lib/bitmap/serialize.c, doc/bitmap-format.md).
 * Input: a mode byte, then the bytes; mode bit 0 rewrites the trailing
 * CRC32C first, to get past the checksum.
 *
 * Invariants: a bitmap that deserializes serializes (the size asked first
 * is the size written), that stream deserializes, and the second bitmap
 * serializes to the same bytes and counts the same pages.
 */
#include <errno.h>
#include <string.h>

#include <sevmigrate.h>
#include "fuzz.h"

#define MODE_FIX_CRC	0x01

static uint8_t *serialize(const struct sevm_bitmap *b, size_t *len)
{
	ssize_t n = sevm_bitmap_serialize(b, NULL, 0);
	uint8_t *p;

	FUZZ_CHECK(n > 0);
	p = malloc((size_t)n);
	FUZZ_CHECK(p);
	FUZZ_CHECK(sevm_bitmap_serialize(b, p, (size_t)n) == n);
	/* One byte short is refused, never a partial write reported as done. */
	FUZZ_CHECK(sevm_bitmap_serialize(b, p, (size_t)n - 1) < 0);
	*len = (size_t)n;
	return p;
}

static void round_trip(const struct sevm_bitmap *b)
{
	struct sevm_bitmap *b2;
	size_t len1, len2;
	uint8_t *s1 = serialize(b, &len1), *s2;
	int err = sevm_bitmap_deserialize(s1, len1, &b2);

	FUZZ_CHECK(err == 0 && b2);
	s2 = serialize(b2, &len2);
	FUZZ_CHECK(len1 == len2 && !memcmp(s1, s2, len1));
	FUZZ_CHECK(sevm_bitmap_memory(b2) > 0);
	sevm_bitmap_free(b2);
	free(s1);
	free(s2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sevm_bitmap *b = NULL;
	uint8_t *p;
	size_t len;
	int err;

	if (size < 1)
		return 0;
	len = size - 1;
	p = fuzz_copy(data + 1, len);
	if ((data[0] & MODE_FIX_CRC) && len >= 4)
		sevm__put32(p + len - 4, sevm__crc32c(0, p, len - 4));
	err = sevm_bitmap_deserialize(p, len, &b);
	if (err) {
		FUZZ_CHECK(!b);
		FUZZ_CHECK(err == -SEVM_ERR_FORMAT || err == -SEVM_ERR_CHECKSUM ||
			   err == -SEVM_ERR_VERSION || err == -ENOMEM);
	} else {
		FUZZ_CHECK(b);
		round_trip(b);
		sevm_bitmap_free(b);
	}
	free(p);
	return 0;
}
