/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SEV calls on this host's real KVM.  Without SEV the kernel still
 * answers — MOVE/COPY between plain VMs EINVAL, KVM_MEMORY_ENCRYPT_OP
 * ENOTTY — and the library must say what those answers mean.  On an SEV
 * host these cases do not apply (the conformance suite covers it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "abi/compat.h"
#include "testutil.h"

static int kvm = -1;

static int plain_vm(void)
{
	int vm = ioctl(kvm, KVM_CREATE_VM, KVM_X86_DEFAULT_VM);

	ck_assert_int_ge(vm, 0);
	return vm;
}

static void assert_msg(const char *part)
{
	ck_assert_msg(strstr(sevm_last_error(), part), "message \"%s\" lacks \"%s\"",
		      sevm_last_error(), part);
}

START_TEST(move_and_mirror_between_plain_vms_are_refused)
{
	int a = plain_vm(), b = plain_vm();
	int before;

	before = tu_count_fds();
	ck_assert_int_eq(sevm_sev_move(a, b), -EINVAL);
	assert_msg("SEV is not enabled in this KVM");
	ck_assert_int_eq(sevm_sev_mirror(a, b), -EINVAL);
	assert_msg("SEV mirror");
	assert_msg("SEV is not enabled in this KVM");
	ck_assert_int_eq(sevm_sev_move(a, a), -EINVAL);
	assert_msg("the same VM");
	ck_assert_int_eq(tu_count_fds(), before);
	close(a);
	close(b);
}
END_TEST

START_TEST(non_vm_source_is_named)
{
	int a = plain_vm(), f = memfd_create("not-a-vm", MFD_CLOEXEC);

	/*
	 * Without SEV, x86 KVM has no move hook and refuses with EINVAL before it
	 * looks at the source fd (kvm_vm_ioctl_enable_cap); with SEV it is EBADF.
	 */
	ck_assert_int_eq(sevm_sev_move(a, f), -EINVAL);
	assert_msg("SEV is not enabled in this KVM");
	ck_assert_int_eq(sevm_sev_move(a, -1), -EBADF);
	close(f);
	close(a);
}
END_TEST

START_TEST(sev_commands_on_a_plain_vm_say_not_sev)
{
	struct sevm_sev_status st = { .sz = sizeof(st) };
	uint32_t fw = 0xdead;
	int vm = plain_vm();
	char buf[64] = "";

	ck_assert_int_eq(sevm_sev_guest_status(vm, &st, &fw), -ENOTTY);
	ck_assert_uint_eq(fw, 0);
	assert_msg("SEV GUEST_STATUS: the VM is not an SEV guest");
	ck_assert_int_eq(sevm_sev_dbg_decrypt(vm, buf, buf, sizeof(buf), &fw), -ENOTTY);
	ck_assert_int_eq(sevm_sev_launch_finish(vm, &fw), -ENOTTY);
	ck_assert_int_eq(sevm_sev_region_register(vm, buf, sizeof(buf)), -ENOTTY);
	assert_msg("KVM_MEMORY_ENCRYPT_REG_REGION: the VM is not an SEV guest");
	/* The legacy init is refused the same way: SEV is off in this KVM. */
	ck_assert_int_eq(sevm_sev_init(vm, SEVM_SEV, &(struct sevm_sev_init_opts){
		.sz = sizeof(struct sevm_sev_init_opts), .legacy = true }, &fw), -ENOTTY);
	close(vm);
}
END_TEST

START_TEST(no_sev_vm_type_is_explained)
{
	uint32_t fw;
	int before = tu_count_fds();

	ck_assert_int_eq(sevm_sev_vm_create(SEVM_SEV_ES, NULL, &fw), -EINVAL);
	assert_msg("no SEV-ES VM type");
	ck_assert_int_eq(sevm_sev_vm_create((enum sevm_sev_type)7, NULL, &fw), -EINVAL);
	assert_msg("neither SEVM_SEV nor SEVM_SEV_ES");
	ck_assert_int_eq(tu_count_fds(), before);
}
END_TEST

int main(void)
{
	struct sevm_probe_report r = { .sz = sizeof(r) };
	Suite *s = suite_create("sev-on-kvm");
	TCase *tc = tcase_create("plain kvm");

	tu_require_kvm();
	if (sevm_probe(&r) == 0 && (r.vm_types & (1u << KVM_X86_SEV_VM))) {
		printf("SKIP: this host has SEV VM types; the model conformance suite runs "
		       "these cases against it instead\n");
		return TU_SKIP;
	}
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	tcase_add_test(tc, move_and_mirror_between_plain_vms_are_refused);
	tcase_add_test(tc, non_vm_source_is_named);
	tcase_add_test(tc, sev_commands_on_a_plain_vm_say_not_sev);
	tcase_add_test(tc, no_sev_vm_type_is_explained);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
