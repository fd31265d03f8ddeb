/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Remote migration end to end: the source and the destination VMM
 * (tests/e2e/remote-peer) each in a network namespace of its own, joined by
 * a veth pair, the stream over TCP between them.  On the SEV model (each
 * peer a host of its own) an SEV-ES guest with 4 vCPUs and private and
 * shared memory arrives page for page; a forged private page, SEND_CANCEL, a
 * policy that forbids sending and a connection dropped mid-stream each fail
 * the way doc/remote.md says, with the source able to resume.  On real KVM
 * a plain guest moves with pre-copy while it runs.
 *
 * The peers report `key=value` lines on stdout; this program judges them.
 * Without root, iproute2 or network namespaces the whole program is
 * skipped; without /dev/kvm only the plain-guest case is.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "testutil.h"

enum { SRC, DST };

/* ---- Two namespaces and a veth pair ------------------------------------------- */

static char ns_name[2][32], veth[2][16], addr[2][16], cidr[2][24];
static bool ns_made[2], veth_in_root;

static int run_ip(const char *const *argv, bool quiet)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		if (quiet)
			dup2(null, 2);
		execvp("ip", (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -1;
}

#define IP(...)	run_ip((const char *const[]){ "ip", __VA_ARGS__, NULL }, false)
#define IPQ(...) run_ip((const char *const[]){ "ip", __VA_ARGS__, NULL }, true)

static void net_down(void)
{
	if (veth_in_root)
		IPQ("link", "del", veth[SRC]);
	veth_in_root = false;
	for (int i = SRC; i <= DST; i++)
		if (ns_made[i] && !IPQ("netns", "del", ns_name[i]))
			ns_made[i] = false;
}

/* NULL when both namespaces are up and linked, else why not. */
static const char *net_up(void)
{
	unsigned int pid = (unsigned int)getpid();

	if (geteuid() != 0)
		return "not root: network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN";
	if (IPQ("-V"))
		return "no `ip` command (iproute2)";
	for (int i = SRC; i <= DST; i++) {
		snprintf(ns_name[i], sizeof(ns_name[i]), "sevm-%s-%u", i == SRC ? "src" : "dst", pid);
		snprintf(veth[i], sizeof(veth[i]), "sevm%c%u", i == SRC ? 's' : 'd', pid % 10000000);
		snprintf(addr[i], sizeof(addr[i]), "10.%u.%u.%d", (pid >> 8) & 0xff, pid & 0xff,
			 i + 1);
		snprintf(cidr[i], sizeof(cidr[i]), "%s/24", addr[i]);
		if (IP("netns", "add", ns_name[i]))
			return "`ip netns add` failed (no CAP_SYS_ADMIN, or no network namespaces)";
		ns_made[i] = true;
	}
	if (IP("link", "add", veth[SRC], "type", "veth", "peer", "name", veth[DST]))
		return "`ip link add ... type veth` failed (no CAP_NET_ADMIN, or no veth driver)";
	veth_in_root = true;
	for (int i = SRC; i <= DST; i++)
		if (IP("link", "set", veth[i], "netns", ns_name[i]))
			return "`ip link set ... netns` failed";
	veth_in_root = false;	/* each end now goes with its namespace */
	for (int i = SRC; i <= DST; i++)
		if (IP("-n", ns_name[i], "addr", "add", cidr[i], "dev", veth[i]) ||
		    IP("-n", ns_name[i], "link", "set", veth[i], "up") ||
		    IP("-n", ns_name[i], "link", "set", "lo", "up"))
			return "configuring the veth pair failed";
	return NULL;
}

/* ---- Peers: a process in a namespace, its report ------------------------------ */

static const char *peer_path;

struct peer {
	const char *name;
	pid_t pid;
	int out;		/* its stdout (a pipe) */
	int err;		/* its stderr (a memfd) */
	char text[16384];	/* stdout so far */
	size_t len;
	char errtext[8192];
	int status;		/* exit status, 128 + signal, or -1 while it runs */
};

/* The peers of the running case: shown when an assertion fails, killed if left over. */
static struct peer src, dst;
static struct peer *const cur[2] = { [SRC] = &src, [DST] = &dst };

static void dump_peers(void)
{
	for (int i = 0; i < 2; i++)
		if (cur[i]->name)
			fprintf(stderr, "---- %s: exit %d ----\n%s---- %s stderr ----\n%s",
				cur[i]->name, cur[i]->status, cur[i]->text, cur[i]->name,
				cur[i]->errtext);
}

#define expect(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			dump_peers();					\
			ck_abort_msg(__VA_ARGS__);			\
		}							\
	} while (0)

