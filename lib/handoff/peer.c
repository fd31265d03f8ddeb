/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/error.h"
#include "../core/seam.h"
#include "peer.h"

/*
 * A pidfd, unlike the pid, cannot come to name another process: it is how a
 * sender knows a receiver that stopped answering is really gone.
 */
static void open_pidfd(struct sevm__peer *p)
{
	long fd = p->pid > 0 ? syscall(SYS_pidfd_open, p->pid, 0) : -1;

	p->pidfd = fd < 0 ? -1 : (int)fd;
}

int sevm__peer_check(int sock, sevm_peer_policy_fn policy, void *ctx, struct sevm__peer *p)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int r;

	p->pidfd = -1;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return sevm__fail(-errno, "SO_PEERCRED on the handoff socket (is it a connected UNIX socket?)");
	p->pid = cred.pid;
	p->uid = cred.uid;
	if (policy) {
		r = policy(cred.pid, cred.uid, cred.gid, ctx);
		if (r)
			return sevm__fail(r < 0 ? r : -EPERM, "peer pid %d uid %u refused by the caller's policy",
					  (int)cred.pid, (unsigned int)cred.uid);
	} else if (cred.uid != geteuid()) {
		return sevm__fail(-EPERM, "peer pid %d runs as uid %u, we run as uid %u",
				  (int)cred.pid, (unsigned int)cred.uid, (unsigned int)geteuid());
	}
	open_pidfd(p);
	return 0;
}

void sevm__peer_announced(struct sevm__peer *p, pid_t pid)
{
	if (pid <= 0 || pid == p->pid || (p->pid > 0 && p->pid != getpid()))
		return;
	sevm__peer_release(p);
	p->pid = pid;
	open_pidfd(p);
}

bool sevm__peer_gone(const struct sevm__peer *p, int wait_ms)
{
	struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };
	int r;

	if (p->pidfd < 0)
		return false;
	do
		r = poll(&pfd, 1, wait_ms);
	while (r < 0 && errno == EINTR);
	return r == 1;
}

void sevm__peer_release(struct sevm__peer *p)
{
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
}
