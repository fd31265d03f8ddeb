/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The probe and the flavour decisions, against a host described by a fake
 * backend at the seam: an SEV host, a host without SEV, a locked /dev/kvm.
 * No kernel is needed; the real host is checked in tests/kvm/test-probe.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "abi/compat.h"
#include "testutil.h"

struct fake_host {
	int kvm_open_err;
	int sev_open_err;	/* for O_RDWR; read-only opens always work */
	uint64_t vm_types;
	int move, copy;
	uint8_t sev_state;
	const char *kvm_amd_sev;
	const char *misc_capacity;
};

static struct fake_host host;
static int fake_kvm_fd = -1, fake_sev_fd = -1;

/* A file with fixed contents, so read() on it works as on sysfs. */
static int text_fd(const char *text)
{
	int fd = memfd_create("fake", MFD_CLOEXEC);

	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return -EIO;
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static int fake_open(void *ctx, const char *path, int flags)
{
	(void)ctx;
	if (!strcmp(path, "/dev/kvm")) {
		if (host.kvm_open_err)
			return host.kvm_open_err;
		return fake_kvm_fd = text_fd("");
	}
	if (!strcmp(path, "/dev/sev")) {
		if (host.sev_open_err && (flags & O_ACCMODE) == O_RDWR)
			return host.sev_open_err;
		if (host.sev_open_err == -ENOENT)
			return -ENOENT;
		return fake_sev_fd = text_fd("");
	}
	if (!strcmp(path, "/sys/module/kvm_amd/parameters/sev") && host.kvm_amd_sev)
		return text_fd(host.kvm_amd_sev);
	if (!strcmp(path, "/sys/fs/cgroup/misc.capacity") && host.misc_capacity)
		return text_fd(host.misc_capacity);
	return -ENOENT;
}

static int fake_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	(void)ctx;
	if (req == KVM_GET_API_VERSION)
		return 12;
	if (req == KVM_CREATE_VM)
		return text_fd("");
	if (req == KVM_CHECK_EXTENSION) {
		switch ((long)arg) {
		case KVM_CAP_VM_TYPES: return (int)host.vm_types;
		case KVM_CAP_VM_MOVE_ENC_CONTEXT_FROM: return host.move;
		case KVM_CAP_VM_COPY_ENC_CONTEXT_FROM: return host.copy;
		case KVM_CAP_MAX_VCPUS: return 1024;
		case KVM_CAP_GUEST_MEMFD: return 1;
		default: return 0;
		}
	}
	if (req == SEV_ISSUE_CMD && fd == fake_sev_fd) {
		struct sev_issue_cmd *c = arg;
		struct sev_user_data_status *st = (void *)(uintptr_t)c->data;

		if (c->cmd != SEV_PLATFORM_STATUS)
			return -EINVAL;
		st->api_major = 1;
		st->api_minor = 55;
		st->build = 21;
		st->state = host.sev_state;
		st->guest_count = 3;
		c->error = 0;
		return 0;
	}
	return -ENOTTY;
}

static void use_host(const struct fake_host *h)
{
	struct sevm_backend b = { .sz = sizeof(b), .open = fake_open, .ioctl = fake_ioctl };

	host = *h;
	ck_assert_int_eq(sevm_set_backend(&b), 0);
}

static const struct fake_host sev_host = {
	.vm_types = 0x0d, .move = 1, .copy = 1, .sev_state = SEVM_ABI_SEV_STATE_INIT,
	.kvm_amd_sev = "Y\n", .misc_capacity = "sev 99\nsev_es 410\n",
};

static const struct fake_host plain_host = {
	.vm_types = 0x01, .move = 1, .copy = 1, .sev_open_err = -ENOENT,
};

static void teardown(void)
{
	sevm_set_backend(NULL);
}

