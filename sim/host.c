/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The modelled host: its shared mapping, locks, the processes attached to it,
 * and the lifetime of its VMs.
 *
 * A VM lives while some process holds one of its fds (the VM fd or a vCPU
 * fd) or a mirror pins it, as a struct kvm lives while files or
 * kvm_get_kvm() references hold it.  The model cannot count file references
 * across processes, so it looks: at a close through the backend (and before
 * it gives up for want of a VM slot or an ASID) it scans /proc/<pid>/fd of
 * every live attached process and destroys the VMs nobody holds.  A VM whose
 * fds were closed with a plain close() therefore lives on until the next scan.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "internal.h"

void sim__lock(pthread_mutex_t *m)
{
	/* A process died holding it: the state is the model's, take it as it is. */
	if (pthread_mutex_lock(m) == EOWNERDEAD)
		pthread_mutex_consistent(m);
}

void sim__unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
}

int sim__mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int r;

	r = pthread_mutexattr_init(&a);
	if (r)
		return -r;
	r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!r)
		r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (!r)
		r = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return -r;
}

struct sim_vm *sim__vm(struct sim_shared *sh, uint32_t i, uint32_t gen)
{
	if (i >= SIM_MAX_VMS || !(gen & 1))
		return NULL;
	if (__atomic_load_n(&sh->vms[i].gen, __ATOMIC_ACQUIRE) != gen)
		return NULL;
	return &sh->vms[i];
}

uint32_t sim__vm_index(const struct sim_shared *sh, const struct sim_vm *vm)
{
	return (uint32_t)(vm - sh->vms);
}

/* ---- Creating and joining a host ---------------------------------------- */

static int check_opts(const struct sevsim_host_opts *o)
{
	const uint8_t *p = (const uint8_t *)o;
	struct sevsim_host_opts v = { 0 };

	if (!o)
		return 0;
	if (o->sz < sizeof(size_t))
		return -EINVAL;
	/* A newer caller's struct: the bytes this model does not know must be zero. */
	for (size_t i = sizeof(*o); i < o->sz; i++)
		if (p[i])
			return -E2BIG;
	memcpy(&v, o, o->sz < sizeof(v) ? o->sz : sizeof(v));
	/* PLATFORM_STATUS carries the version in bytes */
	if (v.api_major > 255 || v.api_minor > 255 || v.build > 255)
		return -EINVAL;
	return 0;
}

static void config_from_opts(struct sim_config *c, const struct sevsim_host_opts *in)
{
	struct sevsim_host_opts o = { 0 };

	if (in)
		memcpy(&o, in, in->sz < sizeof(o) ? in->sz : sizeof(o));
	c->sev_asids = o.sev_asids ? o.sev_asids : 15;
	c->sev_es_asids = o.sev_es_asids ? o.sev_es_asids : 15;
	c->sev_es = !o.no_sev_es;
	c->vm_types = !o.no_vm_types;
	c->dead_vm_rejects_ioctls = o.dead_vm_rejects_ioctls;
	c->upstream_vmsa_ids = o.upstream_vmsa_ids;
	if (o.api_major || o.api_minor || o.build) {
		c->api_major = (uint8_t)o.api_major;
		c->api_minor = (uint8_t)o.api_minor;
		c->build = (uint8_t)o.build;
	} else {
		c->api_major = 1;
		c->api_minor = 55;
		c->build = 21;
	}
}

