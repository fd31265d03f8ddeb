/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * /dev/sev: sev_ioctl() of drivers/crypto/ccp/sev-dev.c (sev-kernel-rules.md
 * §6).  PLATFORM_STATUS, GET_ID, GET_ID2 and PDH_CERT_EXPORT (platform.c's
 * keys) are modelled; the commands that would change the platform's keys
 * answer -EOPNOTSUPP (an errno the kernel never gives here) once the
 * kernel's own checks pass.  SNP is never initialised.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* sev_version_greater_or_equal(0, 16): GET_ID and GET_ID2 need API 0.16 */
#define ENOTSUPP	524

static bool api_ge(const struct sim_shared *sh, uint8_t major, uint8_t minor)
{
	return sh->cfg.api_major > major || (sh->cfg.api_major == major && sh->cfg.api_minor >= minor);
}

/* §12: any stable 64 bytes per socket; the model has one socket */
static void chip_id(const struct sim_shared *sh, uint8_t id[64])
{
	for (int i = 0; i < 64; i++)
		id[i] = (uint8_t)(sh->host_id[i % 16] ^ (i * 37));
}

static int platform_status(struct sim_shared *sh, struct sev_issue_cmd *in)
{
	struct sevm_abi_sev_user_data_status st;

	sim__fw_platform_status(sh, &st);
	in->error = SEVM_ABI_SEV_RET_SUCCESS;
	return sim__copy_to_user(in->data, &st, sizeof(st));
}

/* sev_ioctl_do_get_id2(): the length goes back on every path through the firmware */
static int get_id2(struct sim_shared *sh, struct sev_issue_cmd *in)
{
	struct sevm_abi_sev_user_data_get_id2 p;
	uint8_t id[64];
	uint32_t len;

	if (!api_ge(sh, 0, 16))
		return -ENOTSUPP;
	if (sim__copy_from_user(&p, in->data, sizeof(p)))
		return -EFAULT;
	len = p.address ? p.length : 0;
	/* §12: ID_LEN < 64 -> INVALID_LENGTH with 64 written back */
	in->error = len < 64 ? SEVM_ABI_SEV_RET_INVALID_LEN : SEVM_ABI_SEV_RET_SUCCESS;
	p.length = 64;
	if (sim__copy_to_user(in->data, &p, sizeof(p)))
		return -EFAULT;
	if (in->error)
		return -EIO;
	chip_id(sh, id);
	return sim__copy_to_user(p.address, id, sizeof(id));
}

/* sev_ioctl_do_get_id(), deprecated: a fixed 128-byte buffer */
static int get_id(struct sim_shared *sh, struct sev_issue_cmd *in)
{
	uint8_t id[128] = { 0 };

	if (!api_ge(sh, 0, 16))
		return -ENOTSUPP;
	chip_id(sh, id);
	in->error = SEVM_ABI_SEV_RET_SUCCESS;
	return sim__copy_to_user(in->data, id, sizeof(id));
}

/*
 * sev_ioctl_do_pdh_export() (§6.2).  Write access is needed only to
 * initialise the platform: the driver's sev->state is INIT whenever the
 * firmware is initialised (it never records WORKING), so a read-only fd
 * exports from an INIT or a WORKING platform alike.
 */
