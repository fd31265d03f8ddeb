/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The calling thread's last-failure message, and the library's log. */
#ifndef SEVM_CORE_ERROR_H
#define SEVM_CORE_ERROR_H

#include "sevmigrate.h"

#define SEVM_PRINTF(a, b) __attribute__((format(printf, a, b)))

/*
 * Record "<what>: <strerror> (<ENAME>)" as the thread's message and return
 * err (a negative errno or -SEVM_ERR_*), so a caller can write
 * `return sevm__fail(-EINVAL, "region %u overlaps region %u", a, b);`.
 */
int sevm__fail_(int err, const char *fmt, ...) SEVM_PRINTF(2, 3);
/*
 * A statement expression, not a plain call, so that a reader of one file
 * alone — clang's static analyzer — sees that the value is err itself, and
 * knows that `err = ok ? 0 : sevm__fail(-ENOMEM, ...)` is never 0 on failure.
 */
#define sevm__fail(err, ...) ({ int sevm__e_ = (err); sevm__fail_(sevm__e_, __VA_ARGS__); sevm__e_; })

/*
 * Put "<context>: " in front of the message an inner layer recorded, so the
 * message reads from the outermost step to the failed call; returns err.
 * A non-negative err passes through and leaves the message alone.
 */
int sevm__context(int err, const char *fmt, ...) SEVM_PRINTF(2, 3);

/* Put back a message saved from sevm_last_error(). */
void sevm__set_msg(const char *msg);

void sevm__log(enum sevm_log_level level, const char *fmt, ...) SEVM_PRINTF(2, 3);

#endif
