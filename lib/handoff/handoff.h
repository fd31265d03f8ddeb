/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The handoff handle, shared by the setup steps and the switch. */
#ifndef SEVM_HANDOFF_HANDOFF_H
#define SEVM_HANDOFF_HANDOFF_H

#include <pthread.h>
#include <stdbool.h>

#include "../kvm/restore_pool.h"
#include "../kvm/state.h"
#include "peer.h"
#include "regions.h"
#include "wire.h"

#define SEVM_PROTO_MAJOR 1
/*
 * HELLO features: the guest is an SEV or SEV-ES guest whose context moves;
 * its VM fd follows the memory fds, and the receiver's comes in PREPARED.
 */
#define SEVM_FEAT_SEV		(1u << 0)
#define SEVM_FEATS_KNOWN	SEVM_FEAT_SEV
#define SEVM_PROTO_MINOR 0
#define SEVM_DEFAULT_TIMEOUT_MS 10000
/* Far above any VM KVM allows today (KVM_MAX_VCPUS is 4096 on x86). */
#define SEVM_MAX_VCPUS 4096

enum sevm__step {
	SEVM_STEP_NEW,		/* connected; receiver: hello read */
	SEVM_STEP_PREPARED,
	SEVM_STEP_DONE,		/* switched: the receiver owns the guest */
	SEVM_STEP_FAILED,	/* a step failed; only free is left */
};

/* HELLO payload, followed by nr_regions struct sevm__region_wire. */
struct sevm__hello {
	uint16_t major;
	uint16_t minor;
	uint32_t features;	/* SEVM_FEAT_*; unknown bits are refused */
	uint32_t vm_type;
	uint32_t nr_vcpus;
	uint32_t nr_regions;
	uint32_t guest_flags;	/* SEVM_GUEST_* */
	uint32_t pid;		/* the sender's, see sevm__peer_announced() */
	uint32_t reserved;
};

struct sevm_handoff {
	bool sender;
	enum sevm__step step;
	int sock;
	int timeout_ms;
	struct sevm__peer peer;

	int vm_fd;
	int *vcpu_fds;
	unsigned int nr_vcpus;
	struct sevm_guest_info info;

	struct sevm_region *regions;
	unsigned int nr_regions;

	/*
	 * SEV: the other side's VM fd (receiver: the sender's, source of the
	 * MOVE; sender: the receiver's, where the context may be, for a take
	 * back), and the sender's copy of the state it sent.
	 */
	uint32_t sev_type;		/* 0: a plain guest */
	int peer_vm_fd;
	bool ctx_taken;			/* a failed take back left the context in vm_fd */
	uint64_t *peer_addrs;		/* where the other side has each region mapped */
	struct sevm__buf sent;

	struct sevm__kvm_caps caps;
	struct sevm__vcpu_preset *presets;	/* receiver: per vCPU, read in prepare */

	/*
	 * Sender: the vCPUs sent so far, by their own threads or the switch
	 * (capture.c); the first failure, which ends the sending, and why.
	 */
	pthread_mutex_t tx_lock;
	bool *vcpu_sent;
	bool guest_sent;
	uint64_t vcpu_items;		/* the first vCPU's, named by GUEST */
	uint32_t tx_sections;		/* sent so far, for END */
	uint64_t tx_payload;
	int tx_err;
	char tx_msg[512];

	/*
	 * Receiver: the threads restoring vCPUs (NULL: the calling one alone),
	 * and the STATE messages they read from until the switch ends.
	 */
	unsigned int restore_threads;	/* asked in the options; 0: the default */
	struct sevm__restore_pool *pool;
	struct sevm__buf *kept;
	unsigned int nr_kept, kept_cap;

	struct sevm__msg msg;
	struct sevm__buf out;
	void *vmm_state;
	size_t vmm_state_len;

	/*
	 * The private-page record: the sender's bitmap (the VMM's, serialized
	 * at the switch), the receiver's copy of the section's bytes.
	 */
	const struct sevm_bitmap *private_pages;
	void *private_bytes;
	size_t private_len;
	bool has_private;
};

/* Options checked before a connection is spent on them; *out is NULL on failure. */
int sevm__handoff_check_args(const struct sevm_handoff_opts *opts, struct sevm_handoff **out,
			     const char *fn);
/* The caller's options, an older caller's missing fields as zero, defaults filled in. */
struct sevm_handoff_opts sevm__handoff_opts(const struct sevm_handoff_opts *opts);

/* HELLO and PREPARED (hello.c): read and checked, or built and sent. */
int sevm__hello_read(struct sevm_handoff *h);
int sevm__hello_send(struct sevm_handoff *h);
int sevm__prepared_take(struct sevm_handoff *h);
int sevm__prepared_send(struct sevm_handoff *h);

/* Send one STATE message; an SEV sender keeps a copy for a take back. */
int sevm__handoff_send_state(struct sevm_handoff *h, const void *data, size_t len);

/*
 * Capture vCPU i with caps (sync: what a KVM_RUN handed back, or NULL) and
 * send it, GUEST first if nothing went yet;
 * the first failure also ends every later send (tx_err).
 */
int sevm__handoff_send_vcpu(struct sevm_handoff *h, unsigned int i, struct sevm__kvm_caps *caps,
			    const struct kvm_sync_regs *sync);

/* Wait for a message of `type`; the peer's ABORT comes back as its error. */
int sevm__handoff_expect(struct sevm_handoff *h, uint16_t type);

/* For a send that failed because the peer closed: the peer's ABORT, if it sent one, else err. */
int sevm__handoff_why_closed(struct sevm_handoff *h, int err);

/* Mark h failed and, while the peer may still be waiting, tell it why. */
int sevm__handoff_fail(struct sevm_handoff *h, int err);

#endif
