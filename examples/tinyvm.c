/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tinyvm: a minimal VMM over raw KVM ioctls (see tinyvm.h).
 *
 * Pause protocol.  vm->cmd is a futex word holding a sequence number and a
 * command (RUN, PAUSE, STOP); only the controlling thread writes it, and a
 * vCPU thread reads it before every KVM_RUN.  To pause, the controller
 *   1. zeroes vm->acks;
 *   2. sets immediate_exit in every vCPU's kvm_run: a thread that has read
 *      RUN but not yet entered KVM_RUN would take the signal in user space
 *      and then enter the guest with nothing pending; immediate_exit makes
 *      that KVM_RUN return EINTR at once;
 *   3. publishes PAUSE and signals every thread, so that one inside KVM_RUN
 *      leaves it with EINTR;
 *   4. sleeps on vm->acks until every thread has acknowledged.
 * A thread that reads PAUSE right after handling an exit calls
 * sevm_vcpu_quiesce() — KVM_RUN once more with immediate_exit set — because
 * KVM completes a port write only on the KVM_RUN after the exit that
 * reported it: a vCPU parked right after a heartbeat exit would otherwise
 * have its `out` lost or repeated when its state moves.  A thread whose last
 * KVM_RUN returned EINTR has nothing pending (KVM finishes the pending
 * instruction before it looks at immediate_exit or signals), and skipping
 * the extra KVM_RUN makes a pause of 64 vCPUs 3 times faster here;
 * TINYVM_F_ALWAYS_QUIESCE forces it.  Then the thread acknowledges (the last
 * one wakes the controller) and sleeps on vm->cmd until the next command.
 * It acknowledges only after its last KVM_RUN returned, so when
 * tinyvm_pause() returns the vCPU fds are free for the caller's KVM_GET_*
 * ioctls.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <sevmigrate.h>	/* sevm_vcpu_quiesce() only */

#include "tinyvm.h"

#define PAGE_SIZE	4096u

/*
 * Where KVM may put its real-mode TSS (3 pages) and identity map (1 page),
 * QEMU's choice.  KVM uses them only on VMX without unrestricted guest,
 * where RAM above 4 GiB - 272 KiB would have to leave a hole there; other
 * hosts, this one included, take them inside RAM.
 */
#define TSS_ADDR		0xfffbd000u
#define IDENTITY_MAP_ADDR	0xfffbc000u

/* vm->cmd: sequence << 2 | command */
enum { CMD_RUN = 0, CMD_PAUSE = 1, CMD_STOP = 2, CMD_MASK = 3 };
/* Threads are born parked under this command, already acknowledged. */
#define CMD_INITIAL	CMD_PAUSE

/*
 * The guest, 16-bit real mode, every segment base 0, loaded at
 * TINYVM_CODE_GPA; SI = vCPU index.  Assembled with `as --32` (.code16).
 * Counters live below 64 KiB: 0x8000 + 64 * 511 + 4 <= 0x10000, hence
 * TINYVM_MAX_VCPUS.
 */
static const uint8_t guest_code[] = {
	0x89, 0xf3,			/* 00: mov  bx, si                          */
	0xc1, 0xe3, 0x06,		/* 02: shl  bx, 6          ; 64 bytes each  */
	0x81, 0xc3, 0x00, 0x80,		/* 05: add  bx, 0x8000     ; bx = &counter  */
					/* loop:                                    */
	0x66, 0xff, 0x07,		/* 09: inc  dword [bx]                      */
	0x66, 0x8b, 0x07,		/* 0c: mov  eax, [bx]                       */
	0x66, 0xa9, 0, 0, 0, 0,		/* 0f: test eax, period-1  ; patched at 11  */
	0x75, 0xf2,			/* 15: jnz  loop                            */
	0x66, 0xe7, 0x10,		/* 17: out  0x10, eax      ; the heartbeat  */
	0x66, 0xe5, 0x10,		/* 1a: in   eax, 0x10      ; its echo       */
	0xeb, 0xea,			/* 1d: jmp  loop                            */
};
#define GUEST_MASK_AT	0x11

