/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where page bitmaps come from: KVM's dirty log of a memory slot, and the
 * guest's KVM_HC_MAP_GPA_RANGE hypercalls (the private-page bitmap that
 * replaced the never-merged KVM_GET_PAGE_ENC_BITMAP).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>

#include "../abi/compat.h"
#include "../core/error.h"
#include "../core/seam.h"
#include "bitmap.h"

/* KVM_CLEAR_DIRTY_LOG takes a u32 page count; pieces stay multiples of 64. */
#define CLEAR_PIECE	(1ull << 31)

/* The next run of set bits at or after *pos in w[0 .. nbits): false when none. */
static bool next_set_run(const uint64_t *w, uint64_t nbits, uint64_t *pos, uint64_t *end)
{
	uint64_t i = *pos / 64, nw = (nbits + 63) / 64, x;

	if (*pos >= nbits)
		return false;
	x = w[i] & (~0ull << (*pos % 64));
	while (!x) {
		if (++i == nw)
			return false;
		x = w[i];
	}
	*pos = i * 64 + (uint64_t)__builtin_ctzll(x);
	if (*pos >= nbits)
		return false;
	x = ~w[i] & (~0ull << (*pos % 64));
	while (!x && ++i < nw)
		x = ~w[i];
	*end = x ? i * 64 + (uint64_t)__builtin_ctzll(x) : nw * 64;
	if (*end > nbits)
		*end = nbits;
	return true;
}

/* OR the dirty bits at base_gfn: reserve for all the runs, then apply; 0 or -ENOMEM. */
static int or_bits(struct sevm_bitmap *b, unsigned int ri, uint64_t base_gfn,
		   const uint64_t *w, uint64_t npages, bool *any)
{
	uint64_t need = 0, last = UINT64_MAX, s, e;
	int r;

	for (int apply = 0; apply < 2; apply++) {
		unsigned int i = ri;

		for (s = 0; next_set_run(w, npages, &s, &e); s = e) {
			/* Split at range boundaries: the slot may span adjacent ranges. */
			for (uint64_t g = base_gfn + s, n = e - s; n;) {
				const struct bm_range *rg = &b->ranges[i];
				uint64_t off, k;

				if (g >= rg->gfn + rg->npages) {
					i++;
					continue;
				}
				off = g - rg->gfn;
				k = rg->npages - off < n ? rg->npages - off : n;
				if (apply)
					sevm__bm_apply(b, rg, off, k, true);
				else
					need += sevm__bm_need(b, rg, off, k, true, &last);
				g += k;
				n -= k;
			}
			*any = true;
		}
		if (!apply && (r = sevm__bm_reserve(b, need)))
			return r;
	}
	sevm__bm_trim_spares(b);
	return 0;
}

static int clear_log(int vm_fd, uint32_t slot, uint64_t *w, uint64_t npages)
{
	for (uint64_t first = 0; first < npages; first += CLEAR_PIECE) {
		uint64_t n = npages - first < CLEAR_PIECE ? npages - first : CLEAR_PIECE;
		struct kvm_clear_dirty_log c = {
			.slot = slot,
			.num_pages = (uint32_t)n,
			.first_page = first,
			.dirty_bitmap = w + first / 64,
		};
		int r = sevm__ioctl(vm_fd, KVM_CLEAR_DIRTY_LOG, &c);

		if (r < 0)
			return sevm__context(r, "pages %" PRIu64 "..%" PRIu64, first, first + n - 1);
	}
	return 0;
}

