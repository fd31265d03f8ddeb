/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The name tables are what an operator reads when a migration fails, so a
 * wrong or missing name is a wrong diagnosis.  No kernel needed: this never
 * skips.
 */
#include <check.h>
#include <stdlib.h>

#include "../../lib/core/names.h"
#include "../../lib/abi/compat.h"

START_TEST(test_ioctl_numbers)
{
	/* The names are only as good as the numbers behind them. */
	ck_assert_uint_eq(KVM_ENABLE_CAP, 0x4068AEA3u);
	ck_assert_uint_eq(KVM_MEMORY_ENCRYPT_OP, 0xC008AEBAu);
	ck_assert_uint_eq(KVM_MEMORY_ENCRYPT_REG_REGION, 0x8010AEBBu);
	ck_assert_uint_eq(SEVM_ABI_KVM_CREATE_GUEST_MEMFD, 0xC040AED4u);
	ck_assert_uint_eq(SEV_ISSUE_CMD, 0xC0105300u);
}
END_TEST

START_TEST(test_ioctl_names)
{
	ck_assert_str_eq(sevm__ioctl_name(KVM_ENABLE_CAP), "KVM_ENABLE_CAP");
	ck_assert_str_eq(sevm__ioctl_name(0xC008AEBAul),
			 "KVM_MEMORY_ENCRYPT_OP");
	ck_assert_str_eq(sevm__ioctl_name(0x8010AEBBul),
			 "KVM_MEMORY_ENCRYPT_REG_REGION");
	ck_assert_str_eq(sevm__ioctl_name(0xC040AED4ul),
			 "KVM_CREATE_GUEST_MEMFD");
	ck_assert_str_eq(sevm__ioctl_name(SEVM_ABI_KVM_SET_USER_MEMORY_REGION2),
			 "KVM_SET_USER_MEMORY_REGION2");
	ck_assert_str_eq(sevm__ioctl_name(SEVM_ABI_KVM_SET_MEMORY_ATTRIBUTES),
			 "KVM_SET_MEMORY_ATTRIBUTES");
	ck_assert_str_eq(sevm__ioctl_name(KVM_CREATE_VM), "KVM_CREATE_VM");
	ck_assert_str_eq(sevm__ioctl_name(KVM_RUN), "KVM_RUN");
	ck_assert_str_eq(sevm__ioctl_name(0xC0105300ul), "SEV_ISSUE_CMD");
}
END_TEST

START_TEST(test_ioctl_shared_nr)
{
	/* Same command number 0x9f/0xa3, told apart by direction and size. */
	ck_assert_str_eq(sevm__ioctl_name(KVM_GET_PIT2), "KVM_GET_PIT2");
	ck_assert_str_eq(sevm__ioctl_name(KVM_GET_VCPU_EVENTS),
			 "KVM_GET_VCPU_EVENTS");
	ck_assert_str_eq(sevm__ioctl_name(KVM_GET_TSC_KHZ), "KVM_GET_TSC_KHZ");
}
END_TEST

START_TEST(test_ioctl_unknown)
{
	ck_assert_ptr_null(sevm__ioctl_name(0));
	ck_assert_ptr_null(sevm__ioctl_name(0xdeadbeeful));
	/* 0xd6: claimed by several unmerged proposals, known by none here */
	ck_assert_ptr_null(sevm__ioctl_name(_IOWR(KVMIO, 0xd6, __u64[8])));
}
END_TEST

START_TEST(test_fw_status)
{
	ck_assert_str_eq(sevm__fw_status_name(0x00), "SUCCESS");
	ck_assert_str_eq(sevm__fw_status_name(0x02), "INVALID_GUEST_STATE");
	ck_assert_str_eq(sevm__fw_status_name(0x03), "INVALID_CONFIG");
	ck_assert_str_eq(sevm__fw_status_name(0x04), "INVALID_LEN");
	ck_assert_str_eq(sevm__fw_status_name(0x19), "INVALID_PAGE_SIZE");
	ck_assert_str_eq(sevm__fw_status_name(0x3F),
			 "SEV_STATUS_RESPONSE_TOO_LARGE");
	ck_assert_str_eq(sevm__fw_status_name(0xFFFFFFFFu), "NO_FW_CALL");
	ck_assert_ptr_null(sevm__fw_status_name(0x1E));
	ck_assert_ptr_null(sevm__fw_status_name(0x40));
	ck_assert_ptr_null(sevm__fw_status_name(0x99));
}
END_TEST

START_TEST(test_tables_complete)
{
	unsigned int i, n = 0;

	/* §6.3 lists 55 codes in 0x00-0x3F; a dropped entry shows up here. */
	for (i = 0; i <= 0x3F; i++)
		n += sevm__fw_status_name(i) != NULL;
	ck_assert_uint_eq(n, 55);

	for (i = SEVM_ABI_SEV_INIT; i <= SEVM_ABI_SEV_INIT2; i++)
		ck_assert_msg(sevm__sev_cmd_name(i), "SEV id %u unnamed", i);
	for (i = 0; i < SEVM_ABI_SEV_DEV_MAX; i++)
		ck_assert_msg(sevm__sev_dev_cmd_name(i), "dev cmd %u unnamed",
			      i);
}
END_TEST

START_TEST(test_sev_cmd)
{
	ck_assert_str_eq(sevm__sev_cmd_name(0), "INIT");
	ck_assert_str_eq(sevm__sev_cmd_name(2), "LAUNCH_START");
	ck_assert_str_eq(sevm__sev_cmd_name(9), "SEND_UPDATE_DATA");
	ck_assert_str_eq(sevm__sev_cmd_name(21), "SEND_CANCEL");
	ck_assert_str_eq(sevm__sev_cmd_name(22), "INIT2");
	ck_assert_str_eq(sevm__sev_cmd_name(100), "SNP_LAUNCH_START");
	ck_assert_ptr_null(sevm__sev_cmd_name(23));
	ck_assert_ptr_null(sevm__sev_cmd_name(99));
	ck_assert_ptr_null(sevm__sev_cmd_name(104));
}
END_TEST

START_TEST(test_sev_dev_cmd)
{
	ck_assert_str_eq(sevm__sev_dev_cmd_name(1), "PLATFORM_STATUS");
	ck_assert_str_eq(sevm__sev_dev_cmd_name(5), "PDH_CERT_EXPORT");
	ck_assert_str_eq(sevm__sev_dev_cmd_name(8), "GET_ID2");
	ck_assert_ptr_null(sevm__sev_dev_cmd_name(SEVM_ABI_SEV_DEV_MAX));
}
END_TEST

static Suite *names_suite(void)
{
	Suite *s = suite_create("names");
	TCase *tc = tcase_create("lookup");

	tcase_add_test(tc, test_ioctl_numbers);
	tcase_add_test(tc, test_ioctl_names);
	tcase_add_test(tc, test_ioctl_shared_nr);
	tcase_add_test(tc, test_ioctl_unknown);
	tcase_add_test(tc, test_fw_status);
	tcase_add_test(tc, test_tables_complete);
	tcase_add_test(tc, test_sev_cmd);
	tcase_add_test(tc, test_sev_dev_cmd);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(names_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
