/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The receiver's first read (sevm__hello_read, lib/handoff/hello.c): the
 * wire header (wire.c), HELLO's fields and the region table with its
 * validation (regions.c) and fd checks.
 *
 * Input: a mode byte, then the bytes the peer sends.  Mode bits 0-1: how
 * many fds ride with the first byte (dups of one 1 MiB memfd: fds are not
 * fuzz input, but their count and the table's use of them are); bit 2: the
 * bytes are the HELLO payload and the harness puts a correct wire header
 * (type HELLO, that fd count, the length) in front; else they are the raw
 * stream.  The sending end is closed after the write, so a short message
 * ends in ECONNRESET, never a wait.
 *
 * Invariants: a HELLO taken has a valid region table, each region owning a
 * distinct fd, and 1..SEVM_MAX_VCPUS vCPUs; no fd outlives the handle.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sevmigrate.h>
#include "fuzz.h"
#include "handoff/handoff.h"

#define MODE_NR_FDS	0x03
#define MODE_HEADER	0x04
/* Far above the largest HELLO (253 regions), below a socket's buffer. */
#define MAX_INPUT	(64u << 10)
#define MEMFD_SIZE	(1u << 20)

static int memfd = -1;

/* The lowest free fd: it moves up when an fd leaks. */
static int lowest_free_fd(void)
{
	int fd = fcntl(2, F_DUPFD_CLOEXEC, 0);

	FUZZ_CHECK(fd >= 0);
	close(fd);
	return fd;
}

static void setup_once(void)
{
	if (memfd >= 0)
		return;
	memfd = memfd_create("fuzz-hello", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	FUZZ_CHECK(memfd >= 0 && ftruncate(memfd, MEMFD_SIZE) == 0);
}

/* Send the input (best effort: what does not fit is simply not there) and hang up. */
static void send_input(int sock, const uint8_t *p, size_t len, unsigned int nr_fds, bool header)
{
	uint8_t hdr[SEVM_WIRE_HDR_LEN] = { 0 };
	union {
		char buf[CMSG_SPACE(sizeof(int) * 3)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2] = { { hdr, header ? sizeof(hdr) : 0 }, { (void *)p, len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	int fds[3] = { memfd, memfd, memfd };

	sevm__put32(hdr, SEVM_WIRE_MAGIC);
	sevm__put16(hdr + 4, SEVM_MSG_HELLO);
	sevm__put16(hdr + 6, (uint16_t)nr_fds);
	sevm__put32(hdr + 8, (uint32_t)len);
	/* fds need at least one byte to ride with. */
	if (nr_fds && (header || len)) {
		struct cmsghdr *c;

		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nr_fds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nr_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nr_fds);
	}
	if (header || len)
		(void)sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(sock);
}

static void check_taken(const struct sevm_handoff *h)
{
	FUZZ_CHECK(h->info.nr_vcpus >= 1 && h->info.nr_vcpus <= SEVM_MAX_VCPUS);
	FUZZ_CHECK(h->nr_regions == h->info.nr_regions && h->nr_regions <= SEVM_MAX_REGIONS);
	FUZZ_CHECK(sevm__regions_validate(h->regions, h->nr_regions, -EINVAL) == 0);
	for (unsigned int i = 0; i < h->nr_regions; i++) {
		FUZZ_CHECK(h->regions[i].fd >= 0 && h->regions[i].fd != h->sock);
		FUZZ_CHECK(h->regions[i].offset + h->regions[i].size <= MEMFD_SIZE);
		for (unsigned int j = 0; j < i; j++)
			FUZZ_CHECK(h->regions[j].fd != h->regions[i].fd);
	}
	FUZZ_CHECK(!h->sev_type || (h->peer_vm_fd >= 0 && h->sev_type == h->info.vm_type));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sevm_handoff *h;
	int sv[2], base, err;

	if (size < 1 || size > MAX_INPUT)
		return 0;
	setup_once();
	base = lowest_free_fd();
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	h = calloc(1, sizeof(*h));
	FUZZ_CHECK(h);
	h->sock = sv[0];
	h->vm_fd = -1;
	h->peer_vm_fd = -1;
	h->peer.pidfd = -1;
	h->timeout_ms = 1000;
	send_input(sv[1], data + 1, size - 1, data[0] & MODE_NR_FDS, data[0] & MODE_HEADER);
	err = sevm__hello_read(h);
	if (!err)
		check_taken(h);
	else
		FUZZ_CHECK(err < 0 && sevm_last_error()[0] != '\0');
	/* As the library drops a receiver that failed: it closes the socket too. */
	sevm_handoff_free(h);
	FUZZ_CHECK(lowest_free_fd() == base);
	return 0;
}
