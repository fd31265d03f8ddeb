/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libsevmigrate — migrate KVM guests, including AMD SEV and SEV-ES guests,
 * between VMM processes and hosts without the VMM issuing KVM or SEV ioctls.
 *
 * Conventions: every function returns 0 (or a non-negative count) on success
 * and a negative errno on failure, never -1 with errno.  After a failure,
 * sevm_last_error() holds a message for the calling thread.  Structs whose
 * name ends in _opts or _report start with a size_t sz the caller sets to
 * sizeof(the struct) it was compiled with.
 */
#ifndef SEVMIGRATE_H
#define SEVMIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version ------------------------------------------------------------ */

#define SEVM_VERSION_MAJOR 0
#define SEVM_VERSION_MINOR 1
#define SEVM_VERSION_MICRO 0
#define SEVM_VERSION_CODE(major, minor, micro) \
	(((major) << 16) | ((minor) << 8) | (micro))
#define SEVM_VERSION \
	SEVM_VERSION_CODE(SEVM_VERSION_MAJOR, SEVM_VERSION_MINOR, SEVM_VERSION_MICRO)

/* The version of the library loaded at run time, as SEVM_VERSION_CODE. */
unsigned int sevm_version(void);
const char *sevm_version_string(void);

/* ---- Errors and logging ------------------------------------------------- */

/*
 * Failures that have no errno of their own.  They are returned negated, like
 * an errno, and start above every errno the kernel defines.
 */
enum sevm_error {
	SEVM_ERR__START = 4000,
	SEVM_ERR_FORMAT = SEVM_ERR__START, /* malformed snapshot, message or stream */
	SEVM_ERR_CHECKSUM,                 /* data arrived, but its checksum is wrong */
	SEVM_ERR_VERSION,                  /* the peer speaks an incompatible version */
	SEVM_ERR_FIRMWARE,                 /* the SEV firmware returned an error status */
	SEVM_ERR_PEER,                     /* the peer aborted or refused the operation */
	SEVM_ERR_INDOUBT,                  /* committed, the other side did not confirm */
	SEVM_ERR_MOVED,                    /* SEV context is in the receiver's VM: take it back */
	SEVM_ERR__END,
};

/* A static description of -errno or -SEVM_ERR_* (the sign is ignored). */
const char *sevm_strerror(int err);

/*
 * The message of the last failure on the calling thread: which step failed,
 * the errno, and for the SEV firmware its status by name.  "" when nothing
 * failed yet.  Valid until the thread's next call into the library.
 */
const char *sevm_last_error(void);

/* The name of an SEV firmware status code ("INVALID_GUEST_STATE"), or NULL. */
const char *sevm_fw_status_name(uint32_t status);

enum sevm_log_level {
	SEVM_LOG_ERROR,
	SEVM_LOG_WARN,
	SEVM_LOG_INFO,
	SEVM_LOG_DEBUG,
};

typedef void (*sevm_log_fn)(enum sevm_log_level level, const char *msg,
			    void *user);

/*
 * Route the library's log lines (one line per call, no trailing newline) to
 * fn; NULL silences it, which is the default.  Process-wide: set it before
 * other threads call into the library.
 */
void sevm_set_log(sevm_log_fn fn, void *user);

/* ---- The kernel seam ---------------------------------------------------- */

/*
 * Every open, ioctl and close the library issues on /dev/kvm, VM, vCPU and
 * /dev/sev fds, and every sendmsg/recvmsg on a handoff socket, goes through
 * one backend.  The default is the kernel.  A backend stands in for it (a
 * software model of KVM-SEV) or wraps it (fault injection).  Each op returns
 * its result or a negative errno; a NULL op means "the kernel's".
 */
struct sevm_backend {
	size_t sz;
	void *ctx;
	int (*open)(void *ctx, const char *path, int flags);
	int (*ioctl)(void *ctx, int fd, unsigned long request, void *arg);
	int (*close)(void *ctx, int fd);
	ssize_t (*sendmsg)(void *ctx, int fd, const struct msghdr *msg, int flags);
	ssize_t (*recvmsg)(void *ctx, int fd, struct msghdr *msg, int flags);
};

/*
 * Install a backend (copied), or the kernel again with NULL.  Process-wide:
 * install it before other threads call into the library.
 */
int sevm_set_backend(const struct sevm_backend *backend);

/* The backend in force, so that a wrapper can pass calls on to it. */
int sevm_get_backend(struct sevm_backend *backend);

/*
 * The seam itself, for a VMM's own KVM calls: a VMM that wants to run
 * against a model backend (sevsim) routes its /dev/kvm, VM and vCPU calls
 * through these.  They return the result or -errno, retry EINTR (not for
 * KVM_RUN) and add O_CLOEXEC, as the library's own calls do.
 */
int sevm_open(const char *path, int flags);
int sevm_ioctl(int fd, unsigned long request, void *arg);
void sevm_close(int fd);

/* ---- Host probe --------------------------------------------------------- */

/*
 * What this host and process can do.  A signed field that could not be
 * learned holds -1; the *_err fields and a cap_* whose check failed hold a
 * negative errno.  The unsigned SEV platform fields are valid only when
 * sev_status_err is 0.
 */
struct sevm_probe_report {
	size_t sz;

	/* /dev/kvm */
	int kvm_open_err;		/* 0, or -errno of open("/dev/kvm", O_RDWR) */
	int kvm_api_version;		/* KVM_GET_API_VERSION */
	uint64_t vm_types;		/* bit n: KVM_CREATE_VM accepts type n; kernels
					   without KVM_CAP_VM_TYPES have bit 0 only */
	/* KVM_CHECK_EXTENSION answers (on a VM of the default type) */
	int64_t cap_move_enc_context;	/* KVM_CAP_VM_MOVE_ENC_CONTEXT_FROM */
	int64_t cap_copy_enc_context;	/* KVM_CAP_VM_COPY_ENC_CONTEXT_FROM */
	int64_t cap_guest_memfd;	/* KVM_CAP_GUEST_MEMFD */
	int64_t cap_guest_memfd_flags;	/* KVM_CAP_GUEST_MEMFD_FLAGS: flag mask */
	int64_t cap_memory_attributes;	/* KVM_CAP_MEMORY_ATTRIBUTES: attribute mask */
	int64_t cap_user_memory2;	/* KVM_CAP_USER_MEMORY2 */
	int64_t cap_dirty_log_clear;	/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 */
	int64_t cap_exit_hypercall;	/* KVM_CAP_EXIT_HYPERCALL: hypercall mask */
	int64_t cap_max_vcpus;		/* KVM_CAP_MAX_VCPUS */
	bool gmem_link;			/* KVM_LINK_GUEST_MEMFD is offered */

