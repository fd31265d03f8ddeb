/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/error.h"
#include "../core/opts.h"
#include "../core/seam.h"
#include "handoff.h"

int sevm__handoff_fail(struct sevm_handoff *h, int err)
{
	if (h->step != SEVM_STEP_FAILED && h->step != SEVM_STEP_DONE)
		sevm__wire_abort(h->sock, err, -1, h->timeout_ms);
	h->step = SEVM_STEP_FAILED;
	return err;
}

static int role(const struct sevm_handoff *h, bool sender, enum sevm__step step, const char *fn)
{
	if (!h)
		return sevm__fail(-EINVAL, "%s: NULL handle", fn);
	if (h->sender != sender)
		return sevm__fail(-EINVAL, "%s: not for the %s side", fn, h->sender ? "sending" : "receiving");
	/* KVM marked the source of the MOVE dead: nothing is left to do with it. */
	if (h->sender && h->sev_type && h->step == SEVM_STEP_DONE)
		return sevm__fail(-EIO, "%s: the source VM is dead, its SEV context moved to the "
				  "receiver", fn);
	if (h->step != step)
		return sevm__fail(h->step == SEVM_STEP_FAILED ? -EPIPE : -EINVAL,
				  "%s: the handoff is %s", fn,
				  h->step == SEVM_STEP_FAILED ? "failed: free it" : "not at this step");
	return 0;
}

/* Options are checked before a connection is spent on them; *out is NULL on failure. */
int sevm__handoff_check_args(const struct sevm_handoff_opts *opts, struct sevm_handoff **out,
		      const char *fn)
{
	if (!out)
		return sevm__fail(-EINVAL, "%s: NULL out", fn);
	*out = NULL;
	return opts ? SEVM_OPTS_CHECK(opts, "sevm_handoff_opts") : 0;
}

/* The caller's options, with an older caller's missing fields as zero. */
struct sevm_handoff_opts sevm__handoff_opts(const struct sevm_handoff_opts *opts)
{
	struct sevm_handoff_opts o = { 0 };

	if (opts)
		memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	if (o.timeout_ms <= 0)
		o.timeout_ms = SEVM_DEFAULT_TIMEOUT_MS;
	return o;
}

int sevm_handoff_from_fd(int sock, bool sender, const struct sevm_handoff_opts *opts,
			 struct sevm_handoff **out)
{
	struct sevm_handoff_opts o;
	struct sevm_handoff *h;
	int err = sevm__handoff_check_args(opts, out, "sevm_handoff_from_fd");

	if (err)
		return err;
	o = sevm__handoff_opts(opts);
	h = calloc(1, sizeof(*h));
	if (!h)
		return sevm__fail(-ENOMEM, "handoff handle");
	h->sender = sender;
	h->sock = sock;
	h->vm_fd = -1;
	h->peer_vm_fd = -1;
	h->timeout_ms = o.timeout_ms;
	h->restore_threads = o.restore_threads;
	pthread_mutex_init(&h->tx_lock, NULL);
	err = sevm__peer_check(sock, o.peer_policy, o.peer_policy_ctx, &h->peer);
	/* A receiver knows nothing before the hello: read and check it now. */
	if (!err && !sender) {
		err = sevm__hello_read(h);
		if (err)
			sevm__handoff_fail(h, err);
	}
	if (err) {
		h->sock = -1;	/* the socket stays the caller's on failure */
		sevm_handoff_free(h);
		return err;
	}
	*out = h;
	return 0;
}

int sevm_handoff_info(struct sevm_handoff *h, struct sevm_guest_info *info)
{
	int err = SEVM_OPTS_CHECK(info, "sevm_handoff_info");

	if (err)
		return err;
	if (!h || h->sender || !h->info.nr_vcpus)
		return sevm__fail(-EINVAL, "sevm_handoff_info: only a receiver that read the hello has it");
	sevm__report_out(info, &h->info, sizeof(h->info));
	return 0;
}

