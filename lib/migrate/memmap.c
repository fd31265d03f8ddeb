/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest's memory as both drivers see it: frames to host addresses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "migrate.h"

#define PAGE 4096u

static int by_gpa(const void *a, const void *b)
{
	const struct sevm_region *x = a, *y = b;

	return x->guest_phys_addr < y->guest_phys_addr ? -1 :
	       x->guest_phys_addr > y->guest_phys_addr;
}

static int check_region(const struct sevm_region *r, unsigned int i)
{
	if (r->sz < sizeof(*r))
		return sevm__fail(-EINVAL, "region %u: sz %zu, older than struct sevm_region", i,
				  r->sz);
	if (!r->size || r->size % PAGE || r->guest_phys_addr % PAGE ||
	    r->guest_phys_addr + r->size < r->guest_phys_addr)
		return sevm__fail(-EINVAL, "region %u: gpa 0x%llx size 0x%llx, not whole pages", i,
				  (unsigned long long)r->guest_phys_addr,
				  (unsigned long long)r->size);
	if (!r->host_addr || (uintptr_t)r->host_addr % PAGE)
		return sevm__fail(-EINVAL, "region %u: not mapped at a page boundary (host_addr %p)",
				  i, r->host_addr);
	return 0;
}

int sevm__memmap_init(struct sevm__memmap *m, const struct sevm_region *regions,
		      unsigned int nr)
{
	memset(m, 0, sizeof(*m));
	if (!regions || !nr)
		return sevm__fail(-EINVAL, "no memory regions");
	for (unsigned int i = 0; i < nr; i++) {
		int err = check_region(&regions[i], i);

		if (err)
			return err;
	}
	m->regions = calloc(nr, sizeof(*m->regions));
	m->ranges = calloc(nr, sizeof(*m->ranges));
	if (!m->regions || !m->ranges) {
		sevm__memmap_free(m);
		return sevm__fail(-ENOMEM, "memory map of %u regions", nr);
	}
	memcpy(m->regions, regions, nr * sizeof(*regions));
	qsort(m->regions, nr, sizeof(*m->regions), by_gpa);
	m->nr = nr;
	for (unsigned int i = 0; i < nr; i++) {
		const struct sevm_region *r = &m->regions[i];

		if (i && r->guest_phys_addr < m->regions[i - 1].guest_phys_addr +
					      m->regions[i - 1].size) {
			unsigned long long gpa = r->guest_phys_addr;

			sevm__memmap_free(m);
			return sevm__fail(-EINVAL, "regions at gpa 0x%llx and below it overlap", gpa);
		}
		m->ranges[i].gfn = r->guest_phys_addr / PAGE;
		m->ranges[i].npages = r->size / PAGE;
	}
	return 0;
}

void sevm__memmap_free(struct sevm__memmap *m)
{
	free(m->regions);
	free(m->ranges);
	memset(m, 0, sizeof(*m));
}

int sevm__memmap_find(const struct sevm__memmap *m, uint64_t gfn)
{
	unsigned int lo = 0, hi = m->nr;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (gfn < m->ranges[mid].gfn)
			hi = mid;
		else if (gfn - m->ranges[mid].gfn >= m->ranges[mid].npages)
			lo = mid + 1;
		else
			return (int)mid;
	}
	return -1;
}

uint8_t *sevm__memmap_host(const struct sevm__memmap *m, unsigned int i, uint64_t gfn,
			   uint64_t npages)
{
	const struct sevm_gfn_range *r;

	if (i >= m->nr)
		return NULL;
	r = &m->ranges[i];
	if (gfn < r->gfn || gfn - r->gfn >= r->npages || npages > r->npages - (gfn - r->gfn))
		return NULL;
	return (uint8_t *)m->regions[i].host_addr + (gfn - r->gfn) * PAGE;
}
