/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Channels under struct sevm_io that misbehave on purpose: a sender's that
 * forges a private page, a receiver's that hangs up mid-stream.  The record
 * layout is taken from doc/stream-format.md, not from the library's codec.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/crc32c.h"
#include "remote-peer.h"

#define STREAM_HDR_LEN_OFF	12	/* header_len: where the first record starts */
#define REC_HDR			24
#define REC_CRC_OFF		20
#define REC_PRIVATE		0x0003
#define PKT_HDR			52
#define PAGE			4096u
#define FORGED_BYTE		100	/* inside the transport buffer */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int send_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One bit of the page's transport buffer, and a CRC that agrees again. */
static void forge(struct rp_tamper *t, uint8_t *rec)
{
	uint32_t len = le32(rec + 4), n = le32(rec + 16);

	rec[REC_HDR + (size_t)n * PKT_HDR + (size_t)t->page * PAGE + FORGED_BYTE] ^= 0x01;
	put_le32(rec + REC_CRC_OFF,
		 sevm__crc32c_record(rec, REC_HDR, REC_CRC_OFF, rec + REC_HDR, len));
	t->gfn = le64(rec + 8) + t->page;
	t->done = true;
}

/*
 * Walk the records of this write to the first PRIVATE one.  The library
 * writes whole records (its first write starts with the stream header);
 * anything else is reported, not guessed at.
 */
static uint8_t *find_and_forge(struct rp_tamper *t, const uint8_t *in, size_t len)
{
	uint64_t end = t->pos + len;
	uint8_t *copy;

	if (t->pos == 0 && len < STREAM_HDR_LEN_OFF + 4) {
		t->why = "the first write is shorter than the stream header";
		return NULL;
	}
	if (t->pos == 0)
		t->next = le32(in + STREAM_HDR_LEN_OFF);
	for (; t->next < end; ) {
		const uint8_t *rec = in + (t->next - t->pos);
		uint32_t rlen;

		if (t->next + REC_HDR > end) {
			t->why = "a record header straddles two writes";
			return NULL;
		}
		rlen = le32(rec + 4);
		if ((rec[0] | rec[1] << 8) == REC_PRIVATE) {
			if (t->next + REC_HDR + rlen > end)
				t->why = "the first PRIVATE record straddles two writes";
			else if (t->page >= le32(rec + 16))
				t->why = "the first PRIVATE record has fewer pages";
			if (t->why || !(copy = malloc(len)))
				return NULL;
			memcpy(copy, in, len);
			forge(t, copy + (t->next - t->pos));
			return copy;
		}
		t->next += REC_HDR + rlen + ((8 - rlen % 8) % 8);
	}
	return NULL;
}

static ssize_t tamper_write(void *ctx, const void *buf, size_t len)
{
	struct rp_tamper *t = ctx;
	uint8_t *copy = t->done || t->why ? NULL : find_and_forge(t, buf, len);
	int err = send_all(t->fd, copy ? copy : buf, len);

	free(copy);
	if (err)
		return err;
	t->pos += len;
	return (ssize_t)len;
}

static ssize_t no_read(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return -EBADF;
}

void rp_tamper_io(struct rp_tamper *t, struct sevm_io *io)
{
	*io = (struct sevm_io){ .sz = sizeof(*io), .ctx = t, .write = tamper_write,
				.read = no_read };
}

/* SO_LINGER 0: close sends RST, as a crashed host's kernel would on the next segment. */
static void hang_up(struct rp_drop *d)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(d->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(d->fd);
	d->fd = -1;
}

static ssize_t drop_read(void *ctx, void *buf, size_t len)
{
	struct rp_drop *d = ctx;
	ssize_t n;

	if (d->fd >= 0 && d->got >= d->budget)
		hang_up(d);
	if (d->fd < 0)
		return 0;
	if (len > d->budget - d->got)
		len = (size_t)(d->budget - d->got);
	do
		n = read(d->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	d->got += (uint64_t)n;
	return n;
}

static ssize_t no_write(void *ctx, const void *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return -EBADF;
}

void rp_drop_io(struct rp_drop *d, struct sevm_io *io)
{
	*io = (struct sevm_io){ .sz = sizeof(*io), .ctx = d, .write = no_write,
				.read = drop_read };
}
