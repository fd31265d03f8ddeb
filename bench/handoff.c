/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-handoff: the blackout of handing a running guest to a new VMM
 * process with libsevmigrate, next to two baselines measured in the same
 * run: the raw-ioctl floor (raw-floor.c: the same move, hand-written, no
 * format) and copying guest RAM through a UNIX socket.
 *
 * This process is the old VMM.  For every handoff it forks and execs itself
 * as the new VMM (the hidden --role new, as examples/vmm-upgrade does), so
 * the two VMMs are separate processes with separate mm.  It boots a tinyvm
 * guest on the cell's memfd, lets every vCPU beat, and hands the guest over;
 * the new VMM runs it until every vCPU beat again, checks that no heartbeat
 * was lost or repeated, and reports its CLOCK_MONOTONIC stamps, which are
 * host-wide and so compare with this process's.
 *
 * Blackout = the old VMM starts to pause -> the new VMM releases its vCPUs.
 *
 *   bench-handoff [--quick] [--verbose] [--runs N] [--vcpus LIST] [--mem-mib LIST]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "raw-floor.h"
#include "tinyvm-handoff.h"

#define PAGE		4096u
#define MIB		(1ull << 20)
#define PERIOD		256u		/* heartbeat period: a beat every few ms per vCPU */
#define BEATS_AFTER	2u		/* beats every vCPU must show in the new VMM */
#define BEAT_WAIT_MS	20000		/* 64 vCPUs share 2 CPUs: be patient */
#define REPORT_WAIT_MS	60000
#define COPY_CHUNK	MIB		/* the copy baseline's write() size */
#define MAX_RUNS	101
#define MAX_CELLS	16
#define NR_PHASES	4

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23	/* Linux 5.14 */
#endif

enum mode { MODE_LIB, MODE_RAW, NR_MODES };
static const char *const mode_arg[NR_MODES] = { "lib", "raw" };
static const char *const mode_name[NR_MODES] = { "library", "raw floor" };

/* What the new VMM tells the old one once the guest ran on there. */
struct report {
	int32_t err;		/* 0: took the guest and it beat on exactly */
	uint32_t pad;
	uint64_t errors;	/* tinyvm_total_errors() there */
	uint64_t pause_ns;	/* the old VMM's, as it travelled */
	uint64_t mid_ns;	/* library: switch returned; raw: whole array received */
	uint64_t resumed_ns;	/* vCPU threads released */
};

/* One handoff, in ms.  Phases: library pause/switch/resume; raw pause/capture/send/restore. */
struct sample {
	double blackout;
	double phase[NR_PHASES];
};

struct cell {
	unsigned int vcpus;
	uint64_t mem_size;
	double touch_s;
	unsigned int n[NR_MODES], failed[NR_MODES];
	unsigned int busy;	/* counted runs that started on a busy machine */
	struct sample s[NR_MODES][MAX_RUNS];
};

struct config {
	bool quick;
	const char *scheduling;		/* what the new VMM's control thread gets */
	unsigned int runs;
	unsigned int vcpus[MAX_CELLS], nr_vcpus;
	uint64_t mem_mib[MAX_CELLS];
	unsigned int nr_mems;
	unsigned int key_vcpus;		/* the RESULT lines' vCPU count */
};

/*
 * The copy baseline, per RAM size that has one.  COPY_RAM: the receiver
 * reads into RAM of its own of the full size, faulted in beforehand (the
 * copy's best case); the RESULT line uses it.  COPY_SOCKET: it reads into
 * one 1 MiB buffer it reuses, so every byte crosses the socket and none
 * lands in new memory: a lower bound for any copy-based migration.
 */
enum copy_kind { COPY_SOCKET, COPY_RAM, NR_COPY_KINDS };
static const char *const copy_arg[NR_COPY_KINDS] = { "socket", "ram" };

struct copy_result {
	uint64_t mem_size;
	unsigned int n[NR_COPY_KINDS];
	double ms[NR_COPY_KINDS][MAX_RUNS];
};

static const char *argv0;
static bool verbose;

/* ---- Small things ------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double ms_between(uint64_t from, uint64_t to)
{
	return ((double)to - (double)from) / 1e6;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median, min and max of v[0..n); NAN when n is 0. */
static void stats(const double *v, unsigned int n, double *med, double *min, double *max)
{
	double sorted[MAX_RUNS];

	*med = *min = *max = NAN;
	if (!n)
		return;
	memcpy(sorted, v, n * sizeof(*v));
	qsort(sorted, n, sizeof(*sorted), cmp_double);
	*min = sorted[0];
	*max = sorted[n - 1];
	*med = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

static double median(const double *v, unsigned int n)
{
	double med, min, max;

	stats(v, n, &med, &min, &max);
	return med;
}

static const char *size_str(uint64_t bytes, char *buf, size_t len)
{
	if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0)
		snprintf(buf, len, "%" PRIu64 " GiB", bytes >> 30);
	else
		snprintf(buf, len, "%" PRIu64 " MiB", bytes >> 20);
	return buf;
}

