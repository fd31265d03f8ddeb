/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The snapshot codec (doc/snapshot-format.md).  Fields are stored byte by
 * byte in little-endian order, never by casting a struct over the buffer:
 * the layout is the documented one whatever the compiler pads, and the
 * input may sit at any alignment.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "../core/crc32c.h"
#include "../core/error.h"
#include "../core/le.h"
#include "format.h"

/* File header offsets. */
#define FH_MAGIC	0
#define FH_MAJOR	8
#define FH_MINOR	10
#define FH_HEADER_LEN	12
#define FH_FLAGS	16
#define FH_RESERVED0	20
#define FH_RESERVED1	24

/* Section header offsets. */
#define SH_ID		0
#define SH_FLAGS	4
#define SH_RESERVED	6
#define SH_INSTANCE	8
#define SH_CRC		12
#define SH_LENGTH	16

#define END_LEN		16	/* struct sevm__sect_end as stored */
#define NOT_OPEN	SIZE_MAX

_Static_assert(sizeof(struct sevm__sect_end) == END_LEN, "END payload is 16 bytes");
_Static_assert(sizeof(struct sevm__sect_guest) == 24, "GUEST payload is 24 bytes");
_Static_assert(SEVM_SNAP_HEADER_LEN % 8 == 0 && SEVM_SNAP_SECT_HDR_LEN % 8 == 0,
	       "headers keep sections 8-byte aligned");

/* The section's CRC: its header with the crc field as zero, then the payload. */
static uint32_t sect_crc(const uint8_t *hdr, const void *payload, size_t len)
{
	return sevm__crc32c_record(hdr, SEVM_SNAP_SECT_HDR_LEN, SH_CRC, payload, len);
}

/* ---- Writer ------------------------------------------------------------- */

void sevm__snap_sections(struct sevm__snap_writer *w, struct sevm__buf *buf)
{
	w->buf = buf;
	w->nr_sections = 0;
	w->payload_bytes = 0;
	w->open_at = NOT_OPEN;
}

int sevm__snap_begin(struct sevm__snap_writer *w, struct sevm__buf *buf)
{
	uint8_t *h;

	sevm__snap_sections(w, buf);
	h = sevm__buf_grow(buf, SEVM_SNAP_HEADER_LEN);
	if (!h)
		return sevm__fail(-ENOMEM, "snapshot header");
	memcpy(h + FH_MAGIC, SEVM_SNAP_MAGIC, 8);
	sevm__put16(h + FH_MAJOR, SEVM_SNAP_MAJOR);
	sevm__put16(h + FH_MINOR, SEVM_SNAP_MINOR);
	sevm__put32(h + FH_HEADER_LEN, SEVM_SNAP_HEADER_LEN);
	sevm__put32(h + FH_FLAGS, 0);
	sevm__put32(h + FH_RESERVED0, 0);
	sevm__put64(h + FH_RESERVED1, 0);
	return 0;
}

/*
 * Refuse to write what no reader would accept: a section over the limit or
 * with flags this version does not define.
 */
static int check_new_section(uint32_t id, uint16_t flags, uint32_t instance, uint64_t len)
{
	if (len > SEVM_SNAP_MAX_SECTION)
		return sevm__fail(-E2BIG, "section 0x%x instance %u: %llu bytes, limit %u",
				  id, instance, (unsigned long long)len, SEVM_SNAP_MAX_SECTION);
	if (flags & ~SEVM_SNAP_MANDATORY)
		return sevm__fail(-EINVAL, "section 0x%x instance %u: unknown flags 0x%x",
				  id, instance, flags);
	return 0;
}

void *sevm__snap_open(struct sevm__snap_writer *w, uint32_t id, uint16_t flags,
		      uint32_t instance, uint64_t len)
{
	size_t pad = sevm__pad8(len), at = w->buf->len;
	uint8_t *h;

	assert(w->open_at == NOT_OPEN);
	if (check_new_section(id, flags, instance, len))
		return NULL;
	h = sevm__buf_grow(w->buf, SEVM_SNAP_SECT_HDR_LEN + len + pad);
	if (!h) {
		sevm__fail(-ENOMEM, "section 0x%x instance %u: %llu bytes",
			   id, instance, (unsigned long long)len);
		return NULL;
	}
	sevm__put32(h + SH_ID, id);
	sevm__put16(h + SH_FLAGS, flags);
	sevm__put16(h + SH_RESERVED, 0);
	sevm__put32(h + SH_INSTANCE, instance);
	sevm__put32(h + SH_CRC, 0);
	sevm__put64(h + SH_LENGTH, len);
	memset(h + SEVM_SNAP_SECT_HDR_LEN + len, 0, pad);
	w->open_at = at;
	return h + SEVM_SNAP_SECT_HDR_LEN;
}

