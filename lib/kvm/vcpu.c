/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One vCPU's state as snapshot sections: captured with KVM's getters and put
 * back with its setters in the order the kernel needs.  One table drives
 * both; the items whose size is not a struct's (CPUID, XSAVE, MSRS, NESTED)
 * or whose ioctl carries a value instead of a pointer (TSC_KHZ) have helpers.
 *
 * Payloads are the kernel structs as the getters fill them.  Captured
 * payloads are written in place in the snapshot buffer (sevm__snap_open);
 * restored ones are handed to the setters where they lie in the input,
 * which the kernel reads at any alignment.  Fields this file reads itself
 * are copied out first, since the input may sit at any alignment.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../abi/compat.h"
#include "../core/error.h"
#include "../core/names.h"
#include "../core/seam.h"
#include "state.h"

#define NR_ITEMS		SEVM__NR_VCPU_ITEMS
#define ITEM_INDEX(id)		((id) - SEVM_SECT_CPUID)
/* KVM_MAX_CPUID_ENTRIES: KVM_SET_CPUID2 refuses more, so no vCPU holds more. */
#define MAX_CPUID_ENTRIES	256
/* The format's bound on one MSRS section (the kernel's per-call one is lower). */
#define MAX_MSRS		1024

/* The payloads are kernel ABI and snapshot format at once: pin their sizes. */
_Static_assert(sizeof(struct kvm_cpuid2) == 8 && sizeof(struct kvm_cpuid_entry2) == 40,
	       "kvm_cpuid2 header 8, entry 40 bytes");
_Static_assert(sizeof(struct kvm_sregs2) == 320, "kvm_sregs2 is 320 bytes");
_Static_assert(sizeof(struct kvm_sregs) == 312, "kvm_sregs is 312 bytes");
_Static_assert(sizeof(struct kvm_regs) == 144, "kvm_regs is 144 bytes");
_Static_assert(sizeof(struct kvm_xsave) == 4096, "kvm_xsave is 4096 bytes");
_Static_assert(sizeof(struct kvm_fpu) == 416, "kvm_fpu is 416 bytes");
_Static_assert(sizeof(struct kvm_xcrs) == 392, "kvm_xcrs is 392 bytes");
_Static_assert(sizeof(struct kvm_lapic_state) == 1024, "kvm_lapic_state is 1024 bytes");
_Static_assert(sizeof(struct kvm_msrs) == 8 && sizeof(struct kvm_msr_entry) == 16,
	       "kvm_msrs header 8, entry 16 bytes");
_Static_assert(sizeof(struct kvm_vcpu_events) == 64, "kvm_vcpu_events is 64 bytes");
_Static_assert(sizeof(struct kvm_debugregs) == 128, "kvm_debugregs is 128 bytes");
_Static_assert(sizeof(struct kvm_mp_state) == 4, "kvm_mp_state is 4 bytes");
_Static_assert(sizeof(struct kvm_nested_state) == 128, "kvm_nested_state header is 128 bytes");
_Static_assert(NR_ITEMS == 14, "one table row per vCPU section id");

struct item {
	uint32_t id;
	const char *name;
	unsigned long get, set;
	uint32_t size;		/* payload bytes; 0 when it varies */
	bool may_be_absent;	/* EINVAL/ENXIO/ENOTTY from get: this VM has none */
};

#define ITEM(id_, get_, set_, size_, absent_)					\
	[ITEM_INDEX(SEVM_SECT_##id_)] = { SEVM_SECT_##id_, #id_, get_, set_, size_, absent_ }

static const struct item items[NR_ITEMS] = {
	ITEM(CPUID, KVM_GET_CPUID2, KVM_SET_CPUID2, 0, false),
	ITEM(TSC_KHZ, KVM_GET_TSC_KHZ, KVM_SET_TSC_KHZ, sizeof(uint32_t), false),
	ITEM(SREGS2, KVM_GET_SREGS2, KVM_SET_SREGS2, sizeof(struct kvm_sregs2), false),
	ITEM(SREGS, KVM_GET_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs), false),
	ITEM(REGS, KVM_GET_REGS, KVM_SET_REGS, sizeof(struct kvm_regs), false),
	ITEM(XSAVE, KVM_GET_XSAVE, KVM_SET_XSAVE, 0, false),
	ITEM(FPU, KVM_GET_FPU, KVM_SET_FPU, sizeof(struct kvm_fpu), false),
	ITEM(XCRS, KVM_GET_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs), false),
	ITEM(LAPIC, KVM_GET_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state), true),
	ITEM(MSRS, KVM_GET_MSRS, KVM_SET_MSRS, 0, false),
	ITEM(EVENTS, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS,
	     sizeof(struct kvm_vcpu_events), false),
	ITEM(DEBUGREGS, KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs), false),
	ITEM(MP_STATE, KVM_GET_MP_STATE, KVM_SET_MP_STATE, sizeof(struct kvm_mp_state), false),
	ITEM(NESTED, KVM_GET_NESTED_STATE, KVM_SET_NESTED_STATE, 0, true),
};

