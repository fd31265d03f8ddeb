/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vCPUs restored on several threads.  The vCPUs are independent and every
 * setter costs the same fixed ioctl overhead, so restoring N of them on T
 * CPUs takes about N/T of the time; the threads are made before the
 * blackout (in prepare), so it pays only for the wake-ups.
 */
#ifndef SEVM_KVM_RESTORE_POOL_H
#define SEVM_KVM_RESTORE_POOL_H

#include <stdint.h>

#include "state.h"

struct sevm__restore_pool;

/*
 * Workers that restore into vcpu_fds with caps (both must outlive the
 * pool).  threads counts the caller, who also restores in
 * sevm__restore_pool_wait(): 1 makes no thread at all.
 */
int sevm__restore_pool_new(const struct sevm__kvm_caps *caps, const int *vcpu_fds,
			   unsigned int nr_vcpus, unsigned int threads,
			   struct sevm__restore_pool **out);

/*
 * Queue vCPU `index`, once (img copied; the sections it points at must stay
 * put until the pool is waited for).  A worker picks it up at once.
 */
int sevm__restore_pool_add(struct sevm__restore_pool *p, uint32_t index,
			   const struct sevm__vcpu_image *img, uint64_t expected);

/*
 * Restore what is still queued on this thread too, then wait until every
 * queued vCPU is done: 0, or the first failure, with its message, as the
 * calling thread's.  After a failure the rest of the queue is dropped.
 */
int sevm__restore_pool_wait(struct sevm__restore_pool *p);

void sevm__restore_pool_free(struct sevm__restore_pool *p);

#endif
