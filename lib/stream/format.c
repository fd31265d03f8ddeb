/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The migration stream codec (doc/stream-format.md).  Fields are stored
 * byte by byte, little-endian, never by casting a struct over the buffer:
 * the input is a network stream cut at arbitrary places and alignments.
 *
 * Validation order for a record (doc/stream-format.md "Validation order"):
 * header fields and the record's shape against its type and the guest's
 * memory map first, before a payload byte is buffered; then padding and
 * CRC; then the payload's own fields and the running counts.  Only then is
 * the record handed out.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/crc32c.h"
#include "../core/error.h"
#include "../core/le.h"
#include "format.h"

/* Stream header offsets. */
#define SH_MAGIC	0
#define SH_MAJOR	8
#define SH_MINOR	10
#define SH_HEADER_LEN	12
#define SH_POLICY	16
#define SH_FEATURES	20
#define SH_RESERVED	24
#define SH_CRC		28

/* Record header offsets. */
#define RH_TYPE		0
#define RH_FLAGS	2
#define RH_LENGTH	4
#define RH_ARG		8
#define RH_COUNT	16
#define RH_CRC		20

/* SESSION payload offsets. */
#define SS_PDH_LEN	0
#define SS_SESSION_LEN	4
#define SS_PKT_HDR_LEN	8
#define SS_RESERVED	12

/* ITERATION and END payload offsets. */
#define IT_SHARED	0
#define IT_PRIVATE	8
#define END_RECORDS	0
#define END_SHARED	8
#define END_PRIVATE	16
#define END_BYTES	24

#define POLICY_ES	(1u << 2)	/* sev-firmware.md §9.1 */
#define BITMAP_PIECE	(1u << 20)
#define NOT_OPEN	SIZE_MAX

_Static_assert(SEVM_STREAM_HEADER_LEN % 8 == 0 && SEVM_STREAM_REC_HDR_LEN % 8 == 0,
	       "headers keep payloads 8-byte aligned");
_Static_assert(SEVM_STREAM_MAX_LEN % 8 == 0, "the bound includes the padding");
_Static_assert(SEVM_STREAM_MAX_PAGES * (SEVM_STREAM_PKT_HDR_LEN + SEVM_STREAM_PAGE)
	       <= SEVM_STREAM_MAX_LEN, "a full PRIVATE record fits the bound");

/* A record's CRC: its header with the crc field as zero, then the payload. */
static uint32_t rec_crc(const uint8_t *hdr, const void *payload, size_t len)
{
	return sevm__crc32c_record(hdr, SEVM_STREAM_REC_HDR_LEN, RH_CRC, payload, len);
}

/* The stream header's CRC: header_len bytes with the crc field as zero. */
static uint32_t header_crc(const uint8_t *h, size_t header_len)
{
	return sevm__crc32c_record(h, header_len, SH_CRC, NULL, 0);
}

const char *sevm__stream_type_name(uint16_t type)
{
	switch (type) {
	case SEVM_REC_SESSION:		return "SESSION";
	case SEVM_REC_SHARED:		return "SHARED";
	case SEVM_REC_PRIVATE:		return "PRIVATE";
	case SEVM_REC_VMSA:		return "VMSA";
	case SEVM_REC_BITMAP:		return "BITMAP";
	case SEVM_REC_STATE:		return "STATE";
	case SEVM_REC_ITERATION:	return "ITERATION";
	case SEVM_REC_CANCEL:		return "CANCEL";
	case SEVM_REC_VMM:		return "VMM";
	case SEVM_REC_END:		return "END";
	}
	return "unknown";
}

static const char *arg_name(uint16_t type)
{
	switch (type) {
	case SEVM_REC_SHARED:
	case SEVM_REC_PRIVATE:		return "gfn";
	case SEVM_REC_VMSA:		return "vcpu";
	case SEVM_REC_BITMAP:		return "offset";
	case SEVM_REC_ITERATION:	return "iteration";
	}
	return "arg";
}

static bool known_type(uint16_t type)
{
	return strcmp(sevm__stream_type_name(type), "unknown") != 0;
}

/* "record PRIVATE (0x0003) gfn 0x1234 at stream offset 5678: ..." */
SEVM_PRINTF(3, 4)
static int rec_fail(int err, const struct sevm__stream_rec *h, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return sevm__fail(err, "record %s (0x%04x) %s 0x%llx at stream offset %llu: %s",
			  sevm__stream_type_name(h->type), h->type, arg_name(h->type),
			  (unsigned long long)h->arg, (unsigned long long)h->offset, what);
}

