/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guest_memfd: create, bind to a memory slot, link (absent), and memory
 * attributes with their private-page record.
 *
 * What this code says about the kernel was measured on Linux 6.18
 * (KVM_CAP_GUEST_MEMFD_FLAGS 3, KVM_CAP_MEMORY_ATTRIBUTES 0): the kernel
 * answers EINVAL to every refusal of a guest_memfd binding, so after one
 * the library looks at what it can see (the fd, the alignment, the size)
 * and names the rule that was broken.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../abi/compat.h"
#include "../core/error.h"
#include "../core/opts.h"
#include "../core/seam.h"
#include "gmem.h"

#define PAGE 4096ull
#define KNOWN_FLAGS (GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)

_Static_assert(SEVM_GMEM_MMAP == GUEST_MEMFD_FLAG_MMAP, "flags mirror KVM's");
_Static_assert(SEVM_GMEM_INIT_SHARED == GUEST_MEMFD_FLAG_INIT_SHARED, "flags mirror KVM's");

bool sevm__is_gmem(int fd)
{
	static const char name[] = "anon_inode:[kvm-gmem]";
	char link[64], target[sizeof(name) + 1];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target));
	return n == (ssize_t)sizeof(name) - 1 && !memcmp(target, name, sizeof(name) - 1);
}

/* A capability's value on the VM: KVM answers 0 for one it does not know. */
static int vm_cap(int vm_fd, long cap, const char *fn)
{
	int r = sevm__ioctl_quiet(vm_fd, KVM_CHECK_EXTENSION, (void *)cap);

	if (r == -ENOTTY || r == -EBADF)
		return sevm__fail(r == -ENOTTY ? -EINVAL : r, "%s: fd %d is not a VM (KVM_CHECK_EXTENSION "
				  "answered %s)", fn, vm_fd, sevm_strerror(r));
	if (r < 0)
		return sevm__fail(r, "%s: KVM_CHECK_EXTENSION %ld on VM fd %d", fn, cap, vm_fd);
	return r;
}

static const char *flag_names(uint64_t flags, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	if (flags & GUEST_MEMFD_FLAG_MMAP)
		at += snprintf(buf + at, len - at, "GUEST_MEMFD_FLAG_MMAP|");
	if (at < len && (flags & GUEST_MEMFD_FLAG_INIT_SHARED))
		at += snprintf(buf + at, len - at, "GUEST_MEMFD_FLAG_INIT_SHARED|");
	if (at < len && (flags & ~KNOWN_FLAGS))
		at += snprintf(buf + at, len - at, "unknown 0x%llx|",
			       (unsigned long long)(flags & ~KNOWN_FLAGS));
	if (at && at < len)
		buf[at - 1] = '\0';
	return buf;
}

