/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guest_memfd on real KVM, every call failing in turn (sweep.h):
 *
 *   gmem-setup  sevm_gmem_create() and sevm_gmem_bind() of a new VM's RAM
 *   gmem-send   the hand-over of a running guest whose RAM is a guest_memfd
 *               (SEVM_GMEM_MMAP | SEVM_GMEM_INIT_SHARED) with its private-page
 *               record, to tests/e2e/gmem-peer in a process of its own
 *
 * Promised after a failed hand-over (doc/handoff.md): the guest runs on
 * here, reading the pattern from its guest_memfd; -SEVM_ERR_INDOUBT only
 * after the commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "abi/compat.h"
#include "../e2e/gmem-vmm.h"
#include "sweep.h"
#include "testutil.h"

static const char *peer_path;
static const struct sevm_handoff_opts opts = { .sz = sizeof(opts), .timeout_ms = 3000 };

struct old_vmm {
	struct gmem_vmm g;
	int sock;
	struct sevm_bitmap *priv;
	pid_t peer;
};

/* ---- gmem-setup --------------------------------------------------------------- */

static void new_vm(void *ctx)
{
	struct gmem_vmm *o = ctx;

	o->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	o->vm = ioctl(o->kvm, KVM_CREATE_VM, 0);
	ck_assert_int_ge(o->vm, 0);
	o->gmem = -1;
	o->mem = MAP_FAILED;
}

static int create_and_bind(void *ctx)
{
	struct sevm_gmem_slot slot = { .sz = sizeof(slot), .slot = 0, .size = GMEM_RAM_SIZE };
	struct gmem_vmm *o = ctx;

	o->gmem = sevm_gmem_create(o->vm, GMEM_RAM_SIZE, SEVM_GMEM_MMAP | SEVM_GMEM_INIT_SHARED);
	if (o->gmem < 0)
		return o->gmem;
	o->mem = mmap(NULL, GMEM_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, o->gmem, 0);
	if (o->mem == MAP_FAILED)
		return -errno;
	slot.host_addr = o->mem;
	slot.gmem_fd = o->gmem;
	return sevm_gmem_bind(o->vm, &slot);
}

/* Bound: the guest runs from the guest_memfd.  Either way nothing is left open. */
static void check_setup(void *ctx, int err, const struct tu_call *hit)
{
	struct gmem_vmm *o = ctx;
	uint32_t v;

	(void)hit;
	if (err == 0) {
		memcpy((uint8_t *)o->mem + GMEM_CODE_GPA, gmem_guest_code, sizeof(gmem_guest_code));
		gmem_vmm_vcpu(o);
		sweep_expect(gmem_run_to_io(o->vcpu, o->run, &v) == GMEM_PORT_WRITTEN &&
			     gmem_run_to_io(o->vcpu, o->run, &v) == GMEM_PORT_SUM &&
			     v == gmem_pattern_sum(), "bound, but the guest does not run from it");
		munmap(o->run, (size_t)ioctl(o->kvm, KVM_GET_VCPU_MMAP_SIZE, 0));
		close(o->vcpu);
	}
	if (o->mem != MAP_FAILED)
		munmap(o->mem, GMEM_RAM_SIZE);
	if (o->gmem >= 0)
		close(o->gmem);
	close(o->vm);
	close(o->kvm);
}

/* ---- gmem-send ----------------------------------------------------------------- */

/* The old VMM's guest, booted and run past its pattern; no fault yet. */
static void boot(struct old_vmm *o)
{
	struct sevm_gfn_range map = { .gfn = 0, .npages = GMEM_RAM_SIZE / 4096 };
	uint32_t v;

	gmem_vmm_boot(&o->g);
	ck_assert_int_eq(gmem_run_to_io(o->g.vcpu, o->g.run, &v), GMEM_PORT_WRITTEN);
	ck_assert_int_eq(gmem_run_to_io(o->g.vcpu, o->g.run, &v), GMEM_PORT_SUM);
	ck_assert_uint_eq(v, gmem_pattern_sum());
	/* Finish the OUT whose exit was just handled before the state is captured. */
	ck_assert_int_eq(sevm_vcpu_quiesce(o->g.vcpu, o->g.run), 0);
	ck_assert_int_eq(sevm_bitmap_new(&map, 1, &o->priv), 0);
	ck_assert_int_eq(sevm_bitmap_set(o->priv, 100, 10), 0);
}