static int sys_fail(const char *what)
{
	int err = errno;

	fprintf(stderr, "tinyvm: %s: %s\n", what, strerror(err));
	return -err;
}

static long futex(uint32_t *word, int op, uint32_t val)
{
	return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

static void futex_wait(uint32_t *word, uint32_t val)
{
	futex(word, FUTEX_WAIT_PRIVATE, val);	/* EAGAIN/EINTR: the caller rechecks */
}

static void futex_wake(uint32_t *word, uint32_t n)
{
	futex(word, FUTEX_WAKE_PRIVATE, n);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- Creation ------------------------------------------------------------ */

static void init_empty(struct tinyvm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->mem_fd = -1;
	vm->initialized = true;
}

static struct kvm_cpuid2 *supported_cpuid(int kvm_fd)
{
	for (uint32_t nent = 64; nent <= 4096; nent *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
		int err;

		if (!c)
			return NULL;
		c->nent = nent;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		err = errno;
		free(c);
		errno = err;
		if (err != E2BIG)	/* E2BIG: more entries than nent */
			return NULL;
	}
	return NULL;
}

/* The guest reads its APIC ID from CPUID; KVM's LAPIC uses the vCPU id. */
static void set_apic_id(struct kvm_cpuid2 *c, uint32_t id)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffffu) | (id & 0xffu) << 24;
		else if (e->function == 0xb || e->function == 0x1f)
			e->edx = id;
	}
}

static int create_vcpu(struct tinyvm *vm, uint32_t i, struct kvm_cpuid2 *cpuid)
{
	struct tinyvm_vcpu *v = &vm->vcpus[i];
	char what[64];
	void *run;

	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
	if (v->fd < 0) {
		snprintf(what, sizeof(what), "KVM_CREATE_VCPU %u", i);
		return sys_fail(what);
	}
	set_apic_id(cpuid, i);
	if (ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0)
		return sys_fail("KVM_SET_CPUID2");
	run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (run == MAP_FAILED)
		return sys_fail("mmap kvm_run");
	v->run = run;
	return 0;
}

static int create_vcpus(struct tinyvm *vm, unsigned int nr_vcpus)
{
	struct kvm_cpuid2 *cpuid;
	int r = 0;

	vm->vcpus = calloc(nr_vcpus, sizeof(vm->vcpus[0]));
	if (!vm->vcpus)
		return -ENOMEM;
	vm->nr_vcpus = nr_vcpus;
	for (uint32_t i = 0; i < nr_vcpus; i++) {
		vm->vcpus[i].fd = -1;
		vm->vcpus[i].index = i;
		vm->vcpus[i].vm = vm;
	}
	cpuid = supported_cpuid(vm->kvm_fd);
	if (!cpuid)
		return sys_fail("KVM_GET_SUPPORTED_CPUID");
	for (uint32_t i = 0; i < nr_vcpus && !r; i++)
		r = create_vcpu(vm, i, cpuid);
	free(cpuid);
	return r;
}

/* /dev/kvm, the VM and what must exist before the first vCPU. */
static int create_vm(struct tinyvm *vm, unsigned int flags)
{
	uint64_t idmap = IDENTITY_MAP_ADDR;
	int size;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return sys_fail("/dev/kvm");
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		fprintf(stderr, "tinyvm: unexpected KVM API version\n");
		return -ENOTSUP;
	}
	size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < 0)
		return sys_fail("KVM_GET_VCPU_MMAP_SIZE");
	vm->run_size = (size_t)size;
	vm->nr_cpus = (unsigned int)sysconf(_SC_NPROCESSORS_ONLN);
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0UL);
	if (vm->vm_fd < 0)
		return sys_fail("KVM_CREATE_VM");
	/* KVM refuses an irqchip once a vCPU exists, and the identity map too. */
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return sys_fail("KVM_CREATE_IRQCHIP");
	if (flags & TINYVM_F_PIT) {
		struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

		if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
			return sys_fail("KVM_CREATE_PIT2");
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)TSS_ADDR) < 0)
		return sys_fail("KVM_SET_TSS_ADDR");
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		return sys_fail("KVM_SET_IDENTITY_MAP_ADDR");
	return 0;
}

