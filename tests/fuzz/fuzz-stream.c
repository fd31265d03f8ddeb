/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The migration stream reader (lib/stream/format.c) fed any bytes, in the
 * chunk sizes the input's first byte picks (a network delivers any split).
 * Invariants: every record handed out lies inside the map it was given
 * (page records) and carries the length its kind demands; errors are the
 * format's three; the reader never holds more than one bounded record.
 */
#include "fuzz.h"
#include "stream/format.h"

/* Two ranges with a hole, small enough that random gfns sometimes fit. */
static const struct sevm_gfn_range map[] = { { 0, 64 }, { 256, 512 } };

static bool in_map(uint64_t gfn, uint64_t n)
{
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (gfn >= map[i].gfn && n <= map[i].npages && gfn - map[i].gfn <= map[i].npages - n)
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sevm__stream_reader r;
	struct sevm__stream_rec rec;
	size_t chunk;
	int err = 0;

	if (!size)
		return 0;
	chunk = (size_t)data[0] % 17 + 1;	/* 1..17, and whole when the byte is 0 */
	if (!data[0])
		chunk = size;
	data++;
	size--;
	FUZZ_CHECK(sevm__stream_reader_init(&r, map, 2) == 0);
	for (size_t off = 0; off < size && err >= 0; off += chunk) {
		const void *p = data + off;
		size_t n = size - off < chunk ? size - off : chunk;

		while ((err = sevm__stream_next(&r, &p, &n, &rec)) == 1) {
			FUZZ_CHECK(rec.data || !rec.len);
			if (rec.type == SEVM_REC_SHARED)
				FUZZ_CHECK(rec.count && rec.len == rec.count * 4096u &&
					   in_map(rec.arg, rec.count));
			if (rec.type == SEVM_REC_PRIVATE)	/* the packet header, then the pages */
				FUZZ_CHECK(rec.count && rec.len == 52 + rec.count * 4096u &&
					   in_map(rec.arg, rec.count));
		}
		FUZZ_CHECK(n == 0 || err < 0);
	}
	if (err >= 0)
		err = sevm__stream_eof(&r);
	FUZZ_CHECK(err == 0 || err == -SEVM_ERR_FORMAT || err == -SEVM_ERR_CHECKSUM ||
		   err == -SEVM_ERR_VERSION);
	sevm__stream_reader_free(&r);
	return 0;
}
