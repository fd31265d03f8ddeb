/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "names.h"

/* Long enough for a chain of contexts around one failed ioctl. */
#define MSG_MAX 512

static __thread char last_msg[MSG_MAX];

static const char *const own_errors[SEVM_ERR__END - SEVM_ERR__START] = {
	[SEVM_ERR_FORMAT - SEVM_ERR__START] = "Malformed snapshot, message or stream",
	[SEVM_ERR_CHECKSUM - SEVM_ERR__START] = "Checksum mismatch",
	[SEVM_ERR_VERSION - SEVM_ERR__START] = "Incompatible format or protocol version",
	[SEVM_ERR_FIRMWARE - SEVM_ERR__START] = "SEV firmware returned an error status",
	[SEVM_ERR_PEER - SEVM_ERR__START] = "Peer aborted or refused the operation",
	[SEVM_ERR_INDOUBT - SEVM_ERR__START] = "Handoff committed but the receiver did not confirm",
	[SEVM_ERR_MOVED - SEVM_ERR__START] = "SEV context moved to the receiver; take it back",
};

const char *sevm_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err >= SEVM_ERR__START && err < SEVM_ERR__END)
		return own_errors[err - SEVM_ERR__START];
	/* strerrordesc_np returns static text, so this stays thread-safe. */
	const char *s = strerrordesc_np(err);
	return s ? s : "Unknown error";
}

static const char *error_name(int err)
{
	static const char *const own_names[SEVM_ERR__END - SEVM_ERR__START] = {
		"SEVM_ERR_FORMAT", "SEVM_ERR_CHECKSUM", "SEVM_ERR_VERSION",
		"SEVM_ERR_FIRMWARE", "SEVM_ERR_PEER", "SEVM_ERR_INDOUBT",
		"SEVM_ERR_MOVED",
	};
	if (err < 0)
		err = -err;
	if (err >= SEVM_ERR__START && err < SEVM_ERR__END)
		return own_names[err - SEVM_ERR__START];
	const char *s = strerrorname_np(err);
	return s ? s : "?";
}

const char *sevm_last_error(void)
{
	return last_msg;
}

int sevm__fail_(int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(last_msg))
		snprintf(last_msg + n, sizeof(last_msg) - n, ": %s (%s)",
			 sevm_strerror(err), error_name(err));
	sevm__log(SEVM_LOG_DEBUG, "%s", last_msg);
	return err;
}

void sevm__set_msg(const char *msg)
{
	if (msg != last_msg)
		snprintf(last_msg, sizeof(last_msg), "%s", msg);
}

int sevm__context(int err, const char *fmt, ...)
{
	char inner[MSG_MAX];
	va_list ap;
	int n;

	/* So a caller may wrap any result: success leaves the message alone. */
	if (err >= 0)
		return err;
	memcpy(inner, last_msg, sizeof(inner));
	va_start(ap, fmt);
	n = vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
	va_end(ap);
	/* Cut the inner message, not the context, when the chain grows too long. */
	if (n >= 0 && (size_t)n + 3 <= sizeof(last_msg)) {
		size_t k = strnlen(inner, sizeof(last_msg) - (size_t)n - 3);

		memcpy(last_msg + n, ": ", 2);
		memcpy(last_msg + n + 2, inner, k);
		last_msg[n + 2 + k] = '\0';
	}
	return err;
}

const char *sevm_fw_status_name(uint32_t status)
{
	return sevm__fw_status_name(status);
}