	/* /dev/sev */
	int sev_open_err;		/* 0, or -errno of open("/dev/sev", O_RDWR) */
	int sev_status_err;		/* 0 when the platform fields below are valid */
	uint32_t sev_fw_error;		/* firmware status of PLATFORM_STATUS */
	uint8_t sev_api_major;
	uint8_t sev_api_minor;
	uint8_t sev_build;
	uint8_t sev_state;		/* 0 UNINIT, 1 INIT, 2 WORKING */
	uint32_t sev_flags;
	uint32_t sev_guest_count;

	/* kvm_amd module parameters: 1 on, 0 off, -1 no module */
	int kvm_amd_sev;
	int kvm_amd_sev_es;
	int kvm_amd_sev_snp;

	/* misc cgroup of this process: SEV ASIDs, -1 unknown, INT64_MAX no limit */
	int64_t sev_asids_max;
	int64_t sev_asids_used;
	int64_t sev_es_asids_max;
	int64_t sev_es_asids_used;

	/* this process */
	bool cap_sys_admin;		/* CAP_SYS_ADMIN effective */
	bool cap_ipc_lock;		/* CAP_IPC_LOCK: pin beyond RLIMIT_MEMLOCK */
	uint64_t memlock_limit;		/* RLIMIT_MEMLOCK soft limit, bytes (0 if unknown) */
};

/* Fill *report (report->sz set by the caller).  Fails only on bad arguments. */
int sevm_probe(struct sevm_probe_report *report);

/* The kinds of migration this library performs. */
enum sevm_flavour {
	SEVM_FLAVOUR_INTRAHOST,		/* plain guest to another process */
	SEVM_FLAVOUR_SEV_INTRAHOST,	/* SEV guest, encryption context moved */
	SEVM_FLAVOUR_SEV_ES_INTRAHOST,	/* SEV-ES guest, VMSAs moved too */
	SEVM_FLAVOUR_MIRROR,		/* mirror VM sharing an SEV context */
	SEVM_FLAVOUR_SEV_SEND,		/* remote migration, source side */
	SEVM_FLAVOUR_SEV_RECEIVE,	/* remote migration, destination side */
	SEVM_FLAVOUR_GMEM_LINK,		/* guest_memfd linked into another VM */
	SEVM_FLAVOUR__COUNT,
};

/* "intrahost", "sev-intrahost", ...; NULL for an unknown flavour. */
const char *sevm_flavour_name(enum sevm_flavour flavour);

/*
 * 1 when the report says the flavour can run here, 0 when it cannot; then
 * why (if not NULL) receives one line saying why, cut to len bytes.
 * -EINVAL on bad arguments.
 */
int sevm_flavour_check(const struct sevm_probe_report *report,
		       enum sevm_flavour flavour, char *why, size_t len);

/* ---- Intra-host handoff --------------------------------------------------- */

/*
 * The old VMM (sender) hands a running guest to a new VMM process (receiver)
 * on the same host over a UNIX socket.  Guest memory is not copied: the fds
 * behind it travel by SCM_RIGHTS.  vCPU and VM state travels in the snapshot
 * format of doc/snapshot-format.md.  See doc/handoff.md for the whole flow.
 *
 *   sender (old VMM)                      receiver (new VMM)
 *   sevm_handoff_connect()                sevm_handoff_accept()  -> guest info
 *   sevm_handoff_set_vm(), _add_region()  create VM, vCPUs; sevm_handoff_set_vm()
 *   sevm_handoff_prepare()  <---------->  sevm_handoff_prepare()
 *   pause vCPUs (sevm_vcpu_quiesce()),
 *    each thread: sevm_handoff_capture_vcpu() (optional)
 *   sevm_handoff_switch()   <---------->  sevm_handoff_switch(); run vCPUs
 *
 * A failed sender switch means the guest was not handed over: resume it.
 * The receiver runs nothing until the sender has committed, so the guest
 * never runs in both processes.
 */
struct sevm_handoff;

/* Mirrors KVM_MEM_LOG_DIRTY_PAGES and KVM_MEM_READONLY. */
#define SEVM_REGION_LOG_DIRTY	(1u << 0)
#define SEVM_REGION_READONLY	(1u << 1)
/* An SEV encrypted region (KVM_MEMORY_ENCRYPT_REG_REGION): the receiver registers it too. */
#define SEVM_REGION_ENCRYPTED	(1u << 16)

/* One guest memory slot, backed by a shareable fd (memfd, or any file). */
struct sevm_region {
	size_t sz;
	uint32_t slot;			/* KVM slot id */
	uint32_t flags;			/* SEVM_REGION_* */
	uint64_t guest_phys_addr;	/* page aligned */
	uint64_t size;			/* bytes, page multiple */
	int fd;				/* the memory */
	uint64_t offset;		/* of the region in fd, page aligned */
	/*
	 * Sender: where the VMM has the region mapped (not sent; may be NULL).
	 * Receiver: where the library mapped it, MAP_SHARED.
	 */
	void *host_addr;
};

/* What the receiver learns from the sender's hello. */
#define SEVM_GUEST_IRQCHIP	(1u << 0)	/* in-kernel PIC + IOAPIC + LAPICs */
#define SEVM_GUEST_PIT		(1u << 1)	/* in-kernel PIT (KVM_CREATE_PIT2) */

struct sevm_guest_info {
	size_t sz;
	uint32_t vm_type;	/* KVM_CREATE_VM type */
	uint32_t nr_vcpus;
	uint32_t nr_regions;
	uint32_t flags;		/* SEVM_GUEST_*: create these before the vCPUs */
};

