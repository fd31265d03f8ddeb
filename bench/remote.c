/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-remote: remote migration (issue 6 item 8), each figure next to its
 * baseline measured in the same run.
 *
 * 1. Private pages of an SEV guest, on the SEV model sevsim (no SEV hardware
 *    here): sevm_send_pages() against a raw loop of the same
 *    sevm_sev_send_update_data() calls, one per page, written to the same
 *    TCP connection, which a thread drains.  Sender side; the library on both
 *    ends is measured too (remote-private.c).
 * 2. Shared pages (a plain guest on real KVM): sevm_send_final() into a full
 *    sevm_recv_run() over TCP loopback, against the raw bandwidth of the
 *    same kind of connection, and where the time goes (remote-shared.c).
 * 3. Pre-copy while a guest keeps writing pages at a known rate (real KVM,
 *    dirty log): pass by pass, and whether it converged (remote-precopy.c).
 *
 *   bench-remote [--quick] [--runs N] [--private-pages N] [--mem-mib N]
 *                [--parts private,shared,precopy] [--verbose]
 *
 * Without /dev/kvm, parts 2 and 3 are skipped with the reason printed (exit 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "remote.h"

/* ---- Small things ------------------------------------------------------------ */

uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double median(const double *v, unsigned int n)
{
	double s[MAX_RUNS];

	if (!n)
		return NAN;
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

double min_of(const double *v, unsigned int n)
{
	double m = n ? v[0] : NAN;

	for (unsigned int i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

double max_of(const double *v, unsigned int n)
{
	double m = n ? v[0] : NAN;

	for (unsigned int i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

double mb_per_s(uint64_t bytes, double ns)
{
	return (double)bytes / ns * 1e3;
}

void die(const char *what, int err)
{
	fprintf(stderr, "bench-remote: %s: %s (%s)\n", what, strerror(err < 0 ? -err : err),
		sevm_last_error());
	exit(1);
}

/* ---- Sockets ---------------------------------------------------------------------- */

int tcp_pair(int *tx, int *rx)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), err = 0;

	*tx = *rx = -1;
	if (l < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &alen))
		err = -errno;
	if (!err)
		*tx = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!err && (*tx < 0 || connect(*tx, (struct sockaddr *)&a, sizeof(a))))
		err = -errno;
	if (!err && (*rx = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0)
		err = -errno;
	close(l);
	if (err) {
		if (*tx >= 0)
			close(*tx);
		*tx = *rx = -1;
	}
	return err;
}

static void *drain_thread(void *arg)
{
	struct drain *d = arg;
	uint64_t cpu0 = thread_cpu_ns();
	char *buf = malloc(CHUNK);

	for (ssize_t n = 1; buf && n > 0;) {
		n = read(d->fd, buf, CHUNK);
		if (n < 0 && errno == EINTR)
			n = 1;
		else if (n > 0) {
			d->bytes += (uint64_t)n;
			d->last_ns = now_ns();
		}
	}
	d->cpu_ns = thread_cpu_ns() - cpu0;
	free(buf);
	return NULL;
}

int drain_start(struct drain *d, int fd)
{
	*d = (struct drain){ .fd = fd };
	return -pthread_create(&d->thread, NULL, drain_thread, d);
}

void drain_join(struct drain *d)
{
	pthread_join(d->thread, NULL);
}

/* ---- The run ---------------------------------------------------------------------- */

static void print_header(const struct config *cfg)
{
	struct utsname u;
	char model[128] = "?", line[256];
	FILE *f = fopen("/proc/cpuinfo", "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
			snprintf(model, sizeof(model), "%s", strchr(line, ':') + 2);
			model[strcspn(model, "\n")] = 0;
			break;
		}
	if (f)
		fclose(f);
	uname(&u);
	printf("bench-remote%s: %ld CPUs (%s), Linux %s; %u runs per comparison, medians\n",
	       cfg->quick ? " --quick" : "", sysconf(_SC_NPROCESSORS_ONLN), model, u.release,
	       cfg->runs);
	printf("each run starts when the CPUs were >= %.0f %% idle over %d ms (or its wait ran out)\n",
	       QUIET_IDLE * 100, QUIET_WINDOW_MS);
}

/* Whether real KVM is here; why not otherwise. */
static bool have_kvm(char *why, size_t len)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, len, "/dev/kvm: %s", strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

static int kvm_parts(const struct config *cfg, struct shared_result *sr,
		     struct precopy_result *pr)
{
	struct tinyvm src, dst;
	uint64_t t0 = now_ns();
	int err = guest_create(&src, cfg->shared_bytes);

	if (!err)
		err = guest_create_dest(&dst, cfg->shared_bytes);
	if (err)
		die("creating the source and destination guests", err);
	printf("\nguest RAM %llu MiB on both sides, faulted in beforehand (%.1f s)\n",
	       (unsigned long long)(cfg->shared_bytes >> 20), (double)(now_ns() - t0) / 1e9);
	if (cfg->parts & PART_SHARED)
		err = bench_shared(cfg, &src, &dst, sr);
	if (!err && (cfg->parts & PART_PRECOPY))
		err = bench_precopy(cfg, &src, &dst, pr);
	tinyvm_destroy(&dst);
	tinyvm_destroy(&src);
	return err;
}

static void print_results(const struct private_result *p, const struct shared_result *s,
			  const struct precopy_result *c)
{
	double overhead = p->ran ? p->ours_ns_page / p->raw_ns_page : NAN;
	double shared = s->ran ? s->ours_mb_s / s->socket_mb_s : NAN;

	printf("\n");
	if (p->ran)
		printf("private pages (SEV model): library %.2f us/page, raw loop %.2f us/page, "
		       "%+.0f ns/page = %.3fx (target <= 1.05)\n", p->ours_ns_page / 1e3,
		       p->raw_ns_page / 1e3, p->ours_ns_page - p->raw_ns_page, overhead);
	if (s->ran)
		printf("shared pages end to end: %.0f MB/s, the TCP connection alone %.0f MB/s = "
		       "%.3f (target >= 0.80)\n", s->ours_mb_s, s->socket_mb_s, shared);
	if (c->ran)
		printf("pre-copy: %u of %u scenarios converged\n", c->converged, c->scenarios);
	if (quiet_busy_runs() || quiet_waited_ms())
		printf("(%u runs started on a busy machine; waited %.1f s in all for quiet)\n",
		       quiet_busy_runs(), quiet_waited_ms() / 1e3);
	if (p->ran)
		printf("RESULT private_pages_per_s=%.0f\n", 1e9 / p->ours_ns_page);
	if (s->ran)
		printf("RESULT shared_mb_per_s=%.0f\n", s->ours_mb_s);
	if (c->ran)
		printf("RESULT precopy_converged=%u/%u\n", c->converged, c->scenarios);
	printf("RESULT overhead_vs_raw=%.3f\n", overhead);
	printf("RESULT shared_vs_socket=%.3f\n", shared);
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [--quick] [--runs N] [--private-pages N] [--mem-mib N] "
		"[--parts private,shared,precopy] [--verbose]\n", argv0);
}

/* "private,shared,precopy" in any order and number: PART_* bits, 0 if a name is wrong. */
static unsigned int parse_parts(const char *list)
{
	static const char *const names[] = { "private", "shared", "precopy" };
	unsigned int parts = 0;

	while (*list) {
		size_t len = strcspn(list, ",");
		unsigned int i = 0;

		while (i < 3 && (strlen(names[i]) != len || strncmp(names[i], list, len)))
			i++;
		if (i == 3)
			return 0;
		parts |= 1u << i;
		list += len + (list[len] == ',');
	}
	return parts;
}

static int parse(int argc, char **argv, struct config *cfg)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "runs", required_argument, NULL, 'n' },
		{ "private-pages", required_argument, NULL, 'p' },
		{ "mem-mib", required_argument, NULL, 'm' },
		{ "verbose", no_argument, NULL, 'V' },
		{ "parts", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	const char *parts = "private,shared,precopy";
	long runs = -1, pages = -1, mib = -1;
	int o;

	*cfg = (struct config){ 0 };
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'q': cfg->quick = true; break;
		case 'n': runs = strtol(optarg, NULL, 0); break;
		case 'p': pages = strtol(optarg, NULL, 0); break;
		case 'm': mib = strtol(optarg, NULL, 0); break;
		case 'V': cfg->verbose = true; break;
		case 'P': parts = optarg; break;
		default: return -EINVAL;
		}
	}
	if (optind != argc)
		return -EINVAL;
	cfg->runs = cfg->quick ? 11 : 21;
	cfg->private_pages = cfg->quick ? 4096 : 16384;
	cfg->e2e_runs = cfg->quick ? 1 : 3;
	cfg->shared_bytes = (cfg->quick ? 256 : 1024) * MIB;
	if (runs >= 0)
		cfg->runs = (unsigned int)runs;
	if (pages >= 0)
		cfg->private_pages = (uint64_t)pages;
	if (mib >= 0)
		cfg->shared_bytes = (uint64_t)mib * MIB;
	cfg->parts = parse_parts(parts);
	if (!cfg->parts || !cfg->runs || cfg->runs > MAX_RUNS || cfg->private_pages < 256 ||
	    cfg->private_pages % 256 || cfg->shared_bytes < 64 * MIB)
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	struct private_result pr = { 0 };
	struct shared_result sr = { 0 };
	struct precopy_result cr = { 0 };
	struct config cfg;
	char why[256];
	int err;

	/* A peer that goes away must show up as an error, not kill the benchmark. */
	signal(SIGPIPE, SIG_IGN);
	if (parse(argc, argv, &cfg)) {
		usage(argv[0]);
		return 2;
	}
	quiet_set(cfg.quick ? 150 : 2000, cfg.quick ? 3000 : 120000);
	print_header(&cfg);
	err = cfg.parts & PART_PRIVATE ? bench_private(&cfg, &pr) : 0;
	if (!err && (cfg.parts & (PART_SHARED | PART_PRECOPY))) {
		if (have_kvm(why, sizeof(why)))
			err = kvm_parts(&cfg, &sr, &cr);
		else
			printf("\nshared pages and pre-copy: SKIPPED, they need real KVM (%s)\n",
			       why);
	}
	print_results(&pr, &sr, &cr);
	return err ? 1 : 0;
}