static int read_all(int fd, void *p, size_t len, int timeout_ms)
{
	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int r = poll(&pfd, 1, timeout_ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r ? -errno : -ETIMEDOUT;
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -ECONNRESET;
		p = (char *)p + n;
		len -= (size_t)n;
	}
	return 0;
}

/* Until every vCPU beat n more times in this VMM; false after BEAT_WAIT_MS. */
static bool beats_advance(const struct tinyvm *vm, unsigned int n)
{
	uint64_t before[TINYVM_MAX_VCPUS];

	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		before[i] = tinyvm_heartbeats(vm, i);
	for (unsigned int waited = 0; waited < BEAT_WAIT_MS; waited++) {
		unsigned int done = 0;

		for (unsigned int i = 0; i < vm->nr_vcpus; i++)
			done += tinyvm_heartbeats(vm, i) >= before[i] + n;
		if (done == vm->nr_vcpus)
			return true;
		sleep_ms(1);
	}
	return false;
}

/* ---- A quiet machine ------------------------------------------------------ */

/*
 * Other sessions build and test on this 2-CPU machine; a handoff that
 * starts while they run measures their load.  Each run starts when the
 * CPUs were at least QUIET_IDLE idle over QUIET_WINDOW_MS, or when its
 * wait ran out (the run counts as started busy and the table says so).
 */
#define QUIET_WINDOW_MS	50
#define QUIET_IDLE	0.75

struct gate {
	unsigned int per_run_ms;	/* longest wait before one run */
	uint64_t budget_ms;		/* longest wait in all */
	uint64_t waited_ms;
};

static struct gate gate;

/* Jiffies of the whole machine: busy (steal included: we could not run) and all. */
static bool cpu_jiffies(uint64_t *busy, uint64_t *all)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "re");
	int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
			   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) : 0;

	if (f)
		fclose(f);
	if (n < 8)
		return false;
	*busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
	*all = *busy + v[3] + v[4];
	return true;
}

static double idle_over(unsigned int ms)
{
	uint64_t b0, a0, b1, a1;

	if (!cpu_jiffies(&b0, &a0))
		return 1;
	sleep_ms(ms);
	if (!cpu_jiffies(&b1, &a1) || a1 == a0)
		return 1;
	return 1 - (double)(b1 - b0) / (double)(a1 - a0);
}

/* true: the machine was quiet; false: the wait ran out. */
static bool wait_quiet(void)
{
	for (unsigned int waited = 0;; waited += QUIET_WINDOW_MS) {
		if (idle_over(QUIET_WINDOW_MS) >= QUIET_IDLE)
			return true;
		if (waited >= gate.per_run_ms || gate.waited_ms >= gate.budget_ms)
			return false;
		gate.waited_ms += QUIET_WINDOW_MS;
	}
}

/*
 * The new VMM's control thread releases its vCPU threads and then stamps
 * resumed_ns.  On 2 CPUs the threads it wakes preempt it, at once or at the
 * next tick once its slice is spent, and the stamp comes 4 ms ticks late
 * (150 ms with 64 vCPUs) while the guest already runs: the blackout would
 * measure the scheduler.  So that thread runs SCHED_FIFO, which ordinary
 * threads never preempt, and SCHED_RESET_ON_FORK makes the vCPU threads it
 * creates ordinary again.  (SCHED_BATCH, which only turns off wakeup
 * preemption, still lost the tick race with 16 and 64 vCPUs.)  The old VMM
 * stays an ordinary process: tinyvm_pause() spins with sched_yield() for a
 * vCPU thread that may share its CPU, which a SCHED_FIFO thread would not
 * let run.  Library and raw floor alike.
 */
static const char *new_vmm_scheduling(void)
{
	struct sched_param sp = { .sched_priority = 1 };

	if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) == 0)
		return "SCHED_FIFO";
	sp.sched_priority = 0;
	if (sched_setscheduler(0, SCHED_BATCH | SCHED_RESET_ON_FORK, &sp) == 0)
		return "SCHED_BATCH (no SCHED_FIFO here: resumed_ns may be late)";
	return "ordinary (resumed_ns may be late)";
}

/* ---- The new VMM (a child) ------------------------------------------------ */

static int receive_lib(int sock, struct tinyvm *vm, struct report *rep)
{
	struct tinyvm_handoff_times t = { .verify_ram = false };
	struct sevm_handoff *h;
	int err = sevm_handoff_from_fd(sock, false, NULL, &h);

	if (err) {
		fprintf(stderr, "bench new VMM: %s\n", sevm_last_error());
		close(sock);
		return err;
	}
	err = tinyvm_handoff_receive(vm, h, &t);
	if (err)
		fprintf(stderr, "bench new VMM: taking the guest: %s\n",
			err == -EIO || err == -EPROTO ? strerror(-err) : sevm_last_error());
	sevm_handoff_free(h);
	rep->pause_ns = t.pause_ns;
	rep->mid_ns = t.switched_ns;
	rep->resumed_ns = t.resumed_ns;
	return err;
}

