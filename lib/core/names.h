/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Names for the numbers the kernel and the SEV firmware hand back, so log
 * lines and error messages say "SEND_START failed: INVALID_LEN" rather than
 * "cmd 8 failed: 4".  Pure lookups: no state, safe from any thread.
 */
#ifndef SEVM_CORE_NAMES_H
#define SEVM_CORE_NAMES_H

#include <stdint.h>

/*
 * Each returns a static string, or NULL for a number it does not know, so the
 * caller can fall back to printing the number itself.
 */

/* "KVM_CREATE_VM", "SEV_ISSUE_CMD", ... for an ioctl request number */
const char *sevm__ioctl_name(unsigned long request);

/* "LAUNCH_START", "INIT2", ... for a KVM_MEMORY_ENCRYPT_OP command id */
const char *sevm__sev_cmd_name(unsigned int id);

/* "PLATFORM_STATUS", "PDH_CERT_EXPORT", ... for a /dev/sev command */
const char *sevm__sev_dev_cmd_name(unsigned int cmd);

/* "INVALID_LEN", "NO_FW_CALL", ... for a firmware status (error field) */
const char *sevm__fw_status_name(uint32_t status);

#endif /* SEVM_CORE_NAMES_H */
