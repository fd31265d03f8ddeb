/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The per-vCPU section checks (sevm__vcpu_image_add, lib/kvm/vcpu.c): what
 * a receiver accepts before any of it reaches a KVM setter.  Input: bare
 * sections; the harness rewrites their CRCs (the snapshot harness tests
 * those), so every section the input frames reaches the image.
 *
 * Invariants: only vCPU items are taken, each once, as given; a counted
 * item's length is its header plus its entries; a fixed-size item one byte
 * shorter is refused; a NESTED section says its own length.
 */
#include <linux/kvm.h>
#include <stddef.h>
#include <string.h>

#include <sevmigrate.h>
#include "fuzz.h"
#include "kvm/state.h"

static void check_taken(const struct sevm__vcpu_image *img, const struct sevm__sect *s)
{
	const struct sevm__sect *t = &img->sect[s->id - SEVM_SECT_CPUID];
	struct sevm__vcpu_image fresh = { 0 };
	struct sevm__sect shorter = *s;
	uint32_t n = 0;

	FUZZ_CHECK(t->id == s->id && t->len == s->len && t->data == s->data &&
		   t->instance == s->instance && t->flags == s->flags);
	if (s->len >= 4)
		memcpy(&n, s->data, 4);
	switch (s->id) {
	case SEVM_SECT_CPUID:
		FUZZ_CHECK(s->len == sizeof(struct kvm_cpuid2) +
			   (uint64_t)n * sizeof(struct kvm_cpuid_entry2));
		return;
	case SEVM_SECT_MSRS:
		FUZZ_CHECK(s->len == sizeof(struct kvm_msrs) +
			   (uint64_t)n * sizeof(struct kvm_msr_entry));
		return;
	case SEVM_SECT_XSAVE:
		FUZZ_CHECK(s->len >= sizeof(struct kvm_xsave));
		return;
	case SEVM_SECT_NESTED:
		FUZZ_CHECK(s->len >= sizeof(struct kvm_nested_state));
		memcpy(&n, (const uint8_t *)s->data + offsetof(struct kvm_nested_state, size), 4);
		FUZZ_CHECK(n == s->len);
		return;
	default:
		/* A fixed-size kernel struct: exactly its size, never less. */
		FUZZ_CHECK(s->len > 0);
		shorter.len--;
		FUZZ_CHECK(sevm__vcpu_image_add(&fresh, &shorter) == -SEVM_ERR_FORMAT);
		FUZZ_CHECK(fresh.items == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sevm__vcpu_image img = { 0 };
	struct sevm__snap_reader r;
	struct sevm__sect s;
	uint8_t *p = fuzz_copy(data, size);

	fuzz_fix_sections(p, size, 0);
	sevm__snap_reader_sections(&r, p, size);
	while (sevm__snap_next(&r, &s) == 1) {
		uint64_t before = img.items;
		int err = sevm__vcpu_image_add(&img, &s);
		bool item = s.id >= SEVM_SECT_CPUID && s.id <= SEVM_SECT_NESTED;

		if (!err) {
			FUZZ_CHECK(item && !(before & SEVM__VCPU_ITEM(s.id)));
			FUZZ_CHECK(img.items == (before | SEVM__VCPU_ITEM(s.id)));
			check_taken(&img, &s);
			/* The same item again is a duplicate. */
			FUZZ_CHECK(sevm__vcpu_image_add(&img, &s) == -SEVM_ERR_FORMAT);
		} else {
			FUZZ_CHECK(err == -SEVM_ERR_FORMAT);
			FUZZ_CHECK(img.items == before);
		}
		FUZZ_CHECK(!(img.items & ~((1ull << SEVM__NR_VCPU_ITEMS) - 1)));
	}
	free(p);
	return 0;
}