static int receive_raw(int sock, struct tinyvm *vm, struct report *rep)
{
	struct raw_floor_times t = { 0 };
	int err = raw_floor_receive(sock, vm, &t);

	close(sock);
	rep->pause_ns = t.pause_ns;
	rep->mid_ns = t.received_ns;
	rep->resumed_ns = t.resumed_ns;
	return err;
}

/* The guest must go on here exactly where it stopped there: a fake handoff fails this. */
static int new_vmm(enum mode m, int sock, int ctl)
{
	struct tinyvm vm = { 0 };
	struct report rep = { 0 };

	rep.err = m == MODE_LIB ? receive_lib(sock, &vm, &rep) : receive_raw(sock, &vm, &rep);
	if (!rep.err && !beats_advance(&vm, BEATS_AFTER)) {
		fprintf(stderr, "bench new VMM: the guest did not beat on within %d ms\n",
			BEAT_WAIT_MS);
		rep.err = -ETIMEDOUT;
	}
	rep.errors = tinyvm_total_errors(&vm);
	bench_write_all(ctl, &rep, sizeof(rep));
	tinyvm_destroy(&vm);
	return rep.err || rep.errors ? 1 : 0;
}

/* The copy baseline's receiver: a reused 1 MiB buffer, or RAM of the full size, faulted in. */
static char *copy_target(enum copy_kind k, uint64_t size, int32_t *err)
{
	int fd = -1;
	char *p;

	if (k == COPY_SOCKET)
		size = COPY_CHUNK;
	else if ((fd = memfd_create("bench-copy", MFD_CLOEXEC)) < 0 ||
		 ftruncate(fd, (off_t)size) < 0)
		*err = -errno;
	if (*err)
		return NULL;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_POPULATE | (fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS : MAP_SHARED), fd, 0);
	if (p == MAP_FAILED)
		*err = -errno;
	if (fd >= 0)
		close(fd);	/* the mapping keeps the memory */
	return p == MAP_FAILED ? NULL : p;
}

static int copy_receiver(enum copy_kind k, int sock, int ctl, uint64_t size)
{
	struct { int32_t err; uint32_t pad; uint64_t end_ns; } rep = { 0 };
	char *dst = copy_target(k, size, &rep.err);
	uint64_t got = 0;

	bench_write_all(ctl, &rep.err, sizeof(rep.err));		/* READY, or why not */
	while (!rep.err && got < size) {
		size_t want = size - got < COPY_CHUNK ? size - got : COPY_CHUNK;
		ssize_t n = read(sock, k == COPY_RAM ? dst + got : dst, want);

		if (n <= 0)
			rep.err = n ? -errno : -ECONNRESET;
		else
			got += (uint64_t)n;
	}
	rep.end_ns = now_ns();
	bench_write_all(ctl, &rep, sizeof(rep));
	return rep.err ? 1 : 0;
}

/* ---- Spawning a child ---------------------------------------------------- */

struct child {
	pid_t pid;
	int sock;	/* the handoff (or copy) channel */
	int ctl;	/* the child's report */
};

static int socketpairs(int sv[2], int cv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cv) == 0)
		return 0;
	close(sv[0]);
	close(sv[1]);
	return -errno;
}

/* This binary again, as the new VMM (role "new") or the copy receiver (role "copy"). */
static int spawn(const char *role, const char *mode, uint64_t size, struct child *ch)
{
	int sv[2], cv[2], err = socketpairs(sv, cv);

	if (err)
		return err;
	ch->pid = fork();
	if (ch->pid == 0) {
		char sock[16], ctl[16], sz[24];

		/* dup drops CLOEXEC: only these two cross the exec. */
		snprintf(sock, sizeof(sock), "%d", dup(sv[1]));
		snprintf(ctl, sizeof(ctl), "%d", dup(cv[1]));
		snprintf(sz, sizeof(sz), "%" PRIu64, size);
		execl("/proc/self/exe", argv0, "--role", role, "--mode", mode, "--sock", sock,
		      "--ctl", ctl, "--size", sz, (char *)NULL);
		perror("bench-handoff: exec");
		_exit(127);
	}
	err = ch->pid < 0 ? -errno : 0;
	close(sv[1]);
	close(cv[1]);
	ch->sock = sv[0];
	ch->ctl = cv[0];
	if (err) {
		close(ch->sock);
		close(ch->ctl);
	}
	return err;
}