int sevm_handoff_region(struct sevm_handoff *h, unsigned int i, struct sevm_region *r)
{
	int err = SEVM_OPTS_CHECK(r, "sevm_handoff_region");

	if (err)
		return err;
	if (!h || h->sender || i >= h->nr_regions)
		return sevm__fail(-EINVAL, "sevm_handoff_region: no region %u", i);
	sevm__report_out(r, &h->regions[i], sizeof(h->regions[i]));
	return 0;
}

int sevm_handoff_add_region(struct sevm_handoff *h, const struct sevm_region *r)
{
	struct sevm_region *grown;
	unsigned int at;
	int err = role(h, true, SEVM_STEP_NEW, "sevm_handoff_add_region");

	if (!err)
		err = SEVM_OPTS_CHECK(r, "sevm_handoff_add_region");
	if (err)
		return err;
	if (h->nr_regions == SEVM_MAX_REGIONS)
		return sevm__fail(-E2BIG, "at most %u regions", SEVM_MAX_REGIONS);
	grown = realloc(h->regions, (h->nr_regions + 1) * sizeof(*grown));
	if (!grown)
		return sevm__fail(-ENOMEM, "region table");
	h->regions = grown;
	/* Kept sorted by address: the wire table must be. */
	for (at = h->nr_regions; at && grown[at - 1].guest_phys_addr > r->guest_phys_addr; at--)
		grown[at] = grown[at - 1];
	memset(&grown[at], 0, sizeof(grown[at]));
	memcpy(&grown[at], r, r->sz < sizeof(*r) ? r->sz : sizeof(*r));
	grown[at].sz = sizeof(*r);
	h->nr_regions++;
	return 0;
}

int sevm_handoff_set_vm(struct sevm_handoff *h, int vm_fd, const int *vcpu_fds,
			unsigned int nr_vcpus)
{
	int err = role(h, h ? h->sender : false, SEVM_STEP_NEW, "sevm_handoff_set_vm");

	if (err)
		return err;
	if (vm_fd < 0 || !vcpu_fds || !nr_vcpus || nr_vcpus > SEVM_MAX_VCPUS)
		return sevm__fail(-EINVAL, "sevm_handoff_set_vm: VM fd %d, %u vCPUs", vm_fd, nr_vcpus);
	if (!h->sender && nr_vcpus != h->info.nr_vcpus)
		return sevm__fail(-EINVAL, "the sender's guest has %u vCPUs, this VM %u",
				  h->info.nr_vcpus, nr_vcpus);
	int *fds = malloc(nr_vcpus * sizeof(int));

	if (!fds)
		return sevm__fail(-ENOMEM, "vCPU table");
	memcpy(fds, vcpu_fds, nr_vcpus * sizeof(int));
	free(h->vcpu_fds);
	h->vcpu_fds = fds;
	h->nr_vcpus = nr_vcpus;
	h->vm_fd = vm_fd;
	return 0;
}

/* Wait for `type` from the peer; an ABORT becomes its error. */
int sevm__handoff_expect(struct sevm_handoff *h, uint16_t type)
{
	bool commit = type == SEVM_MSG_RESTORED || type == SEVM_MSG_GO || type == SEVM_MSG_RESUMED;
	int err = sevm__wire_recv(h->sock, &h->msg, h->timeout_ms, commit);

	if (err)
		return sevm__context(err, "waiting for %s", sevm__msg_name(type));
	err = sevm__wire_peer_abort(&h->msg);
	if (err)
		return err;
	/* An SEV receiver's PREPARED brings its VM: where the context may go. */
	if (h->msg.type == SEVM_MSG_PREPARED && h->sender && h->sev_type && h->msg.nr_fds == 1) {
		sevm__close(h->peer_vm_fd);
		h->peer_vm_fd = h->msg.fds[0];
		h->msg.nr_fds = 0;
	}
	if (h->msg.type != type) {
		sevm__msg_close_fds(&h->msg);
		return sevm__fail(-SEVM_ERR_FORMAT, "expected %s, got %s", sevm__msg_name(type),
				  sevm__msg_name(h->msg.type));
	}
	if (h->msg.nr_fds) {
		unsigned int n = h->msg.nr_fds;

		sevm__msg_close_fds(&h->msg);
		return sevm__fail(-SEVM_ERR_FORMAT, "%s with %u fds, which it never carries",
				  sevm__msg_name(type), n);
	}
	/* The commit's messages are a bare header (handoff-protocol.md). */
	if (commit && h->msg.payload.len)
		return sevm__fail(-SEVM_ERR_FORMAT, "%s with %zu bytes, which is empty",
				  sevm__msg_name(type), h->msg.payload.len);
	return 0;
}