/*
 * Decides for every peer, in place of the same-uid rule: return 0 to accept
 * it, a negative errno to refuse (a positive return refuses with -EPERM).
 */
typedef int (*sevm_peer_policy_fn)(pid_t pid, uid_t uid, gid_t gid, void *ctx);

struct sevm_handoff_opts {
	size_t sz;
	int timeout_ms;			/* each wait on the peer; 0: 10000 */
	sevm_peer_policy_fn peer_policy; /* NULL: the peer must have our euid */
	void *peer_policy_ctx;
	/*
	 * Receiver: threads restoring vCPUs at the switch, the calling one
	 * included; made in sevm_handoff_prepare().  0: one per online CPU;
	 * never more than the guest has vCPUs; 1: no thread is made.
	 */
	unsigned int restore_threads;
};

/* Sender: connect to the receiver's socket path. */
int sevm_handoff_connect(const char *path, const struct sevm_handoff_opts *opts,
			 struct sevm_handoff **out);

/* Receiver: a listening socket at path (a stale socket there is replaced); returns the fd. */
int sevm_handoff_listen(const char *path);

/*
 * Receiver: accept one sender on listen_fd and read its hello and region
 * table, validated; sevm_handoff_info() then describes the guest.
 */
int sevm_handoff_accept(int listen_fd, const struct sevm_handoff_opts *opts,
			struct sevm_handoff **out);

/*
 * Either side over a connected socket the VMM already has; the handle takes
 * the socket.  `sender` picks the role.
 */
int sevm_handoff_from_fd(int sock, bool sender, const struct sevm_handoff_opts *opts,
			 struct sevm_handoff **out);

/* Receiver: the guest the sender announced. */
int sevm_handoff_info(struct sevm_handoff *h, struct sevm_guest_info *info);

/*
 * Receiver: region i of the announced table.  After sevm_handoff_prepare(),
 * host_addr is the library's mapping; after a successful switch the VMM owns
 * fd and the mapping.
 */
int sevm_handoff_region(struct sevm_handoff *h, unsigned int i, struct sevm_region *r);

/* Sender: one more memory region of the guest (copied; fd stays the VMM's). */
int sevm_handoff_add_region(struct sevm_handoff *h, const struct sevm_region *r);

/*
 * Both sides: the VM and its vCPUs, fds the VMM owns and keeps.  On the
 * receiver they are a fresh VM of info.vm_type with info.nr_vcpus vCPUs that
 * have not run, and the irqchip/PIT that info.flags asks for.
 */
int sevm_handoff_set_vm(struct sevm_handoff *h, int vm_fd, const int *vcpu_fds,
			unsigned int nr_vcpus);

/*
 * Everything that can happen while the guest still runs.  Sender: learns
 * what the kernel can capture, sends the hello and the region table with
 * the memory fds, waits for the receiver.  Receiver: maps the regions, sets
 * the memory slots, and reads what its vCPUs already hold (CPUID, TSC rate)
 * so that the switch sets only what differs.
 */
int sevm_handoff_prepare(struct sevm_handoff *h);

/*
 * Sender, optional: capture vCPU i and send it now, from the thread that
 * runs it, once it has left KVM_RUN for the last time before the switch
 * (after sevm_handoff_prepare()).  KVM lets no other thread read a vCPU
 * inside KVM_RUN, so its own thread is the first that can: with each vCPU
 * thread calling this as it pauses, capture overlaps the pause and uses
 * every CPU, and the receiver restores while the last vCPUs still pause.
 * Threads may call it at once for different vCPUs.  sevm_handoff_switch()
 * then captures only the vCPUs not sent this way.
 *
 * run: the vCPU's mmap'ed struct kvm_run, or NULL.  With it the call does
 * what sevm_vcpu_quiesce() does (which the VMM then need not call), and
 * the same KVM_RUN hands back registers, segment registers and events,
 * three ioctls fewer.  A guest whose instructions can exit twice (string
 * I/O) needs sevm_vcpu_quiesce() first, until it returns 0.
 *
 * A vCPU sent here must not run again before the switch; a VMM that gives
 * the handoff up resumes the guest and frees the handle.  -EALREADY: vCPU
 * i was sent already.  Any failure (but -EINVAL for bad arguments) fails
 * the switch too, with the first failure's error and message: resume.
 */
int sevm_handoff_capture_vcpu(struct sevm_handoff *h, unsigned int i, void *run);

/*
 * Sender, with every vCPU paused outside KVM_RUN: capture and send the
 * state and vmm_state (the VMM's own device state, opaque here, may be
 * NULL), wait until the receiver has restored it, commit, wait until it
 * runs.  0: the receiver owns the guest; the VMM must not run it again.
 * Any other return: the guest was not handed over and is intact; resume
 * it — except -SEVM_ERR_INDOUBT (the receiver was told to run but did not
 * confirm): keep the guest paused and find out.
 *
 * Receiver: receive and restore the state, wait for the sender's commit.
 * 0: start the vCPUs now; *vmm_state / *vmm_state_len (if not NULL) point
 * at the sender's device state, valid until sevm_handoff_free().
 */
int sevm_handoff_switch(struct sevm_handoff *h, const void *vmm_state, size_t vmm_state_len);
int sevm_handoff_switch_receive(struct sevm_handoff *h, const void **vmm_state,
				size_t *vmm_state_len);

/* Close the handle.  Before a successful switch the receiver's mappings and fds go too. */
void sevm_handoff_free(struct sevm_handoff *h);

/*
 * From the vCPU's own thread, after KVM_RUN returned with the VMM's exit
 * handled: enter KVM_RUN once with immediate_exit set so that an instruction
 * whose exit was just handled (port I/O, MMIO) completes before the state is
 * captured.  run is the vCPU's mmap'ed struct kvm_run.
 */
int sevm_vcpu_quiesce(int vcpu_fd, void *run);

/* ---- SEV and SEV-ES guests ------------------------------------------------- */

/*
 * Every call that reaches the SEV firmware takes `fw_error` (may be NULL):
 * the firmware status, 0 when the firmware was not reached.  The return
 * value is 0 or -errno as everywhere (-EIO for a firmware failure).
 */

