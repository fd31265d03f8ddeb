/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The intra-host handoff of SEV and SEV-ES guests, on the SEV model, between
 * two processes: the old VMM (this process) launches an encrypted guest and
 * hands it over; the new VMM (a forked child) creates a VM of the same type,
 * receives the encryption context by MOVE and must read the guest's memory
 * back through the firmware.  Rollback: when the new VMM dies before the
 * move the old VM just resumes; after it, the old VMM takes the guest back
 * into a fresh VM.
 *
 * Only the library's public API is used, as a VMM would: its own KVM calls
 * go through sevm_open/sevm_ioctl so the model serves them.
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
#include "testutil.h"
#include "tu-sevsim.h"

#define RAM_SIZE	(1u << 20)
#define NR_VCPUS	2

struct vmm {
	int kvm, sev, vm;
	int vcpu[NR_VCPUS];
	int ram_fd;
	uint8_t *ram;
};

static const struct sevm_handoff_opts opts = { .sz = sizeof(opts), .timeout_ms = 5000 };

/* The guest's secret: what DBG_DECRYPT must give back wherever the context goes. */
static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 7 + (i >> 12));
}

static void new_vcpus(struct vmm *v)
{
	for (int i = 0; i < NR_VCPUS; i++) {
		v->vcpu[i] = sevm_ioctl(v->vm, KVM_CREATE_VCPU, (void *)(long)i);
		ck_assert_msg(v->vcpu[i] >= 0, "%s", sevm_last_error());
	}
}

/* A plain VM of the SEV type, as a new VMM makes it for a MOVE: no SEV init. */
static void empty_vm(struct vmm *v, enum sevm_sev_type type)
{
	v->kvm = sevm_open("/dev/kvm", O_RDWR);
	ck_assert_int_ge(v->kvm, 0);
	v->vm = sevm_ioctl(v->kvm, KVM_CREATE_VM, (void *)(long)type);
	ck_assert_msg(v->vm >= 0, "%s", sevm_last_error());
	new_vcpus(v);
}

/* The old VMM: an SEV guest launched to RUNNING over encrypted RAM. */
static void launch(struct vmm *v, enum sevm_sev_type type)
{
	struct sevm_sev_launch l = { .sz = sizeof(l), .policy = type == SEVM_SEV_ES ? 0x4 : 0 };
	uint32_t fw, len = 0;
	uint8_t m[64];

	v->sev = sevm_open("/dev/sev", O_RDWR);
	ck_assert_int_ge(v->sev, 0);
	v->vm = sevm_sev_vm_create(type, NULL, &fw);
	ck_assert_msg(v->vm >= 0, "%s", sevm_last_error());
	new_vcpus(v);
	v->ram_fd = memfd_create("guest-ram", MFD_CLOEXEC);
	ck_assert_int_eq(ftruncate(v->ram_fd, RAM_SIZE), 0);
	v->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, v->ram_fd, 0);
	ck_assert_ptr_ne(v->ram, MAP_FAILED);
	for (size_t i = 0; i < RAM_SIZE; i++)
		v->ram[i] = pattern(i);
	ck_assert_int_eq(sevm_sev_region_register(v->vm, v->ram, RAM_SIZE), 0);
	ck_assert_msg(sevm_sev_launch_start(v->vm, v->sev, &l, &fw) == 0, "%s", sevm_last_error());
	ck_assert_int_eq(sevm_sev_launch_update_data(v->vm, v->ram, RAM_SIZE, &fw), 0);
	if (type == SEVM_SEV_ES)
		ck_assert_msg(sevm_sev_launch_update_vmsa(v->vm, &fw) == 0, "%s", sevm_last_error());
	ck_assert_int_eq(sevm_sev_launch_measure(v->vm, NULL, &len, &fw), 0);
	ck_assert_uint_le(len, sizeof(m));
	ck_assert_int_eq(sevm_sev_launch_measure(v->vm, m, &len, &fw), 0);
	ck_assert_int_eq(sevm_sev_launch_finish(v->vm, &fw), 0);
	/* The VMM sees ciphertext, as on hardware. */
	ck_assert(v->ram[100] != pattern(100) || v->ram[101] != pattern(101));
}

/* DBG_DECRYPT of a few pages through vm must give the pattern back. */
static void assert_plaintext(int vm, const uint8_t *ram)
{
	static uint8_t page[4096];
	uint32_t fw = 0;

	for (size_t off = 0; off < RAM_SIZE; off += 64 * 4096) {
		int r = sevm_sev_dbg_decrypt(vm, ram + off, page, sizeof(page), &fw);

		ck_assert_msg(r == 0, "DBG_DECRYPT at %zu: %s", off, sevm_last_error());
		for (size_t i = 0; i < sizeof(page); i++)
			ck_assert_uint_eq(page[i], pattern(off + i));
	}
}

