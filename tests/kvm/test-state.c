/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vCPU and VM state capture and restore on real KVM.  A real-mode guest
 * counts on two vCPUs in VM A; A is stopped, its state captured and
 * restored into VM B, which shares A's memory and was given nothing else.
 * B must go on from the very next heartbeat.  Then the refusals: truncated
 * images, wrong sizes, setters the kernel lacks, MSRs it will not take.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "abi/compat.h"
#include "core/buf.h"
#include "kvm/state.h"
#include "testutil.h"

#define RAM_SIZE	(16u << 20)
#define CODE_GPA	0x1000
#define COUNTER_GPA	0x8000		/* vCPU i counts at COUNTER_GPA + 4 * i */
#define HEARTBEAT_PORT	0x10
#define NR_VCPUS	2
#define BEATS		300		/* heartbeats per vCPU before the handoff */
#define ROUNDS		100		/* for the cost medians */
#define NO_SUCH_MSR	0x4b564dffu	/* in KVM's range, never defined */
#define MSR_SYSENTER_CS	0x174
#define ITEM(id)	SEVM__VCPU_ITEM(SEVM_SECT_##id)

/*
 * 16-bit real mode; bx holds the counter's address.  A heartbeat every 256.
 *   0: mov eax, [bx]	66 8b 07
 *   3: inc eax		66 40
 *   5: mov [bx], eax	66 89 07
 *   8: test al, al	84 c0
 *  10: jnz 0		75 f4
 *  12: out 0x10, eax	66 e7 10
 *  15: jmp 0		eb ef
 */
static const uint8_t guest_code[] = {
	0x66, 0x8b, 0x07, 0x66, 0x40, 0x66, 0x89, 0x07, 0x84, 0xc0, 0x75, 0xf4,
	0x66, 0xe7, HEARTBEAT_PORT, 0xeb, 0xef,
};

static const char *const item_names[SEVM__NR_VCPU_ITEMS] = {
	"CPUID", "TSC_KHZ", "SREGS2", "SREGS", "REGS", "XSAVE", "FPU", "XCRS", "LAPIC",
	"MSRS", "EVENTS", "DEBUGREGS", "MP_STATE", "NESTED",
};

struct vm {
	int fd;
	int vcpu[NR_VCPUS];
	struct kvm_run *run[NR_VCPUS];
	uint8_t *ram;
	unsigned int nr_vcpus;
};

struct rig {
	int fds;
	int kvm;
	int ram_fd;
	size_t run_size;
	struct vm a, b;
	struct sevm__kvm_caps caps_a, caps_b;
	struct sevm__buf snap;		/* A's sections */
	uint64_t items;			/* captured for every vCPU */
	uint32_t last_beat[NR_VCPUS];
};

#define OK(call)								\
	({									\
		int r_ = (call);						\
		ck_assert_msg(r_ >= 0, "%s: %s", #call, strerror(errno));	\
		r_;								\
	})

#define LIB_OK(call)								\
	ck_assert_msg((call) == 0, "%s: %s", #call, sevm_last_error())

/* ---- Building VMs by hand ------------------------------------------------ */

static void vm_create(struct rig *g, struct vm *v, bool irqchip, unsigned int nr_vcpus)
{
	struct kvm_userspace_memory_region mr = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = RAM_SIZE,
	};

	v->nr_vcpus = nr_vcpus;
	v->fd = OK(ioctl(g->kvm, KVM_CREATE_VM, KVM_X86_DEFAULT_VM));
	/* Both before any vCPU exists. */
	if (irqchip) {
		struct kvm_pit_config pit = { .flags = 0 };

		OK(ioctl(v->fd, KVM_CREATE_IRQCHIP, 0));
		OK(ioctl(v->fd, KVM_CREATE_PIT2, &pit));
	}
	v->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->ram_fd, 0);
	ck_assert_ptr_ne(v->ram, MAP_FAILED);
	mr.userspace_addr = (uintptr_t)v->ram;
	OK(ioctl(v->fd, KVM_SET_USER_MEMORY_REGION, &mr));
	for (unsigned int i = 0; i < nr_vcpus; i++) {
		v->vcpu[i] = OK(ioctl(v->fd, KVM_CREATE_VCPU, i));
		v->run[i] = mmap(NULL, g->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
				 v->vcpu[i], 0);
		ck_assert_ptr_ne(v->run[i], MAP_FAILED);
	}
}

static void vm_destroy(struct rig *g, struct vm *v)
{
	for (unsigned int i = 0; i < v->nr_vcpus; i++) {
		munmap(v->run[i], g->run_size);
		close(v->vcpu[i]);
	}
	munmap(v->ram, RAM_SIZE);
	close(v->fd);
	memset(v, 0, sizeof(*v));
}

/* What a VMM does before the first KVM_RUN: CPUID, real-mode entry, APs runnable. */
static void guest_load(struct rig *g, struct vm *v)
{
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(cpuid->entries[0]));

	ck_assert_ptr_nonnull(cpuid);
	cpuid->nent = 256;
	OK(ioctl(g->kvm, KVM_GET_SUPPORTED_CPUID, cpuid));
	memcpy(v->ram + CODE_GPA, guest_code, sizeof(guest_code));
	memset(v->ram + COUNTER_GPA, 0, 4 * NR_VCPUS);
	for (unsigned int i = 0; i < v->nr_vcpus; i++) {
		struct kvm_regs regs = {
			.rip = CODE_GPA, .rflags = 2, .rbx = COUNTER_GPA + 4 * i,
		};
		struct kvm_sregs sregs;

		OK(ioctl(v->vcpu[i], KVM_SET_CPUID2, cpuid));
		OK(ioctl(v->vcpu[i], KVM_GET_SREGS, &sregs));
		sregs.cs.base = 0;
		sregs.cs.selector = 0;
		OK(ioctl(v->vcpu[i], KVM_SET_SREGS, &sregs));
		OK(ioctl(v->vcpu[i], KVM_SET_REGS, &regs));
		if (i) {
			struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };

			OK(ioctl(v->vcpu[i], KVM_SET_MP_STATE, &mp));
		}
	}
	free(cpuid);
}