int sevm__handoff_why_closed(struct sevm_handoff *h, int err)
{
	char saved[512];
	int why;

	if (err != -EPIPE && err != -ECONNRESET)
		return err;
	/* A peer that quit on purpose said why before it closed: report that. */
	snprintf(saved, sizeof(saved), "%s", sevm_last_error());
	if (sevm__wire_recv(h->sock, &h->msg, 100, false) == 0) {
		why = sevm__wire_peer_abort(&h->msg);
		sevm__msg_close_fds(&h->msg);
		if (why)
			return why;
	}
	sevm__set_msg(saved);
	return err;
}

static int prepare_sender(struct sevm_handoff *h)
{
	int err = sevm__regions_validate(h->regions, h->nr_regions, -EINVAL);

	for (unsigned int i = 0; !err && i < h->nr_regions; i++) {
		const struct sevm_region *r = &h->regions[i];

		err = sevm__region_fd_check(r, -EINVAL);
		/* A take back re-registers it where this VMM has it mapped. */
		if (!err && (r->flags & SEVM_REGION_ENCRYPTED) && (!h->sev_type || !r->host_addr))
			err = sevm__fail(-EINVAL, "region slot %u is encrypted: %s", r->slot,
					 h->sev_type ? "give its host_addr" :
					 "only for an SEV guest (sevm_handoff_set_sev)");
	}
	if (!err)
		err = sevm__vm_flags(h->vm_fd, &h->info.flags);
	/* Learning what the kernel can capture costs ioctls: do it before the pause. */
	if (!err)
		err = sevm__kvm_caps_probe(h->vm_fd, &h->caps);
	h->caps.protected_state = h->sev_type == SEVM_SEV_ES;
	if (!err && !(h->vcpu_sent = calloc(h->nr_vcpus, sizeof(*h->vcpu_sent))))
		err = sevm__fail(-ENOMEM, "vCPU table");
	if (!err)
		err = sevm__handoff_why_closed(h, sevm__hello_send(h));
	if (!err)
		err = sevm__handoff_expect(h, SEVM_MSG_PREPARED);
	if (!err)
		err = sevm__prepared_take(h);
	return err;
}

static void free_presets(struct sevm_handoff *h)
{
	for (unsigned int i = 0; h->presets && i < h->nr_vcpus; i++)
		sevm__vcpu_preset_free(&h->presets[i]);
	free(h->presets);
	h->presets = NULL;
}

/* Made now, so that the blackout pays only for waking them. */
static int start_restore_threads(struct sevm_handoff *h)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int n = h->restore_threads;

	if (!n)
		n = cpus > 0 ? (unsigned int)cpus : 1;
	if (n > h->nr_vcpus)
		n = h->nr_vcpus;
	return n > 1 ? sevm__restore_pool_new(&h->caps, h->vcpu_fds, h->nr_vcpus, n, &h->pool) : 0;
}

static int prepare_receiver(struct sevm_handoff *h)
{
	int err = sevm__regions_bind(h->regions, h->nr_regions, h->vm_fd);

	if (!err)
		err = sevm__kvm_caps_probe(h->vm_fd, &h->caps);
	h->caps.protected_state = h->sev_type == SEVM_SEV_ES;
	/* What the new vCPUs already hold need not be set in the blackout. */
	if (!err && !(h->presets = calloc(h->nr_vcpus, sizeof(*h->presets))))
		err = sevm__fail(-ENOMEM, "vCPU presets");
	for (unsigned int i = 0; !err && i < h->nr_vcpus; i++)
		err = sevm__context(sevm__vcpu_preset_read(h->vcpu_fds[i], &h->presets[i]),
				    "vCPU %u", i);
	if (!err)
		err = start_restore_threads(h);
	if (!err)
		err = sevm__prepared_send(h);
	return err;
}