void sevm__snap_close(struct sevm__snap_writer *w)
{
	uint8_t *h;
	uint64_t len;

	assert(w->open_at != NOT_OPEN);
	h = w->buf->data + w->open_at;
	len = sevm__get64(h + SH_LENGTH);
	sevm__put32(h + SH_CRC, sect_crc(h, h + SEVM_SNAP_SECT_HDR_LEN, len));
	/* END counts what came before it, not itself. */
	if (sevm__get32(h + SH_ID) != SEVM_SECT_END) {
		w->nr_sections++;
		w->payload_bytes += len;
	}
	w->open_at = NOT_OPEN;
}

int sevm__snap_put(struct sevm__snap_writer *w, uint32_t id, uint16_t flags,
		   uint32_t instance, const void *data, uint64_t len)
{
	int err = check_new_section(id, flags, instance, len);
	void *p;

	if (err)
		return err;
	p = sevm__snap_open(w, id, flags, instance, len);
	if (!p)
		return -ENOMEM;
	if (len)
		memcpy(p, data, len);
	sevm__snap_close(w);
	return 0;
}

int sevm__snap_end(struct sevm__snap_writer *w)
{
	uint8_t e[END_LEN];

	sevm__put32(e + offsetof(struct sevm__sect_end, nr_sections), w->nr_sections);
	sevm__put32(e + offsetof(struct sevm__sect_end, reserved), 0);
	sevm__put64(e + offsetof(struct sevm__sect_end, payload_bytes), w->payload_bytes);
	return sevm__snap_put(w, SEVM_SECT_END, SEVM_SNAP_MANDATORY, 0, e, sizeof(e));
}

/* ---- Reader ------------------------------------------------------------- */

int sevm__snap_reader_init(struct sevm__snap_reader *r, const void *p, size_t len)
{
	const uint8_t *h = p;
	uint32_t header_len, flags;

	sevm__snap_reader_sections(r, p, len);
	if (len < SEVM_SNAP_HEADER_LEN)
		return sevm__fail(-SEVM_ERR_FORMAT, "snapshot of %zu bytes: shorter than "
				  "its %u-byte header", len, SEVM_SNAP_HEADER_LEN);
	if (memcmp(h + FH_MAGIC, SEVM_SNAP_MAGIC, 8))
		return sevm__fail(-SEVM_ERR_FORMAT, "not a snapshot: bad magic");
	/* Before anything else a newer major version may have redefined. */
	if (sevm__get16(h + FH_MAJOR) != SEVM_SNAP_MAJOR)
		return sevm__fail(-SEVM_ERR_VERSION, "snapshot format version %u.%u, "
				  "this library reads %u.x", sevm__get16(h + FH_MAJOR),
				  sevm__get16(h + FH_MINOR), SEVM_SNAP_MAJOR);
	header_len = sevm__get32(h + FH_HEADER_LEN);
	if (header_len < SEVM_SNAP_HEADER_LEN || header_len % 8)
		return sevm__fail(-SEVM_ERR_FORMAT, "snapshot header_len %u: not a multiple "
				  "of 8 of at least %u", header_len, SEVM_SNAP_HEADER_LEN);
	if (header_len > len)
		return sevm__fail(-SEVM_ERR_FORMAT, "snapshot header_len %u: truncated, "
				  "input is %zu bytes", header_len, len);
	flags = sevm__get32(h + FH_FLAGS);
	if (flags)
		return sevm__fail(-SEVM_ERR_FORMAT, "snapshot header: unknown flags 0x%x", flags);
	if (sevm__get32(h + FH_RESERVED0) || sevm__get64(h + FH_RESERVED1))
		return sevm__fail(-SEVM_ERR_FORMAT, "snapshot header: reserved field not zero");
	r->off = header_len;
	return 0;
}

void sevm__snap_reader_sections(struct sevm__snap_reader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->nr_sections = 0;
	r->payload_bytes = 0;
	r->ended = false;
}