/*
 * The shape a known record must have, from its header alone: shared by the
 * writer (which refuses to produce anything else: err -EINVAL, and -E2BIG
 * for the length) and the reader (err -SEVM_ERR_FORMAT).
 */
static int check_shape(const struct sevm__stream_rec *h, uint32_t features, int err)
{
	uint32_t pages_len = h->count * SEVM_STREAM_PAGE;
	bool mandatory = h->flags & SEVM_STREAM_MANDATORY;

	if (h->flags & ~SEVM_STREAM_MANDATORY)
		return rec_fail(err, h, "unknown flags 0x%x", h->flags);
	/* First, so that nothing below computes with a wild length. */
	if (h->len > SEVM_STREAM_MAX_LEN)
		return rec_fail(err == -EINVAL ? -E2BIG : err, h, "claims %u bytes, limit %u",
				h->len, SEVM_STREAM_MAX_LEN);
	if (!known_type(h->type))
		return 0;
	if (!mandatory && h->type != SEVM_REC_ITERATION && h->type != SEVM_REC_VMM)
		return rec_fail(err, h, "not flagged mandatory");
	switch (h->type) {
	case SEVM_REC_SHARED:
	case SEVM_REC_PRIVATE:
		if (h->type == SEVM_REC_PRIVATE && !(features & SEVM_STREAM_F_SEV))
			return rec_fail(err, h, "private page in a stream "
					"without the SEV feature");
		if (h->count < 1 || h->count > SEVM_STREAM_MAX_PAGES)
			return rec_fail(err, h, "%u pages, not 1 to %u",
					h->count, SEVM_STREAM_MAX_PAGES);
		if (h->type == SEVM_REC_PRIVATE)
			pages_len += h->count * SEVM_STREAM_PKT_HDR_LEN;
		if (h->len != pages_len)
			return rec_fail(err, h, "%u bytes for %u pages, must be %u",
					h->len, h->count, pages_len);
		return 0;
	case SEVM_REC_SESSION:
		if (!(features & SEVM_STREAM_F_SEV))
			return rec_fail(err, h, "in a stream without the SEV feature");
		if (h->len != SEVM_STREAM_SESSION_PAYLOAD || h->arg || h->count)
			return rec_fail(err, h, "%u bytes, arg or count set; must "
					"be %u bytes, arg and count 0", h->len,
					SEVM_STREAM_SESSION_PAYLOAD);
		return 0;
	case SEVM_REC_VMSA:
		if (!(features & SEVM_STREAM_F_SEV_ES))
			return rec_fail(err, h, "in a stream without the SEV-ES "
					"feature");
		if (h->len != SEVM_STREAM_PKT_HDR_LEN + SEVM_STREAM_PAGE || h->count ||
		    h->arg > UINT32_MAX)
			return rec_fail(err, h, "%u bytes, count %u; must be %u "
					"bytes, count 0, a 32-bit vCPU index", h->len, h->count,
					SEVM_STREAM_PKT_HDR_LEN + SEVM_STREAM_PAGE);
		return 0;
	case SEVM_REC_BITMAP:
		if (h->len < 1 || h->len > BITMAP_PIECE || h->count > 1)
			return rec_fail(err, h, "%u bytes, count %u; must be 1 to "
					"%u bytes, count 0 or 1", h->len, h->count, BITMAP_PIECE);
		return 0;
	case SEVM_REC_ITERATION:
		if (h->len != SEVM_STREAM_ITER_LEN || h->count)
			return rec_fail(err, h, "%u bytes, count %u; must be %u, 0",
					h->len, h->count, SEVM_STREAM_ITER_LEN);
		return 0;
	case SEVM_REC_CANCEL:
		if (h->len || h->arg || h->count)
			return rec_fail(err, h, "%u bytes, arg or count set; must be empty", h->len);
		return 0;
	case SEVM_REC_END:
		if (h->len != SEVM_STREAM_END_LEN || h->arg || h->count)
			return rec_fail(err, h, "%u bytes, arg or count set; must "
					"be %u bytes, arg and count 0", h->len, SEVM_STREAM_END_LEN);
		return 0;
	case SEVM_REC_STATE:
		if (h->arg || h->count)
			return rec_fail(err, h, "arg or count not 0");
		return 0;
	}
	/* VMM: any arg (the VMM's), count 0. */
	if (h->count)
		return rec_fail(err, h, "count %u, not 0", h->count);
	return 0;
}