/* Capture uses the same order; only restore depends on it. */
static const uint16_t restore_order[NR_ITEMS] = {
	/* SREGS' CR4/EFER checks, XSAVE and XCRS follow the vCPU's CPUID. */
	SEVM_SECT_CPUID,
	/* Before MSRS: IA32_TSC is written at the guest's rate. */
	SEVM_SECT_TSC_KHZ,
	SEVM_SECT_SREGS2,
	SEVM_SECT_SREGS,
	/* After SREGS (EFER.SVME, CR4.VMXE gate it), before REGS and MSRS, as QEMU. */
	SEVM_SECT_NESTED,
	SEVM_SECT_REGS,
	SEVM_SECT_XSAVE,
	SEVM_SECT_FPU,
	SEVM_SECT_XCRS,
	/* Before MSRS: the x2APIC MSRs and the TSC deadline live in the LAPIC. */
	SEVM_SECT_LAPIC,
	SEVM_SECT_MSRS,
	SEVM_SECT_EVENTS,
	SEVM_SECT_DEBUGREGS,
	SEVM_SECT_MP_STATE,
};

static bool absent_errno(int r)
{
	return r == -EINVAL || r == -ENXIO || r == -ENOTTY;
}

/* ---- Capture ------------------------------------------------------------- */

/*
 * format.h can open a section but not abandon one.  The writer's whole state
 * is its own fields and the buffer's length, so saving both before
 * sevm__snap_open() and putting them back undoes the open; the bytes past the
 * length are garbage the next section overwrites.
 */
struct snap_mark {
	struct sevm__snap_writer w;
	size_t len;
};

static struct snap_mark snap_mark(const struct sevm__snap_writer *w)
{
	return (struct snap_mark){ *w, w->buf->len };
}

static void snap_rewind(struct sevm__snap_writer *w, const struct snap_mark *m)
{
	*w = m->w;
	w->buf->len = m->len;
}

/* One of a pair is captured, as this kernel has it; the rest always. */
static bool captured_here(const struct sevm__kvm_caps *caps, uint32_t id)
{
	if (caps->protected_state)
		return id == SEVM_SECT_CPUID || id == SEVM_SECT_TSC_KHZ || id == SEVM_SECT_LAPIC ||
		       id == SEVM_SECT_EVENTS || id == SEVM_SECT_MP_STATE;
	switch (id) {
	case SEVM_SECT_SREGS2:		return caps->sregs2;
	case SEVM_SECT_SREGS:		return !caps->sregs2;
	case SEVM_SECT_XSAVE:		return caps->xsave_size;
	case SEVM_SECT_FPU:		return !caps->xsave_size;
	case SEVM_SECT_XCRS:		return caps->xcrs;
	case SEVM_SECT_EVENTS:		return caps->vcpu_events;
	case SEVM_SECT_DEBUGREGS:	return caps->debugregs;
	case SEVM_SECT_NESTED:		return caps->nested_size;
	default:			return true;
	}
}

/* A fixed-size struct (XSAVE: the caps' size) read straight into its section. */
static int capture_fixed(const struct sevm__kvm_caps *caps, const struct item *it, int fd,
			 uint32_t index, struct sevm__snap_writer *w)
{
	struct snap_mark m = snap_mark(w);
	uint32_t size = it->size;
	unsigned long get = it->get;
	void *p;
	int r;

	/*
	 * KVM_GET_XSAVE refuses a guest whose state outgrew 4 KiB (AMX).
	 * KVM_GET_XSAVE2 writes the vCPU's whole buffer, sized when the vCPU
	 * was created from the process's XSAVE permissions: the caps must have
	 * been probed after the VMM asked for those (arch_prctl), as it does
	 * before it creates vCPUs.
	 */
	if (it->id == SEVM_SECT_XSAVE) {
		size = caps->xsave_size;
		if (size > sizeof(struct kvm_xsave))
			get = KVM_GET_XSAVE2;
	}
	p = sevm__snap_open(w, it->id, SEVM_SNAP_MANDATORY, index, size);
	if (!p)
		return -ENOMEM;
	r = it->may_be_absent ? sevm__ioctl_quiet(fd, get, p) : sevm__ioctl(fd, get, p);
	if (r < 0) {
		snap_rewind(w, &m);
		if (!it->may_be_absent)
			return r;
		return absent_errno(r) ? 0 : sevm__fail(r, "%s", sevm__ioctl_name(get));
	}
	sevm__snap_close(w);
	return 1;
}

