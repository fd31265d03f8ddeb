/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-handoff: one handoff.  This process is the old VMM; for every
 * handoff it forks and execs itself as the new VMM (the hidden --role new,
 * as examples/vmm-upgrade does), so the two VMMs are separate processes
 * with separate mm.  The old VMM boots a tinyvm guest on the cell's memfd,
 * lets every vCPU beat, and hands the guest over; the new VMM runs it until
 * every vCPU beat twice more, checks that no heartbeat was lost or repeated,
 * and reports its CLOCK_MONOTONIC stamps, which are host-wide and so compare
 * with this process's.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "handoff.h"
#include "handoff-trace.h"
#include "raw-floor.h"
#include "tinyvm-handoff.h"

#define PERIOD		256u		/* heartbeat period: a beat every few ms per vCPU */
#define BEATS_AFTER	2u		/* beats every vCPU must show in the new VMM */
#define BEAT_WAIT_MS	30000		/* 256 vCPUs share 2 CPUs: be patient */
#define LIB_TIMEOUT_MS	PEER_WAIT_MS	/* each wait on the peer; 10 s is short at 1 TiB */

const char *bench_argv0;

/* ---- Small things ------------------------------------------------------- */

double ms_between(uint64_t from, uint64_t to)
{
	return ((double)to - (double)from) / 1e6;
}

/* NAN unless both stamps were taken. */
static double ms_if(uint64_t from, uint64_t to)
{
	return from && to ? ms_between(from, to) : NAN;
}

static uint64_t later(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Until every vCPU beat n more times in this VMM; false after BEAT_WAIT_MS. */
static bool beats_advance(const struct tinyvm *vm, unsigned int n)
{
	uint64_t before[TINYVM_MAX_VCPUS], deadline = now_ns() + BEAT_WAIT_MS * 1000000ull;
	unsigned int nr = vm->nr_vcpus;

	for (unsigned int i = 0; i < nr; i++)
		before[i] = tinyvm_heartbeats(vm, i);
	do {
		unsigned int done = 0;

		for (unsigned int i = 0; i < nr; i++)
			done += tinyvm_heartbeats(vm, i) >= before[i] + n;
		if (done == nr)
			return true;
		sleep_ns(1000000);
	} while (now_ns() < deadline);
	return false;
}

/* ---- Children ------------------------------------------------------------ */

static void close_pair(int sv[2])
{
	close(sv[0]);
	close(sv[1]);
}

/* Our end, sv[0], waits at most PEER_WAIT_MS: a hung child fails its run, not the benchmark. */
static int channel(int sv[2])
{
	int err;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return neg_errno();
	err = peer_timeouts(sv[0]);
	if (err)
		close_pair(sv);
	return err;
}

int spawn(const char *role, const char *mode, uint64_t size, struct child *ch)
{
	int sv[2], cv[2], err = channel(sv);

	if (err)
		return err;
	err = channel(cv);
	if (err) {
		close_pair(sv);
		return err;
	}
	ch->pid = fork();
	if (ch->pid == 0) {
		char sock[16], ctl[16], sz[24];

		/* dup drops CLOEXEC: only these two cross the exec. */
		snprintf(sock, sizeof(sock), "%d", dup(sv[1]));
		snprintf(ctl, sizeof(ctl), "%d", dup(cv[1]));
		snprintf(sz, sizeof(sz), "%" PRIu64, size);
		execl("/proc/self/exe", bench_argv0, "--role", role, "--mode", mode, "--sock", sock,
		      "--ctl", ctl, "--size", sz, (char *)NULL);
		perror("bench-handoff: exec");
		_exit(127);
	}
	if (ch->pid < 0) {
		err = neg_errno();
		close_pair(sv);
		close_pair(cv);
		return err;
	}
	close(sv[1]);
	close(cv[1]);
	ch->sock = sv[0];
	ch->ctl = cv[0];
	return 0;
}

/*
 * waitpid() within PEER_WAIT_MS: the pid, 0 if the child still runs, or
 * -errno.  A pidfd (Linux 5.3) says exactly when the child exits; without
 * one the wait is not bounded, as before pidfds.
 */
static pid_t wait_within(pid_t pid, int *status)
{
	struct pollfd p = { .fd = (int)syscall(SYS_pidfd_open, pid, 0), .events = POLLIN };
	pid_t r;

	if (p.fd >= 0) {
		int ready;

		while ((ready = poll(&p, 1, PEER_WAIT_MS)) < 0 && errno == EINTR)
			;
		close(p.fd);
		if (ready == 0)
			return 0;
	}
	while ((r = waitpid(pid, status, 0)) < 0 && errno == EINTR)
		;
	return r < 0 ? neg_errno() : r;
}

int reap(struct child *ch)
{
	int status = 0;
	pid_t r;

	if (ch->sock >= 0)
		close(ch->sock);
	close(ch->ctl);
	r = wait_within(ch->pid, &status);
	if (r == 0) {
		fprintf(stderr, "bench-handoff: child %d still ran %d s after its channels closed; "
			"killed\n", (int)ch->pid, PEER_WAIT_MS / 1000);
		kill(ch->pid, SIGKILL);
		while (waitpid(ch->pid, &status, 0) < 0 && errno == EINTR)
			;
		return -ETIMEDOUT;
	}
	if (r < 0)
		return r;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -ECHILD;
}

/*
 * The blackout ends when the new VMM lets its vCPU threads run: tinyvm
 * stamps that before it wakes them (vm->resume_ns), because the threads it
 * wakes preempt it on 2 CPUs and a stamp taken after the wake-up came 4 ms
 * ticks late (150 ms with 64 vCPUs).  So the new VMM is an ordinary process
 * inside the blackout, as a real one is.  --fifo runs its control thread
 * SCHED_FIFO throughout instead, as this benchmark did before: a woken
 * SCHED_FIFO thread goes back to the CPU it last ran on and preempts
 * whatever runs there, so when the old VMM's capture wakes it there, the
 * staged pipeline runs on one CPU.  SCHED_RESET_ON_FORK keeps the vCPU
 * threads it creates ordinary either way.
 */
const char *new_vmm_fifo(void)
{
	struct sched_param sp = { .sched_priority = 1 };

	if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) == 0)
		return "SCHED_FIFO throughout (--fifo)";
	return "ordinary (SCHED_FIFO not permitted)";
}

