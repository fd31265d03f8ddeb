/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A hostile or broken SOURCE on the migration stream (issue #8), against the
 * real remote receiver: sevm_recv_new() + sevm_recv_run() on a plain real-KVM
 * destination, the stream one end of a socketpair, timeout_ms set.  The
 * receiver reads a unit at a time (the header, then each record whole,
 * lib/migrate/recv.c), so every split of the bytes reaches the same checks.
 *
 * The source's bytes start from a valid stream: the library's sender moving
 * a small tinyvm guest (pre-copy with the dirty log, then the final pass),
 * recorded through a struct sevm_io write callback.  A thread plays it:
 *   cut      closed at each of the first 64 bytes, at every record
 *            boundary and next to it, every 4 KiB, every 256 bytes of the
 *            records that are not guest pages, the last byte
 *   slow     the whole stream a byte per write, and 4093 per write: the
 *            guest must arrive and run, as with the whole stream at once
 *   lengths  the record length 0 (with its CRC kept, and made right),
 *            2^32-1, the bound and one past it; count, arg, flags, type;
 *            the stream header's header_len, crc, major, features
 *   damage   a flipped payload or padding byte (the guest never sees the
 *            page), a record repeated, dropped, swapped; a CANCEL
 *   stall    silence at the start, mid-record, between records
 *
 * Promised (doc/stream-format.md, sevmigrate.h): -SEVM_ERR_FORMAT,
 * -SEVM_ERR_CHECKSUM or -SEVM_ERR_VERSION with a message (-ETIMEDOUT for a
 * stall, -SEVM_ERR_PEER for a CANCEL), nothing of a refused record written
 * to the guest, no fd and no allocation left behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "core/crc32c.h"
#include "hostile.h"
#include "stream/format.h"
#include "testutil.h"
#include "tu-tinyvm.h"

#define NR_VCPUS	2
/* 272 pages: a pass is two SHARED records, one of 256 pages (the most) and one of 16. */
#define MEM		(1088u << 10)
#define TIMEOUT_MS	200
#define REC_HDR		SEVM_STREAM_REC_HDR_LEN
#define U32MAX		0xffffffffull
#define U64MAX		0xffffffffffffffffull

/* The recorded stream, where each record starts, and what the guest was. */
static struct tape stream;
static size_t rec_at[4096];
static uint16_t rec_type[4096];
static unsigned int nr_recs;
static uint32_t beats[NR_VCPUS];
static uint64_t checksum;

/* The destination of the cases that must fail: one VM, reused. */
static struct tinyvm dst;
static int dst_mem = -1;

static int fresh_memfd(void)
{
	int fd = memfd_create("hostile-dest", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, MEM), 0);
	return fd;
}

/* ---- Recording the library's sender ---------------------------------------------- */

static ssize_t record_write(void *ctx, const void *buf, size_t len)
{
	tape_bytes(ctx, buf, len);
	return (ssize_t)len;
}

static ssize_t record_read(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return 0;
}

static void find_records(void)
{
	size_t at;

	ck_assert_uint_ge(stream.len, SEVM_STREAM_HEADER_LEN);
	at = tape_peek(&stream, 12, 4);
	while (at + REC_HDR <= stream.len) {
		ck_assert_uint_lt(nr_recs, 4096);
		rec_at[nr_recs] = at;
		rec_type[nr_recs++] = (uint16_t)tape_peek(&stream, at, 2);
		at += sevm__stream_record_size(stream.b + at);
	}
	ck_assert_uint_eq(at, stream.len);
	ck_assert_uint_eq(rec_type[nr_recs - 1], SEVM_REC_END);
}