#define SECT_FAIL(err, s, off, fmt, ...)						\
	sevm__fail(err, "section 0x%x instance %u at offset %zu: " fmt,			\
		   (s)->id, (s)->instance, (off), ##__VA_ARGS__)

/* END closes the snapshot: it must count exactly what the reader saw. */
static int check_end(const struct sevm__snap_reader *r, const struct sevm__sect *s, size_t off)
{
	const uint8_t *e = s->data;
	uint32_t nr;
	uint64_t bytes;

	if (!(s->flags & SEVM_SNAP_MANDATORY))
		return SECT_FAIL(-SEVM_ERR_FORMAT, s, off, "END is not flagged mandatory");
	if (s->len != END_LEN)
		return SECT_FAIL(-SEVM_ERR_FORMAT, s, off, "END payload is %llu bytes, not %u",
				 (unsigned long long)s->len, END_LEN);
	if (s->instance || sevm__get32(e + offsetof(struct sevm__sect_end, reserved)))
		return SECT_FAIL(-SEVM_ERR_FORMAT, s, off, "END instance or reserved not zero");
	nr = sevm__get32(e + offsetof(struct sevm__sect_end, nr_sections));
	bytes = sevm__get64(e + offsetof(struct sevm__sect_end, payload_bytes));
	if (nr != r->nr_sections || bytes != r->payload_bytes)
		return SECT_FAIL(-SEVM_ERR_FORMAT, s, off, "END counts %u sections of %llu "
				 "bytes, the reader saw %u of %llu", nr, (unsigned long long)bytes,
				 r->nr_sections, (unsigned long long)r->payload_bytes);
	return 0;
}

int sevm__snap_next(struct sevm__snap_reader *r, struct sevm__sect *s)
{
	size_t off = r->off, left = r->len - r->off, pad;
	const uint8_t *h;
	struct sevm__sect cur;
	uint32_t crc;
	int err;

	if (!left)
		return 0;
	if (r->ended)
		return sevm__fail(-SEVM_ERR_FORMAT, "%zu bytes at offset %zu after the END "
				  "section", left, off);
	if (left < SEVM_SNAP_SECT_HDR_LEN)
		return sevm__fail(-SEVM_ERR_FORMAT, "section header at offset %zu truncated: "
				  "%zu of %u bytes", off, left, SEVM_SNAP_SECT_HDR_LEN);
	h = r->p + off;
	cur.id = sevm__get32(h + SH_ID);
	cur.flags = sevm__get16(h + SH_FLAGS);
	cur.instance = sevm__get32(h + SH_INSTANCE);
	cur.len = sevm__get64(h + SH_LENGTH);
	cur.data = h + SEVM_SNAP_SECT_HDR_LEN;
	if (sevm__get16(h + SH_RESERVED))
		return SECT_FAIL(-SEVM_ERR_FORMAT, &cur, off, "reserved field is 0x%x",
				 sevm__get16(h + SH_RESERVED));
	if (cur.flags & ~SEVM_SNAP_MANDATORY)
		return SECT_FAIL(-SEVM_ERR_FORMAT, &cur, off, "unknown flags 0x%x", cur.flags);
	/* First, so that len + pad below cannot wrap. */
	if (cur.len > SEVM_SNAP_MAX_SECTION)
		return SECT_FAIL(-SEVM_ERR_FORMAT, &cur, off, "claims %llu bytes, limit %u",
				 (unsigned long long)cur.len, SEVM_SNAP_MAX_SECTION);
	left -= SEVM_SNAP_SECT_HDR_LEN;
	pad = sevm__pad8(cur.len);
	if (cur.len + pad > left)
		return SECT_FAIL(-SEVM_ERR_FORMAT, &cur, off, "truncated: %llu payload and "
				 "%zu padding bytes, %zu left", (unsigned long long)cur.len, pad, left);
	for (size_t i = 0; i < pad; i++)
		if (h[SEVM_SNAP_SECT_HDR_LEN + cur.len + i])
			return SECT_FAIL(-SEVM_ERR_FORMAT, &cur, off, "padding not zero");
	crc = sect_crc(h, cur.data, cur.len);
	if (crc != sevm__get32(h + SH_CRC))
		return SECT_FAIL(-SEVM_ERR_CHECKSUM, &cur, off, "CRC32C is 0x%08x, header "
				 "says 0x%08x", crc, sevm__get32(h + SH_CRC));
	if (cur.id == SEVM_SECT_END) {
		err = check_end(r, &cur, off);
		if (err)
			return err;
		r->ended = true;
	} else {
		r->nr_sections++;
		r->payload_bytes += cur.len;
	}
	r->off += SEVM_SNAP_SECT_HDR_LEN + cur.len + pad;
	*s = cur;
	return 1;
}

int sevm__snap_unknown(const struct sevm__sect *s)
{
	if (s->flags & SEVM_SNAP_MANDATORY)
		return sevm__fail(-SEVM_ERR_FORMAT, "unknown mandatory section 0x%x instance %u",
				  s->id, s->instance);
	return 0;
}
