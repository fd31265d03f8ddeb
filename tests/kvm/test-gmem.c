/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guest_memfd on this host's real KVM: create with every flag combination
 * the kernel offers, bind, the refusals with the rule they break, link
 * (absent), memory attributes (absent here; the loop and the record on a
 * seam that has them), and the handoff's check of a guest_memfd region.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "abi/compat.h"
#include "handoff/regions.h"
#include "kvm/gmem.h"
#include "testutil.h"

#define MB (1ull << 20)
#define BOTH (SEVM_GMEM_MMAP | SEVM_GMEM_INIT_SHARED)

static int kvm_fd = -1;
static int flags_mask;	/* KVM_CAP_GUEST_MEMFD_FLAGS */

static int new_vm(void)
{
	int vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);

	ck_assert_int_ge(vm, 0);
	return vm;
}

static bool has(const char *needle)
{
	return strstr(sevm_last_error(), needle) != NULL;
}

START_TEST(create_each_offered_flag_combination)
{
	int vm = new_vm();

	for (uint64_t f = 0; f <= BOTH; f++) {
		int fd, fdflags;
		struct stat st;
		void *m;

		if (f & ~(uint64_t)flags_mask)
			continue;
		fd = sevm_gmem_create(vm, MB, f);
		ck_assert_msg(fd >= 0, "flags 0x%llx: %s", (unsigned long long)f, sevm_last_error());
		fdflags = fcntl(fd, F_GETFD);
		ck_assert(fdflags & FD_CLOEXEC);
		ck_assert(sevm__is_gmem(fd));
		/* Measured on 6.18: S_IFREG, and st_size is the size it was created with. */
		ck_assert_int_eq(fstat(fd, &st), 0);
		ck_assert(S_ISREG(st.st_mode));
		ck_assert_int_eq(st.st_size, MB);
		m = mmap(NULL, MB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (!(f & SEVM_GMEM_MMAP)) {
			ck_assert(m == MAP_FAILED);
			ck_assert_int_eq(errno, ENODEV);
		} else {
			ck_assert(m != MAP_FAILED);
			if (f & SEVM_GMEM_INIT_SHARED) {
				memset(m, 0xa5, 4096);
				ck_assert_int_eq(((volatile uint8_t *)m)[4095], 0xa5);
			}
			munmap(m, MB);
		}
		close(fd);
	}
	close(vm);
}
END_TEST

START_TEST(create_refuses_what_the_kernel_does_not_offer)
{
	int vm = new_vm();
	uint64_t unknown = 1ull << 2;

	ck_assert_int_eq(sevm_gmem_create(vm, MB, unknown | SEVM_GMEM_MMAP), -EOPNOTSUPP);
	printf("unknown flag: %s\n", sevm_last_error());
	ck_assert(has("unknown 0x4"));
	ck_assert(has("KVM_CAP_GUEST_MEMFD_FLAGS"));
	ck_assert(!has("GUEST_MEMFD_FLAG_MMAP"));	/* offered: not named */
	ck_assert_int_eq(sevm_gmem_create(vm, 4095, BOTH), -EINVAL);
	ck_assert_int_eq(sevm_gmem_create(vm, 0, BOTH), -EINVAL);
	ck_assert_int_eq(sevm_gmem_create(kvm_fd + 1000, MB, 0), -EBADF);
	close(vm);
}
END_TEST

/* The slot of `vm` bound to a fresh 1 MiB guest_memfd of `owner`. */
static struct sevm_gmem_slot slot_of(int owner, int *gmem, void **map)
{
	*gmem = sevm_gmem_create(owner, MB, BOTH);
	ck_assert_int_ge(*gmem, 0);
	*map = mmap(NULL, MB, PROT_READ | PROT_WRITE, MAP_SHARED, *gmem, 0);
	ck_assert(*map != MAP_FAILED);
	return (struct sevm_gmem_slot){ .sz = sizeof(struct sevm_gmem_slot), .slot = 0,
		.guest_phys_addr = 0, .size = MB, .host_addr = *map, .gmem_fd = *gmem };
}

START_TEST(bind_into_its_own_vm)
{
	int vm = new_vm(), gmem;
	void *map;
	struct sevm_gmem_slot s = slot_of(vm, &gmem, &map);

	ck_assert_msg(sevm_gmem_bind(vm, &s) == 0, "%s", sevm_last_error());
	/* The same range in a second slot: refused, and said so. */
	s.slot = 1;
	s.guest_phys_addr = 2 * MB;
	ck_assert_int_eq(sevm_gmem_bind(vm, &s), -EINVAL);
	ck_assert(has("one slot at a time"));
	munmap(map, MB);
	close(gmem);
	close(vm);
}
END_TEST

START_TEST(bind_of_another_vms_gmem_is_refused)
{
	int a = new_vm(), b = new_vm(), gmem;
	void *map;
	struct sevm_gmem_slot s = slot_of(a, &gmem, &map);
	struct kvm_userspace_memory_region plain = { .slot = 0, .memory_size = MB,
						     .userspace_addr = (uintptr_t)map };

	ck_assert_int_eq(sevm_gmem_bind(b, &s), -EINVAL);
	printf("cross-VM bind: %s\n", sevm_last_error());
	ck_assert(has("only into the VM that created it"));
	/* What works instead: A's guest_memfd, mapped, as B's plain memory. */
	ck_assert_int_eq(ioctl(b, KVM_SET_USER_MEMORY_REGION, &plain), 0);
	munmap(map, MB);
	close(gmem);
	close(a);
	close(b);
}
END_TEST

START_TEST(bind_refusals_name_the_rule)
{
	int vm = new_vm(), gmem, memfd;
	void *map;
	struct sevm_gmem_slot s = slot_of(vm, &gmem, &map);

	s.gmem_offset = 100;
	s.size = 4096;
	ck_assert_int_eq(sevm_gmem_bind(vm, &s), -EINVAL);
	printf("misaligned: %s\n", sevm_last_error());
	ck_assert(has("not page aligned"));
	s.gmem_offset = MB - 4096;
	s.size = 8192;
	ck_assert_int_eq(sevm_gmem_bind(vm, &s), -EINVAL);
	ck_assert(has("beyond the guest_memfd's 1048576 bytes"));
	memfd = memfd_create("not-gmem", MFD_CLOEXEC);
	ck_assert_int_eq(ftruncate(memfd, MB), 0);
	s.gmem_fd = memfd;
	s.gmem_offset = 0;
	ck_assert_int_eq(sevm_gmem_bind(vm, &s), -EINVAL);
	ck_assert(has("is not a guest_memfd"));
	s.sz = 0;
	ck_assert_int_eq(sevm_gmem_bind(vm, &s), -EINVAL);
	close(memfd);
	munmap(map, MB);
	close(gmem);
	close(vm);
}
END_TEST

START_TEST(link_is_not_in_this_kernel)
{
	int vm = new_vm(), other = new_vm();
	int gmem = sevm_gmem_create(vm, MB, BOTH);
	int memfd = memfd_create("not-gmem", MFD_CLOEXEC);

	ck_assert_int_ge(gmem, 0);
	ck_assert_int_eq(sevm_gmem_link(other, gmem), -EOPNOTSUPP);
	printf("link: %s\n", sevm_last_error());
	ck_assert(has("KVM_LINK_GUEST_MEMFD"));
	ck_assert(has("SEVM_GMEM_MMAP|SEVM_GMEM_INIT_SHARED"));
	ck_assert_int_eq(sevm_gmem_link(other, memfd), -EINVAL);
	ck_assert(has("not a guest_memfd"));
	ck_assert_int_eq(sevm_gmem_link(memfd, gmem), -EINVAL);
	close(memfd);
	close(gmem);
	close(other);
	close(vm);
}
END_TEST

static struct sevm_bitmap *record_over(uint64_t npages)
{
	struct sevm_gfn_range r = { .gfn = 0, .npages = npages };
	struct sevm_bitmap *b = NULL;

	ck_assert_int_eq(sevm_bitmap_new(&r, 1, &b), 0);
	return b;
}

START_TEST(memory_attributes_refused_without_the_cap)
{
	int vm = new_vm();
	struct sevm_bitmap *rec = record_over(256);

	if (ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MEMORY_ATTRIBUTES) > 0) {
		printf("SKIP part: this kernel has KVM_CAP_MEMORY_ATTRIBUTES\n");
	} else {
		ck_assert_int_eq(sevm_memory_attributes_set(vm, 0, 4096, KVM_MEMORY_ATTRIBUTE_PRIVATE,
							    NULL), -EOPNOTSUPP);
		ck_assert(has("KVM_CAP_MEMORY_ATTRIBUTES"));
		/* With a record: still refused, and the record is not touched. */
		ck_assert_int_eq(sevm_memory_attributes_set(vm, 0, 4096, KVM_MEMORY_ATTRIBUTE_PRIVATE,
							    rec), -EOPNOTSUPP);
		printf("attributes: %s\n", sevm_last_error());
		ck_assert(has("record is unchanged"));
		ck_assert_int_eq(sevm_bitmap_count(rec, 0, 256), 0);
	}
	ck_assert_int_eq(sevm_memory_attributes_set(vm, 100, 4096, 0, rec), -EINVAL);
	sevm_bitmap_free(rec);
	close(vm);
}
END_TEST

