/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Both sides of an SEV-ES migration on the SEV model.  Each process creates
 * a modelled host of its own: two processes, two machines, two firmwares
 * that share nothing but the certificates and the stream.  The guest has 4
 * vCPUs and 4 MiB: 3 MiB private (LAUNCH_UPDATE_DATA), 1 MiB shared.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "remote-peer.h"
#include "sevguest.h"

#define RAM_SIZE	(4u << 20)
#define PRIVATE_SIZE	(3u << 20)
#define NR_PAGES	(RAM_SIZE / 4096)
#define NR_VCPUS	4
#define POLICY_ES	(1u << 2)
#define POLICY_NOSEND	(1u << 3)
#define PREFILL		0xa5	/* the destination's RAM before anything arrives */

struct side {
	struct sevsim *sim;
	struct sevguest g;
	struct sevm_bitmap *private_pages;	/* source only */
	struct sevm_region region;
};

static int fail(const char *what, int err)
{
	fprintf(stderr, "remote-peer %d: %s: %d (%s)\n", (int)getpid(), what, err,
		sevm_last_error());
	return 1;
}

static int host_up(struct side *s)
{
	struct sevsim_host_opts ho = { .sz = sizeof(ho) };
	int err = sevsim_host_create(&ho, &s->sim);

	return err ? err : sevsim_install(s->sim);
}

static int guest_create(struct side *s)
{
	int err = sevguest_create(&s->g, SEVM_SEV_ES, NR_VCPUS, RAM_SIZE);

	s->region = (struct sevm_region){ .sz = sizeof(s->region), .size = RAM_SIZE,
					  .flags = SEVM_REGION_ENCRYPTED, .fd = s->g.ram_fd,
					  .host_addr = s->g.ram };
	return err;
}

static void side_free(struct side *s)
{
	sevm_bitmap_free(s->private_pages);
	sevguest_destroy(&s->g);
	sevsim_free(s->sim);
}

/* FNV-1a over the guest's plaintext, private pages through DBG_DECRYPT. */
static void say_plain_sum(const struct sevguest *g, const char *tag)
{
	static uint8_t page[4096];
	uint64_t h = 0xcbf29ce484222325ull;
	uint32_t fw;

	for (size_t off = 0; off < g->ram_size; off += sizeof(page)) {
		const uint8_t *p = g->ram + off;

		if (off < PRIVATE_SIZE) {
			if (sevm_sev_dbg_decrypt(g->vm, p, page, sizeof(page), &fw)) {
				rp_say("%splain_sum=none", tag);
				return;
			}
			p = page;
		}
		for (size_t i = 0; i < sizeof(page); i++)
			h = (h ^ p[i]) * 0x100000001b3ull;
	}
	rp_say("%splain_sum=%016llx", tag, (unsigned long long)h);
}

/* The firmware's guest state (GUEST_STATUS), or -errno; and, if RUNNING, the memory check. */
static void say_guest(const struct side *s, const char *tag)
{
	struct sevm_sev_status st = { .sz = sizeof(st) };
	uint32_t fw;
	int err = sevm_sev_guest_status(s->g.vm, &st, &fw);

	rp_say("%sstate=%d", tag, err ? err : (int)st.state);
	if (!err && st.state == SEVSIM_GSTATE_RUNNING)
		rp_say("%scheck=%d", tag, sevguest_check(&s->g, PRIVATE_SIZE));
}

/* ---- The source ------------------------------------------------------------------ */

static int source_launch(struct side *s, uint32_t policy)
{
	struct sevm_gfn_range map = { .gfn = 0, .npages = NR_PAGES };
	int err = host_up(s);

	if (!err)
		err = guest_create(s);
	if (!err)
		err = sevguest_launch(&s->g, policy, PRIVATE_SIZE);
	/* What the guest's KVM_HC_MAP_GPA_RANGE would have told the VMM. */
	if (!err)
		err = sevm_bitmap_new(&map, 1, &s->private_pages);
	if (!err)
		err = sevm_bitmap_set(s->private_pages, 0, PRIVATE_SIZE / 4096);
	return err;
}

struct link {
	int sock;
	struct sevguest_certs certs;
	struct sevm_io io;
	struct sevm_migrate_opts o;
};

/* Connect, take the destination's certificates, fill the options (io: the channel, or NULL). */
static int source_connect(struct side *s, const struct rp_args *a, struct link *l,
			  const struct sevm_io *io)
{
	l->sock = rp_connect(a->to, a->port, a->small_buffers);
	if (l->sock < 0)
		return l->sock;
	if (sevguest_certs_recv(l->sock, &l->certs))
		return -EPROTO;
	l->o = (struct sevm_migrate_opts){
		.sz = sizeof(l->o), .fd = io ? -1 : l->sock, .io = io, .vm_fd = s->g.vm,
		.vcpu_fds = s->g.vcpus, .nr_vcpus = s->g.nr_vcpus, .regions = &s->region,
		.nr_regions = 1, .sev_type = SEVM_SEV_ES, .sev_fd = s->g.sev_fd,
		.pdh = l->certs.pdh, .pdh_len = sizeof(l->certs.pdh),
		.plat_certs = l->certs.chain, .plat_certs_len = sizeof(l->certs.chain),
		.amd_certs = l->certs.amd, .amd_certs_len = l->certs.amd_len,
		.private_pages = s->private_pages,
	};
	return 0;
}

