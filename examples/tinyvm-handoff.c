/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "tinyvm-handoff.h"

#define DEVSTATE_MAGIC 0x54564d31u	/* "TVM1" */

/* This VMM's device state: what its new self needs to continue exactly. */
struct devstate {
	uint32_t magic;
	uint32_t nr_vcpus;
	uint64_t pause_ns;
	uint64_t ram_checksum;
	uint32_t last_beat[];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int describe(struct tinyvm *vm, struct sevm_handoff *h)
{
	int fds[TINYVM_MAX_VCPUS];
	struct sevm_region r = {
		.sz = sizeof(r), .slot = 0, .guest_phys_addr = 0, .size = vm->mem_size,
		.fd = vm->mem_fd, .offset = 0, .host_addr = vm->mem,
	};
	int err;

	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		fds[i] = vm->vcpus[i].fd;
	err = sevm_handoff_set_vm(h, vm->vm_fd, fds, vm->nr_vcpus);
	return err ? err : sevm_handoff_add_region(h, &r);
}

/*
 * The vCPU's own thread, as it pauses; with its kvm_run the library also
 * completes the last exit's instruction.  A failure stays with the handle:
 * the switch reports it, and the guest is resumed.
 */
static bool capture_on_park(struct tinyvm *vm, unsigned int i, void *h)
{
	return sevm_handoff_capture_vcpu(h, i, vm->vcpus[i].run) == 0;
}

int tinyvm_handoff_send(struct tinyvm *vm, struct sevm_handoff *h,
			struct tinyvm_handoff_times *t)
{
	size_t len = sizeof(struct devstate) + vm->nr_vcpus * sizeof(uint32_t);
	struct devstate *ds = calloc(1, len);
	int err;

	if (!ds)
		return -ENOMEM;
	err = describe(vm, h);
	if (!err)
		err = sevm_handoff_prepare(h);
	if (err)
		goto out;
	if (!t->capture_in_switch)
		tinyvm_set_park_hook(vm, capture_on_park, h);
	t->pause_ns = now_ns();
	err = tinyvm_pause(vm);
	tinyvm_set_park_hook(vm, NULL, NULL);
	if (err)
		goto out;
	t->paused_ns = now_ns();
	ds->magic = DEVSTATE_MAGIC;
	ds->nr_vcpus = vm->nr_vcpus;
	ds->pause_ns = t->pause_ns;
	ds->ram_checksum = t->verify_ram ? tinyvm_ram_checksum(vm) : 0;
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		ds->last_beat[i] = vm->vcpus[i].last_beat;
	err = sevm_handoff_switch(h, ds, len);
	t->switched_ns = now_ns();
	/* Rollback: the guest never left, so it simply runs on. */
	if (err && err != -SEVM_ERR_INDOUBT)
		tinyvm_resume(vm);
out:
	free(ds);
	return err;
}

int tinyvm_handoff_receive(struct tinyvm *vm, struct sevm_handoff *h,
			   struct tinyvm_handoff_times *t)
{
	struct sevm_guest_info gi = { .sz = sizeof(gi) };
	struct sevm_region r = { .sz = sizeof(r) };
	const struct devstate *ds;
	const void *blob;
	size_t len;
	int fds[TINYVM_MAX_VCPUS];
	int err;

	err = sevm_handoff_info(h, &gi);
	if (!err && (gi.nr_regions != 1 || gi.nr_vcpus > TINYVM_MAX_VCPUS))
		err = -EINVAL;
	if (!err)
		err = sevm_handoff_region(h, 0, &r);
	/* The library sets the memory slot; tinyvm maps the RAM for its own checks. */
	if (!err)
		err = tinyvm_create_shell(vm, gi.nr_vcpus, r.fd, r.size, TINYVM_F_NO_MEMSLOT |
					  (gi.flags & SEVM_GUEST_PIT ? TINYVM_F_PIT : 0));
	for (unsigned int i = 0; !err && i < gi.nr_vcpus; i++)
		fds[i] = vm->vcpus[i].fd;
	if (!err)
		err = sevm_handoff_set_vm(h, vm->vm_fd, fds, gi.nr_vcpus);
	/*
	 * Threads are made now, parked, so that only a wake-up is left for the
	 * blackout; before prepare, which tells the old VMM it may pause.
	 */
	if (!err)
		err = tinyvm_start_paused(vm);
	if (!err)
		err = sevm_handoff_prepare(h);
	if (err)
		return err;
	err = sevm_handoff_switch_receive(h, &blob, &len);
	t->switched_ns = now_ns();
	if (err)
		return err;
	ds = blob;
	if (len != sizeof(*ds) + gi.nr_vcpus * sizeof(uint32_t) || ds->magic != DEVSTATE_MAGIC ||
	    ds->nr_vcpus != gi.nr_vcpus) {
		fprintf(stderr, "tinyvm: device state of %zu bytes does not fit\n", len);
		return -EPROTO;
	}
	t->pause_ns = ds->pause_ns;
	/*
	 * The guest is ours now, with the library's mapping under the memory
	 * slot: tinyvm adopts that mapping and the fd instead of its own copy.
	 */
	err = sevm_handoff_region(h, 0, &r);
	if (err)
		return err;
	munmap(vm->mem, vm->mem_size);
	vm->mem = r.host_addr;
	vm->owns_mem_fd = true;
	if (ds->ram_checksum && tinyvm_ram_checksum(vm) != ds->ram_checksum) {
		fprintf(stderr, "tinyvm: guest RAM differs from the old VMM's\n");
		return -EIO;
	}
	tinyvm_expect_continuation(vm, ds->last_beat);
	err = tinyvm_resume(vm);
	t->resumed_ns = now_ns();
	return err;
}
