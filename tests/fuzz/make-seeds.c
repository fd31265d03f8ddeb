/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Writes the seed corpora, a handful of small valid inputs per harness, with
 * the library's own writers:
 *	build/tests/fuzz/fuzz-make-seeds tests/fuzz/corpus
 * The output is deterministic; the seeds are checked in.  Each input starts
 * with the harness's mode byte (see the harness), except vcpu-image's.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sevmigrate.h>
#include "core/buf.h"
#include "fuzz.h"
#include "stream/format.h"
#include "handoff/handoff.h"

static const char *top;

static void put_seed(const char *harness, const char *name, uint8_t mode, bool with_mode,
		     const void *p, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", top, harness);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		FUZZ_CHECK(!"mkdir");
	snprintf(path, sizeof(path), "%s/%s/%s", top, harness, name);
	f = fopen(path, "wb");
	FUZZ_CHECK(f);
	if (with_mode)
		FUZZ_CHECK(fwrite(&mode, 1, 1, f) == 1);
	FUZZ_CHECK(!len || fwrite(p, len, 1, f) == 1);
	FUZZ_CHECK(fclose(f) == 0);
}

/* ---- Snapshots and per-vCPU sections ------------------------------------ */

static void put_zeros(struct sevm__snap_writer *w, uint32_t id, uint32_t instance, size_t len)
{
	void *p = sevm__snap_open(w, id, SEVM_SNAP_MANDATORY, instance, len);

	FUZZ_CHECK(p);
	memset(p, 0, len);
	sevm__snap_close(w);
}

/* A header-and-entries section: the count first, the rest zero. */
static void put_counted(struct sevm__snap_writer *w, uint32_t id, size_t head, size_t entry,
			uint32_t n)
{
	uint8_t *p = sevm__snap_open(w, id, SEVM_SNAP_MANDATORY, 0, head + n * entry);

	FUZZ_CHECK(p);
	memset(p, 0, head + n * entry);
	sevm__put32(p, n);
	sevm__snap_close(w);
}

static void put_nested(struct sevm__snap_writer *w)
{
	size_t len = sizeof(struct kvm_nested_state);
	uint8_t *p = sevm__snap_open(w, SEVM_SECT_NESTED, SEVM_SNAP_MANDATORY, 0, len);

	FUZZ_CHECK(p);
	memset(p, 0, len);
	sevm__put32(p + offsetof(struct kvm_nested_state, size), (uint32_t)len);
	sevm__snap_close(w);
}

static void vcpu_basic(struct sevm__snap_writer *w)
{
	uint32_t khz = 2000000;

	FUZZ_CHECK(sevm__snap_put(w, SEVM_SECT_TSC_KHZ, SEVM_SNAP_MANDATORY, 0, &khz, 4) == 0);
	put_zeros(w, SEVM_SECT_REGS, 0, sizeof(struct kvm_regs));
	put_zeros(w, SEVM_SECT_SREGS, 0, sizeof(struct kvm_sregs));
	put_zeros(w, SEVM_SECT_MP_STATE, 0, sizeof(struct kvm_mp_state));
}

static void vcpu_full(struct sevm__snap_writer *w)
{
	put_counted(w, SEVM_SECT_CPUID, sizeof(struct kvm_cpuid2),
		    sizeof(struct kvm_cpuid_entry2), 2);
	put_zeros(w, SEVM_SECT_SREGS2, 0, sizeof(struct kvm_sregs2));
	put_zeros(w, SEVM_SECT_XSAVE, 0, sizeof(struct kvm_xsave));
	put_zeros(w, SEVM_SECT_XCRS, 0, sizeof(struct kvm_xcrs));
	put_zeros(w, SEVM_SECT_LAPIC, 0, sizeof(struct kvm_lapic_state));
	put_counted(w, SEVM_SECT_MSRS, sizeof(struct kvm_msrs), sizeof(struct kvm_msr_entry), 3);
	put_zeros(w, SEVM_SECT_EVENTS, 0, sizeof(struct kvm_vcpu_events));
	put_zeros(w, SEVM_SECT_DEBUGREGS, 0, sizeof(struct kvm_debugregs));
	put_nested(w);
}