/*
 * Before the blackout the new VMM builds its VM while the old VMM's guest
 * runs.  With 256 busy vCPU threads on 2 CPUs an ordinary thread got so
 * little CPU that building 256 vCPUs took 9 s of every handoff.  So the
 * control thread runs SCHED_FIFO until its preparation is done, and drops
 * to ordinary just before it says so (PREPARED or READY): the old VMM
 * pauses only when that arrives, so the blackout sees an ordinary process.
 */
static void preparation_ends(void)
{
	sched_setscheduler(0, SCHED_OTHER, &(struct sched_param){ 0 });
}

/* ---- The new VMM (a child) ------------------------------------------------ */

/* What the new VMM tells the old one once the guest ran on there. */
struct report {
	int32_t err;		/* 0: took the guest and it beat on exactly */
	uint32_t pad;
	uint64_t errors;	/* tinyvm_total_errors() there */
	uint64_t pause_ns;	/* the old VMM's, as it travelled */
	uint64_t received_ns;	/* raw: the whole array in */
	uint64_t restored_ns;	/* raw: every item set */
	uint64_t switched_ns;	/* staged: sevm_handoff_switch_receive() returned */
	uint64_t released_ns;	/* tinyvm_resume() let the vCPU threads run (before waking them) */
	uint64_t run_first, run_last;	/* the vCPU threads' first KVM_RUN: earliest, latest */
	uint64_t ran_last;	/* the latest of their first exits */
	bool traced;
	bool fifo;		/* --fifo: SCHED_FIFO throughout, not only while preparing */
	bool one_thread;	/* --one-thread */
	struct trace_side trace;	/* staged, traced: the new VMM's calls since the pause */
};

static const struct sevm_handoff_opts lib_opts = {
	.sz = sizeof(lib_opts), .timeout_ms = LIB_TIMEOUT_MS,
};

/* --one-thread: the new VMM restores on the calling thread alone. */
static const struct sevm_handoff_opts lib_opts_one = {
	.sz = sizeof(lib_opts_one), .timeout_ms = LIB_TIMEOUT_MS, .restore_threads = 1,
};

static void vcpu_fds(const struct tinyvm *vm, int *fds)
{
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		fds[i] = vm->vcpus[i].fd;
}

