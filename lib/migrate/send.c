/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sender: guest pages and state into the migration stream.  Records are
 * built in one buffer, private pages written there by the firmware itself,
 * and the buffer goes out whenever it holds a megabyte.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "../core/error.h"
#include "../core/opts.h"
#include "../kvm/guest_state.h"
#include "../sev/cmd.h"
#include "migrate.h"

#define PAGE		4096u
#define HDR		SEVM_STREAM_PKT_HDR_LEN
#define FLUSH_AT	(1u << 20)
#define POLICY_ES	(1u << 2)

int sevm__send_failed(struct sevm_send *s, int err)
{
	if (err < 0 && s->step == SEND_OPEN)
		s->step = SEND_FAILED;
	return err;
}

int sevm__send_flush(struct sevm_send *s)
{
	int err = sevm__mio_write(&s->d.io, s->buf.data, s->buf.len);

	if (err)
		s->io_broken = true;
	sevm__buf_reset(&s->buf);
	sevm__stream_rebind(&s->w, &s->buf);
	return err;
}

static int maybe_flush(struct sevm_send *s)
{
	return s->buf.len >= FLUSH_AT ? sevm__send_flush(s) : 0;
}

/*
 * With the guest paused its pages hold still between the CRC and the write,
 * so they go from guest memory to the channel; while it runs they are
 * copied first, or a page written in between would fail its CRC.
 */
static int put_shared(struct sevm_send *s, const uint8_t *host, uint64_t gfn, uint32_t n)
{
	uint8_t hdr[SEVM_STREAM_REC_HDR_LEN], *p;
	struct iovec v[2] = { { hdr, sizeof(hdr) }, { (void *)host, (size_t)n * PAGE } };
	int err;

	s->passes.cur.pages_shared += n;
	if (s->paused) {
		err = sevm__stream_shared_header(&s->w, gfn, n, host, hdr);
		if (!err)
			err = sevm__send_flush(s);
		if (!err)
			err = sevm__mio_writev(&s->d.io, v, 2);
		if (err)
			s->io_broken = true;
		return err;
	}
	p = sevm__stream_open_shared(&s->w, gfn, n);
	if (!p)
		return -ENOMEM;
	memcpy(p, host, (size_t)n * PAGE);
	sevm__stream_close(&s->w);
	return maybe_flush(s);
}

/* One SEND_UPDATE_DATA per page (KVM's limit), straight into the record. */
static int put_private(struct sevm_send *s, const uint8_t *host, uint64_t gfn, uint32_t n,
		       uint32_t *fw_error)
{
	uint8_t *p = sevm__stream_open_private(&s->w, gfn, n);

	if (!p)
		return -ENOMEM;
	for (uint32_t k = 0; k < n; k++) {
		int err = sevm_sev_send_update_data(s->d.vm_fd, host + (size_t)k * PAGE, PAGE,
						    p + (size_t)k * HDR, HDR,
						    p + (size_t)n * HDR + (size_t)k * PAGE, PAGE,
						    fw_error);

		if (err)
			return sevm__context(err, "private page gfn 0x%llx",
					     (unsigned long long)(gfn + k));
	}
	sevm__stream_close(&s->w);
	s->passes.cur.pages_private += n;
	return maybe_flush(s);
}

/* A run inside range i, at most one record long, cut where pages change kind. */
static int put_run(struct sevm_send *s, unsigned int i, uint64_t gfn, uint32_t n,
		   uint32_t *fw_error)
{
	const uint8_t *host = sevm__memmap_host(&s->d.map, i, gfn, n);
	uint64_t end = gfn + n;

	if (!s->d.sev_type)
		return put_shared(s, host, gfn, n);
	if (!s->private_pages)
		return put_private(s, host, gfn, n, fw_error);
	while (gfn < end) {
		struct sevm_gfn_range priv;
		uint64_t upto;
		int err, r = sevm_bitmap_next_run(s->private_pages, gfn, true, &priv);

		if (r < 0)
			return sevm__context(r, "private-page map at gfn 0x%llx",
					     (unsigned long long)gfn);
		if (!r || priv.gfn >= end)
			priv.gfn = end;
		if (priv.gfn > gfn) {
			upto = priv.gfn;
			err = put_shared(s, sevm__memmap_host(&s->d.map, i, gfn, upto - gfn), gfn,
					 (uint32_t)(upto - gfn));
		} else {
			upto = priv.gfn + priv.npages < end ? priv.gfn + priv.npages : end;
			err = put_private(s, sevm__memmap_host(&s->d.map, i, gfn, upto - gfn), gfn,
					  (uint32_t)(upto - gfn), fw_error);
		}
		if (err)
			return err;
		gfn = upto;
	}
	return 0;
}