/* KVM_GET_TSC_KHZ answers with the rate itself. */
static int capture_tsc_khz(int fd, uint32_t index, struct sevm__snap_writer *w)
{
	int r = sevm__ioctl(fd, KVM_GET_TSC_KHZ, NULL);
	uint32_t khz = (uint32_t)r;

	if (r < 0)
		return r;
	r = sevm__snap_put(w, SEVM_SECT_TSC_KHZ, SEVM_SNAP_MANDATORY, index, &khz, sizeof(khz));
	return r < 0 ? r : 1;
}

/*
 * KVM_GET_CPUID2 fails with E2BIG, without saying how many entries it has,
 * when nent is too small; asking for KVM's own maximum makes one call enough.
 * The count is known only afterwards, so this one item is copied.
 */
static int read_cpuid(int fd, struct kvm_cpuid2 **out, uint32_t *len)
{
	struct kvm_cpuid2 *c;
	int r;

	c = calloc(1, sizeof(*c) + MAX_CPUID_ENTRIES * sizeof(c->entries[0]));
	if (!c)
		return sevm__fail(-ENOMEM, "CPUID buffer");
	c->nent = MAX_CPUID_ENTRIES;
	r = sevm__ioctl(fd, KVM_GET_CPUID2, c);
	if (r == -E2BIG)
		r = sevm__fail(r, "KVM_GET_CPUID2: more than %u entries", MAX_CPUID_ENTRIES);
	if (r < 0) {
		free(c);
		return r;
	}
	*out = c;
	*len = (uint32_t)(sizeof(*c) + c->nent * sizeof(c->entries[0]));
	return 0;
}

static int capture_cpuid(int fd, uint32_t index, struct sevm__snap_writer *w)
{
	struct kvm_cpuid2 *c;
	uint32_t len;
	int r = read_cpuid(fd, &c, &len);

	if (r < 0)
		return r;
	r = sevm__snap_put(w, SEVM_SECT_CPUID, SEVM_SNAP_MANDATORY, index, c, len);
	free(c);
	return r < 0 ? r : 1;
}

/* A struct kvm_msrs asking for msrs[0..n), at any alignment. */
static void fill_msr_request(void *p, const uint32_t *msrs, uint32_t n)
{
	struct kvm_msrs head = { .nmsrs = n };
	uint8_t *e = (uint8_t *)p + sizeof(head);

	memcpy(p, &head, sizeof(head));
	for (uint32_t i = 0; i < n; i++) {
		struct kvm_msr_entry ent = { .index = msrs[i] };

		memcpy(e + (size_t)i * sizeof(ent), &ent, sizeof(ent));
	}
}

static uint64_t msrs_len(uint32_t n)
{
	return sizeof(struct kvm_msrs) + (uint64_t)n * sizeof(struct kvm_msr_entry);
}

/*
 * KVM_GET_MSRS stopped at caps->msrs[k]: this kernel lists the MSR but cannot
 * read it here.  It leaves the list, for later vCPUs too, and reading goes on
 * from the next one until the rest of the list reads back.
 */
static int narrow_msrs(struct sevm__kvm_caps *caps, int fd, uint32_t index, uint32_t k)
{
	void *req = malloc(msrs_len(caps->nr_msrs));
	int r = 0;

	if (!req)
		return sevm__fail(-ENOMEM, "MSR buffer");
	while (k < caps->nr_msrs) {
		uint32_t n;

		sevm__log(SEVM_LOG_INFO, "vCPU %u: KVM_GET_MSRS cannot read MSR 0x%x; "
			  "it is left out of the snapshot", index, caps->msrs[k]);
		memmove(&caps->msrs[k], &caps->msrs[k + 1],
			(caps->nr_msrs - k - 1) * sizeof(caps->msrs[0]));
		n = --caps->nr_msrs - k;
		if (!n)
			break;
		fill_msr_request(req, caps->msrs + k, n);
		r = sevm__ioctl(fd, KVM_GET_MSRS, req);
		if (r < 0 || (uint32_t)r >= n)
			break;
		k += (uint32_t)r;
	}
	free(req);
	return r < 0 ? r : 0;
}