/* The guest's kind, numbered as KVM's VM types. */
enum sevm_sev_type {
	SEVM_SEV = 2,		/* KVM_X86_SEV_VM */
	SEVM_SEV_ES = 3,	/* KVM_X86_SEV_ES_VM */
};

struct sevm_sev_init_opts {
	size_t sz;
	uint64_t vmsa_features;	/* SEV-ES only; KVM_X86_SEV_VMSA_FEATURES says which */
	uint16_t ghcb_version;	/* SEV-ES only; 0: KVM's default (2) */
	bool legacy;		/* KVM_SEV_INIT / KVM_SEV_ES_INIT on a default-type VM */
};

/*
 * Create a VM for an SEV or SEV-ES guest and initialise its SEV context:
 * a VM of that type and KVM_SEV_INIT2, or with opts->legacy a default VM
 * and the legacy init.  Returns the VM fd (the caller's) or -errno.
 */
int sevm_sev_vm_create(enum sevm_sev_type type, const struct sevm_sev_init_opts *opts,
		       uint32_t *fw_error);

/* Initialise the SEV context of a VM the VMM created (before any vCPU). */
int sevm_sev_init(int vm_fd, enum sevm_sev_type type, const struct sevm_sev_init_opts *opts,
		  uint32_t *fw_error);

/* Pin guest memory as an encrypted region (KVM_MEMORY_ENCRYPT_REG_REGION), or unpin it. */
int sevm_sev_region_register(int vm_fd, void *addr, uint64_t size);
int sevm_sev_region_unregister(int vm_fd, void *addr, uint64_t size);

struct sevm_sev_launch {
	size_t sz;
	uint32_t policy;	/* SEV guest policy */
	uint32_t handle;	/* 0: a new guest context; out: its handle */
	const void *dh_cert;	/* guest owner's PDH, or NULL */
	uint32_t dh_cert_len;
	const void *session;	/* launch session blob, or NULL */
	uint32_t session_len;
};

/*
 * LAUNCH_START.  sev_fd is an open /dev/sev: the kernel saves its number
 * and resolves it again in the calling process for every later firmware
 * command of this VM, so keep it open at that number for the VM's life.
 */
int sevm_sev_launch_start(int vm_fd, int sev_fd, struct sevm_sev_launch *launch,
			  uint32_t *fw_error);
/* Encrypt guest memory in place; len need not be page aligned. */
int sevm_sev_launch_update_data(int vm_fd, void *addr, uint64_t len, uint32_t *fw_error);
/* SEV-ES: encrypt every vCPU's VMSA; the vCPUs' registers are then protected. */
int sevm_sev_launch_update_vmsa(int vm_fd, uint32_t *fw_error);
/* The launch measurement into buf; *len in: its size, out: the size needed (buf NULL: ask). */
int sevm_sev_launch_measure(int vm_fd, void *buf, uint32_t *len, uint32_t *fw_error);

struct sevm_sev_secret {
	size_t sz;
	const void *hdr;	/* packet header */
	uint32_t hdr_len;
	void *guest_addr;	/* where in guest memory */
	uint32_t guest_len;
	const void *trans;	/* the encrypted secret */
	uint32_t trans_len;
};

int sevm_sev_launch_secret(int vm_fd, const struct sevm_sev_secret *secret,
			   uint32_t *fw_error);
int sevm_sev_launch_finish(int vm_fd, uint32_t *fw_error);

struct sevm_sev_status {
	size_t sz;
	uint32_t handle;
	uint32_t policy;
	uint32_t state;		/* SEV API guest state: 0 UNINIT, 1 LUPDATE, 2 LSECRET, 3 RUNNING, ... */
};

int sevm_sev_guest_status(int vm_fd, struct sevm_sev_status *status, uint32_t *fw_error);
/* Read (decrypt) or write (encrypt) guest memory through the firmware's debug commands. */
int sevm_sev_dbg_decrypt(int vm_fd, const void *src, void *dst, uint32_t len,
			 uint32_t *fw_error);
int sevm_sev_dbg_encrypt(int vm_fd, const void *src, void *dst, uint32_t len,
			 uint32_t *fw_error);
/* The attestation report for mnonce; *len as for sevm_sev_launch_measure(). */
int sevm_sev_attestation_report(int vm_fd, const uint8_t mnonce[16], void *buf,
				uint32_t *len, uint32_t *fw_error);

/*
 * Move the encryption context (ASID, handle, regions, SEV-ES VMSAs) of the
 * SEV VM behind src_vm_fd — which may belong to another process — into the
 * VM behind dst_vm_fd (KVM_CAP_VM_MOVE_ENC_CONTEXT_FROM).  The source is
 * dead afterwards.  Every refusal is named: not a VM fd, migration in
 * progress, destination already SEV, source not SEV, vCPU counts, VMSAs.
 */
int sevm_sev_move(int dst_vm_fd, int src_vm_fd);

/* Make dst_vm_fd a mirror sharing the context of src_vm_fd (KVM_CAP_VM_COPY_ENC_CONTEXT_FROM). */
int sevm_sev_mirror(int dst_vm_fd, int src_vm_fd);

/*
 * Sender, before sevm_handoff_prepare(): the guest is an SEV or SEV-ES
 * guest.  Its VM fd travels to the receiver, which creates a VM of the same
 * type (and, for SEV-ES, the same vCPU count), moves the encryption context
 * into it at the switch, and registers the SEVM_REGION_ENCRYPTED regions.
 * The sender's VM is dead from that moment (only its vCPUs' non-protected
 * state was captured), so a failure after the move is not a plain resume:
 * the switch returns -SEVM_ERR_MOVED and the old VMM takes the guest back.
 */
int sevm_handoff_set_sev(struct sevm_handoff *h, enum sevm_sev_type type);

/*
 * Sender, before sevm_handoff_switch(): the guest's private-page record (as
 * sevm_memory_attributes_set() keeps it; the kernel has no getter).  The
 * handle keeps the pointer: keep the bitmap alive and current until the
 * switch returns, which serializes it with the paused guest's state.
 * Receiver, after a successful switch: a new bitmap with the sender's
 * record (the caller frees it), or -ENOENT when the sender sent none.
 */
