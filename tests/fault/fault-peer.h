/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the plain handoff sweeps and their peer process (fault-peer) agree on. */
#ifndef SEVM_FAULT_PEER_H
#define SEVM_FAULT_PEER_H

/* A small guest: two vCPUs, 4 MiB. */
#define PEER_VCPUS	2
#define PEER_MEM	(4u << 20)

/* Each wait on the other side; a sweep case that waits it out costs this much. */
#define PEER_TIMEOUT_MS	3000

/* fault-peer exit statuses besides 0 (done) and 1 (this side failed). */
#define PEER_ROLLED_BACK 3	/* send: the handoff failed, the guest runs on here */
#define PEER_BROKEN	4	/* a guest that should run here does not */
#define PEER_INDOUBT	5	/* send: -SEVM_ERR_INDOUBT, the guest stays paused */

#endif