/* In place, once the list is known to read back: the first capture narrows it. */
static int capture_msrs(struct sevm__kvm_caps *caps, int fd, uint32_t index,
			struct sevm__snap_writer *w)
{
	for (;;) {
		struct snap_mark m = snap_mark(w);
		uint32_t n = caps->nr_msrs;
		void *p;
		int r;

		p = sevm__snap_open(w, SEVM_SECT_MSRS, SEVM_SNAP_MANDATORY, index, msrs_len(n));
		if (!p)
			return -ENOMEM;
		fill_msr_request(p, caps->msrs, n);
		r = sevm__ioctl(fd, KVM_GET_MSRS, p);
		if (r >= 0 && (uint32_t)r >= n) {
			sevm__snap_close(w);
			return 1;
		}
		snap_rewind(w, &m);
		if (r < 0)
			return r;
		r = narrow_msrs(caps, fd, index, (uint32_t)r);
		if (r < 0)
			return r;
	}
}

/* The kernel writes the size it used into the header; that many bytes are the item. */
static int capture_nested(const struct sevm__kvm_caps *caps, int fd, uint32_t index,
			  struct sevm__snap_writer *w)
{
	uint32_t cap = caps->nested_size;
	struct kvm_nested_state *ns;
	int r;

	if (cap < sizeof(*ns))
		return sevm__fail(-EINVAL, "KVM_CAP_NESTED_STATE is %u bytes, less than "
				  "its own header", cap);
	ns = calloc(1, cap);
	if (!ns)
		return sevm__fail(-ENOMEM, "nested state buffer of %u bytes", cap);
	ns->size = cap;
	r = sevm__ioctl_quiet(fd, KVM_GET_NESTED_STATE, ns);
	if (r < 0) {
		free(ns);
		return absent_errno(r) ? 0 : sevm__fail(r, "KVM_GET_NESTED_STATE");
	}
	if (ns->size < sizeof(*ns) || ns->size > cap)
		r = sevm__fail(-EIO, "KVM_GET_NESTED_STATE reports %u bytes of at most %u",
			       ns->size, cap);
	else
		r = sevm__snap_put(w, SEVM_SECT_NESTED, SEVM_SNAP_MANDATORY, index, ns, ns->size);
	free(ns);
	return r < 0 ? r : 1;
}

_Static_assert(offsetof(struct kvm_sregs, interrupt_bitmap) ==
	       offsetof(struct kvm_sregs2, flags), "kvm_sregs and kvm_sregs2 share their head");

/* CR0.PG, CR4.PAE, not EFER.LMA: the CPU holds PDPTRs, which only SREGS2 carries. */
static bool pae_paging(const struct kvm_sregs *s)
{
	return (s->cr0 & (1ull << 31)) && (s->cr4 & (1ull << 5)) && !(s->efer & (1ull << 10));
}

/*
 * An item a KVM_RUN handed back (KVM_CAP_SYNC_REGS) instead of its getter,
 * which runs the same kernel code: 1 when put, 0 when the getter must read
 * it.  KVM_GET_SREGS2 is KVM_GET_SREGS without the interrupt bitmap (the
 * vCPU events carry the injected interrupt) and with the PDPTRs, which
 * exist only under PAE paging: elsewhere the two agree byte for byte.
 */
static int capture_synced(const struct sevm__kvm_caps *caps, uint32_t id,
			  const struct kvm_sync_regs *sync, uint32_t index,
			  struct sevm__snap_writer *w)
{
	struct kvm_sregs2 s2;
	int r;

	switch (id) {
	case SEVM_SECT_REGS:
		r = sevm__snap_put(w, id, SEVM_SNAP_MANDATORY, index, &sync->regs,
				   sizeof(sync->regs));
		break;
	case SEVM_SECT_EVENTS:
		r = sevm__snap_put(w, id, SEVM_SNAP_MANDATORY, index, &sync->events,
				   sizeof(sync->events));
		break;
	case SEVM_SECT_SREGS:
		r = sevm__snap_put(w, id, SEVM_SNAP_MANDATORY, index, &sync->sregs,
				   sizeof(sync->sregs));
		break;
	case SEVM_SECT_SREGS2:
		if (!caps->sregs2 || pae_paging(&sync->sregs))
			return 0;
		memset(&s2, 0, sizeof(s2));
		memcpy(&s2, &sync->sregs, offsetof(struct kvm_sregs2, flags));
		r = sevm__snap_put(w, id, SEVM_SNAP_MANDATORY, index, &s2, sizeof(s2));
		break;
	default:
		return 0;
	}
	return r < 0 ? r : 1;
}

