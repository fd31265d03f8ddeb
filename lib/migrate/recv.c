/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The receiver: the stream's records, each validated whole by the reader
 * (lib/stream), applied to the destination guest as they come.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/opts.h"
#include "../kvm/guest_state.h"
#include "../sev/cmd.h"
#include "migrate.h"

#define PAGE		4096u
#define HDR		SEVM_STREAM_PKT_HDR_LEN

struct sevm_recv {
	struct sevm__side d;
	int sev_fd;
	struct sevm__stream_reader rd;
	uint8_t *in;
	bool checked_header;
	bool started;			/* RECEIVE_START done */
	unsigned int nr_vmsas;
	bool *vmsa_in;			/* per vCPU: its VMSA arrived */
	bool ended;			/* END read and checked: finish once no byte follows */
	struct sevm__kvm_caps caps;
	struct sevm__guest_rx grx;
	bool have_grx;
	struct sevm__buf bitmap;
	bool bitmap_whole;
	struct sevm__buf vmm;
	bool have_vmm;
	struct sevm__passes passes;
	uint64_t pos;			/* stream bytes consumed */
	bool done, failed;
};

static int check_header(struct sevm_recv *r)
{
	bool sev = r->rd.features & SEVM_STREAM_F_SEV, es = r->rd.features & SEVM_STREAM_F_SEV_ES;

	if (sev != !!r->d.sev_type || es != (r->d.sev_type == SEVM_SEV_ES))
		return sevm__fail(-SEVM_ERR_FORMAT, "the stream is for %s guest, the destination "
				  "VM is %s", es ? "an SEV-ES" : sev ? "an SEV" : "a plain",
				  r->d.sev_type == SEVM_SEV_ES ? "SEV-ES" : r->d.sev_type ? "SEV" : "plain");
	r->checked_header = true;
	return 0;
}

static int take_session(struct sevm_recv *r, const uint8_t *d, uint32_t *fw_error)
{
	struct sevm_sev_receive_start st = {
		.sz = sizeof(st), .policy = r->rd.policy,
		.pdh = d + SEVM_STREAM_SESSION_FIXED, .pdh_len = SEVM_STREAM_PDH_LEN,
		.session = d + SEVM_STREAM_SESSION_FIXED + SEVM_STREAM_PDH_LEN,
		.session_len = SEVM_STREAM_SESSION_LEN,
	};
	int err = sevm_sev_receive_start(r->d.vm_fd, r->sev_fd, &st, fw_error);

	r->started = !err;
	return err;
}

static uint8_t *guest_at(struct sevm_recv *r, const struct sevm__stream_rec *rec)
{
	return sevm__memmap_host(&r->d.map, (unsigned int)sevm__memmap_find(&r->d.map, rec->arg),
				 rec->arg, rec->count);
}

static int take_private(struct sevm_recv *r, const struct sevm__stream_rec *rec,
			uint32_t *fw_error)
{
	uint8_t *g = guest_at(r, rec);
	const uint8_t *d = rec->data;

	for (uint32_t k = 0; k < rec->count; k++) {
		int err = sevm_sev_receive_update_data(r->d.vm_fd, g + (size_t)k * PAGE, PAGE,
						       d + (size_t)k * HDR, HDR,
						       d + (size_t)rec->count * HDR + (size_t)k * PAGE,
						       PAGE, fw_error);

		if (err)
			return sevm__context(err, "private page gfn 0x%llx",
					     (unsigned long long)(rec->arg + k));
	}
	r->passes.cur.pages_private += rec->count;
	return 0;
}

static int take_vmsa(struct sevm_recv *r, const struct sevm__stream_rec *rec, uint32_t *fw_error)
{
	if (rec->arg >= r->d.nr_vcpus || r->vmsa_in[rec->arg])
		return sevm__fail(-SEVM_ERR_FORMAT, "VMSA of vCPU %llu: %s",
				  (unsigned long long)rec->arg, rec->arg >= r->d.nr_vcpus ?
				  "the destination has fewer vCPUs" : "a second one");
	r->vmsa_in[rec->arg] = true;
	r->nr_vmsas++;
	return sevm_sev_receive_update_vmsa(r->d.vm_fd, (uint32_t)rec->arg, rec->data, HDR,
					    rec->data + HDR, PAGE, fw_error);
}

static int keep(struct sevm__buf *b, bool append, const void *data, size_t len)
{
	void *p;

	if (!append)
		sevm__buf_reset(b);
	p = sevm__buf_grow(b, len);
	if (!p)
		return sevm__fail(-ENOMEM, "%zu bytes from the stream", len);
	memcpy(p, data, len);
	return 0;
}