/* Closing our ends ends a child that still waits for us; then collect it. */
static int reap(struct child *ch)
{
	int status = 0;

	if (ch->sock >= 0)
		close(ch->sock);
	close(ch->ctl);
	while (waitpid(ch->pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -ECHILD;
}

/* ---- The old VMM: one handoff -------------------------------------------- */

/*
 * One byte per page through tinyvm's mapping, so that every page of the
 * memfd exists.  Faulting 4 GiB in page by page costs 2 s per GiB here;
 * MADV_POPULATE_WRITE (5.14) makes the same write faults in one call, five
 * times faster, and the bytes are then written without a fault.
 */
static double touch_ram(const struct tinyvm *vm)
{
	volatile uint8_t *p = vm->mem;
	uint64_t t0 = now_ns();

	madvise(vm->mem, vm->mem_size, MADV_POPULATE_WRITE);	/* older kernel: the loop faults */
	for (uint64_t off = 0; off < vm->mem_size; off += PAGE)
		p[off] = (uint8_t)((off / PAGE) | 1);
	return ms_between(t0, now_ns()) / 1e3;
}

/* The guest, on the cell's memory: loaded, and for the raw floor its MSRs learned. */
static int boot_old(struct tinyvm *vm, struct cell *c, int mem_fd, bool touch,
		    struct raw_floor_old *raw, int sock)
{
	int err = tinyvm_create_shell(vm, c->vcpus, mem_fd, c->mem_size, TINYVM_F_PIT);

	if (err)
		return err;
	if (touch)
		c->touch_s = touch_ram(vm);
	err = tinyvm_load_guest(vm, PERIOD);
	if (!err && raw)
		err = raw_floor_old_init(raw, vm, sock);
	if (!err)
		err = tinyvm_start(vm);
	if (!err && raw)
		err = raw_floor_offer(raw);
	/* A guest that ran: every vCPU has a heartbeat the new VMM must continue from. */
	if (!err && !beats_advance(vm, 1))
		err = -ETIMEDOUT;
	return err;
}

static int send_lib(struct tinyvm *vm, struct child *ch, struct tinyvm_handoff_times *t)
{
	struct sevm_handoff *h;
	int err = sevm_handoff_from_fd(ch->sock, true, NULL, &h);

	if (err)
		return err;
	ch->sock = -1;		/* the handle has it now */
	t->verify_ram = false;	/* checksums are no part of a blackout */
	err = tinyvm_handoff_send(vm, h, t);
	if (err)
		fprintf(stderr, "bench-handoff: library handoff: %s\n", sevm_last_error());
	sevm_handoff_free(h);
	return err;
}

static void fill_sample(enum mode m, const struct report *rep, uint64_t paused_ns,
			uint64_t captured_ns, struct sample *s)
{
	s->blackout = ms_between(rep->pause_ns, rep->resumed_ns);
	s->phase[0] = ms_between(rep->pause_ns, paused_ns);
	if (m == MODE_LIB) {
		s->phase[1] = ms_between(paused_ns, rep->mid_ns);
		s->phase[2] = ms_between(rep->mid_ns, rep->resumed_ns);
		s->phase[3] = NAN;
	} else {
		s->phase[1] = ms_between(paused_ns, captured_ns);
		s->phase[2] = ms_between(captured_ns, rep->mid_ns);
		s->phase[3] = ms_between(rep->mid_ns, rep->resumed_ns);
	}
}

/* Hand over, then hear from the new VMM how the guest fared there. */
static int hand_over(enum mode m, struct tinyvm *vm, struct child *ch,
		     struct raw_floor_old *raw, struct sample *s)
{
	struct tinyvm_handoff_times lt = { 0 };
	struct raw_floor_times rt = { 0 };
	struct report rep;
	int err = m == MODE_LIB ? send_lib(vm, ch, &lt) : raw_floor_send(raw, &rt);

	if (!err)
		err = read_all(ch->ctl, &rep, sizeof(rep), REPORT_WAIT_MS);
	if (err)
		return err;
	if (rep.err || rep.errors) {
		fprintf(stderr, "bench-handoff: %s: the new VMM %s (%" PRIu64 " heartbeat errors)\n",
			mode_name[m], rep.err ? sevm_strerror(rep.err) : "saw the guest go wrong",
			rep.errors);
		return rep.err ? rep.err : -EIO;
	}
	if (m == MODE_LIB && rep.pause_ns != lt.pause_ns)
		return -EPROTO;
	fill_sample(m, &rep, m == MODE_LIB ? lt.paused_ns : rt.paused_ns, rt.captured_ns, s);
	return 0;
}

static int handoff_once(enum mode m, struct cell *c, int mem_fd, bool touch, struct sample *s)
{
	struct raw_floor_old raw = { 0 };
	struct tinyvm vm = { 0 };
	struct child ch;
	int err = spawn("new", mode_arg[m], 0, &ch), reaped;

	if (err)
		return err;
	err = boot_old(&vm, c, mem_fd, touch, m == MODE_RAW ? &raw : NULL, ch.sock);
	if (!err)
		err = hand_over(m, &vm, &ch, &raw, s);
	/* The new VMM owns the guest now (or never got it): this VM only goes away. */
	tinyvm_destroy(&vm);
	raw_floor_old_free(&raw);
	reaped = reap(&ch);
	return err ? err : reaped;
}

/* ---- The copy baseline ----------------------------------------------------- */

static int copy_send(int sock, const char *src, uint64_t size)
{
	for (uint64_t off = 0; off < size; off += COPY_CHUNK) {
		size_t len = size - off < COPY_CHUNK ? size - off : COPY_CHUNK;
		int err = bench_write_all(sock, src + off, len);

		if (err)
			return err;
	}
	return 0;
}

/* A copy receiver and what it said about its memory: 1 in place, 0 not yet heard, < 0 failed. */
struct copy_peer {
	struct child ch;
	int ready;
};

static int copy_spawn(enum copy_kind k, uint64_t size, struct copy_peer *p)
{
	p->ready = 0;
	return spawn("copy", copy_arg[k], size, &p->ch);
}

static int copy_wait_ready(struct copy_peer *p)
{
	int32_t status;
	int err;

	if (p->ready)
		return p->ready < 0 ? p->ready : 0;
	err = read_all(p->ch.ctl, &status, sizeof(status), REPORT_WAIT_MS);
	if (!err)
		err = status;
	p->ready = err ? err : 1;
	return err;
}

/* Guest RAM through a UNIX socket in 1 MiB writes, timed until the receiver has it all. */
static int copy_run(struct copy_peer *p, int mem_fd, uint64_t size, double *ms)
{
	struct { int32_t err; uint32_t pad; uint64_t end_ns; } rep;
	char *src = mmap(NULL, size, PROT_READ, MAP_SHARED | MAP_POPULATE, mem_fd, 0);
	int err = src == MAP_FAILED ? -errno : copy_wait_ready(p), reaped;
	uint64_t t0;

	t0 = now_ns();
	if (!err)
		err = copy_send(p->ch.sock, src, size);
	if (!err)
		err = read_all(p->ch.ctl, &rep, sizeof(rep), REPORT_WAIT_MS);
	if (!err && rep.err)
		err = rep.err;
	if (!err)
		*ms = ms_between(t0, rep.end_ns);
	if (src != MAP_FAILED)
		munmap(src, size);
	reaped = reap(&p->ch);
	return err ? err : reaped;
}

/* 4 GiB takes seconds: fewer runs there. */
static unsigned int copy_runs(const struct config *cfg, enum copy_kind k, uint64_t size)
{
	if (size < (1ull << 30))
		return cfg->runs < 5 ? cfg->runs : 5;
	return cfg->quick || k == COPY_RAM ? 1 : 3;
}

/*
 * Faulting in a fresh 4 GiB costs this host about 12 s (its memory comes
 * back from the hypervisor page by page), two at once hardly more.  So the
 * RAM receiver of a big copy is started before its cell and faults its
 * memory in while the cell touches the guest's; it then waits idle, and is
 * ready before the first measured handoff.
 */
static bool early_receiver(const struct config *cfg, uint64_t size)
{
	return size >= (1ull << 30) && copy_runs(cfg, COPY_RAM, size);
}

static void run_copies(const struct config *cfg, struct copy_result *cr, int mem_fd,
		       uint64_t size, struct copy_peer *early)
{
	cr->mem_size = size;
	for (int k = 0; k < NR_COPY_KINDS; k++) {
		unsigned int runs = copy_runs(cfg, k, size);

		for (unsigned int i = 0; i < runs; i++) {
			struct copy_peer peer;
			bool reuse = k == COPY_RAM && !i && early;
			int err = reuse ? 0 : copy_spawn(k, size, &peer);

			if (!err)
				err = copy_run(reuse ? early : &peer, mem_fd, size, &cr->ms[k][cr->n[k]]);
			if (err)
				fprintf(stderr, "bench-handoff: copy of %" PRIu64 " MiB (%s) "
					"failed: %s\n", size >> 20, copy_arg[k], strerror(-err));
			else
				cr->n[k]++;
		}
	}
}

/* ---- Cells --------------------------------------------------------------- */

static int new_memfd(uint64_t size)
{
	int fd = memfd_create("bench-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING), err;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) == 0)
		return fd;
	err = -errno;
	close(fd);
	return err;
}

static void run_one(enum mode m, struct cell *c, int mem_fd, bool touch, bool keep)
{
	bool quiet = wait_quiet();
	struct sample s;
	int err = handoff_once(m, c, mem_fd, touch, &s);

	if (keep && !quiet)
		c->busy++;
	if (err) {
		fprintf(stderr, "bench-handoff: %u vCPUs, %" PRIu64 " MiB, %s: failed: %s\n",
			c->vcpus, c->mem_size >> 20, mode_name[m], sevm_strerror(err));
		c->failed[m]++;
		return;
	}
	if (verbose)
		fprintf(stderr, "%u vCPUs %" PRIu64 " MiB %-9s%s%s blackout %8.3f ms: %.3f %.3f "
			"%.3f %.3f\n", c->vcpus, c->mem_size >> 20, mode_name[m],
			keep ? "" : " (warm-up)", quiet ? "" : " (busy)", s.blackout, s.phase[0],
			s.phase[1], s.phase[2], s.phase[3]);
	if (keep)
		c->s[m][c->n[m]++] = s;
}

/*
 * A warm-up pair that does not count, then runs pairs with the order
 * alternating, so that drift hits both alike.  The raw warm-up touches the
 * RAM: its new VMM waits for the hello without a deadline, the library's
 * gives up after 10 s, which 4 GiB of page faults may approach.
 */
static void run_cell(struct cell *c, int mem_fd, unsigned int runs, struct copy_peer *early)
{
	run_one(MODE_RAW, c, mem_fd, true, false);
	run_one(MODE_LIB, c, mem_fd, false, false);
	if (early)
		copy_wait_ready(early);	/* a failure shows when its copy runs */
	for (unsigned int i = 0; i < runs; i++) {
		enum mode first = i % 2 ? MODE_RAW : MODE_LIB;

		run_one(first, c, mem_fd, false, true);
		run_one(!first, c, mem_fd, false, true);
	}
}

/* ---- Output -------------------------------------------------------------- */

static void print_header(const struct config *cfg)
{
	struct utsname u;

	uname(&u);
	printf("bench-handoff: blackout = the old VMM starts to pause -> the new VMM releases "
	       "its vCPUs\n");
	printf("host: %ld CPUs, kernel %s; %u runs per cell (+1 warm-up), library and raw "
	       "alternating, each started when the CPUs were >= %.0f %% idle (or its wait ran "
	       "out); tinyvm guest, heartbeat period %u, PIT, verify_ram off; the new VMM's "
	       "control thread runs %s\n\n",
	       sysconf(_SC_NPROCESSORS_ONLN), u.release, cfg->runs, QUIET_IDLE * 100, PERIOD,
	       cfg->scheduling);
	printf("                           |   library blackout ms    | raw floor ms   |"
	       " lib/ |  library phases ms     |  raw floor phases ms\n");
	printf("vCPUs     RAM    touch s   |  median     min     max  | median     max |"
	       "  raw |  pause  switch resume  |  pause capture   send restore\n");
	fflush(stdout);
}

static double phase_median(const struct cell *c, enum mode m, int phase)
{
	double v[MAX_RUNS];

	for (unsigned int i = 0; i < c->n[m]; i++)
		v[i] = c->s[m][i].phase[phase];
	return median(v, c->n[m]);
}

static double blackout_stats(const struct cell *c, enum mode m, double *min, double *max)
{
	double v[MAX_RUNS], med;

	for (unsigned int i = 0; i < c->n[m]; i++)
		v[i] = c->s[m][i].blackout;
	stats(v, c->n[m], &med, min, max);
	return med;
}

static void print_row(const struct cell *c)
{
	double lmin, lmax, rmin, rmax;
	double lib = blackout_stats(c, MODE_LIB, &lmin, &lmax);
	double raw = blackout_stats(c, MODE_RAW, &rmin, &rmax);
	char ram[24];

	printf("%5u  %7s  %7.2f    | %7.3f %7.3f %7.3f  | %6.3f %7.3f | %5.2f |"
	       " %6.3f %6.3f %6.3f  | %6.3f %6.3f %6.3f %6.3f",
	       c->vcpus, size_str(c->mem_size, ram, sizeof(ram)), c->touch_s, lib, lmin, lmax,
	       raw, rmax, lib / raw, phase_median(c, MODE_LIB, 0), phase_median(c, MODE_LIB, 1),
	       phase_median(c, MODE_LIB, 2), phase_median(c, MODE_RAW, 0),
	       phase_median(c, MODE_RAW, 1), phase_median(c, MODE_RAW, 2),
	       phase_median(c, MODE_RAW, 3));
	if (c->busy)
		printf("  (%u of %u runs started on a busy machine)", c->busy,
		       c->n[MODE_LIB] + c->n[MODE_RAW]);
	if (c->failed[MODE_LIB] || c->failed[MODE_RAW])
		printf("  (failed: %u library, %u raw)", c->failed[MODE_LIB], c->failed[MODE_RAW]);
	printf("\n");
	fflush(stdout);
}

static const struct cell *find_cell(const struct cell *cells, unsigned int n,
				    unsigned int vcpus, uint64_t mem)
{
	for (unsigned int i = 0; i < n; i++)
		if (cells[i].vcpus == vcpus && cells[i].mem_size == mem)
			return &cells[i];
	return NULL;
}

static double lib_median(const struct cell *c)
{
	double min, max;

	return c ? blackout_stats(c, MODE_LIB, &min, &max) : NAN;
}

/* Largest / smallest library median across the RAM sizes, for one vCPU count. */
static double flatness(const struct cell *cells, unsigned int n, unsigned int vcpus)
{
	double lo = INFINITY, hi = -INFINITY;

	for (unsigned int i = 0; i < n; i++) {
		double m = cells[i].vcpus == vcpus ? lib_median(&cells[i]) : NAN;

		if (isnan(m))
			continue;
		lo = m < lo ? m : lo;
		hi = m > hi ? m : hi;
	}
	return hi >= lo ? hi / lo : NAN;
}

static void print_flatness(const struct config *cfg, const struct cell *cells, unsigned int n)
{
	printf("\nRAM flatness (largest / smallest library median over the RAM sizes):");
	for (unsigned int v = 0; v < cfg->nr_vcpus; v++)
		printf("  %u vCPUs %.3f", cfg->vcpus[v], flatness(cells, n, cfg->vcpus[v]));
	printf("\n");
}

static void print_copies(const struct config *cfg, const struct cell *cells, unsigned int n,
			 const struct copy_result *cr, unsigned int nr_copies)
{
	static const char *const what[NR_COPY_KINDS] = {
		"through the socket (1 MiB buffer reused)", "into the receiver's RAM (faulted in)",
	};

	printf("\ncopy baseline: the RAM written through a UNIX socket in 1 MiB send()s\n");
	for (unsigned int i = 0; i < nr_copies; i++) {
		double lib = lib_median(find_cell(cells, n, cfg->key_vcpus, cr[i].mem_size));
		char ram[24];

		for (int k = 0; k < NR_COPY_KINDS; k++) {
			double med, min, max;

			if (!cr[i].n[k])
				continue;
			stats(cr[i].ms[k], cr[i].n[k], &med, &min, &max);
			printf("  %7s %-41s %9.1f ms (median of %u, min %.1f, max %.1f) = %.0fx "
			       "the library blackout at %u vCPUs (%.3f ms)\n",
			       size_str(cr[i].mem_size, ram, sizeof(ram)), what[k], med, cr[i].n[k],
			       min, max, med / lib, cfg->key_vcpus, lib);
		}
	}
}

static void print_results(const struct config *cfg, const struct cell *cells, unsigned int n,
			  const struct copy_result *cr, unsigned int nr_copies)
{
	const struct cell *small = find_cell(cells, n, cfg->key_vcpus, 64 * MIB);
	double copy4g = NAN, lib4g = lib_median(find_cell(cells, n, cfg->key_vcpus, 4ull << 30));
	double min, max;

	for (unsigned int i = 0; i < nr_copies; i++)
		if (cr[i].mem_size == 4ull << 30)
			stats(cr[i].ms[COPY_RAM], cr[i].n[COPY_RAM], &copy4g, &min, &max);
	printf("\n");
	printf("RESULT ratio_vs_raw=%.3f\n",
	       small ? lib_median(small) / blackout_stats(small, MODE_RAW, &min, &max) : NAN);
	printf("RESULT speedup_vs_copy_4g=%.0f\n", copy4g / lib4g);
	printf("RESULT ram_flatness=%.3f\n", flatness(cells, n, cfg->key_vcpus));
}

/* ---- Driver -------------------------------------------------------------- */

static bool is_copy_size(uint64_t size)
{
	return size == 64 * MIB || size == (1ull << 30) || size == (4ull << 30);
}

/* Every vCPU count at one RAM size; each cell has its own memfd, released after it. */
static int run_mem_size(const struct config *cfg, uint64_t size, struct cell *cells,
			unsigned int *nr_cells, struct copy_result *cr, unsigned int *nr_copies)
{
	for (unsigned int v = 0; v < cfg->nr_vcpus; v++) {
		struct cell *c = &cells[(*nr_cells)++];
		bool copies = cfg->vcpus[v] == cfg->key_vcpus && is_copy_size(size);
		struct copy_peer early;
		bool has_early = copies && early_receiver(cfg, size) &&
				 !copy_spawn(COPY_RAM, size, &early);
		int fd = new_memfd(size);

		if (fd < 0) {
			if (has_early)
				reap(&early.ch);
			return fd;
		}
		*c = (struct cell){ .vcpus = cfg->vcpus[v], .mem_size = size };
		run_cell(c, fd, cfg->runs, has_early ? &early : NULL);
		print_row(c);
		/* The copy reads the same touched RAM the handoffs moved. */
		if (copies)
			run_copies(cfg, &cr[(*nr_copies)++], fd, size, has_early ? &early : NULL);
		close(fd);
	}
	return 0;
}

static int bench(const struct config *cfg)
{
	static struct cell cells[MAX_CELLS * MAX_CELLS];
	static struct copy_result copies[MAX_CELLS];
	unsigned int nr_cells = 0, nr_copies = 0, failed = 0;

	/* --quick must end within 40 s even when the machine never calms down. */
	gate = cfg->quick ? (struct gate){ .per_run_ms = 300, .budget_ms = 4000 }
			  : (struct gate){ .per_run_ms = 3000, .budget_ms = 240000 };
	print_header(cfg);
	for (unsigned int m = 0; m < cfg->nr_mems; m++) {
		int err = run_mem_size(cfg, cfg->mem_mib[m] * MIB, cells, &nr_cells, copies,
				       &nr_copies);

		if (err) {
			fprintf(stderr, "bench-handoff: guest RAM: %s\n", strerror(-err));
			return 1;
		}
	}
	for (unsigned int i = 0; i < nr_cells; i++)
		failed += cells[i].failed[MODE_LIB] + cells[i].failed[MODE_RAW];
	if (gate.waited_ms)
		printf("\n(waited %.1f s in all for the other sessions' load to pass)\n",
		       (double)gate.waited_ms / 1e3);
	if (!cfg->quick)
		print_flatness(cfg, cells, nr_cells);
	print_copies(cfg, cells, nr_cells, copies, nr_copies);
	print_results(cfg, cells, nr_cells, copies, nr_copies);
	return failed ? 1 : 0;
}

/* ---- Command line -------------------------------------------------------- */

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

	while (*s && n < MAX_CELLS) {
		unsigned long long x = strtoull(s, &end, 0);

		if (end == s || !x)
			return 0;
		if (uv)
			uv[n++] = (unsigned int)x;
		else
			u64v[n++] = x;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return 0;
	}
	return n;
}

static void defaults(struct config *cfg, bool quick)
{
	static const unsigned int vcpus[] = { 1, 4, 16, 64 };
	static const uint64_t mems[] = { 64, 1024, 4096 };

	*cfg = (struct config){ .quick = quick, .runs = 11, .key_vcpus = 4 };
	if (quick) {
		cfg->vcpus[cfg->nr_vcpus++] = 4;
		cfg->mem_mib[cfg->nr_mems++] = 64;
		cfg->mem_mib[cfg->nr_mems++] = 4096;
		return;
	}
	for (size_t i = 0; i < sizeof(vcpus) / sizeof(vcpus[0]); i++)
		cfg->vcpus[cfg->nr_vcpus++] = vcpus[i];
	for (size_t i = 0; i < sizeof(mems) / sizeof(mems[0]); i++)
		cfg->mem_mib[cfg->nr_mems++] = mems[i];
}

static void usage(void)
{
	fprintf(stderr, "usage: %s [--quick] [--verbose] [--runs N] [--vcpus 1,4,16,64] "
		"[--mem-mib 64,1024,4096]\n", argv0);
}

/* The RESULT lines speak of 4 vCPUs, or of the first count when 4 is not measured. */
static void pick_key_vcpus(struct config *cfg)
{
	for (unsigned int i = 0; i < cfg->nr_vcpus; i++)
		if (cfg->vcpus[i] == 4)
			return;
	cfg->key_vcpus = cfg->vcpus[0];
}

static bool valid(const struct config *cfg)
{
	if (!cfg->runs || cfg->runs > MAX_RUNS || !cfg->nr_vcpus || !cfg->nr_mems)
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
		{ "runs", required_argument, NULL, 'n' },
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
	long runs = -1;
	int o;

	*role = (struct role){ .sock = -1, .ctl = -1 };
	defaults(cfg, false);
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'q': cfg->quick = true; break;
		case 'V': verbose = true; break;
		case 'n': runs = strtol(optarg, NULL, 0); break;
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
	defaults(cfg, cfg->quick);
	if (runs >= 0)
		cfg->runs = (unsigned int)runs;
	if (vcpus && !(cfg->nr_vcpus = parse_list(vcpus, cfg->vcpus, NULL)))
		return -EINVAL;
	if (mems && !(cfg->nr_mems = parse_list(mems, NULL, cfg->mem_mib)))
		return -EINVAL;
	pick_key_vcpus(cfg);
	return valid(cfg) ? 0 : -EINVAL;
}

static int child_main(const struct role *role)
{
	const char *mode = role->mode ? role->mode : "";

	if (!strcmp(role->name, "copy"))
		return copy_receiver(strcmp(mode, "ram") ? COPY_SOCKET : COPY_RAM, role->sock,
				     role->ctl, role->size);
	if (!strcmp(role->name, "new") && (!strcmp(mode, "lib") || !strcmp(mode, "raw"))) {
		new_vmm_scheduling();
		return new_vmm(strcmp(mode, "lib") ? MODE_RAW : MODE_LIB, role->sock, role->ctl);
	}
	fprintf(stderr, "bench-handoff: unknown role %s %s\n", role->name, mode);
	return 2;
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct role role;

	argv0 = argv[0];
	/* A child that dies must show up as an error, not kill the benchmark. */
	signal(SIGPIPE, SIG_IGN);
	if (parse(argc, argv, &cfg, &role)) {
		usage();
		return 2;
	}
	if (role.name)
		return child_main(&role);
	/* What a child will get: asked here, where the header is printed, then undone. */
	cfg.scheduling = new_vmm_scheduling();
	sched_setscheduler(0, SCHED_OTHER, &(struct sched_param){ 0 });
	return bench(&cfg);
}
