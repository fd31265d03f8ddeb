/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The switch: the sender captures and streams the paused guest's state, one
 * vCPU per message, while the receiver restores each vCPU as it arrives.
 * Then RESTORED -> GO -> RESUMED.  GO is the commit point: before it the
 * sender may resume its guest, after it only the receiver may run it, so
 * the guest never runs in both processes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../sev/cmd.h"
#include "../kvm/guest_state.h"
#include "handoff.h"

/*
 * After a failed SEV switch: if the receiver moved the context, this VM is
 * dead and resuming it is impossible; the caller must take the guest back.
 */
static int sev_outcome(struct sevm_handoff *h, int err)
{
	char first[512];
	enum sevm__sev_answer a;

	if (!h->sev_type || err >= 0)
		return err;
	snprintf(first, sizeof(first), "%s", sevm_last_error());
	a = sevm__sev_guest(h->vm_fd, NULL, NULL);
	if (a == SEVM_IS_SEV) {
		sevm__set_msg(first);
		return err;
	}
	/* Resuming a VM whose context left would run a dead guest: not knowing is in doubt. */
	if (a == SEVM_SEV_UNKNOWN)
		return sevm__fail(-SEVM_ERR_INDOUBT, "%s; then it could not be told whether the SEV "
				  "context moved (%s): keep the guest paused", first,
				  sevm_last_error());
	sevm__set_msg(first);
	return sevm__context(-SEVM_ERR_MOVED, "the SEV context moved to the receiver's VM: "
			     "take the guest back (sevm_handoff_take_back)");
}

/* The record is final now: the guest, which changes it, is paused. */
static int put_private(struct sevm_handoff *h, struct sevm__snap_writer *w)
{
	ssize_t len = sevm_bitmap_serialize(h->private_pages, NULL, 0);
	void *p;

	if (len < 0)
		return sevm__context((int)len, "private-page bitmap");
	if ((size_t)len > SEVM_SNAP_MAX_SECTION)
		return sevm__fail(-E2BIG, "private-page bitmap of %zd bytes, at most %u in a section",
				  len, SEVM_SNAP_MAX_SECTION);
	p = sevm__snap_open(w, SEVM_SECT_PRIVATE, 0, 0, (uint64_t)len);
	if (!p)
		return sevm__fail(-ENOMEM, "private-page bitmap of %zd bytes", len);
	len = sevm_bitmap_serialize(h->private_pages, p, (size_t)len);
	sevm__snap_close(w);
	return len < 0 ? sevm__context((int)len, "private-page bitmap") : 0;
}

/* Every vCPU not sent by its own thread, then the VM-wide state in one message. */
static int stream_state(struct sevm_handoff *h, const void *vmm_state, size_t vmm_len)
{
	struct sevm__snap_writer w;
	int err = 0;

	for (unsigned int i = 0; !err && i < h->nr_vcpus; i++)
		if (!h->vcpu_sent[i])
			err = sevm__handoff_send_vcpu(h, i, &h->caps, NULL);
	if (h->tx_err) {
		sevm__set_msg(h->tx_msg);
		return h->tx_err;
	}
	sevm__buf_reset(&h->out);
	sevm__snap_sections(&w, &h->out);
	w.nr_sections = h->tx_sections;
	w.payload_bytes = h->tx_payload;
	err = h->private_pages ? put_private(h, &w) : 0;
	if (!err && vmm_state)
		err = sevm__snap_put(&w, SEVM_SECT_VMM, 0, 0, vmm_state, vmm_len);
	/* The clock is the last section, so the receiver sets it just before running. */
	if (!err)
		err = sevm__vm_capture(h->vm_fd, &w);
	if (!err)
		err = sevm__snap_end(&w);
	return err ? err : sevm__handoff_send_state(h, h->out.data, h->out.len);
}

