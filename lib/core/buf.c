/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>
#include <stdlib.h>

#include "buf.h"

/* Small enough not to matter for one message, big enough to skip the first reallocs. */
#define BUF_MIN_CAP 256

/*
 * Doubling keeps appending n bytes amortised O(n).  Every sum is checked
 * before it is made: a length near SIZE_MAX (a hostile peer's length field
 * passed straight through) must fail, not wrap to a small allocation.
 */
static int buf_reserve(struct sevm__buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
	uint8_t *data;

	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	data = realloc(b->data, cap);
	if (!data)
		return -1;
	b->data = data;
	b->cap = cap;
	return 0;
}

void *sevm__buf_grow(struct sevm__buf *b, size_t n)
{
	void *p;

	if (n > SIZE_MAX - b->len)
		return NULL;
	/* Also when n is 0 on an empty buffer: the caller gets a real pointer, never NULL + 0. */
	if ((b->len + n > b->cap || !b->data) && buf_reserve(b, b->len + n))
		return NULL;
	p = b->data + b->len;
	b->len += n;
	return p;
}

void sevm__buf_reset(struct sevm__buf *b)
{
	b->len = 0;
}

void sevm__buf_free(struct sevm__buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
