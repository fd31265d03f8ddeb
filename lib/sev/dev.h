/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Commands on /dev/sev, the SEV platform device. */
#ifndef SEVM_SEV_DEV_H
#define SEVM_SEV_DEV_H

#include <stdint.h>

/*
 * Issue /dev/sev command cmd with data.  The firmware status goes to
 * *fw_error (if not NULL) on every path that reached the firmware, and into
 * the message by name; the return is 0 or -errno (-EIO for a firmware error).
 */
int sevm__sev_dev_cmd(int sev_fd, unsigned int cmd, void *data, uint32_t *fw_error);

#endif
