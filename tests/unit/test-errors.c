/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The error model: codes, messages, their thread-locality, the log, opts. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sevmigrate.h>

#include "core/error.h"
#include "core/opts.h"
#include "testutil.h"

START_TEST(strerror_errno_and_own)
{
	ck_assert_str_eq(sevm_strerror(-EINVAL), "Invalid argument");
	ck_assert_str_eq(sevm_strerror(EINVAL), "Invalid argument");
	ck_assert_str_eq(sevm_strerror(-SEVM_ERR_CHECKSUM), "Checksum mismatch");
	ck_assert_str_eq(sevm_strerror(-SEVM_ERR_FIRMWARE), "SEV firmware returned an error status");
	ck_assert_ptr_nonnull(sevm_strerror(-SEVM_ERR_FORMAT));
	ck_assert_ptr_nonnull(sevm_strerror(-SEVM_ERR_VERSION));
	ck_assert_ptr_nonnull(sevm_strerror(-SEVM_ERR_PEER));
	ck_assert_str_eq(sevm_strerror(-SEVM_ERR__END), "Unknown error");
	ck_assert_str_eq(sevm_strerror(999999), "Unknown error");
}
END_TEST

START_TEST(fail_formats_message)
{
	int r = sevm__fail(-EBUSY, "move from VM fd %d", 7);

	ck_assert_int_eq(r, -EBUSY);
	ck_assert_str_eq(sevm_last_error(),
			 "move from VM fd 7: Device or resource busy (EBUSY)");
	r = sevm__fail(-SEVM_ERR_VERSION, "hello");
	ck_assert_int_eq(r, -SEVM_ERR_VERSION);
	ck_assert_str_eq(sevm_last_error(),
			 "hello: Incompatible format or protocol version (SEVM_ERR_VERSION)");
}
END_TEST

START_TEST(context_chains_outward)
{
	sevm__fail(-EINVAL, "KVM_SET_MSRS");
	ck_assert_int_eq(sevm__context(-EINVAL, "vCPU %d", 3), -EINVAL);
	ck_assert_int_eq(sevm__context(-EINVAL, "restore"), -EINVAL);
	ck_assert_str_eq(sevm_last_error(),
			 "restore: vCPU 3: KVM_SET_MSRS: Invalid argument (EINVAL)");
}
END_TEST

START_TEST(long_message_is_cut_not_overrun)
{
	char big[2000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sevm__fail(-EIO, "%s", big);
	ck_assert_uint_lt(strlen(sevm_last_error()), 512);
	for (int i = 0; i < 20; i++)
		sevm__context(-EIO, "%s", big);
	ck_assert_uint_lt(strlen(sevm_last_error()), 512);
}
END_TEST

static void *other_thread(void *arg)
{
	(void)arg;
	sevm__fail(-ENOMEM, "in the other thread");
	return strdup(sevm_last_error());
}

START_TEST(message_is_per_thread)
{
	pthread_t t;
	char *theirs;

	sevm__fail(-EPERM, "in the main thread");
	ck_assert_int_eq(pthread_create(&t, NULL, other_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(t, (void **)&theirs), 0);
	ck_assert_str_eq(theirs, "in the other thread: Cannot allocate memory (ENOMEM)");
	ck_assert_str_eq(sevm_last_error(), "in the main thread: Operation not permitted (EPERM)");
	free(theirs);
}
END_TEST

struct logged {
	int lines;
	enum sevm_log_level level;
	char last[600];
};

static void logger(enum sevm_log_level level, const char *msg, void *user)
{
	struct logged *l = user;

	l->lines++;
	l->level = level;
	strncpy(l->last, msg, sizeof(l->last) - 1);
}

START_TEST(log_callback_is_silent_until_set)
{
	struct logged l = { 0 };

	sevm__log(SEVM_LOG_WARN, "before");
	sevm_set_log(logger, &l);
	sevm__log(SEVM_LOG_WARN, "w %d", 1);
	ck_assert_int_eq(l.lines, 1);
	ck_assert_int_eq(l.level, SEVM_LOG_WARN);
	ck_assert_str_eq(l.last, "w 1");
	sevm__fail(-EIO, "failing step");
	ck_assert_int_eq(l.lines, 2);
	ck_assert_int_eq(l.level, SEVM_LOG_DEBUG);
	ck_assert_str_eq(l.last, "failing step: Input/output error (EIO)");
	sevm_set_log(NULL, NULL);
	sevm__log(SEVM_LOG_ERROR, "after");
	ck_assert_int_eq(l.lines, 2);
}
END_TEST

struct opts_v1 {
	size_t sz;
	int a;
};

struct opts_v2 {
	size_t sz;
	int a;
	int b;
	long c;
};

START_TEST(opts_size_rules)
{
	struct opts_v1 v1 = { .sz = sizeof(v1), .a = 1 };
	struct opts_v2 v2 = { .sz = sizeof(v2), .a = 1 };

	/* A newer caller with zero tail, an older caller: both accepted. */
	ck_assert_int_eq(sevm__opts_check(&v2, sizeof(v1), "t"), 0);
	ck_assert_int_eq(sevm__opts_check(&v1, sizeof(v2), "t"), 0);
	v2.c = 5;
	ck_assert_int_eq(sevm__opts_check(&v2, sizeof(v1), "t"), -E2BIG);
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "this library knows only"));
	v1.sz = 0;
	ck_assert_int_eq(sevm__opts_check(&v1, sizeof(v1), "t"), -EINVAL);
	ck_assert_int_eq(sevm__opts_check(NULL, sizeof(v1), "t"), -EINVAL);
}
END_TEST

START_TEST(report_out_respects_caller_size)
{
	struct opts_v2 src = { .sz = sizeof(src), .a = 7, .b = 8, .c = 9 };
	struct opts_v1 small = { .sz = sizeof(small) };
	struct {
		struct opts_v2 v2;
		long future;
	} big = { .v2.sz = sizeof(big), .future = 42 };

	sevm__report_out(&small, &src, sizeof(src));
	ck_assert_uint_eq(small.sz, sizeof(small));
	ck_assert_int_eq(small.a, 7);
	sevm__report_out(&big, &src, sizeof(src));
	ck_assert_uint_eq(big.v2.sz, sizeof(big));
	ck_assert_int_eq(big.v2.c, 9);
	ck_assert_int_eq(big.future, 0);
}
END_TEST

START_TEST(version_matches_build)
{
	ck_assert_str_eq(sevm_version_string(), PROJECT_VERSION);
	ck_assert_uint_eq(sevm_version(), SEVM_VERSION);
	ck_assert_uint_eq(sevm_version() >> 16, SEVM_VERSION_MAJOR);
}
END_TEST

START_TEST(fw_status_public_name)
{
	ck_assert_str_eq(sevm_fw_status_name(0x07), "POLICY_FAILURE");
	ck_assert_ptr_null(sevm_fw_status_name(0xffff));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("errors");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, strerror_errno_and_own);
	tcase_add_test(tc, fail_formats_message);
	tcase_add_test(tc, context_chains_outward);
	tcase_add_test(tc, long_message_is_cut_not_overrun);
	tcase_add_test(tc, message_is_per_thread);
	tcase_add_test(tc, log_callback_is_silent_until_set);
	tcase_add_test(tc, opts_size_rules);
	tcase_add_test(tc, report_out_respects_caller_size);
	tcase_add_test(tc, version_matches_build);
	tcase_add_test(tc, fw_status_public_name);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