static int pdh_cert_export(struct sim_shared *sh, struct sev_issue_cmd *in, bool writable)
{
	struct sevm_abi_sev_user_data_pdh_cert_export p;
	uint8_t *pdh = NULL, *chain = NULL;
	uint32_t pdh_len = 0, chain_len = 0;
	int r;

	if (sh->fw.platform_state == SEVM_ABI_SEV_STATE_UNINIT && !writable)
		return -EPERM;
	if (sim__copy_from_user(&p, in->data, sizeof(p)))
		return -EFAULT;
	/* no address or no PDH length: the length query, a command with zero lengths */
	if (p.pdh_cert_address && p.pdh_cert_len && p.cert_chain_address) {
		if (p.pdh_cert_len > SEVM_ABI_SEV_FW_BLOB_MAX_SIZE ||
		    p.cert_chain_len > SEVM_ABI_SEV_FW_BLOB_MAX_SIZE)
			return -EFAULT;
		pdh = calloc(1, p.pdh_cert_len);
		chain = calloc(1, p.cert_chain_len ? p.cert_chain_len : 1);
		r = -ENOMEM;
		if (!pdh || !chain)
			goto out;
		pdh_len = p.pdh_cert_len;
		chain_len = p.cert_chain_len;
	}
	in->error = sim__fw_pdh_cert_export(sh, pdh, &pdh_len, chain, &chain_len);
	r = in->error ? -EIO : 0;
	/* both lengths go back whatever the firmware said */
	p.pdh_cert_len = pdh_len;
	p.cert_chain_len = chain_len;
	if (sim__copy_to_user(in->data, &p, sizeof(p)))
		r = -EFAULT;
	/* 2026 hardening: after a firmware error the blobs stay in the kernel */
	if (r || !pdh)
		goto out;
	if (sim__copy_to_user(p.pdh_cert_address, pdh, p.pdh_cert_len) ||
	    sim__copy_to_user(p.cert_chain_address, chain, p.cert_chain_len))
		r = -EFAULT;
out:
	free(chain);
	free(pdh);
	return r;
}

/* 1 with *r set for a handled command, 0 for one that reaches `default:` */
static int dispatch(struct sim_shared *sh, struct sev_issue_cmd *in, bool writable, int *r)
{
	switch (in->cmd) {
	case SEVM_ABI_SEV_DEV_PLATFORM_STATUS:
		*r = platform_status(sh, in);
		return 1;
	case SEVM_ABI_SEV_DEV_GET_ID:
		*r = get_id(sh, in);
		return 1;
	case SEVM_ABI_SEV_DEV_GET_ID2:
		*r = get_id2(sh, in);
		return 1;
	case SEVM_ABI_SEV_DEV_PDH_CERT_EXPORT:
		*r = pdh_cert_export(sh, in, writable);
		return 1;
	case SEVM_ABI_SEV_DEV_FACTORY_RESET:
	case SEVM_ABI_SEV_DEV_PEK_GEN:
	case SEVM_ABI_SEV_DEV_PEK_CSR:
	case SEVM_ABI_SEV_DEV_PDH_GEN:
	case SEVM_ABI_SEV_DEV_PEK_CERT_IMPORT:
		/* the writable check comes first in each of these */
		*r = writable ? -EOPNOTSUPP : -EPERM;
		return 1;
	case SEVM_ABI_SEV_DEV_SNP_PLATFORM_STATUS:
	case SEVM_ABI_SEV_DEV_SNP_COMMIT:
	case SEVM_ABI_SEV_DEV_SNP_SET_CONFIG:
	case SEVM_ABI_SEV_DEV_SNP_VLEK_LOAD:
		/* SNP is not initialised: -EINVAL before any permission check */
		*r = -EINVAL;
		return 1;
	default:
		*r = -EINVAL;
		return 0;
	}
}

/* sev_ioctl() */
int sim__sev_dev_ioctl(struct sevsim *sim, const struct sim_ident *id, unsigned long req,
		       void *arg)
{
	struct sim_shared *sh = sim->sh;
	struct sev_issue_cmd in;
	int r;

	/* 1: the model always has a PSP; 2 */
	if (req != SEV_ISSUE_CMD)
		return -EINVAL;
	/* 3 */
	if (sim__copy_from_user(&in, (uintptr_t)arg, sizeof(in)))
		return -EFAULT;
	/* 4 */
	if (in.cmd > SEVM_ABI_SEV_DEV_MAX)
		return -EINVAL;
	/* 5: sev_cmd_mutex */
	sim__lock(&sh->fw_lock);
	if (dispatch(sh, &in, id->writable, &r) &&
	    sim__copy_to_user((uintptr_t)arg, &in, sizeof(in)))
		r = -EFAULT;
	sim__unlock(&sh->fw_lock);
	return r;
}
