/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "../core/error.h"
#include "../core/seam.h"
#include "../kvm/gmem.h"
#include "regions.h"

#define PAGE 4096ull
#define KVM_FLAGS (SEVM_REGION_LOG_DIRTY | SEVM_REGION_READONLY)
#define KNOWN_FLAGS (KVM_FLAGS | SEVM_REGION_ENCRYPTED)

_Static_assert(sizeof(struct sevm__region_wire) == 48, "region table entry");
_Static_assert(SEVM_REGION_LOG_DIRTY == KVM_MEM_LOG_DIRTY_PAGES, "flags mirror KVM's");
_Static_assert(SEVM_REGION_READONLY == KVM_MEM_READONLY, "flags mirror KVM's");

static int one_region(const struct sevm_region *r, int bad)
{
	if (r->flags & ~KNOWN_FLAGS)
		return sevm__fail(bad, "region slot %u: unknown flags 0x%x", r->slot, r->flags);
	if (!r->size || r->size % PAGE || r->guest_phys_addr % PAGE || r->offset % PAGE)
		return sevm__fail(bad, "region slot %u: address 0x%llx, size 0x%llx, offset 0x%llx "
				  "must be page aligned and the size non-zero", r->slot,
				  (unsigned long long)r->guest_phys_addr,
				  (unsigned long long)r->size, (unsigned long long)r->offset);
	if (r->guest_phys_addr + r->size < r->guest_phys_addr ||
	    r->offset + r->size < r->offset)
		return sevm__fail(bad, "region slot %u: range wraps around", r->slot);
	return 0;
}

int sevm__regions_validate(const struct sevm_region *r, unsigned int n, int bad)
{
	if (n > SEVM_MAX_REGIONS)
		return sevm__fail(-E2BIG, "%u regions, at most %u", n, SEVM_MAX_REGIONS);
	for (unsigned int i = 0; i < n; i++) {
		int err = one_region(&r[i], bad);

		if (err)
			return err;
		if (i && r[i].guest_phys_addr < r[i - 1].guest_phys_addr + r[i - 1].size)
			return sevm__fail(bad, "region slot %u at 0x%llx overlaps or precedes slot %u "
					  "(the table must be sorted by address)", r[i].slot,
					  (unsigned long long)r[i].guest_phys_addr, r[i - 1].slot);
		for (unsigned int j = 0; j < i; j++)
			if (r[j].slot == r[i].slot)
				return sevm__fail(bad, "slot %u appears twice", r[i].slot);
	}
	return 0;
}

/*
 * A guest_memfd travels as mapped memory: the receiver's VM cannot bind
 * another VM's guest_memfd (KVM refuses it, and KVM_LINK_GUEST_MEMFD is not
 * merged), but it can use the guest_memfd's shared mapping as the slot's
 * userspace memory.  That needs GUEST_MEMFD_FLAG_MMAP (else mmap fails with
 * ENODEV) and GUEST_MEMFD_FLAG_INIT_SHARED (else its pages are private and
 * the first touch raises SIGBUS).  The flags cannot be read back from the
 * fd, so one page is mapped and read through a pipe, where a private page
 * is EFAULT instead of a signal.  Shared or private is per file on kernels
 * without KVM_CAP_MEMORY_ATTRIBUTES for the VM, so one page speaks for all.
 */
static int gmem_mappable(const struct sevm_region *r)
{
	int p[2], err = 0;
	void *m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, r->fd, (off_t)r->offset);

	if (m == MAP_FAILED)
		return sevm__fail(errno == ENODEV ? -EOPNOTSUPP : -errno, "region slot %u: "
				  "guest_memfd %d cannot be mapped (%s): it is handed over as mapped "
				  "memory, so create it with SEVM_GMEM_MMAP|SEVM_GMEM_INIT_SHARED",
				  r->slot, r->fd, strerror(errno));
	if (pipe2(p, O_CLOEXEC) < 0) {
		err = sevm__fail(-errno, "pipe");
	} else {
		if (write(p[1], m, 1) < 0)
			err = sevm__fail(errno == EFAULT ? -EOPNOTSUPP : -errno, "region slot %u: "
					 "guest_memfd %d has private pages (created without "
					 "SEVM_GMEM_INIT_SHARED): they cannot be mapped, so it cannot be "
					 "handed over", r->slot, r->fd);
		close(p[0]);
		close(p[1]);
	}
	munmap(m, PAGE);
	return err;
}

