/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>

#include "error.h"

/*
 * Process-wide, set once by the VMM before it starts threads (documented in
 * sevm_set_log(3)); a relaxed atomic pair would not make a racing change
 * safe anyway, since fn and user must change together.
 */
static sevm_log_fn log_fn;
static void *log_user;

void sevm_set_log(sevm_log_fn fn, void *user)
{
	log_fn = fn;
	log_user = user;
}

void sevm__log(enum sevm_log_level level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!log_fn)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_fn(level, line, log_user);
}