int sevm_gmem_create(int vm_fd, uint64_t size, uint64_t flags)
{
	struct sevm_abi_create_guest_memfd c = { .size = size, .flags = flags };
	char names[128];
	int gmem, mask, fd;

	if (!size || size % PAGE)
		return sevm__fail(-EINVAL, "sevm_gmem_create: size 0x%llx must be a non-zero "
				  "multiple of 4096", (unsigned long long)size);
	gmem = vm_cap(vm_fd, KVM_CAP_GUEST_MEMFD, "sevm_gmem_create");
	if (gmem < 0)
		return gmem;
	if (!gmem)
		return sevm__fail(-EOPNOTSUPP, "sevm_gmem_create: KVM_CAP_GUEST_MEMFD is 0 on this VM: "
				  "the kernel (before 6.8) or this VM type has no guest_memfd");
	mask = vm_cap(vm_fd, KVM_CAP_GUEST_MEMFD_FLAGS, "sevm_gmem_create");
	if (mask < 0)
		return mask;
	if (flags & ~(uint64_t)mask)
		return sevm__fail(-EOPNOTSUPP, "sevm_gmem_create: this kernel does not accept %s "
				  "(KVM_CAP_GUEST_MEMFD_FLAGS is 0x%x; GUEST_MEMFD_FLAG_* came with Linux 6.18)",
				  flag_names(flags & ~(uint64_t)mask, names, sizeof(names)), mask);
	fd = sevm__ioctl(vm_fd, SEVM_ABI_KVM_CREATE_GUEST_MEMFD, &c);
	if (fd < 0)
		return sevm__context(fd, "sevm_gmem_create: %llu bytes, flags 0x%llx",
				     (unsigned long long)size, (unsigned long long)flags);
	/* KVM makes the fd without O_CLOEXEC (get_unused_fd_flags(0)). */
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

/* KVM said EINVAL: name the rule the binding broke, most specific first. */
static int explain_bind(int err, int vm_fd, const struct sevm_gmem_slot *s)
{
	struct stat st;

	if (!sevm__is_gmem(s->gmem_fd))
		return sevm__fail(err, "sevm_gmem_bind: slot %u: fd %d is not a guest_memfd",
				  s->slot, s->gmem_fd);
	if (s->gmem_offset % PAGE || s->size % PAGE || s->guest_phys_addr % PAGE ||
	    (uintptr_t)s->host_addr % PAGE)
		return sevm__fail(err, "sevm_gmem_bind: slot %u: this kernel refuses a guest_memfd "
				  "offset (0x%llx), size (0x%llx), guest address (0x%llx) or host "
				  "address (%p) that is not page aligned", s->slot,
				  (unsigned long long)s->gmem_offset, (unsigned long long)s->size,
				  (unsigned long long)s->guest_phys_addr, s->host_addr);
	if (fstat(s->gmem_fd, &st) == 0 && s->gmem_offset + s->size > (uint64_t)st.st_size)
		return sevm__fail(err, "sevm_gmem_bind: slot %u: offset 0x%llx + size 0x%llx is "
				  "beyond the guest_memfd's %lld bytes", s->slot,
				  (unsigned long long)s->gmem_offset, (unsigned long long)s->size,
				  (long long)st.st_size);
	(void)vm_fd;
	return sevm__fail(err, "sevm_gmem_bind: slot %u: KVM refused the guest_memfd (EINVAL). "
			  "This kernel binds a guest_memfd only into the VM that created it "
			  "(another VM's, even another process's handed over, is refused: map it "
			  "and use it as plain userspace memory instead), each of its ranges into "
			  "one slot at a time, never into a slot that exists already or whose "
			  "guest range overlaps another slot", s->slot);
}

int sevm_gmem_bind(int vm_fd, const struct sevm_gmem_slot *slot)
{
	struct sevm_gmem_slot s = { 0 };
	int err = SEVM_OPTS_CHECK(slot, "sevm_gmem_slot");

	if (err)
		return err;
	memcpy(&s, slot, slot->sz < sizeof(s) ? slot->sz : sizeof(s));
	if (s.gmem_fd < 0 || !s.size)
		return sevm__fail(-EINVAL, "sevm_gmem_bind: slot %u: gmem_fd %d, size 0x%llx", s.slot,
				  s.gmem_fd, (unsigned long long)s.size);
	struct sevm_abi_userspace_memory_region2 m = {
		.slot = s.slot, .flags = KVM_MEM_GUEST_MEMFD,
		.guest_phys_addr = s.guest_phys_addr, .memory_size = s.size,
		.userspace_addr = (uintptr_t)s.host_addr,
		.guest_memfd = (uint32_t)s.gmem_fd, .guest_memfd_offset = s.gmem_offset,
	};
	err = sevm__ioctl_quiet(vm_fd, SEVM_ABI_KVM_SET_USER_MEMORY_REGION2, &m);
	if (err == -EINVAL)
		return explain_bind(err, vm_fd, &s);
	if (err == -ENOTTY && vm_cap(vm_fd, KVM_CAP_USER_MEMORY2, "sevm_gmem_bind") == 0)
		return sevm__fail(-EOPNOTSUPP, "sevm_gmem_bind: KVM_CAP_USER_MEMORY2 is 0: the kernel "
				  "(before 6.8) has no KVM_SET_USER_MEMORY_REGION2");
	if (err < 0)
		return sevm__fail(err, "sevm_gmem_bind: slot %u: KVM_SET_USER_MEMORY_REGION2", s.slot);
	return 0;
}

int sevm_gmem_link(int vm_fd, int gmem_fd)
{
	int err = vm_cap(vm_fd, KVM_CAP_GUEST_MEMFD, "sevm_gmem_link");

	if (err < 0)
		return err;
	if (!sevm__is_gmem(gmem_fd))
		return sevm__fail(-EINVAL, "sevm_gmem_link: fd %d is not a guest_memfd", gmem_fd);
	/* No number is issued: see KVM_LINK_GUEST_MEMFD in lib/abi/compat.h. */
	return sevm__fail(-EOPNOTSUPP, "sevm_gmem_link: KVM_LINK_GUEST_MEMFD is not in this "
			  "kernel: it was proposed (guest_memfd RFC) but never merged and has no "
			  "stable ioctl number; a guest_memfd created with SEVM_GMEM_MMAP|"
			  "SEVM_GMEM_INIT_SHARED can be handed over as mapped memory instead");
}

/*
 * KVM_SET_MEMORY_ATTRIBUTES may stop part way and say so by moving .address
 * and shrinking .size (Documentation/virt/kvm/api.rst); a kernel that did
 * the whole range leaves the struct as it was.
 */
static int set_attributes(int vm_fd, uint64_t gpa, uint64_t size, uint64_t attributes)
{
	struct sevm_abi_memory_attributes a = { .address = gpa, .size = size,
						 .attributes = attributes };

	while (a.size) {
		uint64_t at = a.address, left = a.size;
		int err = sevm__ioctl(vm_fd, SEVM_ABI_KVM_SET_MEMORY_ATTRIBUTES, &a);

		if (err == -EAGAIN && (a.address != at || a.size != left))
			continue;
		if (err < 0)
			return sevm__context(err, "sevm_memory_attributes_set: 0x%llx..0x%llx "
					     "(0x%llx of it done)", (unsigned long long)gpa,
					     (unsigned long long)(gpa + size),
					     (unsigned long long)(a.address - gpa));
		if (a.address == at && a.size == left)
			break;
		if (a.address < at || a.size >= left || a.address % PAGE || a.size % PAGE)
			return sevm__fail(-EIO, "sevm_memory_attributes_set: the kernel moved the "
					  "range from 0x%llx+0x%llx to 0x%llx+0x%llx", (unsigned long long)at,
					  (unsigned long long)left, (unsigned long long)a.address,
					  (unsigned long long)a.size);
	}
	return 0;
}

int sevm_memory_attributes_set(int vm_fd, uint64_t gpa, uint64_t size, uint64_t attributes,
			       struct sevm_bitmap *record)
{
	uint64_t gfn = gpa / PAGE, npages = size / PAGE;
	int64_t in_map;
	int mask, err;

	if (!size || gpa % PAGE || size % PAGE || gpa + size < gpa)
		return sevm__fail(-EINVAL, "sevm_memory_attributes_set: address 0x%llx and size "
				  "0x%llx must be page aligned, the size non-zero",
				  (unsigned long long)gpa, (unsigned long long)size);
	mask = vm_cap(vm_fd, KVM_CAP_MEMORY_ATTRIBUTES, "sevm_memory_attributes_set");
	if (mask < 0)
		return mask;
	/* Without the ioctl the record must not claim a change the kernel never made. */
	if (!mask)
		return sevm__fail(-EOPNOTSUPP, "sevm_memory_attributes_set: KVM_CAP_MEMORY_ATTRIBUTES "
				  "is 0 on this VM: the kernel has no KVM_SET_MEMORY_ATTRIBUTES for "
				  "it (only for VM types with private memory, or with "
				  "CONFIG_KVM_SW_PROTECTED_VM); %s", record ? "the record is unchanged" :
				  "nothing was changed");
	if (attributes & ~(uint64_t)mask)
		return sevm__fail(-EOPNOTSUPP, "sevm_memory_attributes_set: attributes 0x%llx not in "
				  "KVM_CAP_MEMORY_ATTRIBUTES 0x%x", (unsigned long long)attributes, mask);
	/* Checked first: a record that cannot follow must not fall behind the kernel. */
	in_map = record ? sevm_bitmap_count(record, gfn, npages) : 0;
	if (in_map < 0)
		return sevm__context((int)in_map, "sevm_memory_attributes_set: the record does "
				     "not cover 0x%llx..0x%llx", (unsigned long long)gpa,
				     (unsigned long long)(gpa + size));
	err = set_attributes(vm_fd, gpa, size, attributes);
	if (err || !record)
		return err;
	err = attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE ? sevm_bitmap_set(record, gfn, npages) :
							  sevm_bitmap_clear(record, gfn, npages);
	return sevm__context(err, "sevm_memory_attributes_set: the kernel changed 0x%llx..0x%llx "
			     "but the record did not follow", (unsigned long long)gpa,
			     (unsigned long long)(gpa + size));
}
