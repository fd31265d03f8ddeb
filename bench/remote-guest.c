/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pre-copy guest: one vCPU on tinyvm's VM that writes pages at a rate
 * the VMM sets.  tinyvm's own guest writes only its counter page, and a host
 * thread writing into guest RAM would not show in KVM's dirty log (it logs
 * writes through the guest's mappings only), so this guest does the writing.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "remote.h"

#define PACE_SLICE_NS	200000ull

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23	/* Linux 5.14 */
#endif

/*
 * 32-bit code, flat segments, no paging; esi = first page's address,
 * ecx = pages, edx = edi = GUEST_BATCH, ebx = 0.  Assembled with `as --32`:
 *
 *   loop: mov  eax, ebx          ; page index
 *         shl  eax, 12
 *         add  eax, esi
 *         inc  dword [eax]       ; the write that dirties the page
 *         inc  ebx
 *         cmp  ebx, ecx
 *         jb   1f
 *         xor  ebx, ebx          ; wrap around the working set
 *   1:    dec  edi
 *         jnz  loop
 *         mov  edi, edx
 *         inc  dword [0x2000]    ; batches done (GUEST_COUNTER_GPA)
 *         out  0x11, al          ; GUEST_PORT: the VMM paces here
 *         jmp  loop
 */
static const uint8_t guest_code[] = {
	0x89, 0xd8, 0xc1, 0xe0, 0x0c, 0x01, 0xf0, 0xff, 0x00, 0x43, 0x39, 0xcb,
	0x72, 0x02, 0x31, 0xdb, 0x4f, 0x75, 0xed, 0x89, 0xd7, 0xff, 0x05, 0x00,
	0x20, 0x00, 0x00, 0xe6, 0x11, 0xeb, 0xe1,
};

_Static_assert(GUEST_COUNTER_GPA == 0x2000 && GUEST_PORT == 0x11, "patch guest_code");

static int sys_err(const char *what)
{
	int err = -errno;

	fprintf(stderr, "bench-remote guest: %s: %s\n", what, strerror(errno));
	return err;
}

/* Flat 4 GiB code and data segments, CR0.PE: the state KVM_SET_SREGS takes directly. */
static int protected_mode(int vcpu_fd)
{
	struct kvm_segment data = { .base = 0, .limit = 0xffffffff, .selector = 0x10,
				    .type = 3, .present = 1, .db = 1, .s = 1, .g = 1 };
	struct kvm_sregs s;

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0)
		return sys_err("KVM_GET_SREGS");
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.cs = data;
	s.cs.type = 11;
	s.cs.selector = 0x08;
	s.cr0 |= 1;
	return ioctl(vcpu_fd, KVM_SET_SREGS, &s) < 0 ? sys_err("KVM_SET_SREGS") : 0;
}

/* Every 8 bytes differ, and so does every page: nothing compresses or dedups. */
static void fill(uint64_t *w, uint64_t bytes)
{
	for (uint64_t i = 0; i < bytes / 8; i++)
		w[i] = (i + 1) * 0x9e3779b97f4a7c15ull;
}

int guest_log_dirty(struct tinyvm *vm, bool on)
{
	struct kvm_userspace_memory_region m = {
		.slot = 0, .flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0, .guest_phys_addr = 0,
		.memory_size = vm->mem_size, .userspace_addr = (uintptr_t)vm->mem,
	};

	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &m) < 0 ?
	       sys_err("KVM_SET_USER_MEMORY_REGION (dirty log)") : 0;
}

void guest_region(const struct tinyvm *vm, uint32_t flags, struct sevm_region *r)
{
	*r = (struct sevm_region){ .sz = sizeof(*r), .slot = 0, .flags = flags,
				   .guest_phys_addr = 0, .size = vm->mem_size, .fd = vm->mem_fd,
				   .host_addr = vm->mem };
}

int guest_create(struct tinyvm *vm, uint64_t mem_size)
{
	int err = tinyvm_create(vm, 1, mem_size, 0);

	if (err)
		return err;
	fill(vm->mem, mem_size);
	memcpy((uint8_t *)vm->mem + GUEST_CODE_GPA, guest_code, sizeof(guest_code));
	memset((uint8_t *)vm->mem + GUEST_COUNTER_GPA, 0, PAGE);
	err = protected_mode(vm->vcpus[0].fd);
	if (!err)
		err = guest_load(vm, GUEST_DATA_GPA / PAGE, 1);
	if (!err)
		err = guest_log_dirty(vm, true);
	if (err)
		tinyvm_destroy(vm);
	return err;
}