/* 1: captured, 0: this VM has no such state, < 0: failed. */
static int capture_item(struct sevm__kvm_caps *caps, const struct item *it, int fd,
			uint32_t index, const struct kvm_sync_regs *sync,
			struct sevm__snap_writer *w)
{
	int r = sync ? capture_synced(caps, it->id, sync, index, w) : 0;

	if (r)
		return r;
	switch (it->id) {
	case SEVM_SECT_CPUID:	return capture_cpuid(fd, index, w);
	case SEVM_SECT_TSC_KHZ:	return capture_tsc_khz(fd, index, w);
	case SEVM_SECT_MSRS:	return capture_msrs(caps, fd, index, w);
	case SEVM_SECT_NESTED:	return capture_nested(caps, fd, index, w);
	default:		return capture_fixed(caps, it, fd, index, w);
	}
}

int sevm__vcpu_capture(struct sevm__kvm_caps *caps, int vcpu_fd, uint32_t index,
		       struct sevm__snap_writer *w, uint64_t *items_out)
{
	return sevm__vcpu_capture_synced(caps, vcpu_fd, index, NULL, w, items_out);
}

int sevm__vcpu_capture_synced(struct sevm__kvm_caps *caps, int vcpu_fd, uint32_t index,
			      const struct kvm_sync_regs *sync, struct sevm__snap_writer *w,
			      uint64_t *items_out)
{
	uint64_t got = 0;

	for (int i = 0; i < NR_ITEMS; i++) {
		const struct item *it = &items[ITEM_INDEX(restore_order[i])];
		int r;

		if (!captured_here(caps, it->id))
			continue;
		r = capture_item(caps, it, vcpu_fd, index, sync, w);
		if (r < 0)
			return sevm__context(r, "vCPU %u", index);
		if (r > 0)
			got |= SEVM__VCPU_ITEM(it->id);
	}
	*items_out = got;
	return 0;
}

/* Where a preset keeps item id, or NULL. */
static void *preset_slot(const struct sevm__vcpu_preset *p, uint32_t id, size_t *len)
{
	struct sevm__vcpu_preset *q = (struct sevm__vcpu_preset *)p;

	switch (id) {
	case SEVM_SECT_DEBUGREGS:	*len = sizeof(q->debugregs); return &q->debugregs;
	case SEVM_SECT_XCRS:		*len = sizeof(q->xcrs); return &q->xcrs;
	case SEVM_SECT_EVENTS:		*len = sizeof(q->events); return &q->events;
	case SEVM_SECT_MP_STATE:	*len = sizeof(q->mp_state); return &q->mp_state;
	default:			return NULL;
	}
}

/* What the kernel lacks is simply not compared, so these reads may fail. */
static void read_small_presets(int vcpu_fd, struct sevm__vcpu_preset *p)
{
	static const uint32_t ids[] = { SEVM_SECT_DEBUGREGS, SEVM_SECT_XCRS, SEVM_SECT_EVENTS,
					SEVM_SECT_MP_STATE };

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		size_t len;
		void *slot = preset_slot(p, ids[i], &len);

		if (sevm__ioctl_quiet(vcpu_fd, items[ITEM_INDEX(ids[i])].get, slot) >= 0)
			p->have |= SEVM__VCPU_ITEM(ids[i]);
	}
}

/* The vCPU holds exactly this already (it has not run since the preset was read). */
static bool holds_already(const struct sevm__vcpu_preset *p, const struct sevm__sect *s)
{
	size_t len;
	const void *slot;

	if (!p || !(p->have & SEVM__VCPU_ITEM(s->id)))
		return false;
	slot = preset_slot(p, s->id, &len);
	return slot && s->len == len && !memcmp(slot, s->data, len);
}

int sevm__vcpu_preset_read(int vcpu_fd, struct sevm__vcpu_preset *p)
{
	struct kvm_cpuid2 *c;
	int r;

	memset(p, 0, sizeof(*p));
	r = read_cpuid(vcpu_fd, &c, &p->cpuid_len);
	if (r < 0)
		return r;
	p->cpuid = c;
	r = sevm__ioctl(vcpu_fd, KVM_GET_TSC_KHZ, NULL);
	if (r < 0) {
		sevm__vcpu_preset_free(p);
		return r;
	}
	p->tsc_khz = (uint32_t)r;
	read_small_presets(vcpu_fd, p);
	return 0;
}

void sevm__vcpu_preset_free(struct sevm__vcpu_preset *p)
{
	free(p->cpuid);
	memset(p, 0, sizeof(*p));
}

