/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected, initial value and
 * final xor 0xffffffff), the checksum of the snapshot format.  The check
 * value is sevm__crc32c(0, "123456789", 9) == 0xE3069283.
 */
#ifndef SEVM_CORE_CRC32C_H
#define SEVM_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Start with crc 0; pass the result back in to continue over the next
 * piece: sevm__crc32c(sevm__crc32c(0, a, n), b, m) is the CRC of a || b.
 * Uses the SSE4.2 crc32 instruction when the CPU has it (decided once).
 * Pure apart from that choice: safe from any thread.
 */
uint32_t sevm__crc32c(uint32_t crc, const void *p, size_t len);

/* The portable table-driven path, the same function; for tests to compare. */
uint32_t sevm__crc32c_sw(uint32_t crc, const void *p, size_t len);

/*
 * CRC32C of a record of the library's formats: its hdr_len-byte header with
 * the 4-byte crc field at crc_off read as zero, then len payload bytes.
 */
uint32_t sevm__crc32c_record(const uint8_t *hdr, size_t hdr_len, size_t crc_off,
			     const void *payload, size_t len);

#endif