int guest_create_dest(struct tinyvm *vm, uint64_t mem_size)
{
	int fd = memfd_create("bench-remote-dest", MFD_CLOEXEC | MFD_ALLOW_SEALING), err;

	if (fd < 0)
		return sys_err("memfd_create");
	if (ftruncate(fd, (off_t)mem_size)) {
		err = sys_err("ftruncate");
		close(fd);
		return err;
	}
	err = tinyvm_create_shell(vm, 1, fd, mem_size, 0);
	if (err) {
		close(fd);
		return err;
	}
	vm->owns_mem_fd = true;
	/* Faulting in is not migration: this host takes ~3 us per fresh page. */
	if (madvise(vm->mem, mem_size, MADV_POPULATE_WRITE))
		memset(vm->mem, 0, mem_size);
	return 0;
}

int guest_load(struct tinyvm *vm, uint64_t first_gfn, uint64_t pages)
{
	struct kvm_regs r = { .rip = GUEST_CODE_GPA, .rflags = 0x2, .rsi = first_gfn * PAGE,
			      .rcx = pages, .rdx = GUEST_BATCH, .rdi = GUEST_BATCH };

	if (!pages || (first_gfn + pages) * PAGE > vm->mem_size || first_gfn * PAGE < GUEST_DATA_GPA)
		return -EINVAL;
	return ioctl(vm->vcpus[0].fd, KVM_SET_REGS, &r) < 0 ? sys_err("KVM_SET_REGS") : 0;
}

uint32_t guest_counter(const struct tinyvm *vm)
{
	return __atomic_load_n((uint32_t *)((uint8_t *)vm->mem + GUEST_COUNTER_GPA),
			       __ATOMIC_RELAXED);
}

/*
 * After each batch: hold the guest back until the rate allows the next one,
 * in short sleeps, so that a pause is not kept waiting by a slow rate.
 */
static void pace(struct guest_run *g, uint64_t batches)
{
	uint64_t due, now;

	if (!g->rate)
		return;
	due = g->t0 + batches * GUEST_BATCH * 1000000000ull / g->rate;
	while ((now = now_ns()) < due && !__atomic_load_n(&g->stop, __ATOMIC_ACQUIRE))
		sleep_ns(due - now < PACE_SLICE_NS ? due - now : PACE_SLICE_NS);
}

static void *vcpu_thread(void *arg)
{
	struct guest_run *g = arg;
	struct tinyvm_vcpu *v = &g->vm->vcpus[0];

	while (!__atomic_load_n(&g->stop, __ATOMIC_ACQUIRE)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			g->err = sys_err("KVM_RUN");
			break;
		}
		if (v->run->exit_reason != KVM_EXIT_IO || v->run->io.port != GUEST_PORT) {
			fprintf(stderr, "bench-remote guest: unexpected exit %u (port 0x%x)\n",
				v->run->exit_reason, v->run->io.port);
			g->err = -EPROTO;
			break;
		}
		pace(g, __atomic_add_fetch(&g->batches, 1, __ATOMIC_RELAXED));
	}
	return NULL;
}

int guest_start(struct guest_run *g, struct tinyvm *vm, uint64_t rate)
{
	int err;

	*g = (struct guest_run){ .vm = vm, .rate = rate, .t0 = now_ns() };
	err = -pthread_create(&g->thread, NULL, vcpu_thread, g);
	g->started = !err;
	return err;
}

int guest_stop(struct guest_run *g)
{
	struct tinyvm_vcpu *v = &g->vm->vcpus[0];
	int err;

	if (!g->started)
		return 0;
	/* A batch is GUEST_BATCH page writes (~0.2 ms here): the thread sees the flag soon. */
	__atomic_store_n(&g->stop, 1, __ATOMIC_RELEASE);
	pthread_join(g->thread, NULL);
	g->started = false;
	/* KVM finishes the last OUT only on the next KVM_RUN: do it before the state is read. */
	err = sevm_vcpu_quiesce(v->fd, v->run);
	return g->err ? g->err : err;
}

uint64_t guest_pages_written(const struct guest_run *g)
{
	return __atomic_load_n(&g->batches, __ATOMIC_RELAXED) * GUEST_BATCH;
}
