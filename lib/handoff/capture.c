/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sender's vCPUs on their way, one STATE message each: sent by a vCPU's
 * own thread as it pauses (sevm_handoff_capture_vcpu), or by the switch for
 * those that were not.  KVM lets no thread read a vCPU that is inside
 * KVM_RUN, so the thread that has just left it is the first that can; with
 * every vCPU thread capturing at once, capture overlaps the pause, spreads
 * over the CPUs, and the receiver restores the first vCPUs while the last
 * ones still pause.  The first message is the GUEST section alone, naming
 * the items of whichever vCPU came first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../kvm/guest_state.h"
#include "handoff.h"

/*
 * An SEV sender keeps what it sent: if the context moves and the receiver
 * then fails, sevm_handoff_take_back() restores it into a fresh VM.
 */
int sevm__handoff_send_state(struct sevm_handoff *h, const void *data, size_t len)
{
	if (h->sev_type) {
		void *p = sevm__buf_grow(&h->sent, len);

		if (!p)
			return sevm__fail(-ENOMEM, "copy of the state for a take back");
		memcpy(p, data, len);
	}
	return sevm__wire_send(h->sock, SEVM_MSG_STATE, data, len, NULL, 0, h->timeout_ms);
}

/* END counts every section sent before it, in whichever message. */
static int send_counted(struct sevm_handoff *h, const struct sevm__snap_writer *w)
{
	int err = sevm__handoff_send_state(h, w->buf->data, w->buf->len);

	if (!err) {
		h->tx_sections += w->nr_sections;
		h->tx_payload += w->payload_bytes;
	}
	return err;
}

static int send_guest(struct sevm_handoff *h, uint64_t items)
{
	struct sevm__guest_desc g = { .nr_vcpus = h->nr_vcpus, .vm_type = h->info.vm_type,
				      .flags = h->info.flags };
	struct sevm__buf b = { 0 };
	struct sevm__snap_writer w;
	int err;

	sevm__snap_sections(&w, &b);
	err = sevm__guest_put_header(&g, items, &w);
	if (!err)
		err = send_counted(h, &w);
	sevm__buf_free(&b);
	return err;
}

/* With tx_lock held: one failure ends the sending, and the switch reports the first. */
static void stop_sending(struct sevm_handoff *h, int err)
{
	if (err && !h->tx_err) {
		h->tx_err = err;
		snprintf(h->tx_msg, sizeof(h->tx_msg), "%s", sevm_last_error());
	}
}

/* A vCPU thread's failure before it had anything to send: the handoff ends all the same. */
static int vcpu_failed(struct sevm_handoff *h, unsigned int i, int err)
{
	sevm__context(err, "vCPU %u", i);
	pthread_mutex_lock(&h->tx_lock);
	stop_sending(h, err);
	pthread_mutex_unlock(&h->tx_lock);
	return err;
}

/* With tx_lock held. */
static int ship(struct sevm_handoff *h, unsigned int i, const struct sevm__snap_writer *w,
		uint64_t items)
{
	int err = 0;

	if (h->tx_err)
		return sevm__fail(-EPIPE, "vCPU %u not sent: %s", i, h->tx_msg);
	/* Its first state may be stale at the receiver by now: nothing can fix that. */
	if (h->vcpu_sent[i])
		return sevm__fail(-EALREADY, "vCPU %u was captured and sent already; a vCPU "
				  "that ran again since needs a new handoff", i);
	if (!h->guest_sent) {
		err = send_guest(h, items);
		h->vcpu_items = items;
		h->guest_sent = !err;
	} else {
		err = sevm__guest_same_items(i, items, h->vcpu_items);
	}
	if (!err)
		err = send_counted(h, w);
	h->vcpu_sent[i] = !err;
	return err;
}

int sevm__handoff_send_vcpu(struct sevm_handoff *h, unsigned int i, struct sevm__kvm_caps *caps,
			    const struct kvm_sync_regs *sync)
{
	struct sevm__buf b = { 0 };
	struct sevm__snap_writer w;
	uint64_t items = 0;
	int err;

	sevm__snap_sections(&w, &b);
	err = sevm__vcpu_capture_synced(caps, h->vcpu_fds[i], i, sync, &w, &items);
	pthread_mutex_lock(&h->tx_lock);
	if (!err)
		err = ship(h, i, &w, items);
	stop_sending(h, err);
	pthread_mutex_unlock(&h->tx_lock);
	sevm__buf_free(&b);
	return err;
}

/*
 * With the vCPU's kvm_run, one KVM_RUN that returns at once completes the
 * last exit's instruction (as sevm_vcpu_quiesce()) and hands back three
 * items, each of whose getters would cost as much as that whole KVM_RUN.
 * It must come from the vCPU's own thread: KVM_RUN from another one makes
 * KVM wait for an RCU grace period.
 */
static int quiesce(struct sevm_handoff *h, unsigned int i, void *run,
		   struct kvm_sync_regs *sync, bool *synced)
{
	*synced = false;
	if (!run)
		return 0;
	if (h->caps.protected_state || (h->caps.sync_regs & SEVM__SYNC_FIELDS) != SEVM__SYNC_FIELDS)
		return sevm_vcpu_quiesce(h->vcpu_fds[i], run);
	return sevm__vcpu_quiesce_sync(h->vcpu_fds[i], run, sync, synced);
}

int sevm_handoff_capture_vcpu(struct sevm_handoff *h, unsigned int i, void *run)
{
	struct sevm__kvm_caps caps;
	struct kvm_sync_regs sync;
	bool synced;
	int err;

	if (!h || !h->sender || h->step != SEVM_STEP_PREPARED)
		return sevm__fail(h && h->step == SEVM_STEP_FAILED ? -EPIPE : -EINVAL,
				  "sevm_handoff_capture_vcpu: needs a prepared sender handle");
	if (i >= h->nr_vcpus)
		return sevm__fail(-EINVAL, "sevm_handoff_capture_vcpu: no vCPU %u (the guest has "
				  "%u)", i, h->nr_vcpus);
	/*
	 * A vCPU whose instruction may be unfinished must not be captured, by
	 * the switch either: a failed quiesce ends the handoff as well.
	 */
	err = quiesce(h, i, run, &sync, &synced);
	if (err)
		return sevm__context(vcpu_failed(h, i, err), "sevm_handoff_capture_vcpu");
	/*
	 * Capture narrows the MSR list when one does not read back: each thread
	 * narrows its own copy, so that none changes the list under another.
	 */
	caps = h->caps;
	caps.msrs = malloc((h->caps.nr_msrs ? h->caps.nr_msrs : 1) * sizeof(*caps.msrs));
	if (!caps.msrs)
		return vcpu_failed(h, i, sevm__fail(-ENOMEM, "sevm_handoff_capture_vcpu: MSR list"));
	memcpy(caps.msrs, h->caps.msrs, h->caps.nr_msrs * sizeof(*caps.msrs));
	err = sevm__handoff_send_vcpu(h, i, &caps, synced ? &sync : NULL);
	free(caps.msrs);
	return sevm__context(err, "sevm_handoff_capture_vcpu");
}
