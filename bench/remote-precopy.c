/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Part 3: pre-copy while the guest keeps writing (real KVM).  The guest
 * (remote-guest.c) strides over a working set of pages at a rate the VMM
 * sets; slot 0 logs dirty pages.  sevm_send_precopy() runs with the
 * library's defaults (stop at <= 256 dirty pages, or when a pass does not
 * shrink the dirty set, or after 30 passes) into a thread that runs
 * sevm_recv_run() over TCP loopback.  Then the vCPU is paused and
 * sevm_send_final() sends the rest.  Each scenario runs once: a pre-copy is
 * a trajectory, and the table shows it pass by pass.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "remote.h"

#define MAX_PASSES	30
#define STOP_PAGES	256
#define WARM_NS		100000000ull	/* the guest writes this long before pre-copy starts */
#define RESUME_NS	20000000ull	/* and this long on the destination afterwards */

struct scenario {
	const char *name;
	uint64_t ws_mib;		/* working set; 0: all of RAM the guest may use */
	uint64_t rate;			/* pages/s; 0: as fast as the vCPU goes */
};

static const struct scenario quick_set[] = {
	{ "light", 16, 20000 },
	{ "busy", 64, 100000 },
	{ "flat out", 0, 0 },
};

static const struct scenario full_set[] = {
	{ "light", 16, 20000 },
	{ "busy", 64, 100000 },
	{ "busier", 256, 200000 },
	{ "flat out", 0, 0 },
};

struct trace {
	struct guest_run *g;
	unsigned int n;
	struct sevm_iteration_stats st[MAX_PASSES + 1];
	uint64_t written[MAX_PASSES + 1];	/* guest page writes when each pass ended */
	uint64_t written0;
};

static int progress(const struct sevm_iteration_stats *st, void *ctx)
{
	struct trace *t = ctx;

	if (t->n <= MAX_PASSES) {
		t->st[t->n] = *st;
		t->written[t->n++] = guest_pages_written(t->g);
	}
	return 0;
}

struct receiver {
	struct tinyvm *vm;
	int fd;
	int ready;			/* atomic */
	int err;
	uint64_t done_ns;
	char msg[512];
};

static void *receive(void *arg)
{
	struct receiver *rx = arg;
	int vcpu_fd = rx->vm->vcpus[0].fd;
	struct sevm_region r;
	struct sevm_recv *recv = NULL;
	struct sevm_migrate_opts o = { .sz = sizeof(o), .fd = rx->fd, .vm_fd = rx->vm->vm_fd,
				       .vcpu_fds = &vcpu_fd, .nr_vcpus = 1, .regions = &r,
				       .nr_regions = 1, .sev_fd = -1 };

	guest_region(rx->vm, 0, &r);
	rx->err = sevm_recv_new(&o, &recv);
	__atomic_store_n(&rx->ready, 1, __ATOMIC_RELEASE);
	if (!rx->err)
		rx->err = sevm_recv_run(recv, NULL);
	rx->done_ns = now_ns();
	snprintf(rx->msg, sizeof(rx->msg), "%s", sevm_last_error());
	sevm_recv_free(recv);
	return NULL;
}

struct outcome {
	int passes;
	struct sevm_iteration_stats final;
	double precopy_ms, downtime_ms, rate_seen;
	bool equal, resumed;
};

/* The destination guest goes on writing where the source stopped. */
static bool resumes(struct tinyvm *dst)
{
	struct guest_run g;
	uint32_t before = guest_counter(dst);
	int err = guest_start(&g, dst, 0);

	if (err)
		return false;
	sleep_ns(RESUME_NS);
	err = guest_stop(&g);
	return !err && guest_counter(dst) > before;
}

static void migrate(struct tinyvm *src, struct tinyvm *dst, struct guest_run *g,
		    struct trace *tr, struct outcome *out)
{
	struct sevm_precopy_opts po = { .sz = sizeof(po), .max_passes = MAX_PASSES,
					.stop_pages = STOP_PAGES, .progress = progress, .ctx = tr };
	struct receiver rx = { .vm = dst };
	int vcpu_fd = src->vcpus[0].fd, a, b, err = tcp_pair(&a, &b);
	struct sevm_region r;
	struct sevm_migrate_opts o = { .sz = sizeof(o), .fd = a, .vm_fd = src->vm_fd,
				       .vcpu_fds = &vcpu_fd, .nr_vcpus = 1, .regions = &r,
				       .nr_regions = 1, .sev_fd = -1 };
	struct sevm_send *s;
	uint64_t t0, t_pause;
	pthread_t t;

	guest_region(src, SEVM_REGION_LOG_DIRTY, &r);
	if (err)
		die("TCP loopback connection", err);
	rx.fd = b;
	if (pthread_create(&t, NULL, receive, &rx))
		die("receiver thread", -EAGAIN);
	while (!__atomic_load_n(&rx.ready, __ATOMIC_ACQUIRE))
		sleep_ns(100000);
	err = sevm_send_new(&o, &s, NULL);
	if (err)
		die("sevm_send_new", err);
	t0 = now_ns();
	tr->written0 = guest_pages_written(g);
	out->passes = sevm_send_precopy(s, &po, NULL);
	if (out->passes < 0)
		die("sevm_send_precopy", out->passes);
	t_pause = now_ns();
	out->precopy_ms = (double)(t_pause - t0) / 1e6;
	out->rate_seen = (double)(guest_pages_written(g) - tr->written0) / (double)(t_pause - t0) * 1e9;
	err = guest_stop(g);
	if (err)
		die("pausing the guest", err);
	err = sevm_send_final(s, NULL, 0, NULL);
	if (err)
		die("sevm_send_final", err);
	pthread_join(t, NULL);
	if (rx.err) {
		fprintf(stderr, "bench-remote: receiving: %s\n", rx.msg);
		exit(1);
	}
	out->downtime_ms = (double)(rx.done_ns - t_pause) / 1e6;
	out->final = (struct sevm_iteration_stats){ .sz = sizeof(out->final) };
	sevm_send_stats(s, (unsigned int)out->passes, &out->final);
	out->equal = !memcmp(src->mem, dst->mem, src->mem_size);
	out->resumed = out->equal && resumes(dst);
	sevm_send_free(s);
	close(a);
	close(b);
}