/* ---- Image --------------------------------------------------------------- */

static uint32_t get_u32(const void *p, size_t off)
{
	uint32_t v;

	memcpy(&v, (const uint8_t *)p + off, sizeof(v));
	return v;
}

/* Header-plus-entries payloads: the count must be bounded and match the length. */
static int check_counted(const struct item *it, const struct sevm__sect *s, size_t head,
			 size_t entry, uint32_t max)
{
	uint32_t n;

	if (s->len < head)
		return sevm__fail(-SEVM_ERR_FORMAT, "vCPU %u: %s section of %llu bytes, "
				  "shorter than its %zu-byte header", s->instance, it->name,
				  (unsigned long long)s->len, head);
	n = get_u32(s->data, 0);
	if (n > max)
		return sevm__fail(-SEVM_ERR_FORMAT, "vCPU %u: %s section counts %u entries, "
				  "limit %u", s->instance, it->name, n, max);
	if (s->len != head + (uint64_t)n * entry)
		return sevm__fail(-SEVM_ERR_FORMAT, "vCPU %u: %s section of %llu bytes for "
				  "%u entries, expected %llu", s->instance, it->name,
				  (unsigned long long)s->len, n,
				  (unsigned long long)(head + (uint64_t)n * entry));
	return 0;
}

static int check_size(const struct item *it, const struct sevm__sect *s)
{
	uint32_t min;

	switch (it->id) {
	case SEVM_SECT_CPUID:
		return check_counted(it, s, sizeof(struct kvm_cpuid2),
				     sizeof(struct kvm_cpuid_entry2), MAX_CPUID_ENTRIES);
	case SEVM_SECT_MSRS:
		return check_counted(it, s, sizeof(struct kvm_msrs),
				     sizeof(struct kvm_msr_entry), MAX_MSRS);
	case SEVM_SECT_XSAVE:
		/* Its exact size is the destination's (KVM_CAP_XSAVE2): restore checks it. */
		min = sizeof(struct kvm_xsave);
		break;
	case SEVM_SECT_NESTED:
		min = sizeof(struct kvm_nested_state);
		if (s->len >= min &&
		    get_u32(s->data, offsetof(struct kvm_nested_state, size)) != s->len)
			return sevm__fail(-SEVM_ERR_FORMAT, "vCPU %u: NESTED section of %llu "
					  "bytes says it holds %u", s->instance,
					  (unsigned long long)s->len,
					  get_u32(s->data, offsetof(struct kvm_nested_state, size)));
		break;
	default:
		if (s->len != it->size)
			return sevm__fail(-SEVM_ERR_FORMAT, "vCPU %u: %s section of %llu bytes, "
					  "expected %u", s->instance, it->name,
					  (unsigned long long)s->len, it->size);
		return 0;
	}
	if (s->len < min)
		return sevm__fail(-SEVM_ERR_FORMAT, "vCPU %u: %s section of %llu bytes, "
				  "expected at least %u", s->instance, it->name,
				  (unsigned long long)s->len, min);
	return 0;
}

int sevm__vcpu_image_add(struct sevm__vcpu_image *img, const struct sevm__sect *s)
{
	const struct item *it;
	uint64_t bit;
	int r;

	if (s->id < SEVM_SECT_CPUID || s->id > SEVM_SECT_NESTED)
		return sevm__fail(-SEVM_ERR_FORMAT, "section 0x%x instance %u is not a vCPU item",
				  s->id, s->instance);
	it = &items[ITEM_INDEX(s->id)];
	bit = SEVM__VCPU_ITEM(s->id);
	if (img->items & bit)
		return sevm__fail(-SEVM_ERR_FORMAT, "vCPU %u: %s section twice", s->instance,
				  it->name);
	r = check_size(it, s);
	if (r < 0)
		return r;
	img->sect[ITEM_INDEX(s->id)] = *s;
	img->items |= bit;
	return 0;
}

/* ---- Restore ------------------------------------------------------------- */

static const char *first_item_name(uint64_t bits)
{
	return items[__builtin_ctzll(bits)].name;
}

