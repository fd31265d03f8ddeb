/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Both sides of a plain guest's migration on real KVM: tinyvm's heartbeat
 * guest on 2 vCPUs and 64 MiB, pre-copy with the dirty log while it runs,
 * the final pass paused with the last heartbeats as the VMM's state, and
 * the destination continuing from exactly those beats.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "remote-peer.h"
#include "tu-tinyvm.h"

#define MEM	(64ull << 20)
#define NR	2
#define PERIOD	256

static int fail(const char *what, int err)
{
	fprintf(stderr, "remote-peer %d: %s: %d (%s)\n", (int)getpid(), what, err,
		sevm_last_error());
	return 1;
}

static void fds_of(const struct tinyvm *vm, int *fds)
{
	for (unsigned int i = 0; i < NR; i++)
		fds[i] = vm->vcpus[i].fd;
}

/* Slot 0 again with the dirty log on, as a VMM does before pre-copy. */
static int log_dirty(struct tinyvm *vm, struct sevm_region *r)
{
	struct kvm_userspace_memory_region m = {
		.slot = 0, .flags = KVM_MEM_LOG_DIRTY_PAGES, .guest_phys_addr = 0,
		.memory_size = vm->mem_size, .userspace_addr = (uintptr_t)vm->mem,
	};

	*r = (struct sevm_region){ .sz = sizeof(*r), .slot = 0, .flags = SEVM_REGION_LOG_DIRTY,
				   .guest_phys_addr = 0, .size = vm->mem_size, .fd = vm->mem_fd,
				   .host_addr = vm->mem };
	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &m) ? -errno : 0;
}

static int boot(struct tinyvm *vm, struct sevm_region *r)
{
	int err = tinyvm_create(vm, NR, MEM, TINYVM_F_PIT);

	if (!err)
		err = tinyvm_load_guest(vm, PERIOD);
	if (!err)
		err = log_dirty(vm, r);
	if (!err)
		err = tinyvm_start(vm);
	return err ? err : tu_beats_advance(vm, 3) ? 0 : -ETIMEDOUT;
}

static void say_precopy(struct sevm_send *s, int passes)
{
	struct sevm_iteration_stats st = { .sz = sizeof(st) };

	rp_say("precopy_rc=%d", passes < 0 ? passes : 0);
	if (passes >= 0 && sevm_send_stats(s, 0, &st) == 0)
		rp_say("passes=%d pass0_shared=%llu pass0_dirty=%llu", passes,
		       (unsigned long long)st.pages_shared, (unsigned long long)st.dirty_pages);
}

/* Paused: the last beats go as the VMM's state, then the final pass. */
static int finish(struct tinyvm *vm, struct sevm_send *s)
{
	struct sevm_iteration_stats st = { .sz = sizeof(st) };
	uint32_t beats[NR];
	int err = tinyvm_pause(vm);

	if (err)
		return fail("pause", err);
	for (unsigned int i = 0; i < NR; i++)
		beats[i] = vm->vcpus[i].last_beat;
	rp_say("beats=%u,%u sum=%016llx", beats[0], beats[1],
	       (unsigned long long)tinyvm_ram_checksum(vm));
	err = sevm_send_final(s, beats, sizeof(beats), NULL);
	rp_say_rc("", "final", err, 0);
	for (unsigned int i = 0; sevm_send_stats(s, i, &st) == 0; i++)
		if (st.iteration > 0)
			rp_say("pass%u_shared=%llu", st.iteration, (unsigned long long)st.pages_shared);
	if (err) {
		rp_say_rc("", "cancel", sevm_send_cancel(s, NULL), 0);
		tinyvm_resume(vm);
		rp_say("resumed=%d", tu_beats_advance(vm, 3));
	}
	return 0;
}

int rp_kvm_send(const struct rp_args *a)
{
	struct tinyvm vm = { 0 };
	struct sevm_region reg;
	struct sevm_send *s = NULL;
	struct sevm_precopy_opts po = { .sz = sizeof(po), .stop_pages = 16 };
	int fds[NR], sock, passes, err = boot(&vm, &reg);

	if (err)
		return fail("booting the guest", err);
	sock = rp_connect(a->to, a->port, a->small_buffers);
	if (sock < 0)
		return fail("connect", sock);
	fds_of(&vm, fds);
	struct sevm_migrate_opts o = { .sz = sizeof(o), .fd = sock, .vm_fd = vm.vm_fd,
				       .vcpu_fds = fds, .nr_vcpus = NR, .regions = &reg,
				       .nr_regions = 1, .sev_fd = -1 };
	err = sevm_send_new(&o, &s, NULL);
	rp_say_rc("", "new", err, 0);
	if (!err) {
		passes = sevm_send_precopy(s, &po, NULL);
		say_precopy(s, passes);
		err = passes < 0 ? passes : finish(&vm, s);
	}
	rp_say("verdict=%c", rp_verdict_recv(sock));
	sevm_send_free(s);
	close(sock);
	tinyvm_destroy(&vm);
	return err < 0 ? fail("migrating", err) : err;
}

/* The guest arrived: the beats it carried, its RAM, and whether it runs on exactly. */
static void run_arrived(struct tinyvm *vm, struct sevm_recv *r)
{
	const void *state;
	size_t len;
	uint32_t beats[NR];
	int err = sevm_recv_vmm_state(r, &state, &len);

	rp_say("vmm_rc=%d vmm_len=%zu", err, err ? (size_t)0 : len);
	if (err || len != sizeof(beats))
		return;
	memcpy(beats, state, sizeof(beats));
	rp_say("beats=%u,%u sum=%016llx", beats[0], beats[1],
	       (unsigned long long)tinyvm_ram_checksum(vm));
	tinyvm_expect_continuation(vm, beats);
	err = tinyvm_start(vm);
	rp_say("start_rc=%d runs=%d", err, !err && tu_beats_advance(vm, 3));
	rp_say("errors=%llu", (unsigned long long)tinyvm_total_errors(vm));
}

int rp_kvm_recv(const struct rp_args *a)
{
	struct tinyvm vm = { 0 };
	struct sevm_recv *r = NULL;
	int fds[NR], l, sock, err, mem = memfd_create("dest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (mem < 0 || ftruncate(mem, (off_t)MEM))
		return fail("guest RAM", -errno);
	err = tinyvm_create_shell(&vm, NR, mem, MEM, TINYVM_F_PIT);
	if (err)
		return fail("the destination VM", err);
	l = rp_listen(a->small_buffers);
	sock = l < 0 ? l : rp_accept(l, "");
	if (sock < 0)
		return fail("accept", sock);
	fds_of(&vm, fds);
	struct sevm_region reg = { .sz = sizeof(reg), .size = MEM, .fd = mem, .host_addr = vm.mem };
	struct sevm_migrate_opts o = { .sz = sizeof(o), .fd = sock, .vm_fd = vm.vm_fd,
				       .vcpu_fds = fds, .nr_vcpus = NR, .regions = &reg,
				       .nr_regions = 1, .sev_fd = -1 };
	err = sevm_recv_new(&o, &r);
	if (!err)
		err = sevm_recv_run(r, NULL);
	rp_say_rc("", "recv", err, 0);
	if (!err)
		run_arrived(&vm, r);
	rp_verdict_send(sock, !err);
	sevm_recv_free(r);
	close(sock);
	close(l);
	tinyvm_destroy(&vm);
	close(mem);
	return 0;
}
