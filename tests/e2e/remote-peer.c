/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * remote-peer: one VMM of a remote migration, run by tests/e2e/test-remote
 * inside a network namespace of its own.
 *
 *   remote-peer recv sev|kvm MODE [--arg N] [--small]
 *   remote-peer send sev|kvm MODE --to IPV4 --port N [--arg N] [--small]
 *
 * SEV-ES guest on the SEV model (each process is a host of its own):
 *   recv ok              receive, check every page, report
 *   recv fail            receive, expect it to fail; report whether the
 *                        pages around gfn --arg were written
 *   recv cancel-then-ok  the first source cancels, the second one succeeds
 *   recv drop            read --arg bytes of the stream, then reset the connection
 *   send ok              migrate: SEND_START, a pass, the final pass
 *   send tamper          forge page --arg of the first PRIVATE record, then cancel
 *   send cancel-then-ok  a pass, SEND_CANCEL; then migrate again from the start
 *   send nosend          a guest whose policy forbids sending
 *   send drop            migrate into a destination that hangs up; cancel
 * Plain guest on real KVM (tinyvm), with pre-copy:
 *   recv ok / send ok
 *
 * Every report line is `key=value ...` on stdout; `msg=...` lines hold a
 * whole message.  The test judges; the exit status is 0 whenever the mode
 * ran to its end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "remote-peer.h"

#define SMALL_BUF	(64 << 10)
#define PEER_TIMEOUT_S	30	/* a hung peer dies rather than hang the test */
#define IO_TIMEOUT_S	10

void rp_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

void rp_say_rc(const char *tag, const char *what, int rc, uint32_t fw)
{
	const char *name = fw ? sevm_fw_status_name(fw) : NULL;

	rp_say("%s%s_rc=%d %s%s_fw=%u %s%s_fw_name=%s", tag, what, rc, tag, what, fw, tag, what,
	       name ? name : "none");
	if (rc)
		rp_say("msg=%s%s: %s", tag, what, sevm_last_error());
}

static void set_timeouts(int s)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };

	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Before listen or connect, so that TCP sizes its window for them. */
static int small(int s, bool on)
{
	int n = SMALL_BUF;

	if (!on)
		return 0;
	if (setsockopt(s, SOL_SOCKET, SO_SNDBUF, &n, sizeof(n)) ||
	    setsockopt(s, SOL_SOCKET, SO_RCVBUF, &n, sizeof(n)))
		return -errno;
	return 0;
}

static void say_addr(const char *key, const struct sockaddr_in *a)
{
	char ip[INET_ADDRSTRLEN] = "?";

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	rp_say("%s=%s", key, ip);
}

int rp_listen(bool small_buffers)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int one = 1, l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0)
		return -errno;
	if (small(l, small_buffers) ||
	    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len)) {
		int err = -errno;

		close(l);
		return err;
	}
	rp_say("port=%d", ntohs(a.sin_port));
	return l;
}

int rp_accept(int listener, const char *tag)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	char key[32];
	int s = accept4(listener, (struct sockaddr *)&a, &len, SOCK_CLOEXEC);

	if (s < 0)
		return -errno;
	set_timeouts(s);
	snprintf(key, sizeof(key), "%sfrom", tag);
	say_addr(key, &a);
	return s;
}

int rp_connect(const char *ip, int port, bool small_buffers)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -errno;
	errno = 0;
	if (!ip || inet_pton(AF_INET, ip, &a.sin_addr) != 1 || small(s, small_buffers) ||
	    connect(s, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(s, (struct sockaddr *)&a, &len)) {
		int err = errno ? -errno : -EINVAL;

		close(s);
		return err;
	}
	set_timeouts(s);
	say_addr("local", &a);
	return s;
}

void rp_verdict_send(int sock, bool ok)
{
	char c = ok ? 'Y' : 'N', buf[1 << 16];

	if (send(sock, &c, 1, MSG_NOSIGNAL) != 1)
		rp_say("msg=verdict not sent: %s", strerror(errno));
	shutdown(sock, SHUT_WR);
	/* Whatever the source still writes (a CANCEL record) finds a reader. */
	while (read(sock, buf, sizeof(buf)) > 0)
		;
}

char rp_verdict_recv(int sock)
{
	char c;

	for (;;) {
		ssize_t n = read(sock, &c, 1);

		if (n == 1 && (c == 'Y' || c == 'N'))
			return c;
		if (n < 0 && errno == EINTR)
			continue;
		return '-';
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: remote-peer send|recv sev|kvm MODE [--to IP --port N] "
		"[--arg N] [--small]\n");
	return 2;
}

static int parse(int argc, char **argv, struct rp_args *a)
{
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--to") && i + 1 < argc)
			a->to = argv[++i];
		else if (!strcmp(argv[i], "--port") && i + 1 < argc)
			a->port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--arg") && i + 1 < argc)
			a->arg = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--small"))
			a->small_buffers = true;
		else
			return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct rp_args a = { 0 };
	bool send_side, sev;

	if (argc < 4 || parse(argc, argv, &a))
		return usage();
	send_side = !strcmp(argv[1], "send");
	sev = !strcmp(argv[2], "sev");
	a.mode = argv[3];
	if ((!send_side && strcmp(argv[1], "recv")) || (!sev && strcmp(argv[2], "kvm")) ||
	    (send_side && (!a.to || !a.port)))
		return usage();
	/* A write to a vanished peer is an error to report, not a death. */
	signal(SIGPIPE, SIG_IGN);
	alarm(PEER_TIMEOUT_S);
	if (sev)
		return send_side ? rp_sev_send(&a) : rp_sev_recv(&a);
	return send_side ? rp_kvm_send(&a) : rp_kvm_recv(&a);
}