/* Run vCPU i to its next heartbeat and return the count it reports. */
static uint32_t next_beat(struct vm *v, unsigned int i)
{
	struct kvm_run *run = v->run[i];
	uint32_t beat;

	OK(ioctl(v->vcpu[i], KVM_RUN, 0));
	ck_assert_uint_eq(run->exit_reason, KVM_EXIT_IO);
	ck_assert_uint_eq(run->io.direction, KVM_EXIT_IO_OUT);
	ck_assert_uint_eq(run->io.port, HEARTBEAT_PORT);
	ck_assert_uint_eq(run->io.size, 4);
	memcpy(&beat, (uint8_t *)run + run->io.data_offset, sizeof(beat));
	return beat;
}

/* The OUT is finished by the next KVM_RUN: enter once with immediate_exit set. */
static void finish_exit(struct vm *v, unsigned int i)
{
	int r;

	v->run[i]->immediate_exit = 1;
	r = ioctl(v->vcpu[i], KVM_RUN, 0);
	ck_assert_int_eq(r, -1);
	ck_assert_int_eq(errno, EINTR);
	v->run[i]->immediate_exit = 0;
}

/* ---- Snapshot helpers ---------------------------------------------------- */

static bool is_vcpu_item(uint32_t id)
{
	return id >= SEVM_SECT_CPUID && id <= SEVM_SECT_NESTED;
}

static void capture_vm(struct rig *g, struct vm *v, struct sevm__buf *buf, uint64_t *items)
{
	struct sevm__snap_writer w;

	sevm__buf_reset(buf);
	sevm__snap_sections(&w, buf);
	for (unsigned int i = 0; i < v->nr_vcpus; i++) {
		uint64_t got;

		LIB_OK(sevm__vcpu_capture(&g->caps_a, v->vcpu[i], i, &w, &got));
		if (i)
			ck_assert_uint_eq(got, *items);
		*items = got;
	}
	LIB_OK(sevm__vm_capture(v->fd, &w));
}

struct loaded {
	struct sevm__vcpu_image img[NR_VCPUS];
	struct sevm__sect vm[8];
	unsigned int nr_vm;
};

/* Sort A's sections into per-vCPU images and VM sections; skip one item of one vCPU. */
static void load(const struct sevm__buf *buf, struct loaded *l, int skip_vcpu, uint32_t skip_id)
{
	struct sevm__snap_reader r;
	struct sevm__sect s;
	int n;

	memset(l, 0, sizeof(*l));
	sevm__snap_reader_sections(&r, buf->data, buf->len);
	while ((n = sevm__snap_next(&r, &s)) > 0) {
		if (!is_vcpu_item(s.id)) {
			ck_assert_uint_lt(l->nr_vm, 8);
			l->vm[l->nr_vm++] = s;
			continue;
		}
		ck_assert_uint_lt(s.instance, NR_VCPUS);
		if ((int)s.instance == skip_vcpu && s.id == skip_id)
			continue;
		LIB_OK(sevm__vcpu_image_add(&l->img[s.instance], &s));
	}
	ck_assert_msg(n == 0, "%s", sevm_last_error());
}

/* Restore order of the handoff: every vCPU, then the VM-wide state. */
static int restore(struct rig *g, struct vm *v, const struct loaded *l)
{
	int r;

	for (unsigned int i = 0; i < v->nr_vcpus; i++) {
		r = sevm__vcpu_restore(&g->caps_b, v->vcpu[i], i, &l->img[i], g->items);
		if (r)
			return r;
	}
	for (unsigned int k = 0; k < l->nr_vm; k++) {
		r = sevm__vm_restore_section(v->fd, &l->vm[k]);
		if (r)
			return r;
	}
	return 0;
}

static const struct sevm__sect *find(const struct loaded *l, unsigned int vcpu, uint32_t id)
{
	const struct sevm__vcpu_image *img = &l->img[vcpu];

	ck_assert(img->items & SEVM__VCPU_ITEM(id));
	return &img->sect[id - SEVM_SECT_CPUID];
}

/* ---- The rig: A counting, stopped, captured; B built and empty ------------ */

static void rig_up(struct rig *g)
{
	memset(g, 0, sizeof(*g));
	g->fds = tu_count_fds();
	g->kvm = OK(open("/dev/kvm", O_RDWR | O_CLOEXEC));
	g->run_size = OK(ioctl(g->kvm, KVM_GET_VCPU_MMAP_SIZE, 0));
	g->ram_fd = OK(memfd_create("guest-ram", MFD_CLOEXEC));
	OK(ftruncate(g->ram_fd, RAM_SIZE));

	vm_create(g, &g->a, true, NR_VCPUS);
	guest_load(g, &g->a);
	for (unsigned int beat = 1; beat <= BEATS; beat++)
		for (unsigned int i = 0; i < NR_VCPUS; i++) {
			g->last_beat[i] = next_beat(&g->a, i);
			ck_assert_uint_eq(g->last_beat[i], 256 * beat);
		}
	for (unsigned int i = 0; i < NR_VCPUS; i++)
		finish_exit(&g->a, i);
	LIB_OK(sevm__kvm_caps_probe(g->a.fd, &g->caps_a));
	capture_vm(g, &g->a, &g->snap, &g->items);

	vm_create(g, &g->b, true, NR_VCPUS);
	LIB_OK(sevm__kvm_caps_probe(g->b.fd, &g->caps_b));
}

static void rig_down(struct rig *g)
{
	vm_destroy(g, &g->a);
	vm_destroy(g, &g->b);
	sevm__kvm_caps_free(&g->caps_a);
	sevm__kvm_caps_free(&g->caps_b);
	sevm__buf_free(&g->snap);
	close(g->ram_fd);
	close(g->kvm);
	ck_assert_int_eq(tu_count_fds(), g->fds);
}

static void print_items(uint64_t items)
{
	printf("vCPU items 0x%04llx:", (unsigned long long)items);
	for (int i = 0; i < SEVM__NR_VCPU_ITEMS; i++)
		if (items & (1ull << i))
			printf(" %s", item_names[i]);
	printf("\n");
}

/* ---- Tests --------------------------------------------------------------- */