/* What END totals and ITERATION counts, after a record went out or came in. */
static void count_rec(struct sevm__stream_totals *t, uint64_t *iter_shared,
		      uint64_t *iter_private, uint16_t type, uint32_t count, uint32_t len)
{
	if (type == SEVM_REC_END)
		return;
	t->records++;
	t->payload_bytes += len;
	if (type == SEVM_REC_SHARED) {
		t->pages_shared += count;
		*iter_shared += count;
	} else if (type == SEVM_REC_PRIVATE) {
		t->pages_private += count;
		*iter_private += count;
	}
}

/* ---- Writer ------------------------------------------------------------- */

static int check_features(uint32_t policy, uint32_t features)
{
	if (features & ~SEVM_STREAM_F_KNOWN)
		return sevm__fail(-EINVAL, "stream features 0x%x: unknown bits", features);
	if ((features & SEVM_STREAM_F_SEV_ES) && !(features & SEVM_STREAM_F_SEV))
		return sevm__fail(-EINVAL, "stream features 0x%x: SEV-ES without SEV", features);
	if (!(features & SEVM_STREAM_F_SEV) && policy)
		return sevm__fail(-EINVAL, "stream policy 0x%x for a guest without SEV", policy);
	if ((features & SEVM_STREAM_F_SEV) &&
	    !!(features & SEVM_STREAM_F_SEV_ES) != !!(policy & POLICY_ES))
		return sevm__fail(-EINVAL, "stream features 0x%x disagree with policy 0x%x "
				  "on SEV-ES", features, policy);
	return 0;
}

int sevm__stream_begin(struct sevm__stream_writer *w, struct sevm__buf *buf,
		       uint32_t policy, uint32_t features)
{
	int err = check_features(policy, features);
	uint8_t *h;

	if (err)
		return err;
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->features = features;
	w->open_at = NOT_OPEN;
	h = sevm__buf_grow(buf, SEVM_STREAM_HEADER_LEN);
	if (!h)
		return sevm__fail(-ENOMEM, "stream header");
	memcpy(h + SH_MAGIC, SEVM_STREAM_MAGIC, 8);
	sevm__put16(h + SH_MAJOR, SEVM_STREAM_MAJOR);
	sevm__put16(h + SH_MINOR, SEVM_STREAM_MINOR);
	sevm__put32(h + SH_HEADER_LEN, SEVM_STREAM_HEADER_LEN);
	sevm__put32(h + SH_POLICY, policy);
	sevm__put32(h + SH_FEATURES, features);
	sevm__put32(h + SH_RESERVED, 0);
	sevm__put32(h + SH_CRC, header_crc(h, SEVM_STREAM_HEADER_LEN));
	return 0;
}

void sevm__stream_rebind(struct sevm__stream_writer *w, struct sevm__buf *buf)
{
	assert(w->open_at == NOT_OPEN);
	w->buf = buf;
}

/* sevm__stream_open(), with the error it failed with in *err. */
static void *open_rec(struct sevm__stream_writer *w, uint16_t type, uint16_t flags,
		      uint64_t arg, uint32_t count, uint32_t len, int *err)
{
	struct sevm__stream_rec h = { .type = type, .flags = flags, .len = len, .arg = arg,
				      .count = count, .offset = w->buf->len };
	size_t pad = sevm__pad8(len), at = w->buf->len;
	uint8_t *p;

	assert(w->open_at == NOT_OPEN);
	*err = check_shape(&h, w->features, -EINVAL);
	if (*err)
		return NULL;
	p = sevm__buf_grow(w->buf, SEVM_STREAM_REC_HDR_LEN + (size_t)len + pad);
	if (!p) {
		*err = rec_fail(-ENOMEM, &h, "%u bytes", len);
		return NULL;
	}
	sevm__put16(p + RH_TYPE, type);
	sevm__put16(p + RH_FLAGS, flags);
	sevm__put32(p + RH_LENGTH, len);
	sevm__put64(p + RH_ARG, arg);
	sevm__put32(p + RH_COUNT, count);
	sevm__put32(p + RH_CRC, 0);
	memset(p + SEVM_STREAM_REC_HDR_LEN + len, 0, pad);
	w->open_at = at;
	return p + SEVM_STREAM_REC_HDR_LEN;
}

void *sevm__stream_open(struct sevm__stream_writer *w, uint16_t type, uint16_t flags,
			uint64_t arg, uint32_t count, uint32_t len)
{
	int err;

	return open_rec(w, type, flags, arg, count, len, &err);
}