START_TEST(record_stream)
{
	struct sevm_io io = { .sz = sizeof(io), .ctx = &stream, .write = record_write,
			      .read = record_read };
	/* One pass, so that the stream has the same records at every run. */
	struct sevm_precopy_opts po = { .sz = sizeof(po), .max_passes = 1 };
	struct tinyvm src = { 0 };
	struct sevm_region reg;
	struct sevm_send *s;
	int fds[NR_VCPUS];

	ck_assert_int_eq(tinyvm_create(&src, NR_VCPUS, MEM, TINYVM_F_PIT), 0);
	ck_assert_int_eq(tinyvm_load_guest(&src, 256), 0);
	/* Slot 0 again with the dirty log on, as a VMM does before pre-copy. */
	struct kvm_userspace_memory_region m = {
		.slot = 0, .flags = KVM_MEM_LOG_DIRTY_PAGES, .memory_size = MEM,
		.userspace_addr = (uintptr_t)src.mem,
	};
	ck_assert_int_eq(ioctl(src.vm_fd, KVM_SET_USER_MEMORY_REGION, &m), 0);
	reg = (struct sevm_region){ .sz = sizeof(reg), .flags = SEVM_REGION_LOG_DIRTY,
				    .size = MEM, .fd = src.mem_fd, .host_addr = src.mem };
	ck_assert_int_eq(tinyvm_start(&src), 0);
	ck_assert(tu_runs(&src, 3));
	for (unsigned int i = 0; i < NR_VCPUS; i++)
		fds[i] = src.vcpus[i].fd;

	struct sevm_migrate_opts o = { .sz = sizeof(o), .fd = -1, .io = &io, .vm_fd = src.vm_fd,
				       .vcpu_fds = fds, .nr_vcpus = NR_VCPUS, .regions = &reg,
				       .nr_regions = 1, .sev_fd = -1 };
	ck_assert_msg(sevm_send_new(&o, &s, NULL) == 0, "%s", sevm_last_error());
	ck_assert_msg(sevm_send_precopy(s, &po, NULL) >= 1, "%s", sevm_last_error());
	ck_assert_int_eq(tinyvm_pause(&src), 0);
	for (unsigned int i = 0; i < NR_VCPUS; i++)
		beats[i] = src.vcpus[i].last_beat;
	checksum = tinyvm_ram_checksum(&src);
	ck_assert_msg(sevm_send_final(s, beats, sizeof(beats), NULL) == 0, "%s",
		      sevm_last_error());
	sevm_send_free(s);
	tinyvm_destroy(&src);
	find_records();
	printf("recorded: a stream of %zu bytes, %u records:", stream.len, nr_recs);
	for (unsigned int i = 0; i < nr_recs; i++)
		printf(" %s", sevm__stream_type_name(rec_type[i]));
	printf("\n");
	dst_mem = fresh_memfd();
	ck_assert_int_eq(tinyvm_create_shell(&dst, NR_VCPUS, dst_mem, MEM, TINYVM_F_PIT), 0);
}
END_TEST

/* ---- The receiver under test --------------------------------------------------------- */

struct scase {
	char name[160];
	const struct tape *t;
	size_t cut, chunk;	/* see struct feed */
	bool stall;
	unsigned int want;
	const char *has;
};

static struct scase scase(const struct tape *t, unsigned int want, const char *has,
			  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static struct scase scase(const struct tape *t, unsigned int want, const char *has,
			  const char *fmt, ...)
{
	struct scase c = { .t = t, .cut = SIZE_MAX, .want = want, .has = has };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c.name, sizeof(c.name), fmt, ap);
	va_end(ap);
	return c;
}

/* Receive c's bytes into vm; the result, its message in msg. */
static int receive(const struct scase *c, struct tinyvm *vm, char *msg, size_t len,
		   struct sevm_recv **keep)
{
	struct sevm_region reg = { .sz = sizeof(reg), .size = MEM, .fd = vm->mem_fd,
				   .host_addr = vm->mem };
	struct feed f = { .t = c->t, .cut = c->cut, .chunk = c->chunk, .stall = c->stall };
	int fds[NR_VCPUS], sv[2], err;
	struct sevm_recv *r = NULL;

	for (unsigned int i = 0; i < NR_VCPUS; i++)
		fds[i] = vm->vcpus[i].fd;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f.sock = sv[0];
	feed_start(&f);

	struct sevm_migrate_opts o = { .sz = sizeof(o), .fd = sv[1], .timeout_ms = TIMEOUT_MS,
				       .vm_fd = vm->vm_fd, .vcpu_fds = fds, .nr_vcpus = NR_VCPUS,
				       .regions = &reg, .nr_regions = 1, .sev_fd = -1 };
	err = sevm_recv_new(&o, &r);
	hostile_expect(!err, "sevm_recv_new: %s", sevm_last_error());
	if (!err)
		err = sevm_recv_run(r, NULL);
	snprintf(msg, len, "%s", err ? sevm_last_error() : "");
	/* A failed receiver stays failed. */
	if (err && r)
		hostile_expect(sevm_recv_run(r, NULL) == -EINVAL, "ran again after a failure");
	if (keep && !err)
		*keep = r;
	else
		sevm_recv_free(r);
	close(sv[1]);
	feed_join(&f);
	return err;
}