static void snapshot_seeds(void)
{
	struct sevm__sect_guest g = { .nr_vcpus = 1, .vm_type = 0,
				      .vcpu_items = SEVM__VCPU_ITEM(SEVM_SECT_TSC_KHZ) };
	struct sevm__snap_writer w;
	struct sevm__buf b = { 0 };
	static const char vmm[] = "opaque VMM state";

	/* A file: header, GUEST, END. */
	FUZZ_CHECK(sevm__snap_begin(&w, &b) == 0);
	FUZZ_CHECK(sevm__snap_put(&w, SEVM_SECT_GUEST, SEVM_SNAP_MANDATORY, 0, &g, sizeof(g)) == 0);
	FUZZ_CHECK(sevm__snap_end(&w) == 0);
	put_seed("snapshot", "guest-end", 0, true, b.data, b.len);
	put_seed("snapshot", "guest-end-fixcrc", 2, true, b.data, b.len);
	put_seed("snapshot", "header-only", 0, true, b.data, SEVM_SNAP_HEADER_LEN);

	/* A file with a vCPU, an optional section and an unaligned payload. */
	sevm__buf_reset(&b);
	FUZZ_CHECK(sevm__snap_begin(&w, &b) == 0);
	FUZZ_CHECK(sevm__snap_put(&w, SEVM_SECT_GUEST, SEVM_SNAP_MANDATORY, 0, &g, sizeof(g)) == 0);
	vcpu_basic(&w);
	FUZZ_CHECK(sevm__snap_put(&w, SEVM_SECT_VMM, 0, 0, vmm, sizeof(vmm) - 1) == 0);
	FUZZ_CHECK(sevm__snap_end(&w) == 0);
	put_seed("snapshot", "vcpu-vmm", 0, true, b.data, b.len);

	/* Bare sections, as one STATE message carries them. */
	sevm__buf_reset(&b);
	sevm__snap_sections(&w, &b);
	vcpu_basic(&w);
	put_seed("snapshot", "bare-vcpu", 1, true, b.data, b.len);
	put_seed("vcpu-image", "basic", 0, false, b.data, b.len);

	sevm__buf_reset(&b);
	sevm__snap_sections(&w, &b);
	vcpu_full(&w);
	put_seed("vcpu-image", "full", 0, false, b.data, b.len);
	sevm__buf_free(&b);
}

/* ---- HELLO ---------------------------------------------------------------- */

static void put_region(uint8_t *p, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size,
		       uint64_t offset, uint32_t fd_index)
{
	struct sevm__region_wire r = { .slot = slot, .flags = flags, .guest_phys_addr = gpa,
				       .size = size, .offset = offset, .fd_index = fd_index,
				       .host_addr = 0x7f0000000000ull };

	memcpy(p, &r, sizeof(r));
}

static void hello_seed(const char *name, uint8_t mode, uint32_t features, uint32_t vm_type,
		       uint32_t nr_regions, bool raw)
{
	struct sevm__hello h = { .major = SEVM_PROTO_MAJOR, .minor = SEVM_PROTO_MINOR,
				 .features = features, .vm_type = vm_type, .nr_vcpus = 2,
				 .nr_regions = nr_regions, .guest_flags = SEVM_GUEST_IRQCHIP,
				 .pid = 1 };
	uint8_t buf[SEVM_WIRE_HDR_LEN + sizeof(h) + 2 * sizeof(struct sevm__region_wire)];
	size_t len = sizeof(h) + nr_regions * sizeof(struct sevm__region_wire);
	uint8_t *p = buf + SEVM_WIRE_HDR_LEN;

	memcpy(p, &h, sizeof(h));
	if (nr_regions > 0)
		put_region(p + sizeof(h), 0, 0, 0, 64 << 10, 0, 0);
	if (nr_regions > 1)
		put_region(p + sizeof(h) + sizeof(struct sevm__region_wire), 1,
			   SEVM_REGION_LOG_DIRTY, 1 << 20, 256 << 10, 512 << 10, 1);
	sevm__put32(buf, SEVM_WIRE_MAGIC);
	sevm__put16(buf + 4, SEVM_MSG_HELLO);
	sevm__put16(buf + 6, (uint16_t)(mode & 3));
	sevm__put32(buf + 8, (uint32_t)len);
	sevm__put32(buf + 12, 0);
	if (raw)
		put_seed("hello", name, mode, true, buf, SEVM_WIRE_HDR_LEN + len);
	else
		put_seed("hello", name, mode | 4, true, p, len);
}

static void hello_seeds(void)
{
	hello_seed("no-regions", 0, 0, 0, 0, false);
	hello_seed("one-region", 1, 0, 0, 1, false);
	hello_seed("two-regions", 2, 0, 0, 2, false);
	hello_seed("sev", 2, SEVM_FEAT_SEV, SEVM_SEV, 1, false);
	hello_seed("raw-one-region", 1, 0, 0, 1, true);
}

/* ---- Bitmaps -------------------------------------------------------------- */

static void bitmap_seed(const char *name, const struct sevm_gfn_range *ranges, unsigned int nr,
			const struct sevm_gfn_range *set, unsigned int nr_set)
{
	struct sevm_bitmap *b;
	ssize_t n;
	uint8_t *p;

	FUZZ_CHECK(sevm_bitmap_new(ranges, nr, &b) == 0);
	for (unsigned int i = 0; i < nr_set; i++)
		FUZZ_CHECK(sevm_bitmap_set(b, set[i].gfn, set[i].npages) == 0);
	n = sevm_bitmap_serialize(b, NULL, 0);
	FUZZ_CHECK(n > 0 && (p = malloc((size_t)n)));
	FUZZ_CHECK(sevm_bitmap_serialize(b, p, (size_t)n) == n);
	put_seed("bitmap", name, 0, true, p, (size_t)n);
	free(p);
	sevm_bitmap_free(b);
}