/* Kill what is left of a case (an assertion ends it early), close its fds, forget it. */
static void reap(void)
{
	for (int i = 0; i < 2; i++) {
		struct peer *p = cur[i];

		if (!p->name)
			continue;
		if (p->pid > 0 && p->status < 0) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
		}
		if (p->out >= 0)
			close(p->out);
		if (p->err >= 0)
			close(p->err);
		*p = (struct peer){ .out = -1, .err = -1 };
	}
}

static void enter_netns(int side)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/run/netns/%s", ns_name[side]);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET)) {
		fprintf(stderr, "entering %s: %s\n", path, strerror(errno));
		_exit(126);
	}
	close(fd);
}

static void peer_start(int side, const char *const *args)
{
	struct peer *p = cur[side];
	const char *name = side == SRC ? "source" : "destination";
	const char *argv[16] = { peer_path };
	int out[2];

	for (int i = 0; args[i]; i++)
		argv[i + 1] = args[i];
	*p = (struct peer){ .name = name, .out = -1, .status = -1 };
	p->err = memfd_create("peer-stderr", MFD_CLOEXEC);
	ck_assert_int_ge(p->err, 0);
	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	p->out = out[0];
	p->pid = fork();
	ck_assert_int_ge(p->pid, 0);
	if (p->pid == 0) {
		dup2(out[1], 1);
		dup2(p->err, 2);
		enter_netns(side);
		execv(peer_path, (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", peer_path, strerror(errno));
		_exit(127);
	}
	close(out[1]);
}

/* More of its stdout: false at its end, or after timeout_ms without a byte. */
static bool peer_read(struct peer *p, int timeout_ms)
{
	struct pollfd pf = { .fd = p->out, .events = POLLIN };
	ssize_t n;

	if (p->len + 1 >= sizeof(p->text) || poll(&pf, 1, timeout_ms) <= 0)
		return false;
	n = read(p->out, p->text + p->len, sizeof(p->text) - 1 - p->len);
	if (n <= 0)
		return false;
	p->len += (size_t)n;
	p->text[p->len] = '\0';
	return true;
}

/* Its whole report, its stderr and its exit status. */
static void peer_end(struct peer *p)
{
	ssize_t n;

	while (peer_read(p, 40000))
		;
	if (waitpid(p->pid, &p->status, WNOHANG) == 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &p->status, 0);
	}
	p->status = WIFEXITED(p->status) ? WEXITSTATUS(p->status) : 128 + WTERMSIG(p->status);
	n = pread(p->err, p->errtext, sizeof(p->errtext) - 1, 0);
	p->errtext[n > 0 ? n : 0] = '\0';
}

/* The value of `key` in the report: the first `key=value` token, or a whole `msg=` line. */
static bool value(const struct peer *p, const char *key, char *out, size_t n)
{
	size_t klen = strlen(key);

	for (const char *line = p->text; *line; ) {
		const char *eol = strchr(line, '\n');
		bool whole = !strncmp(line, "msg=", 4);

		if (!eol)
			eol = line + strlen(line);

		for (const char *t = line; t < eol; ) {
			const char *end = whole ? eol : memchr(t, ' ', (size_t)(eol - t));

			end = end ? end : eol;
			if ((size_t)(end - t) > klen && !strncmp(t, key, klen) && t[klen] == '=') {
				snprintf(out, n, "%.*s", (int)(end - t - (long)klen - 1), t + klen + 1);
				return true;
			}
			t = end + 1;
		}
		line = *eol ? eol + 1 : eol;
	}
	return false;
}

static const char *str(const struct peer *p, const char *key, char *buf, size_t n)
{
	expect(value(p, key, buf, n), "the %s did not report %s", p->name, key);
	return buf;
}

static long long num(const struct peer *p, const char *key)
{
	char v[64], *end;
	long long n = strtoll(str(p, key, v, sizeof(v)), &end, 0);

	expect(*v && !*end, "the %s reported %s=%s, not a number", p->name, key, v);
	return n;
}

static void expect_num(const struct peer *p, const char *key, long long want)
{
	long long n = num(p, key);

	expect(n == want, "the %s reported %s=%lld, expected %lld", p->name, key, n, want);
}

static void expect_str(const struct peer *p, const char *key, const char *want)
{
	char v[256];

	expect(!strcmp(str(p, key, v, sizeof(v)), want), "the %s reported %s=%s, expected %s",
	       p->name, key, v, want);
}

static void expect_text(const struct peer *p, const char *needle)
{
	expect(strstr(p->text, needle), "the %s's report lacks \"%s\"", p->name, needle);
}

/* ---- One migration: the destination listens, the source connects ------------- */

/* Both peers run their modes to the end; guest is "sev" or "kvm"; tag: the first attempt's. */
static void migrate(const char *guest, const char *dst_mode,
		    const char *src_mode, const char *arg, bool small, const char *tag)
{
	const char *dargs[8] = { "recv", guest, dst_mode }, *sargs[12] = { "send", guest, src_mode };
	int nd = 3, ns = 3;
	char port[16], key[32];

	if (arg) {
		dargs[nd++] = sargs[ns++] = "--arg";
		dargs[nd++] = sargs[ns++] = arg;
	}
	if (small)
		dargs[nd++] = sargs[ns++] = "--small";
	peer_start(DST, dargs);
	while (!value(&dst, "port", port, sizeof(port)))
		expect(peer_read(&dst, 20000), "the destination did not listen");
	sargs[ns++] = "--to";
	sargs[ns++] = addr[DST];
	sargs[ns++] = "--port";
	sargs[ns++] = port;
	peer_start(SRC, sargs);
	peer_end(&src);
	peer_end(&dst);
	expect(src.status == 0 && dst.status == 0, "exit status: source %d, destination %d",
	       src.status, dst.status);
	/* The stream crossed the veth pair, from one namespace into the other. */
	expect_str(&src, "local", addr[SRC]);
	snprintf(key, sizeof(key), "%sfrom", tag);
	expect_str(&dst, key, addr[SRC]);
}

static void setup(void)
{
	reap();
}

/* The source's plaintext, hashed before it left, equals the destination's after. */
static void expect_same_plaintext(const char *dst_key)
{
	char a[32], b[32];

	str(&src, "plain_sum", a, sizeof(a));
	str(&dst, dst_key, b, sizeof(b));
	expect(strcmp(a, "none") && !strcmp(a, b), "plaintext sums: source %s, destination %s", a, b);
}

/* The source after a failed migration: the firmware runs its guest again, memory intact. */
static void expect_source_resumes(const char *tag)
{
	char key[32];

	snprintf(key, sizeof(key), "%scancel_rc", tag);
	expect_num(&src, key, 0);
	snprintf(key, sizeof(key), "%sstate", tag);
	expect_num(&src, key, 3);	/* RUNNING */
	snprintf(key, sizeof(key), "%scheck", tag);
	expect_num(&src, key, 0);
}

START_TEST(sev_es_guest_arrives_page_for_page)
{
	migrate("sev", "ok", "ok", NULL, false, "");
	expect_num(&src, "new_rc", 0);
	expect_num(&src, "pages_rc", 0);
	expect_num(&src, "final_rc", 0);
	/* One pass while it ran, the final one: every page twice. */
	expect_num(&src, "passes", 2);
	expect_num(&src, "sent_private", 2 * 768);
	expect_num(&src, "sent_shared", 2 * 256);
	expect_num(&src, "state", 6);	/* SENT */
	expect_str(&src, "verdict", "Y");
	expect_num(&dst, "recv_rc", 0);
	expect_num(&dst, "passes", 2);
	expect_num(&dst, "got_private", 2 * 768);
	expect_num(&dst, "got_shared", 2 * 256);
	expect_num(&dst, "private_map", 768);
	expect_num(&dst, "gstate", 3);
	expect_num(&dst, "nr_vmsas", 4);
	expect_num(&dst, "state", 3);
	/* Every private page by DBG_DECRYPT, every shared one as it is: the pattern. */
	expect_num(&dst, "check", 0);
	expect_same_plaintext("plain_sum");
}
END_TEST

START_TEST(tampered_page_is_refused_and_left_untouched)
{
	migrate("sev", "fail", "tamper", "5", false, "");
	expect_num(&src, "tampered_gfn", 5);
	/* The reader took the forged record (its CRC agrees); the firmware's MAC did not. */
	expect_num(&dst, "recv_rc", -EIO);
	expect_num(&dst, "recv_fw", 11);
	expect_str(&dst, "recv_fw_name", "BAD_MEASUREMENT");
	expect_text(&dst, "gfn 0x5");
	/* Pages 0-4 of the record went in, the forged one and the rest did not. */
	expect_num(&dst, "watch_untouched", 1);
	expect_num(&dst, "before_changed", 5);
	expect_num(&dst, "after_changed", 0);
	expect_num(&dst, "gstate", 5);	/* RUPDATE: it must not run */
	expect_num(&src, "pages_rc", 0);
	expect_str(&src, "verdict", "N");
	expect_source_resumes("");
}
END_TEST

START_TEST(send_cancel_resumes_the_source_and_it_can_send_again)
{
	migrate("sev", "cancel-then-ok", "cancel-then-ok", NULL, false, "1.");
	expect_num(&src, "1.pages_rc", 0);
	expect_num(&dst, "1.recv_rc", -SEVM_ERR_PEER);
	expect_text(&dst, "cancelled");
	expect_num(&dst, "1.gstate", 5);
	expect_str(&src, "1.verdict", "N");
	expect_source_resumes("1.");
	/* A second SEND_START to the same destination, a new VM there: it arrives. */
	expect_str(&dst, "2.from", addr[SRC]);
	expect_num(&src, "2.new_rc", 0);
	expect_num(&src, "2.final_rc", 0);
	expect_num(&src, "2.state", 6);
	expect_str(&src, "2.verdict", "Y");
	expect_num(&dst, "2.recv_rc", 0);
	expect_num(&dst, "2.nr_vmsas", 4);
	expect_num(&dst, "2.state", 3);
	expect_num(&dst, "2.check", 0);
	expect_same_plaintext("2.plain_sum");
}
END_TEST

START_TEST(policy_nosend_is_refused_at_send_start)
{
	migrate("sev", "ok", "nosend", NULL, false, "");
	expect_num(&src, "new_rc", -EIO);
	expect_num(&src, "new_fw", 7);
	expect_str(&src, "new_fw_name", "POLICY_FAILURE");
	expect_str(&src, "handle", "null");
	expect_num(&src, "state", 3);
	expect_num(&src, "check", 0);
	expect_str(&src, "verdict", "N");
	/* Nothing was sent: not even the stream header. */
	expect_num(&dst, "recv_rc", -SEVM_ERR_FORMAT);
	expect_text(&dst, "offset 0 before END");
	expect(num(&dst, "gstate") != 3, "the destination guest runs");
}
END_TEST

START_TEST(dropped_connection_is_reported_and_the_source_resumes)
{
	char v[32];
	long long rc;

	/* 1 MiB in: inside the first PRIVATE record, after the SESSION. */
	migrate("sev", "drop", "drop", "1048576", true, "");
	expect_num(&dst, "bytes_read", 1048576);
	expect_num(&dst, "recv_rc", -SEVM_ERR_FORMAT);
	expect_text(&dst, "inside a record, before END");
	expect_num(&dst, "gstate", 5);
	expect_num(&src, "new_rc", 0);
	rc = num(&src, "pages_rc");
	if (!rc)
		rc = num(&src, "final_rc");
	expect(rc == -EPIPE || rc == -ECONNRESET, "the source's write failed with %lld", rc);
	expect_text(&src, "the receiver is gone");
	expect(!value(&src, "final_rc", v, sizeof(v)) || strcmp(v, "0"),
	       "the final pass succeeded into a dropped connection");
	expect_str(&src, "verdict", "-");
	expect_source_resumes("");
}
END_TEST

START_TEST(plain_kvm_guest_moves_with_precopy)
{
	char a[64], b[64];
	long long passes;

	migrate("kvm", "ok", "ok", NULL, false, "");
	expect_num(&src, "new_rc", 0);
	expect_num(&src, "precopy_rc", 0);
	passes = num(&src, "passes");
	expect(passes >= 1, "%lld pre-copy passes", passes);
	/* Pass 0 is every page of 64 MiB; the guest dirtied some meanwhile. */
	expect_num(&src, "pass0_shared", 16384);
	expect(num(&src, "pass0_dirty") >= 1, "the dirty log saw nothing");
	snprintf(a, sizeof(a), "pass%lld_shared", passes);
	expect(num(&src, a) < 16384, "the final pass sent every page again");
	expect_num(&src, "final_rc", 0);
	expect_str(&src, "verdict", "Y");
	expect_num(&dst, "recv_rc", 0);
	expect_num(&dst, "vmm_len", 8);
	expect(!strcmp(str(&src, "beats", a, sizeof(a)), str(&dst, "beats", b, sizeof(b))),
	       "beats: source %s, destination %s", a, b);
	expect(!strcmp(str(&src, "sum", a, sizeof(a)), str(&dst, "sum", b, sizeof(b))),
	       "RAM checksums: source %s, destination %s", a, b);
	/* It continues from exactly those beats, none lost or repeated. */
	expect_num(&dst, "start_rc", 0);
	expect_num(&dst, "runs", 1);
	expect_num(&dst, "errors", 0);
}
END_TEST

static void on_signal(int sig)
{
	reap();
	net_down();
	signal(sig, SIG_DFL);
	raise(sig);
}

static bool kvm_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		printf("SKIP plain_kvm_guest_moves_with_precopy: /dev/kvm cannot be opened "
		       "read-write (%s)\n", strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

int main(int argc, char **argv)
{
	Suite *s = suite_create("remote-netns");
	TCase *sev = tcase_create("sev-es on the model"), *kvm;
	const char *why;

	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-remote-peer\n", argv[0]);
		return 2;
	}
	peer_path = argv[1];
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	atexit(net_down);
	why = net_up();
	if (why) {
		net_down();
		printf("SKIP: %s\n", why);
		return TU_SKIP;
	}
	printf("namespaces %s (%s) and %s (%s)\n", ns_name[SRC], addr[SRC], ns_name[DST],
	       addr[DST]);
	tcase_set_timeout(sev, 60);
	tcase_add_checked_fixture(sev, setup, reap);
	tcase_add_test(sev, sev_es_guest_arrives_page_for_page);
	tcase_add_test(sev, tampered_page_is_refused_and_left_untouched);
	tcase_add_test(sev, send_cancel_resumes_the_source_and_it_can_send_again);
	tcase_add_test(sev, policy_nosend_is_refused_at_send_start);
	tcase_add_test(sev, dropped_connection_is_reported_and_the_source_resumes);
	suite_add_tcase(s, sev);
	if (kvm_usable()) {
		kvm = tcase_create("plain on kvm");
		tcase_set_timeout(kvm, 60);
		tcase_add_checked_fixture(kvm, setup, reap);
		tcase_add_test(kvm, plain_kvm_guest_moves_with_precopy);
		suite_add_tcase(s, kvm);
	}
	return tu_run(s);
}