static int take_state(struct sevm_recv *r, const struct sevm__stream_rec *rec)
{
	struct sevm__guest_desc g = { .caps = &r->caps, .vm_fd = r->d.vm_fd,
				      .vcpu_fds = r->d.vcpu_fds, .nr_vcpus = r->d.nr_vcpus,
				      .vm_type = r->d.sev_type };
	int err;

	if (!r->have_grx) {
		err = sevm__kvm_caps_probe(r->d.vm_fd, &r->caps);
		r->caps.protected_state = r->d.sev_type == SEVM_SEV_ES;
		if (!err)
			err = sevm__vm_flags(r->d.vm_fd, &g.flags);
		if (!err)
			err = sevm__guest_rx_init(&r->grx, &g);
		if (err)
			return err;
		r->have_grx = true;
	}
	return sevm__guest_rx_apply(&r->grx, rec->data, rec->len);
}

/* END: everything the guest needs came. */
static int take_end(struct sevm_recv *r)
{
	if (!r->have_grx || !sevm__guest_rx_done(&r->grx))
		return sevm__fail(-SEVM_ERR_FORMAT, "END without the guest's complete state");
	if (r->d.sev_type == SEVM_SEV_ES && r->nr_vmsas != r->d.nr_vcpus)
		return sevm__fail(-SEVM_ERR_FORMAT, "END after %u of %u VMSAs", r->nr_vmsas,
				  r->d.nr_vcpus);
	r->ended = true;
	return sevm__pass_end(&r->passes, r->pos);
}

/* Only now does the firmware let the guest run here: nothing can fail after. */
static int finish(struct sevm_recv *r, uint32_t *fw_error)
{
	int err = r->d.sev_type ? sevm_sev_receive_finish(r->d.vm_fd, fw_error) : 0;

	r->done = !err;
	return err;
}

static int apply(struct sevm_recv *r, const struct sevm__stream_rec *rec, uint32_t *fw_error)
{
	int err = r->checked_header ? 0 : check_header(r);

	if (err)
		return err;
	switch (rec->type) {
	case SEVM_REC_SESSION:
		return take_session(r, rec->data, fw_error);
	case SEVM_REC_SHARED:
		memcpy(guest_at(r, rec), rec->data, (size_t)rec->count * PAGE);
		r->passes.cur.pages_shared += rec->count;
		return 0;
	case SEVM_REC_PRIVATE:
		return take_private(r, rec, fw_error);
	case SEVM_REC_VMSA:
		return take_vmsa(r, rec, fw_error);
	case SEVM_REC_BITMAP:
		err = keep(&r->bitmap, rec->arg != 0, rec->data, rec->len);
		r->bitmap_whole = !err && rec->count;
		return err;
	case SEVM_REC_STATE:
		return take_state(r, rec);
	case SEVM_REC_ITERATION:
		return sevm__pass_end(&r->passes, r->pos);
	case SEVM_REC_VMM:
		r->have_vmm = true;
		return keep(&r->vmm, false, rec->data, rec->len);
	case SEVM_REC_END:
		return take_end(r);
	}
	return sevm__fail(-SEVM_ERR_FORMAT, "record 0x%04x handed out", rec->type);
}

/* Read until r->in holds want bytes: 1, 0 at the end of the stream, or -errno. */
static int fill(struct sevm_recv *r, size_t *have, size_t want)
{
	while (*have < want) {
		ssize_t n = sevm__mio_read(&r->d.io, r->in + *have, want - *have);

		if (n <= 0)
			return (int)n;
		*have += (size_t)n;
	}
	return 1;
}

/*
 * One unit of the stream — its header, or one record — read whole before
 * the reader sees it, so that the reader checks it in place: guest pages
 * are copied once, into the guest.
 */
static int step(struct sevm_recv *r, uint32_t *fw_error)
{
	bool header = r->rd.stage == SR_HEADER;
	size_t have = 0, left;
	const void *p = r->in;
	struct sevm__stream_rec rec;
	int got = fill(r, &have, header ? SEVM_STREAM_HEADER_LEN : SEVM_STREAM_REC_HDR_LEN);
	int rc;

	if (got > 0)
		got = fill(r, &have, header ? sevm__stream_header_size(r->in) :
				     sevm__stream_record_size(r->in));
	if (got < 0)
		return got;
	left = have;
	while ((rc = sevm__stream_next(&r->rd, &p, &left, &rec)) > 0) {
		r->pos = r->d.io.bytes;
		rc = apply(r, &rec, fw_error);
		if (rc)
			return rc;
	}
	if (rc < 0)
		return rc;
	if (!got)
		return sevm__context(sevm__stream_eof(&r->rd), "the stream ended (the source or "
				     "the channel closed it)");
	return r->ended ? finish(r, fw_error) : 0;
}