static int sender_switch(struct sevm_handoff *h, const void *vmm_state, size_t vmm_len)
{
	int err = sevm__handoff_why_closed(h, stream_state(h, vmm_state, vmm_len));

	if (!err)
		err = sevm__handoff_expect(h, SEVM_MSG_RESTORED);
	if (err)
		return sev_outcome(h, sevm__handoff_fail(h, sevm__context(err, "switch")));
	/*
	 * Commit.  If GO cannot be sent the receiver is gone and never saw it,
	 * so resuming here is still safe.
	 */
	err = sevm__wire_send(h->sock, SEVM_MSG_GO, NULL, 0, NULL, 0, h->timeout_ms);
	if (err) {
		h->step = SEVM_STEP_FAILED;
		return sev_outcome(h, sevm__context(err, "switch: sending GO"));
	}
	err = sevm__handoff_expect(h, SEVM_MSG_RESUMED);
	h->step = SEVM_STEP_FAILED;
	if (!err) {
		h->step = SEVM_STEP_DONE;
		return 0;
	}
	/* After GO only an explicit refusal or a dead receiver makes resuming safe. */
	if (err == -SEVM_ERR_PEER ||
	    (err == -ECONNRESET && sevm__peer_gone(&h->peer, h->timeout_ms)))
		return sev_outcome(h, sevm__context(err, "switch: the receiver did not take the guest"));
	return sevm__fail(-SEVM_ERR_INDOUBT, "switch: receiver pid %d was told to run the guest "
			  "but did not confirm (%s); keep the guest paused", (int)h->peer.pid,
			  sevm_strerror(err));
}

int sevm_handoff_switch(struct sevm_handoff *h, const void *vmm_state, size_t vmm_state_len)
{
	if (h && h->sender && h->sev_type && h->step == SEVM_STEP_DONE)
		return sevm__fail(-EIO, "sevm_handoff_switch: the source VM is dead, its SEV "
				  "context moved to the receiver");
	if (!h || !h->sender || h->step != SEVM_STEP_PREPARED)
		return sevm__fail(h && h->step == SEVM_STEP_FAILED ? -EPIPE : -EINVAL,
				  "sevm_handoff_switch: needs a prepared sender handle");
	if (vmm_state_len && !vmm_state)
		return sevm__fail(-EINVAL, "sevm_handoff_switch: vmm_state is NULL");
	if (vmm_state_len > SEVM_SNAP_MAX_SECTION)
		return sevm__fail(-E2BIG, "sevm_handoff_switch: %zu bytes of VMM state, at most %u",
				  vmm_state_len, SEVM_SNAP_MAX_SECTION);
	return sender_switch(h, vmm_state, vmm_state_len);
}

/*
 * The encryption context comes to our VM from the other side's — on the
 * receiver after GO, on a take back from the receiver's — and the encrypted
 * regions are then registered at our own addresses.
 */
static int move_context(struct sevm_handoff *h)
{
	int err = sevm_sev_move(h->vm_fd, h->peer_vm_fd);

	if (!err)
		err = sevm__regions_encrypt(h->regions, h->nr_regions, h->vm_fd, h->peer_addrs);
	return err;
}

/* Checked now, so that a bad record fails the switch before GO; kept as bytes. */
static int take_private(struct sevm_handoff *h, const struct sevm__sect *s)
{
	struct sevm_bitmap *b = NULL;
	int err;

	if (h->has_private)
		return sevm__fail(-SEVM_ERR_FORMAT, "PRIVATE section repeated");
	err = sevm_bitmap_deserialize(s->data, s->len, &b);
	sevm_bitmap_free(b);
	if (err)
		return sevm__context(err, "private-page bitmap");
	h->private_bytes = malloc(s->len ? s->len : 1);
	if (!h->private_bytes)
		return sevm__fail(-ENOMEM, "private-page bitmap of %llu bytes",
				  (unsigned long long)s->len);
	memcpy(h->private_bytes, s->data, s->len);
	h->private_len = s->len;
	h->has_private = true;
	return 0;
}

/* What is not KVM state: kept for the VMM. */
static int take_other(void *ctx, const struct sevm__sect *s)
{
	struct sevm_handoff *h = ctx;

	if (s->id == SEVM_SECT_PRIVATE)
		return take_private(h, s);
	free(h->vmm_state);
	h->vmm_state = malloc(s->len ? s->len : 1);
	if (!h->vmm_state)
		return sevm__fail(-ENOMEM, "VMM state of %llu bytes", (unsigned long long)s->len);
	memcpy(h->vmm_state, s->data, s->len);
	h->vmm_state_len = s->len;
	return 0;
}

/*
 * Restore threads read from the message until the switch ends: it stays, a
 * new one comes.  Room for the usual count (GUEST, one per vCPU, the VM's)
 * at once, so that the blackout pays for one allocation.
 */