static int map_host(int fd, struct sevsim **out)
{
	struct sevsim *sim = calloc(1, sizeof(*sim));
	void *p;

	if (!sim)
		return -ENOMEM;
	p = mmap(NULL, sizeof(struct sim_shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		/* Tested as negated: the analyzer does not carry "errno > 0" over to "-errno < 0". */
		int err = -errno;

		if (err >= 0)
			err = -ENOMEM;

		free(sim);
		return err;
	}
	sim->sh = p;
	sim->fd = fd;
	*out = sim;
	return 0;
}

static int init_shared(struct sim_shared *sh, const struct sevsim_host_opts *opts)
{
	struct sevsim_host_opts o = { 0 };
	int r;

	if (opts)
		memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	config_from_opts(&sh->cfg, opts);
	/* min_sev_asid = sev_es_asids + 1 (CPUID 0x8000001f EDX); both ranges must fit. */
	if ((uint64_t)sh->cfg.sev_asids + sh->cfg.sev_es_asids >= SIM_MAX_ASIDS)
		return -EINVAL;
	r = sim__random(sh->host_id, sizeof(sh->host_id));
	if (!r)
		r = sim__mutex_init(&sh->table_lock);
	if (!r)
		r = sim__mutex_init(&sh->mirror_lock);
	if (!r)
		r = sim__mutex_init(&sh->fw_lock);
	if (!r)
		r = sim__platform_create(sh, o.domain_of ? o.domain_of->sh : NULL);
	if (r)
		return r;
	/*
	 * The platform starts INIT, as after kvm_amd's sev_platform_init() at
	 * module load on kernels that initialise the PSP on probe; SEV-ES is
	 * configured when kvm_amd.sev_es is on.
	 */
	sh->fw.platform_state = SEVM_ABI_SEV_STATE_INIT;
	sh->fw.es_ready = sh->cfg.sev_es;
	sh->fw.next_handle = 1;
	sh->version = SIM_LAYOUT_VERSION;
	sh->size = sizeof(*sh);
	__atomic_store_n(&sh->magic, SIM_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

int sevsim_host_create(const struct sevsim_host_opts *opts, struct sevsim **out)
{
	struct sevsim *sim;
	int fd, r;

	if (!out)
		return -EINVAL;
	r = check_opts(opts);
	if (r)
		return r;
	fd = memfd_create("sevsim-host", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, sizeof(struct sim_shared)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = map_host(fd, &sim);
	if (r) {
		close(fd);
		return r;
	}
	r = init_shared(sim->sh, opts);
	if (r) {
		sevsim_free(sim);
		return r;
	}
	sim__enter(sim);
	*out = sim;
	return 0;
}

int sevsim_host_fd(const struct sevsim *sim)
{
	return sim ? sim->fd : -EINVAL;
}

int sevsim_host_attach(int fd, struct sevsim **out)
{
	struct sevsim *sim;
	struct stat st;
	int dfd, r;

	if (!out || fd < 0)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size != sizeof(struct sim_shared))
		return -EINVAL;
	dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return -errno;
	r = map_host(dfd, &sim);
	if (r) {
		close(dfd);
		return r;
	}
	if (__atomic_load_n(&sim->sh->magic, __ATOMIC_ACQUIRE) != SIM_MAGIC ||
	    sim->sh->version != SIM_LAYOUT_VERSION || sim->sh->size != sizeof(struct sim_shared)) {
		sevsim_free(sim);
		return -EINVAL;
	}
	sim__enter(sim);
	*out = sim;
	return 0;
}

void sevsim_free(struct sevsim *sim)
{
	struct sevm_backend b = { .sz = sizeof(b) };

	if (!sim)
		return;
	if (sevm_get_backend(&b) == 0 && b.ctx == sim)
		sevm_set_backend(NULL);
	munmap(sim->sh, sizeof(struct sim_shared));
	close(sim->fd);
	free(sim);
}

/* ---- Processes ------------------------------------------------------------ */

static bool pid_alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno != ESRCH;
}

/* Under table_lock. */
static void prune_procs(struct sim_shared *sh)
{
	for (int i = 0; i < SIM_MAX_PROCS; i++)
		if (sh->procs[i] && !pid_alive(sh->procs[i]))
			sh->procs[i] = 0;
}

void sim__enter(struct sevsim *sim)
{
	struct sim_shared *sh = sim->sh;
	pid_t me = getpid();
	int free_at = -1;

	if (__atomic_load_n(&sim->pid, __ATOMIC_ACQUIRE) == me)
		return;
	sim__lock(&sh->table_lock);
	for (int i = 0; i < SIM_MAX_PROCS; i++) {
		if (sh->procs[i] == me)
			goto done;
		if (!sh->procs[i] && free_at < 0)
			free_at = i;
	}
	if (free_at < 0) {
		prune_procs(sh);
		for (int i = 0; i < SIM_MAX_PROCS && free_at < 0; i++)
			if (!sh->procs[i])
				free_at = i;
	}
	/* A full table: this process's fds stay unseen by the scan (README). */
	if (free_at >= 0)
		sh->procs[free_at] = me;
done:
	sim__unlock(&sh->table_lock);
	__atomic_store_n(&sim->pid, me, __ATOMIC_RELEASE);
}

/* ---- Which VM fds are held --------------------------------------------- */

struct held {
	size_t n, cap;
	struct { dev_t dev; ino_t ino; } *v;
	bool unknown;		/* a process could not be looked at: free nothing */
};

static void held_add(struct held *h, dev_t dev, ino_t ino)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		void *v = realloc(h->v, cap * sizeof(h->v[0]));

		if (!v) {
			h->unknown = true;
			return;
		}
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n].dev = dev;
	h->v[h->n].ino = ino;
	h->n++;
}

static bool held_has(const struct held *h, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].ino == ino && h->v[i].dev == dev)
			return true;
	return false;
}

/* Every model-sized regular file pid has open. */
static void scan_proc(struct held *h, pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d) {
		if (errno != ENOENT)
			h->unknown = true;
		return;
	}
	while ((e = readdir(d))) {
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, 0) < 0)
			continue;
		if (S_ISREG(st.st_mode) && st.st_size == SIM_FD_SIZE)
			held_add(h, st.st_dev, st.st_ino);
	}
	closedir(d);
}

