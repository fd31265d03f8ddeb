/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who is at the other end of the handoff socket, and is it still alive. */
#ifndef SEVM_HANDOFF_PEER_H
#define SEVM_HANDOFF_PEER_H

#include <stdbool.h>
#include <sys/types.h>

#include "sevmigrate.h"

struct sevm__peer {
	pid_t pid;
	uid_t uid;
	int pidfd;	/* -1 when the pid is not visible from here */
};

/*
 * SO_PEERCRED on sock: a peer of another uid is refused (-EPERM) unless
 * policy accepts it.  Opens a pidfd so the peer's death can be told apart
 * from a slow peer later.
 */
int sevm__peer_check(int sock, sevm_peer_policy_fn policy, void *ctx, struct sevm__peer *p);

/*
 * The pid the peer says it has.  SO_PEERCRED names whoever created the
 * socket, which for a socketpair is this very process: then, and only
 * then, the peer's own word is the best there is.
 */
void sevm__peer_announced(struct sevm__peer *p, pid_t pid);

/*
 * True only when the peer process has certainly exited, waiting up to
 * wait_ms for it: a dying process closes its sockets before its exit is
 * signalled, so EOF from a crashing peer comes a moment before this.
 */
bool sevm__peer_gone(const struct sevm__peer *p, int wait_ms);

void sevm__peer_release(struct sevm__peer *p);

#endif
