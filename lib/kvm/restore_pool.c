/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "restore_pool.h"

struct job {
	uint32_t index;
	uint64_t expected;
	struct sevm__vcpu_image img;
};

struct sevm__restore_pool {
	const struct sevm__kvm_caps *caps;
	const int *vcpu_fds;
	pthread_mutex_t lock;
	pthread_cond_t more;		/* a job was queued, or stop */
	pthread_cond_t idle;		/* done caught up with queued */
	struct job *jobs;		/* each vCPU is queued once: nr_vcpus slots */
	unsigned int nr_vcpus;
	unsigned int head, queued, done;
	bool stop;
	int err;
	char msg[512];			/* the failed worker's message */
	unsigned int nr_threads;
	pthread_t *threads;
};

/* Called and returns with p->lock held; restores one job without it. */
static void run_one(struct sevm__restore_pool *p)
{
	struct job *j = &p->jobs[p->head++];
	int err;

	pthread_mutex_unlock(&p->lock);
	err = sevm__vcpu_restore(p->caps, p->vcpu_fds[j->index], j->index, &j->img,
				 j->expected);
	pthread_mutex_lock(&p->lock);
	p->done++;
	if (err && !p->err) {
		p->err = err;
		snprintf(p->msg, sizeof(p->msg), "%s", sevm_last_error());
		/* Nothing more runs: the guest will not be taken anyway. */
		p->done += p->queued - p->head;
		p->head = p->queued;
	}
	if (p->done == p->queued)
		pthread_cond_broadcast(&p->idle);
}

static void *worker(void *arg)
{
	struct sevm__restore_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && p->head == p->queued)
			pthread_cond_wait(&p->more, &p->lock);
		if (p->stop)
			break;
		run_one(p);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* The VMM's signals are for its own threads, never for ours. */
static int start_threads(struct sevm__restore_pool *p, unsigned int n)
{
	sigset_t all, old;
	int r = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; p->nr_threads < n; p->nr_threads++) {
		r = pthread_create(&p->threads[p->nr_threads], NULL, worker, p);
		if (r)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r ? sevm__fail(-r, "restore thread %u of %u", p->nr_threads + 1, n) : 0;
}

int sevm__restore_pool_new(const struct sevm__kvm_caps *caps, const int *vcpu_fds,
			   unsigned int nr_vcpus, unsigned int threads,
			   struct sevm__restore_pool **out)
{
	struct sevm__restore_pool *p = calloc(1, sizeof(*p));
	unsigned int n = threads > 1 ? threads - 1 : 0;
	int err;

	*out = NULL;
	if (!p)
		return sevm__fail(-ENOMEM, "restore pool");
	p->caps = caps;
	p->vcpu_fds = vcpu_fds;
	p->nr_vcpus = nr_vcpus;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->more, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->jobs = calloc(nr_vcpus ? nr_vcpus : 1, sizeof(*p->jobs));
	p->threads = calloc(n ? n : 1, sizeof(*p->threads));
	err = p->jobs && p->threads ? start_threads(p, n) :
				      sevm__fail(-ENOMEM, "restore pool of %u vCPUs", nr_vcpus);
	if (err) {
		sevm__restore_pool_free(p);
		return err;
	}
	*out = p;
	return 0;
}

int sevm__restore_pool_add(struct sevm__restore_pool *p, uint32_t index,
			   const struct sevm__vcpu_image *img, uint64_t expected)
{
	pthread_mutex_lock(&p->lock);
	if (p->queued == p->nr_vcpus) {
		pthread_mutex_unlock(&p->lock);
		return sevm__fail(-EINVAL, "vCPU %u: more vCPUs queued than the guest has", index);
	}
	p->jobs[p->queued++] = (struct job){ .index = index, .expected = expected, .img = *img };
	/* After a failure the rest is dropped as it comes. */
	if (p->err) {
		p->head = p->queued;
		p->done++;
	} else {
		pthread_cond_signal(&p->more);
	}
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int sevm__restore_pool_wait(struct sevm__restore_pool *p)
{
	int err;

	pthread_mutex_lock(&p->lock);
	while (p->head != p->queued)
		run_one(p);
	while (p->done != p->queued)
		pthread_cond_wait(&p->idle, &p->lock);
	err = p->err;
	if (err)
		sevm__set_msg(p->msg);
	pthread_mutex_unlock(&p->lock);
	return err;
}

void sevm__restore_pool_free(struct sevm__restore_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->more);
	pthread_mutex_unlock(&p->lock);
	for (unsigned int i = 0; i < p->nr_threads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->more);
	pthread_cond_destroy(&p->idle);
	free(p->jobs);
	free(p->threads);
	free(p);
}
