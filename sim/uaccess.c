/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The kernel's user-memory accessors, on the calling process.  The model
 * runs inside the VMM, so a bad pointer from the VMM must become -EFAULT as
 * in the kernel, not a crash: every access goes through process_vm_readv /
 * process_vm_writev on our own pid, which fail with EFAULT.
 */
#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

static int vm_rw(bool write, void *local, uint64_t uaddr, size_t len)
{
	while (len) {
		struct iovec l = { local, len }, r = { (void *)(uintptr_t)uaddr, len };
		ssize_t n = write ? process_vm_writev(getpid(), &l, 1, &r, 1, 0)
				  : process_vm_readv(getpid(), &l, 1, &r, 1, 0);

		if (n <= 0)
			return -EFAULT;
		local = (uint8_t *)local + n;
		uaddr += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int sim__copy_from_user(void *dst, uint64_t uaddr, size_t len)
{
	if (!len)
		return 0;
	if (!uaddr)
		return -EFAULT;
	return vm_rw(false, dst, uaddr, len);
}

int sim__copy_to_user(uint64_t uaddr, const void *src, size_t len)
{
	if (!len)
		return 0;
	if (!uaddr)
		return -EFAULT;
	return vm_rw(true, (void *)src, uaddr, len);
}

static bool capable_ipc_lock(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { { 0 } };

	if (syscall(SYS_capget, &h, d) < 0)
		return false;
	return d[CAP_IPC_LOCK / 32].effective & (1u << (CAP_IPC_LOCK % 32));
}

/*
 * pin_user_pages_fast() succeeds only where the range is mapped (and
 * writable for FOLL_WRITE).  One byte per page is read, and for a write pin
 * written back, which also faults the pages in as pinning does.
 */
#define PIN_BATCH 256

static int check_batch(uint64_t first, unsigned int n, bool write)
{
	struct iovec l = { 0 }, r[PIN_BATCH];
	uint8_t bytes[PIN_BATCH];
	ssize_t got;

	for (unsigned int i = 0; i < n; i++) {
		r[i].iov_base = (void *)(uintptr_t)((first + i) * SIM_PAGE_SIZE);
		r[i].iov_len = 1;
	}
	l.iov_base = bytes;
	l.iov_len = n;
	got = process_vm_readv(getpid(), &l, 1, r, n, 0);
	if (got != (ssize_t)n)
		return -ENOMEM;
	if (write && process_vm_writev(getpid(), &l, 1, r, n, 0) != (ssize_t)n)
		return -ENOMEM;
	return 0;
}

static int check_pages(uint64_t first, uint64_t npages, bool write)
{
	while (npages) {
		unsigned int n = npages < PIN_BATCH ? (unsigned int)npages : PIN_BATCH;
		int r = check_batch(first, n, write);

		if (r)
			return r;
		first += n;
		npages -= n;
	}
	return 0;
}

int sim__pin(struct sim_vm *vm, uint64_t uaddr, uint64_t ulen, bool write, uint64_t *n)
{
	uint64_t first, last, npages, locked, limit;
	struct rlimit rl;
	int r;

	/* sev_pin_memory(): empty or wrapping range */
	if (ulen == 0 || uaddr + ulen < uaddr)
		return -EINVAL;
	first = uaddr / SIM_PAGE_SIZE;
	last = (uaddr + ulen - 1) / SIM_PAGE_SIZE;
	npages = last - first + 1;
	/* sev_pin_memory(), v7.0 order: the page count first */
	if (npages > INT_MAX)
		return -EINVAL;
	/* sev_pin_memory(): RLIMIT_MEMLOCK, unless capable(CAP_IPC_LOCK) */
	locked = vm->sev.pages_locked + npages;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0)
		rl.rlim_cur = RLIM_INFINITY;
	limit = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur / SIM_PAGE_SIZE;
	if (locked > limit && !capable_ipc_lock())
		return -ENOMEM;
	/* sev_pin_memory(): a partial pin is -ENOMEM */
	r = check_pages(first, npages, write);
	if (r)
		return r;
	vm->sev.pages_locked = locked;
	*n = npages;
	return 0;
}

void sim__unpin(struct sim_vm *vm, uint64_t npages)
{
	vm->sev.pages_locked -= npages;
}