/* Map vm->mem_fd and, unless told not to, make it slot 0 at GPA 0. */
static int map_ram(struct tinyvm *vm)
{
	struct kvm_userspace_memory_region slot = { .slot = 0, .memory_size = vm->mem_size };
	uint64_t t0;

	/* Shared and unreserved: a sparse 1 TiB guest costs only its pages. */
	vm->mem = mmap(NULL, vm->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		       vm->mem_fd, 0);
	if (vm->mem == MAP_FAILED) {
		vm->mem = NULL;
		return sys_fail("mmap guest RAM");
	}
	if (vm->flags & TINYVM_F_NO_MEMSLOT)
		return 0;
	slot.userspace_addr = (uintptr_t)vm->mem;
	t0 = now_ns();
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
		return sys_fail("KVM_SET_USER_MEMORY_REGION");
	vm->slot_ns = now_ns() - t0;
	return 0;
}

static bool valid_args(unsigned int nr_vcpus, uint64_t mem_size, unsigned int flags)
{
	return nr_vcpus >= 1 && nr_vcpus <= TINYVM_MAX_VCPUS && mem_size &&
	       mem_size % PAGE_SIZE == 0 && mem_size <= (uint64_t)SIZE_MAX &&
	       !(flags & ~(TINYVM_F_PIT | TINYVM_F_NO_MEMSLOT | TINYVM_F_ALWAYS_QUIESCE));
}

static int build(struct tinyvm *vm, unsigned int nr_vcpus, unsigned int flags)
{
	int r = create_vm(vm, flags);

	if (!r)
		r = map_ram(vm);
	if (!r)
		r = create_vcpus(vm, nr_vcpus);
	return r;
}

int tinyvm_create(struct tinyvm *vm, unsigned int nr_vcpus, uint64_t mem_size, unsigned int flags)
{
	int r;

	init_empty(vm);
	if (!valid_args(nr_vcpus, mem_size, flags))
		return -EINVAL;
	vm->flags = flags;
	vm->mem_size = mem_size;
	vm->owns_mem_fd = true;
	vm->mem_fd = memfd_create("tinyvm-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (vm->mem_fd < 0)
		r = sys_fail("memfd_create");
	else if (ftruncate(vm->mem_fd, (off_t)mem_size) < 0)
		r = sys_fail("ftruncate guest RAM");
	else
		r = build(vm, nr_vcpus, flags);
	if (r)
		tinyvm_destroy(vm);
	return r;
}

int tinyvm_create_shell(struct tinyvm *vm, unsigned int nr_vcpus, int mem_fd,
			uint64_t mem_size, unsigned int flags)
{
	struct stat st;
	int r;

	init_empty(vm);
	if (!valid_args(nr_vcpus, mem_size, flags) || mem_fd < 0)
		return -EINVAL;
	if (fstat(mem_fd, &st) < 0)
		return sys_fail("fstat guest RAM");
	if ((uint64_t)st.st_size < mem_size)
		return -EINVAL;
	vm->flags = flags;
	vm->mem_size = mem_size;
	vm->mem_fd = mem_fd;
	vm->owns_mem_fd = false;
	r = build(vm, nr_vcpus, flags);
	if (r)
		tinyvm_destroy(vm);
	return r;
}

/* ---- The guest ----------------------------------------------------------- */

static int set_real_mode(struct tinyvm_vcpu *v)
{
	struct kvm_regs regs = { .rip = TINYVM_CODE_GPA, .rsi = v->index, .rflags = 0x2 };
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	struct kvm_sregs sregs;
	struct kvm_segment *segs[] = { &sregs.cs, &sregs.ds, &sregs.es,
				       &sregs.fs, &sregs.gs, &sregs.ss };

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return sys_fail("KVM_GET_SREGS");
	/* Out of reset CS is f000:fff0 with base 0xffff0000; make it flat. */
	for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
		segs[i]->selector = 0;
		segs[i]->base = 0;
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return sys_fail("KVM_SET_SREGS");
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return sys_fail("KVM_SET_REGS");
	/* With the in-kernel LAPIC, APs wait for INIT/SIPI until told otherwise. */
	if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0)
		return sys_fail("KVM_SET_MP_STATE");
	return 0;
}

