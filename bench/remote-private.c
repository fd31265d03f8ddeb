/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Part 1: private pages of an SEV guest, on the SEV model (sevsim): there is
 * no SEV hardware here, so the firmware's work is the model's software
 * crypto (decrypt with the guest's key, encrypt and MAC with the transport
 * keys), not the PSP's.
 *
 * library: sevm_send_new() (SEND_START, untimed), then sevm_send_pages() of
 *   every page with a private map that marks them all private (timed), then
 *   sevm_send_cancel() (RUNNING again, untimed).
 * raw loop: sevm_sev_send_start(), then per page one
 *   sevm_sev_send_update_data() into a buffer laid out as a PRIVATE record's
 *   payload, the buffer written every 256 pages (timed), then
 *   sevm_sev_send_cancel().  The same calls with no framing, no CRC, no
 *   buffer management: what the library adds is the difference.
 * Both write into one TCP loopback connection that a thread drains, on the
 * same guest, alternating which goes first.  The ratio is about the sending
 * side, where the library's per-page work is.  End to end (library on both
 * sides, a full sevm_recv_run() with RECEIVE_UPDATE_DATA into a new VM on
 * the same modelled host) is measured as well and checked page by page.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "remote.h"
#include "sevguest.h"

#define HDR		SEVM_SEV_PACKET_HDR_LEN
#define BATCH		256u				/* pages per record and per raw write */
#define BATCH_BYTES	(BATCH * (HDR + PAGE))

struct model {
	struct sevsim *sim;
	struct sevguest g;
	struct sevm_region region;
	struct sevguest_certs certs;		/* the destination's: this modelled host's */
	struct sevm_bitmap *private_pages;
	uint8_t *batch;
	int tx, rx;
	struct drain drain;
	uint64_t pages;
};

static __attribute__((noreturn)) void sev_die(const char *what, int err, uint32_t fw)
{
	fprintf(stderr, "bench-remote: %s: %s: %s (firmware: %s)\n", what, sevm_strerror(err),
		sevm_last_error(), fw ? sevm_fw_status_name(fw) : "not reached");
	exit(1);
}

static void region_of(const struct sevguest *g, struct sevm_region *r)
{
	*r = (struct sevm_region){ .sz = sizeof(*r), .slot = 0, .flags = SEVM_REGION_ENCRYPTED,
				   .size = g->ram_size, .fd = g->ram_fd, .host_addr = g->ram };
}

static void opts_of(struct model *m, const struct sevguest *g, const struct sevm_region *r,
		    int fd, struct sevm_migrate_opts *o)
{
	*o = (struct sevm_migrate_opts){
		.sz = sizeof(*o), .fd = fd, .vm_fd = g->vm, .vcpu_fds = g->vcpus,
		.nr_vcpus = g->nr_vcpus, .regions = r, .nr_regions = 1, .sev_type = SEVM_SEV,
		.sev_fd = g->sev_fd,
		.pdh = m->certs.pdh, .pdh_len = sizeof(m->certs.pdh),
		.plat_certs = m->certs.chain, .plat_certs_len = sizeof(m->certs.chain),
		.amd_certs = m->certs.amd, .amd_certs_len = m->certs.amd_len,
		.private_pages = m->private_pages,
	};
}

static void model_up(struct model *m, uint64_t pages)
{
	struct sevsim_host_opts ho = { .sz = sizeof(ho) };
	struct sevm_gfn_range map = { .gfn = 0, .npages = pages };
	uint32_t pdh_len = sizeof(m->certs.pdh), chain_len = sizeof(m->certs.chain), fw = 0;
	int err;

	memset(m, 0, sizeof(*m));
	m->pages = pages;
	err = sevsim_host_create(&ho, &m->sim);
	if (!err)
		err = sevsim_install(m->sim);
	if (err)
		die("the SEV model", err);
	err = sevguest_create(&m->g, SEVM_SEV, 1, pages * PAGE);
	/* Every page private: LAUNCH_UPDATE_DATA encrypts all of RAM in place. */
	if (!err)
		err = sevguest_launch(&m->g, 0, pages * PAGE);
	if (err)
		sev_die("launching the SEV guest on the model", err, 0);
	region_of(&m->g, &m->region);
	m->certs.amd_len = sizeof(m->certs.amd);
	err = sevm_sev_pdh_export(m->g.sev_fd, m->certs.pdh, &pdh_len, m->certs.chain,
				  &chain_len, &fw);
	if (!err)
		err = sevsim_amd_certs(m->sim, m->certs.amd, &m->certs.amd_len);
	if (err)
		sev_die("the platform's certificates", err, fw);
	err = sevm_bitmap_new(&map, 1, &m->private_pages);
	if (!err)
		err = sevm_bitmap_set(m->private_pages, 0, pages);
	if (err)
		die("the private-page map", err);
	m->batch = malloc(BATCH_BYTES);
	if (!m->batch)
		die("buffer", -ENOMEM);
	memset(m->batch, 0, BATCH_BYTES);
	err = tcp_pair(&m->tx, &m->rx);
	if (!err)
		err = drain_start(&m->drain, m->rx);
	if (err)
		die("TCP loopback connection", err);
}

