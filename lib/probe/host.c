/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../core/seam.h"
#include "host.h"

/*
 * Files are opened through the seam so that the SEV model can present a
 * host with kvm_amd loaded and an ASID budget.  Returns bytes read or -1.
 */
static ssize_t read_small_file(const char *path, char *buf, size_t len)
{
	int fd = sevm__open_quiet(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	sevm__close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* kvm_amd prints booleans as Y/N on current kernels and 1/0 on old ones. */
static int module_bool(const char *param)
{
	char path[128], buf[16];

	snprintf(path, sizeof(path), "/sys/module/kvm_amd/parameters/%s", param);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	return buf[0] == 'Y' || buf[0] == 'y' || buf[0] == '1';
}

void sevm__probe_kvm_amd(struct sevm_probe_report *r)
{
	r->kvm_amd_sev = module_bool("sev");
	r->kvm_amd_sev_es = module_bool("sev_es");
	r->kvm_amd_sev_snp = module_bool("sev_snp");
}

/* misc.* files hold lines "sev 509" / "sev_es max"; "max" is no limit. */
static int64_t misc_value(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) || p[klen] != ' ')
			continue;
		if (!strncmp(p + klen + 1, "max", 3))
			return INT64_MAX;
		return strtoll(p + klen + 1, NULL, 10);
	}
	return -1;
}

static int64_t min_known(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

void sevm__probe_cgroup(struct sevm_probe_report *r)
{
	char self[512], path[700], cap[256], max[256], cur[256];
	char *rel;

	r->sev_asids_max = r->sev_asids_used = -1;
	r->sev_es_asids_max = r->sev_es_asids_used = -1;
	/* The host's ASID count is in the root's misc.capacity (cgroup v2). */
	if (read_small_file("/sys/fs/cgroup/misc.capacity", cap, sizeof(cap)) < 0)
		return;
	r->sev_asids_max = misc_value(cap, "sev");
	r->sev_es_asids_max = misc_value(cap, "sev_es");
	if (read_small_file("/proc/self/cgroup", self, sizeof(self)) <= 0 ||
	    strncmp(self, "0::", 3))
		return;
	rel = self + 3;
	rel[strcspn(rel, "\n")] = '\0';
	snprintf(path, sizeof(path), "/sys/fs/cgroup%s/misc.max", rel);
	if (read_small_file(path, max, sizeof(max)) > 0) {
		r->sev_asids_max = min_known(r->sev_asids_max, misc_value(max, "sev"));
		r->sev_es_asids_max = min_known(r->sev_es_asids_max, misc_value(max, "sev_es"));
	}
	snprintf(path, sizeof(path), "/sys/fs/cgroup%s/misc.current", rel);
	if (read_small_file(path, cur, sizeof(cur)) > 0) {
		r->sev_asids_used = misc_value(cur, "sev");
		r->sev_es_asids_used = misc_value(cur, "sev_es");
	}
}

static bool has_cap(cap_t caps, cap_value_t cap)
{
	cap_flag_value_t v = CAP_CLEAR;

	return caps && cap_get_flag(caps, cap, CAP_EFFECTIVE, &v) == 0 && v == CAP_SET;
}

/*
 * CAP_IPC_LOCK decides whether registering encrypted regions may pin more
 * than RLIMIT_MEMLOCK (sev_pin_memory); CAP_SYS_ADMIN is what older kernels
 * asked of /dev/sev's PEK/PDH commands and what network namespaces need.
 */
void sevm__probe_privilege(struct sevm_probe_report *r)
{
	cap_t caps = cap_get_proc();
	struct rlimit rl;

	r->cap_sys_admin = has_cap(caps, CAP_SYS_ADMIN);
	r->cap_ipc_lock = has_cap(caps, CAP_IPC_LOCK);
	if (caps)
		cap_free(caps);
	r->memlock_limit = getrlimit(RLIMIT_MEMLOCK, &rl) == 0 ? (uint64_t)rl.rlim_cur : 0;
}