static uint32_t *counter_at(const struct tinyvm *vm, unsigned int i)
{
	return (uint32_t *)((char *)vm->mem + TINYVM_COUNTER_GPA + TINYVM_COUNTER_STRIDE * i);
}

/* Written by the VMM only: the heartbeat whose echo it last answered. */
static uint32_t *echoed_at(const struct tinyvm *vm, unsigned int i)
{
	return counter_at(vm, i) + 1;
}

static bool counters_fit(const struct tinyvm *vm)
{
	return vm->mem &&
	       vm->mem_size >= TINYVM_COUNTER_GPA + TINYVM_COUNTER_STRIDE * (uint64_t)vm->nr_vcpus;
}

int tinyvm_load_guest(struct tinyvm *vm, uint32_t heartbeat_period)
{
	uint32_t mask = heartbeat_period - 1;
	uint8_t *code;

	if (!heartbeat_period || (heartbeat_period & mask) || vm->threads_started ||
	    !counters_fit(vm))
		return -EINVAL;
	code = (uint8_t *)vm->mem + TINYVM_CODE_GPA;
	memcpy(code, guest_code, sizeof(guest_code));
	memcpy(code + GUEST_MASK_AT, &mask, sizeof(mask));
	/* The echo marks start at 0: no beat is 0 (the counter starts at 1). */
	memset(counter_at(vm, 0), 0, TINYVM_COUNTER_STRIDE * vm->nr_vcpus);
	vm->period = heartbeat_period;
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		int r = set_real_mode(&vm->vcpus[i]);

		if (r)
			return r;
	}
	return 0;
}

/* The period the guest in memory was loaded with, or 0 if it is not ours. */
static uint32_t guest_period(const struct tinyvm *vm)
{
	const uint8_t *code = (const uint8_t *)vm->mem + TINYVM_CODE_GPA;
	uint32_t mask;

	if (!counters_fit(vm) ||
	    memcmp(code, guest_code, GUEST_MASK_AT) ||
	    memcmp(code + GUEST_MASK_AT + 4, guest_code + GUEST_MASK_AT + 4,
		   sizeof(guest_code) - GUEST_MASK_AT - 4))
		return 0;
	memcpy(&mask, code + GUEST_MASK_AT, sizeof(mask));
	return mask + 1 && !((mask + 1) & mask) ? mask + 1 : 0;
}

/* ---- vCPU threads -------------------------------------------------------- */

static void add_error(struct tinyvm_vcpu *v)
{
	__atomic_store_n(&v->errors, v->errors + 1, __ATOMIC_RELAXED);
}

/* Record the failure and take this vCPU out of the guest for good. */
static void vcpu_fail(struct tinyvm_vcpu *v, const char *why)
{
	add_error(v);
	__atomic_store_n(&v->stopped, true, __ATOMIC_RELAXED);
	fprintf(stderr, "tinyvm: vCPU %u stopped: %s\n", v->index, why);
}

static const char *exit_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN (triple fault?)";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	default: return "unexpected";
	}
}