static void run(const struct scase *c)
{
	char msg[512];
	int64_t t0 = hostile_now_ms();
	int err;

	hostile_case("%s", c->name);
	err = receive(c, &dst, msg, sizeof(msg), NULL);
	if (hostile_want(err, c->want, msg) && err)
		hostile_expect(!c->has || strstr(msg, c->has), "the message does not say \"%s\": %s",
			       c->has, msg);
	hostile_expect(hostile_now_ms() - t0 < 4 * TIMEOUT_MS + 3000, "took %lld ms",
		       (long long)(hostile_now_ms() - t0));
	hostile_case_end();
}

/* A stream that must arrive: a fresh destination, the guest checked and run there. */
static void arrives(const char *name, size_t chunk)
{
	struct scase c = scase(&stream, WANT_OK, NULL, "%s", name);
	struct tinyvm vm = { 0 };
	struct sevm_recv *r = NULL;
	const void *vmm;
	size_t vmm_len;
	char msg[512];
	int mem, err;

	c.chunk = chunk;
	hostile_case("%s", c.name);
	mem = fresh_memfd();
	ck_assert_int_eq(tinyvm_create_shell(&vm, NR_VCPUS, mem, MEM, TINYVM_F_PIT), 0);
	err = receive(&c, &vm, msg, sizeof(msg), &r);
	if (hostile_want(err, WANT_OK, msg)) {
		hostile_expect(sevm_recv_vmm_state(r, &vmm, &vmm_len) == 0 &&
			       vmm_len == sizeof(beats) && !memcmp(vmm, beats, sizeof(beats)),
			       "the VMM state did not arrive whole");
		hostile_expect(tinyvm_ram_checksum(&vm) == checksum, "the guest's RAM differs");
		tinyvm_expect_continuation(&vm, beats);
		hostile_expect(tinyvm_start(&vm) == 0 && tu_runs(&vm, 3),
			       "arrived, but the guest does not run on exactly (errors %llu)",
			       (unsigned long long)tinyvm_total_errors(&vm));
	}
	sevm_recv_free(r);
	tinyvm_destroy(&vm);
	close(mem);
	hostile_case_end();
}

/* ---- cut ---------------------------------------------------------------------------- */

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

START_TEST(cut_everywhere)
{
	static size_t pts[8192];
	unsigned int n = 0, fails = hostile_failed();

	ck_assert_msg(stream.len, "nothing recorded");
	for (size_t k = 0; k < 64; k++)
		pts[n++] = k;
	for (unsigned int i = 0; i < nr_recs; i++) {
		size_t b = rec_at[i];
		const size_t near[] = { b - 1, b, b + 1, b + 8, b + REC_HDR - 1, b + REC_HDR,
					b + REC_HDR + 1 };

		for (size_t j = 0; j < sizeof(near) / sizeof(near[0]); j++)
			if (near[j] < stream.len && n < 8000)
				pts[n++] = near[j];
	}
	for (size_t k = 4096; k < stream.len && n < 8100; k += 4096)
		pts[n++] = k;
	/* Where the records are not guest pages: every 256 bytes. */
	for (unsigned int i = 0; i < nr_recs; i++) {
		size_t end = i + 1 < nr_recs ? rec_at[i + 1] : stream.len;

		for (size_t k = rec_at[i]; rec_type[i] != SEVM_REC_SHARED && k < end && n < 8150;
		     k += 256)
			pts[n++] = k;
	}
	pts[n++] = stream.len - 1;
	qsort(pts, n, sizeof(pts[0]), cmp_size);
	for (unsigned int i = 0; i < n; i++) {
		struct scase c;

		if (i && pts[i] == pts[i - 1])
			continue;
		c = scase(&stream, WANT_FORMAT, "ended", "source closes after %zu of %zu bytes",
			  pts[i], stream.len);
		c.cut = pts[i];
		run(&c);
	}
	ck_assert_uint_eq(hostile_failed(), fails);
}
END_TEST

/* ---- slow: the whole stream in small writes --------------------------------------- */

START_TEST(slow_and_whole)
{
	unsigned int fails = hostile_failed();

	ck_assert_msg(stream.len, "nothing recorded");
	arrives("the whole stream at once: the guest arrives and runs (control)", 0);
	arrives("the whole stream a byte per write: the guest arrives and runs", 1);
	arrives("the whole stream 4093 bytes per write: the guest arrives and runs", 4093);
	ck_assert_uint_eq(hostile_failed(), fails);
}
END_TEST