START_TEST(handoff_resumes_on_the_next_beat)
{
	struct kvm_clock_data clock_a, clock_b;
	struct rig g;
	struct loaded l;

	rig_up(&g);
	load(&g.snap, &l, -1, 0);
	LIB_OK(restore(&g, &g.b, &l));

	for (unsigned int i = 0; i < NR_VCPUS; i++) {
		struct kvm_regs ra, rb;
		struct kvm_sregs sa, sb;

		OK(ioctl(g.a.vcpu[i], KVM_GET_REGS, &ra));
		OK(ioctl(g.b.vcpu[i], KVM_GET_REGS, &rb));
		ck_assert_msg(!memcmp(&ra, &rb, sizeof(ra)), "vCPU %u: REGS differ", i);
		OK(ioctl(g.a.vcpu[i], KVM_GET_SREGS, &sa));
		OK(ioctl(g.b.vcpu[i], KVM_GET_SREGS, &sb));
		ck_assert_msg(!memcmp(&sa, &sb, sizeof(sa)), "vCPU %u: SREGS differ", i);
		/* The payload is what A's getter returned: B now says the same. */
		ck_assert(!memcmp(find(&l, i, SEVM_SECT_REGS)->data, &rb, sizeof(rb)));
	}
	/* The clock goes on from the captured value, never back. */
	/* The clock comes last, so the receiver sets it just before running. */
	ck_assert_uint_eq(l.vm[l.nr_vm - 1].id, SEVM_SECT_VM_CLOCK);
	memcpy(&clock_a, l.vm[l.nr_vm - 1].data, sizeof(clock_a));
	OK(ioctl(g.b.fd, KVM_GET_CLOCK, &clock_b));
	ck_assert_uint_ge(clock_b.clock, clock_a.clock);

	/* No beat lost, none repeated; and B keeps counting. */
	for (unsigned int k = 1; k <= 3; k++)
		for (unsigned int i = 0; i < NR_VCPUS; i++)
			ck_assert_uint_eq(next_beat(&g.b, i), g.last_beat[i] + 256 * k);
	rig_down(&g);
}
END_TEST

/*
 * Restore l into B with its vCPUs' presets pre: `request` must be issued
 * once (for the preset the test made differ), and the guest resumes on its
 * next beat.  The presets are freed.
 */
static void restore_setting_once(struct rig *g, struct loaded *l, unsigned long request,
				 struct sevm__vcpu_preset *pre)
{
	struct tu_fault count = { .ops = TU_OP_IOCTL, .request = request };

	tu_fault_install(&count);
	LIB_OK(restore(g, &g->b, l));
	tu_fault_remove();
	ck_assert_uint_eq(count.calls, 1);
	for (unsigned int i = 0; i < NR_VCPUS; i++) {
		ck_assert_uint_eq(next_beat(&g->b, i), g->last_beat[i] + 256);
		sevm__vcpu_preset_free(&pre[i]);
	}
}

/*
 * Small items the fresh destination vCPU already holds (the tinyvm guest
 * never touches its debug registers) are not set again; a preset that
 * differs in one byte is.
 */
START_TEST(preset_small_items_are_not_set_again)
{
	struct sevm__vcpu_preset pre[NR_VCPUS];
	struct rig g;
	struct loaded l;

	rig_up(&g);
	load(&g.snap, &l, -1, 0);
	for (unsigned int i = 0; i < NR_VCPUS; i++) {
		LIB_OK(sevm__vcpu_preset_read(g.b.vcpu[i], &pre[i]));
		ck_assert(pre[i].have & SEVM__VCPU_ITEM(SEVM_SECT_DEBUGREGS));
		l.img[i].preset = &pre[i];
	}
	pre[1].debugregs.dr7 ^= 1;
	restore_setting_once(&g, &l, KVM_SET_DEBUGREGS, pre);
	rig_down(&g);
}
END_TEST

/*
 * A destination vCPU that already holds the guest's CPUID and TSC rate (its
 * VMM set them when it made it) gets neither set again; one that holds
 * another CPUID does.  Either way the guest resumes on its next beat.
 */
START_TEST(preset_state_is_not_set_again)
{
	struct sevm__vcpu_preset pre[NR_VCPUS];
	struct rig g;
	struct loaded l;

	rig_up(&g);
	load(&g.snap, &l, -1, 0);
	for (unsigned int i = 0; i < NR_VCPUS; i++) {
		/* B's "VMM" sets A's CPUID, as a VMM configured alike would. */
		OK(ioctl(g.b.vcpu[i], KVM_SET_CPUID2, (void *)find(&l, i, SEVM_SECT_CPUID)->data));
		LIB_OK(sevm__vcpu_preset_read(g.b.vcpu[i], &pre[i]));
		l.img[i].preset = &pre[i];
	}
	/* vCPU 1's preset differs in one byte: its CPUID must be set. */
	((uint8_t *)pre[1].cpuid)[pre[1].cpuid_len - 1] ^= 1;
	restore_setting_once(&g, &l, KVM_SET_CPUID2, pre);
	for (unsigned int i = 0; i < NR_VCPUS; i++)
		ck_assert_ptr_null(pre[i].cpuid);
	rig_down(&g);
}
END_TEST

/* Everything this kernel can get is captured, and reported in the bitmask. */
START_TEST(every_item_this_kernel_has_is_captured)
{
	struct sevm__kvm_caps *c;
	uint64_t want;
	struct rig g;
	struct loaded l;
	uint32_t nmsrs;

	rig_up(&g);
	c = &g.caps_a;
	want = ITEM(CPUID) | ITEM(TSC_KHZ) | ITEM(REGS) | ITEM(LAPIC) | ITEM(MSRS) |
	       ITEM(MP_STATE) | (c->sregs2 ? ITEM(SREGS2) : ITEM(SREGS)) |
	       (c->xsave_size ? ITEM(XSAVE) : ITEM(FPU)) | (c->xcrs ? ITEM(XCRS) : 0) |
	       (c->vcpu_events ? ITEM(EVENTS) : 0) | (c->debugregs ? ITEM(DEBUGREGS) : 0);
	print_items(g.items);
	printf("caps: xsave %u, sregs2 %d, xcrs %d, debugregs %d, vcpu_events %d, "
	       "tsc_control %d, nested %u, MSRs %u\n", c->xsave_size, c->sregs2, c->xcrs,
	       c->debugregs, c->vcpu_events, c->tsc_control, c->nested_size, c->nr_msrs);
	/* Nested state is absent when the vCPU has none to give, even with the cap. */
	ck_assert_uint_eq(g.items & ~ITEM(NESTED), want);
	if (!c->nested_size)
		ck_assert(!(g.items & ITEM(NESTED)));

	load(&g.snap, &l, -1, 0);
	memcpy(&nmsrs, find(&l, 0, SEVM_SECT_MSRS)->data, sizeof(nmsrs));
	ck_assert_uint_eq(nmsrs, c->nr_msrs);
	ck_assert_uint_gt(nmsrs, 0);
	if (c->xsave_size)
		ck_assert_uint_eq(find(&l, 1, SEVM_SECT_XSAVE)->len, c->xsave_size);
	/* PIC master and slave, IOAPIC, PIT, and the clock last. */
	ck_assert_uint_eq(l.nr_vm, 5);
	for (unsigned int k = 0; k < 3; k++) {
		ck_assert_uint_eq(l.vm[k].id, SEVM_SECT_IRQCHIP);
		ck_assert_uint_eq(l.vm[k].instance, k);
	}
	ck_assert_uint_eq(l.vm[3].id, SEVM_SECT_PIT2);
	ck_assert_uint_eq(l.vm[4].id, SEVM_SECT_VM_CLOCK);
	rig_down(&g);
}
END_TEST

