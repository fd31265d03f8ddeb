/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SEV migration conformance suite: the cases of the kernel selftest
 * sev_migrate_tests.c, and ours, written against libsevmigrate's public API
 * and run unchanged against two back ends — the SEV model (sim/) and, on a
 * host with SEV, the real kernel.  The driver (test-conformance.c) makes one
 * Check test of each case on each back end.
 */
#ifndef SEVM_CONFORMANCE_H
#define SEVM_CONFORMANCE_H

#include <stdbool.h>
#include <stddef.h>

#include <sevmigrate.h>

#include "sevsim.h"

enum conf_kind {
	CONF_MODEL,	/* sevsim behind the library's seam */
	CONF_KERNEL,	/* this host's KVM and /dev/sev */
};

struct conf_backend {
	enum conf_kind kind;
	const char *name;		/* "the model", "the real kernel" */
	bool has_es;			/* SEV-ES guests, legacy and KVM_X86_SEV_ES_VM */
	bool has_mirror;		/* KVM_CAP_VM_COPY_ENC_CONTEXT_FROM */
	char why_not[256];		/* kernel: why no case can run ("" when they can) */
	char why_no_mirror[256];
	struct sevm_probe_report probe;	/* kernel: sevm_probe() at start */
	struct sevsim *sim;		/* model: the host of the running case */
};

/* What a case needs beyond an SEV host with MOVE. */
#define CONF_NEED_MIRROR	(1u << 0)	/* COPY: mirror VMs */
#define CONF_NEED_FEW_ASIDS	(1u << 1)	/* few enough ASIDs to use them all up */

struct conf_case {
	const char *name;
	unsigned int needs;	/* CONF_NEED_* */
	unsigned int timeout;	/* seconds; then the watchdog ends the program */
	void (*run)(struct conf_backend *b);
};

extern const struct conf_case conf_cases[];
extern const unsigned int conf_nr_cases;

/* Describe the model, or this host's kernel (probing it: call before any model is installed). */
void conf_model_backend(struct conf_backend *b);
void conf_kernel_backend(struct conf_backend *b);

/* NULL when case c can run on b; otherwise why not, written into buf. */
const char *conf_skip_reason(const struct conf_backend *b, const struct conf_case *c,
			     char *buf, size_t len);

/* Before and after each case, as a Check checked fixture.  The model gets a fresh host. */
void conf_setup(struct conf_backend *b);
void conf_teardown(struct conf_backend *b);

/*
 * Run case c on b under a watchdog, check it leaves no fd open, print
 * "PASS <case> on <backend>".  A failure fails the Check test (it does not
 * return).
 */
void conf_run(struct conf_backend *b, const struct conf_case *c);

/* How many GAP lines (library messages vaguer than the case) were printed. */
unsigned int conf_nr_gaps(void);

#endif