/* What the destination kernel cannot set is refused, never dropped. */
static int check_setter(const struct sevm__kvm_caps *caps, uint32_t index,
			const struct sevm__sect *s)
{
	const char *lacks = NULL;

	switch (s->id) {
	case SEVM_SECT_SREGS2:
		lacks = caps->sregs2 ? NULL : "KVM_CAP_SREGS2";
		break;
	case SEVM_SECT_XCRS:
		lacks = caps->xcrs ? NULL : "KVM_CAP_XCRS";
		break;
	case SEVM_SECT_EVENTS:
		lacks = caps->vcpu_events ? NULL : "KVM_CAP_VCPU_EVENTS";
		break;
	case SEVM_SECT_DEBUGREGS:
		lacks = caps->debugregs ? NULL : "KVM_CAP_DEBUGREGS";
		break;
	case SEVM_SECT_XSAVE:
		/* KVM_SET_XSAVE reads exactly the vCPU's own buffer size. */
		if (caps->xsave_size && s->len != caps->xsave_size)
			return sevm__fail(-EOPNOTSUPP, "vCPU %u: XSAVE of %llu bytes, this "
					  "kernel's is %u (KVM_CAP_XSAVE2)", index,
					  (unsigned long long)s->len, caps->xsave_size);
		lacks = caps->xsave_size ? NULL : "KVM_CAP_XSAVE";
		break;
	case SEVM_SECT_NESTED:
		if (caps->nested_size && s->len > caps->nested_size)
			return sevm__fail(-EOPNOTSUPP, "vCPU %u: NESTED of %llu bytes, this "
					  "kernel takes at most %u", index,
					  (unsigned long long)s->len, caps->nested_size);
		lacks = caps->nested_size ? NULL : "KVM_CAP_NESTED_STATE";
		break;
	}
	if (lacks)
		return sevm__fail(-EOPNOTSUPP, "vCPU %u: the snapshot has %s, this kernel "
				  "lacks %s", index, items[ITEM_INDEX(s->id)].name, lacks);
	return 0;
}

