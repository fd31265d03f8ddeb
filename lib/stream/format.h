/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The remote migration stream (doc/stream-format.md): a 32-byte header, then
 * records, each a 24-byte header and a payload padded to 8 bytes, ending
 * with an END record that totals what came before.  Little-endian.
 *
 * Guest pages are most of the stream, millions of records: a record header
 * is 24 bytes, a shared-page record carries up to 256 consecutive pages, and
 * the only per-record cost beyond the copy is one CRC32C pass (SSE4.2).
 *
 * The reader is incremental: a socket delivers any split of the bytes, the
 * reader buffers at most one record (SEVM_STREAM_READER_BOUND) and hands out
 * a record only after every check on it passed, so nothing reaches guest
 * memory unvalidated.
 */
#ifndef SEVM_STREAM_FORMAT_H
#define SEVM_STREAM_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sevmigrate.h"
#include "../core/buf.h"

#define SEVM_STREAM_MAGIC	"SEVMSTRM"
#define SEVM_STREAM_MAJOR	1
#define SEVM_STREAM_MINOR	0
#define SEVM_STREAM_HEADER_LEN	32
/* A later 1.x may lengthen the header; no further than this. */
#define SEVM_STREAM_HEADER_MAX	4096
#define SEVM_STREAM_REC_HDR_LEN	24

/* Record flag: a reader must understand this record or reject the stream. */
#define SEVM_STREAM_MANDATORY	(1u << 0)

/* Header features. */
#define SEVM_STREAM_F_SEV	(1u << 0)	/* SESSION and PRIVATE records */
#define SEVM_STREAM_F_SEV_ES	(1u << 1)	/* VMSA records; needs F_SEV, policy ES */
#define SEVM_STREAM_F_KNOWN	(SEVM_STREAM_F_SEV | SEVM_STREAM_F_SEV_ES)

#define SEVM_STREAM_PAGE	4096u
/* SEV packet header (sev-firmware.md §5.1), session blob (§4.1), PDH (§1). */
#define SEVM_STREAM_PKT_HDR_LEN	52u
#define SEVM_STREAM_SESSION_LEN	128u
#define SEVM_STREAM_PDH_LEN	2084u
/* Pages in one SHARED or PRIVATE record: 1 MiB of guest memory. */
#define SEVM_STREAM_MAX_PAGES	256u
/*
 * No record payload is longer: 256 private pages, each with the packet
 * header of its own SEND_UPDATE_DATA (KVM sends one page per call).  Bounds
 * what a hostile peer can make the reader buffer.
 */
#define SEVM_STREAM_MAX_LEN	(SEVM_STREAM_MAX_PAGES * (SEVM_STREAM_PAGE + SEVM_STREAM_PKT_HDR_LEN))
/* What a reader ever allocates: one record, header and padding included. */
#define SEVM_STREAM_READER_BOUND (SEVM_STREAM_REC_HDR_LEN + SEVM_STREAM_MAX_LEN)

enum sevm__stream_type {
	SEVM_REC_SESSION	= 0x0001, /* PDH, session blob; SEV streams, once, first */
	SEVM_REC_SHARED		= 0x0002, /* arg gfn, count pages, plain text */
	SEVM_REC_PRIVATE	= 0x0003, /* arg gfn, count pages, n packet headers, n transports */
	SEVM_REC_VMSA		= 0x0004, /* arg vCPU, packet header + encrypted VMSA */
	SEVM_REC_BITMAP		= 0x0005, /* arg byte offset, count 1 on the last piece */
	SEVM_REC_STATE		= 0x0006, /* bare snapshot sections (doc/snapshot-format.md) */
	SEVM_REC_ITERATION	= 0x0007, /* arg iteration; pages since the previous one */
	SEVM_REC_CANCEL		= 0x0008, /* the sender abandoned the migration; empty */
	SEVM_REC_VMM		= 0x0100, /* the VMM's own section, opaque; arg is the VMM's */
	SEVM_REC_END		= 0xffff, /* totals; mandatory, last */
};

/* Payload of SESSION, before the PDH and the session blob. */
#define SEVM_STREAM_SESSION_FIXED 16
#define SEVM_STREAM_SESSION_PAYLOAD \
	(SEVM_STREAM_SESSION_FIXED + SEVM_STREAM_PDH_LEN + SEVM_STREAM_SESSION_LEN)
#define SEVM_STREAM_ITER_LEN	16
#define SEVM_STREAM_END_LEN	32

/* What END totals, and what the reader counts: records before END. */
struct sevm__stream_totals {
	uint64_t records;
	uint64_t pages_shared;
	uint64_t pages_private;
	uint64_t payload_bytes;	/* sum of their length fields */
};

struct sevm__stream_rec {
	uint16_t type;
	uint16_t flags;
	uint32_t len;
	uint64_t arg;		/* gfn, vCPU, byte offset, iteration: by type */
	uint32_t count;		/* pages, or the BITMAP last-piece mark */
	uint64_t offset;	/* of the record header in the stream */
	const uint8_t *data;	/* len bytes; valid until the next reader call */
};

struct sevm__stream_writer {
	struct sevm__buf *buf;
	struct sevm__stream_totals t;
	uint32_t features;
	uint64_t iteration;	/* markers written */
	uint64_t iter_shared, iter_private;	/* pages since the last marker */
	size_t open_at;		/* offset in buf of the open record, or SIZE_MAX */
};

/*
 * Appends the stream header.  policy is the SEV guest policy (0 for a plain
 * guest); features SEVM_STREAM_F_*.  -EINVAL for unknown or inconsistent
 * features, -ENOMEM.
 */
int sevm__stream_begin(struct sevm__stream_writer *w, struct sevm__buf *buf,
		       uint32_t policy, uint32_t features);