/* ---- lengths and fields ---------------------------------------------------------------- */

/* The first record of a type, or -1. */
static int first(uint16_t type)
{
	for (unsigned int i = 0; i < nr_recs; i++)
		if (rec_type[i] == type)
			return (int)i;
	return -1;
}

/* Make record i's CRC right for its header as it now is (its payload: len bytes on). */
static void fix_crc(struct tape *t, size_t at)
{
	uint32_t len = (uint32_t)tape_peek(t, at + 4, 4);
	uint32_t crc;

	if (at + REC_HDR + len > t->len)
		len = 0;
	crc = sevm__crc32c_record(t->b + at, REC_HDR, 20, t->b + at + REC_HDR, len);
	tape_poke(t, at + 20, crc, 4);
}

/* Record i's field at off (size bytes) set to v; the CRC made right again if fix. */
static void field(int i, size_t off, uint64_t v, unsigned int size, bool fix, unsigned int want,
		  const char *has, const char *what)
{
	struct tape t = { 0 };
	struct scase c;

	if (i < 0)
		return;
	tape_append(&t, &stream, 0);
	tape_poke(&t, rec_at[i] + off, v, size);
	if (fix)
		fix_crc(&t, rec_at[i]);
	c = scase(&t, want, has, "%s record %d (at %zu): %s = 0x%llx%s",
		  sevm__stream_type_name(rec_type[i]), i, rec_at[i], what, (unsigned long long)v,
		  fix ? ", CRC made right" : "");
	run(&c);
	tape_free(&t);
}

/* The stream header's field; its CRC made right. */
static void header(size_t off, uint64_t v, unsigned int size, bool fix, unsigned int want,
		   const char *has, const char *what)
{
	struct tape t = { 0 };
	struct scase c;

	tape_append(&t, &stream, 0);
	tape_poke(&t, off, v, size);
	if (fix)
		tape_poke(&t, 28, sevm__crc32c_record(t.b, SEVM_STREAM_HEADER_LEN, 28, NULL, 0), 4);
	c = scase(&t, want, has, "stream header: %s = 0x%llx%s", what, (unsigned long long)v,
		  fix ? ", CRC made right" : "");
	run(&c);
	tape_free(&t);
}

START_TEST(length_fields)
{
	const uint16_t types[] = { SEVM_REC_SHARED, SEVM_REC_ITERATION, SEVM_REC_STATE,
				   SEVM_REC_VMM, SEVM_REC_END };
	unsigned int fails = hostile_failed();

	ck_assert_msg(stream.len, "nothing recorded");
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		int i = first(types[k]);

		field(i, 4, 0, 4, false, WANT_STREAM_BAD, NULL, "length");
		field(i, 4, 0, 4, true, WANT_STREAM_BAD, NULL, "length");
		field(i, 4, U32MAX, 4, false, WANT_FORMAT, "claims", "length");
		field(i, 4, SEVM_STREAM_MAX_LEN + 1ull, 4, false, WANT_FORMAT, "claims", "length");
		/* As long as allowed: the stream ends before that many bytes came. */
		field(i, 4, SEVM_STREAM_MAX_LEN, 4, false, WANT_STREAM_BAD, NULL, "length");
		field(i, 2, 0xffff, 2, true, WANT_FORMAT, NULL, "flags");
		/* ITERATION and VMM may be either; the others must say mandatory. */
		if (types[k] != SEVM_REC_ITERATION && types[k] != SEVM_REC_VMM)
			field(i, 2, 0, 2, true, WANT_FORMAT, NULL, "flags (mandatory bit clear)");
	}
	field(first(SEVM_REC_SHARED), 16, 0, 4, true, WANT_FORMAT, NULL, "count");
	field(first(SEVM_REC_SHARED), 16, U32MAX, 4, true, WANT_FORMAT, NULL, "count");
	field(first(SEVM_REC_SHARED), 8, U64MAX, 8, true, WANT_FORMAT, NULL, "arg (gfn)");
	field(first(SEVM_REC_SHARED), 8, MEM / 4096, 8, true, WANT_FORMAT, NULL,
	      "arg (gfn just past the guest)");
	field(first(SEVM_REC_ITERATION), 8, U64MAX, 8, true, WANT_FORMAT, NULL,
	      "arg (iteration)");
	field(first(SEVM_REC_STATE), 8, U64MAX, 8, true, WANT_FORMAT, NULL, "arg");
	field(first(SEVM_REC_END), 16, U32MAX, 4, true, WANT_FORMAT, NULL, "count");
	/*
	 * An unknown type: refused if mandatory; if optional, skipped and counted
	 * for END (doc/stream-format.md, "Compatibility"): that stream arrives.
	 */
	field(first(SEVM_REC_STATE), 0, 0x7777, 2, true, WANT_VERSION, "unknown mandatory",
	      "type");
	field(first(SEVM_REC_VMM), 0, 0x7777, 4, true, WANT_OK, NULL,
	      "type (and flags 0: optional, skipped)");

	header(12, 0, 4, true, WANT_FORMAT, NULL, "header_len");
	header(12, 33, 4, true, WANT_FORMAT, NULL, "header_len");
	header(12, U32MAX, 4, true, WANT_FORMAT, NULL, "header_len");
	header(12, SEVM_STREAM_HEADER_MAX + 8, 4, true, WANT_FORMAT, NULL, "header_len");
	header(28, tape_peek(&stream, 28, 4) ^ 1, 4, false, WANT_CHECKSUM, NULL, "crc");
	header(0, 0, 1, false, WANT_FORMAT, NULL, "magic[0]");
	header(8, 2, 2, true, WANT_VERSION, NULL, "major");
	header(8, 0xffff, 2, true, WANT_VERSION, NULL, "major");
	header(20, 1u << 2, 4, true, WANT_VERSION, NULL, "features");
	header(20, SEVM_STREAM_F_SEV, 4, true, WANT_FORMAT, NULL, "features (SEV, policy 0)");
	header(24, U32MAX, 4, true, WANT_FORMAT, NULL, "reserved");
	ck_assert_uint_eq(hostile_failed(), fails);
}
END_TEST

