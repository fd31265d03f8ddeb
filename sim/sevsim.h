/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sevsim: a software model of KVM's SEV interface and the SEV firmware, for
 * testing SEV and SEV-ES migration without SEV hardware.  It plugs into
 * libsevmigrate's kernel seam (sevm_set_backend()): /dev/kvm, VM and vCPU
 * fds, /dev/sev and the kvm_amd/misc-cgroup files it knows are served by the
 * model; every other fd (guest RAM memfds, sockets) goes to the kernel.
 *
 * One modelled host spans processes: its state lives in a shared memory
 * file, and the model's VM fds are real fds, so they travel by SCM_RIGHTS
 * and a VM created in one process can be the source of a MOVE in another,
 * as on a real host.  Thread-safe; every rule cites the kernel function or
 * SEV API section it models, and fails with the same errno / firmware code.
 */
#ifndef SEVSIM_H
#define SEVSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sevsim;

struct sevsim_host_opts {
	size_t sz;
	uint32_t sev_asids;	/* SEV ASIDs the host has (misc.capacity "sev"); 0: 15 */
	uint32_t sev_es_asids;	/* SEV-ES ASIDs ("sev_es"); 0: 15 */
	bool no_sev_es;		/* model kvm_amd.sev_es=0 */
	bool no_vm_types;	/* a kernel before KVM_SEV_INIT2 (< 6.10): legacy INIT only */
	bool dead_vm_rejects_ioctls; /* v5.16..v6.16: every ioctl on a moved-from VM is -EIO */
	uint32_t api_major, api_minor, build; /* firmware version; 0: 1.55 build 21 */
	/*
	 * The platform owner: NULL, a self-signed OCA of the host's own; a host,
	 * that host's OCA key and certificate (one owner's domain, policy bit
	 * DOMAIN).  Read at creation only.
	 */
	const struct sevsim *domain_of;
	/* KVM ids 10 and 14 (SEND/RECEIVE_UPDATE_VMSA) are -EINVAL, as upstream */
	bool upstream_vmsa_ids;
};

/* A new modelled host, empty.  0 or -errno. */
int sevsim_host_create(const struct sevsim_host_opts *opts, struct sevsim **out);

/* The fd of the host's shared state, to hand to another process (it is O_CLOEXEC). */
int sevsim_host_fd(const struct sevsim *sim);

/* Join a host created by another process from its fd (dup'ed; the caller keeps fd). */
int sevsim_host_attach(int fd, struct sevsim **out);

/* Serve libsevmigrate's seam from this model (sevm_set_backend). */
int sevsim_install(struct sevsim *sim);

/* Put the kernel back behind the seam; free the handle (the host lives on in other users). */
void sevsim_free(struct sevsim *sim);

/*
 * The model's AMD signing chain, ASK || ARK (1664 bytes), as SEND_START's
 * amd_certs takes it: what a VMM would fetch from AMD's KDS.  Every model
 * host trusts this ARK.  0; -ENOSPC with *len set when buf is NULL or *len
 * short; -EINVAL.
 */
int sevsim_amd_certs(struct sevsim *sim, void *buf, uint32_t *len);

/* ---- Inspection, for tests (what hardware would not show) ---------------- */

struct sevsim_vm_info {
	size_t sz;
	bool sev_active;	/* sev_guest() */
	bool es_active;
	bool dead;		/* kvm_vm_dead() after a MOVE away */
	bool mirror;
	uint32_t asid;
	uint32_t handle;
	uint32_t guest_state;	/* SEV API guest state: 0 UNINIT ... (SEVSIM_GSTATE_*) */
	uint32_t nr_vcpus;
	uint32_t nr_vmsas;	/* vCPUs with an encrypted VMSA: LAUNCH_UPDATE_VMSA or RECEIVE_UPDATE_VMSA */
	uint32_t nr_regions;
	uint64_t pages_locked;
	int saved_sev_fd;	/* sev->fd as the kernel holds it: a number, 0 until
				   LAUNCH_START saves one (and after a MOVE) */
};

enum {
	SEVSIM_GSTATE_UNINIT, SEVSIM_GSTATE_LUPDATE, SEVSIM_GSTATE_LSECRET,
	SEVSIM_GSTATE_RUNNING, SEVSIM_GSTATE_SUPDATE, SEVSIM_GSTATE_RUPDATE,
	SEVSIM_GSTATE_SENT,
};

/* What the model knows of the VM behind vm_fd; -EBADF for a non-model fd. */
int sevsim_vm_info(struct sevsim *sim, int vm_fd, struct sevsim_vm_info *info);

/* ASIDs in use: SEV, SEV-ES. */
void sevsim_asids_used(struct sevsim *sim, uint32_t *sev, uint32_t *sev_es);

#ifdef __cplusplus
}
#endif

#endif