/* [gfn, gfn + n) of range i, cut into records. */
static int put_span(struct sevm_send *s, unsigned int i, uint64_t gfn, uint64_t n,
		    uint32_t *fw_error)
{
	while (n) {
		uint32_t k = n > SEVM_STREAM_MAX_PAGES ? SEVM_STREAM_MAX_PAGES : (uint32_t)n;
		int err = put_run(s, i, gfn, k, fw_error);

		if (err)
			return err;
		gfn += k;
		n -= k;
	}
	return 0;
}

int sevm__send_set(struct sevm_send *s, const struct sevm_bitmap *pages, uint32_t *fw_error)
{
	for (unsigned int i = 0; i < s->d.map.nr; i++) {
		const struct sevm_gfn_range *r = &s->d.map.ranges[i];
		struct sevm_gfn_range run;
		uint64_t gfn = r->gfn;
		int err = 0, k = 1;

		if (!pages) {
			err = put_span(s, i, r->gfn, r->npages, fw_error);
			if (err)
				return err;
			continue;
		}
		while (gfn < r->gfn + r->npages &&
		       (k = sevm_bitmap_next_run(pages, gfn, true, &run)) > 0 &&
		       run.gfn < r->gfn + r->npages) {
			/* A bitmap over another map may hold runs this region does not. */
			if (run.npages > r->gfn + r->npages - run.gfn)
				run.npages = r->gfn + r->npages - run.gfn;
			err = put_span(s, i, run.gfn, run.npages, fw_error);
			if (err)
				return err;
			gfn = run.gfn + run.npages;
		}
		if (k < 0)
			return sevm__context(k, "page bitmap at gfn 0x%llx", (unsigned long long)gfn);
	}
	return 0;
}

int sevm__send_check_open(const struct sevm_send *s, const char *fn)
{
	if (!s)
		return sevm__fail(-EINVAL, "%s: no handle", fn);
	if (s->step != SEND_OPEN)
		return sevm__fail(s->step == SEND_FAILED ? -EPIPE : -EINVAL, "%s: the migration %s",
				  fn, s->step == SEND_FAILED ? "failed earlier; cancel it" :
				  s->step == SEND_DONE ? "is complete" :
				  s->step == SEND_INDOUBT ? "is in doubt" : "was cancelled");
	return 0;
}

int sevm_send_pages(struct sevm_send *s, const struct sevm_bitmap *pages, uint32_t *fw_error)
{
	int err = sevm__send_check_open(s, "sevm_send_pages");

	sevm__fw_zero(fw_error);
	if (err)
		return err;
	err = sevm__send_set(s, pages, fw_error);
	if (!err)
		err = sevm__stream_put_iteration(&s->w);
	if (!err)
		err = sevm__send_flush(s);
	if (!err)
		err = sevm__pass_end(&s->passes, s->d.io.bytes);
	return sevm__send_failed(s, sevm__context(err, "sending pages"));
}

/* Checks that need no kernel, before anything is opened. */
static int check_opts(const struct sevm_migrate_opts *o)
{
	if (o->vm_fd < 0 || !o->vcpu_fds || !o->nr_vcpus)
		return sevm__fail(-EINVAL, "a VM fd and its vCPU fds are needed");
	if (o->sev_type && o->sev_type != SEVM_SEV && o->sev_type != SEVM_SEV_ES)
		return sevm__fail(-EINVAL, "sev_type %d: 0, SEVM_SEV or SEVM_SEV_ES", o->sev_type);
	if (!o->sev_type && o->private_pages)
		return sevm__fail(-EINVAL, "a private-page map for a guest without SEV");
	return 0;
}

static int send_alloc(const struct sevm_migrate_opts *o, struct sevm_send **out)
{
	struct sevm_send *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return sevm__fail(-ENOMEM, "sender");
	s->private_pages = o->private_pages;
	s->dirty_clear = o->dirty_log_manual;
	err = sevm__side_init(&s->d, o);
	if (!err)
		err = sevm_bitmap_new(s->d.map.ranges, s->d.map.nr, &s->dirty);
	sevm__pass_begin(&s->passes, 0);
	*out = s;
	return err;
}

