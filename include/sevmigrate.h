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

#ifdef __cplusplus
}
#endif

#endif /* SEVMIGRATE_H */