static void unexpected_exit(struct tinyvm_vcpu *v)
{
	const struct kvm_run *run = v->run;
	char why[160];
	int n;

	n = snprintf(why, sizeof(why), "exit %u (%s)", run->exit_reason,
		     exit_name(run->exit_reason));
	if (run->exit_reason == KVM_EXIT_IO)
		snprintf(why + n, sizeof(why) - n, ": port 0x%x %s size %u count %u",
			 run->io.port, run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
			 run->io.size, run->io.count);
	else if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		snprintf(why + n, sizeof(why) - n, ": suberror %u", run->internal.suberror);
	else if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
		snprintf(why + n, sizeof(why) - n, ": reason 0x%llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
	vcpu_fail(v, why);
}

static bool is_heartbeat_port(const struct kvm_run *run, uint8_t direction)
{
	return run->exit_reason == KVM_EXIT_IO && run->io.port == TINYVM_PORT_HEARTBEAT &&
	       run->io.direction == direction && run->io.size == 4 && run->io.count == 1;
}

static void heartbeat(const struct tinyvm *vm, struct tinyvm_vcpu *v, uint32_t beat)
{
	uint32_t want = v->last_beat + vm->period;	/* wraps with the counter */
	bool bad = v->has_base ? beat != want : beat & (vm->period - 1);

	if (bad) {
		add_error(v);
		if (v->errors <= 3 && v->has_base)
			fprintf(stderr, "tinyvm: vCPU %u: heartbeat %u, expected %u\n",
				v->index, beat, want);
		else if (v->errors <= 3)
			fprintf(stderr, "tinyvm: vCPU %u: first heartbeat %u is not a multiple of %u\n",
				v->index, beat, vm->period);
	}
	v->has_base = true;
	__atomic_store_n(&v->last_beat, beat, __ATOMIC_RELAXED);
	__atomic_store_n(&v->heartbeats, v->heartbeats + 1, __ATOMIC_RELAXED);
}

/*
 * The guest reads the port right after each heartbeat.  KVM completes an IN
 * (loads eax, moves RIP past it) only on the KVM_RUN after its exit, so an
 * IN handled but not completed before the state moved is executed again by
 * the next VMM: the read that sevm_vcpu_quiesce() exists for.  The answer
 * is the counter, and the VMM notes in guest memory — which travels with the
 * guest — the beat it answered: answering the same beat twice is that repeat.
 */
static void echo(const struct tinyvm *vm, struct tinyvm_vcpu *v)
{
	uint32_t *echoed = echoed_at(vm, v->index);
	uint32_t beat = __atomic_load_n(counter_at(vm, v->index), __ATOMIC_RELAXED);

	if (__atomic_load_n(echoed, __ATOMIC_RELAXED) == beat) {
		add_error(v);
		if (v->errors <= 3)
			fprintf(stderr, "tinyvm: vCPU %u: echo of heartbeat %u read twice\n",
				v->index, beat);
	}
	__atomic_store_n(echoed, beat, __ATOMIC_RELAXED);
	memcpy((char *)v->run + v->run->io.data_offset, &beat, sizeof(beat));
}

static void run_once(const struct tinyvm *vm, struct tinyvm_vcpu *v)
{
	uint32_t beat;

	if (ioctl(v->fd, KVM_RUN, 0) < 0) {
		char why[80];

		/* EINTR: kicked (or some other signal); the loop rereads the command. */
		if (errno == EINTR || errno == EAGAIN) {
			v->exit_pending = false;
			return;
		}
		snprintf(why, sizeof(why), "KVM_RUN: %s", strerror(errno));
		vcpu_fail(v, why);
		return;
	}
	v->exit_pending = true;
	if (is_heartbeat_port(v->run, KVM_EXIT_IO_OUT)) {
		memcpy(&beat, (const char *)v->run + v->run->io.data_offset, sizeof(beat));
		heartbeat(vm, v, beat);
	} else if (is_heartbeat_port(v->run, KVM_EXIT_IO_IN)) {
		echo(vm, v);
	} else {
		unexpected_exit(v);
	}
}

/* Leave the guest with its last instruction complete, and say so. */
static void park(struct tinyvm *vm, struct tinyvm_vcpu *v)
{
	/* Published by set_cmd(CMD_PAUSE), which this thread acquired. */
	if (vm->park_hook && !v->stopped && vm->park_hook(vm, v->index, vm->park_ctx))
		v->exit_pending = false;
	if (!v->stopped && (v->exit_pending || (vm->flags & TINYVM_F_ALWAYS_QUIESCE))) {
		int r = sevm_vcpu_quiesce(v->fd, v->run);

		v->exit_pending = false;
		if (r < 0) {
			char why[80];

			snprintf(why, sizeof(why), "sevm_vcpu_quiesce: %s", strerror(-r));
			vcpu_fail(v, why);
		}
	}
	/* Set by tinyvm_pause(); with it the next KVM_RUN would not enter the guest. */
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELAXED);
	if (__atomic_add_fetch(&vm->acks, 1, __ATOMIC_ACQ_REL) == vm->nr_vcpus)
		futex_wake(&vm->acks, 1);
}