/*
 * SEND_START to the destination's certificates; the stream needs our own
 * PDH too, for the destination's RECEIVE_START.
 */
static int sev_session(struct sevm_send *s, const struct sevm_migrate_opts *o, uint8_t *pdh,
		       uint8_t *session, uint32_t *policy, uint32_t *fw_error)
{
	uint32_t pdh_len = SEVM_SEV_CERT_LEN, chain_len = SEVM_SEV_CHAIN_LEN, hdr_len = 0;
	uint8_t chain[SEVM_SEV_CHAIN_LEN];
	struct sevm_sev_send_start st = {
		.sz = sizeof(st), .pdh = o->pdh, .pdh_len = o->pdh_len,
		.plat_certs = o->plat_certs, .plat_certs_len = o->plat_certs_len,
		.amd_certs = o->amd_certs, .amd_certs_len = o->amd_certs_len,
		.session = session, .session_len = SEVM_SEV_SESSION_LEN,
	};
	int err = sevm_sev_pdh_export(o->sev_fd, pdh, &pdh_len, chain, &chain_len, fw_error);

	if (err)
		return sevm__context(err, "this platform's PDH for the stream");
	err = sevm_sev_send_start(s->d.vm_fd, &st, fw_error);
	if (err)
		return err;
	s->send_started = true;
	*policy = st.policy;
	if (st.session_len != SEVM_SEV_SESSION_LEN)
		return sevm__fail(-EPROTO, "SEND_START wrote a %u-byte session; the stream carries %u",
				  st.session_len, SEVM_SEV_SESSION_LEN);
	if (!!(st.policy & POLICY_ES) != (s->d.sev_type == SEVM_SEV_ES))
		return sevm__fail(-EINVAL, "the guest's policy 0x%x %s SEV-ES, the caller said %s",
				  st.policy, st.policy & POLICY_ES ? "is" : "is not",
				  s->d.sev_type == SEVM_SEV_ES ? "SEVM_SEV_ES" : "SEVM_SEV");
	/* A length query: its INVALID_LEN is the answer, not a failure to report. */
	err = sevm_sev_send_header_len(s->d.vm_fd, &hdr_len, NULL);
	if (!err && hdr_len != HDR)
		err = sevm__fail(-EPROTO, "the firmware's packet header is %u bytes; the stream "
				 "carries %u", hdr_len, HDR);
	return err;
}

static int send_begin(struct sevm_send *s, const struct sevm_migrate_opts *o, uint32_t *fw_error)
{
	uint8_t pdh[SEVM_SEV_CERT_LEN], session[SEVM_SEV_SESSION_LEN];
	uint32_t policy = 0, features = 0;
	int err = 0;

	if (s->d.sev_type == SEVM_SEV_ES)
		err = sevm__sev_vmsa_supported(s->d.vm_fd);
	if (!err && s->d.sev_type) {
		err = sev_session(s, o, pdh, session, &policy, fw_error);
		features = SEVM_STREAM_F_SEV |
			   (s->d.sev_type == SEVM_SEV_ES ? SEVM_STREAM_F_SEV_ES : 0);
	}
	if (!err)
		err = sevm__stream_begin(&s->w, &s->buf, policy, features);
	if (!err && s->d.sev_type)
		err = sevm__stream_put_session(&s->w, pdh, session);
	if (!err)
		err = sevm__send_flush(s);
	return err;
}

int sevm_send_new(const struct sevm_migrate_opts *opts, struct sevm_send **out,
		  uint32_t *fw_error)
{
	struct sevm_migrate_opts o = { 0 };
	struct sevm_send *s = NULL;
	int err;

	sevm__fw_zero(fw_error);
	if (!out)
		return sevm__fail(-EINVAL, "sevm_send_new: no out");
	*out = NULL;
	err = SEVM_OPTS_CHECK(opts, "sevm_migrate_opts");
	if (err)
		return err;
	SEVM_OPTS_IN(o, opts);
	err = check_opts(&o);
	if (!err)
		err = send_alloc(&o, &s);
	if (!err)
		err = send_begin(s, &o, fw_error);
	if (err) {
		char msg[512];

		/* The guest must be RUNNING for the firmware again before the VMM resumes it. */
		snprintf(msg, sizeof(msg), "%s", sevm_last_error());
		if (s && s->send_started && sevm_sev_send_cancel(s->d.vm_fd, NULL) == 0)
			s->send_started = false;
		if (s && s->send_started)
			sevm__log(SEVM_LOG_ERROR, "SEND_CANCEL after a failed start failed too (%s): "
				  "the guest stays in SUPDATE", sevm_last_error());
		sevm__set_msg(msg);
		sevm_send_free(s);
		return sevm__context(err, "starting the migration stream");
	}
	/* The length queries on the way leave INVALID_LEN; the start succeeded. */
	sevm__fw_zero(fw_error);
	*out = s;
	return 0;
}

