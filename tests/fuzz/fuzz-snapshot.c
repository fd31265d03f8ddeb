/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The snapshot reader (lib/snapshot/format.c).  Input: a mode byte, then
 * the bytes.  Mode bit 0: bare sections (one message of the handoff's
 * STATE stream) instead of a file with its header; bit 1: rewrite the
 * CRCs and END's counts first, to get past the checksum.
 *
 * Invariants: every section lies inside the input, after the previous one;
 * errors are FORMAT or CHECKSUM with a message; and what was read, written
 * again with the writer, gives back the very same bytes.
 */
#include <string.h>

#include <sevmigrate.h>
#include "core/buf.h"
#include "fuzz.h"

#define MODE_BARE	0x01
#define MODE_FIX_CRC	0x02

static void check_section(const uint8_t *p, size_t len, size_t prev_off,
			  const struct sevm__snap_reader *r, const struct sevm__sect *s)
{
	const uint8_t *d = s->data;

	FUZZ_CHECK(d == p + prev_off + SEVM_SNAP_SECT_HDR_LEN);
	FUZZ_CHECK(s->len <= SEVM_SNAP_MAX_SECTION);
	FUZZ_CHECK(s->len <= len - (size_t)(d - p));
	FUZZ_CHECK(r->off > prev_off && r->off <= len);
	FUZZ_CHECK(r->off - prev_off == SEVM_SNAP_SECT_HDR_LEN + (s->len + 7) / 8 * 8);
	FUZZ_CHECK(!(s->flags & ~SEVM_SNAP_MANDATORY));
	FUZZ_CHECK(r->ended == (s->id == SEVM_SECT_END));
}

static void read_all(const uint8_t *p, size_t len, uint8_t mode)
{
	struct sevm__snap_reader r;
	struct sevm__snap_writer w;
	struct sevm__buf out = { 0 };
	struct sevm__sect s;
	size_t start, prev;
	int n;

	if (mode & MODE_BARE) {
		sevm__snap_reader_sections(&r, p, len);
	} else {
		n = sevm__snap_reader_init(&r, p, len);
		if (n) {
			FUZZ_CHECK(n == -SEVM_ERR_FORMAT || n == -SEVM_ERR_VERSION);
			return;
		}
	}
	start = prev = r.off;
	FUZZ_CHECK(start <= len && start % 8 == 0);
	sevm__snap_sections(&w, &out);
	while ((n = sevm__snap_next(&r, &s)) == 1) {
		check_section(p, len, prev, &r, &s);
		prev = r.off;
		if (s.id == SEVM_SECT_END)
			continue;
		/* What the reader takes, the writer must be able to write. */
		FUZZ_CHECK(sevm__snap_put(&w, s.id, s.flags, s.instance, s.data, s.len) == 0);
		n = sevm__snap_unknown(&s);
		FUZZ_CHECK(n == 0 || (n == -SEVM_ERR_FORMAT && (s.flags & SEVM_SNAP_MANDATORY)));
	}
	if (n < 0) {
		FUZZ_CHECK(n == -SEVM_ERR_FORMAT || n == -SEVM_ERR_CHECKSUM);
		FUZZ_CHECK(sevm_last_error()[0] != '\0');
		/* A reader that failed stays failed where it stopped. */
		FUZZ_CHECK(r.off == prev);
	} else {
		FUZZ_CHECK(r.off == len);
		if (r.ended)
			FUZZ_CHECK(sevm__snap_end(&w) == 0);
		FUZZ_CHECK(out.len == len - start);
		FUZZ_CHECK(!out.len || !memcmp(out.data, p + start, out.len));
	}
	sevm__buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p;

	if (size < 1)
		return 0;
	p = fuzz_copy(data + 1, size - 1);
	if (data[0] & MODE_FIX_CRC)
		fuzz_fix_sections(p, size - 1, data[0] & MODE_BARE ? 0 :
				  size - 1 >= SEVM_SNAP_HEADER_LEN ? sevm__get32(p + 12) : size);
	read_all(p, size - 1, data[0]);
	free(p);
	return 0;
}