/* One vCPU's sections: from its getters, or (sync) with a KVM_RUN's in place of three. */
static uint64_t capture_one(struct rig *g, struct vm *v, unsigned int i,
			    const struct kvm_sync_regs *sync, struct sevm__buf *buf)
{
	struct sevm__snap_writer w;
	uint64_t items;

	sevm__buf_reset(buf);
	sevm__snap_sections(&w, buf);
	LIB_OK(sevm__vcpu_capture_synced(&g->caps_a, v->vcpu[i], i, sync, &w, &items));
	return items;
}

static void same_section(const struct loaded *a, const struct loaded *b, unsigned int i,
			 uint32_t id)
{
	const struct sevm__sect *x = find(a, i, id), *y = find(b, i, id);

	ck_assert_uint_eq(x->len, y->len);
	ck_assert_msg(!memcmp(x->data, y->data, x->len), "vCPU %u: %s differs", i,
		      item_names[id - SEVM_SECT_CPUID]);
}

/*
 * What a KVM_RUN hands back (KVM_CAP_SYNC_REGS) is what the getters give:
 * registers, events, and the segment registers as SREGS2 — outside PAE
 * paging, where the PDPTRs are, which the getter then still reads.
 */
START_TEST(synced_items_equal_their_getters)
{
	struct sevm__buf x = { 0 }, y = { 0 };
	struct kvm_sync_regs sync;
	struct loaded lx, ly;
	struct kvm_sregs sr;
	bool synced;
	struct rig g;

	rig_up(&g);
	if ((g.caps_a.sync_regs & SEVM__SYNC_FIELDS) != SEVM__SYNC_FIELDS) {
		printf("SKIP synced_items_equal_their_getters: KVM_CAP_SYNC_REGS is 0x%x here\n",
		       g.caps_a.sync_regs);
		rig_down(&g);
		return;
	}
	/* A's vCPUs counted in real mode; vCPU 1 of B is put in PAE paging. */
	OK(ioctl(g.b.vcpu[1], KVM_GET_SREGS, &sr));
	sr.cr3 = 0x10000;
	sr.cr4 |= 1u << 5;
	sr.cr0 |= 1u | (1u << 31);
	OK(ioctl(g.b.vcpu[1], KVM_SET_SREGS, &sr));
	for (unsigned int k = 0; k < 2 * NR_VCPUS; k++) {
		struct vm *v = k < NR_VCPUS ? &g.a : &g.b;
		unsigned int i = k % NR_VCPUS;
		uint64_t items;

		LIB_OK(sevm__vcpu_quiesce_sync(v->vcpu[i], v->run[i], &sync, &synced));
		ck_assert(synced);
		items = capture_one(&g, v, i, &sync, &x);
		ck_assert_uint_eq(capture_one(&g, v, i, NULL, &y), items);
		load(&x, &lx, -1, 0);
		load(&y, &ly, -1, 0);
		same_section(&lx, &ly, i, SEVM_SECT_REGS);
		same_section(&lx, &ly, i, SEVM_SECT_EVENTS);
		same_section(&lx, &ly, i, g.caps_a.sregs2 ? SEVM_SECT_SREGS2 : SEVM_SECT_SREGS);
	}
	sevm__buf_free(&x);
	sevm__buf_free(&y);
	rig_down(&g);
}
END_TEST

/* Without an in-kernel irqchip there is no LAPIC, PIC, IOAPIC or PIT: left out, not faked. */
START_TEST(no_irqchip_leaves_those_out)
{
	struct sevm__buf buf = { 0 };
	struct sevm__kvm_caps caps;
	struct sevm__snap_writer w;
	struct sevm__snap_reader r;
	struct sevm__sect s;
	uint64_t items;
	uint32_t flags;
	struct rig g;
	struct vm c;

	rig_up(&g);
	vm_create(&g, &c, false, 1);
	LIB_OK(sevm__kvm_caps_probe(c.fd, &caps));
	sevm__snap_sections(&w, &buf);
	LIB_OK(sevm__vcpu_capture(&caps, c.vcpu[0], 0, &w, &items));
	ck_assert_uint_eq(items, g.items & ~ITEM(LAPIC));
	LIB_OK(sevm__vm_flags(c.fd, &flags));
	ck_assert_uint_eq(flags, 0);
	LIB_OK(sevm__vm_flags(g.a.fd, &flags));
	ck_assert_uint_eq(flags, SEVM_GUEST_IRQCHIP | SEVM_GUEST_PIT);

	sevm__buf_reset(&buf);
	sevm__snap_sections(&w, &buf);
	LIB_OK(sevm__vm_capture(c.fd, &w));
	sevm__snap_reader_sections(&r, buf.data, buf.len);
	ck_assert_int_eq(sevm__snap_next(&r, &s), 1);
	ck_assert_uint_eq(s.id, SEVM_SECT_VM_CLOCK);
	ck_assert_int_eq(sevm__snap_next(&r, &s), 0);
	sevm__buf_free(&buf);
	sevm__kvm_caps_free(&caps);
	vm_destroy(&g, &c);
	rig_down(&g);
}
END_TEST

