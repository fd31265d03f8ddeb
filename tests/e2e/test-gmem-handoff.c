/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A guest whose RAM is a guest_memfd, handed between two processes on real
 * KVM.  This process is the old VMM: its guest's slot 0 is a guest_memfd
 * created with SEVM_GMEM_MMAP | SEVM_GMEM_INIT_SHARED and bound with
 * sevm_gmem_bind().  The guest writes a pattern and keeps summing it; the
 * new VMM (tests/e2e/gmem-peer) receives the guest_memfd, maps it as its
 * slot's plain memory (KVM binds a guest_memfd only into the VM that made
 * it, and KVM_LINK_GUEST_MEMFD is not merged), and checks the sums the
 * guest reports after the handoff.  The private-page record travels too.
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
#include "gmem-vmm.h"
#include "testutil.h"

static const char *peer;
static const struct sevm_handoff_opts opts = { .sz = sizeof(opts), .timeout_ms = 5000 };

/* The guest writes its pattern, then reports the right sum a few times. */
static void run_here(struct gmem_vmm *o)
{
	uint32_t v;

	ck_assert_int_eq(gmem_run_to_io(o->vcpu, o->run, &v), GMEM_PORT_WRITTEN);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(gmem_run_to_io(o->vcpu, o->run, &v), GMEM_PORT_SUM);
		ck_assert_uint_eq(v, gmem_pattern_sum());
	}
	/* The pattern is in the guest_memfd itself, seen through this VMM's mapping. */
	ck_assert_uint_eq(((uint16_t *)((uint8_t *)o->mem + GMEM_PATTERN_GPA))[7], 7 ^ 0x5a5a);
	/* Finish the OUT whose exit was just handled before the state is captured. */
	ck_assert_int_eq(sevm_vcpu_quiesce(o->vcpu, o->run), 0);
}

static pid_t spawn(int *sock)
{
	int sv[2];
	pid_t pid;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char fd[16];

		snprintf(fd, sizeof(fd), "%d", dup(sv[1]));
		execl(peer, peer, fd, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	*sock = sv[0];
	return pid;
}

START_TEST(gmem_guest_moves_and_reads_its_pattern)
{
	struct sevm_gfn_range map = { .gfn = 0, .npages = GMEM_RAM_SIZE / 4096 };
	struct sevm_region ram = { .sz = sizeof(ram), .slot = 0, .size = GMEM_RAM_SIZE };
	int before = tu_count_fds(), sock, err, status;
	struct sevm_bitmap *priv = NULL;
	struct sevm_handoff *h;
	struct gmem_vmm o;
	pid_t pid;

	gmem_vmm_boot(&o);
	run_here(&o);
	/* A record to carry: this kernel has no private pages, the record is data. */
	ck_assert_int_eq(sevm_bitmap_new(&map, 1, &priv), 0);
	ck_assert_int_eq(sevm_bitmap_set(priv, 100, 10), 0);
	pid = spawn(&sock);
	err = sevm_handoff_from_fd(sock, true, &opts, &h);
	ck_assert_msg(err == 0, "%s", sevm_last_error());
	ram.fd = o.gmem;
	ram.host_addr = o.mem;
	ck_assert_int_eq(sevm_handoff_set_vm(h, o.vm, &o.vcpu, 1), 0);
	ck_assert_int_eq(sevm_handoff_add_region(h, &ram), 0);
	ck_assert_int_eq(sevm_handoff_set_private(h, priv), 0);
	err = sevm_handoff_prepare(h);
	ck_assert_msg(err == 0, "prepare: %s", sevm_last_error());
	err = sevm_handoff_switch(h, NULL, 0);
	ck_assert_msg(err == 0, "switch: %s", sevm_last_error());
	sevm_handoff_free(h);
	sevm_bitmap_free(priv);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "peer status 0x%x", status);
	gmem_vmm_shut(&o);
	ck_assert_int_eq(tu_count_fds(), before);
}
END_TEST

/* A guest_memfd whose pages start private cannot travel as mapped memory: said before HELLO. */
START_TEST(private_gmem_is_refused_at_prepare)
{
	struct sevm_region ram = { .sz = sizeof(ram), .slot = 0, .size = GMEM_RAM_SIZE };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm, vcpu, sv[2];
	struct sevm_handoff *h;
	struct kvm_run *run;

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	ram.fd = sevm_gmem_create(vm, GMEM_RAM_SIZE, SEVM_GMEM_MMAP);
	ck_assert_int_ge(ram.fd, 0);
	vcpu = gmem_vcpu_create(kvm, vm, &run);
	ck_assert_int_ge(vcpu, 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(sevm_handoff_from_fd(sv[0], true, &opts, &h), 0);
	ck_assert_int_eq(sevm_handoff_set_vm(h, vm, &vcpu, 1), 0);
	ck_assert_int_eq(sevm_handoff_add_region(h, &ram), 0);
	ck_assert_int_eq(sevm_handoff_prepare(h), -EOPNOTSUPP);
	printf("private gmem: %s\n", sevm_last_error());
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "SEVM_GMEM_INIT_SHARED"));
	sevm_handoff_free(h);
	close(sv[1]);
	munmap(run, (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0));
	close(vcpu);
	close(ram.fd);
	close(vm);
	close(kvm);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("gmem-handoff-e2e");
	TCase *tc = tcase_create("two processes");

	tu_require_kvm();
	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-gmem-peer\n", argv[0]);
		return 2;
	}
	peer = argv[1];
	gmem_require_shared();
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, gmem_guest_moves_and_reads_its_pattern);
	tcase_add_test(tc, private_gmem_is_refused_at_prepare);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
