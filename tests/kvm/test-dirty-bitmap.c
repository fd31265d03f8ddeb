/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sevm_bitmap_add_dirty_log on real KVM.  KVM logs only guest writes, so a
 * tiny real-mode guest writes a byte to each of a chosen set of pages of a
 * 4 MiB slot made with KVM_MEM_LOG_DIRTY_PAGES, and halts.  Exactly those
 * pages must come out, at base_gfn; after a read with clear, the next read
 * is empty, and the guest's next writes are logged again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <sevmigrate.h>

#include "testutil.h"

#define SLOT		0
#define RAM_SIZE	(4u << 20)
#define NPAGES		(RAM_SIZE / 4096)
#define CODE_GPA	0x1000
#define TABLE_GPA	0x1100		/* u32 addresses to write to, 0-terminated */

/*
 * 16-bit real mode; DS is given a 4 GiB limit (big real mode), so the
 * 32-bit address override reaches the whole slot.
 *   0: mov si, TABLE_GPA	be 00 11
 *   3: mov ebx, [si]		66 8b 1c
 *   6: test ebx, ebx		66 85 db
 *   9: jz 20			74 09
 *  11: mov byte [ebx], 1	67 c6 03 01
 *  15: add si, 4		83 c6 04
 *  18: jmp 3			eb ef
 *  20: hlt			f4
 */
static const uint8_t guest_code[] = {
	0xbe, TABLE_GPA & 0xff, TABLE_GPA >> 8, 0x66, 0x8b, 0x1c, 0x66, 0x85, 0xdb, 0x74, 0x09,
	0x67, 0xc6, 0x03, 0x01, 0x83, 0xc6, 0x04, 0xeb, 0xef, 0xf4,
};

/* Pages the guest writes: word edges, chunk-free neighbours, the last page, one twice. */
static const uint32_t pages[] = { 0, 3, 63, 64, 65, 511, 512, 700, 700, 1023 };
static const uint32_t distinct = 9;

static int kvm = -1, vm = -1, vcpu = -1;
static struct kvm_run *run;
static size_t run_size;
static uint8_t *ram;
static bool manual_protect;

#define OK(call)								\
	({									\
		int r_ = (call);						\
		ck_assert_msg(r_ >= 0, "%s: %s", #call, strerror(errno));	\
		r_;								\
	})

#define LIB_OK(call)								\
	ck_assert_msg((call) == 0, "%s: %s", #call, sevm_last_error())

static void vm_setup(void)
{
	struct kvm_userspace_memory_region mr = {
		.slot = SLOT, .flags = KVM_MEM_LOG_DIRTY_PAGES, .memory_size = RAM_SIZE,
	};
	uint32_t *table;

	kvm = OK(open("/dev/kvm", O_RDWR | O_CLOEXEC));
	vm = OK(ioctl(kvm, KVM_CREATE_VM, 0));
	if (manual_protect) {
		/* Before the slot exists: GET_DIRTY_LOG then leaves the bits to CLEAR_DIRTY_LOG. */
		struct kvm_enable_cap cap = {
			.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
			.args = { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE },
		};

		OK(ioctl(vm, KVM_ENABLE_CAP, &cap));
	}
	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(ram, MAP_FAILED);
	/* The VMM's own writes are not logged: code and table go in before the guest runs. */
	memcpy(ram + CODE_GPA, guest_code, sizeof(guest_code));
	table = (uint32_t *)(ram + TABLE_GPA);
	for (unsigned int i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		table[i] = pages[i] * 4096 + 16 + 8 * i;	/* never 0, the end mark */
	mr.userspace_addr = (uintptr_t)ram;
	OK(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mr));
	vcpu = OK(ioctl(vm, KVM_CREATE_VCPU, 0));
	run_size = (size_t)OK(ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0));
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	ck_assert_ptr_ne(run, MAP_FAILED);
}

static void vm_teardown(void)
{
	if (run && run != MAP_FAILED)
		munmap(run, run_size);
	if (ram && ram != MAP_FAILED)
		munmap(ram, RAM_SIZE);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	if (kvm >= 0)
		close(kvm);
	vcpu = vm = kvm = -1;
	run = NULL;
	ram = NULL;
}

/* From the top of the code, in big real mode, until the hlt. */
static void guest_run(void)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = CODE_GPA, .rflags = 2 };

	OK(ioctl(vcpu, KVM_GET_SREGS, &sregs));
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	sregs.ds.limit = 0xffffffff;
	sregs.ds.g = 1;
	OK(ioctl(vcpu, KVM_SET_SREGS, &sregs));
	OK(ioctl(vcpu, KVM_SET_REGS, &regs));
	OK(ioctl(vcpu, KVM_RUN, 0));
	ck_assert_msg(run->exit_reason == KVM_EXIT_HLT, "exit reason %u", run->exit_reason);
}

