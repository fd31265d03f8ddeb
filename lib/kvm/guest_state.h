/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A whole guest's KVM state as bare snapshot sections: a GUEST section that
 * names the per-vCPU items, every vCPU's sections, the VM-wide sections, END.
 * The intra-host handoff streams it one vCPU per message; the remote
 * migration stream carries it in STATE records, cut the same way.  Both ends
 * share this.
 */
#ifndef SEVM_KVM_GUEST_STATE_H
#define SEVM_KVM_GUEST_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "state.h"

struct sevm__restore_pool;

struct sevm__guest_desc {
	struct sevm__kvm_caps *caps;
	int vm_fd;
	const int *vcpu_fds;
	unsigned int nr_vcpus;
	uint32_t vm_type;
	uint32_t flags;		/* SEVM_GUEST_* */
};

/*
 * Append GUEST and every vCPU's sections to w.  flush (may be NULL) runs
 * after GUEST with vCPU 0 and after each later vCPU, so that a caller can
 * ship what w holds and reset its buffer.
 */
int sevm__guest_capture_vcpus(const struct sevm__guest_desc *g, struct sevm__snap_writer *w,
			      int (*flush)(void *ctx), void *ctx);

/* The GUEST section: every vCPU's sections name vcpu_items (SEVM__VCPU_ITEM bits). */
int sevm__guest_put_header(const struct sevm__guest_desc *g, uint64_t vcpu_items,
			   struct sevm__snap_writer *w);

/* 0 when vCPU i captured the items the first one did, else -EIO saying so. */
int sevm__guest_same_items(unsigned int i, uint64_t items, uint64_t first);

/*
 * The receiving side: sections in any split across calls of
 * sevm__guest_rx_apply(), each vCPU restored once its sections are all in,
 * the VM-wide sections after every vCPU.  Sections that are not KVM state
 * (PRIVATE, VMM) go to `other`.
 */
struct sevm__guest_rx {
	struct sevm__guest_desc g;
	const struct sevm__vcpu_preset *presets;	/* per vCPU, or NULL */
	int (*other)(void *ctx, const struct sevm__sect *s);
	void *ctx;
	/*
	 * NULL: each vCPU is restored as its sections are in.  Else queued to
	 * these threads, and waited for before the VM-wide sections and at END;
	 * the input given to sevm__guest_rx_apply() must then stay until then.
	 */
	struct sevm__restore_pool *pool;
	struct sevm__snap_reader r;
	uint64_t expected;
	bool have_guest;
	bool *restored;
	unsigned int nr_restored;
	struct sevm__vcpu_image *img;
};

int sevm__guest_rx_init(struct sevm__guest_rx *rx, const struct sevm__guest_desc *g);
void sevm__guest_rx_free(struct sevm__guest_rx *rx);
int sevm__guest_rx_apply(struct sevm__guest_rx *rx, const void *data, size_t len);
/* END was read: every vCPU and the VM state are restored. */
static inline bool sevm__guest_rx_done(const struct sevm__guest_rx *rx)
{
	return rx->r.ended;
}

#endif
