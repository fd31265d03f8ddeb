/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-handoff: the blackout of handing a running guest to a new VMM
 * process with libsevmigrate (the staged handoff: prepare before the pause,
 * switch after it), next to two baselines measured in the same run: the
 * naive raw floor (raw-floor.c: pause, capture all, send, restore all,
 * hand-written with raw ioctls) and copying guest RAM through a UNIX socket
 * (handoff-copy.c).  It scales in vCPUs and in guest address space, and
 * breaks each blackout down into its steps (handoff-trace.c: from the
 * outside, through the library's public seam).
 *
 * Blackout = the old VMM starts to pause -> the new VMM releases its vCPUs.
 *
 *   bench-handoff [--quick] [--verbose] [--no-trace] [--fifo] [--one-thread] [--runs N]
 *                 [--runs-big N]
 *                 [--vcpus LIST] [--mem-mib LIST]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "handoff.h"
#include "handoff-trace.h"
#include "quiet.h"
#include "tinyvm.h"

#define MAX_LIST	16
#define MAX_CELLS	(MAX_LIST * MAX_LIST)
#define FULL_TOUCH_MAX	(4 * GIB)	/* up to here every page is touched; above, a few per GiB */
#define SPARSE_PER_GIB	4
#define BIG_RAM		(64 * GIB)	/* above: --runs-big runs (every handoff sets 2 slots) */
#define QUICK_MANY	128		/* --quick: from this many vCPUs on, fewer runs, no warm-up */
#define QUICK_MANY_RUNS	3

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23	/* Linux 5.14 */
#endif

static const char *const mode_name[NR_MODES] = { "staged", "raw floor" };
static bool verbose;

struct config {
	bool quick;
	bool trace;
	bool fifo;			/* the new VMM's control thread SCHED_FIFO */
	bool one_thread;		/* staged: capture in the switch, restore on one thread */
	const char *scheduling;		/* what that thread gets */
	double trace_cost_ns;
	unsigned int runs, runs_big;
	unsigned int vcpus[MAX_LIST], nr_vcpus;
	uint64_t mem[MAX_LIST];		/* bytes */
	unsigned int nr_mems;
	unsigned int key_vcpus;		/* the first three RESULT lines' vCPU count */
};

/* One guest RAM size: one memfd for every cell of that size. */
struct ram {
	uint64_t size;
	int fd;
	bool full;		/* every page touched, or SPARSE_PER_GIB pages per GiB */
	double touch_s;
};

struct cell {
	unsigned int vcpus;
	const struct ram *ram;
	unsigned int runs;	/* staged runs */
	unsigned int raw_runs;	/* raw-floor runs: as many, but 1 at 256 vCPUs in --quick */
	unsigned int n[NR_MODES], failed[NR_MODES];
	unsigned int busy;	/* counted runs that started on a busy machine */
	double slot_ms;		/* the old VM's memory slot, summed over its handoffs */
	unsigned int slots;
	struct sample s[NR_MODES][MAX_RUNS];
};

/* Of the values that are not NAN. */
struct dist {
	unsigned int n;
	double med, q1, q3, min, max;
};

/* ---- Statistics ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The p-quantile of sorted v[0..n), interpolated. */
static double quantile(const double *v, unsigned int n, double p)
{
	double at = p * (n - 1);
	unsigned int i = (unsigned int)at;

	return i + 1 < n ? v[i] + (at - i) * (v[i + 1] - v[i]) : v[n - 1];
}

static struct dist dist_of_values(const double *in, unsigned int count)
{
	struct dist d = { .med = NAN, .q1 = NAN, .q3 = NAN, .min = NAN, .max = NAN };
	double v[MAX_RUNS];

	for (unsigned int i = 0; i < count; i++)
		if (!isnan(in[i]))
			v[d.n++] = in[i];
	if (!d.n)
		return d;
	qsort(v, d.n, sizeof(v[0]), cmp_double);
	d.min = v[0];
	d.max = v[d.n - 1];
	d.med = quantile(v, d.n, 0.5);
	d.q1 = quantile(v, d.n, 0.25);
	d.q3 = quantile(v, d.n, 0.75);
	return d;
}

static struct dist dist_of(const struct cell *c, enum mode m, enum fig f)
{
	double v[MAX_RUNS];

	for (unsigned int i = 0; i < c->n[m]; i++)
		v[i] = c->s[m][i].f[f];
	return dist_of_values(v, c->n[m]);
}

static double med(const struct cell *c, enum mode m, enum fig f)
{
	return c ? dist_of(c, m, f).med : NAN;
}

/* Runs whose figure f is 1, of those that have it. */
static unsigned int count_set(const struct cell *c, enum mode m, enum fig f, unsigned int *of)
{
	unsigned int n = 0;

	*of = 0;
	for (unsigned int i = 0; i < c->n[m]; i++) {
		*of += !isnan(c->s[m][i].f[f]);
		n += c->s[m][i].f[f] == 1;
	}
	return n;
}

static const char *size_str(uint64_t bytes, char *buf, size_t len)
{
	if (bytes >= (1ull << 40) && bytes % (1ull << 40) == 0)
		snprintf(buf, len, "%" PRIu64 " TiB", bytes >> 40);
	else if (bytes >= GIB && bytes % GIB == 0)
		snprintf(buf, len, "%" PRIu64 " GiB", bytes >> 30);
	else
		snprintf(buf, len, "%" PRIu64 " MiB", bytes >> 20);
	return buf;
}

/* ---- Guest RAM -------------------------------------------------------------- */

/*
 * Up to FULL_TOUCH_MAX every page of the memfd exists (MADV_POPULATE_WRITE
 * write-faults each one in): the copy baseline reads real memory there.
 * Above it the memfd is sparse — SPARSE_PER_GIB pages per GiB written with
 * pwrite() — because 1 TiB does not fit this machine.  The handoff never
 * reads guest RAM, so the blackout does not see the difference; the memory
 * slot (KVM's per-page tracking) is as large either way.
 */
static int ram_touch(struct ram *r)
{
	uint64_t t0 = now_ns();

	if (r->full) {
		volatile uint8_t *p = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED,
					   r->fd, 0);

		if (p == MAP_FAILED)
			return -errno;
		/* Before Linux 5.14 (no MADV_POPULATE_WRITE) the loop makes the same faults. */
		if (madvise((void *)p, r->size, MADV_POPULATE_WRITE))
			for (uint64_t off = 0; off < r->size; off += PAGE)
				p[off] = (uint8_t)((off / PAGE) | 1);
		munmap((void *)p, r->size);
	} else {
		/* Mid-way through each stretch: clear of the guest's code and counters. */
		for (uint64_t off = GIB / SPARSE_PER_GIB / 2; off < r->size;
		     off += GIB / SPARSE_PER_GIB) {
			uint64_t v = off | 1;

			if (pwrite(r->fd, &v, sizeof(v), (off_t)off) != sizeof(v))
				return -errno;
		}
	}
	r->touch_s = ms_between(t0, now_ns()) / 1e3;
	return 0;
}