static void assert_running(int vm)
{
	struct sevm_sev_status st = { .sz = sizeof(st) };
	uint32_t fw;

	ck_assert_msg(sevm_sev_guest_status(vm, &st, &fw) == 0, "%s", sevm_last_error());
	ck_assert_uint_eq(st.state, SEVSIM_GSTATE_RUNNING);
}

/*
 * The new VMM, in the child; it dies when it is about to send `die_at` (0:
 * never): RESTORED comes before the MOVE (which waits for GO), RESUMED after it.
 */
static int new_vmm(int sock, uint16_t die_at)
{
	struct sevm_guest_info gi = { .sz = sizeof(gi) };
	struct sevm_region r = { .sz = sizeof(r) };
	struct sevm_handoff *h;
	struct vmm v = { 0 };
	int err;

	err = sevm_handoff_from_fd(sock, false, &opts, &h);
	if (!err)
		err = sevm_handoff_info(h, &gi);
	if (err)
		return 10;
	empty_vm(&v, (enum sevm_sev_type)gi.vm_type);
	err = sevm_handoff_set_vm(h, v.vm, v.vcpu, gi.nr_vcpus);
	if (!err)
		err = sevm_handoff_prepare(h);
	if (err)
		return 11;
	if (die_at)
		tu_die_before_msg(die_at);
	err = sevm_handoff_switch_receive(h, NULL, NULL);
	if (err) {
		fprintf(stderr, "new VMM: %s\n", sevm_last_error());
		return 12;
	}
	/* After a MOVE the firmware commands resolve fd 0 here: make it /dev/sev. */
	v.sev = sevm_open("/dev/sev", O_RDWR);
	dup2(v.sev, 0);
	sevm_handoff_region(h, 0, &r);
	assert_running(v.vm);
	assert_plaintext(v.vm, r.host_addr);
	sevm_handoff_free(h);
	return 0;
}

static pid_t spawn_new_vmm(int *sock, uint16_t die_at_msg)
{
	int sv[2];
	pid_t pid;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(sv[0]);
		_exit(new_vmm(sv[1], die_at_msg));
	}
	close(sv[1]);
	*sock = sv[0];
	return pid;
}

static int exit_status(pid_t pid)
{
	int st;

	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static struct sevm_handoff *old_vmm(struct vmm *v, int sock, enum sevm_sev_type type)
{
	struct sevm_region r = { .sz = sizeof(r), .slot = 0, .flags = SEVM_REGION_ENCRYPTED,
				 .guest_phys_addr = 0, .size = RAM_SIZE, .fd = v->ram_fd,
				 .host_addr = v->ram };
	struct sevm_handoff *h;

	ck_assert_int_eq(sevm_handoff_from_fd(sock, true, &opts, &h), 0);
	ck_assert_int_eq(sevm_handoff_set_sev(h, type), 0);
	ck_assert_int_eq(sevm_handoff_set_vm(h, v->vm, v->vcpu, NR_VCPUS), 0);
	ck_assert_int_eq(sevm_handoff_add_region(h, &r), 0);
	ck_assert_msg(sevm_handoff_prepare(h) == 0, "%s", sevm_last_error());
	return h;
}

/* As a VMM's vCPU threads would as they pause; here from this thread (the model's vCPUs do not run). */
static void capture_each(struct sevm_handoff *h)
{
	for (unsigned int i = 0; i < NR_VCPUS; i++)
		ck_assert_msg(sevm_handoff_capture_vcpu(h, i, NULL) == 0, "vCPU %u: %s", i,
			      sevm_last_error());
}

static void hand_over(enum sevm_sev_type type, bool each)
{
	struct vmm v = { 0 };
	struct sevm_handoff *h;
	struct sevm_sev_status st = { .sz = sizeof(st) };
	uint32_t fw;
	int sock;
	pid_t pid;

	tu_sim_up(NULL);
	launch(&v, type);
	assert_plaintext(v.vm, v.ram);
	pid = spawn_new_vmm(&sock, 0);
	h = old_vmm(&v, sock, type);
	if (each)
		capture_each(h);
	ck_assert_msg(sevm_handoff_switch(h, NULL, 0) == 0, "%s", sevm_last_error());
	/* The handle of a source whose context moved says it is dead. */
	ck_assert_int_eq(sevm_handoff_switch(h, NULL, 0), -EIO);
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "source VM is dead"));
	ck_assert_int_eq(sevm_handoff_take_back(h, v.vm, v.vcpu, NR_VCPUS), -EIO);
	sevm_handoff_free(h);
	ck_assert_int_eq(exit_status(pid), 0);
	/* The old VM is dead to SEV: its context lives in the new VMM's VM. */
	ck_assert_int_eq(sevm_sev_guest_status(v.vm, &st, &fw), -ENOTTY);
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "moved away"));
	tu_sim_down();
}