int sevm__region_fd_check(const struct sevm_region *r, int bad)
{
	struct stat st;

	if (fstat(r->fd, &st) < 0)
		return sevm__fail(-errno, "region slot %u: fd %d", r->slot, r->fd);
	if (!S_ISREG(st.st_mode))
		return sevm__fail(bad, "region slot %u: fd %d is not a memfd or regular file "
				  "(mode 0%o)", r->slot, r->fd, (unsigned int)(st.st_mode & S_IFMT));
	if ((uint64_t)st.st_size < r->offset + r->size)
		return sevm__fail(bad, "region slot %u: fd holds %lld bytes, the region needs %llu",
				  r->slot, (long long)st.st_size,
				  (unsigned long long)(r->offset + r->size));
	/* A guest_memfd (S_IFREG, its size in st_size) never changes size. */
	if (sevm__is_gmem(r->fd))
		return gmem_mappable(r);
	/* EPERM: created without MFD_ALLOW_SEALING, EINVAL: not a memfd; both fine. */
	fcntl(r->fd, F_ADD_SEALS, F_SEAL_SHRINK);
	return 0;
}

int sevm__regions_set_slots(const struct sevm_region *r, unsigned int n, int vm_fd)
{
	for (unsigned int i = 0; i < n; i++) {
		struct kvm_userspace_memory_region m = {
			.slot = r[i].slot, .flags = r[i].flags & KVM_FLAGS,
			.guest_phys_addr = r[i].guest_phys_addr,
			.memory_size = r[i].size, .userspace_addr = (uintptr_t)r[i].host_addr,
		};
		int err = sevm__ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &m);

		if (err < 0)
			return sevm__context(err, "memory slot %u", r[i].slot);
	}
	return 0;
}

int sevm__regions_bind(struct sevm_region *r, unsigned int n, int vm_fd)
{
	for (unsigned int i = 0; i < n; i++) {
		void *p = mmap(NULL, r[i].size, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_NORESERVE, r[i].fd, (off_t)r[i].offset);

		if (p == MAP_FAILED)
			return sevm__fail(-errno, "mmap region slot %u (%llu bytes)", r[i].slot,
					  (unsigned long long)r[i].size);
		r[i].host_addr = p;
	}
	return sevm__regions_set_slots(r, n, vm_fd);
}

int sevm__regions_encrypt(const struct sevm_region *r, unsigned int n, int vm_fd,
			  const uint64_t *old)
{
	for (unsigned int i = 0; i < n; i++) {
		int err;

		if (!(r[i].flags & SEVM_REGION_ENCRYPTED))
			continue;
		err = sevm_sev_region_register(vm_fd, r[i].host_addr, r[i].size);
		if (err)
			return sevm__context(err, "encrypted region slot %u", r[i].slot);
		/* Only a double pin is at stake: the guest is fine either way. */
		if (old && old[i] && sevm_sev_region_unregister(vm_fd, (void *)(uintptr_t)old[i],
								 r[i].size))
			sevm__log(SEVM_LOG_WARN, "encrypted region slot %u stays pinned twice: %s",
				  r[i].slot, sevm_last_error());
	}
	return 0;
}

void sevm__regions_unmap(struct sevm_region *r, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (r[i].host_addr)
			munmap(r[i].host_addr, r[i].size);
		r[i].host_addr = NULL;
	}
}
