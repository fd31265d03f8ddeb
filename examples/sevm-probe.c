/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sevm-probe: what this host and this process can migrate, and if not, why.
 *
 * Build: cc -o sevm-probe sevm-probe.c $(pkg-config --cflags --libs libsevmigrate)
 */
#include <getopt.h>
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sevmigrate.h>

#include "sevsim.h"

/* Exit statuses, also documented in sevm-probe(1). */
enum { EXIT_OK, EXIT_PROBE_FAILED, EXIT_USAGE, EXIT_NOT_POSSIBLE };

static const char *const vm_type_names[] = {
	"default", "sw-protected", "sev", "sev-es", "snp", "tdx",
};

/* PLATFORM_STATUS flags as Linux packs them into one u32 (psp-sev.h). */
#define SEV_FLAG_OWNER	(1u << 0)
#define SEV_FLAG_ES	(1u << 8)

/* A serial console in the C locale would show mojibake for ✓ ✗ —. */
static const char *mark_ok = "+", *mark_no = "-", *dash = "--";

static void use_utf8_if_possible(void)
{
	setlocale(LC_CTYPE, "");
	if (!strcmp(nl_langinfo(CODESET), "UTF-8")) {
		mark_ok = "\u2713";
		mark_no = "\u2717";
		dash = "\u2014";
	}
}

static const char *flavour_name(enum sevm_flavour f)
{
	const char *name = sevm_flavour_name(f);

	/* A library older than this header does not know every flavour. */
	return name ? name : "(unknown flavour)";
}

/* Also when the check itself fails, why says so: no caller prints garbage. */
static bool possible(const struct sevm_probe_report *r, int f, char *why, size_t len)
{
	int ok = sevm_flavour_check(r, f, why, len);

	if (ok < 0)
		snprintf(why, len, "%s", sevm_last_error());
	return ok > 0;
}