/* The library stopped because a pass left few enough dirty pages. */
static bool converged(const struct trace *tr, const struct outcome *o)
{
	return o->passes > 0 && tr->st[o->passes - 1].dirty_pages <= STOP_PAGES;
}

static const char *verdict(const struct trace *tr, const struct outcome *o)
{
	if (!o->passes)
		return "no pass ran";
	if (converged(tr, o))
		return "CONVERGED";
	if (o->passes >= MAX_PASSES)
		return "NOT converged (30 passes)";
	return "NOT converged (the dirty set stopped shrinking)";
}

static void print_passes(const struct trace *tr, const struct outcome *o)
{
	printf("  %6s %9s %9s %9s %9s %12s %14s\n", "pass", "pages", "MiB", "ms", "MB/s",
	       "dirty after", "guest pages/s");
	for (unsigned int i = 0; i < tr->n; i++) {
		const struct sevm_iteration_stats *st = &tr->st[i];
		uint64_t w0 = i ? tr->written[i - 1] : tr->written0;

		printf("  %6u %9llu %9.1f %9.1f %9.0f %12llu %14.0f\n", i,
		       (unsigned long long)st->pages_shared, (double)st->bytes / MIB,
		       (double)st->ns / 1e6, mb_per_s(st->bytes, (double)st->ns),
		       (unsigned long long)st->dirty_pages,
		       (double)(tr->written[i] - w0) / (double)st->ns * 1e9);
	}
	printf("  %6s %9llu %9.2f %9.1f %9.0f %12s %14s\n", "final",
	       (unsigned long long)o->final.pages_shared, (double)o->final.bytes / MIB,
	       (double)o->final.ns / 1e6, mb_per_s(o->final.bytes, (double)o->final.ns), "(paused)",
	       "0");
}

int bench_precopy(const struct config *cfg, struct tinyvm *src, struct tinyvm *dst,
		  struct precopy_result *res)
{
	const struct scenario *set = cfg->quick ? quick_set : full_set;
	unsigned int n = cfg->quick ? sizeof(quick_set) / sizeof(quick_set[0])
				    : sizeof(full_set) / sizeof(full_set[0]);
	uint64_t data_pages = (src->mem_size - GUEST_DATA_GPA) / PAGE;
	int failed = 0;

	printf("\n3. pre-copy under a guest that keeps writing: real KVM, dirty log on slot 0, %llu "
	       "MiB, TCP loopback;\n  the guest writes one dword per page, striding over its working "
	       "set; stop at <= %u dirty pages,\n  or when a pass does not shrink the dirty set, or "
	       "after %u passes; then pause and sevm_send_final().\n  One run per scenario; the "
	       "final pass's ms count from the end of the last pass (the pause is in)\n",
	       (unsigned long long)(src->mem_size >> 20), STOP_PAGES, MAX_PASSES);
	res->ran = true;
	for (unsigned int i = 0; i < n; i++) {
		uint64_t ws = set[i].ws_mib ? set[i].ws_mib * MIB / PAGE : data_pages;
		struct trace tr = { 0 };
		struct outcome o = { 0 };
		struct guest_run g;
		int err;

		ws = ws < data_pages ? ws : data_pages;
		wait_quiet();
		err = guest_load(src, GUEST_DATA_GPA / PAGE, ws);
		if (!err)
			err = guest_start(&g, src, set[i].rate);
		if (err)
			die("starting the guest", err);
		tr.g = &g;
		sleep_ns(WARM_NS);
		migrate(src, dst, &g, &tr, &o);
		printf("\n  \"%s\": working set %llu pages (%llu MiB), rate asked ", set[i].name,
		       (unsigned long long)ws, (unsigned long long)(ws * PAGE >> 20));
		if (set[i].rate)
			printf("%llu pages/s (%.0f MB/s)", (unsigned long long)set[i].rate,
			       (double)set[i].rate * PAGE / 1e6);
		else
			printf("none (flat out)");
		printf(", seen %.0f pages/s\n", o.rate_seen);
		print_passes(&tr, &o);
		printf("  %s after %d passes, %.0f ms of pre-copy\n", verdict(&tr, &o), o.passes,
		       o.precopy_ms);
		printf("  final pass (paused): %llu pages, %.2f MiB with the state; downtime %.1f ms "
		       "(pause ->\n  destination ready); destination RAM equal: %s; the guest runs on "
		       "there: %s\n", (unsigned long long)o.final.pages_shared,
		       (double)o.final.bytes / MIB, o.downtime_ms, o.equal ? "yes" : "NO",
		       o.resumed ? "yes" : "NO");
		res->scenarios++;
		res->converged += converged(&tr, &o);
		failed += !o.equal || !o.resumed;
	}
	return failed ? -EBADMSG : 0;
}