START_TEST(sev_host_can_do_every_sev_flavour)
{
	struct sevm_probe_report r = { .sz = sizeof(r) };
	char why[200];

	use_host(&sev_host);
	ck_assert_int_eq(sevm_probe(&r), 0);
	ck_assert_int_eq(r.kvm_api_version, 12);
	ck_assert_uint_eq(r.vm_types, 0x0d);
	ck_assert_int_eq(r.sev_status_err, 0);
	ck_assert_int_eq(r.sev_api_major, 1);
	ck_assert_int_eq(r.sev_api_minor, 55);
	ck_assert_int_eq(r.sev_guest_count, 3);
	ck_assert_int_eq(r.kvm_amd_sev, 1);
	ck_assert_int_eq(r.kvm_amd_sev_es, -1);
	ck_assert_int_eq(r.sev_asids_max, 99);
	ck_assert_int_eq(r.sev_es_asids_max, 410);
	ck_assert_int_eq(r.cap_max_vcpus, 1024);
	for (int f = 0; f < SEVM_FLAVOUR__COUNT; f++) {
		int want = f != SEVM_FLAVOUR_GMEM_LINK;
		ck_assert_msg(sevm_flavour_check(&r, f, why, sizeof(why)) == want,
			      "%s: %s", sevm_flavour_name(f), why);
	}
	ck_assert_ptr_nonnull(strstr(why, "KVM_LINK_GUEST_MEMFD"));
}
END_TEST