int sevm_recv_run(struct sevm_recv *r, uint32_t *fw_error)
{
	sevm__fw_zero(fw_error);
	if (!r || r->done || r->failed)
		return sevm__fail(-EINVAL, "sevm_recv_run: %s", !r ? "no handle" :
				  r->done ? "the guest has arrived already" : "it failed before");
	while (!r->done) {
		int err = step(r, fw_error);

		if (err) {
			r->failed = true;
			return sevm__context(err, "receiving the guest");
		}
	}
	return 0;
}

int sevm_recv_new(const struct sevm_migrate_opts *opts, struct sevm_recv **out)
{
	struct sevm_migrate_opts o = { 0 };
	struct sevm_recv *r;
	int err;

	if (!out)
		return sevm__fail(-EINVAL, "sevm_recv_new: no out");
	*out = NULL;
	err = SEVM_OPTS_CHECK(opts, "sevm_migrate_opts");
	if (err)
		return err;
	SEVM_OPTS_IN(o, opts);
	if (o.vm_fd < 0 || !o.vcpu_fds || !o.nr_vcpus)
		return sevm__fail(-EINVAL, "sevm_recv_new: a VM fd and its vCPU fds are needed");
	if (o.sev_type && (o.sev_fd < 0 || (o.sev_type != SEVM_SEV && o.sev_type != SEVM_SEV_ES)))
		return sevm__fail(-EINVAL, "sevm_recv_new: sev_type %d needs an open /dev/sev",
				  o.sev_type);
	r = calloc(1, sizeof(*r));
	if (!r)
		return sevm__fail(-ENOMEM, "receiver");
	r->sev_fd = o.sev_fd;
	r->vmsa_in = calloc(o.nr_vcpus, sizeof(bool));
	r->in = malloc(SEVM_STREAM_READER_BOUND);
	err = r->vmsa_in && r->in ? 0 : sevm__fail(-ENOMEM, "receiver");
	if (!err && o.sev_type == SEVM_SEV_ES)
		err = sevm__sev_vmsa_supported(o.vm_fd);
	if (!err)
		err = sevm__side_init(&r->d, &o);
	if (!err)
		err = sevm__stream_reader_init(&r->rd, r->d.map.ranges, r->d.map.nr);
	if (err) {
		sevm_recv_free(r);
		return err;
	}
	sevm__pass_begin(&r->passes, 0);
	*out = r;
	return 0;
}

int sevm_recv_vmm_state(struct sevm_recv *r, const void **data, size_t *len)
{
	if (!r || !data || !len)
		return sevm__fail(-EINVAL, "sevm_recv_vmm_state: NULL argument");
	if (!r->done || !r->have_vmm)
		return sevm__fail(-ENOENT, "sevm_recv_vmm_state: %s", r->done ?
				  "the source sent no VMM state" : "the guest has not arrived");
	*data = r->vmm.data;
	*len = r->vmm.len;
	return 0;
}

int sevm_recv_private(struct sevm_recv *r, struct sevm_bitmap **out)
{
	if (!r || !out)
		return sevm__fail(-EINVAL, "sevm_recv_private: NULL argument");
	if (!r->done || !r->bitmap_whole)
		return sevm__fail(-ENOENT, "sevm_recv_private: %s", r->done ?
				  "the source sent no private-page map" : "the guest has not arrived");
	return sevm_bitmap_deserialize(r->bitmap.data, r->bitmap.len, out);
}

int sevm_recv_stats(const struct sevm_recv *r, unsigned int i, struct sevm_iteration_stats *st)
{
	if (!r)
		return sevm__fail(-EINVAL, "sevm_recv_stats: no handle");
	return sevm__pass_get(&r->passes, i, st);
}

void sevm_recv_free(struct sevm_recv *r)
{
	if (!r)
		return;
	if (r->have_grx)
		sevm__guest_rx_free(&r->grx);
	sevm__kvm_caps_free(&r->caps);
	sevm__stream_reader_free(&r->rd);
	sevm__passes_free(&r->passes);
	sevm__buf_free(&r->bitmap);
	sevm__buf_free(&r->vmm);
	sevm__side_free(&r->d);
	free(r->vmsa_in);
	free(r->in);
	free(r);
}