static int receive_lib(int sock, struct tinyvm *vm, struct report *rep)
{
	struct tinyvm_handoff_times t = { .verify_ram = false };
	struct sevm_handoff *h;
	int err = sevm_handoff_from_fd(sock, false, rep->one_thread ? &lib_opts_one : &lib_opts,
				       &h);

	if (err) {
		fprintf(stderr, "bench new VMM: %s\n", sevm_last_error());
		close(sock);
		return err;
	}
	if (rep->traced)
		trace_arm();
	err = tinyvm_handoff_receive(vm, h, &t);
	trace_disarm();
	if (err)
		fprintf(stderr, "bench new VMM: taking the guest: %s\n",
			err == -EIO || err == -EPROTO ? strerror(-err) : sevm_last_error());
	sevm_handoff_free(h);
	rep->pause_ns = t.pause_ns;
	rep->switched_ns = t.switched_ns;
	rep->released_ns = vm->resume_ns;
	return err;
}

static int receive_raw(int sock, struct tinyvm *vm, struct report *rep)
{
	struct raw_floor_times t = { 0 };
	int err = raw_floor_receive(sock, vm, rep->fifo ? NULL : preparation_ends, &t);

	close(sock);
	rep->pause_ns = t.pause_ns;
	rep->received_ns = t.received_ns;
	rep->restored_ns = t.restored_ns;
	rep->released_ns = vm->resume_ns;
	return err;
}

/* When the released vCPUs first entered KVM_RUN, and when each had run. */
static void run_stamps(const struct tinyvm *vm, struct report *rep)
{
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		uint64_t run, ran;

		tinyvm_run_stamps(vm, i, &run, &ran);
		if (!rep->run_first || run < rep->run_first)
			rep->run_first = run;
		rep->run_last = run > rep->run_last ? run : rep->run_last;
		rep->ran_last = ran > rep->ran_last ? ran : rep->ran_last;
	}
}

/* The guest must go on here exactly where it stopped there: a fake handoff fails this. */
int new_vmm_main(const char *mode, int sock, int ctl)
{
	bool lib = !strncmp(mode, "lib", 3);
	struct tinyvm vm = { 0 };
	struct report rep = { .traced = lib && strstr(mode, "+trace"),
			      .fifo = strstr(mode, "+fifo"), .one_thread = strstr(mode, "+one") };
	int fds[TINYVM_MAX_VCPUS];

	new_vmm_fifo();
	/* The backend also tells when the library is about to send PREPARED. */
	if (lib && trace_install()) {
		rep.traced = false;
		if (!rep.fifo)
			preparation_ends();
	} else if (lib && !rep.fifo) {
		trace_before_prepared(preparation_ends);
	}
	rep.err = lib ? receive_lib(sock, &vm, &rep) : receive_raw(sock, &vm, &rep);
	if (!rep.err && !beats_advance(&vm, BEATS_AFTER)) {
		fprintf(stderr, "bench new VMM: the guest did not beat on within %d ms\n",
			BEAT_WAIT_MS);
		rep.err = -ETIMEDOUT;
	}
	rep.errors = tinyvm_total_errors(&vm);
	if (!rep.err)
		run_stamps(&vm, &rep);
	if (!rep.err && rep.traced) {
		vcpu_fds(&vm, fds);
		trace_summarise(rep.pause_ns, vm.vm_fd, fds, vm.nr_vcpus, &rep.trace);
	}
	write_all(ctl, &rep, sizeof(rep));
	tinyvm_destroy(&vm);
	return rep.err || rep.errors ? 1 : 0;
}

/* ---- The old VMM: one handoff -------------------------------------------- */

/* The guest, on the cell's memory: loaded, and for the raw floor its MSRs learned. */
static int boot_old(struct tinyvm *vm, const struct handoff_cfg *c, struct raw_floor_old *raw,
		    int sock)
{
	int err = tinyvm_create_shell(vm, c->vcpus, c->mem_fd, c->mem_size, TINYVM_F_PIT);

	if (err)
		return err;
	err = tinyvm_load_guest(vm, PERIOD);
	if (!err && raw)
		err = raw_floor_old_init(raw, vm, sock);
	if (!err)
		err = tinyvm_start(vm);
	/* A guest that ran: every vCPU has a heartbeat the new VMM must continue from. */
	if (!err && !beats_advance(vm, 1))
		err = -ETIMEDOUT;
	/*
	 * Then, as the library's prepare does, offer the guest and sleep until
	 * the new VMM is ready: the pause follows that wait in both modes.  (How
	 * long this thread slept decides how soon the scheduler lets it kick
	 * busy vCPU threads: after 1 ms naps the pause took 4 ms ticks.)
	 */
	if (!err && raw)
		err = raw_floor_offer(raw);
	return err;
}