/* The pages of every pass of the sender m, or else of the receiver r, by kind. */
static void say_passes(const struct sevm_send *m, const struct sevm_recv *r, const char *tag,
		       const char *verb)
{
	struct sevm_iteration_stats st = { .sz = sizeof(st) };
	uint64_t priv = 0, shared = 0;
	unsigned int i;

	for (i = 0; (m ? sevm_send_stats(m, i, &st) : sevm_recv_stats(r, i, &st)) == 0; i++) {
		priv += st.pages_private;
		shared += st.pages_shared;
	}
	rp_say("%spasses=%u %s%s_private=%llu %s%s_shared=%llu", tag, i, tag, verb,
	       (unsigned long long)priv, tag, verb, (unsigned long long)shared);
}

/* A pass while the guest runs, then the final pass: SEND_FINISH. */
static int migrate(struct side *s, const struct rp_args *a, const char *tag)
{
	struct link l;
	struct sevm_send *m = NULL;
	uint32_t fw = 0;
	int err = source_connect(s, a, &l, NULL);

	if (err)
		return fail("connecting", err);
	err = sevm_send_new(&l.o, &m, &fw);
	rp_say_rc(tag, "new", err, fw);
	if (!err) {
		err = sevm_send_pages(m, NULL, &fw);
		rp_say_rc(tag, "pages", err, fw);
	}
	if (!err) {
		err = sevm_send_final(m, NULL, 0, &fw);
		rp_say_rc(tag, "final", err, fw);
	}
	if (m && err)
		rp_say_rc(tag, "cancel", sevm_send_cancel(m, &fw), fw);
	if (m)
		say_passes(m, NULL, tag, "sent");
	rp_say("%sverdict=%c", tag, rp_verdict_recv(l.sock));
	say_guest(s, tag);
	sevm_send_free(m);
	close(l.sock);
	return 0;
}

/* The source gives up after a pass (cancel), or is told the destination refused it (tamper). */
static int abandon(struct side *s, const struct rp_args *a, bool tamper, const char *tag)
{
	struct rp_tamper t = { .page = (uint32_t)a->arg };
	struct link l;
	struct sevm_send *m = NULL;
	uint32_t fw = 0;
	int err = source_connect(s, a, &l, tamper ? &l.io : NULL);

	if (err)
		return fail("connecting", err);
	t.fd = l.sock;
	rp_tamper_io(&t, &l.io);
	err = sevm_send_new(&l.o, &m, &fw);
	rp_say_rc(tag, "new", err, fw);
	if (err)
		return fail("SEND_START", err);
	rp_say_rc(tag, "pages", sevm_send_pages(m, NULL, &fw), fw);
	/* Tampered: the destination says no before the source gives up. */
	if (tamper)
		rp_say("%sverdict=%c", tag, rp_verdict_recv(l.sock));
	rp_say_rc(tag, "cancel", sevm_send_cancel(m, &fw), fw);
	if (!tamper)
		rp_say("%sverdict=%c", tag, rp_verdict_recv(l.sock));
	if (tamper && t.done)
		rp_say("tampered_gfn=%llu", (unsigned long long)t.gfn);
	else if (tamper)
		rp_say("tampered_gfn=none\nmsg=tamper: %s", t.why ? t.why : "no PRIVATE record");
	say_guest(s, tag);
	sevm_send_free(m);
	close(l.sock);
	return 0;
}

/* The guest's policy forbids sending: SEND_START fails, nothing goes out. */
static int refused(struct side *s, const struct rp_args *a)
{
	struct link l;
	struct sevm_send *m = NULL;
	uint32_t fw = 0;
	int err = source_connect(s, a, &l, NULL);

	if (err)
		return fail("connecting", err);
	err = sevm_send_new(&l.o, &m, &fw);
	rp_say_rc("", "new", err, fw);
	rp_say("handle=%s", m ? "set" : "null");
	sevm_send_free(m);
	shutdown(l.sock, SHUT_WR);
	rp_say("verdict=%c", rp_verdict_recv(l.sock));
	say_guest(s, "");
	close(l.sock);
	return 0;
}

int rp_sev_send(const struct rp_args *a)
{
	struct side s = { 0 };
	bool nosend = !strcmp(a->mode, "nosend");
	int err = source_launch(&s, POLICY_ES | (nosend ? POLICY_NOSEND : 0));

	if (err)
		return fail("launching the guest", err);
	say_plain_sum(&s.g, "");
	if (!strcmp(a->mode, "ok") || !strcmp(a->mode, "drop"))
		err = migrate(&s, a, "");
	else if (!strcmp(a->mode, "tamper"))
		err = abandon(&s, a, true, "");
	else if (!strcmp(a->mode, "cancel-then-ok")) {
		err = abandon(&s, a, false, "1.");
		if (!err)
			err = migrate(&s, a, "2.");
	} else if (nosend)
		err = refused(&s, a);
	else
		err = fail(a->mode, -EINVAL);
	side_free(&s);
	return err;
}