/* Everything that can be checked without the vCPU, before the first setter. */
static int check_image(const struct sevm__kvm_caps *caps, uint32_t index,
		       const struct sevm__vcpu_image *img, uint64_t expected)
{
	const uint64_t all = (1ull << NR_ITEMS) - 1;
	static const uint32_t pairs[][2] = {
		{ SEVM_SECT_SREGS2, SEVM_SECT_SREGS }, { SEVM_SECT_XSAVE, SEVM_SECT_FPU },
	};

	if (expected & ~all)
		return sevm__fail(-SEVM_ERR_FORMAT, "vCPU %u: the snapshot lists unknown "
				  "vCPU items 0x%llx", index,
				  (unsigned long long)(expected & ~all));
	if (expected & ~img->items)
		return sevm__fail(-SEVM_ERR_FORMAT, "vCPU %u: snapshot lacks %s", index,
				  first_item_name(expected & ~img->items));
	if (img->items & ~expected)
		return sevm__fail(-SEVM_ERR_FORMAT, "vCPU %u: snapshot has %s, which its "
				  "GUEST section does not list", index,
				  first_item_name(img->items & ~expected));
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		uint64_t both = SEVM__VCPU_ITEM(pairs[i][0]) | SEVM__VCPU_ITEM(pairs[i][1]);

		if ((img->items & both) == both)
			return sevm__fail(-SEVM_ERR_FORMAT, "vCPU %u: snapshot has both %s "
					  "and %s", index, items[ITEM_INDEX(pairs[i][0])].name,
					  items[ITEM_INDEX(pairs[i][1])].name);
	}
	for (int i = 0; i < NR_ITEMS; i++) {
		int r;

		if (!(img->items & (1ull << i)))
			continue;
		r = check_setter(caps, index, &img->sect[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Without KVM_CAP_TSC_CONTROL the rate cannot be changed: a guest whose TSC
 * already runs at this vCPU's rate needs nothing, any other is refused.
 */
static int restore_tsc_khz(const struct sevm__kvm_caps *caps, int fd,
			   const struct sevm__sect *s, const struct sevm__vcpu_preset *pre)
{
	uint32_t khz = get_u32(s->data, 0);
	int r;

	if (pre && pre->tsc_khz == khz)
		return 0;
	if (caps->tsc_control)
		return sevm__ioctl(fd, KVM_SET_TSC_KHZ, (void *)(uintptr_t)khz);
	r = sevm__ioctl(fd, KVM_GET_TSC_KHZ, NULL);
	if (r < 0 || (uint32_t)r == khz)
		return r < 0 ? r : 0;
	return sevm__fail(-EOPNOTSUPP, "TSC_KHZ: the guest's TSC runs at %u kHz, this "
			  "vCPU's at %d kHz, and this kernel cannot scale it (no "
			  "KVM_CAP_TSC_CONTROL)", khz, r);
}

/* struct kvm_msrs with one entry. */
struct one_msr {
	uint32_t nmsrs, pad;
	struct kvm_msr_entry e;
};
_Static_assert(offsetof(struct one_msr, e) == sizeof(struct kvm_msrs), "kvm_msrs layout");

/* KVM_SET_MSRS stopped at want: acceptable only if the vCPU already holds its value. */
static int check_refused_msr(int fd, const struct kvm_msr_entry *want)
{
	struct one_msr one = { .nmsrs = 1, .e.index = want->index };
	int r = sevm__ioctl(fd, KVM_GET_MSRS, &one);

	if (r < 0)
		return r;
	if (r == 1 && one.e.data == want->data)
		return 0;
	if (r == 1)
		return sevm__fail(-EINVAL, "KVM_SET_MSRS refused MSR 0x%x = 0x%llx (it holds "
				  "0x%llx)", want->index, (unsigned long long)want->data,
				  (unsigned long long)one.e.data);
	return sevm__fail(-EINVAL, "KVM_SET_MSRS refused MSR 0x%x = 0x%llx (and cannot read "
			  "it)", want->index, (unsigned long long)want->data);
}

/*
 * KVM_SET_MSRS returns how many it set and stops at the first it refuses.
 * The common case is one call on the payload as it lies; after a refusal
 * that turns out harmless the rest is sent from a copy.
 */
static int restore_msrs(int fd, uint32_t index, const struct sevm__sect *s)
{
	const uint8_t *entries = (const uint8_t *)s->data + sizeof(struct kvm_msrs);
	uint32_t n = get_u32(s->data, offsetof(struct kvm_msrs, nmsrs)), done;
	struct kvm_msrs *rest = NULL;
	int r;

	r = sevm__ioctl(fd, KVM_SET_MSRS, (void *)s->data);
	for (done = 0; r >= 0 && (done += (uint32_t)r) < n; ) {
		struct kvm_msr_entry want;

		memcpy(&want, entries + (size_t)done * sizeof(want), sizeof(want));
		r = check_refused_msr(fd, &want);
		if (r < 0)
			break;
		sevm__log(SEVM_LOG_INFO, "vCPU %u: KVM_SET_MSRS refused MSR 0x%x, which "
			  "already holds 0x%llx", index, want.index,
			  (unsigned long long)want.data);
		if (++done == n)
			break;
		if (!rest && !(rest = malloc(msrs_len(n)))) {
			r = sevm__fail(-ENOMEM, "MSR buffer");
			break;
		}
		rest->nmsrs = n - done;
		rest->pad = 0;
		memcpy(rest->entries, entries + (size_t)done * sizeof(want),
		       (size_t)rest->nmsrs * sizeof(want));
		r = sevm__ioctl(fd, KVM_SET_MSRS, rest);
	}
	free(rest);
	return r < 0 ? r : 0;
}

/*
 * The destination's VMM set this very CPUID when it made the vCPU (it has
 * not run since): setting it again would change nothing.
 */
static bool same_cpuid(const struct sevm__vcpu_preset *pre, const struct sevm__sect *s)
{
	return pre && pre->cpuid && pre->cpuid_len == s->len &&
	       !memcmp(pre->cpuid, s->data, s->len);
}

int sevm__vcpu_restore(const struct sevm__kvm_caps *caps, int vcpu_fd, uint32_t index,
		       const struct sevm__vcpu_image *img, uint64_t expected)
{
	int r = check_image(caps, index, img, expected);

	if (r < 0)
		return r;
	for (int i = 0; i < NR_ITEMS; i++) {
		const struct item *it = &items[ITEM_INDEX(restore_order[i])];
		const struct sevm__sect *s = &img->sect[ITEM_INDEX(it->id)];

		if (!(img->items & SEVM__VCPU_ITEM(it->id)))
			continue;
		switch (it->id) {
		case SEVM_SECT_CPUID:
			r = same_cpuid(img->preset, s) ? 0 :
			    sevm__ioctl(vcpu_fd, KVM_SET_CPUID2, (void *)s->data);
			break;
		case SEVM_SECT_TSC_KHZ:
			r = restore_tsc_khz(caps, vcpu_fd, s, img->preset);
			break;
		case SEVM_SECT_MSRS:
			r = restore_msrs(vcpu_fd, index, s);
			break;
		default:
			/* The kernel only reads the payload. */
			r = holds_already(img->preset, s) ? 0 :
			    sevm__ioctl(vcpu_fd, it->set, (void *)s->data);
			break;
		}
		if (r < 0)
			return sevm__context(r, "vCPU %u", index);
	}
	return 0;
}
