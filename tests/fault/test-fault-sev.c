/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SEV and SEV-ES guests on the SEV model (sim/), every call of one side
 * failing in turn (sweep.h); SEV commands fail with an errno or with a
 * firmware status.  A fresh model host per run; the other side of a handoff
 * is a forked child sharing that host, and runs without faults.
 *
 *   sev-move          sevm_sev_move() of a running guest into an empty VM
 *   sev-mirror        sevm_sev_mirror() of a running guest
 *   sev-handoff-send  the handoff's old VMM (this process) hands the guest over
 *   sev-handoff-recv  the handoff's new VMM (this process) takes it
 *   sev-take-back     the old VMM takes the guest back after the new one died
 *                     past the MOVE (-SEVM_ERR_MOVED)
 *
 * Promised (sevm_sev_move(3), doc/sev.md): until the MOVE the source VM
 * holds the context: GUEST_STATUS says RUNNING and DBG_DECRYPT gives the
 * guest's plaintext there.  After it the destination holds it, and an old
 * VMM whose switch says -SEVM_ERR_MOVED takes it back into a fresh VM.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "abi/compat.h"
#include "handoff/wire.h"
#include "sweep.h"
#include "testutil.h"
#include "tu-sevsim.h"

#define RAM_SIZE	(256u << 10)
#define NR_VCPUS	2
#define TYPE		SEVM_SEV_ES

/* The child's exit status: what became of the guest on its side. */
enum {
	CHILD_MOVED = 0,	/* handed over / taken and checked */
	CHILD_FAILED = 1,	/* its side of the handoff failed */
	CHILD_ROLLED_BACK = 3,	/* old VMM: resumed, RUNNING with its plaintext */
	CHILD_BROKEN = 4,	/* a guest that should run there does not */
	CHILD_INDOUBT = 5,
	CHILD_TAKEN_BACK = 6,	/* old VMM: taken back into a fresh VM, checked */
};

static const struct sevm_handoff_opts opts = { .sz = sizeof(opts), .timeout_ms = 3000 };

struct vmm {
	int sev, vm;
	int vcpu[NR_VCPUS];
	unsigned int nr_vcpus;
	int ram_fd;
	uint8_t *ram;
};

struct rig {
	struct vmm old, new, fresh;
	struct sevm_handoff *h;
	int sock;
	pid_t child;
	void *region;		/* receiver: the guest's RAM, mapped by the library */
	int region_fd;
};

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 7 + (i >> 12));
}

/* ---- Guests (every call here is the VMM's own, before or after the sweep) ---- */

static int new_vcpus(struct vmm *v, unsigned int n)
{
	for (v->nr_vcpus = 0; v->nr_vcpus < n; v->nr_vcpus++) {
		v->vcpu[v->nr_vcpus] = sevm_ioctl(v->vm, KVM_CREATE_VCPU, (void *)(long)v->nr_vcpus);
		if (v->vcpu[v->nr_vcpus] < 0)
			return v->vcpu[v->nr_vcpus];
	}
	return 0;
}

/* A VM of `type` with n vCPUs and no SEV init, as a MOVE's or a mirror's destination. */
static int empty_vm(struct vmm *v, int type, unsigned int n)
{
	int kvm = sevm_open("/dev/kvm", O_RDWR);

	memset(v, 0, sizeof(*v));
	v->sev = v->ram_fd = -1;
	if (kvm < 0)
		return kvm;
	v->vm = sevm_ioctl(kvm, KVM_CREATE_VM, (void *)(long)type);
	sevm_close(kvm);
	return v->vm < 0 ? v->vm : new_vcpus(v, n);
}