void sevm__stream_close(struct sevm__stream_writer *w)
{
	uint8_t *h;
	uint32_t len;

	assert(w->open_at != NOT_OPEN);
	h = w->buf->data + w->open_at;
	len = sevm__get32(h + RH_LENGTH);
	sevm__put32(h + RH_CRC, rec_crc(h, h + SEVM_STREAM_REC_HDR_LEN, len));
	count_rec(&w->t, &w->iter_shared, &w->iter_private, sevm__get16(h + RH_TYPE),
		  sevm__get32(h + RH_COUNT), len);
	w->open_at = NOT_OPEN;
}

int sevm__stream_put(struct sevm__stream_writer *w, uint16_t type, uint16_t flags,
		     uint64_t arg, uint32_t count, const void *data, uint32_t len)
{
	int err;
	void *p = open_rec(w, type, flags, arg, count, len, &err);

	if (!p)
		return err;
	if (len)
		memcpy(p, data, len);
	sevm__stream_close(w);
	return 0;
}

int sevm__stream_shared_header(struct sevm__stream_writer *w, uint64_t gfn, uint32_t npages,
			       const void *pages, uint8_t hdr[SEVM_STREAM_REC_HDR_LEN])
{
	struct sevm__stream_rec h = { .type = SEVM_REC_SHARED, .flags = SEVM_STREAM_MANDATORY,
				      .arg = gfn, .count = npages, .offset = w->buf->len,
				      .len = npages <= SEVM_STREAM_MAX_PAGES ?
					     npages * SEVM_STREAM_PAGE : 0 };
	int err;

	assert(w->open_at == NOT_OPEN);
	err = check_shape(&h, w->features, -EINVAL);
	if (err)
		return err;
	sevm__put16(hdr + RH_TYPE, h.type);
	sevm__put16(hdr + RH_FLAGS, h.flags);
	sevm__put32(hdr + RH_LENGTH, h.len);
	sevm__put64(hdr + RH_ARG, gfn);
	sevm__put32(hdr + RH_COUNT, npages);
	sevm__put32(hdr + RH_CRC, 0);
	sevm__put32(hdr + RH_CRC, rec_crc(hdr, pages, h.len));
	count_rec(&w->t, &w->iter_shared, &w->iter_private, h.type, npages, h.len);
	return 0;
}

uint32_t sevm__stream_header_size(const uint8_t *p)
{
	uint32_t n = sevm__get32(p + SH_HEADER_LEN);

	return n >= SEVM_STREAM_HEADER_LEN && n <= SEVM_STREAM_HEADER_MAX && !(n % 8) ?
	       n : SEVM_STREAM_HEADER_LEN;
}

uint32_t sevm__stream_record_size(const uint8_t *p)
{
	uint32_t len = sevm__get32(p + RH_LENGTH);

	return len <= SEVM_STREAM_MAX_LEN ?
	       SEVM_STREAM_REC_HDR_LEN + len + (uint32_t)sevm__pad8(len) : SEVM_STREAM_REC_HDR_LEN;
}

void *sevm__stream_open_shared(struct sevm__stream_writer *w, uint64_t gfn, uint32_t npages)
{
	return sevm__stream_open(w, SEVM_REC_SHARED, SEVM_STREAM_MANDATORY, gfn, npages,
				 npages <= SEVM_STREAM_MAX_PAGES ? npages * SEVM_STREAM_PAGE : 0);
}

void *sevm__stream_open_private(struct sevm__stream_writer *w, uint64_t gfn, uint32_t npages)
{
	return sevm__stream_open(w, SEVM_REC_PRIVATE, SEVM_STREAM_MANDATORY, gfn, npages,
				 npages <= SEVM_STREAM_MAX_PAGES ?
				 npages * (SEVM_STREAM_PKT_HDR_LEN + SEVM_STREAM_PAGE) : 0);
}

int sevm__stream_put_session(struct sevm__stream_writer *w, const void *pdh,
			     const void *session)
{
	int err;
	uint8_t *p = open_rec(w, SEVM_REC_SESSION, SEVM_STREAM_MANDATORY, 0, 0,
			      SEVM_STREAM_SESSION_PAYLOAD, &err);

	if (!p)
		return err;
	sevm__put32(p + SS_PDH_LEN, SEVM_STREAM_PDH_LEN);
	sevm__put32(p + SS_SESSION_LEN, SEVM_STREAM_SESSION_LEN);
	sevm__put32(p + SS_PKT_HDR_LEN, SEVM_STREAM_PKT_HDR_LEN);
	sevm__put32(p + SS_RESERVED, 0);
	memcpy(p + SEVM_STREAM_SESSION_FIXED, pdh, SEVM_STREAM_PDH_LEN);
	memcpy(p + SEVM_STREAM_SESSION_FIXED + SEVM_STREAM_PDH_LEN, session,
	       SEVM_STREAM_SESSION_LEN);
	sevm__stream_close(w);
	return 0;
}

