/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SEV platform through /dev/sev: status, certificates, chip id, and why
 * an open was refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../abi/compat.h"
#include "../core/error.h"
#include "../core/opts.h"
#include "../core/seam.h"
#include "cmd.h"
#include "dev.h"

#define SEV_DEV "/dev/sev"

static bool has_cap(cap_value_t cap)
{
	cap_flag_value_t v = CAP_CLEAR;
	cap_t caps = cap_get_proc();

	if (caps) {
		cap_get_flag(caps, cap, CAP_EFFECTIVE, &v);
		cap_free(caps);
	}
	return v == CAP_SET;
}

/*
 * sev-dev.c asks for no capability (sev_ioctl: FMODE_WRITE decides), so a
 * refusal comes from the node's mode, which CAP_DAC_OVERRIDE bypasses.
 */
static int refused(int err, bool write)
{
	struct stat st;
	char mode[64] = "cannot stat it";

	if (stat(SEV_DEV, &st) == 0)
		snprintf(mode, sizeof(mode), "mode %04o, owner %u:%u", (unsigned int)(st.st_mode & 07777),
			 (unsigned int)st.st_uid, (unsigned int)st.st_gid);
	return sevm__fail(err, "open %s for %s: %s (%s; this process: uid %u, gid %u, %s "
			  "CAP_DAC_OVERRIDE).  Reading runs PLATFORM_STATUS and GET_ID2 and "
			  "serves KVM's LAUNCH_START and RECEIVE_START; PDH_CERT_EXPORT needs "
			  "writing unless the platform is INIT", SEV_DEV,
			  write ? "reading and writing" : "reading", strerror(-err), mode,
			  (unsigned int)geteuid(), (unsigned int)getegid(),
			  has_cap(CAP_DAC_OVERRIDE) ? "with" : "without");
}

int sevm_sev_dev_open(bool write)
{
	int fd = sevm__open_quiet(SEV_DEV, write ? O_RDWR : O_RDONLY);

	if (fd == -EACCES || fd == -EPERM)
		return refused(fd, write);
	if (fd == -ENOENT)
		return sevm__fail(fd, "%s does not exist: no SEV firmware (the ccp driver is not "
				  "loaded, or the CPU has no SEV)", SEV_DEV);
	if (fd < 0)
		return sevm__fail(fd, "open %s", SEV_DEV);
	return fd;
}

int sevm_sev_platform_status(int sev_fd, struct sevm_sev_platform_status *status,
			     uint32_t *fw_error)
{
	struct sevm_abi_sev_user_data_status st = { 0 };
	struct sevm_sev_platform_status out = { .sz = sizeof(out) };
	int err = sevm__fw_zero(fw_error);

	if (!err)
		err = SEVM_OPTS_CHECK(status, "sevm_sev_platform_status");
	if (!err)
		err = sevm__sev_dev_cmd(sev_fd, SEVM_ABI_SEV_DEV_PLATFORM_STATUS, &st, fw_error);
	if (err)
		return err;
	out.api_major = st.api_major;
	out.api_minor = st.api_minor;
	out.build = st.build;
	out.state = st.state;
	out.flags = st.flags;
	out.guest_count = st.guest_count;
	sevm__report_out(status, &out, sizeof(out));
	return 0;
}

/*
 * The kernel and the firmware answer a short or missing buffer with the
 * sizes needed, -EIO and INVALID_LEN: a caller that asked for the sizes only
 * gets them and 0.
 */
static int query_answered(int err, uint32_t fw, bool query)
{
	return query && err == -EIO && fw == SEVM_ABI_SEV_RET_INVALID_LEN ? 0 : err;
}

static bool asks_sizes(const void *buf, const uint32_t *len)
{
	return !buf || !*len;
}

int sevm_sev_pdh_export(int sev_fd, void *pdh, uint32_t *pdh_len, void *chain,
			uint32_t *chain_len, uint32_t *fw_error)
{
	struct sevm_abi_sev_user_data_pdh_cert_export a = { 0 };
	bool query;
	uint32_t fw = 0;
	int err;

	sevm__fw_zero(fw_error);
	if (!pdh_len || !chain_len)
		return sevm__fail(-EINVAL, "PDH_CERT_EXPORT: no length");
	query = asks_sizes(pdh, pdh_len) || asks_sizes(chain, chain_len);
	if (!query) {
		a.pdh_cert_address = (uintptr_t)pdh;
		a.pdh_cert_len = *pdh_len;
		a.cert_chain_address = (uintptr_t)chain;
		a.cert_chain_len = *chain_len;
	}
	err = sevm__sev_dev_cmd(sev_fd, SEVM_ABI_SEV_DEV_PDH_CERT_EXPORT, &a, &fw);
	if (fw_error)
		*fw_error = fw;
	if (err == -EPERM)
		return sevm__fail(err, "PDH_CERT_EXPORT: %s was opened read-only and the platform "
				  "is not INIT; the kernel needs write access to initialise it "
				  "(sevm_sev_dev_open(true))", SEV_DEV);
	/* sev_ioctl_do_pdh_export() writes both lengths back on every firmware path */
	if (fw || !err) {
		*pdh_len = a.pdh_cert_len;
		*chain_len = a.cert_chain_len;
	}
	return query_answered(err, fw, query);
}

int sevm_sev_get_id(int sev_fd, void *id, uint32_t *len, uint32_t *fw_error)
{
	struct sevm_abi_sev_user_data_get_id2 a = { 0 };
	bool query;
	uint32_t fw = 0;
	int err;

	sevm__fw_zero(fw_error);
	if (!len)
		return sevm__fail(-EINVAL, "GET_ID2: no length");
	query = asks_sizes(id, len);
	if (!query) {
		a.address = (uintptr_t)id;
		a.length = *len;
	}
	err = sevm__sev_dev_cmd(sev_fd, SEVM_ABI_SEV_DEV_GET_ID2, &a, &fw);
	if (fw_error)
		*fw_error = fw;
	if (err == -524)	/* ENOTSUPP, the kernel's: firmware API below 0.16 */
		return sevm__fail(-EOPNOTSUPP, "GET_ID2: the SEV firmware's API is older than 0.16");
	if (fw || !err)
		*len = a.length;
	return query_answered(err, fw, query);
}
