/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Little-endian fields of the library's byte formats (snapshot, bitmap),
 * written and read a byte at a time so that neither alignment nor the
 * host's byte order can change the layout the documents give.
 */
#ifndef SEVM_CORE_LE_H
#define SEVM_CORE_LE_H

#include <stddef.h>
#include <stdint.h>

static inline void sevm__put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void sevm__put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void sevm__put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t sevm__get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t sevm__get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t sevm__get64(const uint8_t *p)
{
	return (uint64_t)sevm__get32(p) | (uint64_t)sevm__get32(p + 4) << 32;
}

/* Zero bytes that pad a payload of len bytes to the next multiple of 8. */
static inline size_t sevm__pad8(uint64_t len)
{
	return (size_t)(-len & 7);
}

#endif