int sevm__stream_put_vmsa(struct sevm__stream_writer *w, uint32_t vcpu,
			  const void *pkt_hdr, const void *vmsa)
{
	int err;
	uint8_t *p = open_rec(w, SEVM_REC_VMSA, SEVM_STREAM_MANDATORY, vcpu, 0,
			      SEVM_STREAM_PKT_HDR_LEN + SEVM_STREAM_PAGE, &err);

	if (!p)
		return err;
	memcpy(p, pkt_hdr, SEVM_STREAM_PKT_HDR_LEN);
	memcpy(p + SEVM_STREAM_PKT_HDR_LEN, vmsa, SEVM_STREAM_PAGE);
	sevm__stream_close(w);
	return 0;
}

int sevm__stream_put_bitmap(struct sevm__stream_writer *w, const void *bytes, size_t len)
{
	const uint8_t *b = bytes;
	size_t off = 0;
	int err;

	if (!len)
		return sevm__fail(-EINVAL, "an empty bitmap");
	while (off < len) {
		uint32_t piece = len - off > BITMAP_PIECE ? BITMAP_PIECE : (uint32_t)(len - off);
		bool last = off + piece == len;

		err = sevm__stream_put(w, SEVM_REC_BITMAP, SEVM_STREAM_MANDATORY, off, last,
				       b + off, piece);
		if (err)
			return err;
		off += piece;
	}
	return 0;
}

int sevm__stream_put_iteration(struct sevm__stream_writer *w)
{
	uint8_t it[SEVM_STREAM_ITER_LEN];
	int err;

	sevm__put64(it + IT_SHARED, w->iter_shared);
	sevm__put64(it + IT_PRIVATE, w->iter_private);
	err = sevm__stream_put(w, SEVM_REC_ITERATION, 0, w->iteration, 0, it, sizeof(it));
	if (err)
		return err;
	w->iteration++;
	w->iter_shared = w->iter_private = 0;
	return 0;
}

int sevm__stream_end(struct sevm__stream_writer *w)
{
	uint8_t e[SEVM_STREAM_END_LEN];

	sevm__put64(e + END_RECORDS, w->t.records);
	sevm__put64(e + END_SHARED, w->t.pages_shared);
	sevm__put64(e + END_PRIVATE, w->t.pages_private);
	sevm__put64(e + END_BYTES, w->t.payload_bytes);
	return sevm__stream_put(w, SEVM_REC_END, SEVM_STREAM_MANDATORY, 0, 0, e, sizeof(e));
}

/* ---- Reader ------------------------------------------------------------- */

int sevm__stream_reader_init(struct sevm__stream_reader *r,
			     const struct sevm_gfn_range *map, unsigned int nr)
{
	memset(r, 0, sizeof(*r));
	for (unsigned int i = 0; i < nr; i++) {
		if (!map[i].npages || map[i].gfn + map[i].npages < map[i].gfn)
			return sevm__fail(-EINVAL, "memory map range %u: empty or wraps", i);
		if (i && map[i].gfn < map[i - 1].gfn + map[i - 1].npages)
			return sevm__fail(-EINVAL, "memory map range %u: not after range %u",
					  i, i - 1);
	}
	r->map = map;
	r->nr_map = nr;
	r->stage = SR_HEADER;
	return 0;
}

void sevm__stream_reader_free(struct sevm__stream_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->have = r->cap = 0;
}

static int reader_fail(struct sevm__stream_reader *r, int err)
{
	r->stage = SR_FAILED;
	r->err = err;
	return err;
}

/*
 * Make `want` bytes of the current unit available in one piece: in place in
 * the input when nothing is buffered and the input holds them all (the
 * common case for a large read: no copy), else gathered into r->buf.  The
 * unit's first bytes are r->buf[0, have) followed by *p.  1 with *unit set,
 * 0 when the input ran out (all of it taken), -ENOMEM.
 */