static void model_down(struct model *m)
{
	shutdown(m->tx, SHUT_WR);
	drain_join(&m->drain);
	close(m->tx);
	close(m->rx);
	free(m->batch);
	sevm_bitmap_free(m->private_pages);
	sevguest_destroy(&m->g);
	sevsim_free(m->sim);
}

/* The library's sending side: ns for the pages. */
static double run_library(struct model *m)
{
	struct sevm_migrate_opts o;
	struct sevm_send *s;
	uint32_t fw = 0;
	uint64_t t0, t1;
	int err;

	opts_of(m, &m->g, &m->region, m->tx, &o);
	err = sevm_send_new(&o, &s, &fw);
	if (err)
		sev_die("sevm_send_new", err, fw);
	t0 = now_ns();
	err = sevm_send_pages(s, NULL, &fw);
	t1 = now_ns();
	if (err)
		sev_die("sevm_send_pages", err, fw);
	err = sevm_send_cancel(s, &fw);
	if (err)
		sev_die("sevm_send_cancel", err, fw);
	sevm_send_free(s);
	return (double)(t1 - t0);
}

/* The same SEND_UPDATE_DATA calls, bare. */
static double run_raw(struct model *m)
{
	uint8_t session[SEVM_SEV_SESSION_LEN];
	struct sevm_sev_send_start st = {
		.sz = sizeof(st), .pdh = m->certs.pdh, .pdh_len = sizeof(m->certs.pdh),
		.plat_certs = m->certs.chain, .plat_certs_len = sizeof(m->certs.chain),
		.amd_certs = m->certs.amd, .amd_certs_len = m->certs.amd_len,
		.session = session, .session_len = sizeof(session),
	};
	uint8_t *hdrs = m->batch, *trans = m->batch + BATCH * HDR;
	uint32_t fw = 0;
	uint64_t t0, t1;
	int err = sevm_sev_send_start(m->g.vm, &st, &fw);

	if (err)
		sev_die("SEND_START", err, fw);
	t0 = now_ns();
	for (uint64_t p = 0; p < m->pages; p += BATCH) {
		for (uint32_t k = 0; k < BATCH; k++) {
			err = sevm_sev_send_update_data(m->g.vm, m->g.ram + (p + k) * PAGE, PAGE,
							hdrs + k * HDR, HDR, trans + (size_t)k * PAGE,
							PAGE, &fw);
			if (err)
				sev_die("SEND_UPDATE_DATA", err, fw);
		}
		err = write_all(m->tx, m->batch, BATCH_BYTES);
		if (err)
			die("writing the raw loop's packets", err);
	}
	t1 = now_ns();
	err = sevm_sev_send_cancel(m->g.vm, &fw);
	if (err)
		sev_die("SEND_CANCEL", err, fw);
	return (double)(t1 - t0);
}

/* ---- End to end ------------------------------------------------------------------ */

struct receiver {
	struct model *m;
	struct sevguest *g;
	int fd;
	int ready;			/* atomic */
	int err;
	uint32_t fw;
	uint64_t done_ns;
	char msg[512];
};

static void *receive(void *arg)
{
	struct receiver *rx = arg;
	struct sevm_region r;
	struct sevm_migrate_opts o;
	struct sevm_recv *recv = NULL;

	region_of(rx->g, &r);
	opts_of(rx->m, rx->g, &r, rx->fd, &o);
	o.private_pages = NULL;
	rx->err = sevm_recv_new(&o, &recv);
	__atomic_store_n(&rx->ready, 1, __ATOMIC_RELEASE);
	if (!rx->err)
		rx->err = sevm_recv_run(recv, &rx->fw);
	rx->done_ns = now_ns();
	snprintf(rx->msg, sizeof(rx->msg), "%s", sevm_last_error());
	sevm_recv_free(recv);
	return NULL;
}

/*
 * The whole guest, every page through SEND_UPDATE_DATA there and
 * RECEIVE_UPDATE_DATA here: ns from sevm_send_final() to sevm_recv_run()'s
 * return.  The destination becomes the guest the next run sends.
 */