static int ram_new(struct ram *r, uint64_t size)
{
	int err;

	*r = (struct ram){ .size = size, .full = size <= FULL_TOUCH_MAX };
	r->fd = memfd_create("bench-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (r->fd < 0)
		return -errno;
	err = ftruncate(r->fd, (off_t)size) ? -errno : ram_touch(r);
	if (err) {
		close(r->fd);
		r->fd = -1;
	}
	return err;
}

/* ---- Cells ------------------------------------------------------------------ */

static void run_one(const struct config *cfg, enum mode m, struct cell *c, bool keep)
{
	struct handoff_cfg hc = { .vcpus = c->vcpus, .mem_size = c->ram->size,
				  .mem_fd = c->ram->fd, .trace = cfg->trace, .fifo = cfg->fifo,
				  .one_thread = cfg->one_thread, .verbose = verbose,
				  .trace_cost_ns = cfg->trace_cost_ns };
	bool quiet = wait_quiet();
	double slot_ms = 0;
	struct sample s;
	int err = handoff_once(m, &hc, &s, &slot_ms);
	char ram[24];

	size_str(c->ram->size, ram, sizeof(ram));
	c->slot_ms += slot_ms;
	c->slots += slot_ms > 0;
	if (keep && !quiet)
		c->busy++;
	if (err) {
		fprintf(stderr, "bench-handoff: %u vCPUs, %s, %s: failed: %s\n", c->vcpus, ram,
			mode_name[m], sevm_strerror(err));
		c->failed[m]++;
		return;
	}
	if (verbose)
		fprintf(stderr, "%u vCPUs %s %-9s%s%s blackout %8.3f ms: stop %.3f capture %.3f "
			"transfer %.3f restore %.3f commit %.3f release %.3f; all ran +%.3f\n",
			c->vcpus, ram, mode_name[m], keep ? "" : " (warm-up)", quiet ? "" : " (busy)",
			s.f[F_BLACKOUT], s.f[F_STOP], s.f[F_CAPTURE], s.f[F_TRANSFER],
			s.f[F_RESTORE], s.f[F_COMMIT], s.f[F_RELEASE], s.f[F_RAN_ALL]);
	if (keep)
		c->s[m][c->n[m]++] = s;
}

/* A pair, its order alternating run by run so that drift hits both alike. */
static void run_pair(const struct config *cfg, struct cell *c, unsigned int i, bool keep)
{
	enum mode first = i % 2 ? MODE_RAW : MODE_LIB;

	run_one(cfg, first, c, keep);
	run_one(cfg, !first, c, keep);
}

/* --quick keeps every RAM size for the key vCPU count, the smallest for the others. */
static bool cell_wanted(const struct config *cfg, unsigned int vcpus, unsigned int mem)
{
	return !cfg->quick || vcpus == cfg->key_vcpus || mem == 0;
}

static unsigned int cell_runs(const struct config *cfg, unsigned int vcpus, uint64_t size)
{
	unsigned int runs = cfg->runs;

	if (size > BIG_RAM && cfg->runs_big < runs)
		runs = cfg->runs_big;
	if (cfg->quick && vcpus >= QUICK_MANY && QUICK_MANY_RUNS < runs)
		runs = QUICK_MANY_RUNS;
	return runs;
}

/*
 * Every RAM size of one vCPU count, round by round: each round runs a pair
 * on each size, so that the RAM sizes, which the flatness compares, are
 * measured side by side in time.  One warm-up pair first, not counted.
 */
static void run_vcpus(const struct config *cfg, struct cell *cells, unsigned int nr)
{
	unsigned int rounds = 0;

	if (!cfg->quick || cells[0].vcpus < QUICK_MANY)
		run_pair(cfg, &cells[0], 0, false);
	for (unsigned int i = 0; i < nr; i++)
		rounds = cells[i].runs > rounds ? cells[i].runs : rounds;
	for (unsigned int r = 0; r < rounds; r++)
		for (unsigned int i = 0; i < nr; i++)
			if (r < cells[i].raw_runs)
				run_pair(cfg, &cells[i], r, true);
			else if (r < cells[i].runs)
				run_one(cfg, MODE_LIB, &cells[i], true);
}

/* ---- Output ------------------------------------------------------------------- */

static void print_header(const struct config *cfg, const struct ram *rams)
{
	struct utsname u;

	uname(&u);
	printf("bench-handoff: blackout = the old VMM starts to pause -> the new VMM releases "
	       "its vCPUs\n");
	printf("host: %ld CPUs, kernel %s; staged = the library (prepare before the pause, "
	       "switch after it; %s); naive raw floor = raw ioctls, pause, capture all, send, "
	       "restore all (raw-floor.c)\n", sysconf(_SC_NPROCESSORS_ONLN), u.release,
	       cfg->one_thread ? "--one-thread: the switch captures, one thread restores" :
	       "each vCPU thread captures its vCPU as it pauses, restore threads");
	printf("%u runs per cell and mode (RAM above 64 GiB: %u%s), staged and raw alternating, "
	       "each started when the CPUs were >= %.0f %% idle (or its wait ran out); tinyvm "
	       "guest, PIT, verify_ram off; the new VMM's control thread: %s\n",
	       cfg->runs, cfg->runs_big < cfg->runs ? cfg->runs_big : cfg->runs,
	       cfg->quick ? "; --quick: from 128 vCPUs on 3 staged and 1 raw, no warm-up" : "",
	       QUIET_IDLE * 100, cfg->scheduling);
	printf("staged breakdown: %s\n", cfg->trace ?
	       "the library's calls noted through its public seam (sevm_set_backend), both sides" :
	       "off (--no-trace)");
	printf("guest RAM, one memfd per size:");
	for (unsigned int i = 0; i < cfg->nr_mems; i++) {
		char ram[24];

		printf("%s %s %s (%.2f s)", i ? "," : "", size_str(rams[i].size, ram, sizeof(ram)),
		       rams[i].full ? "every page touched" : "sparse, 4 pages per GiB touched",
		       rams[i].touch_s);
	}
	printf("\n\n");
	printf("                                |  staged blackout ms                     |"
	       "  naive raw floor ms                     | staged\n");
	printf("vCPUs      RAM  slot ms (before)|  median      q1      q3     min     max |"
	       "  median      q1      q3     min     max |   /raw\n");
	fflush(stdout);
}

static void print_row(const struct cell *c)
{
	struct dist l = dist_of(c, MODE_LIB, F_BLACKOUT), r = dist_of(c, MODE_RAW, F_BLACKOUT);
	char ram[24];

	printf("%5u  %7s  %8.2f         | %7.3f %7.3f %7.3f %7.3f %7.3f | %7.3f %7.3f %7.3f "
	       "%7.3f %7.3f | %6.2f", c->vcpus, size_str(c->ram->size, ram, sizeof(ram)),
	       c->slots ? c->slot_ms / c->slots : NAN, l.med, l.q1, l.q3, l.min, l.max, r.med,
	       r.q1, r.q3, r.min, r.max, l.med / r.med);
	if (c->n[MODE_LIB] != c->runs || c->n[MODE_RAW] != c->raw_runs)
		printf("  (%u and %u runs)", c->n[MODE_LIB], c->n[MODE_RAW]);
	if (c->busy)
		printf("  (%u of %u runs started on a busy machine)", c->busy,
		       c->n[MODE_LIB] + c->n[MODE_RAW]);
	if (c->failed[MODE_LIB] || c->failed[MODE_RAW])
		printf("  (FAILED: %u staged, %u raw)", c->failed[MODE_LIB], c->failed[MODE_RAW]);
	printf("\n");
	fflush(stdout);
}

/*
 * A table's column: a figure's median, w wide with d decimals, after a
 * " |" if bar; d < 0 for a yes/no figure, shown as yes/runs that have it.
 */
struct column {
	enum fig f;
	int w, d;
	bool bar;
};

static void print_row_of(const struct cell *c, enum mode m, const struct column *col, size_t n)
{
	char ram[24];

	printf("%5u  %7s |", c->vcpus, size_str(c->ram->size, ram, sizeof(ram)));
	for (size_t k = 0; k < n; k++) {
		unsigned int of, yes;

		printf("%s", col[k].bar ? " |" : "");
		if (col[k].d >= 0) {
			printf(" %*.*f", col[k].w, col[k].d, med(c, m, col[k].f));
			continue;
		}
		yes = count_set(c, m, col[k].f, &of);
		printf(" %*u/%-3u", col[k].w, yes, of);
	}
	printf("\n");
}

/* A title, two heading lines, then a row of medians per cell. */
static void print_table(const char *const head[3], const struct cell *cells, unsigned int n,
			enum mode m, const struct column *col, size_t nr_col)
{
	printf("\n%s\n%s\n%s\n", head[0], head[1], head[2]);
	for (unsigned int i = 0; i < n; i++)
		print_row_of(&cells[i], m, col, nr_col);
}

#define COLUMNS(col)	col, sizeof(col) / sizeof(col[0])

static void print_raw_breakdown(const struct cell *cells, unsigned int n)
{
	static const char *const head[3] = {
		"naive raw floor, where the blackout goes (medians, ms; one step after another)",
		"               |                    blackout                     |"
		"       after the release",
		"vCPUs      RAM |    stop capture transfer restore release |  median |"
		" 1st vCPU in KVM_RUN  all in KVM_RUN  all ran",
	};
	static const struct column col[] = {
		{ F_STOP, 7, 3 }, { F_CAPTURE, 7, 3 }, { F_TRANSFER, 8, 3 }, { F_RESTORE, 7, 3 },
		{ F_RELEASE, 7, 3 }, { F_BLACKOUT, 7, 3, true }, { F_RUN_FIRST, 19, 3, true },
		{ F_RUN_ALL, 15, 3 }, { F_RAN_ALL, 8, 3 },
	};

	print_table(head, cells, n, MODE_RAW, COLUMNS(col));
}

static void print_lib_breakdown(const struct cell *cells, unsigned int n)
{
	static const char *const head[3] = {
		"staged (library), where the blackout goes (medians, ms; the critical path: a "
		"capture that ended under the stop counts 0, the restore runs from the later of "
		"the two)",
		"               |                   blackout                    |"
		"  after the release        | inside the blackout: ioctl ms (first to last, "
		"summed over threads), threads, ioctls per vCPU, ms in socket calls; runs on "
		"one CPU",
		"vCPUs      RAM |    stop capture restore  commit release |  median |"
		"  1st in  all in  all ran | span old   new summed old   new threads old new"
		" /vCPU old  new sock old   new   1 CPU STATE msgs    KiB  tracing",
	};
	static const struct column col[] = {
		{ F_STOP, 7, 3 }, { F_CAPTURE, 7, 3 }, { F_RESTORE, 7, 3 }, { F_COMMIT, 7, 3 },
		{ F_RELEASE, 7, 3 }, { F_BLACKOUT, 7, 3, true }, { F_RUN_FIRST, 7, 3, true },
		{ F_RUN_ALL, 7, 3 }, { F_RAN_ALL, 8, 3 },
		{ F_O_SPAN, 8, 2, true }, { F_N_SPAN, 5, 2 }, { F_O_IOCTL, 10, 2 },
		{ F_N_IOCTL, 5, 2 }, { F_O_THREADS, 11, 0 }, { F_N_THREADS, 3, 0 },
		{ F_O_PER_VCPU, 9, 1 }, { F_N_PER_VCPU, 4, 1 }, { F_O_SOCK, 8, 2 },
		{ F_N_SOCK, 5, 2 }, { F_ONE_CPU, 3, -1 }, { F_MSGS, 10, 0 }, { F_KIB, 6, 0 },
		{ F_TRACE, 8, 3 },
	};

	print_table(head, cells, n, MODE_LIB, COLUMNS(col));
}

static void print_lib_sides(const struct cell *cells, unsigned int n)
{
	static const char *const head[3] = {
		"staged (library), what each side's clock shows (medians, ms since the pause "
		"began)",
		"               | old VMM:   paused 1st vCPU last vCPU  all cap- RESTORED   switch"
		" | new VMM:  1st STATE last STATE restored       GO   switch released",
		"vCPUs      RAM |                   captured captured    tured       in returned"
		" |                 in        in                 in returned",
	};
	static const struct column col[] = {
		{ F_STOP, 17, 3 }, { F_O_CAPT1, 8, 3 }, { F_O_CAPTN, 8, 3 }, { F_O_SENT, 8, 3 },
		{ F_O_RESTORED, 8, 3 }, { F_O_SWITCHED, 8, 3 },
		{ F_N_STATE1, 18, 3, true }, { F_N_STATEN, 8, 3 }, { F_N_RESTORED, 8, 3 },
		{ F_N_GO, 8, 3 }, { F_N_SWITCHED, 8, 3 }, { F_BLACKOUT, 8, 3 },
	};

	print_table(head, cells, n, MODE_LIB, COLUMNS(col));
}

/* Largest / smallest median blackout over the RAM sizes of one vCPU count. */
static double flatness(const struct cell *cells, unsigned int n, unsigned int vcpus, enum mode m,
		       uint64_t *lo_ram, uint64_t *hi_ram)
{
	double lo = INFINITY, hi = -INFINITY;

	*lo_ram = UINT64_MAX;
	*hi_ram = 0;
	for (unsigned int i = 0; i < n; i++) {
		double v = cells[i].vcpus == vcpus ? med(&cells[i], m, F_BLACKOUT) : NAN;

		if (isnan(v))
			continue;
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
		*lo_ram = cells[i].ram->size < *lo_ram ? cells[i].ram->size : *lo_ram;
		*hi_ram = cells[i].ram->size > *hi_ram ? cells[i].ram->size : *hi_ram;
	}
	return hi >= lo && *lo_ram < *hi_ram ? hi / lo : NAN;
}

static const struct cell *find_cell(const struct cell *cells, unsigned int n,
				    unsigned int vcpus, uint64_t mem)
{
	for (unsigned int i = 0; i < n; i++)
		if (cells[i].vcpus == vcpus && cells[i].ram->size == mem)
			return &cells[i];
	return NULL;
}

/* The cell of a vCPU count with the least RAM: the RESULT lines' choice. */
static const struct cell *smallest_cell(const struct cell *cells, unsigned int n,
					unsigned int vcpus)
{
	const struct cell *best = NULL;

	for (unsigned int i = 0; i < n; i++)
		if (cells[i].vcpus == vcpus && (!best || cells[i].ram->size < best->ram->size))
			best = &cells[i];
	return best;
}

static double ratio(const struct cell *c)
{
	return med(c, MODE_LIB, F_BLACKOUT) / med(c, MODE_RAW, F_BLACKOUT);
}

static void print_copies(const struct config *cfg, const struct cell *cells, unsigned int n,
			 const struct copy_result *cr, unsigned int nr_copies)
{
	static const char *const what[NR_COPY_KINDS] = {
		"through the socket (1 MiB buffer reused)", "into the receiver's RAM (faulted in)",
	};

	if (!nr_copies)
		return;
	printf("\ncopy baseline: the RAM written through a UNIX socket in 1 MiB send()s\n");
	for (unsigned int i = 0; i < nr_copies; i++) {
		const struct cell *c = find_cell(cells, n, cfg->key_vcpus, cr[i].mem_size);
		double lib = med(c, MODE_LIB, F_BLACKOUT);
		char ram[24];

		for (int k = 0; k < NR_COPY_KINDS; k++) {
			struct dist d = dist_of_values(cr[i].ms[k], cr[i].n[k]);

			if (!d.n)
				continue;
			printf("  %7s %-41s %9.1f ms (median of %u, min %.1f, max %.1f) = %.0fx "
			       "the staged blackout at %u vCPUs (%.3f ms)\n",
			       size_str(cr[i].mem_size, ram, sizeof(ram)), what[k], d.med, d.n,
			       d.min, d.max, d.med / lib, cfg->key_vcpus, lib);
		}
	}
}

static void print_flatness(const struct config *cfg, const struct cell *cells, unsigned int n)
{
	printf("\nRAM flatness, largest / smallest median over the RAM sizes (staged | raw):\n");
	for (unsigned int v = 0; v < cfg->nr_vcpus; v++) {
		uint64_t lo, hi;
		double f = flatness(cells, n, cfg->vcpus[v], MODE_LIB, &lo, &hi);
		double r = flatness(cells, n, cfg->vcpus[v], MODE_RAW, &lo, &hi);
		char a[24], b[24];

		if (isnan(f))
			continue;
		printf("  %3u vCPUs, %s to %s: %.3f | %.3f\n", cfg->vcpus[v],
		       size_str(lo, a, sizeof(a)), size_str(hi, b, sizeof(b)), f, r);
	}
}

/* The targets, against every cell they speak of. */
static void print_targets(const struct config *cfg, const struct cell *cells, unsigned int n)
{
	printf("\ntargets:\n  staged <= 0.5x the naive raw floor at 16 vCPUs and more:");
	for (unsigned int i = 0; i < n; i++) {
		char ram[24];

		if (cells[i].vcpus >= 16)
			printf("  %u/%s %.2f", cells[i].vcpus,
			       size_str(cells[i].ram->size, ram, sizeof(ram)), ratio(&cells[i]));
	}
	printf("\n  256 vCPUs under 25 ms (staged median):");
	for (unsigned int i = 0; i < n; i++) {
		char ram[24];

		if (cells[i].vcpus == 256)
			printf("  %s %.1f ms", size_str(cells[i].ram->size, ram, sizeof(ram)),
			       med(&cells[i], MODE_LIB, F_BLACKOUT));
	}
	printf("\n  64 MiB to 1 TiB within 10 %% (staged, largest / smallest):");
	for (unsigned int v = 0; v < cfg->nr_vcpus; v++) {
		uint64_t lo, hi;
		double f = flatness(cells, n, cfg->vcpus[v], MODE_LIB, &lo, &hi);
		char b[24];

		if (!isnan(f))
			printf("  %u vCPUs %.3f (to %s)", cfg->vcpus[v], f, size_str(hi, b, sizeof(b)));
	}
	printf("\n");
}

static void print_results(const struct config *cfg, const struct cell *cells, unsigned int n,
			  const struct copy_result *cr, unsigned int nr_copies)
{
	const struct cell *small = find_cell(cells, n, cfg->key_vcpus, 64 * MIB);
	double copy4g = NAN;
	uint64_t lo, hi;

	for (unsigned int i = 0; i < nr_copies; i++)
		if (cr[i].mem_size == 4 * GIB)
			copy4g = dist_of_values(cr[i].ms[COPY_RAM], cr[i].n[COPY_RAM]).med;
	printf("\n");
	printf("RESULT ratio_vs_raw=%.3f\n", small ? ratio(small) : NAN);
	printf("RESULT speedup_vs_copy_4g=%.0f\n",
	       copy4g / med(find_cell(cells, n, cfg->key_vcpus, 4 * GIB), MODE_LIB, F_BLACKOUT));
	printf("RESULT ram_flatness=%.3f\n",
	       flatness(cells, n, cfg->key_vcpus, MODE_LIB, &lo, &hi));
	small = smallest_cell(cells, n, 16);
	printf("RESULT staged_vs_raw=%.3f\n", small ? ratio(small) : NAN);
	printf("RESULT blackout_256_ms=%.3f\n",
	       med(smallest_cell(cells, n, 256), MODE_LIB, F_BLACKOUT));
}

/* ---- Driver ----------------------------------------------------------------- */

/*
 * The copy baseline first, on the touched memfds, while nothing else runs.
 * Faulting in fresh memory is slow on this host (it comes back from the
 * hypervisor page by page), so the RAM receiver of a 1 or 4 GiB copy is
 * started before the guest's RAM is touched and faults its own in meanwhile.
 */
static unsigned int copies(const struct config *cfg, struct ram *rams, struct copy_result *cr)
{
	struct copy_peer early[MAX_LIST];
	bool has_early[MAX_LIST] = { false };
	unsigned int nr = 0;

	for (unsigned int i = 0; i < cfg->nr_mems; i++)
		has_early[i] = copy_is_size(cfg->mem[i]) && cfg->mem[i] >= GIB &&
			       !copy_spawn_early(cfg->mem[i], &early[i]);
	for (unsigned int i = 0; i < cfg->nr_mems; i++) {
		int err = ram_new(&rams[i], cfg->mem[i]);

		if (err) {
			fprintf(stderr, "bench-handoff: guest RAM of %" PRIu64 " MiB: %s\n",
				cfg->mem[i] >> 20, strerror(-err));
			exit(1);
		}
	}
	/* A copy must not run while a receiver still faults its memory in. */
	for (unsigned int i = 0; i < cfg->nr_mems; i++)
		if (has_early[i])
			copy_wait_ready(&early[i]);	/* a failure shows when its copy runs */
	for (unsigned int i = 0; i < cfg->nr_mems; i++)
		if (copy_is_size(cfg->mem[i]))
			copy_run_all(&cr[nr++], rams[i].fd, cfg->mem[i], cfg->runs, cfg->quick,
				     has_early[i] ? &early[i] : NULL);
	return nr;
}

static int bench(const struct config *cfg)
{
	static struct cell cells[MAX_CELLS];
	static struct copy_result cr[MAX_LIST];
	struct ram rams[MAX_LIST];
	double took[MAX_LIST + 1];	/* s: the RAM and the copies, then each vCPU count */
	unsigned int nr_cells = 0, nr_copies, failed = 0;
	uint64_t t0 = now_ns();

	/* --quick must end within 40 s even when the machine never calms down. */
	if (cfg->quick)
		quiet_set(300, 4000);
	else
		quiet_set(3000, 240000);
	nr_copies = copies(cfg, rams, cr);
	took[0] = ms_between(t0, now_ns()) / 1e3;
	print_header(cfg, rams);
	for (unsigned int v = 0; v < cfg->nr_vcpus; v++) {
		struct cell *first = &cells[nr_cells];
		unsigned int nr = 0;

		for (unsigned int m = 0; m < cfg->nr_mems; m++) {
			if (!cell_wanted(cfg, cfg->vcpus[v], m))
				continue;
			struct cell *c = &first[nr++];

			*c = (struct cell){ .vcpus = cfg->vcpus[v], .ram = &rams[m],
					    .runs = cell_runs(cfg, cfg->vcpus[v], cfg->mem[m]) };
			/* --quick: its RESULT line needs 3 staged runs there, not 3 raw ones. */
			c->raw_runs = cfg->quick && c->vcpus >= QUICK_MANY ? 1 : c->runs;
		}
		t0 = now_ns();
		run_vcpus(cfg, first, nr);
		took[v + 1] = ms_between(t0, now_ns()) / 1e3;
		for (unsigned int i = 0; i < nr; i++)
			print_row(&first[i]);
		nr_cells += nr;
	}
	printf("\n(took %.1f s for the guest RAM and the copies", took[0]);
	for (unsigned int v = 0; v < cfg->nr_vcpus; v++)
		printf(", %.1f s for %u vCPUs", took[v + 1], cfg->vcpus[v]);
	printf(")\n");
	for (unsigned int i = 0; i < nr_cells; i++)
		failed += cells[i].failed[MODE_LIB] + cells[i].failed[MODE_RAW];
	if (quiet_waited_ms())
		printf("(waited %.1f s in all for the other sessions' load to pass)\n",
		       (double)quiet_waited_ms() / 1e3);
	print_raw_breakdown(cells, nr_cells);
	if (cfg->trace) {
		print_lib_breakdown(cells, nr_cells);
		print_lib_sides(cells, nr_cells);
	}
	print_flatness(cfg, cells, nr_cells);
	print_copies(cfg, cells, nr_cells, cr, nr_copies);
	print_targets(cfg, cells, nr_cells);
	print_results(cfg, cells, nr_cells, cr, nr_copies);
	for (unsigned int i = 0; i < cfg->nr_mems; i++)
		close(rams[i].fd);
	return failed ? 1 : 0;
}

/* ---- Command line ---------------------------------------------------------- */

struct role {
	const char *name;	/* NULL: the benchmark itself */
	const char *mode;
	int sock, ctl;
	uint64_t size;
};

static unsigned int parse_list(const char *s, unsigned int *uv, uint64_t *u64v)
{
	unsigned int n = 0;
	char *end;

	while (*s && n < MAX_LIST) {
		unsigned long long x = strtoull(s, &end, 0);

		/* Too large to hold is as wrong as 0, not a smaller number after wrapping. */
		if (end == s || !x || x > (uv ? UINT_MAX : UINT64_MAX / MIB))
			return 0;
		if (uv)
			uv[n++] = (unsigned int)x;
		else
			u64v[n++] = x * MIB;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return 0;
	}
	return *s ? 0 : n;
}

static void defaults(struct config *cfg, bool quick)
{
	static const unsigned int vcpus[] = { 1, 4, 16, 64, 256 }, quick_vcpus[] = { 4, 16, 256 };
	static const uint64_t mems[] = { 64 * MIB, 4 * GIB, 64 * GIB, 1ull << 40 };
	static const uint64_t quick_mems[] = { 64 * MIB, 4 * GIB, 64 * GIB };
	const unsigned int *v = quick ? quick_vcpus : vcpus;
	const uint64_t *m = quick ? quick_mems : mems;

	*cfg = (struct config){ .quick = quick, .trace = true, .runs = quick ? 6 : 11,
				.runs_big = 3, .key_vcpus = 4,
				.nr_vcpus = quick ? 3 : 5, .nr_mems = quick ? 3 : 4 };
	memcpy(cfg->vcpus, v, cfg->nr_vcpus * sizeof(*v));
	memcpy(cfg->mem, m, cfg->nr_mems * sizeof(*m));
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [--quick] [--verbose] [--no-trace] [--fifo] [--one-thread] "
		"[--runs N] [--runs-big N] "
		"[--vcpus 1,4,16,64,256] [--mem-mib 64,4096,65536,1048576]\n", argv0);
}

