/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Capture and restore of a plain (unencrypted) guest's vCPU and VM state
 * with KVM's getters and setters, as snapshot sections.
 *
 * Capture and restore run only while the vCPUs are outside KVM_RUN: a vCPU
 * ioctl from another thread waits for the vCPU's mutex, which KVM_RUN holds.
 */
#ifndef SEVM_KVM_STATE_H
#define SEVM_KVM_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "../snapshot/format.h"

/* The per-vCPU items, in the order restore applies them (see restore_order in state.c). */
#define SEVM__VCPU_ITEM(id)	(1ull << ((id) - SEVM_SECT_CPUID))
#define SEVM__NR_VCPU_ITEMS	(SEVM_SECT_NESTED - SEVM_SECT_CPUID + 1)

/*
 * What this kernel can get and set, learned once per VM (KVM_CHECK_EXTENSION
 * on the VM fd, KVM_GET_MSR_INDEX_LIST on /dev/kvm).  The MSR list narrows
 * as capture learns which MSRs do not read back.
 */
struct sevm__kvm_caps {
	uint32_t xsave_size;	/* KVM_CAP_XSAVE2 bytes; 0 → no XSAVE, use FPU */
	bool sregs2;
	bool xcrs;
	bool debugregs;
	bool vcpu_events;
	bool tsc_control;	/* KVM_CAP_TSC_CONTROL: TSC frequency can be set */
	uint32_t nested_size;	/* KVM_CAP_NESTED_STATE; 0 → none */
	uint32_t sync_regs;	/* KVM_CAP_SYNC_REGS: KVM_SYNC_X86_* a KVM_RUN can return */
	/*
	 * SEV-ES: the registers live in the encrypted VMSA, which the MOVE of
	 * the encryption context carries; KVM refuses their getters and setters
	 * (has_protected_state && guest_state_protected).  Only the state KVM
	 * itself keeps is captured: CPUID, TSC rate, LAPIC, events, MP state.
	 */
	bool protected_state;
	uint32_t nr_msrs;
	uint32_t *msrs;		/* indices to capture */
};

int sevm__kvm_caps_probe(int vm_fd, struct sevm__kvm_caps *caps);
void sevm__kvm_caps_free(struct sevm__kvm_caps *caps);

/*
 * Append vCPU `index`'s sections to w; *items gets the SEVM__VCPU_ITEM bits
 * captured.  An item the kernel does not support (lapic without an in-kernel
 * irqchip, nested state without nesting) is left out, never faked.
 */
int sevm__vcpu_capture(struct sevm__kvm_caps *caps, int vcpu_fd, uint32_t index,
		       struct sevm__snap_writer *w, uint64_t *items);

/*
 * The same, with the registers, segment registers and events a KVM_RUN
 * just handed back in struct kvm_run (sevm__vcpu_quiesce_sync()) taken in
 * place of three getters; sync NULL: every item from its getter.
 */
int sevm__vcpu_capture_synced(struct sevm__kvm_caps *caps, int vcpu_fd, uint32_t index,
			      const struct kvm_sync_regs *sync, struct sevm__snap_writer *w,
			      uint64_t *items);

/* The KVM_SYNC_X86_* fields capture takes from a KVM_RUN. */
#define SEVM__SYNC_FIELDS (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS)

/*
 * sevm_vcpu_quiesce()'s KVM_RUN, from the vCPU's thread, with the
 * SEVM__SYNC_FIELDS handed back into *sync.  0 with *synced true; 0 with
 * *synced false when the kernel stored nothing (KVM_RUN ended before it
 * could); -EAGAIN when KVM_RUN came back with a new exit to handle.
 */
int sevm__vcpu_quiesce_sync(int vcpu_fd, struct kvm_run *run, struct kvm_sync_regs *sync,
			    bool *synced);

/*
 * What a destination vCPU holds before the guest pauses, read while it has
 * not run: restore skips a setter whose value is already there
 * (KVM_SET_CPUID2 alone is over half of a vCPU's restore).
 */
struct sevm__vcpu_preset {
	void *cpuid;		/* struct kvm_cpuid2 as KVM_GET_CPUID2 gives it */
	uint32_t cpuid_len;
	uint32_t tsc_khz;	/* 0: unknown */
	/*
	 * A fresh vCPU's small items, as its getters give them: a guest that
	 * left one as it was (debug registers, XCR0, no pending event) needs
	 * no setter for it.  Bit SEVM__VCPU_ITEM(id) in `have` marks each read.
	 */
	uint64_t have;
	struct kvm_debugregs debugregs;
	struct kvm_xcrs xcrs;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
};

int sevm__vcpu_preset_read(int vcpu_fd, struct sevm__vcpu_preset *p);
void sevm__vcpu_preset_free(struct sevm__vcpu_preset *p);

/* One vCPU's sections as they arrive, in any order, then applied in the kernel's order. */
struct sevm__vcpu_image {
	uint64_t items;			/* SEVM__VCPU_ITEM bits present */
	struct sevm__sect sect[SEVM__NR_VCPU_ITEMS];
	const struct sevm__vcpu_preset *preset;	/* NULL: set everything */
};

/*
 * Take a per-vCPU section into img: -SEVM_ERR_FORMAT for a duplicate, a size
 * that does not fit the kernel struct, or an id that is not a vCPU item.
 */
int sevm__vcpu_image_add(struct sevm__vcpu_image *img, const struct sevm__sect *s);

/*
 * Restore vCPU `index` from img, which must hold exactly the items in
 * `expected` (from the GUEST section): a missing one is a truncated snapshot.
 */
int sevm__vcpu_restore(const struct sevm__kvm_caps *caps, int vcpu_fd, uint32_t index,
		       const struct sevm__vcpu_image *img, uint64_t expected);

/* VM-wide state: clock, PIC ×2 and IOAPIC when the irqchip is in the kernel, PIT2 when present. */
int sevm__vm_capture(int vm_fd, struct sevm__snap_writer *w);

/* Apply one VM-wide section (restore calls this last, just before the first KVM_RUN). */
int sevm__vm_restore_section(int vm_fd, const struct sevm__sect *s);

/* SEVM_GUEST_IRQCHIP / SEVM_GUEST_PIT as the VM has them (asked without vCPU ioctls). */
int sevm__vm_flags(int vm_fd, uint32_t *flags);

#endif
