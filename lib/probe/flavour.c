/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Which migrations the probed host can run, each refusal in one line.  The
 * checks go from the most basic need to the most specific, so the line names
 * the first thing a user has to fix.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../abi/compat.h"
#include "../core/error.h"
#include "../core/opts.h"

static const char *const names[SEVM_FLAVOUR__COUNT] = {
	[SEVM_FLAVOUR_INTRAHOST] = "intrahost",
	[SEVM_FLAVOUR_SEV_INTRAHOST] = "sev-intrahost",
	[SEVM_FLAVOUR_SEV_ES_INTRAHOST] = "sev-es-intrahost",
	[SEVM_FLAVOUR_MIRROR] = "mirror",
	[SEVM_FLAVOUR_SEV_SEND] = "sev-send",
	[SEVM_FLAVOUR_SEV_RECEIVE] = "sev-receive",
	[SEVM_FLAVOUR_GMEM_LINK] = "gmem-link",
};

const char *sevm_flavour_name(enum sevm_flavour f)
{
	return (unsigned int)f < SEVM_FLAVOUR__COUNT ? names[f] : NULL;
}

struct why {
	char *buf;
	size_t len;
};

/* Returns 0 (not possible) so a check can end with `return no(w, ...)`. */
static int no(struct why *w, const char *fmt, ...) SEVM_PRINTF(2, 3);
static int no(struct why *w, const char *fmt, ...)
{
	va_list ap;

	if (w->buf && w->len) {
		va_start(ap, fmt);
		vsnprintf(w->buf, w->len, fmt, ap);
		va_end(ap);
	}
	return 0;
}

static int kvm_usable(const struct sevm_probe_report *r, struct why *w)
{
	if (r->kvm_open_err)
		return no(w, "cannot open /dev/kvm read-write: %s", sevm_strerror(r->kvm_open_err));
	if (r->kvm_api_version < 0)
		return no(w, "KVM_GET_API_VERSION failed: %s", sevm_strerror(r->kvm_api_version));
	if (r->kvm_api_version != KVM_API_VERSION)
		return no(w, "KVM API version is %d, this library speaks %d",
			  r->kvm_api_version, KVM_API_VERSION);
	return 1;
}

/*
 * An SEV VM is either a VM of the SEV type (INIT2, Linux 6.10+) or a default
 * VM turned SEV by the legacy KVM_SEV_INIT, which needs kvm_amd.sev on.
 */
static int sev_type_usable(const struct sevm_probe_report *r, int type,
			   int module_param, const char *what, struct why *w)
{
	if (!kvm_usable(r, w))
		return 0;
	if (r->vm_types & (1ull << type))
		return 1;
	if (module_param == 1)
		return 1;
	if (module_param == 0)
		return no(w, "kvm_amd.%s is off and KVM offers no %s VM type (KVM_CAP_VM_TYPES = 0x%llx)",
			  type == KVM_X86_SEV_VM ? "sev" : "sev_es", what,
			  (unsigned long long)r->vm_types);
	return no(w, "no %s: KVM offers no %s VM type (KVM_CAP_VM_TYPES = 0x%llx) and kvm_amd is not loaded",
		  what, what, (unsigned long long)r->vm_types);
}

static int sev_dev_usable(const struct sevm_probe_report *r, struct why *w)
{
	if (r->sev_status_err == -ENOENT)
		return no(w, "no /dev/sev: the SEV firmware device is absent");
	if (r->sev_status_err)
		return no(w, "/dev/sev PLATFORM_STATUS failed: %s", sevm_strerror(r->sev_status_err));
	return 1;
}

static int cap_present(int64_t value, const char *cap, struct why *w)
{
	if (value > 0)
		return 1;
	return no(w, "the kernel lacks %s", cap);
}

static int check(const struct sevm_probe_report *r, enum sevm_flavour f, struct why *w)
{
	switch (f) {
	case SEVM_FLAVOUR_INTRAHOST:
		return kvm_usable(r, w);
	case SEVM_FLAVOUR_SEV_INTRAHOST:
		return sev_type_usable(r, KVM_X86_SEV_VM, r->kvm_amd_sev, "SEV", w) &&
		       cap_present(r->cap_move_enc_context, "KVM_CAP_VM_MOVE_ENC_CONTEXT_FROM", w);
	case SEVM_FLAVOUR_SEV_ES_INTRAHOST:
		return sev_type_usable(r, KVM_X86_SEV_ES_VM, r->kvm_amd_sev_es, "SEV-ES", w) &&
		       cap_present(r->cap_move_enc_context, "KVM_CAP_VM_MOVE_ENC_CONTEXT_FROM", w);
	case SEVM_FLAVOUR_MIRROR:
		return sev_type_usable(r, KVM_X86_SEV_VM, r->kvm_amd_sev, "SEV", w) &&
		       cap_present(r->cap_copy_enc_context, "KVM_CAP_VM_COPY_ENC_CONTEXT_FROM", w);
	/* Remote migration is the firmware's work: its device comes first. */
	case SEVM_FLAVOUR_SEV_SEND:
		return sev_dev_usable(r, w) &&
		       sev_type_usable(r, KVM_X86_SEV_VM, r->kvm_amd_sev, "SEV", w);
	case SEVM_FLAVOUR_SEV_RECEIVE:
		if (!sev_dev_usable(r, w) ||
		    !sev_type_usable(r, KVM_X86_SEV_VM, r->kvm_amd_sev, "SEV", w))
			return 0;
		/* sev-dev.c lets PDH_CERT_EXPORT initialise the platform only for a writer. */
		if (r->sev_open_err && r->sev_state != SEVM_ABI_SEV_STATE_INIT)
			return no(w, "exporting the PDH needs /dev/sev open for writing while the platform is not INIT: %s",
				  sevm_strerror(r->sev_open_err));
		return 1;
	case SEVM_FLAVOUR_GMEM_LINK:
		if (!kvm_usable(r, w) || !cap_present(r->cap_guest_memfd, "KVM_CAP_GUEST_MEMFD", w))
			return 0;
		if (!r->gmem_link)
			return no(w, "the kernel has no KVM_LINK_GUEST_MEMFD (proposed, not merged)%s",
				  r->cap_guest_memfd_flags > 0 && (r->cap_guest_memfd_flags & 3) == 3 ?
				  "; mmap-able guest_memfd can still be handed over as mapped memory" : "");
		return 1;
	default:
		return -1;
	}
}

int sevm_flavour_check(const struct sevm_probe_report *report,
		       enum sevm_flavour flavour, char *why, size_t len)
{
	struct sevm_probe_report r = { 0 };
	struct why w = { why, len };
	int err = SEVM_OPTS_CHECK(report, "sevm_flavour_check");
	int ok;

	if (err)
		return err;
	/* A report from an older caller is shorter: read its fields as zero beyond it. */
	memcpy(&r, report, report->sz < sizeof(r) ? report->sz : sizeof(r));
	ok = check(&r, flavour, &w);
	if (ok < 0)
		return sevm__fail(-EINVAL, "sevm_flavour_check: unknown flavour %d", (int)flavour);
	if (ok && why && len)
		why[0] = '\0';
	return ok;
}