/*
 * A snapshot cut short (one item of vCPU 1 missing) is refused before any
 * setter runs, naming the item, whichever item it is.
 */
START_TEST(truncated_image_is_refused_before_any_setter)
{
	struct rig g;

	rig_up(&g);
	for (int bit = 0; bit < SEVM__NR_VCPU_ITEMS; bit++) {
		struct tu_fault count = { .ops = TU_OP_IOCTL };
		uint32_t id = SEVM_SECT_CPUID + bit;
		struct loaded l;
		char want[64];
		int r;

		if (!(g.items & (1ull << bit)))
			continue;
		load(&g.snap, &l, 1, id);
		tu_fault_install(&count);
		r = sevm__vcpu_restore(&g.caps_b, g.b.vcpu[1], 1, &l.img[1], g.items);
		tu_fault_remove();
		ck_assert_int_eq(r, -SEVM_ERR_FORMAT);
		snprintf(want, sizeof(want), "vCPU 1: snapshot lacks %s:", item_names[bit]);
		ck_assert_msg(strstr(sevm_last_error(), want), "%s", sevm_last_error());
		ck_assert_uint_eq(count.calls, 0);
	}
	rig_down(&g);
}
END_TEST

/* An item the GUEST section does not list, or two forms of one state: refused. */
START_TEST(unlisted_or_doubled_item_is_refused)
{
	struct sevm__vcpu_image img;
	struct sevm__sect fake;
	struct rig g;
	struct loaded l;

	rig_up(&g);
	load(&g.snap, &l, -1, 0);
	ck_assert_int_eq(sevm__vcpu_restore(&g.caps_b, g.b.vcpu[0], 0, &l.img[0],
					    g.items & ~ITEM(MSRS)), -SEVM_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "vCPU 0: snapshot has MSRS, which"));
	ck_assert_int_eq(sevm__vcpu_restore(&g.caps_b, g.b.vcpu[0], 0, &l.img[0],
					    g.items | (1ull << 20)), -SEVM_ERR_FORMAT);

	/* A section twice is refused as it arrives. */
	img = l.img[0];
	ck_assert_int_eq(sevm__vcpu_image_add(&img, find(&l, 0, SEVM_SECT_REGS)),
			 -SEVM_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "REGS section twice"));

	/* SREGS next to SREGS2 (or FPU next to XSAVE): which one would win? */
	if (g.items & ITEM(SREGS2)) {
		uint8_t sregs[sizeof(struct kvm_sregs)] = { 0 };

		fake = (struct sevm__sect){ .id = SEVM_SECT_SREGS, .instance = 0,
					    .len = sizeof(sregs), .data = sregs };
		LIB_OK(sevm__vcpu_image_add(&img, &fake));
		ck_assert_int_eq(sevm__vcpu_restore(&g.caps_b, g.b.vcpu[0], 0, &img,
						    g.items | ITEM(SREGS)), -SEVM_ERR_FORMAT);
		ck_assert_ptr_nonnull(strstr(sevm_last_error(), "both SREGS2 and SREGS"));
	}
	rig_down(&g);
}
END_TEST

/* Every captured item one byte short, or a count that does not match its length. */
START_TEST(wrong_size_section_is_refused)
{
	struct sevm__sect s, bad;
	uint8_t *copy;
	struct rig g;
	struct loaded l;

	rig_up(&g);
	load(&g.snap, &l, -1, 0);
	for (int bit = 0; bit < SEVM__NR_VCPU_ITEMS; bit++) {
		struct sevm__vcpu_image img = { 0 };

		if (!(g.items & (1ull << bit)))
			continue;
		s = *find(&l, 0, SEVM_SECT_CPUID + bit);
		bad = s;
		bad.len = s.len - 1;
		ck_assert_int_eq(sevm__vcpu_image_add(&img, &bad), -SEVM_ERR_FORMAT);
		ck_assert_msg(strstr(sevm_last_error(), item_names[bit]), "%s",
			      sevm_last_error());
		ck_assert_uint_eq(img.items, 0);
	}

	/* Counted payloads: the count must match the length and stay bounded. */
	s = *find(&l, 0, SEVM_SECT_MSRS);
	copy = malloc(s.len + 16);
	memcpy(copy, s.data, s.len);
	bad = (struct sevm__sect){ .id = s.id, .len = s.len + 16, .data = copy };
	{
		struct sevm__vcpu_image img = { 0 };

		ck_assert_int_eq(sevm__vcpu_image_add(&img, &bad), -SEVM_ERR_FORMAT);
		ck_assert_ptr_nonnull(strstr(sevm_last_error(), "MSRS section of"));
		copy[0] = 0x01;	/* nmsrs 1025 */
		copy[1] = 0x04;
		copy[2] = copy[3] = 0;
		bad.len = 8 + 1025 * 16;
		ck_assert_int_eq(sevm__vcpu_image_add(&img, &bad), -SEVM_ERR_FORMAT);
		ck_assert_ptr_nonnull(strstr(sevm_last_error(), "limit 1024"));
	}
	free(copy);
	s = *find(&l, 0, SEVM_SECT_CPUID);
	bad = s;
	bad.len = s.len - sizeof(struct kvm_cpuid_entry2);
	{
		struct sevm__vcpu_image img = { 0 };

		ck_assert_int_eq(sevm__vcpu_image_add(&img, &bad), -SEVM_ERR_FORMAT);
		bad = (struct sevm__sect){ .id = SEVM_SECT_VM_CLOCK, .len = 48, .data = s.data };
		ck_assert_int_eq(sevm__vcpu_image_add(&img, &bad), -SEVM_ERR_FORMAT);
		ck_assert_ptr_nonnull(strstr(sevm_last_error(), "not a vCPU item"));
	}

	/* VM-wide sections: exact sizes, the chip id matching the instance. */
	for (unsigned int k = 0; k < l.nr_vm; k++) {
		bad = l.vm[k];
		bad.len -= 1;
		ck_assert_int_eq(sevm__vm_restore_section(g.b.fd, &bad), -SEVM_ERR_FORMAT);
	}
	bad = l.vm[0];
	bad.instance = 2;
	ck_assert_int_eq(sevm__vm_restore_section(g.b.fd, &bad), -SEVM_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "instance 2 holds chip 0"));
	bad = (struct sevm__sect){ .id = 0x0020, .flags = SEVM_SNAP_MANDATORY };
	ck_assert_int_eq(sevm__vm_restore_section(g.b.fd, &bad), -SEVM_ERR_FORMAT);
	bad.flags = 0;
	ck_assert_int_eq(sevm__vm_restore_section(g.b.fd, &bad), 0);
	rig_down(&g);
}
END_TEST

