/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A growable byte buffer for building messages and snapshots. */
#ifndef SEVM_CORE_BUF_H
#define SEVM_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct sevm__buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

/* Make room for n more bytes; returns a pointer to them (len grows by n), or NULL. */
void *sevm__buf_grow(struct sevm__buf *b, size_t n);
/* Forget the contents, keep the memory. */
void sevm__buf_reset(struct sevm__buf *b);
void sevm__buf_free(struct sevm__buf *b);

#endif