struct sevm_bitmap;
int sevm_handoff_set_private(struct sevm_handoff *h, const struct sevm_bitmap *private_pages);
int sevm_handoff_private(struct sevm_handoff *h, struct sevm_bitmap **out);

/*
 * Sender, after -SEVM_ERR_MOVED: vm_fd is a fresh VM of the same type with
 * the same vCPUs (none run yet), irqchip as before.  Moves the context back
 * from the receiver's VM, sets the memory slots and encrypted regions from
 * the region table (host_addr), restores the state captured at the switch.
 * 0: run the guest on vm_fd; the old VM fds are dead.
 */
int sevm_handoff_take_back(struct sevm_handoff *h, int vm_fd, const int *vcpu_fds,
			   unsigned int nr_vcpus);

/* ---- Page bitmaps ---------------------------------------------------------- */

/*
 * A set of guest frames over the guest's memory map (one range per memory
 * slot): which pages are private, or dirty.  Dense parts cost one bit per
 * page, empty and full stretches almost nothing.  Not thread-safe: one
 * writer at a time; readers may share a bitmap nobody writes.
 */
struct sevm_bitmap;

struct sevm_gfn_range {
	uint64_t gfn;		/* first guest frame (guest physical address / 4096) */
	uint64_t npages;
};

/* A bitmap over `nr` ranges (sorted, non-overlapping, non-empty), all clear. */
int sevm_bitmap_new(const struct sevm_gfn_range *ranges, unsigned int nr,
		    struct sevm_bitmap **out);
void sevm_bitmap_free(struct sevm_bitmap *b);

/* Set or clear [gfn, gfn + npages); -ERANGE when any of it is outside the map. */
int sevm_bitmap_set(struct sevm_bitmap *b, uint64_t gfn, uint64_t npages);
int sevm_bitmap_clear(struct sevm_bitmap *b, uint64_t gfn, uint64_t npages);

/* 1 if gfn is set, 0 if not, -ERANGE outside the map. */
int sevm_bitmap_test(const struct sevm_bitmap *b, uint64_t gfn);

/* Set pages in [gfn, gfn + npages), or -ERANGE. */
int64_t sevm_bitmap_count(const struct sevm_bitmap *b, uint64_t gfn, uint64_t npages);

/*
 * The first maximal run of set pages (or of clear pages, with set false) at
 * or after gfn, within one range of the map: 1 with *run filled, 0 when
 * there is none.  Iterate with gfn = run->gfn + run->npages.
 */
int sevm_bitmap_next_run(const struct sevm_bitmap *b, uint64_t gfn, bool set,
			 struct sevm_gfn_range *run);

enum sevm_bitmap_op {
	SEVM_BITMAP_OR,		/* dst |= src */
	SEVM_BITMAP_AND,	/* dst &= src */
	SEVM_BITMAP_ANDNOT,	/* dst &= ~src */
	SEVM_BITMAP_COPY,	/* dst = src */
};

/* Combine src into dst; both over the same memory map, else -EINVAL. */
int sevm_bitmap_merge(struct sevm_bitmap *dst, const struct sevm_bitmap *src,
		      enum sevm_bitmap_op op);

/* Bytes the bitmap holds in memory, bookkeeping included. */
size_t sevm_bitmap_memory(const struct sevm_bitmap *b);

/*
 * The bitmap as bytes (doc/bitmap-format.md): with buf NULL the size needed;
 * else the bytes written, or -ENOSPC when len is short.
 */
ssize_t sevm_bitmap_serialize(const struct sevm_bitmap *b, void *buf, size_t len);
/* Back from bytes, every length bounded: -SEVM_ERR_FORMAT, -SEVM_ERR_CHECKSUM. */
int sevm_bitmap_deserialize(const void *buf, size_t len, struct sevm_bitmap **out);

/*
 * Sources.  KVM_GET_DIRTY_LOG of one memory slot whose first frame is
 * base_gfn, ORed into b (with clear: then KVM_CLEAR_DIRTY_LOG of what was
 * read, for KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 VMs).
 */
int sevm_bitmap_add_dirty_log(struct sevm_bitmap *b, int vm_fd, uint32_t slot,
			      uint64_t base_gfn, uint64_t npages, bool clear);

/*
 * A KVM_HC_MAP_GPA_RANGE exit (KVM_EXIT_HYPERCALL, nr 12) forwarded by the
 * VMM: args[0] gpa, args[1] pages, args[2] attributes; the range becomes
 * private (set) or shared (clear) in the private-page bitmap.  Returns the
 * value for the hypercall's ret: 0, or a KVM_E* error for the guest.
 */
int64_t sevm_bitmap_map_gpa_range(struct sevm_bitmap *private_pages, const uint64_t args[3]);

/*
 * KVM_GET_PAGE_ENC_BITMAP of vm_fd into b.  Proposed with SEV live
 * migration (2019-2021) and never merged: upstream forwards the guest's
 * KVM_HC_MAP_GPA_RANGE instead.  No kernel announces it and it has no
 * stable number, so this returns -EOPNOTSUPP saying so (-EINVAL for bad
 * arguments); it is here so that a VMM can call one function and learn
 * where its private-page map must come from.
 */
int sevm_bitmap_add_enc_bitmap(struct sevm_bitmap *b, int vm_fd);

/* ---- guest_memfd ------------------------------------------------------------ */

/* Mirror GUEST_MEMFD_FLAG_MMAP and GUEST_MEMFD_FLAG_INIT_SHARED (Linux 6.18). */
#define SEVM_GMEM_MMAP		(1ull << 0)
#define SEVM_GMEM_INIT_SHARED	(1ull << 1)

/*
 * KVM_CREATE_GUEST_MEMFD on vm_fd: a guest_memfd of size bytes; returns its
 * fd.  -EOPNOTSUPP, naming what is missing, when the kernel has no
 * guest_memfd or not these flags (KVM_CAP_GUEST_MEMFD_FLAGS).
 */
int sevm_gmem_create(int vm_fd, uint64_t size, uint64_t flags);