/* The old VMM's guest: launched to RUNNING over RAM holding pattern(). */
static int launch(struct vmm *v)
{
	struct sevm_sev_launch l = { .sz = sizeof(l), .policy = TYPE == SEVM_SEV_ES ? 0x4 : 0 };
	uint32_t fw, len = 64;
	uint8_t m[64];
	int err;

	memset(v, 0, sizeof(*v));
	v->sev = sevm_open("/dev/sev", O_RDWR);
	v->vm = sevm_sev_vm_create(TYPE, NULL, &fw);
	if (v->sev < 0 || v->vm < 0 || new_vcpus(v, NR_VCPUS))
		return -EIO;
	v->ram_fd = memfd_create("guest-ram", MFD_CLOEXEC);
	if (v->ram_fd < 0 || ftruncate(v->ram_fd, RAM_SIZE))
		return -errno;
	v->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, v->ram_fd, 0);
	if (v->ram == MAP_FAILED)
		return -errno;
	for (size_t i = 0; i < RAM_SIZE; i++)
		v->ram[i] = pattern(i);
	err = sevm_sev_region_register(v->vm, v->ram, RAM_SIZE);
	if (!err)
		err = sevm_sev_launch_start(v->vm, v->sev, &l, &fw);
	if (!err)
		err = sevm_sev_launch_update_data(v->vm, v->ram, RAM_SIZE, &fw);
	if (!err && TYPE == SEVM_SEV_ES)
		err = sevm_sev_launch_update_vmsa(v->vm, &fw);
	if (!err)
		err = sevm_sev_launch_measure(v->vm, m, &len, &fw);
	return err ? err : sevm_sev_launch_finish(v->vm, &fw);
}

static void vmm_close(struct vmm *v)
{
	for (unsigned int i = 0; i < v->nr_vcpus; i++)
		sevm_close(v->vcpu[i]);
	if (v->vm > 0)
		sevm_close(v->vm);
	if (v->sev > 0)
		sevm_close(v->sev);
	if (v->ram && v->ram != MAP_FAILED)
		munmap(v->ram, RAM_SIZE);
	if (v->ram_fd > 0)
		close(v->ram_fd);
	memset(v, 0, sizeof(*v));
}

/* The guest is RUNNING in vm and its memory at ram decrypts to the pattern. */
static bool holds_guest(int vm, const uint8_t *ram)
{
	struct sevm_sev_status st = { .sz = sizeof(st) };
	static uint8_t page[4096];
	uint32_t fw;

	if (sevm_sev_guest_status(vm, &st, &fw) || st.state != SEVSIM_GSTATE_RUNNING)
		return false;
	for (size_t off = 0; off < RAM_SIZE; off += 16 * 4096) {
		if (sevm_sev_dbg_decrypt(vm, ram + off, page, sizeof(page), &fw))
			return false;
		for (size_t i = 0; i < sizeof(page); i++)
			if (page[i] != pattern(off + i))
				return false;
	}
	return true;
}

/* A moved context resolves the /dev/sev number 0 for the firmware (sev.md): make it so. */
static void sev_at_zero(void)
{
	int fd = sevm_open("/dev/sev", O_RDWR);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(dup2(fd, 0), 0);
	sevm_close(fd);
}

static bool sev_active(int vm)
{
	struct sevsim_vm_info i = { .sz = sizeof(i) };

	return sevsim_vm_info(tu_sim, vm, &i) == 0 && i.sev_active;
}

/* ---- sev-move, sev-mirror --------------------------------------------------- */

static void two_vms(struct rig *g, int dst_type, unsigned int dst_vcpus)
{
	memset(g, 0, sizeof(*g));
	tu_sim_up(NULL);
	ck_assert_msg(launch(&g->old) == 0, "%s", sevm_last_error());
	ck_assert_msg(empty_vm(&g->new, dst_type, dst_vcpus) == 0, "%s", sevm_last_error());
}

static void setup_move(void *ctx)
{
	two_vms(ctx, TYPE, NR_VCPUS);
}

static void setup_mirror(void *ctx)
{
	two_vms(ctx, 0, 0);
}

static int move(void *ctx)
{
	struct rig *g = ctx;

	return sevm_sev_move(g->new.vm, g->old.vm);
}

static int mirror(void *ctx)
{
	struct rig *g = ctx;

	return sevm_sev_mirror(g->new.vm, g->old.vm);
}

static void check_move(void *ctx, int err, const struct tu_call *hit)
{
	struct rig *g = ctx;

	(void)hit;
	if (err == 0) {
		sev_at_zero();
		sweep_expect(holds_guest(g->new.vm, g->old.ram), "moved, but the destination does "
			     "not hold the guest");
		sweep_expect(!sev_active(g->old.vm), "moved, but the source is still SEV");
	} else {
		sweep_expect(holds_guest(g->old.vm, g->old.ram), "the move failed (%d), but the "
			     "source does not hold the guest any more", err);
		sweep_expect(!sev_active(g->new.vm), "the move failed, yet the destination is SEV");
	}
	vmm_close(&g->new);
	vmm_close(&g->old);
	tu_sim_down();
}

