/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The guest memory map: validation of a region table (ours or a peer's),
 * its wire form, and binding it to a VM.
 */
#ifndef SEVM_HANDOFF_REGIONS_H
#define SEVM_HANDOFF_REGIONS_H

#include <stdint.h>

#include "sevmigrate.h"

#define SEVM_MAX_REGIONS 253	/* one fd each, in one message */

/* Region table entry as sent: 48 bytes, little-endian. */
struct sevm__region_wire {
	uint32_t slot;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t size;
	uint64_t offset;
	uint32_t fd_index;
	uint32_t reserved;
	uint64_t host_addr;	/* the sender's mapping: how its encrypted region is registered */
};

/*
 * The table must be sorted by guest address, with page-aligned, non-empty,
 * non-wrapping, non-overlapping ranges, distinct slots and known flags.
 * A bad table fails with `bad`: -EINVAL for the caller's own regions,
 * -SEVM_ERR_FORMAT for a table a peer sent.
 */
int sevm__regions_validate(const struct sevm_region *r, unsigned int n, int bad);

/*
 * The fd can back the region: a regular file or memfd holding at least
 * offset + size bytes, checked before anything maps it (a mapping past the
 * end would SIGBUS the VMM).  A memfd that allows sealing gets F_SEAL_SHRINK
 * so it cannot shrink under either VMM later.  A guest_memfd must be
 * mappable with shared pages (SEVM_GMEM_MMAP | SEVM_GMEM_INIT_SHARED), else
 * -EOPNOTSUPP: it travels as mapped memory.
 */
int sevm__region_fd_check(const struct sevm_region *r, int bad);

/* Map every region (MAP_SHARED) and set it as a memory slot of vm_fd. */
int sevm__regions_bind(struct sevm_region *r, unsigned int n, int vm_fd);

/* Set every region, mapped at host_addr, as a memory slot of vm_fd. */
int sevm__regions_set_slots(const struct sevm_region *r, unsigned int n, int vm_fd);

/*
 * After a MOVE, vm_fd holds the encrypted regions as the other process
 * registered them (at its addresses old[i]).  Register each
 * SEVM_REGION_ENCRYPTED region at our host_addr, then drop the other
 * process's entry, so the pages are pinned once and named by our addresses;
 * pinning ours first keeps them pinned throughout.
 */
int sevm__regions_encrypt(const struct sevm_region *r, unsigned int n, int vm_fd,
			  const uint64_t *old);

/* Unmap what sevm__regions_bind mapped. */
void sevm__regions_unmap(struct sevm_region *r, unsigned int n);

#endif