static int send_lib(struct tinyvm *vm, struct child *ch, bool traced, bool one_thread,
		    struct tinyvm_handoff_times *t, struct trace_side *old)
{
	int fds[TINYVM_MAX_VCPUS];
	struct sevm_handoff *h;
	int err = sevm_handoff_from_fd(ch->sock, true, &lib_opts, &h);

	if (err)
		return err;
	ch->sock = -1;		/* the handle has it now */
	t->verify_ram = false;	/* checksums are no part of a blackout */
	t->capture_in_switch = one_thread;
	if (traced)
		trace_arm();
	err = tinyvm_handoff_send(vm, h, t);
	trace_disarm();
	if (err)
		fprintf(stderr, "bench-handoff: library handoff: %s\n", sevm_last_error());
	sevm_handoff_free(h);
	/* From the pause on: vCPU threads may capture while it is under way. */
	if (!err && traced) {
		vcpu_fds(vm, fds);
		trace_summarise(t->pause_ns, vm->vm_fd, fds, vm->nr_vcpus, old);
	}
	return err;
}

static void fill_common(const struct report *rep, uint64_t paused_ns, struct sample *s)
{
	for (int i = 0; i < NR_FIGS; i++)
		s->f[i] = NAN;
	s->f[F_BLACKOUT] = ms_between(rep->pause_ns, rep->released_ns);
	s->f[F_STOP] = ms_between(rep->pause_ns, paused_ns);
	s->f[F_RUN_FIRST] = ms_if(rep->released_ns, rep->run_first);
	s->f[F_RUN_ALL] = ms_if(rep->released_ns, rep->run_last);
	s->f[F_RAN_ALL] = ms_if(rep->released_ns, rep->ran_last);
}

static void fill_raw(const struct report *rep, const struct raw_floor_times *t, struct sample *s)
{
	fill_common(rep, t->paused_ns, s);
	s->f[F_CAPTURE] = ms_between(t->paused_ns, t->captured_ns);
	s->f[F_TRANSFER] = ms_between(t->captured_ns, rep->received_ns);
	s->f[F_RESTORE] = ms_between(rep->received_ns, rep->restored_ns);
	s->f[F_RELEASE] = ms_between(rep->restored_ns, rep->released_ns);
}

/* What each side did inside the blackout, as its calls show. */
static void fill_lib_work(const struct trace_side *o, const struct trace_side *n,
			  const struct handoff_cfg *c, struct sample *s)
{
	s->f[F_O_SPAN] = ms_if(o->first_ioctl, o->last_ioctl);
	s->f[F_N_SPAN] = ms_if(n->first_ioctl, n->last_ioctl);
	s->f[F_O_IOCTL] = (double)o->ioctl_ns / 1e6;
	s->f[F_N_IOCTL] = (double)n->ioctl_ns / 1e6;
	s->f[F_O_THREADS] = o->ioctl_threads;
	s->f[F_N_THREADS] = n->ioctl_threads;
	s->f[F_O_PER_VCPU] = (double)o->ioctls / c->vcpus;
	s->f[F_N_PER_VCPU] = (double)n->ioctls / c->vcpus;
	s->f[F_O_SOCK] = (double)o->sock_ns / 1e6;
	s->f[F_N_SOCK] = (double)n->sock_ns / 1e6;
	s->f[F_MSGS] = n->state_msgs;
	s->f[F_KIB] = (double)n->state_bytes / 1024;
	s->f[F_TRACE] = (o->calls + n->calls) * c->trace_cost_ns / 1e6;
	s->f[F_ONE_CPU] = o->cpu >= 0 && o->cpu == n->cpu;
}