/*
 * The first KVM_RUN since tinyvm_resume() cleared the stamps, and its first
 * exit: a clock read each, and one load per KVM_RUN until they are taken.
 */
static void run_stamped(const struct tinyvm *vm, struct tinyvm_vcpu *v)
{
	if (!v->run_ns)
		__atomic_store_n(&v->run_ns, now_ns(), __ATOMIC_RELAXED);
	run_once(vm, v);
	if (v->exit_pending && !v->exit_ns)
		__atomic_store_n(&v->exit_ns, now_ns(), __ATOMIC_RELAXED);
}

static void *vcpu_thread(void *arg)
{
	struct tinyvm_vcpu *v = arg;
	struct tinyvm *vm = v->vm;
	uint32_t acked = CMD_INITIAL;
	sigset_t kick;

	sigemptyset(&kick);
	sigaddset(&kick, TINYVM_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	for (;;) {
		uint32_t cmd = __atomic_load_n(&vm->cmd, __ATOMIC_ACQUIRE);

		switch (cmd & CMD_MASK) {
		case CMD_STOP:
			return NULL;
		case CMD_PAUSE:
			if (cmd != acked) {
				park(vm, v);
				acked = cmd;
			}
			futex_wait(&vm->cmd, cmd);
			break;
		default:
			if (v->stopped)
				futex_wait(&vm->cmd, cmd);
			else
				run_stamped(vm, v);
		}
	}
}

/* Only the controlling thread writes vm->cmd. */
static void set_cmd(struct tinyvm *vm, uint32_t what)
{
	uint32_t seq = (vm->cmd >> 2) + 1;

	__atomic_store_n(&vm->cmd, seq << 2 | what, __ATOMIC_RELEASE);
	futex_wake(&vm->cmd, INT_MAX);
}

static void kick_all(struct tinyvm *vm, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		pthread_kill(vm->vcpus[i].thread, TINYVM_KICK_SIGNAL);
}

static void stop_threads(struct tinyvm *vm, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		__atomic_store_n(&vm->vcpus[i].run->immediate_exit, 1, __ATOMIC_RELAXED);
	set_cmd(vm, CMD_STOP);
	kick_all(vm, n);
	for (unsigned int i = 0; i < n; i++)
		pthread_join(vm->vcpus[i].thread, NULL);
	vm->threads_started = false;
}

static void kick_handler(int sig)
{
	(void)sig;	/* only there to make KVM_RUN return EINTR */
}

int tinyvm_start_paused(struct tinyvm *vm)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	if (!vm->initialized || !vm->vcpus || vm->threads_started)
		return -EINVAL;
	if (!vm->period)
		vm->period = guest_period(vm);
	if (!vm->period) {
		fprintf(stderr, "tinyvm: no tinyvm guest in memory\n");
		return -ENOEXEC;
	}
	sigemptyset(&sa.sa_mask);
	if (sigaction(TINYVM_KICK_SIGNAL, &sa, NULL) < 0)
		return sys_fail("sigaction");
	vm->cmd = CMD_INITIAL;
	vm->acks = vm->nr_vcpus;
	vm->paused = true;
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		struct tinyvm_vcpu *v = &vm->vcpus[i];
		int r = pthread_create(&v->thread, NULL, vcpu_thread, v);

		if (r) {
			stop_threads(vm, i);
			fprintf(stderr, "tinyvm: pthread_create: %s\n", strerror(r));
			return -r;
		}
	}
	vm->threads_started = true;
	return 0;
}