static struct sevm_bitmap *read_log(uint64_t base_gfn, bool clear)
{
	struct sevm_gfn_range r = { base_gfn, NPAGES };
	struct sevm_bitmap *b = NULL;

	LIB_OK(sevm_bitmap_new(&r, 1, &b));
	LIB_OK(sevm_bitmap_add_dirty_log(b, vm, SLOT, base_gfn, NPAGES, clear));
	return b;
}

/* Exactly the guest's pages, at base_gfn. */
static void assert_written(const struct sevm_bitmap *b, uint64_t base_gfn)
{
	ck_assert_int_eq(sevm_bitmap_count(b, base_gfn, NPAGES), distinct);
	for (unsigned int i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		ck_assert_int_eq(sevm_bitmap_test(b, base_gfn + pages[i]), 1);
}

START_TEST(guest_writes_come_out)
{
	struct sevm_bitmap *b;
	struct sevm_gfn_range run_out;

	vm_setup();
	guest_run();
	b = read_log(0, false);
	assert_written(b, 0);
	/* Runs: 0 alone, 3 alone, 63..65 together. */
	ck_assert_int_eq(sevm_bitmap_next_run(b, 1, true, &run_out), 1);
	ck_assert_uint_eq(run_out.gfn, 3);
	ck_assert_uint_eq(run_out.npages, 1);
	ck_assert_int_eq(sevm_bitmap_next_run(b, 4, true, &run_out), 1);
	ck_assert_uint_eq(run_out.gfn, 63);
	ck_assert_uint_eq(run_out.npages, 3);
	sevm_bitmap_free(b);

	/* Somewhere else in guest physical space: ORed in at base_gfn. */
	b = read_log(1ull << 20, false);
	if (manual_protect)
		assert_written(b, 1ull << 20);
	sevm_bitmap_free(b);
	vm_teardown();
}
END_TEST

START_TEST(clear_empties_and_rearms)
{
	struct sevm_bitmap *b;

	vm_setup();
	guest_run();
	b = read_log(0, true);
	assert_written(b, 0);
	sevm_bitmap_free(b);
	b = read_log(0, false);
	ck_assert_int_eq(sevm_bitmap_count(b, 0, NPAGES), 0);
	sevm_bitmap_free(b);
	/* Write protection is back: the same writes are logged again. */
	guest_run();
	b = read_log(0, true);
	assert_written(b, 0);
	sevm_bitmap_free(b);
	vm_teardown();
}
END_TEST

START_TEST(refusals)
{
	struct sevm_gfn_range r = { 0, NPAGES };
	struct sevm_bitmap *b = NULL;

	vm_setup();
	LIB_OK(sevm_bitmap_new(&r, 1, &b));
	ck_assert_int_eq(sevm_bitmap_add_dirty_log(b, vm, SLOT, 1, NPAGES, false), -ERANGE);
	ck_assert_int_eq(sevm_bitmap_add_dirty_log(b, vm, SLOT, 0, 0, false), -EINVAL);
	ck_assert_int_eq(sevm_bitmap_add_dirty_log(NULL, vm, SLOT, 0, NPAGES, false), -EINVAL);
	ck_assert_int_eq(sevm_bitmap_add_dirty_log(b, -1, SLOT, 0, NPAGES, false), -EBADF);
	/* A slot that does not exist: KVM says ENOENT (or EINVAL past the slot ids). */
	ck_assert_int_lt(sevm_bitmap_add_dirty_log(b, vm, 7, 0, NPAGES, false), 0);
	ck_assert_int_eq(sevm_bitmap_count(b, 0, NPAGES), 0);
	/* The proposed page-encryption bitmap ioctl: never issued, the way out named. */
	ck_assert_int_eq(sevm_bitmap_add_enc_bitmap(b, vm), -EOPNOTSUPP);
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "KVM_GET_PAGE_ENC_BITMAP"));
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "sevm_bitmap_map_gpa_range"));
	ck_assert_int_eq(sevm_bitmap_add_enc_bitmap(b, -1), -EINVAL);
	ck_assert_int_eq(sevm_bitmap_add_enc_bitmap(NULL, vm), -EINVAL);
	sevm_bitmap_free(b);
	vm_teardown();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dirty-bitmap");
	TCase *tc = tcase_create("kvm");
	int fd, r;

	tu_require_kvm();
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	r = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	close(fd);
	manual_protect = r > 0 && (r & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
	tcase_add_test(tc, guest_writes_come_out);
	tcase_add_test(tc, refusals);
	if (manual_protect)
		tcase_add_test(tc, clear_empties_and_rearms);
	else
		printf("SKIP: clear_empties_and_rearms: no KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2\n");
	tcase_add_checked_fixture(tc, NULL, vm_teardown);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