START_TEST(plain_host_says_why_not)
{
	struct sevm_probe_report r = { .sz = sizeof(r) };
	char why[200];

	use_host(&plain_host);
	ck_assert_int_eq(sevm_probe(&r), 0);
	ck_assert_int_eq(r.sev_open_err, -ENOENT);
	ck_assert_int_eq(r.kvm_amd_sev, -1);
	ck_assert_int_eq(r.sev_asids_max, -1);
	ck_assert_int_eq(sevm_flavour_check(&r, SEVM_FLAVOUR_INTRAHOST, why, sizeof(why)), 1);
	ck_assert_str_eq(why, "");
	ck_assert_int_eq(sevm_flavour_check(&r, SEVM_FLAVOUR_SEV_INTRAHOST, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "no SEV: KVM offers no SEV VM type (KVM_CAP_VM_TYPES = 0x1) "
			      "and kvm_amd is not loaded");
	ck_assert_int_eq(sevm_flavour_check(&r, SEVM_FLAVOUR_SEV_ES_INTRAHOST, why, sizeof(why)), 0);
	ck_assert_ptr_nonnull(strstr(why, "no SEV-ES VM type"));
	/* SEV VM types present, /dev/sev absent: the remote flavours say so. */
	r.vm_types = 0x0d;
	ck_assert_int_eq(sevm_flavour_check(&r, SEVM_FLAVOUR_SEV_SEND, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "no /dev/sev: the SEV firmware device is absent");
	ck_assert_int_eq(sevm_flavour_check(&r, SEVM_FLAVOUR_MIRROR, why, sizeof(why)), 1);
	r.cap_copy_enc_context = 0;
	ck_assert_int_eq(sevm_flavour_check(&r, SEVM_FLAVOUR_MIRROR, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "the kernel lacks KVM_CAP_VM_COPY_ENC_CONTEXT_FROM");
}
END_TEST

START_TEST(locked_kvm_is_reported_not_failed)
{
	struct fake_host h = plain_host;
	struct sevm_probe_report r = { .sz = sizeof(r) };
	char why[200];

	h.kvm_open_err = -EACCES;
	use_host(&h);
	ck_assert_int_eq(sevm_probe(&r), 0);
	ck_assert_int_eq(r.kvm_open_err, -EACCES);
	ck_assert_int_eq(sevm_flavour_check(&r, SEVM_FLAVOUR_INTRAHOST, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "cannot open /dev/kvm read-write: Permission denied");
}
END_TEST

START_TEST(read_only_sev_blocks_pdh_export_unless_init)
{
	struct fake_host h = sev_host;
	struct sevm_probe_report r = { .sz = sizeof(r) };
	char why[300];

	h.sev_open_err = -EACCES;
	h.sev_state = SEVM_ABI_SEV_STATE_UNINIT;
	use_host(&h);
	ck_assert_int_eq(sevm_probe(&r), 0);
	ck_assert_int_eq(r.sev_open_err, -EACCES);
	ck_assert_int_eq(r.sev_status_err, 0);
	ck_assert_int_eq(sevm_flavour_check(&r, SEVM_FLAVOUR_SEV_SEND, why, sizeof(why)), 1);
	ck_assert_int_eq(sevm_flavour_check(&r, SEVM_FLAVOUR_SEV_RECEIVE, why, sizeof(why)), 0);
	ck_assert_ptr_nonnull(strstr(why, "open for writing while the platform is not INIT"));
}
END_TEST

START_TEST(probe_leaks_no_fd)
{
	struct sevm_probe_report r = { .sz = sizeof(r) };
	int before;

	use_host(&sev_host);
	before = tu_count_fds();
	ck_assert_int_eq(sevm_probe(&r), 0);
	/* The fake's fds are closed by the kernel path since the fake has no close op. */
	ck_assert_int_eq(tu_count_fds(), before);
}
END_TEST

START_TEST(older_and_newer_report_structs)
{
	struct {
		struct sevm_probe_report r;
		uint64_t future;
	} big = { .r.sz = sizeof(big), .future = 0 };
	unsigned char buf[sizeof(struct sevm_probe_report) + 16];
	size_t old = offsetof(struct sevm_probe_report, vm_types);
	struct sevm_probe_report *small = (void *)buf;
	char why[100];

	use_host(&sev_host);
	ck_assert_int_eq(sevm_probe(&big.r), 0);
	ck_assert_int_eq(big.r.kvm_api_version, 12);
	ck_assert_int_eq(big.future, 0);
	big.future = 1;
	ck_assert_int_eq(sevm_probe(&big.r), -E2BIG);

	/* An older caller's struct ends early: nothing past it is written. */
	memset(buf, 0xa5, sizeof(buf));
	small->sz = old;
	ck_assert_int_eq(sevm_probe(small), 0);
	ck_assert_int_eq(small->kvm_api_version, 12);
	for (size_t i = old; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0xa5);
	/* The flavour check reads no field past an older struct's end. */
	ck_assert_int_eq(sevm_flavour_check(small, SEVM_FLAVOUR_INTRAHOST, why, sizeof(why)), 1);
}
END_TEST

START_TEST(bad_arguments)
{
	struct sevm_probe_report r = { .sz = 0 };
	char why[8];

	ck_assert_int_eq(sevm_probe(NULL), -EINVAL);
	ck_assert_int_eq(sevm_probe(&r), -EINVAL);
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "sevm_probe"));
	r.sz = sizeof(r);
	ck_assert_int_eq(sevm_flavour_check(&r, SEVM_FLAVOUR__COUNT, why, sizeof(why)), -EINVAL);
	ck_assert_int_eq(sevm_flavour_check(&r, (enum sevm_flavour)-1, why, sizeof(why)), -EINVAL);
	ck_assert_int_eq(sevm_flavour_check(NULL, SEVM_FLAVOUR_INTRAHOST, why, sizeof(why)), -EINVAL);
	ck_assert_ptr_null(sevm_flavour_name(SEVM_FLAVOUR__COUNT));
	ck_assert_str_eq(sevm_flavour_name(SEVM_FLAVOUR_SEV_ES_INTRAHOST), "sev-es-intrahost");
	/* A short buffer gets a cut, terminated line. */
	use_host(&plain_host);
	r.sz = sizeof(r);
	ck_assert_int_eq(sevm_probe(&r), 0);
	ck_assert_int_eq(sevm_flavour_check(&r, SEVM_FLAVOUR_SEV_INTRAHOST, why, sizeof(why)), 0);
	ck_assert_uint_eq(strlen(why), sizeof(why) - 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("probe-fake");
	TCase *tc = tcase_create("fake host");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, sev_host_can_do_every_sev_flavour);
	tcase_add_test(tc, plain_host_says_why_not);
	tcase_add_test(tc, locked_kvm_is_reported_not_failed);
	tcase_add_test(tc, read_only_sev_blocks_pdh_export_unless_init);
	tcase_add_test(tc, probe_leaks_no_fd);
	tcase_add_test(tc, older_and_newer_report_structs);
	tcase_add_test(tc, bad_arguments);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