int sevm_bitmap_add_dirty_log(struct sevm_bitmap *b, int vm_fd, uint32_t slot,
			      uint64_t base_gfn, uint64_t npages, bool clear)
{
	struct kvm_dirty_log log = { .slot = slot };
	unsigned int ri;
	uint64_t *w;
	bool any = false;
	int r;

	r = sevm__bm_locate(b, base_gfn, npages, "dirty log", &ri);
	if (r)
		return sevm__context(r, "slot %u", slot);
	if (vm_fd < 0)
		return sevm__fail(-EBADF, "dirty log of slot %u: VM fd %d", slot, vm_fd);
	/* KVM writes the slot's bitmap rounded up to 64 bits (ALIGN(npages, BITS_PER_LONG)). */
	w = calloc((npages + 63) / 64, sizeof(*w));
	if (!w)
		return sevm__fail(-ENOMEM, "dirty log of slot %u: %" PRIu64 " pages", slot, npages);
	log.dirty_bitmap = w;
	r = sevm__ioctl(vm_fd, KVM_GET_DIRTY_LOG, &log);
	if (r < 0)
		r = sevm__context(r, "dirty log of slot %u", slot);
	else
		r = or_bits(b, ri, base_gfn, w, npages, &any);
	/* Clear only what was read: a page dirtied since stays dirty for the next round. */
	if (!r && clear && any) {
		r = clear_log(vm_fd, slot, w, npages);
		if (r)
			r = sevm__context(r, "KVM_CLEAR_DIRTY_LOG of slot %u", slot);
	}
	free(w);
	return r < 0 ? r : 0;
}

int64_t sevm_bitmap_map_gpa_range(struct sevm_bitmap *private_pages, const uint64_t args[3])
{
	uint64_t gpa, npages, attrs;
	int r;

	/* KVM_EINVAL is EINVAL (22) in include/uapi/linux/kvm_para.h: one value for both. */
	_Static_assert(KVM_EINVAL == EINVAL, "KVM_EINVAL is 22");
	if (!private_pages || !args)
		return sevm__fail(-EINVAL, "KVM_HC_MAP_GPA_RANGE: no bitmap or no arguments");
	gpa = args[0];
	npages = args[1];
	attrs = args[2];
	/*
	 * KVM checked alignment, npages and wrap-around before it exited; a VMM
	 * may forward from elsewhere (SNP page-state changes), so check again.
	 * a1 counts 4 KiB pages whatever the page-size hint in a2 bits 3:0.
	 */
	if (gpa % 4096)
		return sevm__fail(-KVM_EINVAL, "KVM_HC_MAP_GPA_RANGE: gpa %#" PRIx64
				  " is not page aligned", gpa);
	if (attrs & KVM_MAP_GPA_RANGE_ENCRYPTED)
		r = sevm_bitmap_set(private_pages, gpa / 4096, npages);
	else
		r = sevm_bitmap_clear(private_pages, gpa / 4096, npages);
	if (r == -ERANGE)	/* memory the guest does not have */
		return sevm__fail(-KVM_EINVAL, "KVM_HC_MAP_GPA_RANGE gpa %#" PRIx64 " (%" PRIu64
				  " pages): not inside the guest's memory map", gpa, npages);
	if (r)
		return sevm__context(r, "KVM_HC_MAP_GPA_RANGE gpa %#" PRIx64 " (%" PRIu64 " pages, %s)",
				     gpa, npages,
				     attrs & KVM_MAP_GPA_RANGE_ENCRYPTED ? "private" : "shared");
	return 0;
}

int sevm_bitmap_add_enc_bitmap(struct sevm_bitmap *b, int vm_fd)
{
	if (!b || vm_fd < 0 || fcntl(vm_fd, F_GETFD) < 0)
		return sevm__fail(-EINVAL, "sevm_bitmap_add_enc_bitmap: bitmap %p, VM fd %d",
				  (void *)b, vm_fd);
	/* A guessed ioctl number could run another command: never issue one. */
	return sevm__fail(-EOPNOTSUPP, "KVM_GET_PAGE_ENC_BITMAP is in no kernel (proposed for SEV "
			  "live migration, never merged): forward the guest's KVM_HC_MAP_GPA_RANGE "
			  "exits to sevm_bitmap_map_gpa_range() instead");
}