static __attribute__((format(printf, 2, 3)))
void row(const char *label, const char *fmt, ...)
{
	va_list ap;

	printf("  %-22s ", label);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void section(const char *title)
{
	printf("\n%s\n", title);
}

static void row_err(const char *label, int err)
{
	if (err)
		row(label, "unavailable (%s)", sevm_strerror(err));
	else
		row(label, "ok");
}

enum num_kind { NUM_BOOL, NUM_MASK, NUM_COUNT };

/*
 * Numbers that could not be learned are -1, or a negative errno where
 * KVM_CHECK_EXTENSION itself failed.  The misc cgroup's "max" (no limit)
 * arrives as INT64_MAX.
 */
static void row_num(const char *label, int64_t v, enum num_kind kind)
{
	if (v < 0)
		row(label, "unknown");
	else if (kind == NUM_BOOL)
		row(label, "%s", v ? "yes" : "no");
	else if (kind == NUM_MASK)
		row(label, "0x%" PRIx64, v);
	else if (v == INT64_MAX)
		row(label, "no limit");
	else
		row(label, "%" PRId64, v);
}

static void print_kvm(const struct sevm_probe_report *r)
{
	const char *sep = "";

	section("KVM");
	row_err("/dev/kvm", r->kvm_open_err);
	if (r->kvm_open_err)
		return;
	row_num("API version", r->kvm_api_version, NUM_COUNT);
	printf("  %-22s %s", "VM types", r->vm_types ? "" : "none");
	for (unsigned int t = 0; t < 64; t++) {
		if (!(r->vm_types & (1ull << t)))
			continue;
		if (t < sizeof(vm_type_names) / sizeof(vm_type_names[0]))
			printf("%s%s", sep, vm_type_names[t]);
		else
			printf("%stype %u", sep, t);
		sep = ", ";
	}
	putchar('\n');
	row_num("move enc context", r->cap_move_enc_context, NUM_BOOL);
	row_num("copy enc context", r->cap_copy_enc_context, NUM_BOOL);
	row_num("guest_memfd", r->cap_guest_memfd, NUM_BOOL);
	row_num("guest_memfd flags", r->cap_guest_memfd_flags, NUM_MASK);
	row_num("memory attributes", r->cap_memory_attributes, NUM_MASK);
	row_num("user memory2", r->cap_user_memory2, NUM_BOOL);
	row_num("dirty log clear", r->cap_dirty_log_clear, NUM_MASK);
	row_num("exit hypercall", r->cap_exit_hypercall, NUM_MASK);
	row_num("max vCPUs", r->cap_max_vcpus, NUM_COUNT);
	row("KVM_LINK_GUEST_MEMFD", "%s", r->gmem_link ? "yes" : "no");
}

static void print_sev(const struct sevm_probe_report *r)
{
	const char *fw = sevm_fw_status_name(r->sev_fw_error);

	section("SEV platform (/dev/sev)");
	/* Read-only still gives PLATFORM_STATUS, so both lines can differ. */
	row_err("/dev/sev read-write", r->sev_open_err);
	if (r->sev_open_err && r->sev_status_err == r->sev_open_err)
		return;
	row_err("platform status", r->sev_status_err);
	if (r->sev_fw_error)
		row("firmware status", "0x%" PRIx32 " %s", r->sev_fw_error,
		    fw ? fw : "(unknown)");
	if (r->sev_status_err)
		return;
	row("API version", "%u.%u build %u", r->sev_api_major,
	    r->sev_api_minor, r->sev_build);
	row("state", "%s", r->sev_state == 0 ? "UNINIT" : r->sev_state == 1 ? "INIT" :
			   r->sev_state == 2 ? "WORKING" : "(unknown)");
	row("flags", "0x%" PRIx32 "%s%s", r->sev_flags,
	    r->sev_flags & SEV_FLAG_OWNER ? " owned" : "",
	    r->sev_flags & SEV_FLAG_ES ? " es-init" : "");
	row("guests", "%" PRIu32, r->sev_guest_count);
}

static const char *module_param(int v)
{
	return v < 0 ? "unknown (kvm_amd not loaded)" : v ? "on" : "off";
}

static void print_host(const struct sevm_probe_report *r)
{
	section("kvm_amd");
	row("sev", "%s", module_param(r->kvm_amd_sev));
	row("sev_es", "%s", module_param(r->kvm_amd_sev_es));
	row("sev_snp", "%s", module_param(r->kvm_amd_sev_snp));

	section("SEV ASIDs (misc cgroup)");
	row_num("SEV max", r->sev_asids_max, NUM_COUNT);
	row_num("SEV used", r->sev_asids_used, NUM_COUNT);
	row_num("SEV-ES max", r->sev_es_asids_max, NUM_COUNT);
	row_num("SEV-ES used", r->sev_es_asids_used, NUM_COUNT);

	section("Process");
	row("CAP_SYS_ADMIN", "%s", r->cap_sys_admin ? "yes" : "no");
	row("CAP_IPC_LOCK", "%s", r->cap_ipc_lock ? "yes" : "no");
	if (r->memlock_limit == UINT64_MAX)
		row("RLIMIT_MEMLOCK", "unlimited");
	else
		row("RLIMIT_MEMLOCK", "%" PRIu64 " bytes (%.1f MiB)",
		    r->memlock_limit, (double)r->memlock_limit / 1048576.0);
}

static void print_flavours(const struct sevm_probe_report *r)
{
	section("Migration flavours");
	for (int f = 0; f < SEVM_FLAVOUR__COUNT; f++) {
		char why[256];

		if (possible(r, f, why, sizeof(why)))
			printf("  %s %s\n", mark_ok, flavour_name(f));
		else
			printf("  %s %-16s  %s %s\n", mark_no, flavour_name(f), dash, why);
	}
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);	/* UTF-8 passes through as JSON allows */
	}
	putchar('"');
}

/* Raw values, so a script sees exactly what the library reported. */
#define J_INT(f)  printf(",\n  \"%s\": %" PRId64, #f, (int64_t)r->f)
#define J_UINT(f) printf(",\n  \"%s\": %" PRIu64, #f, (uint64_t)r->f)
#define J_BOOL(f) printf(",\n  \"%s\": %s", #f, r->f ? "true" : "false")