int tinyvm_start(struct tinyvm *vm)
{
	int r = tinyvm_start_paused(vm);

	return r ? r : tinyvm_resume(vm);
}

/*
 * When every vCPU thread can have a CPU besides ours, spin a little before
 * sleeping: being woken on an idle CPU costs tens of microseconds in a
 * nested VM, as much as the whole pause of one vCPU.  With more threads than
 * CPUs the spinning only takes CPU time from the threads it waits for.
 */
#define ACK_SPIN_NS	200000u

static void wait_acks(struct tinyvm *vm)
{
	uint64_t spin_until = vm->nr_vcpus < vm->nr_cpus ? now_ns() + ACK_SPIN_NS : 0;

	for (;;) {
		uint32_t n = __atomic_load_n(&vm->acks, __ATOMIC_ACQUIRE);

		if (n == vm->nr_vcpus)
			return;
		if (now_ns() < spin_until)
			sched_yield();
		else
			futex_wait(&vm->acks, n);
	}
}

int tinyvm_pause(struct tinyvm *vm)
{
	if (!vm->threads_started)
		return -EINVAL;
	if (vm->paused)
		return 0;
	__atomic_store_n(&vm->acks, 0, __ATOMIC_RELAXED);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		__atomic_store_n(&vm->vcpus[i].run->immediate_exit, 1, __ATOMIC_RELAXED);
	set_cmd(vm, CMD_PAUSE);
	kick_all(vm, vm->nr_vcpus);
	wait_acks(vm);
	vm->paused = true;
	return 0;
}

void tinyvm_set_park_hook(struct tinyvm *vm,
			  bool (*fn)(struct tinyvm *vm, unsigned int i, void *ctx), void *ctx)
{
	vm->park_hook = fn;
	vm->park_ctx = ctx;
}

int tinyvm_resume(struct tinyvm *vm)
{
	if (!vm->threads_started)
		return -EINVAL;
	if (!vm->paused)
		return 0;
	vm->paused = false;
	/* The threads are parked: set_cmd() publishes this to them. */
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vm->vcpus[i].run_ns = vm->vcpus[i].exit_ns = 0;
	/* Before the wake-up: the threads it wakes may preempt this one. */
	vm->resume_ns = now_ns();
	set_cmd(vm, CMD_RUN);
	return 0;
}

void tinyvm_destroy(struct tinyvm *vm)
{
	if (!vm->initialized)
		return;
	if (vm->threads_started)
		stop_threads(vm, vm->nr_vcpus);
	for (unsigned int i = 0; vm->vcpus && i < vm->nr_vcpus; i++) {
		if (vm->vcpus[i].run)
			munmap(vm->vcpus[i].run, vm->run_size);
		if (vm->vcpus[i].fd >= 0)
			close(vm->vcpus[i].fd);
	}
	free(vm->vcpus);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->mem)
		munmap(vm->mem, vm->mem_size);
	if (vm->owns_mem_fd && vm->mem_fd >= 0)
		close(vm->mem_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	memset(vm, 0, sizeof(*vm));
}