static int gather(struct sevm__stream_reader *r, const uint8_t **p, size_t *n,
		  size_t want, const uint8_t **unit)
{
	size_t take;

	assert(want <= SEVM_STREAM_READER_BOUND);
	if (!r->have && *n >= want) {
		*unit = *p;
		return 1;
	}
	if (r->cap < want) {
		size_t cap = r->cap * 2 > want ? r->cap * 2 : want;
		uint8_t *b;

		if (cap > SEVM_STREAM_READER_BOUND)
			cap = SEVM_STREAM_READER_BOUND;
		b = realloc(r->buf, cap);
		if (!b)
			return sevm__fail(-ENOMEM, "stream reader: %zu bytes", cap);
		r->buf = b;
		r->cap = cap;
	}
	if (r->have < want) {
		take = want - r->have < *n ? want - r->have : *n;
		memcpy(r->buf + r->have, *p, take);
		r->have += take;
		*p += take;
		*n -= take;
	}
	if (r->have < want)
		return 0;
	*unit = r->buf;
	return 1;
}

/* The unit of `total` bytes is done: drop it from the buffer or the input. */
static void consume(struct sevm__stream_reader *r, const uint8_t **p, size_t *n, size_t total)
{
	if (r->have) {
		assert(r->have == total);
		r->have = 0;
	} else {
		*p += total;
		*n -= total;
	}
	r->off += total;
}

static int read_header(struct sevm__stream_reader *r, const uint8_t **p, size_t *n)
{
	const uint8_t *h;
	uint32_t header_len, crc;
	int rc = gather(r, p, n, SEVM_STREAM_HEADER_LEN, &h);

	if (rc <= 0)
		return rc;
	if (memcmp(h + SH_MAGIC, SEVM_STREAM_MAGIC, 8))
		return sevm__fail(-SEVM_ERR_FORMAT, "not a migration stream: bad magic");
	/* Before anything a newer major version may have redefined. */
	if (sevm__get16(h + SH_MAJOR) != SEVM_STREAM_MAJOR)
		return sevm__fail(-SEVM_ERR_VERSION, "stream format version %u.%u, this "
				  "library reads %u.x", sevm__get16(h + SH_MAJOR),
				  sevm__get16(h + SH_MINOR), SEVM_STREAM_MAJOR);
	header_len = sevm__get32(h + SH_HEADER_LEN);
	if (header_len < SEVM_STREAM_HEADER_LEN || header_len > SEVM_STREAM_HEADER_MAX ||
	    header_len % 8)
		return sevm__fail(-SEVM_ERR_FORMAT, "stream header_len %u: not a multiple of "
				  "8 from %u to %u", header_len, SEVM_STREAM_HEADER_LEN,
				  SEVM_STREAM_HEADER_MAX);
	rc = gather(r, p, n, header_len, &h);
	if (rc <= 0)
		return rc;
	crc = header_crc(h, header_len);
	if (crc != sevm__get32(h + SH_CRC))
		return sevm__fail(-SEVM_ERR_CHECKSUM, "stream header: CRC32C is 0x%08x, "
				  "header says 0x%08x", crc, sevm__get32(h + SH_CRC));
	if (sevm__get32(h + SH_RESERVED))
		return sevm__fail(-SEVM_ERR_FORMAT, "stream header: reserved field not zero");
	r->minor = sevm__get16(h + SH_MINOR);
	r->policy = sevm__get32(h + SH_POLICY);
	r->features = sevm__get32(h + SH_FEATURES);
	/* A feature this reader lacks changes what the records mean. */
	if (r->features & ~SEVM_STREAM_F_KNOWN)
		return sevm__fail(-SEVM_ERR_VERSION, "stream features 0x%x: this library "
				  "knows 0x%x", r->features, SEVM_STREAM_F_KNOWN);
	if (check_features(r->policy, r->features))
		return sevm__fail(-SEVM_ERR_FORMAT, "stream header: %s", sevm_last_error());
	consume(r, p, n, header_len);
	r->stage = SR_RECORD;
	return 1;
}

/* [gfn, gfn + npages) inside one range of the map; ranges sorted, so bisect. */
static bool in_map(struct sevm__stream_reader *r, uint64_t gfn, uint32_t npages)
{
	const struct sevm_gfn_range *m = r->map;
	unsigned int lo = 0, hi = r->nr_map, i = r->last_range;

	/* Pages mostly arrive in order: try where the previous record fell. */
	if (i >= r->nr_map || gfn < m[i].gfn || gfn - m[i].gfn >= m[i].npages) {
		while (lo < hi) {
			unsigned int mid = lo + (hi - lo) / 2;

			if (gfn < m[mid].gfn)
				hi = mid;
			else
				lo = mid + 1;
		}
		if (!lo)
			return false;
		i = lo - 1;
		if (gfn - m[i].gfn >= m[i].npages)
			return false;
	}
	r->last_range = i;
	return npages <= m[i].npages - (gfn - m[i].gfn);
}