static int keep_message(struct sevm_handoff *h)
{
	if (h->nr_kept == h->kept_cap) {
		unsigned int cap = h->kept_cap ? 2 * h->kept_cap : h->nr_vcpus + 2;
		struct sevm__buf *grown = realloc(h->kept, cap * sizeof(*grown));

		if (!grown)
			return sevm__fail(-ENOMEM, "STATE message %u", h->nr_kept + 1);
		h->kept = grown;
		h->kept_cap = cap;
	}
	h->kept[h->nr_kept++] = h->msg.payload;
	memset(&h->msg.payload, 0, sizeof(h->msg.payload));
	return 0;
}

static int receive_state(struct sevm_handoff *h, struct sevm__guest_rx *rx)
{
	while (!sevm__guest_rx_done(rx)) {
		int err = sevm__handoff_expect(h, SEVM_MSG_STATE);
		const struct sevm__buf *m = &h->msg.payload;

		if (!err && h->pool) {
			err = keep_message(h);
			m = &h->kept[h->nr_kept - 1];
		}
		if (!err)
			err = sevm__guest_rx_apply(rx, m->data, m->len);
		if (err)
			return err;
	}
	return 0;
}

/* Run `fn` over a fresh receive context. */
static int with_rx(struct sevm_handoff *h, int (*fn)(struct sevm_handoff *,
						     struct sevm__guest_rx *))
{
	struct sevm__guest_desc g = { .caps = &h->caps, .vm_fd = h->vm_fd,
				      .vcpu_fds = h->vcpu_fds, .nr_vcpus = h->nr_vcpus,
				      .vm_type = h->info.vm_type, .flags = h->info.flags };
	struct sevm__guest_rx rx;
	int err = sevm__guest_rx_init(&rx, &g);

	if (err)
		return err;
	rx.presets = h->presets;
	rx.other = take_other;
	rx.ctx = h;
	rx.pool = h->pool;
	err = fn(h, &rx);
	if (err && h->pool) {
		char why[512];

		/* The threads may still read the messages: done with them first. */
		snprintf(why, sizeof(why), "%s", sevm_last_error());
		sevm__restore_pool_wait(h->pool);
		sevm__set_msg(why);
	}
	while (h->nr_kept)
		sevm__buf_free(&h->kept[--h->nr_kept]);
	sevm__guest_rx_free(&rx);
	return err;
}

/*
 * A sender that died after the whole state arrived can no longer resume the
 * guest; taking it is then the only way to keep it alive.
 */
static bool sender_died(struct sevm_handoff *h, int err, int wait_ms)
{
	if ((err != -ECONNRESET && err != -EPIPE) || !sevm__peer_gone(&h->peer, wait_ms))
		return false;
	sevm__log(SEVM_LOG_WARN, "sender pid %d died with the whole state sent; taking the "
		  "guest", (int)h->peer.pid);
	return true;
}

static int receiver_switch(struct sevm_handoff *h)
{
	int err = with_rx(h, receive_state);
	bool orphan = false;

	if (err)
		return sevm__handoff_fail(h, sevm__context(err, "switch"));
	/*
	 * Whether RESTORED goes or not, what comes back says what the sender
	 * does: GO; an ABORT (it gave up, and resumes the guest); or the end of
	 * a sender that died without either, which nobody else can run now.
	 */
	char unsent[256] = "";

	if (sevm__wire_send(h->sock, SEVM_MSG_RESTORED, NULL, 0, NULL, 0, h->timeout_ms))
		snprintf(unsent, sizeof(unsent), "RESTORED not sent (%s), then ", sevm_last_error());
	/* Nothing runs before GO: without it the sender may still resume the guest. */
	err = sevm__handoff_expect(h, SEVM_MSG_GO);
	if (err && !(orphan = sender_died(h, err, h->timeout_ms))) {
		/* If GO crosses this, the ABORT tells the sender to resume the guest itself. */
		sevm__context(err, "switch: %sno GO from the sender, the guest stays there", unsent);
		return sevm__handoff_fail(h, err);
	}
	/*
	 * GO committed the sender: only now may the encryption context leave its
	 * VM.  Should this fail, our ABORT sends the sender to its own VM, or to
	 * a take back if the context is already here.
	 */
	if (h->sev_type) {
		err = move_context(h);
		if (err)
			return sevm__handoff_fail(h, sevm__context(err, "switch: moving the SEV context"));
	}
	/*
	 * A sender that hears no RESUMED and finds us gone resumes its own copy,
	 * so the guest runs here only once RESUMED is on its way.  Should it not
	 * go, we do not run it: the sender resumes, or takes the SEV context back.
	 */
	err = orphan ? 0 : sevm__wire_send(h->sock, SEVM_MSG_RESUMED, NULL, 0, NULL, 0,
					   h->timeout_ms);
	/* A sender waiting for RESUMED is alive: only one that is dying already counts. */
	if (err && !sender_died(h, err, h->timeout_ms < 100 ? h->timeout_ms : 100))
		return sevm__handoff_fail(h, sevm__context(err, "switch: telling the sender the "
							   "guest runs here"));
	h->step = SEVM_STEP_DONE;
	return 0;
}