/*
 * Point the writer at another buffer (or the same one after the sender sent
 * and reset it); the totals carry on.  No record may be open.
 */
void sevm__stream_rebind(struct sevm__stream_writer *w, struct sevm__buf *buf);

/*
 * Zero-copy: reserve len payload bytes and return where to write them (NULL
 * with -EINVAL/-E2BIG/-ENOMEM recorded); sevm__stream_close() seals the
 * record (CRC).  The writer refuses a shape no reader would accept.  The
 * pointer is valid until the buffer next grows.
 */
void *sevm__stream_open(struct sevm__stream_writer *w, uint16_t type, uint16_t flags,
			uint64_t arg, uint32_t count, uint32_t len);
void sevm__stream_close(struct sevm__stream_writer *w);
int sevm__stream_put(struct sevm__stream_writer *w, uint16_t type, uint16_t flags,
		     uint64_t arg, uint32_t count, const void *data, uint32_t len);

/* npages consecutive plain pages from gfn: fill npages * 4096 bytes, then close. */
void *sevm__stream_open_shared(struct sevm__stream_writer *w, uint64_t gfn, uint32_t npages);
/*
 * A SHARED record whose pages stay where they are (a paused guest's memory,
 * which cannot change before they are written): its header with the CRC
 * over them into hdr, counted as written; nothing goes into the buffer.
 * The caller writes hdr, then the npages pages.
 */
int sevm__stream_shared_header(struct sevm__stream_writer *w, uint64_t gfn, uint32_t npages,
			       const void *pages, uint8_t hdr[SEVM_STREAM_REC_HDR_LEN]);
/*
 * npages private pages from gfn, one SEND_UPDATE_DATA each: the npages
 * 52-byte packet headers from the returned pointer, then the npages 4096-byte
 * transport buffers (page i's at 52 * npages + 4096 * i).
 */
void *sevm__stream_open_private(struct sevm__stream_writer *w, uint64_t gfn, uint32_t npages);
int sevm__stream_put_session(struct sevm__stream_writer *w, const void *pdh,
			     const void *session);
int sevm__stream_put_vmsa(struct sevm__stream_writer *w, uint32_t vcpu,
			  const void *pkt_hdr, const void *vmsa);
/* sevm_bitmap_serialize() bytes, cut into records of at most 1 MiB. */
int sevm__stream_put_bitmap(struct sevm__stream_writer *w, const void *bytes, size_t len);
/* Close a pre-copy iteration: the pages written since the previous marker. */
int sevm__stream_put_iteration(struct sevm__stream_writer *w);
int sevm__stream_end(struct sevm__stream_writer *w);

enum sevm__stream_stage { SR_HEADER, SR_RECORD, SR_ENDED, SR_FAILED };

struct sevm__stream_reader {
	const struct sevm_gfn_range *map;
	unsigned int nr_map;
	unsigned int last_range;	/* where the previous page record fell */
	enum sevm__stream_stage stage;
	int err;			/* sticky, once failed */
	uint8_t *buf;			/* the record being gathered, <= READER_BOUND */
	size_t have, cap;
	uint64_t off;			/* stream offset of the unit being read */
	/* From the header. */
	uint16_t minor;
	uint32_t policy, features;
	/* Running state the records are checked against. */
	struct sevm__stream_totals t;
	bool session;
	uint64_t iteration;
	uint64_t iter_shared, iter_private;
	uint64_t bitmap_off;
};

/*
 * map: the guest's memory, nr ranges sorted, disjoint, non-empty (-EINVAL
 * otherwise); it must outlive the reader.  Allocates nothing yet.
 */
int sevm__stream_reader_init(struct sevm__stream_reader *r,
			     const struct sevm_gfn_range *map, unsigned int nr);
void sevm__stream_reader_free(struct sevm__stream_reader *r);
/*
 * Feed the bytes at *p (*n of them, any split of the stream) and take the
 * next record: 1 with *rec filled (*p, *n advanced past what was used), 0
 * when every byte was taken and more are needed (or the stream has ended),
 * or -SEVM_ERR_FORMAT / -SEVM_ERR_CHECKSUM / -SEVM_ERR_VERSION with a
 * message naming the record, its gfn or arg, and its stream offset.  Errors
 * are sticky.  The header is checked on the way and not returned, and so is
 * an unknown optional record (checked, counted, skipped); an unknown
 * mandatory one is -SEVM_ERR_VERSION.  END is
 * returned after its totals were checked, and r->stage is then SR_ENDED.
 * rec->data points into the input or the reader's buffer, valid until the
 * next call.
 */
int sevm__stream_next(struct sevm__stream_reader *r, const void **p, size_t *n,
		      struct sevm__stream_rec *rec);
/*
 * The peer closed the stream: 0 if END was read, else -SEVM_ERR_FORMAT
 * naming where it stopped (a length made longer by damage looks like "need
 * more" until here).  Sticky like any other error.
 */
int sevm__stream_eof(struct sevm__stream_reader *r);
/*
 * For a reader that takes the stream a unit at a time, so that every record
 * reaches sevm__stream_next() whole and is checked in place: the size of
 * the stream header from its first SEVM_STREAM_HEADER_LEN bytes, and of a
 * record (header, payload, padding) from its SEVM_STREAM_REC_HDR_LEN.  A
 * length out of bounds gives the minimum, for sevm__stream_next() to refuse.
 */
uint32_t sevm__stream_header_size(const uint8_t *p);
uint32_t sevm__stream_record_size(const uint8_t *p);
/* "SHARED", "PRIVATE", ... or "unknown". */
const char *sevm__stream_type_name(uint16_t type);

#endif
