/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The probe on this host's real /dev/kvm, and faults injected at the seam. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "abi/compat.h"
#include "testutil.h"

static struct sevm_probe_report probe(void)
{
	struct sevm_probe_report r = { .sz = sizeof(r) };

	ck_assert_int_eq(sevm_probe(&r), 0);
	return r;
}

START_TEST(real_kvm_facts)
{
	struct sevm_probe_report r = probe();
	char why[256];

	ck_assert_int_eq(r.kvm_open_err, 0);
	ck_assert_int_eq(r.kvm_api_version, 12);
	ck_assert(r.vm_types & 1);
	ck_assert_int_ge(r.cap_max_vcpus, 1);
	ck_assert_int_ge(r.cap_move_enc_context, 0);
	ck_assert_int_ge(r.cap_user_memory2, 0);
	ck_assert_int_eq(sevm_flavour_check(&r, SEVM_FLAVOUR_INTRAHOST, why, sizeof(why)), 1);
}
END_TEST

/*
 * Without SEV, every SEV flavour must be refused with the true reason: no
 * SEV VM type, or no /dev/sev.  On an SEV host this case has nothing to say.
 */
START_TEST(sev_flavours_refused_with_reason)
{
	struct sevm_probe_report r = probe();
	char why[256];

	for (int f = SEVM_FLAVOUR_SEV_INTRAHOST; f <= SEVM_FLAVOUR_SEV_RECEIVE; f++) {
		ck_assert_int_eq(sevm_flavour_check(&r, f, why, sizeof(why)), 0);
		ck_assert_msg(strstr(why, "VM type") || strstr(why, "/dev/sev"),
			      "%s: %s", sevm_flavour_name(f), why);
	}
	ck_assert_int_eq(r.sev_open_err, -ENOENT);
	ck_assert_int_eq(sevm_flavour_check(&r, SEVM_FLAVOUR_GMEM_LINK, why, sizeof(why)), 0);
	ck_assert_ptr_nonnull(strstr(why, "KVM_LINK_GUEST_MEMFD"));
}
END_TEST

START_TEST(injected_api_version_failure_is_reported)
{
	struct tu_fault f = { .ops = TU_OP_IOCTL, .request = KVM_GET_API_VERSION,
			      .fail_at = 1, .err = -EIO };
	struct sevm_probe_report r;
	char why[256];

	tu_fault_install(&f);
	r = probe();
	tu_fault_remove();
	ck_assert_uint_eq(f.injected, 1);
	ck_assert_int_eq(r.kvm_api_version, -EIO);
	ck_assert_int_eq(sevm_flavour_check(&r, SEVM_FLAVOUR_INTRAHOST, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "KVM_GET_API_VERSION failed: Input/output error");
}
END_TEST

START_TEST(injected_open_failure_is_reported)
{
	struct tu_fault f = { .ops = TU_OP_OPEN, .fail_at = 1, .err = -EACCES };
	struct sevm_probe_report r;
	char why[256];

	tu_fault_install(&f);
	r = probe();
	tu_fault_remove();
	ck_assert_int_eq(r.kvm_open_err, -EACCES);
	ck_assert_int_eq(sevm_flavour_check(&r, SEVM_FLAVOUR_INTRAHOST, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "cannot open /dev/kvm read-write: Permission denied");
}
END_TEST

/* EINTR is an interruption, not an answer: the seam retries it. */
START_TEST(injected_eintr_is_retried)
{
	struct tu_fault f = { .ops = TU_OP_IOCTL, .request = KVM_GET_API_VERSION,
			      .fail_at = 1, .err = -EINTR };
	struct sevm_probe_report r;

	tu_fault_install(&f);
	r = probe();
	tu_fault_remove();
	ck_assert_uint_eq(f.injected, 1);
	ck_assert_uint_eq(f.calls, 2);
	ck_assert_int_eq(r.kvm_api_version, 12);
}
END_TEST

/* Each single failed call during the probe leaves no fd behind. */
START_TEST(every_probe_call_failing_leaks_nothing)
{
	struct tu_fault count = { .ops = TU_OP_ALL };
	int before = tu_count_fds();

	tu_fault_install(&count);
	probe();
	tu_fault_remove();
	ck_assert_uint_gt(count.calls, 10);
	for (unsigned int k = 1; k <= count.calls; k++) {
		struct tu_fault f = { .ops = TU_OP_ALL, .fail_at = k, .err = -ENOMEM };

		tu_fault_install(&f);
		probe();
		tu_fault_remove();
		ck_assert_uint_eq(f.injected, 1);
		ck_assert_int_eq(tu_count_fds(), before);
	}
}
END_TEST

static bool host_has_sev(void)
{
	struct sevm_probe_report r = { .sz = sizeof(r) };

	return sevm_probe(&r) == 0 &&
	       ((r.vm_types & (1u << KVM_X86_SEV_VM)) || r.sev_open_err != -ENOENT);
}

int main(void)
{
	Suite *s = suite_create("probe-kvm");
	TCase *tc = tcase_create("real kvm");

	tu_require_kvm();
	tcase_add_test(tc, real_kvm_facts);
	if (host_has_sev())
		printf("SKIP sev_flavours_refused_with_reason: this host has SEV\n");
	else
		tcase_add_test(tc, sev_flavours_refused_with_reason);
	tcase_add_test(tc, injected_api_version_failure_is_reported);
	tcase_add_test(tc, injected_open_failure_is_reported);
	tcase_add_test(tc, injected_eintr_is_retried);
	tcase_add_test(tc, every_probe_call_failing_leaks_nothing);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