int sevm_handoff_prepare(struct sevm_handoff *h)
{
	int err = role(h, h ? h->sender : false, SEVM_STEP_NEW, "sevm_handoff_prepare");

	if (err)
		return err;
	if (h->vm_fd < 0)
		return sevm__fail(-EINVAL, "sevm_handoff_prepare: call sevm_handoff_set_vm first");
	err = h->sender ? prepare_sender(h) : prepare_receiver(h);
	if (err)
		return sevm__handoff_fail(h, sevm__context(err, "prepare"));
	h->step = SEVM_STEP_PREPARED;
	return 0;
}

void sevm_handoff_free(struct sevm_handoff *h)
{
	if (!h)
		return;
	/* Until the switch succeeded the receiver's copies of the guest are its own to drop. */
	if (!h->sender && h->step != SEVM_STEP_DONE) {
		sevm__regions_unmap(h->regions, h->nr_regions);
		for (unsigned int i = 0; i < h->nr_regions; i++)
			sevm__close(h->regions[i].fd);
	}
	sevm__msg_close_fds(&h->msg);
	sevm__buf_free(&h->msg.payload);
	sevm__buf_free(&h->out);
	/* The threads read caps and the vCPU fds: they go first. */
	sevm__restore_pool_free(h->pool);
	sevm__kvm_caps_free(&h->caps);
	free_presets(h);
	free(h->kept);
	free(h->vcpu_sent);
	pthread_mutex_destroy(&h->tx_lock);
	sevm__close(h->peer_vm_fd);
	free(h->peer_addrs);
	sevm__buf_free(&h->sent);
	sevm__peer_release(&h->peer);
	if (h->sock >= 0)
		close(h->sock);
	free(h->regions);
	free(h->vcpu_fds);
	free(h->vmm_state);
	free(h->private_bytes);
	free(h);
}

int sevm_handoff_set_sev(struct sevm_handoff *h, enum sevm_sev_type type)
{
	int err = role(h, true, SEVM_STEP_NEW, "sevm_handoff_set_sev");

	if (err)
		return err;
	if (type != SEVM_SEV && type != SEVM_SEV_ES)
		return sevm__fail(-EINVAL, "sevm_handoff_set_sev: type %d is neither SEVM_SEV nor "
				  "SEVM_SEV_ES", (int)type);
	h->sev_type = type;
	h->info.vm_type = type;
	return 0;
}

int sevm_handoff_set_private(struct sevm_handoff *h, const struct sevm_bitmap *private_pages)
{
	int err;

	if (h && h->sender && h->step == SEVM_STEP_PREPARED)
		err = 0;
	else
		err = role(h, true, SEVM_STEP_NEW, "sevm_handoff_set_private");
	if (err)
		return err;
	if (!private_pages)
		return sevm__fail(-EINVAL, "sevm_handoff_set_private: NULL bitmap");
	h->private_pages = private_pages;
	return 0;
}

int sevm_handoff_private(struct sevm_handoff *h, struct sevm_bitmap **out)
{
	if (!out)
		return sevm__fail(-EINVAL, "sevm_handoff_private: NULL out");
	*out = NULL;
	if (!h || h->sender || h->step != SEVM_STEP_DONE)
		return sevm__fail(-EINVAL, "sevm_handoff_private: only a receiver after a "
				  "successful switch has it");
	if (!h->has_private)
		return sevm__fail(-ENOENT, "sevm_handoff_private: the sender sent no private-page "
				  "bitmap");
	return sevm__context(sevm_bitmap_deserialize(h->private_bytes, h->private_len, out),
			     "sevm_handoff_private");
}