/* ---- damage: bytes, records ---------------------------------------------------------- */

/* The stream with records rearranged: order lists record indexes, then END's. */
static void records(const unsigned int *order, unsigned int n, unsigned int want,
		    const char *has, const char *name)
{
	struct tape t = { 0 };
	struct scase c;

	tape_bytes(&t, stream.b, rec_at[0]);
	for (unsigned int k = 0; k < n; k++) {
		unsigned int i = order[k];
		size_t end = i + 1 < nr_recs ? rec_at[i + 1] : stream.len;

		tape_bytes(&t, stream.b + rec_at[i], end - rec_at[i]);
	}
	c = scase(&t, want, has, "%s", name);
	run(&c);
	tape_free(&t);
}

static void flip(size_t at, unsigned int want, const char *has, const char *what)
{
	struct tape t = { 0 };
	struct scase c;

	tape_append(&t, &stream, 0);
	t.b[at] ^= 0x10;
	c = scase(&t, want, has, "one bit flipped in %s (byte %zu)", what, at);
	run(&c);
	tape_free(&t);
}

START_TEST(damage)
{
	static unsigned int order[4096];
	unsigned int fails = hostile_failed(), n;
	int sh = first(SEVM_REC_SHARED), it = first(SEVM_REC_ITERATION), st = first(SEVM_REC_STATE);
	uint8_t *page;
	bool untouched = true;

	ck_assert_msg(stream.len, "nothing recorded");
	ck_assert(sh == 0 && st > 0);
	/*
	 * The first record's last page damaged: refused whole, so nothing of it
	 * reaches the guest (doc/stream-format.md: "nothing may be written to
	 * guest memory ... before" the record passed every check).
	 */
	memset(dst.mem, 0xa5, MEM);
	flip(rec_at[sh + 1] - 1, WANT_CHECKSUM, "CRC", "the first SHARED record's last byte");
	for (page = dst.mem; page < (uint8_t *)dst.mem + MEM; page++)
		untouched &= *page == 0xa5;
	hostile_case("after it: the guest's memory holds nothing of the damaged record");
	hostile_expect(untouched, "the destination's memory changed");
	hostile_case_end();
	flip(rec_at[sh] + 3, WANT_STREAM_BAD, NULL, "the first SHARED record's flags");
	flip(rec_at[st] + REC_HDR + 30, WANT_CHECKSUM, "CRC", "the first STATE record");
	flip(rec_at[nr_recs - 1] + REC_HDR + 1, WANT_CHECKSUM, "CRC", "END's totals");
	flip(5, WANT_FORMAT, NULL, "the stream magic");
	/* A padding byte: the first record whose length is not a multiple of 8. */
	for (unsigned int i = 0; i < nr_recs; i++) {
		uint32_t len = (uint32_t)tape_peek(&stream, rec_at[i] + 4, 4);

		if (len % 8) {
			flip(rec_at[i] + REC_HDR + len, WANT_FORMAT, "padding", "a padding byte");
			break;
		}
	}

	/* Whole records: END counts them; the reader checks ITERATION numbers and order. */
	n = 0;
	order[n++] = 0;
	for (unsigned int i = 0; i < nr_recs; i++)
		order[n++] = i;
	records(order, n, WANT_FORMAT, NULL, "the first SHARED record twice");
	n = 0;
	for (unsigned int i = 1; i < nr_recs; i++)
		order[n++] = i;
	records(order, n, WANT_FORMAT, NULL, "the first SHARED record missing");
	if (it >= 0) {
		n = 0;
		for (unsigned int i = 0; i < nr_recs; i++)
			if ((int)i != it)
				order[n++] = i;
		records(order, n, WANT_FORMAT, NULL, "the first ITERATION missing");
		n = 0;
		for (unsigned int i = 0; i < nr_recs; i++) {
			order[n++] = i;
			if ((int)i == it)
				order[n++] = i;
		}
		records(order, n, WANT_FORMAT, NULL, "the first ITERATION twice");
	}
	n = 0;
	for (unsigned int i = 0; i < nr_recs; i++)
		order[n++] = (int)i == st ? i + 1 : (int)i == st + 1 ? i - 1 : i;
	records(order, n, WANT_FORMAT, NULL, "the first two STATE records swapped");
	n = 0;
	for (unsigned int i = 0; i + 1 < nr_recs; i++)
		order[n++] = i;
	records(order, n, WANT_FORMAT, "ended", "END missing");
	n = 0;
	for (unsigned int i = 0; i < nr_recs; i++)
		if (rec_type[i] != SEVM_REC_STATE)
			order[n++] = i;
	records(order, n, WANT_FORMAT, NULL, "every STATE record missing");

	/* The source gives up: a CANCEL record in the middle. */
	{
		struct tape t = { 0 };
		uint8_t cancel[REC_HDR] = { 0 };
		struct scase c;
		uint32_t crc;

		tape_bytes(&t, stream.b, rec_at[st]);
		cancel[0] = SEVM_REC_CANCEL;
		cancel[2] = SEVM_STREAM_MANDATORY;
		crc = sevm__crc32c_record(cancel, REC_HDR, 20, NULL, 0);
		memcpy(cancel + 20, &crc, 4);
		tape_bytes(&t, cancel, sizeof(cancel));
		c = scase(&t, WANT_PEER, "cancel", "a CANCEL record before the state");
		c.stall = true;
		run(&c);
		tape_free(&t);
	}
	ck_assert_uint_eq(hostile_failed(), fails);
}
END_TEST

