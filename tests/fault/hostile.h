/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by the hostile-peer programs of suite `fault` (test-hostile-*.c):
 * the bookkeeping of cases, a fake peer's raw bytes and fds (a "tape" and
 * the thread that plays it), and a socket whose peer runs as another uid.
 *
 * Every case must end with the result it names (a negative errno of the
 * class it expects, with a message), no fd left open and, under LSan, no
 * heap block left behind.  A failed case is printed and the run goes on;
 * each program ends with one line for doc/RELIABILITY.md:
 *   HOSTILE surface=<name> cases=<N> passed=<N>
 */
#ifndef SEVM_FAULT_HOSTILE_H
#define SEVM_FAULT_HOSTILE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- Cases ---------------------------------------------------------------- */

void hostile_begin(const char *surface);
/* Start a case: its name, and the fds open now (checked at its end). */
void hostile_case(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A broken promise in the current case: printed once, the case fails, the run goes on. */
#define hostile_expect(cond, ...) \
	((cond) ? (void)0 : hostile_fail(__FILE__, __LINE__, __VA_ARGS__))
void hostile_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* End the case: same fds as at its start, no leak (LSan); true if it passed. */
bool hostile_case_end(void);
/* Print the HOSTILE line; true when every case passed. */
bool hostile_report(void);
/* Cases failed so far. */
unsigned int hostile_failed(void);

/* The results a case accepts, as a set (WANT_OK: unistd.h has W_OK). */
enum {
	WANT_OK = 1u << 0,		/* 0 */
	WANT_CLOSED = 1u << 1,	/* -ECONNRESET or -EPIPE: the peer closed */
	WANT_TIMEDOUT = 1u << 2,	/* -ETIMEDOUT */
	WANT_FORMAT = 1u << 3,	/* -SEVM_ERR_FORMAT */
	WANT_CHECKSUM = 1u << 4,	/* -SEVM_ERR_CHECKSUM */
	WANT_VERSION = 1u << 5,	/* -SEVM_ERR_VERSION */
	WANT_PEER = 1u << 6,	/* -SEVM_ERR_PEER */
	WANT_INDOUBT = 1u << 7,	/* -SEVM_ERR_INDOUBT */
	WANT_PERM = 1u << 8,	/* -EPERM */
	WANT_OTHER = 1u << 9,	/* any other negative errno */
	WANT_STREAM_BAD = WANT_FORMAT | WANT_CHECKSUM | WANT_VERSION,
	WANT_ANY_ERR = ~WANT_OK,
};
/* The class of err (one WANT_* bit). */
unsigned int hostile_class(int err);
/* Whether err is in want; if not, a failure naming both is recorded. */
#define hostile_want(err, want, msg) hostile_want_((err), (want), (msg), __FILE__, __LINE__)
bool hostile_want_(int err, unsigned int want, const char *msg, const char *file, int line);
const char *hostile_errname(int err);

/* ---- Processes -------------------------------------------------------------- */

/*
 * Each program calls this first: when argv names a helper mode (a fake peer
 * that must be a process of its own), it runs it and exits.
 */
void hostile_child_main(int argc, char **argv, int (*own)(int argc, char **argv));
/*
 * Start this program again as a helper: /proc/self/exe MODE FD ARG READY,
 * FD being a dup of fd in the child.  Returns the pid once the helper said
 * it is ready (hostile_child_ready()), so that its start-up costs none of
 * the waits under test; -1 if it never did.
 */
pid_t hostile_spawn(const char *mode, int fd, const char *arg);
/* In a helper: tell the parent it runs (argv[4] is the pipe). */
void hostile_child_ready(char **argv);
/* Read at most n bytes per recvmsg in hw_recv() (0: any), as a slow peer. */
void hw_read_chunk(size_t n);
/*
 * The case "a peer of uid 65534" (SO_PEERCRED), this process the handoff's
 * sender or receiver: refused with -EPERM and a message naming the uid, no
 * handle, the socket left open.  Skipped, saying so, when not root (a
 * helper process must drop to that uid).
 */
void hostile_other_uid_case(bool sender, int timeout_ms);
int64_t hostile_now_ms(void);

/* ---- The handoff wire, raw ---------------------------------------------------- */

struct hw_hdr {
	uint32_t magic;
	uint16_t type;
	uint16_t nr_fds;
	uint32_t len;
	uint32_t reserved;
};

/*
 * Read one message as the library frames it.  The fds that came with it
 * are kept in fds (up to TAPE_MAX_FDS) or, fds NULL, closed; *nr_fds says
 * how many came.  Its type, or -errno: -ECONNRESET at the end of the
 * stream, -ETIMEDOUT, -EPROTO for a header that is not one.  Up to cap
 * payload bytes are kept in payload, its whole length goes in *len.
 */
int hw_recv(int sock, void *payload, size_t cap, size_t *len, int *fds, unsigned int *nr_fds,
	    int timeout_ms);
/* Write n bytes in writes of at most chunk bytes (0: any), fds with the first; 0 or -errno. */
int hw_send(int sock, const void *p, size_t n, const int *fds, unsigned int nr_fds,
	    size_t chunk);
/* A whole message with a correct header (nr_fds = n); 0 or -errno. */
int hw_send_msg(int sock, uint16_t type, const void *payload, uint32_t len, const int *fds,
		unsigned int n, size_t chunk);
/* Keep the socket open, dropping what comes, until the other end closes (30 s at most). */
void hw_drain(int sock);
/* Whether a STATE payload holds the snapshot's END section (doc/snapshot-format.md). */
bool hw_state_has_end(const uint8_t *p, size_t len);

/* ---- A tape: what a fake peer sends, with its fds and its waits ------------- */

#define TAPE_MAX_FDS	253
#define TAPE_MAX_MARKS	64

struct tape_att {
	size_t at;
	unsigned int n;
	int fds[TAPE_MAX_FDS];	/* borrowed: the case closes them */
};

struct tape_mark {
	size_t at;
	uint16_t type;
};

struct tape {
	uint8_t *b;
	size_t len, cap;
	struct tape_att *att;
	unsigned int nr_att;
	/* Before sending byte `at`, read a message of `type` from the peer. */
	struct tape_mark wait[TAPE_MAX_MARKS];
	unsigned int nr_wait;
	/* Where each message starts, and its type (the recorder fills this). */
	struct tape_mark msg[TAPE_MAX_MARKS];
	unsigned int nr_msg;
};

void tape_free(struct tape *t);
void tape_bytes(struct tape *t, const void *p, size_t n);
/*
 * A message with a correct header announcing n fds, which ride with its
 * first byte (fds NULL: announced, not sent); its offset.
 */
size_t tape_msg(struct tape *t, uint16_t type, const void *payload, uint32_t len,
		const int *fds, unsigned int n);
void tape_attach(struct tape *t, size_t at, const int *fds, unsigned int n);
void tape_wait(struct tape *t, uint16_t type);
/* Keep bytes [0, len): attachments beyond go, waits at len stay. */
void tape_truncate(struct tape *t, size_t len);
/* Append src from byte `from` on, with its attachments and waits. */
void tape_append(struct tape *t, const struct tape *src, size_t from);
/* Overwrite size bytes (1, 2, 4 or 8, little-endian) at offset. */
void tape_poke(struct tape *t, size_t at, uint64_t v, unsigned int size);
uint64_t tape_peek(const struct tape *t, size_t at, unsigned int size);

/*
 * Play a tape on sock from a thread: bytes [0, cut) in writes of at most
 * chunk bytes, reading the messages the waits name on the way.  Then it
 * closes sock — or, with stall, keeps it open, silent, until the other end
 * is closed.  A wait that reads something else (an ABORT) ends the play
 * there, closing.  The thread owns sock.
 */
struct feed {
	const struct tape *t;
	int sock;
	size_t cut;		/* SIZE_MAX: the whole tape */
	size_t chunk;		/* 0: all at once */
	bool stall;
	int wait_ms;		/* each wait for the peer; 0: 10 s */
	pthread_t thread;
	/* Results. */
	int err;		/* 0, or why the play ended early */
	uint16_t got;		/* the type a failed wait read instead */
};

void feed_start(struct feed *f);
void feed_join(struct feed *f);
/* The same, in the calling thread (a child process that plays and exits). */
void feed_run(struct feed *f);

#endif