START_TEST(sev_guest_moves_to_a_new_process)
{
	hand_over(SEVM_SEV, false);
}
END_TEST

START_TEST(sev_es_guest_moves_to_a_new_process)
{
	hand_over(SEVM_SEV_ES, false);
}
END_TEST

START_TEST(sev_es_vcpus_sent_ahead_of_the_switch)
{
	hand_over(SEVM_SEV_ES, true);
}
END_TEST

/* The new VMM dies after the MOVE: the old one takes the guest back. */
static void take_back(enum sevm_sev_type type, bool each)
{
	struct vmm v = { 0 }, fresh = { 0 };
	struct sevm_handoff *h;
	int sock, err;
	pid_t pid;

	tu_sim_up(NULL);
	launch(&v, type);
	pid = spawn_new_vmm(&sock, SEVM_MSG_RESUMED);
	h = old_vmm(&v, sock, type);
	if (each)
		capture_each(h);
	err = sevm_handoff_switch(h, NULL, 0);
	ck_assert_msg(err == -SEVM_ERR_MOVED, "switch gave %d: %s", err, sevm_last_error());
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "take the guest back"));
	ck_assert_int_eq(exit_status(pid), 128 + SIGKILL);
	empty_vm(&fresh, type);
	err = sevm_handoff_take_back(h, fresh.vm, fresh.vcpu, NR_VCPUS);
	ck_assert_msg(err == 0, "%s", sevm_last_error());
	sevm_handoff_free(h);
	/* The moved VM resolves fd 0 for the firmware, here too. */
	dup2(v.sev, 0);
	assert_running(fresh.vm);
	assert_plaintext(fresh.vm, v.ram);
	tu_sim_down();
}

/* The new VMM dies before GO: the context never left, the old VMM just resumes. */
START_TEST(sev_guest_stays_when_receiver_dies_before_the_move)
{
	struct vmm v = { 0 };
	struct sevm_handoff *h;
	int sock, err;
	pid_t pid;

	tu_sim_up(NULL);
	launch(&v, SEVM_SEV_ES);
	pid = spawn_new_vmm(&sock, SEVM_MSG_RESTORED);
	h = old_vmm(&v, sock, SEVM_SEV_ES);
	err = sevm_handoff_switch(h, NULL, 0);
	ck_assert_msg(err < 0 && err != -SEVM_ERR_MOVED && err != -SEVM_ERR_INDOUBT,
		      "switch gave %d: %s", err, sevm_last_error());
	ck_assert_int_eq(sevm_handoff_take_back(h, v.vm, v.vcpu, NR_VCPUS), -EINVAL);
	sevm_handoff_free(h);
	ck_assert_int_eq(exit_status(pid), 128 + SIGKILL);
	assert_running(v.vm);
	assert_plaintext(v.vm, v.ram);
	tu_sim_down();
}
END_TEST

START_TEST(sev_guest_taken_back_when_receiver_dies)
{
	take_back(SEVM_SEV, false);
}
END_TEST

START_TEST(sev_es_guest_taken_back_when_receiver_dies)
{
	take_back(SEVM_SEV_ES, false);
}
END_TEST

/* The kept state is then what the vCPUs' own messages and the switch's sent. */
START_TEST(sev_es_guest_sent_ahead_taken_back)
{
	take_back(SEVM_SEV_ES, true);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sev-handoff");
	TCase *tc = tcase_create("model, two processes");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, sev_guest_moves_to_a_new_process);
	tcase_add_test(tc, sev_es_guest_moves_to_a_new_process);
	tcase_add_test(tc, sev_es_vcpus_sent_ahead_of_the_switch);
	tcase_add_test(tc, sev_es_guest_sent_ahead_taken_back);
	tcase_add_test(tc, sev_guest_stays_when_receiver_dies_before_the_move);
	tcase_add_test(tc, sev_guest_taken_back_when_receiver_dies);
	tcase_add_test(tc, sev_es_guest_taken_back_when_receiver_dies);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