/* Every vCPU's VMSA through the firmware, into VMSA records. */
static int put_vmsas(struct sevm_send *s, uint32_t *fw_error)
{
	for (unsigned int i = 0; i < s->d.nr_vcpus; i++) {
		uint8_t *p = sevm__stream_open(&s->w, SEVM_REC_VMSA, SEVM_STREAM_MANDATORY, i, 0,
					       HDR + PAGE);
		int err;

		if (!p)
			return -ENOMEM;
		err = sevm_sev_send_update_vmsa(s->d.vm_fd, i, p, HDR, p + HDR, PAGE, fw_error);
		if (err)
			return sevm__context(err, "vCPU %u", i);
		sevm__stream_close(&s->w);
	}
	return 0;
}

struct state_out {
	struct sevm_send *s;
	struct sevm__buf sect;
};

/* Whole sections per STATE record: each vCPU's fit the record bound, a guest's may not. */
static int put_state_piece(void *ctx)
{
	struct state_out *st = ctx;
	int err = 0;

	if (st->sect.len > SEVM_STREAM_MAX_LEN)
		return sevm__fail(-E2BIG, "%zu bytes of one vCPU's state, a record holds %u",
				  st->sect.len, SEVM_STREAM_MAX_LEN);
	if (st->sect.len)
		err = sevm__stream_put(&st->s->w, SEVM_REC_STATE, SEVM_STREAM_MANDATORY, 0, 0,
				       st->sect.data, (uint32_t)st->sect.len);
	sevm__buf_reset(&st->sect);
	return err ? err : maybe_flush(st->s);
}

/* KVM's view of the vCPUs and the VM (for SEV-ES, what lies outside the VMSA). */
static int put_state(struct sevm_send *s)
{
	struct sevm__kvm_caps caps;
	struct state_out st = { .s = s };
	struct sevm__snap_writer w;
	struct sevm__guest_desc g = { .caps = &caps, .vm_fd = s->d.vm_fd, .vcpu_fds = s->d.vcpu_fds,
				      .nr_vcpus = s->d.nr_vcpus, .vm_type = s->d.sev_type };
	int err = sevm__kvm_caps_probe(s->d.vm_fd, &caps);

	if (err)
		return err;
	caps.protected_state = s->d.sev_type == SEVM_SEV_ES;
	err = sevm__vm_flags(s->d.vm_fd, &g.flags);
	sevm__snap_sections(&w, &st.sect);
	if (!err)
		err = sevm__guest_capture_vcpus(&g, &w, put_state_piece, &st);
	if (!err)
		err = sevm__vm_capture(s->d.vm_fd, &w);
	if (!err)
		err = sevm__snap_end(&w);
	if (!err)
		err = put_state_piece(&st);
	sevm__buf_free(&st.sect);
	sevm__kvm_caps_free(&caps);
	return sevm__context(err, "guest state");
}

static int put_private_map(struct sevm_send *s)
{
	ssize_t len = sevm_bitmap_serialize(s->private_pages, NULL, 0);
	void *bytes;
	int err;

	if (len < 0)
		return sevm__context((int)len, "private-page map");
	bytes = malloc((size_t)len);
	if (!bytes)
		return sevm__fail(-ENOMEM, "private-page map of %zd bytes", len);
	len = sevm_bitmap_serialize(s->private_pages, bytes, (size_t)len);
	err = len < 0 ? (int)len : sevm__stream_put_bitmap(&s->w, bytes, (size_t)len);
	free(bytes);
	return err;
}