/* A kernel that has the attributes, at the seam: stops after `step` bytes each call. */
static struct sevm_backend below;
static uint64_t step, calls;

static int attrs_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	struct sevm_abi_memory_attributes *a = arg;

	(void)ctx;
	if (req == KVM_CHECK_EXTENSION && (uintptr_t)arg == KVM_CAP_MEMORY_ATTRIBUTES)
		return (int)KVM_MEMORY_ATTRIBUTE_PRIVATE;
	if (req != SEVM_ABI_KVM_SET_MEMORY_ATTRIBUTES) {
		int r;

		if (below.ioctl)
			return below.ioctl(below.ctx, fd, req, arg);
		r = ioctl(fd, req, arg);
		return r < 0 ? -errno : r;
	}
	calls++;
	if (a->size > step) {
		a->address += step;
		a->size -= step;
		return -EAGAIN;
	}
	return 0;
}

START_TEST(memory_attributes_loop_and_record)
{
	struct sevm_backend b = { .sz = sizeof(b), .ioctl = attrs_ioctl };
	struct sevm_bitmap *rec = record_over(256);
	int vm = new_vm();

	below.sz = sizeof(below);
	ck_assert_int_eq(sevm_get_backend(&below), 0);
	ck_assert_int_eq(sevm_set_backend(&b), 0);
	step = 3 * 4096;
	calls = 0;
	ck_assert_msg(sevm_memory_attributes_set(vm, 16 * 4096, 10 * 4096,
						 KVM_MEMORY_ATTRIBUTE_PRIVATE, rec) == 0,
		      "%s", sevm_last_error());
	ck_assert_uint_eq(calls, 4);	/* 3 + 3 + 3 + 1 pages */
	ck_assert_int_eq(sevm_bitmap_count(rec, 0, 256), 10);
	ck_assert_int_eq(sevm_bitmap_test(rec, 16), 1);
	ck_assert_int_eq(sevm_bitmap_test(rec, 26), 0);
	ck_assert_int_eq(sevm_memory_attributes_set(vm, 18 * 4096, 2 * 4096, 0, rec), 0);
	ck_assert_int_eq(sevm_bitmap_count(rec, 0, 256), 8);
	/* Outside the record: refused before the kernel is asked. */
	calls = 0;
	ck_assert_int_eq(sevm_memory_attributes_set(vm, 255 * 4096, 2 * 4096, 0, rec), -ERANGE);
	ck_assert_uint_eq(calls, 0);
	/* An attribute the kernel does not offer. */
	ck_assert_int_eq(sevm_memory_attributes_set(vm, 0, 4096, 1, rec), -EOPNOTSUPP);
	sevm_set_backend(NULL);
	sevm_bitmap_free(rec);
	close(vm);
}
END_TEST