/* Checks on the header that need the reader's state: before any payload is read. */
static int check_context(struct sevm__stream_reader *r, const struct sevm__stream_rec *h)
{
	switch (h->type) {
	case SEVM_REC_SHARED:
	case SEVM_REC_PRIVATE:
		if (!in_map(r, h->arg, h->count))
			return rec_fail(-SEVM_ERR_FORMAT, h, "%u pages outside the guest's "
					"memory map", h->count);
		if (h->type == SEVM_REC_PRIVATE && !r->session)
			return rec_fail(-SEVM_ERR_FORMAT, h, "before the SESSION record");
		break;
	case SEVM_REC_VMSA:
		if (!r->session)
			return rec_fail(-SEVM_ERR_FORMAT, h, "before the SESSION record");
		break;
	case SEVM_REC_SESSION:
		if (r->session)
			return rec_fail(-SEVM_ERR_FORMAT, h, "a second SESSION record");
		break;
	case SEVM_REC_BITMAP:
		if (h->arg != r->bitmap_off)
			return rec_fail(-SEVM_ERR_FORMAT, h, "piece at byte %llu, expected %llu",
					(unsigned long long)h->arg,
					(unsigned long long)r->bitmap_off);
		break;
	case SEVM_REC_ITERATION:
		if (h->arg != r->iteration)
			return rec_fail(-SEVM_ERR_FORMAT, h, "expected iteration %llu",
					(unsigned long long)r->iteration);
		break;
	case SEVM_REC_END:
		if (r->bitmap_off)
			return rec_fail(-SEVM_ERR_FORMAT, h, "the bitmap's last piece is missing");
		break;
	}
	return 0;
}

/* After the CRC: the payload's own fields, and the counts it asserts. */
static int check_payload(struct sevm__stream_reader *r, const struct sevm__stream_rec *h)
{
	const uint8_t *d = h->data;

	switch (h->type) {
	case SEVM_REC_CANCEL:
		/* Whole and intact: the sender really said so; nothing after it counts. */
		return rec_fail(-SEVM_ERR_PEER, h, "the sender cancelled the migration");
	case SEVM_REC_SESSION:
		if (sevm__get32(d + SS_PDH_LEN) != SEVM_STREAM_PDH_LEN ||
		    sevm__get32(d + SS_SESSION_LEN) != SEVM_STREAM_SESSION_LEN ||
		    sevm__get32(d + SS_PKT_HDR_LEN) != SEVM_STREAM_PKT_HDR_LEN ||
		    sevm__get32(d + SS_RESERVED))
			return rec_fail(-SEVM_ERR_FORMAT, h, "PDH %u, session %u, packet header "
					"%u bytes; must be %u, %u, %u, reserved 0",
					sevm__get32(d + SS_PDH_LEN), sevm__get32(d + SS_SESSION_LEN),
					sevm__get32(d + SS_PKT_HDR_LEN), SEVM_STREAM_PDH_LEN,
					SEVM_STREAM_SESSION_LEN, SEVM_STREAM_PKT_HDR_LEN);
		break;
	case SEVM_REC_ITERATION:
		if (sevm__get64(d + IT_SHARED) != r->iter_shared ||
		    sevm__get64(d + IT_PRIVATE) != r->iter_private)
			return rec_fail(-SEVM_ERR_FORMAT, h, "counts %llu shared, %llu private "
					"pages, the reader saw %llu, %llu",
					(unsigned long long)sevm__get64(d + IT_SHARED),
					(unsigned long long)sevm__get64(d + IT_PRIVATE),
					(unsigned long long)r->iter_shared,
					(unsigned long long)r->iter_private);
		break;
	case SEVM_REC_END:
		if (sevm__get64(d + END_RECORDS) != r->t.records ||
		    sevm__get64(d + END_SHARED) != r->t.pages_shared ||
		    sevm__get64(d + END_PRIVATE) != r->t.pages_private ||
		    sevm__get64(d + END_BYTES) != r->t.payload_bytes)
			return rec_fail(-SEVM_ERR_FORMAT, h, "totals %llu records, %llu shared "
					"and %llu private pages, %llu bytes; the reader saw %llu, "
					"%llu, %llu, %llu",
					(unsigned long long)sevm__get64(d + END_RECORDS),
					(unsigned long long)sevm__get64(d + END_SHARED),
					(unsigned long long)sevm__get64(d + END_PRIVATE),
					(unsigned long long)sevm__get64(d + END_BYTES),
					(unsigned long long)r->t.records,
					(unsigned long long)r->t.pages_shared,
					(unsigned long long)r->t.pages_private,
					(unsigned long long)r->t.payload_bytes);
		break;
	}
	return 0;
}