/* Bind a guest_memfd range to a memory slot (KVM_SET_USER_MEMORY_REGION2). */
struct sevm_gmem_slot {
	size_t sz;
	uint32_t slot;
	uint64_t guest_phys_addr;
	uint64_t size;
	void *host_addr;	/* the shared view, as for any slot */
	int gmem_fd;
	uint64_t gmem_offset;
};

int sevm_gmem_bind(int vm_fd, const struct sevm_gmem_slot *s);

/*
 * KVM_LINK_GUEST_MEMFD (proposed, not merged): a new fd on the same
 * guest_memfd, bound to vm_fd.  No kernel announces it, so this returns
 * -EOPNOTSUPP with a message saying what works instead: a guest_memfd made
 * with SEVM_GMEM_MMAP | SEVM_GMEM_INIT_SHARED is handed over as mapped memory.
 */
int sevm_gmem_link(int vm_fd, int gmem_fd);

/*
 * KVM_SET_MEMORY_ATTRIBUTES for [gpa, gpa + size), and the same change in
 * `record` (the private-page bitmap; may be NULL): the kernel has no getter,
 * so the record is what travels in a handoff.  -EOPNOTSUPP without
 * KVM_CAP_MEMORY_ATTRIBUTES.
 */
int sevm_memory_attributes_set(int vm_fd, uint64_t gpa, uint64_t size, uint64_t attributes,
			       struct sevm_bitmap *record);

/* ---- SEV certificates ------------------------------------------------------ */

/* Which certificate: the SEV format (PDH, PEK, OCA, CEK) or AMD's (ARK, ASK). */
enum sevm_cert_usage {
	SEVM_CERT_ARK = 0x0000, SEVM_CERT_ASK = 0x0013, SEVM_CERT_OCA = 0x1001,
	SEVM_CERT_PEK = 0x1002, SEVM_CERT_PDH = 0x1003, SEVM_CERT_CEK = 0x1004,
};

struct sevm_cert_info {
	size_t sz;
	uint32_t usage;		/* enum sevm_cert_usage */
	uint32_t algo;		/* the key's algorithm code (SEV API, e.g. 0x002 ECDSA_SHA256) */
	uint32_t len;		/* bytes the certificate takes (2084 for the SEV format) */
	uint32_t key_bits;	/* 384 for P-384, 2048/4096 for RSA */
	uint8_t api_major, api_minor;	/* SEV format: the firmware that made it */
	uint8_t key_id[16];		/* AMD format: KEY_ID; zero otherwise */
	uint8_t certifying_id[16];	/* AMD format: CERTIFYING_ID; zero otherwise */
};

/* Parse one certificate of either format from cert[0..len): -SEVM_ERR_FORMAT with the field named. */
int sevm_cert_parse(const void *cert, size_t len, struct sevm_cert_info *info);

/*
 * Whether `cert` carries a valid signature by `signer` (the slot is chosen by
 * the signer's usage and algorithm, as the firmware does): 0, or
 * -SEVM_ERR_FORMAT (not a certificate, no slot for this signer) or
 * -EKEYREJECTED (the signature does not verify).
 */
int sevm_cert_verify(const void *cert, size_t cert_len, const void *signer, size_t signer_len);

/* A platform's chain: PDH <- PEK <- OCA and CEK <- ASK <- ARK (any may be NULL to skip that link). */
struct sevm_cert_chain {
	size_t sz;
	const void *pdh, *pek, *oca, *cek, *ask, *ark;
	size_t pdh_len, pek_len, oca_len, cek_len, ask_len, ark_len;
};

/* Verify every link present, in order from the root; the message names the first that fails. */
int sevm_cert_chain_verify(const struct sevm_cert_chain *chain);

/* ---- SEV platform (/dev/sev) ---------------------------------------------- */

/*
 * Open /dev/sev for reading, or with write for reading and writing, and
 * return the fd.  The kernel asks for no capability, only the file's mode:
 * PLATFORM_STATUS and GET_ID2 need read access, PDH_CERT_EXPORT needs write
 * access unless the platform is already INIT, and KVM's LAUNCH_START and
 * RECEIVE_START take any open /dev/sev.  A refused open names the node's
 * mode and owner, this process's ids and whether it has CAP_DAC_OVERRIDE,
 * and which commands need which access.
 */
int sevm_sev_dev_open(bool write);

struct sevm_sev_platform_status {
	size_t sz;
	uint8_t api_major, api_minor, build;
	uint8_t state;		/* 0 UNINIT, 1 INIT, 2 WORKING */
	uint32_t flags;		/* bit 0: owned by an external OCA; bit 8: SEV-ES initialised */
	uint32_t guest_count;
};

/* PLATFORM_STATUS. */
int sevm_sev_platform_status(int sev_fd, struct sevm_sev_platform_status *status,
			     uint32_t *fw_error);

/*
 * PDH_CERT_EXPORT: the platform's PDH certificate and its chain PEK || OCA ||
 * CEK, what a source's SEND_START needs of this host.  *pdh_len and
 * *chain_len in: the buffers' sizes; out: the sizes the firmware needs or
 * wrote.  With either buffer NULL, only the sizes (2084 and 6252).
 */
int sevm_sev_pdh_export(int sev_fd, void *pdh, uint32_t *pdh_len, void *chain,
			uint32_t *chain_len, uint32_t *fw_error);

/* GET_ID2: the chip's unique id (64 bytes per socket); *len as for sevm_sev_pdh_export(). */
int sevm_sev_get_id(int sev_fd, void *id, uint32_t *len, uint32_t *fw_error);

/* ---- SEV remote migration commands ------------------------------------------ */

/*
 * KVM passes at most one page to the firmware per SEND_UPDATE_DATA or
 * RECEIVE_UPDATE_DATA: guest .. guest + len must not cross a page boundary
 * (-EINVAL otherwise, before the kernel is asked).  Each call makes one
 * packet: a header (SEVM_SEV_PACKET_HDR_LEN bytes) and a transport buffer of
 * len bytes.  SEND/RECEIVE_UPDATE_VMSA (SEV-ES) are not in upstream KVM: on
 * such a kernel they return -EOPNOTSUPP.
 */