static void print_json(const struct sevm_probe_report *r)
{
	printf("{\n  \"library_version\": ");
	json_string(sevm_version_string());
	J_INT(kvm_open_err); J_INT(kvm_api_version); J_UINT(vm_types);
	J_INT(cap_move_enc_context); J_INT(cap_copy_enc_context);
	J_INT(cap_guest_memfd); J_INT(cap_guest_memfd_flags);
	J_INT(cap_memory_attributes); J_INT(cap_user_memory2);
	J_INT(cap_dirty_log_clear); J_INT(cap_exit_hypercall);
	J_INT(cap_max_vcpus); J_BOOL(gmem_link);
	J_INT(sev_open_err); J_INT(sev_status_err); J_UINT(sev_fw_error);
	J_UINT(sev_api_major); J_UINT(sev_api_minor); J_UINT(sev_build);
	J_UINT(sev_state); J_UINT(sev_flags); J_UINT(sev_guest_count);
	J_INT(kvm_amd_sev); J_INT(kvm_amd_sev_es); J_INT(kvm_amd_sev_snp);
	J_INT(sev_asids_max); J_INT(sev_asids_used);
	J_INT(sev_es_asids_max); J_INT(sev_es_asids_used);
	J_BOOL(cap_sys_admin); J_BOOL(cap_ipc_lock); J_UINT(memlock_limit);

	printf(",\n  \"flavours\": {");
	for (int f = 0; f < SEVM_FLAVOUR__COUNT; f++) {
		char why[256];
		bool ok = possible(r, f, why, sizeof(why));

		printf("%s\n    ", f ? "," : "");
		json_string(flavour_name(f));
		printf(": {\"possible\": %s, \"why\": ", ok ? "true" : "false");
		json_string(ok ? "" : why);
		putchar('}');
	}
	printf("\n  }\n}\n");
}

/* Adds each name in a comma-separated list to *mask; -1 on an unknown one. */
static int parse_require(const char *arg, unsigned int *mask)
{
	char *list = strdup(arg), *save = NULL;
	int ret = 0;

	if (!list)
		return -1;
	for (char *name = strtok_r(list, ",", &save); name;
	     name = strtok_r(NULL, ",", &save)) {
		int f = 0;

		while (f < SEVM_FLAVOUR__COUNT && strcmp(name, flavour_name(f)))
			f++;
		if (f == SEVM_FLAVOUR__COUNT) {
			fprintf(stderr, "sevm-probe: unknown flavour '%s' (known:", name);
			for (f = 0; f < SEVM_FLAVOUR__COUNT; f++)
				fprintf(stderr, " %s", flavour_name(f));
			fprintf(stderr, ")\n");
			ret = -1;
			break;
		}
		*mask |= 1u << f;
	}
	free(list);
	return ret;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sevm-probe [--json] [--model] [--require FLAVOUR[,FLAVOUR...]]\n"
		"Report what this host and process can migrate with libsevmigrate.\n\n"
		"  -j, --json             print one JSON object instead of a table\n"
		"  -m, --model            probe a host modelled by sevsim (SEV without hardware)\n"
		"  -r, --require LIST     exit 3 unless every listed flavour is possible\n"
		"  -h, --help             print this help\n\n"
		"Exit status: 0 ok, 1 the probe failed, 2 usage error,\n"
		"3 a required flavour is not possible.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "model", no_argument, NULL, 'm' },
		{ "require", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct sevm_probe_report report = { .sz = sizeof(report) };
	unsigned int required = 0;
	bool json = false, model = false;
	struct sevsim *sim = NULL;
	int c, err, status = EXIT_OK;

	while ((c = getopt_long(argc, argv, "jmr:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'm':
			model = true;
			break;
		case 'r':
			if (parse_require(optarg, &required))
				return EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sevm-probe: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}

	/* The model stands behind the library's seam; the probe is the same code. */
	if (model) {
		struct sevsim_host_opts o = { .sz = sizeof(o) };

		err = sevsim_host_create(&o, &sim);
		if (!err)
			err = sevsim_install(sim);
		if (err) {
			fprintf(stderr, "sevm-probe: cannot start the SEV model: %s\n",
				sevm_strerror(err));
			return EXIT_PROBE_FAILED;
		}
	}
	err = sevm_probe(&report);
	sevsim_free(sim);
	if (err) {
		const char *msg = sevm_last_error();

		fprintf(stderr, "sevm-probe: probe failed: %s\n",
			*msg ? msg : sevm_strerror(err));
		return EXIT_PROBE_FAILED;
	}

	if (json) {
		print_json(&report);
	} else {
		use_utf8_if_possible();
		printf("libsevmigrate %s\n", sevm_version_string());
		print_kvm(&report);
		print_sev(&report);
		print_host(&report);
		print_flavours(&report);
	}

	/* On stderr too, so a script that discards the table still learns why. */
	for (int f = 0; f < SEVM_FLAVOUR__COUNT; f++) {
		char why[256];

		if (!(required & (1u << f)) || possible(&report, f, why, sizeof(why)))
			continue;
		fprintf(stderr, "sevm-probe: %s is not possible: %s\n",
			flavour_name(f), why);
		status = EXIT_NOT_POSSIBLE;
	}
	return status;
}
