/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Messages on the handoff socket (doc/handoff-protocol.md): a 16-byte header
 * {magic, type, nr_fds, len, reserved}, then len payload bytes; the fds ride
 * as SCM_RIGHTS with the header.  Every wait is bounded by a timeout.
 */
#ifndef SEVM_HANDOFF_WIRE_H
#define SEVM_HANDOFF_WIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/buf.h"

#define SEVM_WIRE_MAGIC		0x484d5653u	/* "SVMH" */
#define SEVM_WIRE_HDR_LEN	16
/* SCM_MAX_FD in the kernel: more would be cut off (MSG_CTRUNC). */
#define SEVM_WIRE_MAX_FDS	253
/* Bounds what a peer can make us allocate: a 4096-vCPU state fits. */
#define SEVM_WIRE_MAX_LEN	(256u << 20)

enum sevm__msg_type {
	SEVM_MSG_HELLO = 1,	/* sender: guest, region table, memory fds */
	SEVM_MSG_PREPARED,	/* receiver: memory mapped, slots set */
	SEVM_MSG_STATE,		/* sender: snapshot sections (one vCPU per message) */
	SEVM_MSG_RESTORED,	/* receiver: state applied, waiting for GO */
	SEVM_MSG_GO,		/* sender: committed, it will not run the guest again */
	SEVM_MSG_RESUMED,	/* receiver: running the guest */
	SEVM_MSG_ABORT,		/* either: int32 -errno, then a message */
	SEVM_MSG__END,
};

struct sevm__msg {
	uint16_t type;
	struct sevm__buf payload;
	int fds[SEVM_WIRE_MAX_FDS];
	unsigned int nr_fds;
};

/* Send one message; -ETIMEDOUT when the peer stops reading for timeout_ms. */
int sevm__wire_send(int sock, uint16_t type, const void *payload, size_t len,
		    const int *fds, unsigned int nr_fds, int timeout_ms);

/*
 * Receive one message into m (its payload buffer is reused).  On any error
 * every fd that arrived is closed.  -ECONNRESET when the peer closed the
 * socket, -ETIMEDOUT, -SEVM_ERR_FORMAT for a malformed header, wrong fd
 * count or truncated control data.  spin: look for the message a moment
 * before sleeping, for an answer that comes within microseconds.
 */
int sevm__wire_recv(int sock, struct sevm__msg *m, int timeout_ms, bool spin);

/* Close the fds m still holds (set an entry to -1 to keep it). */
void sevm__msg_close_fds(struct sevm__msg *m);

/*
 * Send ABORT carrying err and the calling thread's last message, and fd
 * (-1: none); best effort.
 */
void sevm__wire_abort(int sock, int err, int fd, int timeout_ms);

/* If m is an ABORT: record the peer's reason and return its error, else 0. */
int sevm__wire_peer_abort(const struct sevm__msg *m);

const char *sevm__msg_name(uint16_t type);

#endif