static void boot_and_spawn(void *ctx)
{
	struct old_vmm *o = ctx;
	int sv[2];

	boot(o);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	o->peer = fork();
	ck_assert_int_ge(o->peer, 0);
	if (o->peer == 0) {
		char fd[16];

		snprintf(fd, sizeof(fd), "%d", dup(sv[1]));
		execl(peer_path, peer_path, fd, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	o->sock = sv[0];
}

static int hand_over(void *ctx)
{
	struct sevm_region ram = { .sz = sizeof(ram), .slot = 0, .size = GMEM_RAM_SIZE };
	struct old_vmm *o = ctx;
	struct sevm_handoff *h;
	int err = sevm_handoff_from_fd(o->sock, true, &opts, &h);

	if (err)
		return err;
	o->sock = -1;
	ram.fd = o->g.gmem;
	ram.host_addr = o->g.mem;
	err = sevm_handoff_set_vm(h, o->g.vm, &o->g.vcpu, 1);
	if (!err)
		err = sevm_handoff_add_region(h, &ram);
	if (!err)
		err = sevm_handoff_set_private(h, o->priv);
	if (!err)
		err = sevm_handoff_prepare(h);
	if (!err)
		err = sevm_handoff_switch(h, NULL, 0);
	sevm_handoff_free(h);
	return err;
}

/* The guest still sums its pattern here, from the guest_memfd. */
static bool runs_here(struct gmem_vmm *o)
{
	uint32_t v;

	for (int i = 0; i < 3; i++)
		if (gmem_run_to_io(o->vcpu, o->run, &v) != GMEM_PORT_SUM || v != gmem_pattern_sum())
			return false;
	return true;
}

static void check_send(void *ctx, int err, const struct tu_call *hit)
{
	struct old_vmm *o = ctx;
	int peer;

	if (o->sock >= 0)
		close(o->sock);
	if (err == 0 || err == -SEVM_ERR_INDOUBT) {
		sweep_expect(err == 0 || (hit && hit->op == TU_OP_RECVMSG),
			     "in doubt, yet no wait for RESUMED failed");
		peer = tu_reap(o->peer, 15000);
		sweep_expect(peer == 0, "the guest went over (%d), but gmem-peer exited %d", err, peer);
	} else {
		sweep_expect(runs_here(&o->g), "failed with %d, but the guest does not run on here",
			     err);
		peer = tu_reap(o->peer, 15000);
		sweep_expect(peer != 0 && peer != -1, "failed with %d here; gmem-peer exited %d",
			     err, peer);
	}
	sevm_bitmap_free(o->priv);
	gmem_vmm_shut(&o->g);
}

START_TEST(gmem_setup)
{
	struct gmem_vmm o;
	struct sweep_flow f = { .name = "gmem-setup", .ctx = &o, .setup = new_vm,
				.run = create_and_bind, .check = check_setup };

	sweep(&f);
}
END_TEST

START_TEST(gmem_send)
{
	struct old_vmm o;
	struct sweep_flow f = { .name = "gmem-send", .ctx = &o, .setup = boot_and_spawn,
				.run = hand_over, .check = check_send };

	sweep(&f);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("fault-gmem");
	TCase *tc = tcase_create("guest_memfd, real KVM");

	tu_require_kvm();
	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-gmem-peer\n", argv[0]);
		return 2;
	}
	peer_path = argv[1];
	gmem_require_shared();
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, gmem_setup);
	tcase_add_test(tc, gmem_send);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
