/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VM-wide state: the kvmclock, the in-kernel PIC pair and IOAPIC, the PIT.
 * These are VM ioctls, which do not wait for running vCPUs; they are taken
 * once per handoff, so they go through small stack copies.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../abi/compat.h"
#include "../core/error.h"
#include "../core/seam.h"
#include "state.h"

#define NR_IRQCHIPS	3	/* KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC */

_Static_assert(sizeof(struct kvm_clock_data) == 48, "kvm_clock_data is 48 bytes");
_Static_assert(sizeof(struct kvm_irqchip) == 520, "kvm_irqchip is 520 bytes");
_Static_assert(sizeof(struct kvm_pit_state2) == 112, "kvm_pit_state2 is 112 bytes");
_Static_assert(KVM_IRQCHIP_IOAPIC == NR_IRQCHIPS - 1, "chip ids 0..2");

/* No in-kernel irqchip (ENXIO; split irqchip too) or PIT (ENXIO, EINVAL on old kernels). */
static bool absent_errno(int r)
{
	return r == -ENXIO || r == -EINVAL;
}

static int put(struct sevm__snap_writer *w, uint32_t id, uint32_t instance,
	       const void *data, uint64_t len)
{
	return sevm__snap_put(w, id, SEVM_SNAP_MANDATORY, instance, data, len);
}

/* 1: captured, 0: the VM has no in-kernel irqchip. */
static int capture_irqchips(int vm_fd, struct sevm__snap_writer *w)
{
	for (uint32_t chip = 0; chip < NR_IRQCHIPS; chip++) {
		struct kvm_irqchip c = { .chip_id = chip };
		int r = sevm__ioctl_quiet(vm_fd, KVM_GET_IRQCHIP, &c);

		if (r < 0 && chip == 0 && absent_errno(r))
			return 0;
		if (r < 0)
			return sevm__fail(r, "IRQCHIP %u: KVM_GET_IRQCHIP", chip);
		r = put(w, SEVM_SECT_IRQCHIP, chip, &c, sizeof(c));
		if (r < 0)
			return r;
	}
	return 1;
}

/*
 * Sections in the order the receiver applies them as they arrive: the
 * interrupt controllers and PIT, then the clock last, just before the first
 * KVM_RUN, so the guest's time jumps no more than the blackout.
 */
int sevm__vm_capture(int vm_fd, struct sevm__snap_writer *w)
{
	struct kvm_clock_data clock = { 0 };
	struct kvm_pit_state2 pit;
	int r;

	r = capture_irqchips(vm_fd, w);
	if (r < 0)
		return r;
	memset(&pit, 0, sizeof(pit));
	r = sevm__ioctl_quiet(vm_fd, KVM_GET_PIT2, &pit);
	if (r < 0 && !absent_errno(r))
		return sevm__fail(r, "PIT: KVM_GET_PIT2");
	if (r >= 0 && (r = put(w, SEVM_SECT_PIT2, 0, &pit, sizeof(pit))) < 0)
		return r;
	r = sevm__ioctl(vm_fd, KVM_GET_CLOCK, &clock);
	if (r >= 0)
		r = put(w, SEVM_SECT_VM_CLOCK, 0, &clock, sizeof(clock));
	return r < 0 ? sevm__context(r, "VM clock") : 0;
}

static int check_len(const struct sevm__sect *s, const char *what, uint64_t want)
{
	if (s->len == want)
		return 0;
	return sevm__fail(-SEVM_ERR_FORMAT, "%s section of %llu bytes, expected %llu", what,
			  (unsigned long long)s->len, (unsigned long long)want);
}

/*
 * TSC_STABLE and HOST_TSC describe the source host and are outputs only;
 * kernels before 5.16 refuse any flag.  REALTIME (5.16) makes the kernel add
 * the wall-clock time since capture, so the guest's clock does not stop for
 * the blackout; an older kernel refuses it, and the clock then resumes where
 * it was captured.
 */
static int restore_clock(int vm_fd, const struct sevm__sect *s)
{
	struct kvm_clock_data c;
	int r = check_len(s, "VM clock", sizeof(c));

	if (r < 0)
		return r;
	memcpy(&c, s->data, sizeof(c));
	c.flags &= KVM_CLOCK_REALTIME;
	r = sevm__ioctl(vm_fd, KVM_SET_CLOCK, &c);
	if (r == -EINVAL && c.flags) {
		sevm__log(SEVM_LOG_WARN, "KVM_SET_CLOCK refuses KVM_CLOCK_REALTIME: the "
			  "guest clock stops for the handoff");
		c.flags = 0;
		r = sevm__ioctl(vm_fd, KVM_SET_CLOCK, &c);
	}
	return r < 0 ? sevm__context(r, "VM clock") : 0;
}

static int restore_irqchip(int vm_fd, const struct sevm__sect *s)
{
	uint32_t chip;
	int r = check_len(s, "IRQCHIP", sizeof(struct kvm_irqchip));

	if (r < 0)
		return r;
	memcpy(&chip, s->data, sizeof(chip));
	if (chip != s->instance || chip >= NR_IRQCHIPS)
		return sevm__fail(-SEVM_ERR_FORMAT, "IRQCHIP section instance %u holds chip %u",
				  s->instance, chip);
	/* The kernel only reads the payload. */
	r = sevm__ioctl(vm_fd, KVM_SET_IRQCHIP, (void *)s->data);
	return r < 0 ? sevm__context(r, "IRQCHIP %u", chip) : 0;
}

static int restore_pit(int vm_fd, const struct sevm__sect *s)
{
	int r = check_len(s, "PIT2", sizeof(struct kvm_pit_state2));

	if (r < 0)
		return r;
	if (s->instance)
		return sevm__fail(-SEVM_ERR_FORMAT, "PIT2 section instance %u, expected 0",
				  s->instance);
	r = sevm__ioctl(vm_fd, KVM_SET_PIT2, (void *)s->data);
	return r < 0 ? sevm__context(r, "PIT") : 0;
}

int sevm__vm_restore_section(int vm_fd, const struct sevm__sect *s)
{
	switch (s->id) {
	case SEVM_SECT_VM_CLOCK:	return restore_clock(vm_fd, s);
	case SEVM_SECT_IRQCHIP:		return restore_irqchip(vm_fd, s);
	case SEVM_SECT_PIT2:		return restore_pit(vm_fd, s);
	default:			return sevm__snap_unknown(s);
	}
}

int sevm__vm_flags(int vm_fd, uint32_t *flags)
{
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_PIC_MASTER };
	struct kvm_pit_state2 pit;
	uint32_t f = 0;
	int r;

	r = sevm__ioctl_quiet(vm_fd, KVM_GET_IRQCHIP, &chip);
	if (r >= 0)
		f |= SEVM_GUEST_IRQCHIP;
	else if (!absent_errno(r))
		return sevm__fail(r, "KVM_GET_IRQCHIP");
	r = sevm__ioctl_quiet(vm_fd, KVM_GET_PIT2, &pit);
	if (r >= 0)
		f |= SEVM_GUEST_PIT;
	else if (!absent_errno(r))
		return sevm__fail(r, "KVM_GET_PIT2");
	*flags = f;
	return 0;
}