/* State the destination kernel cannot set is refused with EOPNOTSUPP, never dropped. */
START_TEST(missing_setter_is_refused)
{
	struct sevm__kvm_caps caps;
	struct rig g;
	struct loaded l;

	rig_up(&g);
	load(&g.snap, &l, -1, 0);
	if (g.items & ITEM(XSAVE)) {
		caps = g.caps_b;
		caps.xsave_size += 4096;
		ck_assert_int_eq(sevm__vcpu_restore(&caps, g.b.vcpu[0], 0, &l.img[0], g.items),
				 -EOPNOTSUPP);
		ck_assert_ptr_nonnull(strstr(sevm_last_error(), "vCPU 0: XSAVE of"));
		caps.xsave_size = 0;
		ck_assert_int_eq(sevm__vcpu_restore(&caps, g.b.vcpu[0], 0, &l.img[0], g.items),
				 -EOPNOTSUPP);
		ck_assert_ptr_nonnull(strstr(sevm_last_error(), "lacks KVM_CAP_XSAVE"));
	}
	if (g.items & ITEM(SREGS2)) {
		caps = g.caps_b;
		caps.sregs2 = false;
		ck_assert_int_eq(sevm__vcpu_restore(&caps, g.b.vcpu[0], 0, &l.img[0], g.items),
				 -EOPNOTSUPP);
		ck_assert_ptr_nonnull(strstr(sevm_last_error(),
					     "the snapshot has SREGS2, this kernel lacks "
					     "KVM_CAP_SREGS2"));
	}
	/* A TSC rate this kernel cannot give the guest. */
	if (!g.caps_b.tsc_control) {
		struct sevm__vcpu_image img = l.img[0];
		struct sevm__sect *t = &img.sect[SEVM_SECT_TSC_KHZ - SEVM_SECT_CPUID];
		uint32_t khz;

		memcpy(&khz, t->data, sizeof(khz));
		khz += 1000;
		t->data = &khz;
		ck_assert_int_eq(sevm__vcpu_restore(&g.caps_b, g.b.vcpu[0], 0, &img, g.items),
				 -EOPNOTSUPP);
		ck_assert_ptr_nonnull(strstr(sevm_last_error(), "vCPU 0: TSC_KHZ"));
	}
	rig_down(&g);
}
END_TEST

struct logged {
	int lines;
	char last[512];
};

static void logger(enum sevm_log_level level, const char *msg, void *user)
{
	struct logged *l = user;

	if (level != SEVM_LOG_INFO)
		return;
	l->lines++;
	snprintf(l->last, sizeof(l->last), "%s", msg);
}

/* An MSR the list names but the vCPU cannot read leaves the list, once. */
START_TEST(unreadable_msr_leaves_the_list)
{
	struct logged log = { 0 };
	uint32_t n, *orig, *msrs;
	struct sevm__buf buf = { 0 };
	struct sevm__snap_writer w;
	uint64_t items;
	struct rig g;

	rig_up(&g);
	n = g.caps_a.nr_msrs;
	orig = malloc(n * sizeof(*orig));
	memcpy(orig, g.caps_a.msrs, n * sizeof(*orig));
	msrs = realloc(g.caps_a.msrs, (n + 2) * sizeof(*msrs));
	ck_assert_ptr_nonnull(msrs);
	memmove(msrs + 4, msrs + 3, (n - 3) * sizeof(*msrs));
	msrs[3] = NO_SUCH_MSR;
	msrs[n + 1] = NO_SUCH_MSR - 1;
	g.caps_a.msrs = msrs;
	g.caps_a.nr_msrs = n + 2;

	sevm_set_log(logger, &log);
	sevm__snap_sections(&w, &buf);
	LIB_OK(sevm__vcpu_capture(&g.caps_a, g.a.vcpu[0], 0, &w, &items));
	LIB_OK(sevm__vcpu_capture(&g.caps_a, g.a.vcpu[1], 1, &w, &items));
	sevm_set_log(NULL, NULL);
	ck_assert_uint_eq(items, g.items);
	ck_assert_uint_eq(g.caps_a.nr_msrs, n);
	ck_assert(!memcmp(g.caps_a.msrs, orig, n * sizeof(*orig)));
	ck_assert_int_eq(log.lines, 2);
	ck_assert_ptr_nonnull(strstr(log.last, "vCPU 0: KVM_GET_MSRS cannot read MSR 0x4b564dfe"));
	/* Both vCPUs' MSRS sections hold exactly the readable list. */
	{
		struct loaded l, ref;

		load(&buf, &l, -1, 0);
		load(&g.snap, &ref, -1, 0);
		for (unsigned int i = 0; i < NR_VCPUS; i++)
			ck_assert_uint_eq(find(&l, i, SEVM_SECT_MSRS)->len,
					  find(&ref, i, SEVM_SECT_MSRS)->len);
	}
	free(orig);
	sevm__buf_free(&buf);
	rig_down(&g);
}
END_TEST

/* Pretends the kernel refused one MSR: sets those before it and stops there. */
static struct {
	uint32_t msr;
	unsigned int sets;
	uint32_t last_nmsrs;
} refuse;

static int refusing_ioctl(void *ctx, int fd, unsigned long request, void *arg)
{
	struct kvm_msrs *m = arg;
	int r;

	(void)ctx;
	if (request == KVM_SET_MSRS) {
		refuse.sets++;
		refuse.last_nmsrs = m->nmsrs;
		for (uint32_t k = 0; k < m->nmsrs; k++) {
			struct kvm_msrs *head;

			if (m->entries[k].index != refuse.msr)
				continue;
			head = malloc(sizeof(*head) + k * sizeof(head->entries[0]));
			head->nmsrs = k;
			head->pad = 0;
			memcpy(head->entries, m->entries, k * sizeof(head->entries[0]));
			r = ioctl(fd, request, head);
			free(head);
			return r < 0 ? -errno : r;
		}
	}
	r = ioctl(fd, request, arg);
	return r < 0 ? -errno : r;
}