/* The first three RESULT lines speak of 4 vCPUs, or of the first count when 4 is not measured. */
static void pick_key_vcpus(struct config *cfg)
{
	for (unsigned int i = 0; i < cfg->nr_vcpus; i++)
		if (cfg->vcpus[i] == 4)
			return;
	cfg->key_vcpus = cfg->vcpus[0];
}

static bool ascending(const uint64_t *v, unsigned int n)
{
	for (unsigned int i = 1; i < n; i++)
		if (v[i] <= v[i - 1])
			return false;
	return true;
}

static bool valid(const struct config *cfg)
{
	if (!cfg->runs || cfg->runs > MAX_RUNS || !cfg->runs_big || !cfg->nr_vcpus ||
	    !cfg->nr_mems || !ascending(cfg->mem, cfg->nr_mems))
		return false;
	for (unsigned int i = 0; i < cfg->nr_vcpus; i++)
		if (cfg->vcpus[i] > TINYVM_MAX_VCPUS)
			return false;
	return true;
}

static int parse(int argc, char **argv, struct config *cfg, struct role *role)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'V' },
		{ "no-trace", no_argument, NULL, 'T' },
		{ "fifo", no_argument, NULL, 'F' },
		{ "one-thread", no_argument, NULL, 'O' },
		{ "runs", required_argument, NULL, 'n' },
		{ "runs-big", required_argument, NULL, 'b' },
		{ "vcpus", required_argument, NULL, 'v' },
		{ "mem-mib", required_argument, NULL, 'm' },
		/* Hidden: how the benchmark starts its children. */
		{ "role", required_argument, NULL, 'R' },
		{ "mode", required_argument, NULL, 'M' },
		{ "sock", required_argument, NULL, 'S' },
		{ "ctl", required_argument, NULL, 'C' },
		{ "size", required_argument, NULL, 'Z' },
		{ NULL, 0, NULL, 0 },
	};
	const char *vcpus = NULL, *mems = NULL;
	long runs = -1, runs_big = -1;
	bool quick = false, no_trace = false, fifo = false, one_thread = false;
	int o;

	*role = (struct role){ .sock = -1, .ctl = -1 };
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'q': quick = true; break;
		case 'V': verbose = true; break;
		case 'T': no_trace = true; break;
		case 'F': fifo = true; break;
		case 'O': one_thread = true; break;
		case 'n': runs = strtol(optarg, NULL, 0); break;
		case 'b': runs_big = strtol(optarg, NULL, 0); break;
		case 'v': vcpus = optarg; break;
		case 'm': mems = optarg; break;
		case 'R': role->name = optarg; break;
		case 'M': role->mode = optarg; break;
		case 'S': role->sock = atoi(optarg); break;
		case 'C': role->ctl = atoi(optarg); break;
		case 'Z': role->size = strtoull(optarg, NULL, 0); break;
		default: return -EINVAL;
		}
	}
	if (optind != argc)
		return -EINVAL;
	defaults(cfg, quick);
	cfg->trace = !no_trace;
	cfg->fifo = fifo;
	cfg->one_thread = one_thread;
	if (runs >= 0)
		cfg->runs = (unsigned int)runs;
	if (runs_big >= 0)
		cfg->runs_big = (unsigned int)runs_big;
	if (vcpus && !(cfg->nr_vcpus = parse_list(vcpus, cfg->vcpus, NULL)))
		return -EINVAL;
	if (mems && !(cfg->nr_mems = parse_list(mems, NULL, cfg->mem)))
		return -EINVAL;
	pick_key_vcpus(cfg);
	return valid(cfg) ? 0 : -EINVAL;
}

