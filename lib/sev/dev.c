/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>

#include "../abi/compat.h"
#include "../core/error.h"
#include "../core/names.h"
#include "../core/seam.h"
#include "dev.h"

/*
 * A firmware status of 0 with a failed ioctl means the kernel refused before
 * the firmware ran (sev-dev.c writes error back only after the firmware).
 */
int sevm__sev_dev_cmd(int sev_fd, unsigned int cmd, void *data, uint32_t *fw_error)
{
	struct sev_issue_cmd arg = { .cmd = cmd, .data = (uintptr_t)data };
	const char *name = sevm__sev_dev_cmd_name(cmd);
	char num[16];
	int r;

	if (!name) {
		snprintf(num, sizeof(num), "%u", cmd);
		name = num;
	}
	r = sevm__ioctl(sev_fd, SEV_ISSUE_CMD, &arg);
	if (fw_error)
		*fw_error = arg.error;
	if (r < 0 && arg.error) {
		const char *fw = sevm__fw_status_name(arg.error);
		return sevm__fail(r, "/dev/sev %s: firmware status 0x%x %s", name,
				  arg.error, fw ? fw : "(unknown)");
	}
	if (r < 0)
		return sevm__context(r, "/dev/sev %s", name);
	return r;
}