int sevm_handoff_switch_receive(struct sevm_handoff *h, const void **vmm_state,
				size_t *vmm_state_len)
{
	int err;

	if (!h || h->sender || h->step != SEVM_STEP_PREPARED)
		return sevm__fail(h && h->step == SEVM_STEP_FAILED ? -EPIPE : -EINVAL,
				  "sevm_handoff_switch_receive: needs a prepared receiver handle");
	err = receiver_switch(h);
	if (err)
		return err;
	if (vmm_state)
		*vmm_state = h->vmm_state;
	if (vmm_state_len)
		*vmm_state_len = h->vmm_state_len;
	return 0;
}

/* What the sender sent, all in one buffer, applied to the fresh VM. */
static int apply_sent(struct sevm_handoff *h, struct sevm__guest_rx *rx)
{
	int err = sevm__guest_rx_apply(rx, h->sent.data, h->sent.len);

	if (!err && !sevm__guest_rx_done(rx))
		err = sevm__fail(-EIO, "the kept state has no END");
	return err;
}

/*
 * The context comes from the receiver's VM — or, after a take back that
 * failed once it had moved, from the VM that take back was given, whose
 * regions are already ours.  Only a move makes the new VM the one to keep.
 */
static int take_back(struct sevm_handoff *h, int vm_fd, const int *vcpu_fds,
		     unsigned int nr_vcpus)
{
	int src = h->ctx_taken ? h->vm_fd : h->peer_vm_fd;
	int err = sevm__regions_set_slots(h->regions, h->nr_regions, vm_fd);

	if (!err)
		err = sevm_sev_move(vm_fd, src);
	if (err)
		return err;
	h->vm_fd = vm_fd;
	memcpy(h->vcpu_fds, vcpu_fds, nr_vcpus * sizeof(int));
	if (!h->ctx_taken)
		err = sevm__regions_encrypt(h->regions, h->nr_regions, vm_fd, h->peer_addrs);
	h->ctx_taken = true;
	return err ? err : with_rx(h, apply_sent);
}

int sevm_handoff_take_back(struct sevm_handoff *h, int vm_fd, const int *vcpu_fds,
			   unsigned int nr_vcpus)
{
	int err;

	if (h && h->sender && h->sev_type && h->step == SEVM_STEP_DONE)
		return sevm__fail(-EIO, "sevm_handoff_take_back: the handoff succeeded; the "
				  "source VM is dead and the receiver runs the guest");
	if (!h || !h->sender || !h->sev_type || h->peer_vm_fd < 0 || !h->sent.len ||
	    h->step != SEVM_STEP_FAILED)
		return sevm__fail(-EINVAL, "sevm_handoff_take_back: only after an SEV switch "
				  "failed with -SEVM_ERR_MOVED");
	if (vm_fd < 0 || !vcpu_fds || nr_vcpus != h->nr_vcpus)
		return sevm__fail(-EINVAL, "sevm_handoff_take_back: a VM with %u vCPUs, as the "
				  "guest had", h->nr_vcpus);
	if (!h->ctx_taken) {
		int perr = 0;
		uint32_t fw = 0;
		enum sevm__sev_answer a = sevm__sev_guest(h->vm_fd, &perr, &fw);

		if (a == SEVM_SEV_UNKNOWN)
			return sevm__context(perr, "sevm_handoff_take_back");
		if (a == SEVM_IS_SEV)
			return sevm__fail(-EINVAL, "sevm_handoff_take_back: SEV GUEST_STATUS reached "
					  "the firmware (status %s): the context never left this VM; "
					  "resume it instead", fw ? sevm_fw_status_name(fw) : "SUCCESS");
	}
	err = take_back(h, vm_fd, vcpu_fds, nr_vcpus);
	/* Done: the kept state goes, and with it any further take back. */
	if (!err)
		sevm__buf_free(&h->sent);
	return sevm__context(err, "take back");
}