static void check_mirror(void *ctx, int err, const struct tu_call *hit)
{
	struct sevm_sev_status st = { .sz = sizeof(st) };
	struct rig *g = ctx;
	uint32_t fw;

	(void)hit;
	sweep_expect(holds_guest(g->old.vm, g->old.ram), "mirror %d: the source does not hold "
		     "the guest any more", err);
	if (err == 0)
		sweep_expect(sevm_sev_guest_status(g->new.vm, &st, &fw) == 0 &&
			     st.state == SEVSIM_GSTATE_RUNNING, "mirrored, but the mirror does not "
			     "share the context: %s", sevm_last_error());
	else
		sweep_expect(!sev_active(g->new.vm), "the mirror failed, yet it shares the context");
	vmm_close(&g->new);
	vmm_close(&g->old);
	tu_sim_down();
}

/* ---- The handoff's two sides ---------------------------------------------------- */

static int old_vmm_send(struct vmm *v, int sock, struct sevm_handoff **out)
{
	struct sevm_region r = { .sz = sizeof(r), .slot = 0, .flags = SEVM_REGION_ENCRYPTED,
				 .guest_phys_addr = 0, .size = RAM_SIZE, .fd = v->ram_fd,
				 .host_addr = v->ram };
	struct sevm_handoff *h;
	int err = sevm_handoff_from_fd(sock, true, &opts, &h);

	*out = NULL;
	if (err)
		return err;
	*out = h;
	err = sevm_handoff_set_sev(h, TYPE);
	if (!err)
		err = sevm_handoff_set_vm(h, v->vm, v->vcpu, v->nr_vcpus);
	if (!err)
		err = sevm_handoff_add_region(h, &r);
	if (!err)
		err = sevm_handoff_prepare(h);
	return err ? err : sevm_handoff_switch(h, NULL, 0);
}

/* The new VMM: VM v already made (the VMM's own calls); the region's mapping and fd out. */
static int new_vmm_take(struct vmm *v, int sock, struct sevm_handoff **out, void **ram, int *fd)
{
	struct sevm_region r = { .sz = sizeof(r) };
	struct sevm_handoff *h;
	int err = sevm_handoff_from_fd(sock, false, &opts, &h);

	*out = NULL;
	if (err)
		return err;
	*out = h;
	err = sevm_handoff_set_vm(h, v->vm, v->vcpu, v->nr_vcpus);
	if (!err)
		err = sevm_handoff_prepare(h);
	if (!err)
		err = sevm_handoff_switch_receive(h, NULL, NULL);
	if (!err)
		err = sevm_handoff_region(h, 0, &r);
	if (!err) {
		*ram = r.host_addr;
		*fd = r.fd;
	}
	return err;
}

/* A forked new VMM that takes the guest and checks it; dies by SIGKILL before RESUMED if asked. */
static bool die_before_resumed;

static int child_new_vmm(int sock)
{
	struct sevm_handoff *h;
	struct vmm v;
	void *ram = NULL;
	int fd = -1, err;

	if (empty_vm(&v, TYPE, NR_VCPUS))
		return CHILD_FAILED;
	if (die_before_resumed)
		tu_die_before_msg(SEVM_MSG_RESUMED);
	err = new_vmm_take(&v, sock, &h, &ram, &fd);
	if (err) {
		fprintf(stderr, "sev new VMM: %s\n", sevm_last_error());
		return CHILD_FAILED;
	}
	sev_at_zero();
	err = holds_guest(v.vm, ram) ? CHILD_MOVED : CHILD_BROKEN;
	sevm_handoff_free(h);
	return err;
}

/* A forked old VMM: launch, hand over, and after a failure do what the docs say. */
static int child_old_vmm(int sock)
{
	struct sevm_handoff *h;
	struct vmm v, fresh;
	int err;

	if (launch(&v))
		return CHILD_FAILED;
	err = old_vmm_send(&v, sock, &h);
	if (!h)
		close(sock);
	if (err == 0)
		return CHILD_MOVED;
	if (err == -SEVM_ERR_INDOUBT)
		return CHILD_INDOUBT;
	if (err != -SEVM_ERR_MOVED)
		return holds_guest(v.vm, v.ram) ? CHILD_ROLLED_BACK : CHILD_BROKEN;
	if (empty_vm(&fresh, TYPE, NR_VCPUS) ||
	    sevm_handoff_take_back(h, fresh.vm, fresh.vcpu, fresh.nr_vcpus)) {
		fprintf(stderr, "sev old VMM: take back: %s\n", sevm_last_error());
		return CHILD_BROKEN;
	}
	sev_at_zero();
	return holds_guest(fresh.vm, v.ram) ? CHILD_TAKEN_BACK : CHILD_BROKEN;
}

