/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The new VMM of the guest_memfd handoff test:  gmem-peer FD
 * FD is its end of a socketpair with the old VMM.  It receives the guest,
 * whose memory fd is the old VM's guest_memfd; the library maps it and sets
 * it as slot 0's plain userspace memory.  After the switch the guest must
 * report the sum of the pattern it wrote in the old VMM.  Exit 0 when it
 * does and the private-page record arrived; else the reason on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "gmem-guest.h"
#include "kvm/gmem.h"

static const struct sevm_handoff_opts opts = { .sz = sizeof(opts), .timeout_ms = 5000 };

static int fail(const char *what, int err)
{
	fprintf(stderr, "gmem-peer %d: %s: %d (%s)\n", (int)getpid(), what, err, sevm_last_error());
	return 1;
}

/* The region is the old VM's guest_memfd, and the pattern is in it already. */
static int check_region(struct sevm_handoff *h)
{
	struct sevm_region r = { .sz = sizeof(r) };
	const uint16_t *w;
	int err = sevm_handoff_region(h, 0, &r);

	if (err)
		return fail("region", err);
	if (!sevm__is_gmem(r.fd))
		return fail("region 0 is not a guest_memfd", -EINVAL);
	w = (const uint16_t *)((const uint8_t *)r.host_addr + GMEM_PATTERN_GPA);
	for (unsigned int i = 0; i < GMEM_PATTERN_WORDS; i++)
		if (w[i] != (uint16_t)(i ^ 0x5a5a))
			return fail("pattern in the mapped guest_memfd", (int)i);
	return 0;
}

static int check_private(struct sevm_handoff *h)
{
	struct sevm_bitmap *b = NULL;
	int err = sevm_handoff_private(h, &b);

	if (err)
		return fail("private-page record", err);
	if (sevm_bitmap_count(b, 0, GMEM_RAM_SIZE / 4096) != 10 || sevm_bitmap_test(b, 100) != 1 ||
	    sevm_bitmap_test(b, 110) != 0)
		err = fail("private-page record differs", -EINVAL);
	sevm_bitmap_free(b);
	return err ? 1 : 0;
}

/* Every way out before the end frees the handle, so LeakSanitizer has nothing to say. */
static int quit(struct sevm_handoff *h, const char *what, int err)
{
	int r = what ? fail(what, err) : 1;

	sevm_handoff_free(h);
	return r;
}

int main(int argc, char **argv)
{
	struct sevm_guest_info info = { .sz = sizeof(info) };
	struct sevm_region r = { .sz = sizeof(r) };
	struct sevm_handoff *h;
	struct kvm_run *run;
	int kvm, vm, vcpu, err;
	uint32_t v = 0;

	if (argc < 2)
		return 2;
	err = sevm_handoff_from_fd(atoi(argv[1]), false, &opts, &h);
	if (err)
		return fail("from_fd", err);
	err = sevm_handoff_info(h, &info);
	if (err || info.nr_vcpus != 1 || info.nr_regions != 1 || info.flags)
		return quit(h, "info", err ? err : -EINVAL);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	vm = ioctl(kvm, KVM_CREATE_VM, info.vm_type);
	vcpu = gmem_vcpu_create(kvm, vm, &run);
	if (vcpu < 0)
		return quit(h, "vCPU", -errno);
	err = sevm_handoff_set_vm(h, vm, &vcpu, 1);
	if (!err)
		err = sevm_handoff_prepare(h);
	if (err)
		return quit(h, "prepare", err);
	if (check_region(h))
		return quit(h, NULL, 0);
	err = sevm_handoff_switch_receive(h, NULL, NULL);
	if (err)
		return quit(h, "switch", err);
	if (check_private(h))
		return quit(h, NULL, 0);
	sevm_handoff_region(h, 0, &r);
	sevm_handoff_free(h);
	/* Every sum is read from the handed-over guest_memfd, in this VM. */
	for (int i = 0; i < 5; i++) {
		int port = gmem_run_to_io(vcpu, run, &v);

		if (port != GMEM_PORT_SUM || v != gmem_pattern_sum()) {
			fprintf(stderr, "gmem-peer: exit %d (port %d, value 0x%x, want 0x%x)\n",
				run->exit_reason, port, v, gmem_pattern_sum());
			return 1;
		}
	}
	printf("gmem-peer: the guest summed its pattern to 0x%x five times after the handoff\n", v);
	munmap(r.host_addr, r.size);
	close(r.fd);
	close(vcpu);
	close(vm);
	close(kvm);
	return 0;
}