static bool vm_held(const struct held *h, const struct sim_vm *vm)
{
	uint32_t n = __atomic_load_n(&vm->online_vcpus, __ATOMIC_ACQUIRE);

	if (held_has(h, __atomic_load_n(&vm->dev, __ATOMIC_RELAXED),
		     __atomic_load_n(&vm->ino, __ATOMIC_RELAXED)))
		return true;
	for (uint32_t i = 0; i < n; i++)
		if (held_has(h, __atomic_load_n(&vm->vcpus[i].dev, __ATOMIC_RELAXED),
			     __atomic_load_n(&vm->vcpus[i].ino, __ATOMIC_RELAXED)))
			return true;
	return false;
}

static bool pinned_by_mirrors(struct sim_shared *sh, struct sim_vm *vm)
{
	bool pinned;

	sim__lock(&sh->mirror_lock);
	pinned = vm->sev.nr_mirrors > 0;
	sim__unlock(&sh->mirror_lock);
	return pinned;
}

/* kvm_destroy_vm(): under table_lock. */
static void destroy_vm(struct sim_shared *sh, struct sim_vm *vm)
{
	sim__lock(&vm->lock);
	sim__sev_vm_destroy(sh, vm);
	__atomic_store_n(&vm->dead, 0, __ATOMIC_RELAXED);
	__atomic_add_fetch(&vm->gen, 1, __ATOMIC_RELEASE);
	sim__unlock(&vm->lock);
}

void sim__gc(struct sevsim *sim)
{
	struct sim_shared *sh = sim->sh;
	struct held h = { 0 };
	bool again = true;

	sim__lock(&sh->table_lock);
	prune_procs(sh);
	for (int i = 0; i < SIM_MAX_PROCS; i++)
		if (sh->procs[i])
			scan_proc(&h, sh->procs[i]);
	/* Destroying a mirror may free its owner: go round until nothing changes. */
	while (again && !h.unknown) {
		again = false;
		for (uint32_t i = 0; i < SIM_MAX_VMS; i++) {
			struct sim_vm *vm = &sh->vms[i];

			if (!(__atomic_load_n(&vm->gen, __ATOMIC_ACQUIRE) & 1))
				continue;
			if (vm_held(&h, vm) || pinned_by_mirrors(sh, vm))
				continue;
			destroy_vm(sh, vm);
			again = true;
		}
	}
	sim__unlock(&sh->table_lock);
	free(h.v);
}

/* ---- Inspection ------------------------------------------------------------- */

int sevsim_vm_info(struct sevsim *sim, int vm_fd, struct sevsim_vm_info *info)
{
	struct sevsim_vm_info v = { 0 };
	struct sim_shared *sh;
	struct sim_ident id;
	struct sim_vm *vm;
	int r;

	if (!sim || !info || info->sz < sizeof(size_t))
		return -EINVAL;
	sh = sim->sh;
	r = sim__ident(sim, vm_fd, &id);
	if (r < 0)
		return r;
	if (id.kind != SIM_FD_VM)
		return -EBADF;
	vm = &sh->vms[id.vm];
	sim__lock(&vm->lock);
	v.sz = sizeof(v);
	v.sev_active = vm->sev.active;
	v.es_active = vm->sev.es_active;
	v.dead = __atomic_load_n(&vm->dead, __ATOMIC_ACQUIRE);
	v.mirror = vm->sev.mirror;
	v.asid = vm->sev.asid;
	v.handle = vm->sev.handle;
	v.nr_vcpus = __atomic_load_n(&vm->online_vcpus, __ATOMIC_ACQUIRE);
	for (uint32_t i = 0; i < v.nr_vcpus; i++) {
		sim__lock(&vm->vcpus[i].mutex);
		v.nr_vmsas += vm->vcpus[i].protected;
		sim__unlock(&vm->vcpus[i].mutex);
	}
	v.nr_regions = vm->sev.nr_regions;
	v.pages_locked = vm->sev.pages_locked;
	v.saved_sev_fd = vm->sev.fd;
	sim__lock(&sh->fw_lock);
	v.guest_state = vm->sev.active ? sim__fw_guest_state(sh, vm->sev.handle) : 0;
	sim__unlock(&sh->fw_lock);
	sim__unlock(&vm->lock);
	/* An older caller's struct is shorter, a newer one's tail is zeroed. */
	v.sz = info->sz;
	memcpy(info, &v, info->sz < sizeof(v) ? info->sz : sizeof(v));
	if (info->sz > sizeof(v))
		memset((uint8_t *)info + sizeof(v), 0, info->sz - sizeof(v));
	return 0;
}

void sevsim_asids_used(struct sevsim *sim, uint32_t *sev, uint32_t *sev_es)
{
	struct sim_shared *sh = sim->sh;

	/* What the kernel would hold: VMs whose last fd is gone are destroyed first. */
	sim__enter(sim);
	sim__gc(sim);
	sim__lock(&sh->fw_lock);
	if (sev)
		*sev = sh->misc_sev;
	if (sev_es)
		*sev_es = sh->misc_sev_es;
	sim__unlock(&sh->fw_lock);
}