static void fork_child(struct rig *g, int (*fn)(int sock))
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	g->child = fork();
	ck_assert_int_ge(g->child, 0);
	if (g->child == 0) {
		close(sv[0]);
		_exit(fn(sv[1]));
	}
	close(sv[1]);
	g->sock = sv[0];
}

static int finish_child(struct rig *g)
{
	if (g->h)
		sevm_handoff_free(g->h);
	else if (g->sock >= 0)
		close(g->sock);
	g->h = NULL;
	g->sock = -1;
	return tu_reap(g->child, 15000);
}

/* ---- sev-handoff-send ---------------------------------------------------------- */

static void setup_send(void *ctx)
{
	struct rig *g = ctx;

	memset(g, 0, sizeof(*g));
	tu_sim_up(NULL);
	ck_assert_msg(launch(&g->old) == 0, "%s", sevm_last_error());
	die_before_resumed = false;
	fork_child(g, child_new_vmm);
}

static int send_sev(void *ctx)
{
	struct rig *g = ctx;

	return old_vmm_send(&g->old, g->sock, &g->h);
}

static void check_send(void *ctx, int err, const struct tu_call *hit)
{
	struct rig *g = ctx;
	int child;

	if (err == -SEVM_ERR_MOVED) {
		ck_assert_int_eq(empty_vm(&g->fresh, TYPE, NR_VCPUS), 0);
		sweep_expect(sevm_handoff_take_back(g->h, g->fresh.vm, g->fresh.vcpu, NR_VCPUS) == 0,
			     "moved: the take back failed: %s", sevm_last_error());
		sev_at_zero();
		sweep_expect(holds_guest(g->fresh.vm, g->old.ram), "taken back, but the fresh VM "
			     "does not hold the guest");
	}
	child = finish_child(g);
	/* Taken back: the new VMM must never have run the guest (a stale copy would run on). */
	if (err == -SEVM_ERR_MOVED)
		sweep_expect(child != CHILD_MOVED, "moved and taken back, yet the new VMM ran the "
			     "guest: the take back resumes a stale copy");
	if (err == 0 || err == -SEVM_ERR_INDOUBT) {
		sweep_expect(err == 0 || (hit && hit->op == TU_OP_RECVMSG),
			     "in doubt, yet no wait for RESUMED failed");
		sweep_expect(child == CHILD_MOVED, "handed over (%d), but the new VMM exited %d",
			     err, child);
		sweep_expect(!sev_active(g->old.vm), "handed over, yet the old VM is SEV");
	} else if (err != -SEVM_ERR_MOVED) {
		sweep_expect(holds_guest(g->old.vm, g->old.ram), "failed with %d before the move, "
			     "but the old VM does not hold the guest", err);
		sweep_expect(child != CHILD_MOVED && child != -1, "failed with %d here; the new "
			     "VMM exited %d", err, child);
	}
	vmm_close(&g->fresh);
	vmm_close(&g->old);
	tu_sim_down();
}

/* ---- sev-handoff-recv ------------------------------------------------------------ */

static void setup_recv(void *ctx)
{
	struct rig *g = ctx;

	memset(g, 0, sizeof(*g));
	g->region_fd = -1;
	tu_sim_up(NULL);
	fork_child(g, child_old_vmm);
	/* The VM a new VMM makes after it read the hello: its own calls, not swept. */
	ck_assert_msg(empty_vm(&g->new, TYPE, NR_VCPUS) == 0, "%s", sevm_last_error());
}

static int recv_sev(void *ctx)
{
	struct rig *g = ctx;

	return new_vmm_take(&g->new, g->sock, &g->h, &g->region, &g->region_fd);
}