#define SEVM_SEV_PACKET_HDR_LEN	52
#define SEVM_SEV_SESSION_LEN	128
#define SEVM_SEV_CERT_LEN	2084	/* one SEV-format certificate (PDH, PEK, OCA, CEK) */
#define SEVM_SEV_CHAIN_LEN	6252	/* PEK || OCA || CEK */

struct sevm_sev_send_start {
	size_t sz;
	uint32_t policy;		/* out: the guest's policy, from the firmware */
	const void *pdh;		/* the destination platform's PDH */
	uint32_t pdh_len;
	const void *plat_certs;		/* its PEK || OCA || CEK */
	uint32_t plat_certs_len;
	const void *amd_certs;		/* its ASK || ARK */
	uint32_t amd_certs_len;
	void *session;			/* out: the session blob for RECEIVE_START */
	uint32_t session_len;		/* in: session's size; out: bytes written or needed */
};

/*
 * SEND_START: open a transport channel to the destination's firmware; the
 * guest goes on running.  With session NULL, only session_len is learned
 * (KVM's length query); else session_len must be at least that.  A policy
 * forbidding the send fails with -EIO and the firmware's reason in
 * *fw_error: POLICY_FAILURE for NOSEND, a destination API version below the
 * policy's or a foreign OCA (DOMAIN); INVALID_CERTIFICATE, BAD_SIGNATURE or
 * INVALID_LEN for certificates the SEV or DOMAIN bit makes it check.
 */
int sevm_sev_send_start(int vm_fd, struct sevm_sev_send_start *start, uint32_t *fw_error);
/* The packet header length the firmware writes (SEND_UPDATE_DATA's length query). */
int sevm_sev_send_header_len(int vm_fd, uint32_t *hdr_len, uint32_t *fw_error);
/* One packet of guest memory, re-encrypted with the transport keys. */
int sevm_sev_send_update_data(int vm_fd, const void *guest, uint32_t len, void *hdr,
			      uint32_t hdr_len, void *trans, uint32_t trans_len,
			      uint32_t *fw_error);
/* SEV-ES: vCPU vcpu_id's VMSA as one packet of 4096 bytes. */
int sevm_sev_send_update_vmsa(int vm_fd, uint32_t vcpu_id, void *hdr, uint32_t hdr_len,
			      void *trans, uint32_t trans_len, uint32_t *fw_error);
/* The guest is sent: SENT here, and must not run here again. */
int sevm_sev_send_finish(int vm_fd, uint32_t *fw_error);
/* Abandon the send: the guest is RUNNING again and may be sent later. */
int sevm_sev_send_cancel(int vm_fd, uint32_t *fw_error);

struct sevm_sev_receive_start {
	size_t sz;
	uint32_t handle;		/* in: 0; out: the new guest context */
	uint32_t policy;		/* the guest's policy, as the source sent it */
	const void *pdh;		/* the source platform's PDH */
	uint32_t pdh_len;
	const void *session;		/* the source's SEND_START session blob */
	uint32_t session_len;
};

/*
 * RECEIVE_START on a new SEV VM (sevm_sev_vm_create(), no launch): the
 * firmware checks the session's MACs and the policy, KVM binds the VM's
 * ASID.  sev_fd: as for sevm_sev_launch_start().
 */
int sevm_sev_receive_start(int vm_fd, int sev_fd, struct sevm_sev_receive_start *start,
			   uint32_t *fw_error);
/*
 * One packet into guest memory.  The firmware checks the packet's MAC before
 * it writes: a tampered packet fails with BAD_MEASUREMENT and leaves the
 * page as it was.
 */
int sevm_sev_receive_update_data(int vm_fd, void *guest, uint32_t len, const void *hdr,
				 uint32_t hdr_len, const void *trans, uint32_t trans_len,
				 uint32_t *fw_error);
int sevm_sev_receive_update_vmsa(int vm_fd, uint32_t vcpu_id, const void *hdr,
				 uint32_t hdr_len, const void *trans, uint32_t trans_len,
				 uint32_t *fw_error);
/* Every packet is in: the guest is RUNNING on this host. */
int sevm_sev_receive_finish(int vm_fd, uint32_t *fw_error);

/* ---- Remote migration ---------------------------------------------------------- */

/*
 * Moving a guest to another host over a byte stream (doc/stream-format.md):
 * the sender reads guest memory and state and writes records, the receiver
 * validates each record whole before it touches the destination guest.  An
 * SEV guest's private pages travel re-encrypted by the firmware for the
 * destination's firmware alone; its shared pages, and every page of a plain
 * guest, travel as they are.  See doc/remote.md for the whole flow.
 *
 *   source VMM                           destination VMM
 *                                        sevm_sev_pdh_export() -> certificates to the source
 *   sevm_send_new()  (SEND_START)        create VM, vCPUs, memory; sevm_recv_new()
 *   sevm_send_precopy()  (guest runs)    sevm_recv_run() ... applies records as they come
 *   pause the vCPUs
 *   sevm_send_final()  (SEND_FINISH)     ... returns 0 at END (RECEIVE_FINISH): run the guest
 *
 * A sender that fails before sevm_send_final() returned 0 calls
 * sevm_send_cancel() and resumes its guest.
 */
struct sevm_send;
struct sevm_recv;

/*
 * The stream, when the VMM wants its own channel (TLS, a tunnel) under it.
 * write: take up to len bytes; the count taken, or -errno.  read: up to len
 * bytes; the count, 0 at the end of the stream, or -errno.
 */
struct sevm_io {
	size_t sz;
	void *ctx;
	ssize_t (*write)(void *ctx, const void *buf, size_t len);
	ssize_t (*read)(void *ctx, void *buf, size_t len);
};