/* The handoff takes a guest_memfd only when it can be mapped with shared pages. */
START_TEST(handoff_region_check_of_a_guest_memfd)
{
	int vm = new_vm();

	for (uint64_t f = 0; f <= BOTH; f++) {
		struct sevm_region r = { .sz = sizeof(r), .slot = 0, .size = MB };
		int err;

		if (f & ~(uint64_t)flags_mask)
			continue;
		r.fd = sevm_gmem_create(vm, MB, f);
		ck_assert_int_ge(r.fd, 0);
		err = sevm__region_fd_check(&r, -EINVAL);
		printf("gmem flags 0x%llx as a region: %d %s\n", (unsigned long long)f, err,
		       err ? sevm_last_error() : "");
		ck_assert_int_eq(err, f == BOTH ? 0 : -EOPNOTSUPP);
		if (f == BOTH) {
			r.size = 2 * MB;	/* beyond its size */
			ck_assert_int_eq(sevm__region_fd_check(&r, -EINVAL), -EINVAL);
			ck_assert(has("holds 1048576 bytes"));
		}
		close(r.fd);
	}
	close(vm);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gmem");
	TCase *tc = tcase_create("real kvm");
	int vm;

	tu_require_kvm();
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm < 0 || ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD) <= 0) {
		printf("SKIP: this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD)\n");
		return TU_SKIP;
	}
	flags_mask = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
	if (flags_mask < 0)
		flags_mask = 0;
	printf("KVM_CAP_GUEST_MEMFD_FLAGS 0x%x, KVM_CAP_MEMORY_ATTRIBUTES %d\n", flags_mask,
	       ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MEMORY_ATTRIBUTES));
	close(vm);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, create_each_offered_flag_combination);
	tcase_add_test(tc, create_refuses_what_the_kernel_does_not_offer);
	tcase_add_test(tc, bind_into_its_own_vm);
	tcase_add_test(tc, bind_of_another_vms_gmem_is_refused);
	tcase_add_test(tc, bind_refusals_name_the_rule);
	tcase_add_test(tc, link_is_not_in_this_kernel);
	tcase_add_test(tc, memory_attributes_refused_without_the_cap);
	tcase_add_test(tc, memory_attributes_loop_and_record);
	tcase_add_test(tc, handoff_region_check_of_a_guest_memfd);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