static uint64_t msr_value(const struct sevm__sect *s, uint32_t index)
{
	const uint8_t *p = (const uint8_t *)s->data + sizeof(struct kvm_msrs);
	uint32_t n;

	memcpy(&n, s->data, sizeof(n));
	for (uint32_t k = 0; k < n; k++) {
		struct kvm_msr_entry e;

		memcpy(&e, p + k * sizeof(e), sizeof(e));
		if (e.index == index)
			return e.data;
	}
	ck_abort_msg("MSR 0x%x not captured", index);
	return 0;
}

/*
 * KVM_SET_MSRS stopping early is accepted only where the destination already
 * holds the value; the rest of the list is still set.
 */
START_TEST(refused_msr_is_checked_on_the_destination)
{
	const struct sevm_backend b = { .sz = sizeof(b), .ioctl = refusing_ioctl };
	struct { uint32_t nmsrs, pad; struct kvm_msr_entry e; } one = { .nmsrs = 1 };
	uint8_t *payload;
	struct sevm__sect s;
	struct rig g;
	struct loaded l;
	uint32_t n;
	uint64_t want;
	int r;

	rig_up(&g);
	load(&g.snap, &l, -1, 0);
	LIB_OK(restore(&g, &g.b, &l));

	/* Harmless: B holds SYSENTER_CS already; the MSRs after it are still sent. */
	refuse.msr = MSR_SYSENTER_CS;
	refuse.sets = 0;
	sevm_set_backend(&b);
	r = sevm__vcpu_restore(&g.caps_b, g.b.vcpu[0], 0, &l.img[0], g.items);
	sevm_set_backend(NULL);
	ck_assert_msg(r == 0, "%s", sevm_last_error());
	ck_assert_uint_eq(refuse.sets, 2);
	memcpy(&n, find(&l, 0, SEVM_SECT_MSRS)->data, sizeof(n));
	ck_assert_uint_lt(refuse.last_nmsrs, n);

	/* Not harmless: B holds another value. */
	want = msr_value(find(&l, 0, SEVM_SECT_MSRS), MSR_SYSENTER_CS);
	one.e.index = MSR_SYSENTER_CS;
	one.e.data = want ^ 0x10;
	ck_assert_int_eq(OK(ioctl(g.b.vcpu[0], KVM_SET_MSRS, &one)), 1);
	sevm_set_backend(&b);
	r = sevm__vcpu_restore(&g.caps_b, g.b.vcpu[0], 0, &l.img[0], g.items);
	sevm_set_backend(NULL);
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_msg(strstr(sevm_last_error(), "vCPU 0: KVM_SET_MSRS refused MSR 0x174"),
		      "%s", sevm_last_error());

	/* A real refusal by this kernel: an MSR it does not have, in the middle. */
	s = *find(&l, 0, SEVM_SECT_MSRS);
	payload = malloc(s.len + 16);
	memcpy(payload, s.data, 8 + 16 * 2);
	{
		struct kvm_msr_entry bogus = { .index = NO_SUCH_MSR };

		memcpy(payload + 8 + 16 * 2, &bogus, sizeof(bogus));
	}
	memcpy(payload + 8 + 16 * 3, (const uint8_t *)s.data + 8 + 16 * 2, s.len - 8 - 16 * 2);
	n += 1;
	memcpy(payload, &n, sizeof(n));
	{
		struct sevm__vcpu_image img = l.img[0];

		img.items &= ~ITEM(MSRS);
		s.len += 16;
		s.data = payload;
		LIB_OK(sevm__vcpu_image_add(&img, &s));
		r = sevm__vcpu_restore(&g.caps_b, g.b.vcpu[0], 0, &img, g.items);
	}
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_msg(strstr(sevm_last_error(), "vCPU 0: KVM_SET_MSRS refused MSR 0x4b564dff"),
		      "%s", sevm_last_error());
	printf("a refused MSR reads: %s\n", sevm_last_error());
	free(payload);
	rig_down(&g);
}
END_TEST

/* An item the VM lacks is rewound out of the writer: what was written still parses. */
START_TEST(absent_item_leaves_no_trace)
{
	struct tu_fault f = { .ops = TU_OP_IOCTL, .request = KVM_GET_LAPIC, .fail_at = 1,
			      .err = -ENXIO };
	struct sevm__buf buf = { 0 };
	struct sevm__snap_writer w;
	uint64_t items;
	struct rig g;
	struct loaded l;

	rig_up(&g);
	sevm__snap_sections(&w, &buf);
	tu_fault_install(&f);
	LIB_OK(sevm__vcpu_capture(&g.caps_a, g.a.vcpu[0], 0, &w, &items));
	tu_fault_remove();
	ck_assert_uint_eq(f.injected, 1);
	ck_assert_uint_eq(items, g.items & ~ITEM(LAPIC));
	ck_assert_uint_eq(w.open_at, SIZE_MAX);
	LIB_OK(sevm__vcpu_capture(&g.caps_a, g.a.vcpu[1], 1, &w, &items));
	ck_assert_uint_eq(items, g.items);
	load(&buf, &l, -1, 0);
	ck_assert_uint_eq(l.img[0].items, g.items & ~ITEM(LAPIC));
	ck_assert_uint_eq(l.img[1].items, g.items);
	ck_assert_uint_eq(w.nr_sections, __builtin_popcountll(g.items) * 2 - 1);
	sevm__buf_free(&buf);
	rig_down(&g);
}
END_TEST

/*
 * Each ioctl of a capture, a restore and a caps probe failing in turn: the
 * error names the vCPU and the call, no section is left open, no fd leaks.
 */
