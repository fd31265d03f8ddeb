/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The conformance cases.  Every case of the kernel selftest
 * tools/testing/selftests/kvm/x86/sev_migrate_tests.c is here, re-expressed
 * through libsevmigrate's public API, with what the selftest leaves out
 * asserted too: where each context is afterwards, and the library's message
 * for each refusal.  Then ours: rollback, double move, a dead source, ASID
 * exhaustion, the fd-0 quirk.  Expected errnos are the kernel's
 * (sev-kernel-rules.md §1, §2).  Where the kernel's version decides — a
 * moved-from VM refuses every ioctl with EIO on v5.16..v6.16 — the model
 * runs both behaviours and the real kernel is asked which one it has.
 *
 * Raw ioctls go through the library's seam (core/seam.h), so that the model
 * serves them, and only where the public API has no call: KVM_CREATE_VM for
 * plain VMs, KVM_CREATE_VCPU, closing KVM fds, and the selftest's sweep of
 * every command id over a mirror.
 *
 * A library message that says less than the case knows is not a failure
 * here: it is printed as a GAP line, once per case and subject.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "abi/compat.h"
#include "core/seam.h"
#include "conformance.h"
#include "testutil.h"

#define PAGE		4096u
#define MEM_LEN		(4 * PAGE)
#define NR_VCPUS	4	/* NR_MIGRATE_TEST_VCPUS */
#define NR_DST		3	/* NR_MIGRATE_TEST_VMS */
#define POLICY_ES	0x4u	/* guest policy bit: SEV-ES required (SEV API, guest policy) */
#define GSTATE_LUPDATE	1u	/* SEV API guest states */
#define GSTATE_RUNNING	3u
#define FEW_ASIDS	16	/* the most ASIDs the kernel back end will use up */
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* ---- Reporting ------------------------------------------------------------ */

static struct conf_backend *cur_b;	/* the case running now; one at a time */
static const struct conf_case *cur_c;
static int report_fd = -1;		/* in a case's child: the pipe to the test */
static volatile pid_t watched;		/* a case's child, which the watchdog ends too */
static char watchdog_msg[256];

#define MAX_GAPS	64
static char gaps_seen[MAX_GAPS][160];	/* "<backend>/<case>/<subject>" of each GAP printed */
static unsigned int nr_gaps;

static const char *case_name(void)
{
	return cur_c ? cur_c->name : "(setup)";
}

static const char *backend_name(void)
{
	return cur_b ? cur_b->name : "(no back end)";
}

/* One line, one write(): lines from a child and its own child do not interleave. */
static void put_line(int fd, const char *tag, const char *text)
{
	char line[1400];
	int n = snprintf(line, sizeof(line), "%s %s\n", tag, text);

	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	(void)!write(fd, line, (size_t)n);
}

static bool first_gap(const char *subject)
{
	char key[sizeof(gaps_seen[0])];

	snprintf(key, sizeof(key), "%s/%s/%s", backend_name(), case_name(), subject);
	for (unsigned int i = 0; i < nr_gaps && i < MAX_GAPS; i++)
		if (!strcmp(gaps_seen[i], key))
			return false;
	if (nr_gaps < MAX_GAPS)
		strcpy(gaps_seen[nr_gaps], key);
	nr_gaps++;
	return true;
}

/* "INFO|GAP <case> on <backend>: [subject: ]text"; a child passes it to the test. */
static void emit(const char *tag, const char *subject, const char *text)
{
	char line[1400];

	if (report_fd >= 0) {
		snprintf(line, sizeof(line), "%s\t%s", subject ? subject : "", text);
		put_line(report_fd, tag, line);
		return;
	}
	if (subject && !first_gap(subject))
		return;
	printf("%s %s on %s: %s%s%s\n", tag, case_name(), backend_name(),
	       subject ? subject : "", subject ? ": " : "", text);
	fflush(stdout);
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	emit("INFO", NULL, text);
}

static void gap(const char *subject, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gap(const char *subject, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	emit("GAP", subject, text);
}

unsigned int conf_nr_gaps(void)
{
	return nr_gaps;
}

/*
 * A failed expectation.  In the test process it fails the Check test; in a
 * case's child it goes up the pipe and ends the child (a Check failure
 * there would unwind into a copy of the test runner).
 */
static void conf_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
static void conf_fail(const char *file, int line, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;
	int n = snprintf(msg, sizeof(msg), "%s:%d: ", file, line);

	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	if (report_fd >= 0) {
		put_line(report_fd, "FAIL", msg);
		_exit(EXIT_FAILURE);
	}
	printf("FAIL %s on %s: %s\n", case_name(), backend_name(), msg);
	fflush(stdout);
	ck_abort_msg("%s on %s: %s", case_name(), backend_name(), msg);
	abort();
}

#define EXPECT(cond, ...)							\
	do {									\
		if (!(cond))							\
			conf_fail(__FILE__, __LINE__, __VA_ARGS__);		\
	} while (0)

/* A library call that returns err (0, or a negative errno). */
#define EXPECT_ERR(call, err)							\
	do {									\
		int r_ = (call);						\
		EXPECT(r_ == (err), "%s = %d (%s), expected %d (%s); message: %s",	\
		       #call, r_, sevm_strerror(r_), (err), sevm_strerror(err),	\
		       sevm_last_error());					\
	} while (0)
#define EXPECT_OK(call)	EXPECT_ERR(call, 0)

/* The library's message for the failure just returned says part. */
#define EXPECT_MSG(part)							\
	EXPECT(strstr(sevm_last_error(), (part)),				\
	       "the message \"%s\" does not say \"%s\"", sevm_last_error(), (part))

/* The message should say part; when it does not, a GAP line. */
static void want_msg(const char *part, const char *subject)
{
	if (!strstr(sevm_last_error(), part))
		gap(subject, "\"%s\"", sevm_last_error());
}

/* The message says part, but as one cause among several the library could rule out. */
#define VAGUE_MSG(part, subject, how)						\
	do {									\
		EXPECT_MSG(part);						\
		gap(subject, "\"%s\" names it only among other causes; %s",	\
		    sevm_last_error(), how);					\
	} while (0)

/* ---- The watchdog and children -------------------------------------------- */

static void watchdog(int sig)
{
	pid_t child = watched;

	(void)sig;
	if (child > 0)
		kill(child, SIGKILL);
	(void)!write(STDOUT_FILENO, watchdog_msg, strlen(watchdog_msg));
	_exit(EXIT_FAILURE);
}

/* Pass on what a child reported; its first FAIL into failed. */
static void relay(char *buf, char *failed, size_t len)
{
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char *text = strchr(line, ' '), *tab;

		if (!text)
			continue;
		*text++ = '\0';
		if (!strcmp(line, "FAIL")) {
			if (!failed[0])
				snprintf(failed, len, "%s", text);
			continue;
		}
		tab = strchr(text, '\t');
		if (!tab)
			continue;
		*tab = '\0';
		emit(line, text[0] ? text : NULL, tab + 1);
	}
}

typedef void child_fn(struct conf_backend *b);

/*
 * Run fn in a forked child: for what must not touch the test process (its
 * fd 0), or needs a second VMM process.  A VM fd works only in the process
 * that created it (kvm_vm_ioctl(): another mm is -EIO), so the child makes
 * its own VMs.  Its failures and notes come back as the test's own.
 */
