/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The remote migration stream on real KVM with a plain guest, both ends in
 * this process over a socketpair: pre-copy with the dirty log while the
 * guest runs, the final pass paused, and the guest continuing on the
 * destination with exact heartbeats and the same RAM.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "testutil.h"
#include "tu-tinyvm.h"

#define MEM	(64ull << 20)
#define NR	2

static int vcpu_fds(const struct tinyvm *vm, int *fds)
{
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		fds[i] = vm->vcpus[i].fd;
	return (int)vm->nr_vcpus;
}

/* Slot 0 again with the dirty log on, as a VMM does before pre-copy. */
static void log_dirty(struct tinyvm *vm, struct sevm_region *r)
{
	struct kvm_userspace_memory_region m = {
		.slot = 0, .flags = KVM_MEM_LOG_DIRTY_PAGES, .guest_phys_addr = 0,
		.memory_size = vm->mem_size, .userspace_addr = (uintptr_t)vm->mem,
	};

	ck_assert_int_eq(ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &m), 0);
	*r = (struct sevm_region){ .sz = sizeof(*r), .slot = 0, .flags = SEVM_REGION_LOG_DIRTY,
				   .guest_phys_addr = 0, .size = vm->mem_size, .fd = vm->mem_fd,
				   .host_addr = vm->mem };
}

struct receiver {
	struct tinyvm vm;
	int sock;
	int err;
	char msg[512];
	struct sevm_recv *r;
};

static void *receive(void *arg)
{
	struct receiver *rx = arg;
	struct sevm_region reg = { .sz = sizeof(reg), .size = rx->vm.mem_size, .fd = rx->vm.mem_fd,
				   .host_addr = rx->vm.mem };
	int fds[NR];
	struct sevm_migrate_opts o = { .sz = sizeof(o), .fd = rx->sock, .vm_fd = rx->vm.vm_fd,
				       .vcpu_fds = fds, .nr_vcpus = (unsigned int)vcpu_fds(&rx->vm, fds),
				       .regions = &reg, .nr_regions = 1, .sev_fd = -1 };

	rx->err = sevm_recv_new(&o, &rx->r);
	if (!rx->err)
		rx->err = sevm_recv_run(rx->r, NULL);
	snprintf(rx->msg, sizeof(rx->msg), "%s", sevm_last_error());
	return NULL;
}

static int fresh_memfd(void)
{
	int fd = memfd_create("dest", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, MEM), 0);
	return fd;
}

/* The source running with the dirty log on, the destination's receiver on its thread. */
struct rig {
	struct tinyvm src;
	struct receiver rx;
	struct sevm_region reg;
	struct sevm_send *s;
	int sv[2], fds[NR], dest_mem;
	pthread_t t;
};

static void rig_up(struct rig *g)
{
	ck_assert_int_eq(tinyvm_create(&g->src, NR, MEM, TINYVM_F_PIT), 0);
	ck_assert_int_eq(tinyvm_load_guest(&g->src, 256), 0);
	log_dirty(&g->src, &g->reg);
	ck_assert_int_eq(tinyvm_start(&g->src), 0);
	g->dest_mem = fresh_memfd();
	ck_assert_int_eq(tinyvm_create_shell(&g->rx.vm, NR, g->dest_mem, MEM, TINYVM_F_PIT), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g->sv), 0);
	g->rx.sock = g->sv[1];
	ck_assert_int_eq(pthread_create(&g->t, NULL, receive, &g->rx), 0);

	struct sevm_migrate_opts o = { .sz = sizeof(o), .fd = g->sv[0], .vm_fd = g->src.vm_fd,
				       .vcpu_fds = g->fds,
				       .nr_vcpus = (unsigned int)vcpu_fds(&g->src, g->fds),
				       .regions = &g->reg, .nr_regions = 1, .sev_fd = -1 };
	ck_assert_msg(sevm_send_new(&o, &g->s, NULL) == 0, "%s", sevm_last_error());
}

static void rig_down(struct rig *g)
{
	sevm_send_free(g->s);
	sevm_recv_free(g->rx.r);
	tinyvm_destroy(&g->rx.vm);
	tinyvm_destroy(&g->src);
	close(g->dest_mem);
	close(g->sv[0]);
	close(g->sv[1]);
}

