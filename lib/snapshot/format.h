/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The snapshot format (doc/snapshot-format.md): a 32-byte header, then
 * sections, each a 24-byte header and a payload padded to 8 bytes, ending
 * with an END section that counts what came before.  Little-endian.
 *
 * Every section carries a CRC32C of its header (crc field as zero) and its
 * payload, so a section can be checked on its own as it arrives: the
 * handoff streams sections, one vCPU at a time.
 */
#ifndef SEVM_SNAPSHOT_FORMAT_H
#define SEVM_SNAPSHOT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/buf.h"

#define SEVM_SNAP_MAGIC		"SEVMSNAP"
#define SEVM_SNAP_MAJOR		1
#define SEVM_SNAP_MINOR		0
#define SEVM_SNAP_HEADER_LEN	32
#define SEVM_SNAP_SECT_HDR_LEN	24
/* A reader must understand a mandatory section or reject the snapshot. */
#define SEVM_SNAP_MANDATORY	(1u << 0)
/* No section is larger: bounds what a hostile peer can make us allocate. */
#define SEVM_SNAP_MAX_SECTION	(64u << 20)

/* Section ids.  Per-vCPU sections carry the vCPU index as instance. */
enum sevm__sect_id {
	SEVM_SECT_GUEST		= 0x0001, /* struct sevm__sect_guest; mandatory, first */
	SEVM_SECT_VM_CLOCK	= 0x0010, /* struct kvm_clock_data */
	SEVM_SECT_IRQCHIP	= 0x0011, /* struct kvm_irqchip; instance = chip id */
	SEVM_SECT_PIT2		= 0x0012, /* struct kvm_pit_state2 */
	SEVM_SECT_PRIVATE	= 0x0020, /* private-page bitmap (doc/bitmap-format.md); optional */
	SEVM_SECT_CPUID		= 0x0100, /* struct kvm_cpuid2 + entries */
	SEVM_SECT_TSC_KHZ	= 0x0101, /* u32 */
	SEVM_SECT_SREGS2	= 0x0102, /* struct kvm_sregs2 */
	SEVM_SECT_SREGS		= 0x0103, /* struct kvm_sregs */
	SEVM_SECT_REGS		= 0x0104, /* struct kvm_regs */
	SEVM_SECT_XSAVE		= 0x0105, /* struct kvm_xsave, KVM_CAP_XSAVE2 bytes */
	SEVM_SECT_FPU		= 0x0106, /* struct kvm_fpu */
	SEVM_SECT_XCRS		= 0x0107, /* struct kvm_xcrs */
	SEVM_SECT_LAPIC		= 0x0108, /* struct kvm_lapic_state */
	SEVM_SECT_MSRS		= 0x0109, /* struct kvm_msrs + entries */
	SEVM_SECT_EVENTS	= 0x010a, /* struct kvm_vcpu_events */
	SEVM_SECT_DEBUGREGS	= 0x010b, /* struct kvm_debugregs */
	SEVM_SECT_MP_STATE	= 0x010c, /* struct kvm_mp_state */
	SEVM_SECT_NESTED	= 0x010d, /* struct kvm_nested_state + data */
	SEVM_SECT_VMM		= 0x1000, /* the VMM's own state, opaque; optional */
	SEVM_SECT_END		= 0xffff, /* struct sevm__sect_end; mandatory, last */
};

/* Payload of SEVM_SECT_GUEST. */
struct sevm__sect_guest {
	uint32_t nr_vcpus;
	uint32_t vm_type;
	uint32_t flags;		/* SEVM_GUEST_* */
	uint32_t reserved;
	/* bit (id - SEVM_SECT_CPUID): this per-vCPU item is in the snapshot for every vCPU */
	uint64_t vcpu_items;
};

/* Payload of SEVM_SECT_END. */
struct sevm__sect_end {
	uint32_t nr_sections;	/* before END */
	uint32_t reserved;
	uint64_t payload_bytes;	/* sum of their lengths, unpadded */
};

struct sevm__sect {
	uint32_t id;
	uint16_t flags;
	uint32_t instance;
	uint64_t len;
	const void *data;
};

struct sevm__snap_writer {
	struct sevm__buf *buf;
	uint32_t nr_sections;
	uint64_t payload_bytes;
	size_t open_at;		/* offset of the section being filled, or SIZE_MAX */
};

/* Appends the file header; then sections; then END. -ENOMEM on failure. */
int sevm__snap_begin(struct sevm__snap_writer *w, struct sevm__buf *buf);
int sevm__snap_put(struct sevm__snap_writer *w, uint32_t id, uint16_t flags,
		   uint32_t instance, const void *data, uint64_t len);
/*
 * Zero-copy form: reserve len payload bytes and return where to write them
 * (NULL on -ENOMEM); sevm__snap_close() then seals the section (pad, CRC).
 * The pointer is valid until the next call that grows the buffer.
 */
void *sevm__snap_open(struct sevm__snap_writer *w, uint32_t id, uint16_t flags,
		      uint32_t instance, uint64_t len);
void sevm__snap_close(struct sevm__snap_writer *w);
int sevm__snap_end(struct sevm__snap_writer *w);

/*
 * A section writer without the file header, for a stream cut into messages:
 * sevm__snap_sections() starts a writer that appends to buf as it is.
 */
void sevm__snap_sections(struct sevm__snap_writer *w, struct sevm__buf *buf);

struct sevm__snap_reader {
	const uint8_t *p;
	size_t len;
	size_t off;
	uint32_t nr_sections;
	uint64_t payload_bytes;
	bool ended;
};

/*
 * Start reading p[0..len): checks the header (-SEVM_ERR_FORMAT: not a
 * snapshot; -SEVM_ERR_VERSION: another major version).
 */
int sevm__snap_reader_init(struct sevm__snap_reader *r, const void *p, size_t len);
/* A reader of bare sections (no file header), for one message of a stream. */
void sevm__snap_reader_sections(struct sevm__snap_reader *r, const void *p, size_t len);
/*
 * The next section: 1 with *s filled (data points into the input), 0 when
 * the input is used up, or -SEVM_ERR_FORMAT (truncated, bad length, bad
 * reserved bits, bytes after END) / -SEVM_ERR_CHECKSUM, with a message
 * naming the section and its offset.  END is checked against the counts
 * (-SEVM_ERR_FORMAT when they disagree) and returned like any section, after
 * which r->ended is true.
 */
int sevm__snap_next(struct sevm__snap_reader *r, struct sevm__sect *s);

/* For a section the reader does not know: 0 (skip it) or -SEVM_ERR_FORMAT if mandatory. */
int sevm__snap_unknown(const struct sevm__sect *s);

#endif