static int child_main(const struct role *role)
{
	const char *mode = role->mode ? role->mode : "";

	if (!strcmp(role->name, "copy"))
		return copy_receiver_main(mode, role->sock, role->ctl, role->size);
	if (!strcmp(role->name, "new") && (!strncmp(mode, "lib", 3) || !strncmp(mode, "raw", 3)))
		return new_vmm_main(mode, role->sock, role->ctl);
	fprintf(stderr, "bench-handoff: unknown role %s %s\n", role->name, mode);
	return 2;
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct role role;

	bench_argv0 = argv[0];
	/* A child that dies must show up as an error, not kill the benchmark. */
	signal(SIGPIPE, SIG_IGN);
	if (parse(argc, argv, &cfg, &role)) {
		usage(argv[0]);
		return 2;
	}
	if (role.name)
		return child_main(&role);
	/* What a child will get: asked here, where the header is printed, then undone. */
	cfg.scheduling = new_vmm_fifo();
	if (!cfg.fifo && !strncmp(cfg.scheduling, "SCHED_FIFO", 10))
		cfg.scheduling = "SCHED_FIFO while it builds its VM, ordinary from the moment it "
				 "reports ready (PREPARED, READY) on";
	sched_setscheduler(0, SCHED_OTHER, &(struct sched_param){ 0 });
	cfg.trace_cost_ns = trace_call_cost_ns();
	return bench(&cfg);
}