/* The record has passed every check: move the running state past it. */
static void advance(struct sevm__stream_reader *r, const struct sevm__stream_rec *h)
{
	count_rec(&r->t, &r->iter_shared, &r->iter_private, h->type, h->count, h->len);
	switch (h->type) {
	case SEVM_REC_SESSION:
		r->session = true;
		break;
	case SEVM_REC_BITMAP:
		r->bitmap_off = h->count ? 0 : r->bitmap_off + h->len;
		break;
	case SEVM_REC_ITERATION:
		r->iteration++;
		r->iter_shared = r->iter_private = 0;
		break;
	case SEVM_REC_END:
		r->stage = SR_ENDED;
		break;
	}
}

/* 1: a record for the caller; 2: an unknown optional one, skipped; 0; -err. */
static int read_record(struct sevm__stream_reader *r, const uint8_t **p, size_t *n,
		       struct sevm__stream_rec *rec)
{
	struct sevm__stream_rec h = { .offset = r->off };
	const uint8_t *u;
	size_t total;
	uint32_t crc;
	int rc = gather(r, p, n, SEVM_STREAM_REC_HDR_LEN, &u);

	if (rc <= 0)
		return rc;
	h.type = sevm__get16(u + RH_TYPE);
	h.flags = sevm__get16(u + RH_FLAGS);
	h.len = sevm__get32(u + RH_LENGTH);
	h.arg = sevm__get64(u + RH_ARG);
	h.count = sevm__get32(u + RH_COUNT);
	rc = check_shape(&h, r->features, -SEVM_ERR_FORMAT);
	if (!rc && known_type(h.type))
		rc = check_context(r, &h);
	if (rc)
		return rc;
	total = SEVM_STREAM_REC_HDR_LEN + (size_t)h.len + sevm__pad8(h.len);
	rc = gather(r, p, n, total, &u);
	if (rc <= 0)
		return rc;
	h.data = u + SEVM_STREAM_REC_HDR_LEN;
	for (size_t i = SEVM_STREAM_REC_HDR_LEN + h.len; i < total; i++)
		if (u[i])
			return rec_fail(-SEVM_ERR_FORMAT, &h, "padding not zero");
	crc = rec_crc(u, h.data, h.len);
	if (crc != sevm__get32(u + RH_CRC))
		return rec_fail(-SEVM_ERR_CHECKSUM, &h, "CRC32C is 0x%08x, header says 0x%08x",
				crc, sevm__get32(u + RH_CRC));
	if (!known_type(h.type)) {
		if (h.flags & SEVM_STREAM_MANDATORY)
			return rec_fail(-SEVM_ERR_VERSION, &h, "unknown mandatory record");
		count_rec(&r->t, &r->iter_shared, &r->iter_private, h.type, 0, h.len);
		consume(r, p, n, total);
		return 2;
	}
	rc = check_payload(r, &h);
	if (rc)
		return rc;
	advance(r, &h);
	/* In place, the data stays in the caller's input; else in r->buf until the next call. */
	consume(r, p, n, total);
	*rec = h;
	return 1;
}

int sevm__stream_next(struct sevm__stream_reader *r, const void **pv, size_t *n,
		      struct sevm__stream_rec *rec)
{
	const uint8_t *p = *pv;
	int rc = 0;

	if (r->stage == SR_FAILED)
		return r->err;
	for (;;) {
		if (r->stage == SR_ENDED) {
			if (*n || r->have)
				rc = sevm__fail(-SEVM_ERR_FORMAT, "%zu bytes at stream offset %llu "
						"after END", *n + r->have,
						(unsigned long long)r->off);
			break;
		}
		if (r->stage == SR_HEADER) {
			rc = read_header(r, &p, n);
			if (rc <= 0)
				break;
			continue;
		}
		rc = read_record(r, &p, n, rec);
		if (rc != 2)
			break;
	}
	*pv = p;
	if (rc < 0)
		return reader_fail(r, rc);
	return rc;
}

int sevm__stream_eof(struct sevm__stream_reader *r)
{
	if (r->stage == SR_FAILED)
		return r->err;
	if (r->stage == SR_ENDED)
		return 0;
	return reader_fail(r, sevm__fail(-SEVM_ERR_FORMAT, "stream ends at offset %llu%s "
					 "before END", (unsigned long long)(r->off + r->have),
					 r->have ? ", inside a record," : ""));
}