struct sevm_migrate_opts {
	size_t sz;
	int fd;				/* the stream (socket, pipe, file), or -1 with io */
	const struct sevm_io *io;	/* used when fd is -1 */
	int timeout_ms;			/* fd: each wait for the peer; 0: no limit */
	int vm_fd;
	const int *vcpu_fds;		/* vCPU i has KVM id i */
	unsigned int nr_vcpus;
	/*
	 * The guest's memory, mapped (host_addr) on both sides; the receiver's
	 * map must cover every page sent.  Pre-copy reads the dirty log of the
	 * SEVM_REGION_LOG_DIRTY regions (their slots carry KVM_MEM_LOG_DIRTY_PAGES).
	 */
	const struct sevm_region *regions;
	unsigned int nr_regions;
	/*
	 * Sender: the VMM enabled KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 on the VM,
	 * so the library clears what it read (KVM_CLEAR_DIRTY_LOG).  Without
	 * it KVM clears at the read, and a clear would lose writes.
	 */
	bool dirty_log_manual;
	/* SEV: 0 for a plain guest. */
	enum sevm_sev_type sev_type;
	int sev_fd;			/* an open /dev/sev: the source's PDH, RECEIVE_START */
	/* Sender: the destination platform's certificates (sevm_sev_pdh_export() there). */
	const void *pdh;
	uint32_t pdh_len;
	const void *plat_certs;
	uint32_t plat_certs_len;
	const void *amd_certs;		/* ASK || ARK of the destination's CPU generation */
	uint32_t amd_certs_len;
	/*
	 * Sender: which pages are private (SEV; sevm_bitmap_map_gpa_range() keeps
	 * it).  NULL: all of them, right for a guest that never shares memory.
	 * Read at every send, so change it only between the library's calls
	 * (from the pre-copy progress callback, say); it travels with the
	 * final pages.
	 */
	const struct sevm_bitmap *private_pages;
};

/* What one pre-copy pass (or the final one) moved. */
struct sevm_iteration_stats {
	size_t sz;
	uint32_t iteration;
	uint64_t pages_shared;
	uint64_t pages_private;
	uint64_t bytes;			/* stream bytes written or read */
	uint64_t dirty_pages;		/* sender: pages the dirty log gave for the next pass */
	uint64_t ns;			/* wall time of the pass */
};

/*
 * Sender: write the stream header and, for SEV, SEND_START to the
 * destination's certificates and the SESSION record.  The guest runs on.
 */
int sevm_send_new(const struct sevm_migrate_opts *opts, struct sevm_send **out,
		  uint32_t *fw_error);

/* Send these pages of the guest as they are now (pages NULL: every page); a pass. */
int sevm_send_pages(struct sevm_send *s, const struct sevm_bitmap *pages, uint32_t *fw_error);

/*
 * Read and clear the dirty log of every SEVM_REGION_LOG_DIRTY region into
 * dirty (a bitmap over the guest's memory map, ORed in); returns the pages
 * now set.
 */
int64_t sevm_send_dirty(struct sevm_send *s, struct sevm_bitmap *dirty);

struct sevm_precopy_opts {
	size_t sz;
	unsigned int max_passes;	/* 0: 30 */
	uint64_t stop_pages;		/* stop when a pass leaves at most this dirty; 0: 256 */
	/* After each pass; a nonzero return stops the pre-copy there. */
	int (*progress)(const struct sevm_iteration_stats *st, void *ctx);
	void *ctx;
};

/*
 * While the guest runs: every page once, then what the dirty log says was
 * written meanwhile, pass after pass, until a pass leaves few enough dirty
 * pages, stops shrinking, or max_passes.  What is still dirty goes with
 * sevm_send_final().  Returns the number of passes.
 */
int sevm_send_precopy(struct sevm_send *s, const struct sevm_precopy_opts *opts,
		      uint32_t *fw_error);

/*
 * With every vCPU paused: the pages still dirty (every page if pre-copy did
 * not run), the private-page map, the vCPUs (SEV-ES: their VMSAs through the
 * firmware, and KVM's state outside them; else KVM's state), the VMM's own
 * state (may be NULL), the END record, then SEND_FINISH.  0: the guest is on
 * its way and must not run here again.  -SEVM_ERR_INDOUBT: the stream went
 * out whole but SEND_FINISH failed; keep the guest paused (no cancel).
 */
int sevm_send_final(struct sevm_send *s, const void *vmm_state, size_t vmm_state_len,
		    uint32_t *fw_error);

/*
 * Abandon the migration after any failure but -SEVM_ERR_INDOUBT: a CANCEL
 * record if the stream still takes one, and SEND_CANCEL (the guest is
 * RUNNING for the firmware again; a failed one may be retried).  Then
 * resume the guest.
 */
int sevm_send_cancel(struct sevm_send *s, uint32_t *fw_error);

/* Pass i (0 .. passes - 1; the final one last); -ENOENT beyond. */
int sevm_send_stats(const struct sevm_send *s, unsigned int i, struct sevm_iteration_stats *st);
void sevm_send_free(struct sevm_send *s);

/*
 * Receiver: the destination VM (for SEV a new VM of the same type, not
 * launched), its vCPUs and its memory regions, mapped.  Nothing is read yet.
 */
int sevm_recv_new(const struct sevm_migrate_opts *opts, struct sevm_recv **out);

/*
 * Read and apply the stream to its END: SESSION (RECEIVE_START with the
 * policy the stream carries), pages, VMSAs or vCPU state, RECEIVE_FINISH.
 * 0: run the guest.  A record is checked whole before anything of it
 * reaches the guest; after a failure the destination guest must not run.
 * -SEVM_ERR_PEER when the source cancelled.
 */
int sevm_recv_run(struct sevm_recv *r, uint32_t *fw_error);

/* After sevm_recv_run(): the source VMM's state (-ENOENT if it sent none), valid until free. */
int sevm_recv_vmm_state(struct sevm_recv *r, const void **data, size_t *len);
/* The private-page map the source sent (a new bitmap, the caller frees it), or -ENOENT. */
int sevm_recv_private(struct sevm_recv *r, struct sevm_bitmap **out);
/* Pass i as the receiver saw it (ITERATION markers close passes); -ENOENT beyond. */
int sevm_recv_stats(const struct sevm_recv *r, unsigned int i, struct sevm_iteration_stats *st);
void sevm_recv_free(struct sevm_recv *r);

#ifdef __cplusplus
}
#endif

#endif /* SEVMIGRATE_H */