static void check_recv(void *ctx, int err, const struct tu_call *hit)
{
	struct rig *g = ctx;
	int child;

	if (err == 0) {
		sev_at_zero();
		sweep_expect(holds_guest(g->new.vm, g->region), "taken, but this VM does not hold "
			     "the guest");
	}
	child = finish_child(g);
	if (err == 0)
		sweep_expect(child == CHILD_MOVED || child == CHILD_INDOUBT, "taken, but the old "
			     "VMM exited %d", child);
	else if (child == CHILD_INDOUBT)
		/*
		 * Our wait for GO failed after GO was sent: our ABORT comes only
		 * after the sender's own wait for RESUMED ran out, so it is in
		 * doubt, as doc/handoff.md says for a silent receiver.
		 */
		sweep_expect(hit && hit->op == TU_OP_RECVMSG, "failed with %d here; the old VMM is "
			     "in doubt, yet no wait of ours failed", err);
	else
		sweep_expect(child == CHILD_ROLLED_BACK || child == CHILD_TAKEN_BACK,
			     "failed with %d here; the old VMM exited %d, not running the guest",
			     err, child);
	if (err < 0 && child == CHILD_INDOUBT)
		sweep_note("receiver failed waiting for GO: the sender is in doubt, the guest "
			   "paused there");
	if (g->region)
		munmap(g->region, RAM_SIZE);
	if (g->region_fd >= 0)
		close(g->region_fd);
	vmm_close(&g->new);
	tu_sim_down();
}

/* ---- sev-take-back --------------------------------------------------------------- */

static void setup_take_back(void *ctx)
{
	struct rig *g = ctx;
	int err;

	memset(g, 0, sizeof(*g));
	tu_sim_up(NULL);
	ck_assert_msg(launch(&g->old) == 0, "%s", sevm_last_error());
	die_before_resumed = true;
	fork_child(g, child_new_vmm);
	err = old_vmm_send(&g->old, g->sock, &g->h);
	ck_assert_msg(err == -SEVM_ERR_MOVED, "switch gave %d: %s", err, sevm_last_error());
	ck_assert_int_eq(tu_reap(g->child, 15000), 128 + SIGKILL);
	g->child = 0;
	ck_assert_int_eq(empty_vm(&g->fresh, TYPE, NR_VCPUS), 0);
}

static int take_back(void *ctx)
{
	struct rig *g = ctx;

	return sevm_handoff_take_back(g->h, g->fresh.vm, g->fresh.vcpu, NR_VCPUS);
}

/*
 * Not documented: what a failed take back leaves.  What a VMM can still do
 * is tried: another take back into another fresh VM.
 */
static void check_take_back(void *ctx, int err, const struct tu_call *hit)
{
	struct rig *g = ctx;
	struct vmm again;
	char buf[64];
	int r;

	sev_at_zero();
	if (err == 0) {
		sweep_expect(holds_guest(g->fresh.vm, g->old.ram), "taken back, but the fresh VM "
			     "does not hold the guest");
	} else {
		ck_assert_int_eq(empty_vm(&again, TYPE, NR_VCPUS), 0);
		r = sevm_handoff_take_back(g->h, again.vm, again.vcpu, NR_VCPUS);
		if (r == 0 && holds_guest(again.vm, g->old.ram))
			sweep_note("take back failed at %s: a second take back recovers the guest",
				   sweep_call_name(hit, buf, sizeof(buf)));
		else
			sweep_expect(false, "after the take back failed with %d, the guest is lost: "
				     "context %s, a second take back gives %d: %s", err,
				     sev_active(g->fresh.vm) ? "in the first fresh VM" :
				     "not in the first fresh VM", r, sevm_last_error());
		vmm_close(&again);
	}
	sevm_handoff_free(g->h);
	g->h = NULL;
	vmm_close(&g->fresh);
	vmm_close(&g->old);
	tu_sim_down();
}

static struct rig rig;

#define FLOW(fn, flow_name, setup_fn, run_fn, check_fn)				\
	START_TEST(fn)								\
	{									\
		struct sweep_flow f = { .name = flow_name, .ctx = &rig,		\
					.setup = setup_fn, .run = run_fn,	\
					.check = check_fn };			\
		sweep(&f);							\
	}									\
	END_TEST

FLOW(sev_move, "sev-move", setup_move, move, check_move)
FLOW(sev_mirror, "sev-mirror", setup_mirror, mirror, check_mirror)
FLOW(sev_handoff_send, "sev-handoff-send", setup_send, send_sev, check_send)
FLOW(sev_handoff_recv, "sev-handoff-recv", setup_recv, recv_sev, check_recv)
FLOW(sev_take_back, "sev-take-back", setup_take_back, take_back, check_take_back)

int main(void)
{
	Suite *s = suite_create("fault-sev");
	TCase *tc = tcase_create("SEV on the model");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, sev_move);
	tcase_add_test(tc, sev_mirror);
	tcase_add_test(tc, sev_handoff_send);
	tcase_add_test(tc, sev_handoff_recv);
	tcase_add_test(tc, sev_take_back);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
