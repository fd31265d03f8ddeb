/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sevsim internals: the modelled host as it lies in its shared mapping, and
 * the helpers the model's files share.  Everything in struct sim_shared is
 * addressed by index, never by pointer: each process maps it elsewhere.
 *
 * Lock order (outermost first):
 *   table_lock            VM slots, the process table (kvm_lock's role)
 *   vm->lock              kvm->lock; MOVE/COPY take both, lower slot first
 *   vcpu->mutex           vcpu->mutex
 *   mirror_lock           mirror <-> owner links (the owner's mirror_vms list)
 *   fw_lock               the firmware and the ASID bitmaps (sev_cmd_mutex,
 *                         sev_bitmap_lock)
 * migration_in_progress is no lock: it is only ever taken with a
 * compare-and-swap, never waited on (sev_lock_two_vms()).
 */
#ifndef SEVSIM_INTERNAL_H
#define SEVSIM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "abi/compat.h"
#include "sevsim.h"

#define SIM_MAGIC		0x313053494d535653ull	/* "SVSMIS01" */
#define SIM_LAYOUT_VERSION	2

/* Capacities of the shared mapping (fixed: it is one memfd). */
#define SIM_MAX_VMS		64
#define SIM_MAX_VCPUS		64	/* per VM: KVM_CAP_MAX_VCPUS */
#define SIM_MAX_VCPU_ID		1024	/* KVM_MAX_VCPU_IDS */
#define SIM_MAX_REGIONS		32	/* registered encrypted regions per VM */
#define SIM_MAX_MEMSLOTS	32	/* memslots per VM */
#define SIM_MAX_GUESTS		128	/* firmware guest contexts */
#define SIM_MAX_PROCS		64	/* processes attached to one host */
#define SIM_MAX_ASIDS		1024	/* ASID numbers 0 .. 1023 */
#define SIM_MAX_CPUID		64	/* entries KVM_SET_CPUID2 takes here */
#define SIM_NR_MSRS		16	/* KVM_GET_MSR_INDEX_LIST */

/* Every model fd is a memfd of one page; its last bytes name it. */
#define SIM_FD_SIZE		4096
#define SIM_TOKEN_OFF		(SIM_FD_SIZE - 64)

#define SIM_PAGE_SIZE		4096ul

enum sim_fd_kind {
	SIM_FD_NONE,
	SIM_FD_KVM,		/* /dev/kvm */
	SIM_FD_SEV,		/* /dev/sev */
	SIM_FD_VM,
	SIM_FD_VCPU,
};

/* Written at SIM_TOKEN_OFF of every model memfd. */
struct sim_token {
	uint64_t magic;
	uint8_t host_id[16];
	uint32_t kind;
	uint32_t vm;		/* slot */
	uint32_t vcpu;		/* index in the VM */
	uint32_t gen;		/* the VM slot's generation when the fd was made */
};

/* What an fd is to this host. */
struct sim_ident {
	enum sim_fd_kind kind;
	uint32_t vm;
	uint32_t vcpu;
	bool writable;		/* FMODE_WRITE: opened O_WRONLY or O_RDWR */
};

/* ---- Firmware (SEV API) ----------------------------------------------- */

/* SEV API guest policy bits (sev-firmware.md §9.1). */
#define SIM_POLICY_NODBG	(1u << 0)
#define SIM_POLICY_NOKS		(1u << 1)
#define SIM_POLICY_ES		(1u << 2)
#define SIM_POLICY_NOSEND	(1u << 3)
#define SIM_POLICY_DOMAIN	(1u << 4)
#define SIM_POLICY_SEV		(1u << 5)
#define SIM_POLICY_RESERVED	0xffc0u		/* bits 6-15 */

/* Firmware-format sizes (sev-firmware.md §13, §14). */
#define SIM_ATTESTATION_LEN	0xd0

/* Certificates (§1, §2): sizes, usages, algorithms. */
#define SIM_CERT_LEN		SEVM_ABI_SEV_CERT_SIZE	/* 2084 */
#define SIM_CERT_BODY		0x414		/* what SIG1 and SIG2 sign */
#define SIM_P384_BYTES		48
#define SIM_EC_FIELD		72		/* QX, QY, R, S fields */
#define SIM_SIG_LEN		512		/* a signature slot */
#define SIM_RSA_MAX_BYTES	512
#define SIM_AMD_KEY_BYTES	256		/* the model's ARK and ASK: RSA-2048 */
#define SIM_AMD_CERT_LEN	(0x40 + 3 * SIM_AMD_KEY_BYTES)	/* 832 */

enum {
	SIM_USAGE_ARK = 0x0000, SIM_USAGE_ASK = 0x0013, SIM_USAGE_NONE = 0x1000,
	SIM_USAGE_OCA = 0x1001, SIM_USAGE_PEK = 0x1002, SIM_USAGE_PDH = 0x1003,
	SIM_USAGE_CEK = 0x1004,
};

enum {
	SIM_ALGO_NONE = 0x000,
	SIM_ALGO_RSA_SHA256 = 0x001, SIM_ALGO_ECDSA_SHA256 = 0x002, SIM_ALGO_ECDH_SHA256 = 0x003,
	SIM_ALGO_RSA_SHA384 = 0x101, SIM_ALGO_ECDSA_SHA384 = 0x102, SIM_ALGO_ECDH_SHA384 = 0x103,
};

/*
 * The platform's identity (§3), made at host creation and never changed:
 * the certificates as PDH_CERT_EXPORT and SEND_START see them, and the two
 * private keys the firmware still needs, as raw big-endian scalars.
 */
struct sim_platform {
	uint8_t pdh_priv[SIM_P384_BYTES];	/* ECDH of SEND_START, RECEIVE_START */
	uint8_t oca_priv[SIM_P384_BYTES];	/* signs the PEK of a host made with domain_of */
	uint8_t pdh[SIM_CERT_LEN];
	uint8_t pek[SIM_CERT_LEN];
	uint8_t oca[SIM_CERT_LEN];
	uint8_t cek[SIM_CERT_LEN];
	uint8_t ask[SIM_AMD_CERT_LEN];
	uint8_t ark[SIM_AMD_CERT_LEN];
};

struct sim_guest {
	uint32_t handle;	/* 0: free */
	uint32_t policy;
	uint32_t state;		/* SEVSIM_GSTATE_* */
	uint32_t asid;		/* 0: not activated */
	uint8_t vek[32];	/* memory key: XEX data key || tweak key */
	uint8_t tek[16];	/* transport keys: the launch channel, then SEND/RECEIVE's */
	uint8_t tik[16];
	uint8_t digest[32];	/* launch digest (a hash chain, see crypto.c) */
	uint8_t measure[32];	/* LAUNCH_MEASURE's HMAC, for LAUNCH_SECRET */
};

struct sim_fw {
	uint32_t platform_state;	/* SEVM_ABI_SEV_STATE_* */
	bool es_ready;			/* CONFIG_ES: SEV-ES initialised */
	uint32_t next_handle;
	struct sim_platform id;
	struct sim_guest guests[SIM_MAX_GUESTS];
};

/* ---- KVM ------------------------------------------------------------- */

/* One vCPU: vcpu->mutex, guest_state_protected and a store of its state. */
struct sim_vcpu {
	dev_t dev;			/* its fd's identity: atomic, never reset */
	ino_t ino;
	pthread_mutex_t mutex;		/* everything from here on is reset */
	uint32_t id;			/* the KVM_CREATE_VCPU argument */
	bool protected;			/* vcpu->arch.guest_state_protected */
	bool fpu_confidential;		/* fpstate_set_confidential() */
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_sregs2 sregs2;
	struct kvm_fpu fpu;
	struct kvm_xsave xsave;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_mp_state mp_state;
	uint32_t tsc_khz;
	uint32_t nr_cpuid;
	struct kvm_cpuid_entry2 cpuid[SIM_MAX_CPUID];
	uint64_t msrs[SIM_NR_MSRS];
};

struct sim_region {
	uint64_t uaddr;
	uint64_t size;
	uint64_t npages;
};

struct sim_memslot {
	bool used;
	uint32_t slot;
	uint32_t flags;
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;
};

/* struct kvm_sev_info, the fields the model needs. */
struct sim_sev {
	bool active;
	bool es_active;
	bool need_init;
	bool mirror;			/* enc_context_owner != NULL */
	int32_t owner;			/* enc_context_owner's slot (mirror_lock) */
	uint32_t nr_mirrors;		/* entries of mirror_vms (mirror_lock) */
	uint32_t asid;
	uint32_t handle;
	uint32_t policy;
	int32_t fd;			/* the saved /dev/sev fd NUMBER */
	uint64_t vmsa_features;
	uint16_t ghcb_version;
	uint64_t pages_locked;
	uint32_t nr_regions;
	struct sim_region regions[SIM_MAX_REGIONS];
};

struct sim_vm {
	uint32_t gen;			/* atomic; odd while the slot is in use */
	dev_t dev;			/* the VM fd's identity: atomic, never reset */
	ino_t ino;
	pthread_mutex_t lock;		/* kvm->lock; everything from here on is reset */
	int migration_in_progress;	/* atomic: kvm_sev_info's */
	int dead;			/* atomic: kvm_vm_dead() */
	pid_t creator;			/* kvm->mm: the process that made it */
	uint32_t vm_type;
	uint32_t created_vcpus;		/* under lock */
	uint32_t online_vcpus;		/* atomic */
	bool irqchip;
	uint8_t irqchip_state[3][512];
	struct kvm_clock_data clock;
	struct sim_memslot memslots[SIM_MAX_MEMSLOTS];
	struct sim_sev sev;
	struct sim_vcpu vcpus[SIM_MAX_VCPUS];
};

/* ---- The host ------------------------------------------------------- */

struct sim_config {
	uint32_t sev_asids;
	uint32_t sev_es_asids;
	bool sev_es;			/* kvm_amd.sev_es */
	bool vm_types;			/* KVM_SEV_INIT2 and VM types 2, 3 */
	bool dead_vm_rejects_ioctls;
	bool upstream_vmsa_ids;		/* ids 10 and 14 are -EINVAL, as upstream */
	uint8_t api_major, api_minor, build;
};

struct sim_shared {
	uint64_t magic;
	uint32_t version;
	uint32_t size;
	uint8_t host_id[16];
	struct sim_config cfg;
	pthread_mutex_t table_lock;
	pthread_mutex_t mirror_lock;
	pthread_mutex_t fw_lock;
	pid_t procs[SIM_MAX_PROCS];
	/* sev_asid_bitmap / sev_reclaim_asid_bitmap, indexed by ASID */
	uint64_t asid_used[SIM_MAX_ASIDS / 64];
	uint64_t asid_reclaim[SIM_MAX_ASIDS / 64];
	/* the one misc cgroup ("sevsim") every process is in: usage */
	uint32_t misc_sev;
	uint32_t misc_sev_es;
	struct sim_fw fw;
	struct sim_vm vms[SIM_MAX_VMS];
};

/* The per-process handle. */
struct sevsim {
	struct sim_shared *sh;
	int fd;
	pid_t pid;			/* atomic: the pid registered last */
};

/* ---- host.c ------------------------------------------------------------ */

void sim__lock(pthread_mutex_t *m);
void sim__unlock(pthread_mutex_t *m);
int sim__mutex_init(pthread_mutex_t *m);
/* Register the calling process (after a fork too) in the host's table. */
void sim__enter(struct sevsim *sim);
/*
 * Destroy every VM no attached process holds an fd of (and no mirror pins):
 * what the kernel does at the last close.  Takes table_lock; call with no
 * other lock held.
 */
void sim__gc(struct sevsim *sim);
/* The VM of slot i while it is in use and of generation gen, else NULL. */
struct sim_vm *sim__vm(struct sim_shared *sh, uint32_t i, uint32_t gen);
uint32_t sim__vm_index(const struct sim_shared *sh, const struct sim_vm *vm);

/* ---- fds.c -------------------------------------------------------------- */

/* A model memfd of `kind` for slot vm / vCPU vcpu; returns the fd or -errno. */
int sim__fd_new(struct sevsim *sim, enum sim_fd_kind kind, uint32_t vm, uint32_t vcpu,
		uint32_t gen, int flags, dev_t *dev, ino_t *ino);
/* Write the token into an fd made by sim__fd_new() with kind NONE. */
int sim__fd_set_token(struct sevsim *sim, int fd, enum sim_fd_kind kind, uint32_t vm,
		      uint32_t vcpu, uint32_t gen);
/* 0 with *id filled (kind NONE for a non-model fd), or -EBADF: fd not open. */
int sim__ident(struct sevsim *sim, int fd, struct sim_ident *id);
/*
 * __sev_issue_cmd(): resolve an fd NUMBER in the calling process; 0 if it is
 * this host's /dev/sev, else -EBADF (not open, or not /dev/sev).
 */
int sim__sev_fd_check(struct sevsim *sim, int fd);

/* ---- uaccess.c ----------------------------------------------------------- */

/* copy_from_user / copy_to_user on the calling process: 0 or -EFAULT. */
int sim__copy_from_user(void *dst, uint64_t uaddr, size_t len);
int sim__copy_to_user(uint64_t uaddr, const void *src, size_t len);
/* sev_pin_memory() / sev_unpin_memory(): under vm->lock. */
int sim__pin(struct sim_vm *vm, uint64_t uaddr, uint64_t len, bool write, uint64_t *npages);
void sim__unpin(struct sim_vm *vm, uint64_t npages);

/* ---- crypto.c ------------------------------------------------------------ */

int sim__random(void *buf, size_t len);
/*
 * Encrypt (enc) or decrypt len bytes (a multiple of 16) in place under the
 * guest's memory key; addr is where they lie (its page offset is the tweak).
 */
int sim__mem_crypt(const uint8_t vek[32], bool enc, uint64_t addr, uint8_t *buf, size_t len);
void sim__digest_extend(uint8_t digest[32], const void *data, size_t len);
void sim__digest_init(uint8_t digest[32]);
int sim__hmac(const uint8_t *key, size_t key_len, const void *data, size_t len,
	      uint8_t out[32]);
int sim__aes_ctr(const uint8_t key[16], const uint8_t iv[16], const uint8_t *in, uint8_t *out,
		 size_t len);

/* ---- pkey.c: P-384 and RSA on the certificates' little-endian numbers --- */

/* A new P-384 key: its scalar (big-endian) and point (little-endian); NULL on failure. */
EVP_PKEY *sim__ec_generate(uint8_t priv[SIM_P384_BYTES], uint8_t qx[SIM_P384_BYTES],
			    uint8_t qy[SIM_P384_BYTES]);
EVP_PKEY *sim__ec_private(const uint8_t priv[SIM_P384_BYTES], const uint8_t qx[SIM_P384_BYTES],
			  const uint8_t qy[SIM_P384_BYTES]);
/* NULL unless (qx, qy) is a point of P-384. */
EVP_PKEY *sim__ec_public(const uint8_t qx[SIM_P384_BYTES], const uint8_t qy[SIM_P384_BYTES]);
int sim__ecdh(EVP_PKEY *priv, EVP_PKEY *peer, uint8_t z[SIM_P384_BYTES]);
int sim__ecdsa_sign(EVP_PKEY *k, const EVP_MD *md, const void *msg, size_t len,
		    uint8_t slot[SIM_SIG_LEN]);
bool sim__ecdsa_verify(EVP_PKEY *k, const EVP_MD *md, const void *msg, size_t len,
		       const uint8_t slot[SIM_SIG_LEN]);
/* The exponent and modulus of an RSA key, little-endian in len bytes each. */
int sim__rsa_parts(EVP_PKEY *k, uint8_t *exp, uint8_t *mod, size_t len);
EVP_PKEY *sim__rsa_public(const uint8_t *exp, const uint8_t *mod, size_t len);
int sim__rsa_sign(EVP_PKEY *k, const EVP_MD *md, const void *msg, size_t len, uint8_t *sig,
		  size_t sig_len);
bool sim__rsa_verify(EVP_PKEY *k, const EVP_MD *md, const void *msg, size_t len,
		     const uint8_t *sig, size_t sig_len);

/* ---- amd_root.c: the model's stand-in for AMD's keys --------------------- */

extern const uint8_t sim__ark_key_id[16];
extern const uint8_t sim__ask_key_id[16];
/* The ARK's or the ASK's private key; NULL on failure. */
EVP_PKEY *sim__amd_root_key(bool ask);

/* ---- cert.c: the SEV and AMD certificate formats ------------------------- */

/* §1.1: a certificate of this host's firmware version with a P-384 key, slots empty. */
void sim__sev_cert_init(uint8_t cert[SIM_CERT_LEN], const struct sim_config *cfg, uint32_t usage,
			uint32_t algo, const uint8_t qx[SIM_P384_BYTES],
			const uint8_t qy[SIM_P384_BYTES]);
/* Sign slot 0 or 1 as (usage, algo): ECDSA or RSA-PSS as algo says. */
int sim__sev_cert_sign(uint8_t cert[SIM_CERT_LEN], int slot, uint32_t usage, uint32_t algo,
		       EVP_PKEY *signer);
/* §2.1: an AMD-format certificate of an RSA-2048 key, signed by an RSA-2048 key. */
int sim__amd_cert_make(uint8_t cert[SIM_AMD_CERT_LEN], const uint8_t key_id[16],
		       const uint8_t certifying_id[16], uint32_t usage, EVP_PKEY *key,
		       EVP_PKEY *signer);
/*
 * §1.7 sev_cert_sanity_check(): version, key, exact usage and algorithm;
 * the key to *key.  An SEV status.
 */
uint32_t sim__cert_sanity(const uint8_t *cert, uint32_t usage, uint32_t algo, EVP_PKEY **key);
/* §8.1 step 6: the receiver's ARK -> ASK -> CEK -> PEK -> PDH against this host's root. */
uint32_t sim__chain_platform(const struct sim_shared *sh, const uint8_t *pdh, uint32_t pdh_len,
			     const uint8_t *plat, uint32_t plat_len, const uint8_t *amd,
			     uint32_t amd_len);
/* §8.1 step 7: OCA -> PEK -> PDH, and the receiver's OCA this host's own. */
uint32_t sim__chain_domain(const struct sim_shared *sh, const uint8_t *pdh, uint32_t pdh_len,
			   const uint8_t *plat, uint32_t plat_len);

/* ---- channel.c: the transport of §4 and §5 ------------------------------- */

#define SIM_SESSION_LEN		SEVM_ABI_SEV_SESSION_SIZE	/* 128 */
#define SIM_HDR_LEN		SEVM_ABI_SEV_PACKET_HDR_SIZE	/* 52 */
#define SIM_PACKET_MAX		0x5000	/* FW SEV_SCRATCH_BUF_LEN */

/* §4.2 KDF: NIST SP 800-108 counter mode, HMAC-SHA256, i and L little-endian. */
int sim__kdf(const uint8_t *key, size_t key_len, const char *label, const uint8_t *ctx,
	     size_t ctx_len, uint8_t *out, size_t out_len);
/* §4.1: the session a sender makes from Z and its fresh values. */
int sim__session_build(const uint8_t *z, size_t z_len, const uint8_t nonce[16],
		       const uint8_t wrap_iv[16], const uint8_t tek[16], const uint8_t tik[16],
		       uint32_t policy, uint8_t session[SIM_SESSION_LEN]);
/* §4.4: check and unwrap a session; an SEV status (BAD_MEASUREMENT on any MAC). */
uint32_t sim__session_open(const uint8_t *z, size_t z_len,
			   const uint8_t session[SIM_SESSION_LEN], uint32_t policy,
			   uint8_t tek[16], uint8_t tik[16]);
/* §5.2: encrypt-then-MAC len bytes into trans (len bytes) and a 52-byte header. */
int sim__packet_seal(const uint8_t tek[16], const uint8_t tik[16], const uint8_t *plain,
		     uint32_t len, uint8_t hdr[SIM_HDR_LEN], uint8_t *trans);
/* §5.4 step 9: the MAC first, then decrypt; an SEV status. */
uint32_t sim__packet_open(const uint8_t tek[16], const uint8_t tik[16],
			  const uint8_t hdr[SIM_HDR_LEN], const uint8_t *trans, uint32_t len,
			  uint8_t *plain);

/* ---- platform.c: the platform's identity --------------------------------- */

/* Keys and certificates for a new host; with domain, that host's OCA (same owner). */
int sim__platform_create(struct sim_shared *sh, const struct sim_shared *domain);
/* §4.3: Z between this platform's PDH and a remote PDH certificate; an SEV status. */
uint32_t sim__pdh_agree(const struct sim_shared *sh, const uint8_t *remote_pdh,
			uint8_t z[SIM_P384_BYTES]);
/* §13 PDH_CERT_EXPORT: pdh / chain may be NULL with lengths 0 (the length query). */
uint32_t sim__fw_pdh_cert_export(struct sim_shared *sh, uint8_t *pdh, uint32_t *pdh_len,
				 uint8_t *chain, uint32_t *chain_len);

/* ---- fw.c: firmware commands; each returns an SEV status (0 success) ----- */

uint32_t sim__fw_platform_init(struct sim_shared *sh);
void sim__fw_platform_status(struct sim_shared *sh, struct sevm_abi_sev_user_data_status *st);
int sim__asid_new(struct sim_shared *sh, bool es, uint32_t *asid);
void sim__asid_free(struct sim_shared *sh, uint32_t asid, bool es);
bool sim__asid_exhausted(struct sim_shared *sh, bool es);

struct sim_fw_launch_start {
	uint32_t handle;	/* in: 0 or a guest to share keys with; out: new */
	uint32_t policy;
	bool dh_cert;		/* a DH certificate was given (a channel is asked for) */
	uint32_t dh_len;
	bool session;
	uint32_t session_len;
};
uint32_t sim__fw_launch_start(struct sim_shared *sh, struct sim_fw_launch_start *p);
uint32_t sim__fw_activate(struct sim_shared *sh, uint32_t handle, uint32_t asid);
void sim__fw_deactivate(struct sim_shared *sh, uint32_t handle);
void sim__fw_decommission(struct sim_shared *sh, uint32_t handle);
/* In place, in the calling process's memory. */
uint32_t sim__fw_launch_update_data(struct sim_shared *sh, uint32_t handle, uint64_t addr,
				    uint32_t len);
uint32_t sim__fw_launch_update_vmsa(struct sim_shared *sh, uint32_t handle,
				    const void *vmsa, uint32_t len);
/* out (48 bytes) may be NULL with *len 0: the length query. */
uint32_t sim__fw_launch_measure(struct sim_shared *sh, uint32_t handle, uint8_t *out,
				uint32_t *len);
uint32_t sim__fw_launch_secret(struct sim_shared *sh, uint32_t handle, const uint8_t *hdr,
			       uint32_t hdr_len, uint64_t guest_addr, uint32_t guest_len,
			       const uint8_t *trans, uint32_t trans_len);
uint32_t sim__fw_launch_finish(struct sim_shared *sh, uint32_t handle);
uint32_t sim__fw_guest_status(struct sim_shared *sh, uint32_t handle, uint32_t *policy,
			      uint32_t *asid, uint32_t *state);
/* DBG_DECRYPT: guest memory at src -> out; DBG_ENCRYPT: in -> guest memory at dst. */
uint32_t sim__fw_dbg_decrypt(struct sim_shared *sh, uint32_t handle, uint64_t src,
			     uint8_t *out, uint32_t len);
uint32_t sim__fw_dbg_encrypt(struct sim_shared *sh, uint32_t handle, const uint8_t *in,
			     uint64_t dst, uint32_t len);
uint32_t sim__fw_attestation(struct sim_shared *sh, uint32_t handle, const uint8_t mnonce[16],
			     uint8_t *out, uint32_t *len);
/* The guest's SEV API state, 0 for an unknown handle. */
uint32_t sim__fw_guest_state(struct sim_shared *sh, uint32_t handle);

/* fw.c's gates and contexts, which fw_migrate.c shares */
uint32_t sim__fw_need_working(const struct sim_shared *sh);
uint32_t sim__fw_need_init_or_working(const struct sim_shared *sh);
struct sim_guest *sim__fw_guest(struct sim_shared *sh, uint32_t handle);
uint32_t sim__fw_guest_gate(struct sim_shared *sh, uint32_t handle, uint32_t state,
			    struct sim_guest **out);
uint32_t sim__fw_check_policy(const struct sim_shared *sh, uint32_t policy);
/* A free context, NULL when every one is in use (RESOURCE_LIMIT). */
struct sim_guest *sim__fw_guest_slot(struct sim_shared *sh);
/*
 * Give the free context g a memory key (share's, or new), transport keys
 * (tek and tik, or new ones when NULL), a handle and a state; the platform is
 * WORKING from then on (§7.4).
 */
uint32_t sim__fw_guest_open(struct sim_shared *sh, struct sim_guest *g,
			    const struct sim_guest *share, uint32_t policy, uint32_t state,
			    const uint8_t *tek, const uint8_t *tik);

/* ---- fw_migrate.c: SEND_* and RECEIVE_* (§5, §6, §8) --------------------- */

struct sim_fw_send_start {
	uint32_t handle;
	uint32_t policy;		/* out: the guest's */
	const uint8_t *pdh, *plat, *amd;	/* the receiver's certificates */
	uint32_t pdh_len, plat_len, amd_len;
	uint8_t *session;		/* out: SIM_SESSION_LEN bytes */
	uint32_t session_len;		/* in/out: 128 written back on INVALID_LEN */
};
uint32_t sim__fw_send_start(struct sim_shared *sh, struct sim_fw_send_start *p);

struct sim_fw_receive_start {
	uint32_t handle;		/* in: 0 or a guest to share keys with; out: new */
	uint32_t policy;
	const uint8_t *pdh;		/* the sender's PDH */
	uint32_t pdh_len;
	const uint8_t *session;
	uint32_t session_len;
};
uint32_t sim__fw_receive_start(struct sim_shared *sh, struct sim_fw_receive_start *p);

/*
 * One packet of SEND_UPDATE_* / RECEIVE_UPDATE_*.  DATA: guest memory at
 * guest_addr in the calling process.  VMSA: the page KVM serialises
 * (sev_cmd.c), SEND's input and RECEIVE's output.
 */
struct sim_fw_packet {
	uint32_t handle;
	bool vmsa;
	bool vmsa_known;		/* SEND_UPDATE_VMSA: the firmware made this VMSA */
	uint8_t *hdr;
	uint32_t hdr_len;		/* SEND: 52 written back (success, INVALID_LEN) */
	uint64_t guest_addr;
	uint32_t guest_len;
	uint8_t *trans;
	uint32_t trans_len;
	uint8_t *page;			/* VMSA: SIM_PAGE_SIZE bytes */
};
uint32_t sim__fw_send_update(struct sim_shared *sh, struct sim_fw_packet *p);
uint32_t sim__fw_receive_update(struct sim_shared *sh, struct sim_fw_packet *p);
uint32_t sim__fw_send_finish(struct sim_shared *sh, uint32_t handle);
uint32_t sim__fw_send_cancel(struct sim_shared *sh, uint32_t handle);
uint32_t sim__fw_receive_finish(struct sim_shared *sh, uint32_t handle);

/* KVM_GET_MSR_INDEX_LIST: the MSRs a vCPU stores (kvm.c) */
extern const uint32_t sim__msr_list[SIM_NR_MSRS];

/* ---- the ioctl handlers ------------------------------------------------- */

int sim__kvm_ioctl(struct sevsim *sim, unsigned long req, void *arg);
int sim__vm_ioctl(struct sevsim *sim, uint32_t vmi, unsigned long req, void *arg);
int sim__vcpu_ioctl(struct sevsim *sim, uint32_t vmi, uint32_t vcpu, int fd,
		    unsigned long req, void *arg);
int sim__sev_dev_ioctl(struct sevsim *sim, const struct sim_ident *id, unsigned long req,
		       void *arg);
/* KVM_MEMORY_ENCRYPT_OP, _REG_REGION, _UNREG_REGION on a VM (sev_cmd.c). */
int sim__mem_enc_op(struct sevsim *sim, struct sim_vm *vm, void *argp);
int sim__mem_enc_reg_region(struct sevsim *sim, struct sim_vm *vm, void *argp);
int sim__mem_enc_unreg_region(struct sevsim *sim, struct sim_vm *vm, void *argp);
/* sev_supported_vmsa_features: KVM_X86_SEV_VMSA_FEATURES, what INIT2 takes */
uint64_t sim__supported_vmsa_features(const struct sim_shared *sh);
/* KVM_CAP_VM_MOVE_ENC_CONTEXT_FROM / _COPY_ (move.c). */
int sim__move_enc_context_from(struct sevsim *sim, struct sim_vm *dst, unsigned int fd);
int sim__copy_enc_context_from(struct sevsim *sim, struct sim_vm *dst, unsigned int fd);
/* sev_vm_destroy(): under table_lock. */
void sim__sev_vm_destroy(struct sim_shared *sh, struct sim_vm *vm);
/* Files the probe reads (files.c): an fd, -ENOENT if the model has no such file. */
int sim__file_open(struct sevsim *sim, const char *path, int flags);

/* A slot's fd identity: read without locks (a stale fd may look any time). */
static inline void sim__id_set(dev_t *dev, ino_t *ino, dev_t d, ino_t i)
{
	__atomic_store_n(dev, d, __ATOMIC_RELAXED);
	__atomic_store_n(ino, i, __ATOMIC_RELAXED);
}

static inline bool sim__id_is(const dev_t *dev, const ino_t *ino, dev_t d, ino_t i)
{
	return __atomic_load_n(ino, __ATOMIC_RELAXED) == i &&
	       __atomic_load_n(dev, __ATOMIC_RELAXED) == d;
}

/* sev_guest(), sev_es_guest() */
static inline bool sim__sev_guest(const struct sim_vm *vm)
{
	return vm->sev.active;
}

static inline bool sim__sev_es_guest(const struct sim_vm *vm)
{
	return vm->sev.active && vm->sev.es_active;
}

/* kvm->arch.has_protected_state: SEV-ES VM type (register ioctls refused). */
static inline bool sim__has_protected_state(const struct sim_vm *vm)
{
	return vm->vm_type == KVM_X86_SEV_ES_VM;
}

#endif