static int final_records(struct sevm_send *s, const void *vmm, size_t vmm_len,
			 uint32_t *fw_error)
{
	int err;

	s->paused = true;
	err = sevm__send_set(s, s->tracking ? s->dirty : NULL, fw_error);

	if (!err && s->private_pages)
		err = put_private_map(s);
	if (!err && s->d.sev_type == SEVM_SEV_ES)
		err = put_vmsas(s, fw_error);
	if (!err)
		err = put_state(s);
	if (!err && vmm)
		err = sevm__stream_put(&s->w, SEVM_REC_VMM, 0, 0, 0, vmm, (uint32_t)vmm_len);
	if (!err)
		err = sevm__stream_end(&s->w);
	return err ? err : sevm__send_flush(s);
}

int sevm_send_final(struct sevm_send *s, const void *vmm_state, size_t vmm_state_len,
		    uint32_t *fw_error)
{
	int err = sevm__send_check_open(s, "sevm_send_final");

	sevm__fw_zero(fw_error);
	if (err)
		return err;
	if (vmm_state_len > SEVM_STREAM_MAX_LEN || (vmm_state_len && !vmm_state))
		return sevm__fail(-EINVAL, "sevm_send_final: %zu bytes of VMM state at %p; at most %u",
				  vmm_state_len, vmm_state, SEVM_STREAM_MAX_LEN);
	err = s->tracking ? sevm__send_read_dirty(s, s->dirty, true) : 0;
	/* Closing the pass cannot fail once END is out. */
	if (!err)
		err = sevm__pass_reserve(&s->passes);
	if (!err)
		err = final_records(s, vmm_state, vmm_state_len, fw_error);
	if (!err)
		err = sevm__pass_end(&s->passes, s->d.io.bytes);
	if (err)
		return sevm__send_failed(s, sevm__context(err, "final pass"));
	/* After END went out: the firmware may now forget the channel. */
	if (s->d.sev_type) {
		err = sevm_sev_send_finish(s->d.vm_fd, fw_error);
		if (err) {
			s->step = SEND_INDOUBT;
			return sevm__fail(-SEVM_ERR_INDOUBT, "the whole stream went out but SEND_FINISH "
					  "failed (%s): the destination may run the guest; keep it "
					  "paused here", sevm_strerror(err));
		}
		s->send_started = false;
	}
	s->step = SEND_DONE;
	return 0;
}

/* Records not yet written are dropped: the receiver stops at CANCEL anyway. */
static void put_cancel(struct sevm_send *s)
{
	sevm__buf_reset(&s->buf);
	s->w.open_at = SIZE_MAX;
	sevm__stream_rebind(&s->w, &s->buf);
	if (sevm__stream_put(&s->w, SEVM_REC_CANCEL, SEVM_STREAM_MANDATORY, 0, 0, NULL, 0) ||
	    sevm__send_flush(s))
		sevm__log(SEVM_LOG_WARN, "the CANCEL record did not go out: %s", sevm_last_error());
}

int sevm_send_cancel(struct sevm_send *s, uint32_t *fw_error)
{
	int err = 0;

	sevm__fw_zero(fw_error);
	if (!s)
		return sevm__fail(-EINVAL, "sevm_send_cancel: no handle");
	if (s->step == SEND_DONE || s->step == SEND_INDOUBT)
		return sevm__fail(-EINVAL, "sevm_send_cancel: %s", s->step == SEND_DONE ?
				  "the guest was sent" : "the whole stream went out: the destination "
				  "may run the guest, so it must not resume here");
	if (s->step != SEND_CANCELLED && !s->io_broken)
		put_cancel(s);
	s->step = SEND_CANCELLED;
	/* A failed SEND_CANCEL can be tried again. */
	if (s->send_started) {
		err = sevm_sev_send_cancel(s->d.vm_fd, fw_error);
		if (!err)
			s->send_started = false;
	}
	return err;
}

int sevm_send_stats(const struct sevm_send *s, unsigned int i, struct sevm_iteration_stats *st)
{
	if (!s)
		return sevm__fail(-EINVAL, "sevm_send_stats: no handle");
	return sevm__pass_get(&s->passes, i, st);
}

void sevm_send_free(struct sevm_send *s)
{
	if (!s)
		return;
	if (s->send_started)
		sevm__log(SEVM_LOG_WARN, "sender freed with the guest in SUPDATE: it runs, but "
			  "cannot be sent again until sevm_sev_send_cancel() on its VM");
	sevm_bitmap_free(s->dirty);
	sevm__passes_free(&s->passes);
	sevm__buf_free(&s->buf);
	sevm__side_free(&s->d);
	free(s);
}