/* ---- Observing the guest ------------------------------------------------- */

uint32_t tinyvm_counter(const struct tinyvm *vm, unsigned int i)
{
	if (i >= vm->nr_vcpus || !counters_fit(vm))
		return 0;
	return __atomic_load_n(counter_at(vm, i), __ATOMIC_RELAXED);
}

void tinyvm_expect_continuation(struct tinyvm *vm, const uint32_t *last_beats)
{
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		vm->vcpus[i].last_beat = last_beats ? last_beats[i] : 0;
		vm->vcpus[i].has_base = last_beats != NULL;
	}
}

uint64_t tinyvm_heartbeats(const struct tinyvm *vm, unsigned int i)
{
	return i < vm->nr_vcpus ? __atomic_load_n(&vm->vcpus[i].heartbeats, __ATOMIC_RELAXED) : 0;
}

uint32_t tinyvm_last_beat(const struct tinyvm *vm, unsigned int i)
{
	return i < vm->nr_vcpus ? __atomic_load_n(&vm->vcpus[i].last_beat, __ATOMIC_RELAXED) : 0;
}

uint64_t tinyvm_errors(const struct tinyvm *vm, unsigned int i)
{
	return i < vm->nr_vcpus ? __atomic_load_n(&vm->vcpus[i].errors, __ATOMIC_RELAXED) : 0;
}

void tinyvm_run_stamps(const struct tinyvm *vm, unsigned int i, uint64_t *run_ns,
		       uint64_t *exit_ns)
{
	const struct tinyvm_vcpu *v = i < vm->nr_vcpus ? &vm->vcpus[i] : NULL;

	*run_ns = v ? __atomic_load_n(&v->run_ns, __ATOMIC_RELAXED) : 0;
	*exit_ns = v ? __atomic_load_n(&v->exit_ns, __ATOMIC_RELAXED) : 0;
}

uint64_t tinyvm_total_errors(const struct tinyvm *vm)
{
	uint64_t sum = 0;

	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		sum += tinyvm_errors(vm, i);
	return sum;
}

/* FNV-1a over 64-bit words rather than bytes: 8 times fewer multiplies. */
#define FNV_OFFSET	0xcbf29ce484222325ull
#define FNV_PRIME	0x100000001b3ull

static bool page_is_zero(const uint64_t *w)
{
	uint64_t any = 0;

	for (unsigned int i = 0; i < PAGE_SIZE / 8; i++)
		any |= w[i];
	return !any;
}

static uint64_t hash_pages(uint64_t h, const char *mem, uint64_t from, uint64_t to)
{
	for (uint64_t off = from & ~(uint64_t)(PAGE_SIZE - 1); off < to; off += PAGE_SIZE) {
		const uint64_t *w = (const uint64_t *)(mem + off);

		if (page_is_zero(w))
			continue;
		h = (h ^ off) * FNV_PRIME;
		for (unsigned int i = 0; i < PAGE_SIZE / 8; i++)
			h = (h ^ w[i]) * FNV_PRIME;
	}
	return h;
}

uint64_t tinyvm_ram_checksum(const struct tinyvm *vm)
{
	const off_t size = (off_t)vm->mem_size;
	uint64_t h = FNV_OFFSET;
	off_t off = 0;

	if (!vm->mem)
		return 0;
	while (off < size) {
		off_t data = lseek(vm->mem_fd, off, SEEK_DATA);
		off_t hole;

		if (data < 0 && errno != ENXIO)	/* ENXIO: no data after off */
			return hash_pages(h, vm->mem, (uint64_t)off, (uint64_t)size);
		if (data < 0 || data >= size)
			break;
		hole = lseek(vm->mem_fd, data, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		h = hash_pages(h, vm->mem, (uint64_t)data, (uint64_t)hole);
		off = hole;
	}
	return h;
}
