/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VMMs of the remote-migration end-to-end test (tests/e2e/test-remote.c),
 * one process per side, each started by the test inside its own network
 * namespace.  They report on stdout, one `key=value ...` line per fact (a
 * line `msg=...` holds a whole message); the test decides what is right.
 * Exit 0: the peer ran its mode to the end, whatever it saw on the way.
 */
#ifndef REMOTE_PEER_H
#define REMOTE_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sevmigrate.h>

struct rp_args {
	const char *mode;	/* per side; see remote-peer.c */
	const char *to;		/* sender: the destination's IPv4 address */
	int port;		/* sender: the destination's port */
	unsigned long arg;	/* mode's number: page to tamper, byte to drop at, gfn to watch */
	bool small_buffers;	/* 64 KiB socket buffers: a drop is seen within a few records */
};

/* ---- remote-peer.c: reporting and the VMMs' own channel ------------------- */

/* One report line (a newline is added), flushed at once. */
void rp_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* `<tag><what>_rc=N <tag><what>_fw=N <tag><what>_fw_name=NAME`, and on failure `msg=...`. */
void rp_say_rc(const char *tag, const char *what, int rc, uint32_t fw);

/* Destination: listen on every address (port chosen by the kernel); says `port=N`. */
int rp_listen(bool small_buffers);
/* Accept one source; says `<tag>from=ADDR`. */
int rp_accept(int listener, const char *tag);
/* Source: connect; says `local=ADDR`. */
int rp_connect(const char *ip, int port, bool small_buffers);

/*
 * The stream is one-way; the VMMs tell each other the outcome on their own
 * channel, here the connection's other direction: one byte, 'Y' or 'N'.
 * The destination then reads what the source still sends until it closes.
 */
void rp_verdict_send(int sock, bool ok);
/* 'Y', 'N', or '-' when the connection ended without a verdict. */
char rp_verdict_recv(int sock);

/* ---- remote-io.c: channels under struct sevm_io ---------------------------- */

/*
 * A sender's channel that forges the first PRIVATE record: one bit of page
 * `page`'s transport buffer flipped and the record's CRC32C made to match,
 * so that the stream reader accepts it and only the firmware's MAC can
 * refuse it.
 */
struct rp_tamper {
	int fd;
	uint32_t page;		/* index inside the record */
	uint64_t pos;		/* stream bytes written */
	uint64_t next;		/* stream offset of the next record header; 0: header first */
	bool done;
	uint64_t gfn;		/* the forged page, once done */
	const char *why;	/* why no record could be forged, or NULL */
};

void rp_tamper_io(struct rp_tamper *t, struct sevm_io *io);

/* A receiver's channel that reads `budget` bytes, then resets the connection. */
struct rp_drop {
	int fd;			/* -1 once closed */
	uint64_t budget;
	uint64_t got;
};

void rp_drop_io(struct rp_drop *d, struct sevm_io *io);

/* ---- the guests ----------------------------------------------------------------- */

/* remote-sev.c: an SEV-ES guest on the SEV model. */
int rp_sev_send(const struct rp_args *a);
int rp_sev_recv(const struct rp_args *a);
/* remote-kvm.c: a plain tinyvm guest on real KVM, with pre-copy. */
int rp_kvm_send(const struct rp_args *a);
int rp_kvm_recv(const struct rp_args *a);

#endif
