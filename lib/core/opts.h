/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Versioned structs (libbpf's OPTS_VALID): a caller built against an older,
 * smaller struct is accepted; a newer, larger one only when every byte this
 * library does not know is zero.
 */
#ifndef SEVM_CORE_OPTS_H
#define SEVM_CORE_OPTS_H

#include <stddef.h>
#include <string.h>

/* 0, or a failure recorded against `what`: -EINVAL (no struct, sz unset) or -E2BIG. */
int sevm__opts_check(const void *opts, size_t known, const char *what);

/* Copy min(sz, known) bytes of a library-filled report out; zero the rest. */
void sevm__report_out(void *dst, const void *src, size_t known);

#define SEVM_OPTS_CHECK(p, what) sevm__opts_check((p), sizeof(*(p)), (what))

/* After SEVM_OPTS_CHECK: an older caller's struct is shorter, its missing fields read as zero. */
#define SEVM_OPTS_IN(local, opts) \
	memcpy(&(local), (opts), (opts)->sz < sizeof(local) ? (opts)->sz : sizeof(local))

#endif