static double run_e2e(struct model *m, bool *ok)
{
	struct receiver rx = { .m = m };
	struct sevm_migrate_opts o;
	struct sevguest *dst = malloc(sizeof(*dst));
	struct sevm_send *s;
	pthread_t t;
	uint32_t fw = 0;
	uint64_t t0;
	int a, b, err;

	if (!dst)
		die("destination", -ENOMEM);
	err = sevguest_create(dst, SEVM_SEV, 1, m->pages * PAGE);
	if (err)
		sev_die("the destination VM on the model", err, 0);
	err = tcp_pair(&a, &b);
	if (err)
		die("TCP loopback connection", err);
	rx.g = dst;
	rx.fd = b;
	if (pthread_create(&t, NULL, receive, &rx))
		die("receiver thread", -EAGAIN);
	while (!__atomic_load_n(&rx.ready, __ATOMIC_ACQUIRE))
		sleep_ns(100000);
	opts_of(m, &m->g, &m->region, a, &o);
	err = sevm_send_new(&o, &s, &fw);
	if (err)
		sev_die("sevm_send_new", err, fw);
	t0 = now_ns();
	err = sevm_send_final(s, NULL, 0, &fw);
	if (err)
		sev_die("sevm_send_final", err, fw);
	pthread_join(t, NULL);
	if (rx.err) {
		fprintf(stderr, "bench-remote: receiving: %s (firmware: %s)\n", rx.msg,
			rx.fw ? sevm_fw_status_name(rx.fw) : "not reached");
		exit(1);
	}
	/* Every byte as launched, read back through the destination's firmware. */
	*ok = sevguest_check(dst, m->pages * PAGE) == 0;
	sevm_send_free(s);
	close(a);
	close(b);
	sevguest_destroy(&m->g);
	m->g = *dst;
	free(dst);
	region_of(&m->g, &m->region);
	return (double)(rx.done_ns - t0);
}

/* ---- The table ------------------------------------------------------------------ */

static void row(const char *name, const double *ns, unsigned int n, uint64_t pages)
{
	double med = median(ns, n) / (double)pages;

	printf("  %-30s %9.0f %9.0f %9.0f %11.0f %9.1f\n", name, med,
	       min_of(ns, n) / (double)pages, max_of(ns, n) / (double)pages, 1e9 / med,
	       mb_per_s(PAGE, med));
}

int bench_private(const struct config *cfg, struct private_result *res)
{
	static double ours[MAX_RUNS], raw[MAX_RUNS], e2e[MAX_RUNS], pair[MAX_RUNS];
	struct model m;
	unsigned int ok = 0;
	uint64_t t0 = now_ns();

	model_up(&m, cfg->private_pages);
	printf("\n1. private pages: SEV guest on the SEV model sevsim (software firmware; no SEV "
	       "hardware here)\n");
	printf("  %llu pages (%llu MiB) per run, sender side, into a TCP loopback connection a "
	       "thread drains;\n  launched in %.1f s; %u runs each + 1 warm-up, alternating\n",
	       (unsigned long long)m.pages, (unsigned long long)(m.pages * PAGE >> 20),
	       (double)(now_ns() - t0) / 1e9, cfg->runs);
	run_library(&m);
	run_raw(&m);
	for (unsigned int i = 0; i < cfg->runs; i++) {
		wait_quiet();
		if (i % 2) {
			ours[i] = run_library(&m);
			raw[i] = run_raw(&m);
		} else {
			raw[i] = run_raw(&m);
			ours[i] = run_library(&m);
		}
		if (cfg->verbose)
			fprintf(stderr, "private run %u: library %.0f raw %.0f ns/page\n", i,
				ours[i] / (double)m.pages, raw[i] / (double)m.pages);
	}
	for (unsigned int i = 0; i < cfg->e2e_runs; i++) {
		bool good = false;

		wait_quiet();
		e2e[i] = run_e2e(&m, &good);
		ok += good;
	}
	printf("  %-30s %9s %9s %9s %11s %9s\n", "", "ns/page", "min", "max", "pages/s", "MB/s");
	row("library (sevm_send_pages)", ours, cfg->runs, m.pages);
	row("raw loop (SEND_UPDATE_DATA)", raw, cfg->runs, m.pages);
	row("end to end (send + recv_run)", e2e, cfg->e2e_runs, m.pages);
	res->ran = true;
	res->ours_ns_page = median(ours, cfg->runs) / (double)m.pages;
	res->raw_ns_page = median(raw, cfg->runs) / (double)m.pages;
	res->e2e_ns_page = median(e2e, cfg->e2e_runs) / (double)m.pages;
	res->e2e_ok = ok;
	for (unsigned int i = 0; i < cfg->runs; i++)
		pair[i] = ours[i] / raw[i];
	printf("  library / raw loop, sender side: %.3f (%+.0f ns/page: framing, CRC32C, buffer);"
	       "\n  pair by pair: median %.3f, %.3f-%.3f\n",
	       res->ours_ns_page / res->raw_ns_page, res->ours_ns_page - res->raw_ns_page,
	       median(pair, cfg->runs), min_of(pair, cfg->runs), max_of(pair, cfg->runs));
	printf("  end to end: %u of %u destinations hold every page as launched (DBG_DECRYPT)\n",
	       ok, cfg->e2e_runs);
	model_down(&m);
	return ok == cfg->e2e_runs ? 0 : -EBADMSG;
}
