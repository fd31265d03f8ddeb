/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The files the probe reads about the host: kvm_amd's module parameters and
 * the misc cgroup's SEV ASID accounting.  Every process on the model's host
 * is in one cgroup, "/sevsim", whose misc.max is "max" and whose usage is the
 * ASIDs charged.  They are read-only snapshots (memfds), not model fds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define PARAMS		"/sys/module/kvm_amd/parameters/"
#define CGROUP		"/sys/fs/cgroup"
#define SIM_CGROUP	"/sevsim"

static int text_fd(const char *text, int flags)
{
	size_t len = strlen(text);
	int fd = memfd_create("sevsim-file", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);

	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -EIO;
	}
	return fd;
}

/* misc.capacity: sev_hardware_setup() sets sev_es only with SEV-ES enabled */
static void capacity(const struct sim_shared *sh, char *buf, size_t len)
{
	snprintf(buf, len, "sev %u\nsev_es %u\n", sh->cfg.sev_asids,
		 sh->cfg.sev_es ? sh->cfg.sev_es_asids : 0);
}

static void current_usage(struct sevsim *sim, char *buf, size_t len)
{
	uint32_t sev, es;

	sevsim_asids_used(sim, &sev, &es);
	snprintf(buf, len, "sev %u\nsev_es %u\n", sev, es);
}

int sim__file_open(struct sevsim *sim, const char *path, int flags)
{
	const struct sim_config *c = &sim->sh->cfg;
	char buf[128];

	if (!strcmp(path, PARAMS "sev"))
		snprintf(buf, sizeof(buf), "Y\n");
	else if (!strcmp(path, PARAMS "sev_es"))
		snprintf(buf, sizeof(buf), "%s\n", c->sev_es ? "Y" : "N");
	else if (!strcmp(path, PARAMS "sev_snp"))
		snprintf(buf, sizeof(buf), "N\n");
	else if (!strcmp(path, CGROUP "/misc.capacity"))
		capacity(sim->sh, buf, sizeof(buf));
	else if (!strcmp(path, "/proc/self/cgroup"))
		snprintf(buf, sizeof(buf), "0::" SIM_CGROUP "\n");
	else if (!strcmp(path, CGROUP SIM_CGROUP "/misc.max"))
		snprintf(buf, sizeof(buf), "sev max\nsev_es max\n");
	else if (!strcmp(path, CGROUP SIM_CGROUP "/misc.current"))
		current_usage(sim, buf, sizeof(buf));
	else
		return -ENOENT;
	/* sysfs and cgroupfs refuse writes to these (0444) */
	if ((flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	return text_fd(buf, flags);
}