/* ---- stall ---------------------------------------------------------------------------- */

START_TEST(stalls)
{
	const size_t at[] = { 0, 20, rec_at[0] + 10, rec_at[0] + REC_HDR + 100,
			      rec_at[nr_recs - 1] };
	const char *const what[] = { "nothing at all", "half the stream header",
				     "half the first record's header", "half the first record",
				     "everything but END" };
	unsigned int fails = hostile_failed();

	ck_assert_msg(stream.len, "nothing recorded");
	for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
		struct scase c = scase(&stream, WANT_TIMEDOUT, "200 ms", "source silent after %s",
				       what[k]);

		c.cut = at[k];
		c.stall = true;
		run(&c);
	}
	ck_assert_uint_eq(hostile_failed(), fails);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("hostile-stream");
	TCase *tc = tcase_create("fake source, real receiver on KVM");
	int r;

	hostile_child_main(argc, argv, NULL);
	tu_require_kvm();
	hostile_begin("stream");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, record_stream);
	tcase_add_test(tc, cut_everywhere);
	tcase_add_test(tc, slow_and_whole);
	tcase_add_test(tc, length_fields);
	tcase_add_test(tc, damage);
	tcase_add_test(tc, stalls);
	suite_add_tcase(s, tc);
	r = tu_run(s);
	if (!stream.len)
		return 1;
	r |= !hostile_report();
	tinyvm_destroy(&dst);
	close(dst_mem);
	tape_free(&stream);
	return r ? 1 : 0;
}