START_TEST(every_failing_call_is_reported)
{
	struct tu_fault count = { .ops = TU_OP_ALL };
	struct sevm__buf buf = { 0 };
	struct sevm__snap_writer w;
	struct sevm__kvm_caps caps;
	unsigned int calls;
	uint64_t items;
	struct rig g;
	struct loaded l;
	int fds;

	rig_up(&g);
	load(&g.snap, &l, -1, 0);
	sevm__snap_sections(&w, &buf);
	tu_fault_install(&count);
	LIB_OK(sevm__vcpu_capture(&g.caps_a, g.a.vcpu[1], 1, &w, &items));
	tu_fault_remove();
	calls = count.calls;
	ck_assert_uint_ge(calls, 8);
	for (unsigned int k = 1; k <= calls; k++) {
		struct tu_fault f = { .ops = TU_OP_ALL, .fail_at = k, .err = -EIO };

		sevm__buf_reset(&buf);
		sevm__snap_sections(&w, &buf);
		tu_fault_install(&f);
		ck_assert_int_eq(sevm__vcpu_capture(&g.caps_a, g.a.vcpu[1], 1, &w, &items), -EIO);
		tu_fault_remove();
		ck_assert_msg(!strncmp(sevm_last_error(), "vCPU 1: KVM_GET_", 16), "%s",
			      sevm_last_error());
		ck_assert_uint_eq(w.open_at, SIZE_MAX);
	}

	tu_fault_install(&count);
	LIB_OK(sevm__vcpu_restore(&g.caps_b, g.b.vcpu[1], 1, &l.img[1], g.items));
	tu_fault_remove();
	calls = count.calls;
	for (unsigned int k = 1; k <= calls; k++) {
		struct tu_fault f = { .ops = TU_OP_ALL, .fail_at = k, .err = -EIO };

		tu_fault_install(&f);
		ck_assert_int_eq(sevm__vcpu_restore(&g.caps_b, g.b.vcpu[1], 1, &l.img[1],
						    g.items), -EIO);
		tu_fault_remove();
		ck_assert_msg(!strncmp(sevm_last_error(), "vCPU 1: KVM_", 12), "%s",
			      sevm_last_error());
	}

	fds = tu_count_fds();
	tu_fault_install(&count);
	LIB_OK(sevm__kvm_caps_probe(g.b.fd, &caps));
	tu_fault_remove();
	sevm__kvm_caps_free(&caps);
	calls = count.calls;
	for (unsigned int k = 1; k <= calls; k++) {
		struct tu_fault f = { .ops = TU_OP_ALL, .fail_at = k, .err = -EIO };
		int r;

		tu_fault_install(&f);
		r = sevm__kvm_caps_probe(g.b.fd, &caps);
		tu_fault_remove();
		/* A failed close is no failure: the fd is gone either way. */
		if (r == 0)
			ck_assert_uint_eq(k, calls);
		else
			ck_assert_msg(strstr(sevm_last_error(), "KVM capabilities: "), "%s",
				      sevm_last_error());
		sevm__kvm_caps_free(&caps);
		ck_assert_int_eq(tu_count_fds(), fds);
	}
	sevm__buf_free(&buf);
	rig_down(&g);
}
END_TEST

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Not asserted (shared machines); printed for the report. */
START_TEST(cost_per_vcpu)
{
	static double cap[ROUNDS * NR_VCPUS], res[ROUNDS * NR_VCPUS], vmc[ROUNDS], vmr[ROUNDS];
	struct sevm__buf buf = { 0 };
	struct rig g;
	struct loaded l;

	rig_up(&g);
	for (int k = 0; k < ROUNDS; k++) {
		struct sevm__snap_writer w;
		uint64_t items;
		double t;

		sevm__buf_reset(&buf);
		sevm__snap_sections(&w, &buf);
		for (unsigned int i = 0; i < NR_VCPUS; i++) {
			t = now_us();
			LIB_OK(sevm__vcpu_capture(&g.caps_a, g.a.vcpu[i], i, &w, &items));
			cap[k * NR_VCPUS + i] = now_us() - t;
		}
		t = now_us();
		LIB_OK(sevm__vm_capture(g.a.fd, &w));
		vmc[k] = now_us() - t;
	}
	load(&buf, &l, -1, 0);
	for (int k = 0; k < ROUNDS; k++) {
		double t;

		for (unsigned int i = 0; i < NR_VCPUS; i++) {
			t = now_us();
			LIB_OK(sevm__vcpu_restore(&g.caps_b, g.b.vcpu[i], i, &l.img[i], g.items));
			res[k * NR_VCPUS + i] = now_us() - t;
		}
		t = now_us();
		for (unsigned int v = 0; v < l.nr_vm; v++)
			LIB_OK(sevm__vm_restore_section(g.b.fd, &l.vm[v]));
		vmr[k] = now_us() - t;
	}
	printf("per vCPU (%u MSRs), median of %d: capture %.1f us, restore %.1f us; "
	       "VM-wide: capture %.1f us, restore %.1f us; %zu snapshot bytes for %d vCPUs\n",
	       g.caps_a.nr_msrs, ROUNDS * NR_VCPUS, median(cap, ROUNDS * NR_VCPUS),
	       median(res, ROUNDS * NR_VCPUS), median(vmc, ROUNDS), median(vmr, ROUNDS),
	       buf.len, NR_VCPUS);
	/* B still resumes on the next beat after all that. */
	for (unsigned int i = 0; i < NR_VCPUS; i++)
		ck_assert_uint_eq(next_beat(&g.b, i), g.last_beat[i] + 256);
	sevm__buf_free(&buf);
	rig_down(&g);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("state");
	TCase *tc = tcase_create("kvm");

	tu_require_kvm();
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, handoff_resumes_on_the_next_beat);
	tcase_add_test(tc, preset_state_is_not_set_again);
	tcase_add_test(tc, preset_small_items_are_not_set_again);
	tcase_add_test(tc, every_item_this_kernel_has_is_captured);
	tcase_add_test(tc, synced_items_equal_their_getters);
	tcase_add_test(tc, no_irqchip_leaves_those_out);
	tcase_add_test(tc, truncated_image_is_refused_before_any_setter);
	tcase_add_test(tc, unlisted_or_doubled_item_is_refused);
	tcase_add_test(tc, wrong_size_section_is_refused);
	tcase_add_test(tc, missing_setter_is_refused);
	tcase_add_test(tc, unreadable_msr_leaves_the_list);
	tcase_add_test(tc, refused_msr_is_checked_on_the_destination);
	tcase_add_test(tc, absent_item_leaves_no_trace);
	tcase_add_test(tc, every_failing_call_is_reported);
	tcase_add_test(tc, cost_per_vcpu);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