static void bitmap_seeds(void)
{
	static const struct sevm_gfn_range one[] = { { 0, 256 } };
	static const struct sevm_gfn_range two[] = { { 0, 160 }, { 0x100000, 4096 } };
	static const struct sevm_gfn_range some[] = { { 3, 1 }, { 100, 20 }, { 0x100000, 64 } };
	static const struct sevm_gfn_range most[] = { { 0, 150 }, { 0x100000, 4000 } };

	bitmap_seed("empty", one, 1, NULL, 0);
	bitmap_seed("full", one, 1, one, 1);
	bitmap_seed("mixed", two, 2, some, 3);
	bitmap_seed("mostly-set", two, 2, most, 2);
}

/* ---- Migration streams --------------------------------------------------- */

/* The map fuzz-stream.c reads against: { 0, 64 }, { 256, 512 }. */
static void stream_seeds(void)
{
	struct sevm__buf b = { 0 };
	struct sevm__stream_writer w;
	uint8_t pdh[2084] = { 1 }, session[128] = { 2 }, pkt[52] = { 3 };
	void *p;

	FUZZ_CHECK(sevm__stream_begin(&w, &b, 0, 0) == 0);
	p = sevm__stream_open_shared(&w, 2, 2);
	FUZZ_CHECK(p);
	memset(p, 0xab, 2 * 4096);
	sevm__stream_close(&w);
	FUZZ_CHECK(sevm__stream_put_iteration(&w) == 0);
	p = sevm__stream_open_shared(&w, 300, 1);
	FUZZ_CHECK(p);
	memset(p, 0xcd, 4096);
	sevm__stream_close(&w);
	FUZZ_CHECK(sevm__stream_end(&w) == 0);
	put_seed("stream", "plain", 0, true, b.data, b.len);

	sevm__buf_reset(&b);
	FUZZ_CHECK(sevm__stream_begin(&w, &b, 0x4, SEVM_STREAM_F_SEV | SEVM_STREAM_F_SEV_ES) == 0);
	FUZZ_CHECK(sevm__stream_put_session(&w, pdh, session) == 0);
	p = sevm__stream_open_private(&w, 10, 1);
	FUZZ_CHECK(p);
	memcpy(p, pkt, sizeof(pkt));
	memset((uint8_t *)p + sizeof(pkt), 0x5a, 4096);
	sevm__stream_close(&w);
	FUZZ_CHECK(sevm__stream_end(&w) == 0);
	put_seed("stream", "sev-es", 0, true, b.data, b.len);
	put_seed("stream", "sev-es-bytewise", 1, true, b.data, b.len);
	sevm__buf_free(&b);
}

/* ---- Certificates: synthetic only (AMD's real ones stay in shared/) -------- */

static void cert_seeds(void)
{
	uint8_t pdh[2084] = { 0 }, amd[64 + 3 * 256] = { 0 };	/* header, exponent, modulus, signature */

	/* SEV format: version 1, API 0.22, a PDH (0x1003) with an ECDH P-384 key (0x003, curve 2). */
	sevm__put32(pdh + 0x000, 1);
	pdh[0x004] = 0;
	pdh[0x005] = 22;
	sevm__put32(pdh + 0x008, 0x1003);
	sevm__put32(pdh + 0x00c, 0x003);
	sevm__put32(pdh + 0x010, 2);
	sevm__put32(pdh + 0x414, 0x1002);	/* SIG1: by a PEK, ECDSA_SHA256 */
	sevm__put32(pdh + 0x418, 0x002);
	sevm__put32(pdh + 0x61c, 0x1000);	/* SIG2: empty */
	put_seed("cert", "pdh-shape", 128, true, pdh, sizeof(pdh));
	/* AMD format: version 1, an ASK (0x13), 2048-bit exponent and modulus. */
	sevm__put32(amd + 0x00, 1);
	sevm__put32(amd + 0x24, 0x13);
	sevm__put32(amd + 0x38, 2048);
	sevm__put32(amd + 0x3c, 2048);
	amd[0x40] = 1;			/* exponent 65537, little-endian */
	amd[0x42] = 1;
	put_seed("cert", "ask-shape", 200, true, amd, sizeof(amd));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
		return 2;
	}
	top = argv[1];
	snapshot_seeds();
	hello_seeds();
	bitmap_seeds();
	stream_seeds();
	cert_seeds();
	return 0;
}
