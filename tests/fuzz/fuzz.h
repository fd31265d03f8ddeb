/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by the fuzz harnesses (one per decoder), the replay driver and the
 * seed generator.  A harness takes any bytes, must neither crash nor leak,
 * and abort()s when an invariant of the decoder does not hold.
 */
#ifndef SEVM_TESTS_FUZZ_H
#define SEVM_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/le.h"
#include "snapshot/format.h"

/* libFuzzer's entry point; replay.c calls it in the normal build. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the decoder: its violation is a finding, like a crash. */
#define FUZZ_CHECK(cond)								\
	do {										\
		if (!(cond)) {								\
			fprintf(stderr, "%s:%d: invariant violated: %s\n",		\
				__FILE__, __LINE__, #cond);				\
			abort();							\
		}									\
	} while (0)

/*
 * Rewrite the CRC32C of every whole section from off on, and the counts in
 * END, so that mutations reach the checks behind the checksum.  Harnesses
 * that test the checksum itself do it only when the input's mode asks.
 */
static inline void fuzz_fix_sections(uint8_t *p, size_t len, size_t off)
{
	uint32_t nr = 0;
	uint64_t bytes = 0;

	while (off <= len && len - off >= SEVM_SNAP_SECT_HDR_LEN) {
		uint8_t *h = p + off;
		uint64_t l = sevm__get64(h + 16);
		size_t pad;
		uint32_t crc;

		if (l > len - off - SEVM_SNAP_SECT_HDR_LEN)
			return;
		if (sevm__get32(h) == SEVM_SECT_END && l == sizeof(struct sevm__sect_end)) {
			sevm__put32(h + SEVM_SNAP_SECT_HDR_LEN, nr);
			sevm__put64(h + SEVM_SNAP_SECT_HDR_LEN + 8, bytes);
		} else {
			nr++;
			bytes += l;
		}
		sevm__put32(h + 12, 0);
		crc = sevm__crc32c(sevm__crc32c(0, h, SEVM_SNAP_SECT_HDR_LEN),
				   h + SEVM_SNAP_SECT_HDR_LEN, (size_t)l);
		sevm__put32(h + 12, crc);
		pad = (size_t)((8 - l % 8) % 8);
		if (pad > len - off - SEVM_SNAP_SECT_HDR_LEN - l)
			return;
		off += SEVM_SNAP_SECT_HDR_LEN + (size_t)l + pad;
	}
}

/* The input as a buffer of exactly its size, so ASan sees any read past it. */
static inline uint8_t *fuzz_copy(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(size ? size : 1);

	if (!p)
		abort();
	if (size)
		memcpy(p, data, size);
	return p;
}

#endif