/* The staged handoff's two sides; the traced figures only when both traces are whole. */
static void fill_lib(const struct report *rep, const struct tinyvm_handoff_times *t,
		     const struct trace_side *o, const struct handoff_cfg *c, struct sample *s)
{
	const struct trace_side *n = &rep->trace;
	uint64_t p = rep->pause_ns, captured;

	fill_common(rep, t->paused_ns, s);
	s->f[F_RELEASE] = ms_between(rep->switched_ns, rep->released_ns);
	s->f[F_O_SWITCHED] = ms_between(p, t->switched_ns);
	s->f[F_N_SWITCHED] = ms_between(p, rep->switched_ns);
	if (!rep->traced || !o->complete || !n->complete)
		return;
	/* A capture that ended under the stop adds nothing to the critical path (enum fig). */
	captured = o->state_last ? later(o->state_last, t->paused_ns) : 0;
	s->f[F_CAPTURE] = ms_if(t->paused_ns, captured);
	s->f[F_RESTORE] = ms_if(captured, n->restored);
	s->f[F_COMMIT] = ms_if(n->restored, rep->switched_ns);
	s->f[F_O_CAPT1] = ms_if(p, o->vcpu_first);
	s->f[F_O_CAPTN] = ms_if(p, o->vcpu_last);
	s->f[F_O_SENT] = ms_if(p, o->state_last);
	s->f[F_O_RESTORED] = ms_if(p, o->restored);
	s->f[F_N_STATE1] = ms_if(p, n->state_first);
	s->f[F_N_STATEN] = ms_if(p, n->state_last);
	s->f[F_N_RESTORED] = ms_if(p, n->restored);
	s->f[F_N_GO] = ms_if(p, n->go);
	fill_lib_work(o, n, c, s);
}

/* Hand over, then hear from the new VMM how the guest fared there. */
static int hand_over(enum mode m, const struct handoff_cfg *c, struct tinyvm *vm,
		     struct child *ch, struct raw_floor_old *raw, struct sample *s)
{
	struct tinyvm_handoff_times lt = { 0 };
	struct raw_floor_times rt = { 0 };
	struct trace_side old = { 0 };
	struct report rep;
	int err = m == MODE_LIB ? send_lib(vm, ch, c->trace, c->one_thread, &lt, &old)
				: raw_floor_send(raw, &rt);

	if (!err)
		err = read_all(ch->ctl, &rep, sizeof(rep));
	if (err)
		return err;
	if (rep.err || rep.errors) {
		fprintf(stderr, "bench-handoff: %s: the new VMM %s (%" PRIu64 " heartbeat errors)\n",
			m == MODE_LIB ? "staged" : "raw floor",
			rep.err ? sevm_strerror(rep.err) : "saw the guest go wrong", rep.errors);
		return rep.err ? rep.err : -EIO;
	}
	if (m == MODE_RAW)
		fill_raw(&rep, &rt, s);
	else if (rep.pause_ns != lt.pause_ns)
		return -EPROTO;
	else
		fill_lib(&rep, &lt, &old, c, s);
	return 0;
}

int handoff_once(enum mode m, const struct handoff_cfg *c, struct sample *s, double *slot_ms)
{
	bool traced = m == MODE_LIB && c->trace;
	char mode[32];
	struct raw_floor_old raw = { 0 };
	struct tinyvm vm = { 0 };
	struct child ch;
	uint64_t t[3];
	int err, reaped;

	snprintf(mode, sizeof(mode), "%s%s%s%s", m == MODE_RAW ? "raw" : "lib",
		 traced ? "+trace" : "", c->fifo ? "+fifo" : "", c->one_thread ? "+one" : "");
	err = spawn("new", mode, 0, &ch);
	if (err)
		return err;
	/* Before this VM's threads exist: they quiesce through the seam. */
	if (traced)
		err = trace_install();
	t[0] = now_ns();
	if (!err)
		err = boot_old(&vm, c, m == MODE_RAW ? &raw : NULL, ch.sock);
	t[1] = now_ns();
	*slot_ms = (double)vm.slot_ns / 1e6;
	if (!err)
		err = hand_over(m, c, &vm, &ch, &raw, s);
	t[2] = now_ns();
	/* The new VMM owns the guest now (or never got it): this VM only goes away. */
	tinyvm_destroy(&vm);
	if (traced)
		trace_remove();
	raw_floor_old_free(&raw);
	reaped = reap(&ch);
	if (c->verbose)
		fprintf(stderr, "  outside the blackout: old VM booted and every vCPU beat %.0f ms, "
			"handoff and the new VMM's check %.0f ms, both VMs gone %.0f ms\n",
			ms_between(t[0], t[1]), ms_between(t[1], t[2]), ms_between(t[2], now_ns()));
	return err ? err : reaped;
}