/* ---- The destination ------------------------------------------------------------- */

static int dest_create(struct side *d)
{
	int err = guest_create(d);

	if (!err)
		memset(d->g.ram, PREFILL, RAM_SIZE);
	return err;
}

static bool changed(const struct side *d, uint64_t gfn)
{
	const uint8_t *p = d->g.ram + gfn * 4096;

	for (size_t i = 0; i < 4096; i++)
		if (p[i] != PREFILL)
			return true;
	return false;
}

/* After a refused record: pages before gfn were written, gfn and later ones not. */
static void say_pages(const struct side *d, uint64_t gfn, const char *tag)
{
	unsigned int before = 0, after = 0;

	for (uint64_t i = 0; i < NR_PAGES; i++) {
		if (i < gfn)
			before += changed(d, i);
		else if (i > gfn)
			after += changed(d, i);
	}
	rp_say("%swatch_untouched=%d %sbefore_changed=%u %safter_changed=%u", tag,
	       gfn < NR_PAGES && !changed(d, gfn), tag, before, tag, after);
}

/* What the model knows of the destination VM (hardware would not show it). */
static void say_model(const struct side *d, const char *tag)
{
	struct sevsim_vm_info vi = { .sz = sizeof(vi) };
	int err = sevsim_vm_info(d->sim, d->g.vm, &vi);

	if (err)
		rp_say("%sgstate=%d", tag, err);
	else
		rp_say("%sgstate=%u %snr_vmsas=%u", tag, vi.guest_state, tag, vi.nr_vmsas);
}

static void say_arrived(const struct side *d, struct sevm_recv *r, const char *tag)
{
	struct sevm_bitmap *priv = NULL;

	say_passes(NULL, r, tag, "got");
	if (sevm_recv_private(r, &priv) == 0)
		rp_say("%sprivate_map=%lld", tag, (long long)sevm_bitmap_count(priv, 0, NR_PAGES));
	sevm_bitmap_free(priv);
	say_guest(d, tag);
	say_plain_sum(&d->g, tag);
}

/* One source: certificates out, the stream in, a report and a verdict back. */
static int receive(struct side *d, int listener, const struct rp_args *a, const char *tag)
{
	struct rp_drop drop = { .budget = a->arg };
	struct sevm_io io;
	struct sevm_recv *r;
	bool dropping = !strcmp(a->mode, "drop");
	uint32_t fw = 0;
	int sock = rp_accept(listener, tag), err;

	if (sock < 0)
		return fail("accept", sock);
	if (sevguest_certs_send(sock, d->g.sev_fd, d->sim))
		return fail("sending the certificates", -EPIPE);
	drop.fd = sock;
	rp_drop_io(&drop, &io);
	struct sevm_migrate_opts o = {
		.sz = sizeof(o), .fd = dropping ? -1 : sock, .io = dropping ? &io : NULL,
		.vm_fd = d->g.vm, .vcpu_fds = d->g.vcpus, .nr_vcpus = d->g.nr_vcpus,
		.regions = &d->region, .nr_regions = 1, .sev_type = SEVM_SEV_ES,
		.sev_fd = d->g.sev_fd,
	};
	err = sevm_recv_new(&o, &r);
	if (err)
		return fail("sevm_recv_new", err);
	err = sevm_recv_run(r, &fw);
	rp_say_rc(tag, "recv", err, fw);
	say_model(d, tag);
	if (!err)
		say_arrived(d, r, tag);
	else if (!strcmp(a->mode, "fail"))
		say_pages(d, a->arg, tag);
	sevm_recv_free(r);
	if (dropping) {
		rp_say("%sbytes_read=%llu", tag, (unsigned long long)drop.got);
		if (drop.fd >= 0)
			close(drop.fd);
		return 0;
	}
	rp_verdict_send(sock, !err);
	close(sock);
	return 0;
}

int rp_sev_recv(const struct rp_args *a)
{
	struct side d = { 0 };
	int l, err = host_up(&d);

	if (!err)
		err = dest_create(&d);
	if (err)
		return fail("creating the destination VM", err);
	l = rp_listen(a->small_buffers);
	if (l < 0)
		return fail("listen", l);
	err = receive(&d, l, a, !strcmp(a->mode, "cancel-then-ok") ? "1." : "");
	/* The first VM's firmware context stays RUPDATE: a fresh VM for the retry. */
	if (!err && !strcmp(a->mode, "cancel-then-ok")) {
		sevguest_destroy(&d.g);
		err = dest_create(&d);
		err = err ? fail("creating the second VM", err) : receive(&d, l, a, "2.");
	}
	close(l);
	side_free(&d);
	return err;
}