static void in_child(struct conf_backend *b, child_fn *fn)
{
	static char buf[16384];
	char failed[1400] = "", sink[512];
	size_t used = 0;
	ssize_t n;
	int p[2], st;
	pid_t pid;

	EXPECT(pipe2(p, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	EXPECT(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		close(p[0]);
		report_fd = p[1];
		fn(b);
		_exit(EXIT_SUCCESS);
	}
	close(p[1]);
	watched = pid;
	/* until every writer (the child, and any child of it) is gone */
	for (;;) {
		bool room = used < sizeof(buf) - 1;

		n = read(p[0], room ? buf + used : sink, room ? sizeof(buf) - 1 - used : sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (room)
			used += (size_t)n;
	}
	buf[used] = '\0';
	close(p[0]);
	EXPECT(waitpid(pid, &st, 0) == pid, "waitpid: %s", strerror(errno));
	watched = 0;
	relay(buf, failed, sizeof(failed));
	EXPECT(!failed[0], "in the child: %s", failed);
	EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child ended with status 0x%x", st);
}

/* ---- VMs and guests ----------------------------------------------------------- */

enum guest_kind { SEV_LEGACY, ES_LEGACY, SEV_TYPED, ES_TYPED, NR_KINDS };

static const struct {
	const char *name;
	enum sevm_sev_type type;
	bool legacy;	/* a default VM and KVM_SEV_INIT / KVM_SEV_ES_INIT, as the selftest makes */
	bool es;
} kinds[NR_KINDS] = {
	[SEV_LEGACY] = { "SEV (KVM_SEV_INIT)", SEVM_SEV, true, false },
	[ES_LEGACY] = { "SEV-ES (KVM_SEV_ES_INIT)", SEVM_SEV_ES, true, true },
	[SEV_TYPED] = { "SEV (KVM_X86_SEV_VM)", SEVM_SEV, false, false },
	[ES_TYPED] = { "SEV-ES (KVM_X86_SEV_ES_VM)", SEVM_SEV_ES, false, true },
};

/* The kernel back end runs only with the SEV VM type; SEV-ES may be missing. */
static bool kind_usable(const struct conf_backend *b, enum guest_kind k)
{
	return !kinds[k].es || b->has_es;
}

/* KVM_CREATE_VM's type for a guest of kind k, and for a MOVE destination of it (step 4). */
static int kind_vm_type(enum guest_kind k)
{
	return kinds[k].legacy ? KVM_X86_DEFAULT_VM : (int)kinds[k].type;
}

struct guest {
	enum guest_kind kind;
	int vm;
	int vcpu[NR_VCPUS];
	unsigned int nr_vcpus;
	int sev;		/* the /dev/sev LAUNCH_START took, or -1 */
	uint8_t *mem;		/* MEM_LEN bytes of guest memory, or NULL */
	uint32_t handle;	/* from LAUNCH_START */
};

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 13 + 5);
}

/* No assertions: the movers' threads call it. */
static int vm_new(int type)
{
	int kvm = sevm__open("/dev/kvm", O_RDWR), vm;

	if (kvm < 0)
		return kvm;
	vm = sevm__ioctl(kvm, KVM_CREATE_VM, (void *)(uintptr_t)type);
	sevm__close(kvm);
	return vm;
}

static void guest_blank(struct guest *g, enum guest_kind k)
{
	memset(g, 0, sizeof(*g));
	g->kind = k;
	g->vm = -1;
	g->sev = -1;
	for (unsigned int i = 0; i < NR_VCPUS; i++)
		g->vcpu[i] = -1;
}

static void vcpus_add(struct guest *g, unsigned int n)
{
	EXPECT(g->nr_vcpus + n <= NR_VCPUS, "%u vCPUs", g->nr_vcpus + n);
	for (unsigned int i = 0; i < n; i++, g->nr_vcpus++) {
		g->vcpu[g->nr_vcpus] = sevm__ioctl(g->vm, KVM_CREATE_VCPU,
						   (void *)(uintptr_t)g->nr_vcpus);
		EXPECT(g->vcpu[g->nr_vcpus] >= 0, "KVM_CREATE_VCPU %u: %s", g->nr_vcpus,
		       sevm_last_error());
	}
}

/* A VM for kind k, not SEV, with n vCPUs: a destination. */
static void plain_vm(struct guest *g, enum guest_kind k, unsigned int n)
{
	guest_blank(g, k);
	g->vm = vm_new(kind_vm_type(k));
	EXPECT(g->vm >= 0, "KVM_CREATE_VM %d: %s", kind_vm_type(k), sevm_last_error());
	vcpus_add(g, n);
}

/* An initialised guest of kind k with n vCPUs (sev_vm_init(), __vm_vcpu_add()). */
static void guest_init(struct guest *g, enum guest_kind k, unsigned int n)
{
	struct sevm_sev_init_opts o = { .sz = sizeof(o), .legacy = kinds[k].legacy };
	uint32_t fw = 0;

	guest_blank(g, k);
	g->vm = sevm_sev_vm_create(kinds[k].type, &o, &fw);
	EXPECT(g->vm >= 0, "creating an %s guest: %s", kinds[k].name, sevm_last_error());
	vcpus_add(g, n);
}

static uint8_t *guest_mem(void)
{
	uint8_t *m = mmap(NULL, MEM_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	EXPECT(m != MAP_FAILED, "mmap: %s", strerror(errno));
	for (size_t i = 0; i < MEM_LEN; i++)
		m[i] = pattern(i);
	return m;
}

static void measure_finish(struct guest *g)
{
	uint8_t m[128];
	uint32_t len = sizeof(m), fw;

	EXPECT_OK(sevm_sev_launch_measure(g->vm, m, &len, &fw));
	EXPECT_OK(sevm_sev_launch_finish(g->vm, &fw));
}

/*
 * sev_vm_create() of the selftest: initialised, n vCPUs, launched with its
 * memory encrypted and, for SEV-ES, its VMSAs; with finish, RUNNING.
 */
static void guest_launch(struct guest *g, enum guest_kind k, unsigned int n, bool finish)
{
	struct sevm_sev_launch l = { .sz = sizeof(l), .policy = kinds[k].es ? POLICY_ES : 0 };
	uint32_t fw;

	guest_init(g, k, n);
	g->sev = sevm__open("/dev/sev", O_RDWR);
	EXPECT(g->sev >= 0, "open /dev/sev: %s", sevm_last_error());
	g->mem = guest_mem();
	EXPECT_OK(sevm_sev_launch_start(g->vm, g->sev, &l, &fw));
	g->handle = l.handle;
	EXPECT_OK(sevm_sev_launch_update_data(g->vm, g->mem, MEM_LEN, &fw));
	if (kinds[k].es)
		EXPECT_OK(sevm_sev_launch_update_vmsa(g->vm, &fw));
	if (finish)
		measure_finish(g);
}

static void guest_close(struct guest *g)
{
	for (unsigned int i = 0; i < g->nr_vcpus; i++)
		sevm__close(g->vcpu[i]);
	sevm__close(g->vm);
	sevm__close(g->sev);
	if (g->mem)
		munmap(g->mem, MEM_LEN);
	guest_blank(g, g->kind);
}

/* ---- What a VM holds, seen through the public API ---------------------------- */

enum ctx { CTX_UNKNOWN, CTX_YES, CTX_NO, CTX_DEAD };

static const char *const ctx_names[] = {
	[CTX_UNKNOWN] = "unknown",
	[CTX_YES] = "holds an SEV context",
	[CTX_NO] = "holds no SEV context",
	[CTX_DEAD] = "refuses every ioctl (EIO: dead)",
};

/*
 * GUEST_STATUS answers without /dev/sev at fd 0: -ENOTTY before the firmware
 * for a VM without a context (§3.4); -EBADF when the saved /dev/sev number
 * does not resolve, which needs a VM with a context (after a MOVE the number
 * is 0); -EIO without a firmware status from kvm_vm_ioctl() for a dead VM
 * on v5.16..v6.16.
 */
static enum ctx ctx_state(int vm)
{
	struct sevm_sev_status st = { .sz = sizeof(st) };
	uint32_t fw = 0;
	int r = sevm_sev_guest_status(vm, &st, &fw);

	if (r == 0 || r == -EBADF || (r == -EIO && fw))
		return CTX_YES;
	if (r == -ENOTTY)
		return CTX_NO;
	EXPECT(r == -EIO, "GUEST_STATUS of VM fd %d: %d (%s)", vm, r, sevm_last_error());
	return CTX_DEAD;
}

#define EXPECT_CTX(vm, want)							\
	do {									\
		enum ctx c_ = ctx_state(vm);					\
		EXPECT(c_ == (want), "%s %s, expected it %s", #vm, ctx_names[c_],	\
		       ctx_names[want]);					\
	} while (0)

/* A moved-from VM: without a context, or dead; the first one seen decides for the run. */
static void learn_dead(enum ctx *dead, enum ctx seen)
{
	EXPECT(seen == CTX_NO || seen == CTX_DEAD, "a moved-from VM %s", ctx_names[seen]);
	if (*dead == CTX_UNKNOWN)
		*dead = seen;
	EXPECT(seen == *dead, "a moved-from VM %s, an earlier one %s", ctx_names[seen],
	       ctx_names[*dead]);
}

static struct sevm_sev_status status_of(int vm)
{
	struct sevm_sev_status st = { .sz = sizeof(st) };
	uint32_t fw = 0;

	EXPECT_OK(sevm_sev_guest_status(vm, &st, &fw));
	return st;
}

/* DBG_DECRYPT of guest memory through vm gives what the launch encrypted. */
static void expect_plaintext(int vm, const uint8_t *mem, size_t off, uint32_t len)
{
	uint8_t out[256];
	uint32_t fw;

	EXPECT(len <= sizeof(out), "%u bytes", len);
	EXPECT_OK(sevm_sev_dbg_decrypt(vm, mem + off, out, len, &fw));
	for (uint32_t i = 0; i < len; i++)
		EXPECT(out[i] == pattern(off + i), "byte %zu decrypts to 0x%02x, not 0x%02x",
		       off + i, out[i], pattern(off + i));
}

/* The VMM's own view of launched memory: no 16-byte block is its plaintext. */
static void expect_ciphertext(const uint8_t *mem)
{
	for (size_t b = 0; b < MEM_LEN; b += 16) {
		bool plain = true;

		for (size_t i = 0; i < 16; i++)
			plain &= mem[b + i] == pattern(b + i);
		EXPECT(!plain, "the VMM reads plaintext at byte %zu of launched memory", b);
	}
}

/* Run on the model under these host options: a new host replaces the case's. */
static void model_host(struct conf_backend *b, const struct sevsim_host_opts *o)
{
	sevsim_free(b->sim);
	b->sim = NULL;
	EXPECT(sevsim_host_create(o, &b->sim) == 0, "sevsim_host_create failed");
	EXPECT(sevsim_install(b->sim) == 0, "sevsim_install failed");
}

/* ---- test_sev_migrate_from --------------------------------------------------- */

/* vCPU counts of a source and its chain of destinations. */
struct chain {
	enum guest_kind kind;
	unsigned int src;
	unsigned int dst[NR_DST];
};

/*
 * Plain SEV: the counts need not match, and any may be 0 (step 8b).
 * SEV-ES: equal everywhere, 0 included (8c, and 8d holds for no vCPUs).
 */
static const struct chain chains[] = {
	{ SEV_LEGACY, NR_VCPUS, { NR_VCPUS, NR_VCPUS, NR_VCPUS } },
	{ SEV_LEGACY, 0, { 0, 0, 0 } },
	{ SEV_LEGACY, NR_VCPUS, { 0, 1, 2 } },
	{ SEV_LEGACY, 0, { NR_VCPUS, 0, 1 } },
	{ ES_LEGACY, NR_VCPUS, { NR_VCPUS, NR_VCPUS, NR_VCPUS } },
	{ ES_LEGACY, 0, { 0, 0, 0 } },
	{ SEV_TYPED, 1, { NR_VCPUS, 0, NR_VCPUS } },
	{ ES_TYPED, NR_VCPUS, { NR_VCPUS, NR_VCPUS, NR_VCPUS } },
	{ ES_TYPED, 0, { 0, 0, 0 } },
};

/* The selftest's hops and the migration back into the source, which a dead VM refuses. */
static void chain_run(const struct chain *c, enum ctx *dead)
{
	struct guest src, dst[NR_DST];
	int back;

	guest_launch(&src, c->kind, c->src, false);
	for (int i = 0; i < NR_DST; i++)
		plain_vm(&dst[i], c->kind, c->dst[i]);
	EXPECT_OK(sevm_sev_move(dst[0].vm, src.vm));
	learn_dead(dead, ctx_state(src.vm));
	for (int i = 1; i < NR_DST; i++) {
		EXPECT_OK(sevm_sev_move(dst[i].vm, dst[i - 1].vm));
		EXPECT_CTX(dst[i - 1].vm, *dead);
	}
	EXPECT_CTX(dst[NR_DST - 1].vm, CTX_YES);
	back = sevm_sev_move(src.vm, dst[NR_DST - 1].vm);
	if (*dead == CTX_DEAD) {
		/* kvm_vm_ioctl() on the dead source: KVM_ENABLE_CAP itself is refused */
		EXPECT(back == -EIO, "migrating back into the dead source: %d (%s)", back,
		       sevm_last_error());
		EXPECT_MSG("is dead");
		EXPECT_CTX(dst[NR_DST - 1].vm, CTX_YES);
	} else {
		EXPECT(back == 0, "migrating back into the source: %d (%s)", back,
		       sevm_last_error());
		EXPECT_CTX(src.vm, CTX_YES);
		EXPECT_CTX(dst[NR_DST - 1].vm, CTX_NO);
	}
	for (int i = 0; i < NR_DST; i++)
		guest_close(&dst[i]);
	guest_close(&src);
}

static void chains_run(struct conf_backend *b, enum ctx *dead)
{
	bool skipped_es = false;

	for (size_t i = 0; i < ARRAY_SIZE(chains); i++) {
		if (kind_usable(b, chains[i].kind))
			chain_run(&chains[i], dead);
		else
			skipped_es = true;
	}
	if (skipped_es)
		note("SEV-ES chains skipped: this host cannot make SEV-ES guests");
}

static void case_migrate_from(struct conf_backend *b)
{
	enum ctx dead = CTX_UNKNOWN;

	if (b->kind == CONF_MODEL) {
		for (int rejects = 0; rejects <= 1; rejects++) {
			struct sevsim_host_opts o = { .sz = sizeof(o),
						      .dead_vm_rejects_ioctls = rejects };

			model_host(b, &o);
			dead = rejects ? CTX_DEAD : CTX_NO;
			chains_run(b, &dead);
		}
		note("both kernels' behaviour: with dead_vm_rejects_ioctls (v5.16..v6.16) "
		     "migrating back into the source is EIO, without it (v6.17+) it succeeds");
		return;
	}
	chains_run(b, &dead);
	note(dead == CTX_DEAD ?
	     "this kernel refuses every ioctl of a moved-from VM (EIO), as v5.16..v6.16 "
	     "do: migrating back into the source fails" :
	     "this kernel lets a moved-from VM take a context again (v6.17+): migrating "
	     "back into the source succeeds");
}

/* ---- test_sev_migrate_locking ------------------------------------------------ */

#define LOCK_VMS	3	/* NR_LOCK_TESTING_THREADS */
#define LOCK_ITERS	10000	/* NR_LOCK_TESTING_ITERATIONS, cut short by the deadline */
#define RING_VMS	6
#define RING_CTXS	3
#define PROBERS		2

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct lock_thread {
	const int *vm;		/* LOCK_VMS SEV guests */
	int i;			/* this thread moves into vm[i] */
	double deadline;
	int einval, ebusy;
	int other;		/* the first result neither EINVAL nor EBUSY, or 0 */
};

/* locking_test_thread(): into its own VM from each VM in turn. */
static void *lock_thread(void *p)
{
	struct lock_thread *t = p;

	for (int n = 0; n < LOCK_ITERS && now() < t->deadline; n++) {
		int r = sevm_sev_move(t->vm[t->i], t->vm[n % LOCK_VMS]);

		if (r == -EINVAL) {
			t->einval++;
		} else if (r == -EBUSY) {
			t->ebusy++;
		} else {
			t->other = r ? r : 1;
			break;
		}
	}
	return NULL;
}

/* Every VM is an SEV guest, so each move is refused: EINVAL, or EBUSY under contention. */
static void selftest_locking(double secs)
{
	struct lock_thread t[LOCK_VMS];
	pthread_t th[LOCK_VMS];
	struct guest g[LOCK_VMS];
	int vm[LOCK_VMS], einval = 0, ebusy = 0;

	for (int i = 0; i < LOCK_VMS; i++) {
		guest_launch(&g[i], SEV_LEGACY, NR_VCPUS, false);
		vm[i] = g[i].vm;
	}
	for (int i = 0; i < LOCK_VMS; i++) {
		t[i] = (struct lock_thread){ .vm = vm, .i = i, .deadline = now() + secs };
		EXPECT(pthread_create(&th[i], NULL, lock_thread, &t[i]) == 0, "pthread_create");
	}
	for (int i = 0; i < LOCK_VMS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < LOCK_VMS; i++) {
		EXPECT(!t[i].other, "thread %d: a move between SEV guests gave %d (%s)", i,
		       t[i].other, sevm_strerror(t[i].other));
		einval += t[i].einval;
		ebusy += t[i].ebusy;
	}
	for (int i = 0; i < LOCK_VMS; i++) {
		EXPECT_CTX(vm[i], CTX_YES);
		guest_close(&g[i]);
	}
	note("selftest pattern: %d moves between SEV guests, %d EINVAL, %d EBUSY",
	     einval + ebusy, einval, ebusy);
}

struct ring {
	int vm[RING_VMS];	/* atomic: slot i's VM, replaced once moved from */
	pthread_mutex_t slot[RING_VMS];	/* held to replace vm[i], or to probe it */
	int full[RING_VMS];	/* atomic: slot i's VM holds a context */
	int moves, busy;	/* atomic */
	int bad;		/* atomic: the first result a mover must not see */
	int target;
	double deadline;
};

struct ring_arg {
	struct ring *ring;
	int slot;
};

static bool ring_going(struct ring *g)
{
	return __atomic_load_n(&g->moves, __ATOMIC_ACQUIRE) < g->target &&
	       !__atomic_load_n(&g->bad, __ATOMIC_ACQUIRE) && now() < g->deadline;
}

static void ring_bad(struct ring *g, int r)
{
	int zero = 0;

	__atomic_compare_exchange_n(&g->bad, &zero, r ? r : 1, false, __ATOMIC_ACQ_REL,
				    __ATOMIC_ACQUIRE);
}

/*
 * Mover `slot` takes the context of the VM before it into its own, when
 * that one holds a context and its own does not.  Only this mover fills its
 * slot or empties the one before, so what it saw still holds when it moves:
 * the one refusal left is -EBUSY, from a prober holding a migration flag.
 * The moved-from VM is dead, and v5.16..v6.16 refuse every ioctl of a dead
 * VM, a MOVE into it too: the mover puts a fresh VM in its place.
 */
static void *ring_mover(void *p)
{
	struct ring_arg *a = p;
	struct ring *g = a->ring;
	int me = a->slot, prev = (a->slot + RING_VMS - 1) % RING_VMS;

	while (ring_going(g)) {
		int src, fresh, r;

		if (!__atomic_load_n(&g->full[prev], __ATOMIC_ACQUIRE) ||
		    __atomic_load_n(&g->full[me], __ATOMIC_ACQUIRE)) {
			sched_yield();
			continue;
		}
		src = __atomic_load_n(&g->vm[prev], __ATOMIC_ACQUIRE);
		r = sevm_sev_move(__atomic_load_n(&g->vm[me], __ATOMIC_ACQUIRE), src);
		if (r == -EBUSY) {
			__atomic_add_fetch(&g->busy, 1, __ATOMIC_RELAXED);
			continue;
		}
		fresh = r ? r : vm_new(KVM_X86_DEFAULT_VM);
		if (fresh < 0) {
			ring_bad(g, fresh);
			break;
		}
		pthread_mutex_lock(&g->slot[prev]);
		__atomic_store_n(&g->vm[prev], fresh, __ATOMIC_RELEASE);
		sevm__close(src);
		pthread_mutex_unlock(&g->slot[prev]);
		__atomic_store_n(&g->full[me], 1, __ATOMIC_RELEASE);
		__atomic_store_n(&g->full[prev], 0, __ATOMIC_RELEASE);
		__atomic_add_fetch(&g->moves, 1, __ATOMIC_ACQ_REL);
	}
	return NULL;
}

struct prober {
	struct ring *ring;
	int vm;		/* an SEV guest: never a valid destination */
	int bad;
	int tries;
};

/*
 * A prober moves into an SEV guest from each ring VM in turn.  The kernel
 * takes both migration flags before it finds the destination is SEV (steps
 * 3b, 3c before 4), so the movers meet -EBUSY.  It holds the slot while it
 * uses the slot's fd: a VMM does not close an fd another thread is using.
 */
static void *ring_prober(void *p)
{
	struct prober *pr = p;
	struct ring *g = pr->ring;

	for (int k = 0; ring_going(g); k = (k + 1) % RING_VMS, pr->tries++) {
		int r;

		pthread_mutex_lock(&g->slot[k]);
		r = sevm_sev_move(pr->vm, __atomic_load_n(&g->vm[k], __ATOMIC_ACQUIRE));
		pthread_mutex_unlock(&g->slot[k]);
		if (r != -EINVAL && r != -EBUSY) {
			pr->bad = r ? r : 1;
			break;
		}
	}
	return NULL;
}

static void ring_start(struct ring *g, struct guest *ctx)
{
	/* contexts in the even slots, plain VMs in the odd ones */
	for (int i = 0; i < RING_VMS; i++) {
		pthread_mutex_init(&g->slot[i], NULL);
		if (i % 2 == 0) {
			guest_launch(&ctx[i / 2], SEV_LEGACY, 0, false);
			g->vm[i] = ctx[i / 2].vm;
			ctx[i / 2].vm = -1;	/* the ring owns it now, and replaces it */
			g->full[i] = 1;
		} else {
			g->vm[i] = vm_new(KVM_X86_DEFAULT_VM);
			EXPECT(g->vm[i] >= 0, "KVM_CREATE_VM: %s", sevm_last_error());
		}
	}
}

static void ring_of_moves(double secs, int target)
{
	struct ring g = { .target = target };
	struct ring_arg a[RING_VMS];
	struct prober pr[PROBERS];
	pthread_t mt[RING_VMS], pt[PROBERS];
	struct guest ctx[RING_CTXS], sev[PROBERS];
	double start;
	int held = 0;

	ring_start(&g, ctx);
	for (int i = 0; i < PROBERS; i++) {
		guest_init(&sev[i], SEV_LEGACY, 0);
		pr[i] = (struct prober){ .ring = &g, .vm = sev[i].vm };
	}
	start = now();
	g.deadline = start + secs;
	for (int i = 0; i < RING_VMS; i++) {
		a[i] = (struct ring_arg){ &g, i };
		EXPECT(pthread_create(&mt[i], NULL, ring_mover, &a[i]) == 0, "pthread_create");
	}
	for (int i = 0; i < PROBERS; i++)
		EXPECT(pthread_create(&pt[i], NULL, ring_prober, &pr[i]) == 0, "pthread_create");
	for (int i = 0; i < RING_VMS; i++)
		pthread_join(mt[i], NULL);
	for (int i = 0; i < PROBERS; i++)
		pthread_join(pt[i], NULL);
	EXPECT(!g.bad, "a mover saw %d (%s): only 0 and EBUSY are possible", g.bad,
	       sevm_strerror(g.bad));
	for (int i = 0; i < PROBERS; i++)
		EXPECT(!pr[i].bad, "a prober saw %d (%s)", pr[i].bad, sevm_strerror(pr[i].bad));
	EXPECT(g.moves >= RING_VMS, "only %d moves in %.0f s", g.moves, secs);
	/* each context is where the movers left it, and nowhere else */
	for (int i = 0; i < RING_VMS; i++) {
		EXPECT_CTX(g.vm[i], g.full[i] ? CTX_YES : CTX_NO);
		held += g.full[i];
		sevm__close(g.vm[i]);
		pthread_mutex_destroy(&g.slot[i]);
	}
	EXPECT(held == RING_CTXS, "%d contexts in the ring, not %d", held, RING_CTXS);
	note("ring of %d VMs, %d contexts: %d moves, %d EBUSY in %.1f s, %d probes",
	     RING_VMS, RING_CTXS, g.moves, g.busy, now() - start, pr[0].tries + pr[1].tries);
	for (int i = 0; i < PROBERS; i++)
		guest_close(&sev[i]);
	for (int i = 0; i < RING_CTXS; i++)
		guest_close(&ctx[i]);
}

static void case_migrate_locking(struct conf_backend *b)
{
	selftest_locking(2.0);
	if (b->kind == CONF_MODEL)
		ring_of_moves(3.0, 3000);
	else
		ring_of_moves(5.0, 500);
}

/* ---- test_sev_migrate_parameters --------------------------------------------- */

/* The source is not a VM fd of this host: fdget() or file_is_kvm() (steps 1, 2). */
static void not_vm_sources(int dst, const struct guest *sev)
{
	int mfd = memfd_create("not-a-vm", MFD_CLOEXEC), kvm = sevm__open("/dev/kvm", O_RDWR);

	EXPECT(mfd >= 0 && kvm >= 0, "memfd_create, open /dev/kvm");
	EXPECT_ERR(sevm_sev_move(dst, mfd), -EBADF);
	EXPECT_MSG("is not a KVM VM fd");
	EXPECT_ERR(sevm_sev_move(dst, kvm), -EBADF);
	EXPECT_MSG("is not a KVM VM fd");
	EXPECT_ERR(sevm_sev_move(dst, sev->vcpu[0]), -EBADF);
	EXPECT_MSG("is not a KVM VM fd");
	EXPECT_ERR(sevm_sev_move(dst, sev->sev), -EBADF);
	EXPECT_MSG("is not a KVM VM fd");
	sevm__close(kvm);
	close(mfd);
	EXPECT_ERR(sevm_sev_move(dst, mfd), -EBADF);
	EXPECT_MSG("not open");
	EXPECT_ERR(sevm_sev_mirror(dst, mfd), -EBADF);
	EXPECT_MSG("is not a KVM VM fd");
}

static const char es_how[] =
	"the source answers GUEST_STATUS, so it is an SEV guest, and its policy has the ES "
	"bit: only the SEV-ES vCPU rules are left";

static void es_parameters(const struct guest *no_vcpu, const struct guest *sev)
{
	struct guest es, es_no_vmsa, one;

	guest_launch(&es, ES_LEGACY, NR_VCPUS, false);
	guest_init(&es_no_vmsa, ES_LEGACY, 1);
	plain_vm(&one, ES_LEGACY, 1);
	/* "Should not be able migrate to SEV enabled VM", and to an SEV-ES one */
	EXPECT_ERR(sevm_sev_move(sev->vm, es.vm), -EINVAL);
	EXPECT_MSG("the destination is already an SEV guest");
	EXPECT_ERR(sevm_sev_move(es.vm, sev->vm), -EINVAL);
	EXPECT_MSG("the destination is already an SEV guest");
	/* "SEV-ES migrations require same number of vCPUS" (step 8c) */
	EXPECT_ERR(sevm_sev_move(no_vcpu->vm, es.vm), -EINVAL);
	VAGUE_MSG("the vCPU counts differ", "SEV-ES vCPU counts differ", es_how);
	/*
	 * "SEV-ES migrations require UPDATE_VMSA": as the selftest writes it the
	 * destination has no vCPUs, so 8c refuses before 8d looks at VMSAs ...
	 */
	EXPECT_ERR(sevm_sev_move(no_vcpu->vm, es_no_vmsa.vm), -EINVAL);
	/* ... so also with as many vCPUs, where only 8d is left to refuse */
	EXPECT_ERR(sevm_sev_move(one.vm, es_no_vmsa.vm), -EINVAL);
	VAGUE_MSG("has no VMSA", "SEV-ES source without LAUNCH_UPDATE_VMSA", es_how);
	EXPECT_CTX(es.vm, CTX_YES);
	EXPECT_CTX(es_no_vmsa.vm, CTX_YES);
	EXPECT_CTX(one.vm, CTX_NO);
	guest_close(&one);
	guest_close(&es_no_vmsa);
	guest_close(&es);
}

/* Step 4's vm_type test: a default VM takes no context from a KVM_X86_SEV_VM. */
static void type_parameters(const struct guest *no_vcpu)
{
	struct guest typed, typed_dst;

	guest_launch(&typed, SEV_TYPED, 1, false);
	plain_vm(&typed_dst, SEV_TYPED, 0);
	EXPECT_ERR(sevm_sev_move(no_vcpu->vm, typed.vm), -EINVAL);
	VAGUE_MSG("the VM types differ", "VM types differ",
		  "the source answered GUEST_STATUS without the ES policy bit, so for plain "
		  "SEV only the VM types can differ");
	EXPECT_OK(sevm_sev_move(typed_dst.vm, typed.vm));
	guest_close(&typed_dst);
	guest_close(&typed);
}

static void case_migrate_parameters(struct conf_backend *b)
{
	struct guest no_vcpu, no_sev, sev, sev2;

	plain_vm(&no_vcpu, SEV_LEGACY, 0);
	plain_vm(&no_sev, SEV_LEGACY, NR_VCPUS);
	/* "Migrations require SEV enabled" */
	EXPECT_ERR(sevm_sev_move(no_vcpu.vm, no_sev.vm), -EINVAL);
	EXPECT_MSG("the source is not an SEV guest");
	guest_launch(&sev, SEV_LEGACY, NR_VCPUS, false);
	guest_launch(&sev2, SEV_LEGACY, 1, false);
	/* sev_lock_two_vms(): the same VM (step 3a) */
	EXPECT_ERR(sevm_sev_move(sev.vm, sev.vm), -EINVAL);
	EXPECT_MSG("the same VM");
	EXPECT_ERR(sevm_sev_move(sev.vm, sev2.vm), -EINVAL);
	EXPECT_MSG("the destination is already an SEV guest");
	not_vm_sources(no_vcpu.vm, &sev);
	type_parameters(&no_vcpu);
	if (b->has_es)
		es_parameters(&no_vcpu, &sev);
	else
		note("SEV-ES parameters skipped: this host cannot make SEV-ES guests");
	/* nothing was moved by a refusal */
	EXPECT_CTX(sev.vm, CTX_YES);
	EXPECT_CTX(sev2.vm, CTX_YES);
	EXPECT_CTX(no_vcpu.vm, CTX_NO);
	guest_close(&sev2);
	guest_close(&sev);
	guest_close(&no_sev);
	guest_close(&no_vcpu);
}

/* ---- test_sev_mirror, test_sev_mirror_parameters ----------------------------- */

static bool mirror_allowed(uint32_t id)
{
	return id == SEVM_ABI_SEV_LAUNCH_UPDATE_VMSA || id == SEVM_ABI_SEV_GUEST_STATUS ||
	       id == SEVM_ABI_SEV_DBG_DECRYPT || id == SEVM_ABI_SEV_DBG_ENCRYPT;
}

/*
 * verify_mirror_allowed_cmds(): every command but LAUNCH_UPDATE_VMSA,
 * GUEST_STATUS and DBG_* is refused on a mirror before its data is read
 * (is_cmd_allowed_from_mirror()), so NULL data is fine.  The public API has
 * no call for most ids (SEND_*, RECEIVE_*, SNP_*, unused), hence the seam.
 */
static void mirror_refuses_every_id(int vm)
{
	for (uint32_t id = SEVM_ABI_SEV_INIT; id <= SEVM_ABI_SEV_SNP_ENABLE_REQ_CERTS; id++) {
		struct kvm_sev_cmd c = { .id = id };
		int r;

		if (mirror_allowed(id))
			continue;
		r = sevm__ioctl_quiet(vm, KVM_MEMORY_ENCRYPT_OP, &c);
		EXPECT(r == -EINVAL, "command %u on a mirror: %d (%s)", id, r, sevm_strerror(r));
	}
}

#define MIRROR_REFUSES(call)							\
	do {									\
		EXPECT_ERR(call, -EINVAL);					\
		EXPECT(fw == 0, "%s: firmware status 0x%x", #call, fw);		\
		want_msg("mirror", "a command refused because the VM is a mirror");	\
	} while (0)

/* The same refusals through the public API's own calls. */
static void mirror_refuses(int vm, const struct guest *owner)
{
	struct sevm_sev_init_opts legacy = { .sz = sizeof(legacy), .legacy = true };
	struct sevm_sev_launch l = { .sz = sizeof(l) };
	uint8_t blob[64] = { 0 }, nonce[16] = { 0 };
	struct sevm_sev_secret s = {
		.sz = sizeof(s), .hdr = blob, .hdr_len = SEVM_ABI_SEV_PACKET_HDR_SIZE,
		.guest_addr = owner->mem, .guest_len = 16, .trans = blob, .trans_len = 16,
	};
	uint32_t len = 0, fw;

	MIRROR_REFUSES(sevm_sev_init(vm, SEVM_SEV, &legacy, &fw));
	MIRROR_REFUSES(sevm_sev_init(vm, SEVM_SEV_ES, &legacy, &fw));
	MIRROR_REFUSES(sevm_sev_init(vm, SEVM_SEV, NULL, &fw));
	MIRROR_REFUSES(sevm_sev_launch_start(vm, owner->sev, &l, &fw));
	MIRROR_REFUSES(sevm_sev_launch_update_data(vm, owner->mem, PAGE, &fw));
	MIRROR_REFUSES(sevm_sev_launch_secret(vm, &s, &fw));
	MIRROR_REFUSES(sevm_sev_launch_measure(vm, NULL, &len, &fw));
	MIRROR_REFUSES(sevm_sev_launch_finish(vm, &fw));
	MIRROR_REFUSES(sevm_sev_attestation_report(vm, nonce, NULL, &len, &fw));
	mirror_refuses_every_id(vm);
}

/* DBG_ENCRYPT through one VM, DBG_DECRYPT through another: one key. */
static void dbg_roundtrip(int enc_vm, int dec_vm, uint8_t *where)
{
	uint8_t in[32], out[32];
	uint32_t fw;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(0xa0 + i);
	EXPECT_OK(sevm_sev_dbg_encrypt(enc_vm, in, where, sizeof(in), &fw));
	EXPECT_OK(sevm_sev_dbg_decrypt(dec_vm, where, out, sizeof(out), &fw));
	EXPECT(!memcmp(in, out, sizeof(in)), "DBG_ENCRYPT then DBG_DECRYPT changed the bytes");
}

/* test_sev_mirror(es): a mirror completed with vCPUs; what it may and may not do. */
static void mirror_one(enum guest_kind k)
{
	struct sevm_sev_status st, own;
	struct guest src, m;
	uint32_t fw;

	guest_launch(&src, k, NR_VCPUS, false);
	plain_vm(&m, k, 0);
	EXPECT_OK(sevm_sev_mirror(m.vm, src.vm));
	/* "Check that we can complete creation of the mirror VM" */
	vcpus_add(&m, NR_VCPUS);
	/* the mirror's own VMSAs, under the shared handle (owner still in LUPDATE) */
	if (kinds[k].es)
		EXPECT_OK(sevm_sev_launch_update_vmsa(m.vm, &fw));
	mirror_refuses(m.vm, &src);
	/* GUEST_STATUS and DBG through the mirror reach the owner's context */
	st = status_of(m.vm);
	own = status_of(src.vm);
	EXPECT(st.handle == src.handle && st.policy == own.policy && st.state == own.state,
	       "the mirror's status: handle %u policy 0x%x state %u; the owner's: %u 0x%x %u",
	       st.handle, st.policy, st.state, src.handle, own.policy, own.state);
	EXPECT(st.state == GSTATE_LUPDATE, "guest state %u", st.state);
	expect_plaintext(m.vm, src.mem, 0, 64);
	expect_plaintext(m.vm, src.mem, PAGE + 32, 128);
	dbg_roundtrip(m.vm, src.vm, src.mem + 2 * PAGE);
	dbg_roundtrip(src.vm, m.vm, src.mem + 3 * PAGE + 64);
	guest_close(&m);
	guest_close(&src);
}

static void case_mirror(struct conf_backend *b)
{
	for (int k = 0; k < NR_KINDS; k++) {
		if (kind_usable(b, (enum guest_kind)k))
			mirror_one((enum guest_kind)k);
		else
			note("%s mirror skipped: this host cannot make SEV-ES guests", kinds[k].name);
	}
}

/*
 * How the library could tell: GET_ATTESTATION_REPORT with NULL data is
 * refused on a mirror before its data is read (EINVAL, §2.3), while an owner
 * faults on the NULL (EFAULT) — no firmware call either way.
 */
static const char mirror_vcpus_how[] =
	"GET_ATTESTATION_REPORT with NULL data answers EFAULT on an owner (a mirror: "
	"EINVAL), which leaves the destination's vCPUs as the cause";
static const char mirror_of_mirror_how[] =
	"GET_ATTESTATION_REPORT with NULL data answers EINVAL before reading it only on a "
	"mirror (an owner: EFAULT), which names the source a mirror";

static void es_mirror_parameters(const struct guest *sev)
{
	struct guest es;

	guest_launch(&es, ES_LEGACY, NR_VCPUS, false);
	/* "Should not be able copy context to SEV enabled VM", and to an SEV-ES one */
	EXPECT_ERR(sevm_sev_mirror(sev->vm, es.vm), -EINVAL);
	EXPECT_MSG("the destination is already an SEV guest");
	EXPECT_ERR(sevm_sev_mirror(es.vm, sev->vm), -EINVAL);
	EXPECT_MSG("the destination is already an SEV guest");
	guest_close(&es);
}

static void case_mirror_parameters(struct conf_backend *b)
{
	struct guest sev, sev2, with_vcpu, no_vcpu, m, m2;

	guest_launch(&sev, SEV_LEGACY, NR_VCPUS, false);
	plain_vm(&with_vcpu, SEV_LEGACY, NR_VCPUS);
	plain_vm(&no_vcpu, SEV_LEGACY, 0);
	/* "Should not be able copy context to self" */
	EXPECT_ERR(sevm_sev_mirror(sev.vm, sev.vm), -EINVAL);
	EXPECT_MSG("the same VM");
	/* "Copy context requires SEV enabled" */
	EXPECT_ERR(sevm_sev_mirror(no_vcpu.vm, with_vcpu.vm), -EINVAL);
	EXPECT_MSG("the source is not an SEV guest");
	/* "SEV copy context requires no vCPUS on the destination" */
	EXPECT_ERR(sevm_sev_mirror(with_vcpu.vm, sev.vm), -EINVAL);
	VAGUE_MSG("the destination already has vCPUs", "mirror into a VM with vCPUs",
		  mirror_vcpus_how);
	/* no mirror of a mirror */
	plain_vm(&m, SEV_LEGACY, 0);
	plain_vm(&m2, SEV_LEGACY, 0);
	EXPECT_OK(sevm_sev_mirror(m.vm, sev.vm));
	EXPECT_ERR(sevm_sev_mirror(m2.vm, m.vm), -EINVAL);
	VAGUE_MSG("is itself a mirror", "mirror of a mirror", mirror_of_mirror_how);
	/* into an SEV guest, or into a mirror */
	guest_launch(&sev2, SEV_LEGACY, 0, false);
	EXPECT_ERR(sevm_sev_mirror(sev2.vm, sev.vm), -EINVAL);
	EXPECT_MSG("the destination is already an SEV guest");
	EXPECT_ERR(sevm_sev_mirror(m.vm, sev2.vm), -EINVAL);
	EXPECT_MSG("(or a mirror)");
	if (b->has_es)
		es_mirror_parameters(&sev);
	/* what a mirror refuses: every command but four, and encrypted regions */
	mirror_refuses(m.vm, &sev);
	EXPECT_ERR(sevm_sev_region_register(m.vm, sev.mem, MEM_LEN), -EINVAL);
	EXPECT_MSG("the VM is a mirror");
	EXPECT_ERR(sevm_sev_region_unregister(m.vm, sev.mem, MEM_LEN), -EINVAL);
	EXPECT_MSG("the VM is a mirror");
	EXPECT_CTX(m.vm, CTX_YES);
	EXPECT_CTX(m2.vm, CTX_NO);
	EXPECT_CTX(with_vcpu.vm, CTX_NO);
	guest_close(&m2);
	guest_close(&m);
	guest_close(&sev2);
	guest_close(&no_vcpu);
	guest_close(&with_vcpu);
	guest_close(&sev);
}

/* ---- test_sev_move_copy ------------------------------------------------------- */

static void expect_gone(const struct guest *g)
{
	enum ctx c = ctx_state(g->vm);

	EXPECT(c == CTX_NO || c == CTX_DEAD, "a VM moved from %s", ctx_names[c]);
}

/*
 * The owner moved three times, its mirror three times, interleaved; then
 * the VMs closed in the selftest's order.  With /dev/sev at fd 0 (MOVE
 * leaves the destinations that number), the last owner and the last mirror
 * answer with the first launch's handle and decrypt its memory.
 */
static void move_copy_chain(void)
{
	struct guest sev, dst, dst2, dst3, mirror, dst_m, dst2_m, dst3_m;

	guest_launch(&sev, SEV_LEGACY, NR_VCPUS, false);
	EXPECT(dup2(sev.sev, 0) == 0, "dup2: %s", strerror(errno));
	plain_vm(&dst, SEV_LEGACY, NR_VCPUS);
	plain_vm(&dst2, SEV_LEGACY, NR_VCPUS);
	plain_vm(&dst3, SEV_LEGACY, NR_VCPUS);
	plain_vm(&mirror, SEV_LEGACY, 0);
	plain_vm(&dst_m, SEV_LEGACY, 0);
	plain_vm(&dst2_m, SEV_LEGACY, 0);
	plain_vm(&dst3_m, SEV_LEGACY, 0);
	EXPECT_OK(sevm_sev_mirror(mirror.vm, sev.vm));
	EXPECT_OK(sevm_sev_move(dst_m.vm, mirror.vm));
	EXPECT_OK(sevm_sev_move(dst.vm, sev.vm));
	EXPECT_OK(sevm_sev_move(dst2.vm, dst.vm));
	EXPECT_OK(sevm_sev_move(dst2_m.vm, dst_m.vm));
	EXPECT_OK(sevm_sev_move(dst3_m.vm, dst2_m.vm));
	EXPECT_OK(sevm_sev_move(dst3.vm, dst2.vm));
	EXPECT(status_of(dst3.vm).handle == sev.handle, "the owner's handle changed");
	EXPECT(status_of(dst3_m.vm).handle == sev.handle, "the mirror's handle changed");
	expect_plaintext(dst3_m.vm, sev.mem, 0, 128);
	expect_plaintext(dst3.vm, sev.mem, 3 * PAGE, 128);
	expect_gone(&sev);
	expect_gone(&dst);
	expect_gone(&dst2);
	expect_gone(&mirror);
	expect_gone(&dst_m);
	expect_gone(&dst2_m);
	guest_close(&dst);
	guest_close(&sev);
	guest_close(&dst2);
	guest_close(&dst3);
	guest_close(&mirror);
	guest_close(&dst_m);
	guest_close(&dst2_m);
	guest_close(&dst3_m);
}

/* "destroy mirrors before mirrored VMs to ensure destruction is done safely" */
static void move_copy_mirrors_first(void)
{
	struct guest sev, dst, mirror, dst_m;

	guest_launch(&sev, SEV_LEGACY, NR_VCPUS, false);
	plain_vm(&dst, SEV_LEGACY, NR_VCPUS);
	plain_vm(&mirror, SEV_LEGACY, 0);
	plain_vm(&dst_m, SEV_LEGACY, 0);
	EXPECT_OK(sevm_sev_mirror(mirror.vm, sev.vm));
	EXPECT_OK(sevm_sev_move(dst_m.vm, mirror.vm));
	EXPECT_OK(sevm_sev_move(dst.vm, sev.vm));
	guest_close(&mirror);
	guest_close(&dst_m);
	EXPECT_CTX(dst.vm, CTX_YES);
	guest_close(&dst);
	guest_close(&sev);
}

static void move_copy_child(struct conf_backend *b)
{
	(void)b;
	move_copy_chain();
	move_copy_mirrors_first();
}

static void case_move_copy(struct conf_backend *b)
{
	in_child(b, move_copy_child);
}

/* ---- Rollback: A to B in another process, back into a fresh C ----------------- */


/* The new VMM: takes the context of the old one's VM a (a MOVE source may be another's). */
static void rollback_peer(int sock, int a)
{
	struct guest b;
	char byte;

	plain_vm(&b, SEV_LEGACY, 1);
	EXPECT_OK(sevm_sev_move(b.vm, a));
	EXPECT(tu_send_fd(sock, b.vm) == 0, "sending B: %s", strerror(errno));
	/* the old VMM rolled back: B is moved from too */
	EXPECT(read(sock, &byte, 1) == 1, "the old VMM went away");
	expect_gone(&b);
	guest_close(&b);
}

/* The old VMM: A goes to B in the new VMM; the new VMM fails; the context comes home into C. */
static void rollback_child(struct conf_backend *bk)
{
	struct sevm_sev_status before, after;
	struct guest a, c;
	int sv[2], b, st;
	pid_t peer;

	(void)bk;
	guest_launch(&a, SEV_LEGACY, 1, true);
	EXPECT(dup2(a.sev, 0) == 0, "dup2: %s", strerror(errno));
	before = status_of(a.vm);
	expect_ciphertext(a.mem);
	EXPECT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	peer = fork();
	EXPECT(peer >= 0, "fork: %s", strerror(errno));
	if (!peer) {
		close(sv[0]);
		rollback_peer(sv[1], a.vm);
		_exit(EXIT_SUCCESS);
	}
	close(sv[1]);
	b = tu_recv_fd(sv[0]);
	EXPECT(b >= 0, "the new VMM sent no VM");
	expect_gone(&a);
	plain_vm(&c, SEV_LEGACY, 1);
	EXPECT_OK(sevm_sev_move(c.vm, b));
	after = status_of(c.vm);
	EXPECT(after.handle == before.handle && after.policy == before.policy &&
	       after.state == before.state && after.state == GSTATE_RUNNING,
	       "status after the rollback: handle %u policy 0x%x state %u; before: %u 0x%x %u",
	       after.handle, after.policy, after.state, before.handle, before.policy, before.state);
	expect_plaintext(c.vm, a.mem, 0, 256);
	expect_plaintext(c.vm, a.mem, MEM_LEN - 256, 256);
	expect_ciphertext(a.mem);
	EXPECT(write(sv[0], "x", 1) == 1, "write");
	EXPECT(waitpid(peer, &st, 0) == peer && WIFEXITED(st) && !WEXITSTATUS(st),
	       "the new VMM ended with status 0x%x", st);
	close(sv[0]);
	sevm__close(b);
	guest_close(&c);
	guest_close(&a);
}

static void case_rollback(struct conf_backend *b)
{
	in_child(b, rollback_child);
}

/* ---- A moved-from source: moved again, used ------------------------------------ */

/* On the model, both kernels' behaviour; on the kernel, what it does. */
static void for_each_dead_vm_behaviour(struct conf_backend *b, void (*fn)(enum ctx *dead))
{
	enum ctx dead = CTX_UNKNOWN;

	if (b->kind == CONF_KERNEL) {
		fn(&dead);
		note("a moved-from VM here %s", ctx_names[dead]);
		return;
	}
	for (int rejects = 0; rejects <= 1; rejects++) {
		struct sevsim_host_opts o = { .sz = sizeof(o), .dead_vm_rejects_ioctls = rejects };

		model_host(b, &o);
		dead = rejects ? CTX_DEAD : CTX_NO;
		fn(&dead);
	}
}

static void double_move(enum ctx *dead)
{
	struct guest a, b, c;

	guest_launch(&a, SEV_LEGACY, 1, true);
	plain_vm(&b, SEV_LEGACY, 1);
	plain_vm(&c, SEV_LEGACY, 1);
	EXPECT_OK(sevm_sev_move(b.vm, a.vm));
	learn_dead(dead, ctx_state(a.vm));
	/* the source is only looked up, never ioctl'ed: step 4 refuses it as not SEV */
	EXPECT_ERR(sevm_sev_move(c.vm, a.vm), -EINVAL);
	EXPECT_MSG("not an SEV guest");
	/* a dead source answers no ioctl, so the library cannot ask it (v5.16..v6.16) */
	if (*dead == CTX_NO)
		EXPECT_MSG("moved away");
	else
		want_msg("moved away", "moving again from a dead source");
	EXPECT_CTX(b.vm, CTX_YES);
	EXPECT_CTX(c.vm, CTX_NO);
	guest_close(&c);
	guest_close(&b);
	guest_close(&a);
}

static void case_double_move(struct conf_backend *b)
{
	for_each_dead_vm_behaviour(b, double_move);
}

/* ENOTTY: the library says why; EIO (v5.16..v6.16) it cannot ask the VM, but could say. */
static void moved_away_msg(int err, const char *subject)
{
	if (err == -ENOTTY)
		EXPECT_MSG("moved away");
	else
		want_msg("moved away", subject);
}

/*
 * A moved-from VM is not an SEV guest: -ENOTTY before the firmware (§1.5,
 * §3.4); v5.16..v6.16 refuse every ioctl of it, -EIO.  Either way the VMM
 * should read that the context moved away.
 */
static void dead_source(enum ctx *dead)
{
	struct sevm_sev_status st = { .sz = sizeof(st) };
	struct guest a, b;
	uint32_t fw = 0xffffffff;
	uint8_t out[64];
	int err;

	guest_launch(&a, SEV_LEGACY, 1, true);
	plain_vm(&b, SEV_LEGACY, 1);
	EXPECT_OK(sevm_sev_move(b.vm, a.vm));
	err = sevm_sev_guest_status(a.vm, &st, &fw);
	learn_dead(dead, err == -ENOTTY ? CTX_NO : err == -EIO ? CTX_DEAD : CTX_YES);
	EXPECT(fw == 0, "firmware status 0x%x: the firmware was reached", fw);
	moved_away_msg(err, "GUEST_STATUS on a moved-from VM");
	EXPECT_ERR(sevm_sev_dbg_decrypt(a.vm, a.mem, out, sizeof(out), &fw), err);
	moved_away_msg(err, "DBG_DECRYPT on a moved-from VM");
	EXPECT_ERR(sevm_sev_launch_update_data(a.vm, a.mem, PAGE, &fw), err);
	EXPECT_ERR(sevm_sev_region_register(a.vm, a.mem, MEM_LEN), err);
	want_msg("moved away", "KVM_MEMORY_ENCRYPT_REG_REGION on a moved-from VM");
	EXPECT_CTX(b.vm, CTX_YES);
	guest_close(&b);
	guest_close(&a);
}

static void case_dead_source(struct conf_backend *b)
{
	for_each_dead_vm_behaviour(b, dead_source);
}

/* ---- ASID exhaustion ----------------------------------------------------------- */

/*
 * sev_asid_new(): with the class's ASIDs all in use, or the misc cgroup at
 * its limit, INIT is -EBUSY before the firmware.  Closing a VM frees its
 * ASID for the next (after a DF_FLUSH the kernel does itself).
 */
static void use_up_asids(enum sevm_sev_type t, int n)
{
	struct sevm_sev_init_opts legacy = { .sz = sizeof(legacy), .legacy = true };
	const char *cmd = t == SEVM_SEV ? "SEV INIT" : "SEV ES_INIT";
	int vm[FEW_ASIDS], fds;
	uint32_t fw = 0xffffffff;

	EXPECT(n > 0 && n <= FEW_ASIDS, "%d ASIDs", n);
	for (int i = 0; i < n; i++) {
		vm[i] = sevm_sev_vm_create(t, &legacy, &fw);
		EXPECT(vm[i] >= 0, "guest %d of %d: %s", i + 1, n, sevm_last_error());
	}
	fds = tu_count_fds();
	EXPECT_ERR(sevm_sev_vm_create(t, &legacy, &fw), -EBUSY);
	EXPECT(fw == 0, "firmware status 0x%x: the firmware was reached", fw);
	EXPECT_MSG(cmd);
	EXPECT_MSG("ASID");
	EXPECT(tu_count_fds() == fds, "the refused create left its VM fd open");
	/* KVM_SEV_INIT2 on a VM of the SEV type draws from the same pool */
	EXPECT_ERR(sevm_sev_vm_create(t, NULL, &fw), -EBUSY);
	EXPECT_MSG("ASID");
	/* the VMM closes one guest the way it would, with close() */
	close(vm[0]);
	vm[0] = sevm_sev_vm_create(t, &legacy, &fw);
	EXPECT(vm[0] >= 0, "after a close, still no ASID: %s", sevm_last_error());
	for (int i = 0; i < n; i++)
		close(vm[i]);
}

static int64_t asids_free(int64_t max, int64_t used)
{
	return max < 0 || used < 0 || max == INT64_MAX ? -1 : max - used;
}

static void case_asid_exhaustion(struct conf_backend *b)
{
	const struct sevm_probe_report *r = &b->probe;
	int64_t es;

	if (b->kind == CONF_MODEL) {
		struct sevsim_host_opts o = { .sz = sizeof(o), .sev_asids = 2, .sev_es_asids = 1 };

		model_host(b, &o);
		use_up_asids(SEVM_SEV, 2);
		use_up_asids(SEVM_SEV_ES, 1);
		return;
	}
	use_up_asids(SEVM_SEV, (int)asids_free(r->sev_asids_max, r->sev_asids_used));
	es = asids_free(r->sev_es_asids_max, r->sev_es_asids_used);
	if (b->has_es && es > 0 && es <= FEW_ASIDS)
		use_up_asids(SEVM_SEV_ES, (int)es);
	else
		note("SEV-ES ASIDs not used up: %lld free to this process", (long long)es);
}

/* ---- The fd-0 quirk ------------------------------------------------------------- */

/*
 * sev->fd holds the /dev/sev number LAUNCH_START saved, resolved again in
 * the calling process for every later firmware command (§3.3).  MOVE does
 * not carry it (§1.3): the destination's is 0.  In a child, so that the
 * test's own fd 0 stays as it is.
 */
static void fd0_child(struct conf_backend *bk)
{
	struct sevm_sev_status st = { .sz = sizeof(st) };
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct guest a, b, c;
	uint32_t fw = 0xffffffff;
	uint8_t out[64];

	(void)bk;
	EXPECT(null >= 0 && (null == 0 || dup2(null, 0) == 0), "/dev/null at fd 0: %s",
	       strerror(errno));
	if (null > 0)
		close(null);
	guest_launch(&a, SEV_LEGACY, 1, true);
	plain_vm(&b, SEV_LEGACY, 1);
	EXPECT_OK(sevm_sev_move(b.vm, a.vm));
	EXPECT_ERR(sevm_sev_guest_status(b.vm, &st, &fw), -EBADF);
	EXPECT(fw == 0, "firmware status 0x%x: the firmware was reached", fw);
	EXPECT_MSG("fd 0");
	EXPECT_ERR(sevm_sev_dbg_decrypt(b.vm, a.mem, out, sizeof(out), &fw), -EBADF);
	EXPECT_MSG("fd 0");
	close(0);
	EXPECT_ERR(sevm_sev_guest_status(b.vm, &st, &fw), -EBADF);
	EXPECT(dup2(a.sev, 0) == 0, "dup2: %s", strerror(errno));
	EXPECT(status_of(b.vm).handle == a.handle, "another handle after the move");
	expect_plaintext(b.vm, a.mem, 0, sizeof(out));
	/* a VM never moved resolves the number its own LAUNCH_START saved */
	guest_launch(&c, SEV_LEGACY, 0, true);
	sevm__close(c.sev);
	c.sev = -1;
	EXPECT_ERR(sevm_sev_guest_status(c.vm, &st, &fw), -EBADF);
	EXPECT_MSG("saved at LAUNCH_START");
	guest_close(&c);
	guest_close(&b);
	guest_close(&a);
}

static void case_fd0_quirk(struct conf_backend *b)
{
	in_child(b, fd0_child);
}

/* ---- Back ends and the case table ------------------------------------------------ */

const struct conf_case conf_cases[] = {
	{ "test_sev_migrate_from", 0, 120, case_migrate_from },
	{ "test_sev_migrate_locking", 0, 60, case_migrate_locking },
	{ "test_sev_migrate_parameters", 0, 60, case_migrate_parameters },
	{ "test_sev_mirror", CONF_NEED_MIRROR, 60, case_mirror },
	{ "test_sev_mirror_parameters", CONF_NEED_MIRROR, 60, case_mirror_parameters },
	{ "test_sev_move_copy", CONF_NEED_MIRROR, 60, case_move_copy },
	{ "rollback", 0, 60, case_rollback },
	{ "double_move", 0, 60, case_double_move },
	{ "dead_source", 0, 60, case_dead_source },
	{ "asid_exhaustion", CONF_NEED_FEW_ASIDS, 60, case_asid_exhaustion },
	{ "fd0_quirk", 0, 60, case_fd0_quirk },
};
const unsigned int conf_nr_cases = ARRAY_SIZE(conf_cases);

void conf_model_backend(struct conf_backend *b)
{
	memset(b, 0, sizeof(*b));
	b->kind = CONF_MODEL;
	b->name = "the model";
	b->has_es = true;
	b->has_mirror = true;
}

/*
 * The kernel runs the cases where it has the SEV VM type (every case may
 * make KVM_X86_SEV_VM guests) and /dev/sev opens read-write (LAUNCH_START).
 */
void conf_kernel_backend(struct conf_backend *b)
{
	struct sevm_probe_report *r = &b->probe;
	char why[256] = "";

	memset(b, 0, sizeof(*b));
	b->kind = CONF_KERNEL;
	b->name = "the real kernel";
	r->sz = sizeof(*r);
	if (sevm_probe(r)) {
		snprintf(b->why_not, sizeof(b->why_not), "sevm_probe: %s", sevm_last_error());
		return;
	}
	if (sevm_flavour_check(r, SEVM_FLAVOUR_SEV_INTRAHOST, why, sizeof(why)) != 1)
		snprintf(b->why_not, sizeof(b->why_not), "%s", why);
	else if (!(r->vm_types & (1ull << KVM_X86_SEV_VM)))
		snprintf(b->why_not, sizeof(b->why_not), "KVM offers SEV only through the legacy "
			 "KVM_SEV_INIT (no KVM_X86_SEV_VM type, before Linux 6.10)");
	else if (r->sev_open_err)
		snprintf(b->why_not, sizeof(b->why_not), "cannot open /dev/sev read-write: %s",
			 sevm_strerror(r->sev_open_err));
	b->has_es = (r->vm_types & (1ull << KVM_X86_SEV_ES_VM)) &&
		    sevm_flavour_check(r, SEVM_FLAVOUR_SEV_ES_INTRAHOST, NULL, 0) == 1;
	b->has_mirror = sevm_flavour_check(r, SEVM_FLAVOUR_MIRROR, b->why_no_mirror,
					   sizeof(b->why_no_mirror)) == 1;
}

static const char *few_asids(const struct conf_backend *b, char *buf, size_t len)
{
	const struct sevm_probe_report *r = &b->probe;
	int64_t n = asids_free(r->sev_asids_max, r->sev_asids_used);

	if (r->sev_asids_max < 0 || r->sev_asids_used < 0)
		snprintf(buf, len, "the misc cgroup does not say how many SEV ASIDs this process "
			 "may use");
	else if (n < 0)
		snprintf(buf, len, "the misc cgroup sets no SEV ASID limit for this process: using "
			 "up the host's ASIDs would starve its other guests (run the suite in a "
			 "misc cgroup whose misc.max has \"sev %d\" or less)", FEW_ASIDS);
	else if (n == 0)
		snprintf(buf, len, "no SEV ASID is free to this process (%lld of %lld in use)",
			 (long long)r->sev_asids_used, (long long)r->sev_asids_max);
	else if (n > FEW_ASIDS)
		snprintf(buf, len, "%lld SEV ASIDs are free to this process, more than the %d this "
			 "case will use up", (long long)n, FEW_ASIDS);
	else
		return NULL;
	return buf;
}

const char *conf_skip_reason(const struct conf_backend *b, const struct conf_case *c,
			     char *buf, size_t len)
{
	if (b->kind == CONF_MODEL)
		return NULL;
	if (b->why_not[0]) {
		snprintf(buf, len, "%s", b->why_not);
		return buf;
	}
	if ((c->needs & CONF_NEED_MIRROR) && !b->has_mirror) {
		snprintf(buf, len, "%s", b->why_no_mirror);
		return buf;
	}
	if (c->needs & CONF_NEED_FEW_ASIDS)
		return few_asids(b, buf, len);
	return NULL;
}

void conf_setup(struct conf_backend *b)
{
	cur_b = b;
	cur_c = NULL;
	if (b->kind == CONF_MODEL)
		model_host(b, NULL);
	else
		sevm_set_backend(NULL);
}

void conf_teardown(struct conf_backend *b)
{
	alarm(0);
	watched = 0;
	if (b->kind == CONF_MODEL) {
		sevsim_free(b->sim);
		b->sim = NULL;
	}
}

void conf_run(struct conf_backend *b, const struct conf_case *c)
{
	struct sigaction sa = { .sa_handler = watchdog };
	int fds;

	cur_b = b;
	cur_c = c;
	snprintf(watchdog_msg, sizeof(watchdog_msg), "FAIL %s on %s: still running after %u s: "
		 "a deadlock, or a call that hangs\n", c->name, b->name, c->timeout);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	fds = tu_count_fds();
	alarm(c->timeout);
	c->run(b);
	alarm(0);
	EXPECT(tu_count_fds() == fds, "%d fds open before the case, %d after", fds, tu_count_fds());
	printf("PASS %s on %s\n", c->name, b->name);
	fflush(stdout);
}