START_TEST(test_precopy_plain_guest)
{
	struct sevm_iteration_stats st = { .sz = sizeof(st) };
	struct sevm_precopy_opts po = { .sz = sizeof(po), .stop_pages = 16 };
	int fd_before = tu_count_fds();
	struct rig g = { 0 };
	uint32_t beats[NR];
	const void *vmm;
	size_t vmm_len;
	uint64_t sum;

	rig_up(&g);
	ck_assert(tu_beats_advance(&g.src, 3));
	int passes = sevm_send_precopy(g.s, &po, NULL);
	ck_assert_msg(passes >= 1, "%s", sevm_last_error());
	/* Pass 0 sends every page of 64 MiB; the guest dirties a page or two. */
	ck_assert_int_eq(sevm_send_stats(g.s, 0, &st), 0);
	ck_assert_uint_eq(st.pages_shared, MEM / 4096);
	ck_assert_uint_ge(st.bytes, MEM);
	ck_assert_uint_ge(st.dirty_pages, 1);

	ck_assert_int_eq(tinyvm_pause(&g.src), 0);
	for (unsigned int i = 0; i < NR; i++)
		beats[i] = g.src.vcpus[i].last_beat;
	sum = tinyvm_ram_checksum(&g.src);
	ck_assert_msg(sevm_send_final(g.s, beats, sizeof(beats), NULL) == 0, "%s",
		      sevm_last_error());
	ck_assert_int_eq(sevm_send_stats(g.s, (unsigned int)passes, &st), 0);
	ck_assert_uint_le(st.pages_shared, 64);
	ck_assert_int_eq(sevm_send_stats(g.s, (unsigned int)passes + 1, &st), -ENOENT);
	ck_assert_int_eq(pthread_join(g.t, NULL), 0);
	ck_assert_msg(g.rx.err == 0, "receiver: %d %s", g.rx.err, g.rx.msg);

	ck_assert_int_eq(sevm_recv_vmm_state(g.rx.r, &vmm, &vmm_len), 0);
	ck_assert_uint_eq(vmm_len, sizeof(beats));
	ck_assert_int_eq(memcmp(vmm, beats, sizeof(beats)), 0);
	ck_assert_uint_eq(tinyvm_ram_checksum(&g.rx.vm), sum);
	tinyvm_expect_continuation(&g.rx.vm, beats);
	ck_assert_int_eq(tinyvm_start(&g.rx.vm), 0);
	ck_assert(tu_beats_advance(&g.rx.vm, 3));
	ck_assert_uint_eq(tinyvm_total_errors(&g.rx.vm), 0);

	rig_down(&g);
	ck_assert_int_eq(tu_count_fds(), fd_before);
}
END_TEST

/* The source gives up halfway: the receiver names the cancel, the source resumes. */
START_TEST(test_cancel_and_resume)
{
	struct rig g = { 0 };

	rig_up(&g);
	ck_assert_int_eq(sevm_send_pages(g.s, NULL, NULL), 0);
	ck_assert_int_eq(sevm_send_cancel(g.s, NULL), 0);
	ck_assert_int_eq(sevm_send_final(g.s, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(pthread_join(g.t, NULL), 0);
	ck_assert_int_eq(g.rx.err, -SEVM_ERR_PEER);
	ck_assert_msg(strstr(g.rx.msg, "cancelled"), "%s", g.rx.msg);
	ck_assert(tu_beats_advance(&g.src, 3));
	ck_assert_uint_eq(tinyvm_total_errors(&g.src), 0);
	rig_down(&g);
}
END_TEST

/* A receiver facing a silent, a closing and a garbage-talking peer: each named, nothing leaked. */
START_TEST(test_receiver_refuses_bad_peers)
{
	static const char junk[64] = "SEVMSTRM but not really a stream header....";
	struct tinyvm vm = { 0 };
	int fds[NR], sv[2], mem = fresh_memfd(), fd_before;

	ck_assert_int_eq(tinyvm_create_shell(&vm, NR, mem, MEM, TINYVM_F_PIT), 0);
	fd_before = tu_count_fds();
	for (int k = 0; k < 3; k++) {
		struct sevm_region reg = { .sz = sizeof(reg), .size = MEM, .fd = mem,
					   .host_addr = vm.mem };
		struct sevm_migrate_opts o = { .sz = sizeof(o), .vm_fd = vm.vm_fd, .vcpu_fds = fds,
					       .nr_vcpus = (unsigned int)vcpu_fds(&vm, fds),
					       .regions = &reg, .nr_regions = 1, .sev_fd = -1,
					       .timeout_ms = 200 };
		struct sevm_recv *r;
		int err;

		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		o.fd = sv[1];
		if (k == 1)
			close(sv[0]);
		if (k == 2)
			ck_assert_int_eq(write(sv[0], junk, sizeof(junk)), (ssize_t)sizeof(junk));
		ck_assert_int_eq(sevm_recv_new(&o, &r), 0);
		err = sevm_recv_run(r, NULL);
		if (k == 0) {
			ck_assert_int_eq(err, -ETIMEDOUT);
			ck_assert_msg(strstr(sevm_last_error(), "200 ms"), "%s", sevm_last_error());
		} else {
			ck_assert_int_eq(err, k == 1 ? -SEVM_ERR_FORMAT : -SEVM_ERR_VERSION);
		}
		/* A failed receiver stays failed. */
		ck_assert_int_eq(sevm_recv_run(r, NULL), -EINVAL);
		sevm_recv_free(r);
		if (k != 1)
			close(sv[0]);
		close(sv[1]);
	}
	ck_assert_int_eq(tu_count_fds(), fd_before);
	tinyvm_destroy(&vm);
	close(mem);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("remote");
	TCase *tc = tcase_create("plain");

	tu_require_kvm();
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_precopy_plain_guest);
	tcase_add_test(tc, test_cancel_and_resume);
	tcase_add_test(tc, test_receiver_refuses_bad_peers);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
