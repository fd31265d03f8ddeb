/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sevsim's remote migration: the platform certificates, the transport
 * crypto (known-answer vectors of sev-firmware.md §4.5), and SEND_* /
 * RECEIVE_* driven through libsevmigrate's seam with raw ioctls, as a VMM
 * without the library's migration wrappers would: SEV and SEV-ES guests
 * moved page by page (and VMSA by VMSA) to a destination on the same host
 * and on a host in another process, and every refusal the firmware and KVM
 * give on the way (sev-firmware.md §5 - §9, sev-kernel-rules.md §4.13 -
 * §4.17, §6.2).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>
#include <sevmigrate.h>

#include "abi/compat.h"
#include "internal.h"
#include "testutil.h"
#include "tu-sevsim.h"

#define PAGE		4096u
#define NPAGES		4u
#define MEM_LEN		(NPAGES * PAGE)
#define NR_VCPUS	2u
#define CERT		2084u
#define CHAIN		(3 * CERT)
#define AMD_LEN		1664u	/* ASK || ARK, 2048-bit keys (§2.3) */
#define SESSION		128u
#define HDR		52u

/* policy bits (§9.1) and an API version in a policy */
#define P_NODBG		0x01u
#define P_ES		0x04u
#define P_NOSEND	0x08u
#define P_DOMAIN	0x10u
#define P_SEV		0x20u
#define P_API(maj, min)	((uint32_t)(maj) << 16 | (uint32_t)(min) << 24)

/* The firmware status the last command wrote back (0xeeeeeeee going in). */
static uint32_t fw;

/* ---- Raw ioctls through the seam (no assertions: the child uses them) ------ */

static int sev_cmd(int vm, uint32_t id, void *data, int sev_fd)
{
	struct kvm_sev_cmd c = { .id = id, .data = (uintptr_t)data, .sev_fd = (uint32_t)sev_fd,
				 .error = 0xeeeeeeee };
	int r = sevm_ioctl(vm, KVM_MEMORY_ENCRYPT_OP, &c);

	fw = c.error;
	return r;
}

static int sev_issue(int fd, uint32_t cmd, void *data)
{
	struct sev_issue_cmd c = { .cmd = cmd, .data = (uintptr_t)data, .error = 0xeeeeeeee };
	int r = sevm_ioctl(fd, SEV_ISSUE_CMD, &c);

	fw = c.error;
	return r;
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)((i * 7 + 3) ^ (i >> 9));
}

enum kind {
	K_SEV,		/* KVM_X86_SEV_VM + KVM_SEV_INIT2 */
	K_ES,		/* KVM_X86_SEV_ES_VM + KVM_SEV_INIT2: protected state */
	K_ES_LEGACY,	/* default VM + KVM_SEV_ES_INIT: the register getters answer */
};

struct vm {
	int fd, sev;
	int vcpu[NR_VCPUS];
	unsigned int nr_vcpus;
	uint8_t *mem;		/* MEM_LEN, page-aligned */
};

/* An initialised VM of kind k with n vCPUs and MEM_LEN of memory holding pattern(). */
static int vm_new(struct vm *v, enum kind k, unsigned int n)
{
	static const int type[] = { KVM_X86_SEV_VM, KVM_X86_SEV_ES_VM, KVM_X86_DEFAULT_VM };
	struct sevm_abi_sev_init init = { 0 };
	int kvm = sevm_open("/dev/kvm", O_RDWR), r;

	memset(v, 0, sizeof(*v));
	v->sev = -1;
	if (kvm < 0)
		return kvm;
	v->fd = sevm_ioctl(kvm, KVM_CREATE_VM, (void *)(long)type[k]);
	sevm_close(kvm);
	if (v->fd < 0)
		return v->fd;
	r = sev_cmd(v->fd, k == K_ES_LEGACY ? SEVM_ABI_SEV_ES_INIT : SEVM_ABI_SEV_INIT2, &init, 0);
	for (unsigned int i = 0; i < n && !r; i++) {
		int fd = sevm_ioctl(v->fd, KVM_CREATE_VCPU, (void *)(long)i);

		if (fd < 0)
			r = fd;
		else
			v->vcpu[v->nr_vcpus++] = fd;
	}
	if (!r)
		r = v->sev = sevm_open("/dev/sev", O_RDWR);
	if (r >= 0) {
		v->mem = mmap(NULL, MEM_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0);
		r = v->mem == MAP_FAILED ? -ENOMEM : 0;
		for (size_t i = 0; !r && i < MEM_LEN; i++)
			v->mem[i] = pattern(i);
	}
	return r;
}

static void vm_free(struct vm *v)
{
	for (unsigned int i = 0; i < v->nr_vcpus; i++)
		sevm_close(v->vcpu[i]);
	if (v->sev >= 0)
		sevm_close(v->sev);
	sevm_close(v->fd);
	if (v->mem && v->mem != MAP_FAILED)
		munmap(v->mem, MEM_LEN);
	memset(v, 0, sizeof(*v));
}

/* LAUNCH_START .. FINISH: memory encrypted, VMSAs too when es */
static int launch(struct vm *v, uint32_t policy, bool es)
{
	struct sevm_abi_sev_launch_start s = { .policy = policy };
	struct sevm_abi_sev_launch_update_data u = { .uaddr = (uintptr_t)v->mem, .len = MEM_LEN };
	uint8_t blob[48];
	struct sevm_abi_sev_launch_measure m = { .uaddr = (uintptr_t)blob, .len = sizeof(blob) };
	int r = sev_cmd(v->fd, SEVM_ABI_SEV_LAUNCH_START, &s, v->sev);

	if (!r)
		r = sev_cmd(v->fd, SEVM_ABI_SEV_LAUNCH_UPDATE_DATA, &u, 0);
	if (!r && es)
		r = sev_cmd(v->fd, SEVM_ABI_SEV_LAUNCH_UPDATE_VMSA, NULL, 0);
	if (!r)
		r = sev_cmd(v->fd, SEVM_ABI_SEV_LAUNCH_MEASURE, &m, 0);
	if (!r)
		r = sev_cmd(v->fd, SEVM_ABI_SEV_LAUNCH_FINISH, NULL, 0);
	return r;
}

/* A platform's certificates, as the receiver hands them to the sender. */
struct certs {
	uint8_t pdh[CERT];
	uint8_t chain[CHAIN];	/* PEK, OCA, CEK */
	uint8_t amd[AMD_LEN];	/* ASK, ARK */
};

/* PDH_CERT_EXPORT on the installed host `host`, and its AMD chain. */
static int certs_get(struct sevsim *host, struct certs *c)
{
	struct sevm_abi_sev_user_data_pdh_cert_export p = {
		.pdh_cert_address = (uintptr_t)c->pdh, .pdh_cert_len = CERT,
		.cert_chain_address = (uintptr_t)c->chain, .cert_chain_len = CHAIN };
	uint32_t len = AMD_LEN;
	int fd = sevm_open("/dev/sev", O_RDONLY), r;

	if (fd < 0)
		return fd;
	r = sev_issue(fd, SEVM_ABI_SEV_DEV_PDH_CERT_EXPORT, &p);
	sevm_close(fd);
	return r ? r : sevsim_amd_certs(host, c->amd, &len);
}

static int send_start(struct vm *v, const struct certs *to, uint8_t session[SESSION],
		      uint32_t *policy)
{
	struct sevm_abi_sev_send_start s = {
		.pdh_cert_uaddr = (uintptr_t)to->pdh, .pdh_cert_len = CERT,
		.plat_certs_uaddr = (uintptr_t)to->chain, .plat_certs_len = CHAIN,
		.amd_certs_uaddr = (uintptr_t)to->amd, .amd_certs_len = AMD_LEN,
		.session_uaddr = (uintptr_t)session, .session_len = SESSION };
	int r = sev_cmd(v->fd, SEVM_ABI_SEV_SEND_START, &s, 0);

	if (policy)
		*policy = s.policy;
	return r;
}

static int receive_start(struct vm *v, const uint8_t pdh[CERT], const uint8_t session[SESSION],
			 uint32_t policy)
{
	struct sevm_abi_sev_receive_start s = {
		.policy = policy, .pdh_uaddr = (uintptr_t)pdh, .pdh_len = CERT,
		.session_uaddr = (uintptr_t)session, .session_len = SESSION };

	return sev_cmd(v->fd, SEVM_ABI_SEV_RECEIVE_START, &s, v->sev);
}

/* One packet: a page range of guest memory, or vCPU `vcpu`'s VMSA. */
struct packet {
	uint8_t hdr[HDR];
	uint8_t trans[PAGE];
	uint32_t off, len;
	int32_t vcpu;		/* -1: data */
};

static int send_page(struct vm *v, uint32_t off, uint32_t len, struct packet *p)
{
	struct sevm_abi_sev_send_update_data d = {
		.hdr_uaddr = (uintptr_t)p->hdr, .hdr_len = HDR,
		.guest_uaddr = (uintptr_t)v->mem + off, .guest_len = len,
		.trans_uaddr = (uintptr_t)p->trans, .trans_len = len };

	p->off = off;
	p->len = len;
	p->vcpu = -1;
	return sev_cmd(v->fd, SEVM_ABI_SEV_SEND_UPDATE_DATA, &d, 0);
}

static int send_vmsa(struct vm *v, uint32_t vcpu, struct packet *p)
{
	struct sevm_abi_sev_update_vmsa a = {
		.vcpu_id = vcpu, .hdr_uaddr = (uintptr_t)p->hdr, .hdr_len = HDR,
		.trans_uaddr = (uintptr_t)p->trans, .trans_len = PAGE };

	p->vcpu = (int32_t)vcpu;
	p->len = PAGE;
	return sev_cmd(v->fd, SEVM_ABI_SEV_SEND_UPDATE_VMSA, &a, 0);
}

static int receive(struct vm *v, const struct packet *p)
{
	struct sevm_abi_sev_receive_update_data d = {
		.hdr_uaddr = (uintptr_t)p->hdr, .hdr_len = HDR,
		.guest_uaddr = (uintptr_t)v->mem + p->off, .guest_len = p->len,
		.trans_uaddr = (uintptr_t)p->trans, .trans_len = p->len };
	struct sevm_abi_sev_update_vmsa a = {
		.vcpu_id = (uint32_t)p->vcpu, .hdr_uaddr = (uintptr_t)p->hdr, .hdr_len = HDR,
		.trans_uaddr = (uintptr_t)p->trans, .trans_len = PAGE };

	if (p->vcpu >= 0)
		return sev_cmd(v->fd, SEVM_ABI_SEV_RECEIVE_UPDATE_VMSA, &a, 0);
	return sev_cmd(v->fd, SEVM_ABI_SEV_RECEIVE_UPDATE_DATA, &d, 0);
}

/* Every page of the source, one packet each. */
static int send_all(struct vm *v, struct packet p[NPAGES])
{
	int r = 0;

	for (uint32_t i = 0; i < NPAGES && !r; i++)
		r = send_page(v, i * PAGE, PAGE, &p[i]);
	return r;
}

static int receive_all(struct vm *v, const struct packet *p, unsigned int n)
{
	int r = 0;

	for (unsigned int i = 0; i < n && !r; i++)
		r = receive(v, &p[i]);
	return r;
}

/* DBG_DECRYPT of [off, off + len): pattern() again, or -EILSEQ. */
static int check_plain(struct vm *v, uint32_t off, uint32_t len)
{
	uint8_t out[PAGE];
	struct sevm_abi_sev_dbg d = { .src_uaddr = (uintptr_t)v->mem + off,
				      .dst_uaddr = (uintptr_t)out, .len = len };
	int r = sev_cmd(v->fd, SEVM_ABI_SEV_DBG_DECRYPT, &d, 0);

	for (uint32_t i = 0; !r && i < len; i++)
		if (out[i] != pattern(off + i))
			r = -EILSEQ;
	return r;
}

static int check_all_plain(struct vm *v)
{
	int r = 0;

	for (uint32_t i = 0; i < NPAGES && !r; i++)
		r = check_plain(v, i * PAGE, PAGE);
	return r;
}

/* ---- Assertions ----------------------------------------------------------- */

#define FW_FAILS(call, status)							\
	do {									\
		int r_ = (call);						\
		ck_assert_msg(r_ == -EIO && fw == (status),			\
			      "%s: %d, firmware 0x%x (wanted -EIO, 0x%x)", #call, r_,	\
			      fw, (unsigned int)(status));			\
	} while (0)

#define OK(call)								\
	do {									\
		int r_ = (call);						\
		ck_assert_msg(r_ == 0, "%s: %d, firmware 0x%x", #call, r_, fw);	\
	} while (0)

static void new_vm(struct vm *v, enum kind k, unsigned int n)
{
	OK(vm_new(v, k, n));
}

/* No 16-byte block of the guest's memory is its plaintext. */
static void assert_ciphertext(const struct vm *v)
{
	for (size_t b = 0; b < MEM_LEN; b += 16) {
		bool same = true;

		for (size_t i = 0; i < 16; i++)
			same &= v->mem[b + i] == pattern(b + i);
		ck_assert_msg(!same, "block at %zu is plaintext", b);
	}
}

static struct sevsim_vm_info info(int vm)
{
	struct sevsim_vm_info i = { .sz = sizeof(i) };

	ck_assert_int_eq(sevsim_vm_info(tu_sim, vm, &i), 0);
	return i;
}

/* The firmware's context of v's guest: the model's internals, what hardware hides. */
static const struct sim_guest *fw_guest(struct vm *v)
{
	uint32_t h = info(v->fd).handle;

	for (int i = 0; i < SIM_MAX_GUESTS; i++)
		if (h && tu_sim->sh->fw.guests[i].handle == h)
			return &tu_sim->sh->fw.guests[i];
	ck_abort_msg("no firmware context for handle %u", h);
	return NULL;
}

/* §6: the channel keys the firmware holds for v's guest are all zero. */
static bool channel_keys_zero(struct vm *v)
{
	const struct sim_guest *g = fw_guest(v);
	uint8_t any = 0;

	for (size_t k = 0; k < sizeof(g->tek); k++)
		any |= g->tek[k] | g->tik[k];
	return !any;
}

static uint32_t guest_state(struct vm *v)
{
	struct sevm_abi_sev_guest_status st = { 0 };

	OK(sev_cmd(v->fd, SEVM_ABI_SEV_GUEST_STATUS, &st, 0));
	return st.state;
}

/* The installed host's own certificates. */
static void own_certs(struct certs *c)
{
	OK(certs_get(tu_sim, c));
}

/* A launched SEV source, SEND_START to this host: the session and the policy. */
static void sending(struct vm *src, uint32_t policy, struct certs *c, uint8_t session[SESSION])
{
	uint32_t got = 0;

	new_vm(src, K_SEV, 0);
	OK(launch(src, policy, false));
	own_certs(c);
	OK(send_start(src, c, session, &got));
	ck_assert_uint_eq(got, policy);
}

/* ---- Transport crypto: §4.5's known answers ------------------------------- */

static void unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(sscanf(s + 2 * i, "%2hhx", &out[i]), 1);
}

START_TEST(kdf_and_session_vectors)
{
	static const uint8_t zero[48];
	uint8_t out[16], want[32], session[SESSION], tek[16], tik[16];

	ck_assert_int_eq(sim__kdf(zero, 16, "sev-master-secret", zero, 16, out, 16), 0);
	unhex("ab4d269fcc62bedb4511d56c386ce706", want, 16);
	ck_assert_mem_eq(out, want, 16);
	/* Z = 16 zero bytes (the vector's stand-in), every other input zero, policy 0 */
	ck_assert_int_eq(sim__session_build(zero, 16, zero, zero, zero, zero, 0, session), 0);
	ck_assert_mem_eq(session, zero, 16);	/* NONCE */
	unhex("2137bc7f9bb8bd7c3e55a576a15d3454b3856b8ba27afadf46dcfee9f02c02c4", want, 32);
	ck_assert_mem_eq(session + 0x10, want, 32);
	ck_assert_mem_eq(session + 0x30, zero, 16);	/* WRAP_IV */
	unhex("3176c0752738bd9d5e86689534020f528c088f16238826b000b327dee6aeed7d", want, 32);
	ck_assert_mem_eq(session + 0x40, want, 32);
	unhex("aa7855e13839dd767cd5da7c1ff5036540c9264b7a803029315e55375287b4af", want, 32);
	ck_assert_mem_eq(session + 0x60, want, 32);
	/* §4.4: the receiver's side of the same session */
	memset(tek, 0xaa, sizeof(tek));
	ck_assert_uint_eq(sim__session_open(zero, 16, session, 0, tek, tik), 0);
	ck_assert_mem_eq(tek, zero, 16);
	ck_assert_uint_eq(sim__session_open(zero, 16, session, 1, tek, tik),
			  SEVM_ABI_SEV_RET_BAD_MEASUREMENT);
	session[0x50] ^= 1;
	ck_assert_uint_eq(sim__session_open(zero, 16, session, 0, tek, tik),
			  SEVM_ABI_SEV_RET_BAD_MEASUREMENT);
	/* a longer output takes a second block with i = 2 */
	{
		uint8_t a[48], b[32];

		ck_assert_int_eq(sim__kdf(zero, 16, "sev-kek", NULL, 0, a, 48), 0);
		ck_assert_int_eq(sim__kdf(zero, 16, "sev-kek", NULL, 0, b, 32), 0);
		/* L is part of every block: the 32-byte output is not a prefix */
		ck_assert_int_ne(memcmp(a, b, 32), 0);
	}
}
END_TEST

/* §4.2 Z, computed apart from the model: x of d·Q, big-endian, 48 bytes. */
static void ecdh_x(const uint8_t d_be[48], const uint8_t *cert, uint8_t z[48])
{
	EC_GROUP *grp = EC_GROUP_new_by_curve_name(NID_secp384r1);
	BIGNUM *d = BN_bin2bn(d_be, 48, NULL), *qx = BN_lebin2bn(cert + 0x14, 48, NULL);
	BIGNUM *qy = BN_lebin2bn(cert + 0x5c, 48, NULL), *x = BN_new();
	EC_POINT *q = grp ? EC_POINT_new(grp) : NULL, *r = grp ? EC_POINT_new(grp) : NULL;

	ck_assert(grp && d && qx && qy && x && q && r);
	ck_assert_int_eq(EC_POINT_set_affine_coordinates(grp, q, qx, qy, NULL), 1);
	ck_assert_int_eq(EC_POINT_mul(grp, r, NULL, q, d, NULL), 1);
	ck_assert_int_eq(EC_POINT_get_affine_coordinates(grp, r, x, NULL, NULL), 1);
	ck_assert_int_eq(BN_bn2binpad(x, z, 48), 48);
	EC_POINT_free(r);
	EC_POINT_free(q);
	BN_free(x);
	BN_free(qy);
	BN_free(qx);
	BN_clear_free(d);
	EC_GROUP_free(grp);
}

/*
 * What a SEND_START and a SEND_UPDATE_DATA produce, checked with OpenSSL
 * directly against §4.2 and §5.1 - §5.2 (no public vector exists for the
 * packet MAC, §16).
 */
START_TEST(transport_format)
{
	uint8_t session[SESSION], z[48], tek[16], tik[16], plain[PAGE], mac[32];
	uint8_t *m = malloc(29 + PAGE);
	const struct sim_guest *g;
	struct packet p, q;
	unsigned int n = 0;
	EVP_CIPHER_CTX *ctr = EVP_CIPHER_CTX_new();
	struct certs c;
	struct vm src;
	int outl = 0;

	ck_assert(m && ctr);
	sending(&src, P_API(1, 0), &c, session);
	g = fw_guest(&src);
	/* the session opens with Z from this host's PDH key and its own PDH */
	ecdh_x(tu_sim->sh->fw.id.pdh_priv, c.pdh, z);
	ck_assert_uint_eq(sim__session_open(z, 48, session, P_API(1, 0), tek, tik), 0);
	ck_assert_mem_eq(tek, g->tek, 16);
	ck_assert_mem_eq(tik, g->tik, 16);
	/* ... and not with Z little-endian */
	for (int i = 0; i < 24; i++) {
		uint8_t t = z[i];

		z[i] = z[47 - i];
		z[47 - i] = t;
	}
	ck_assert_uint_eq(sim__session_open(z, 48, session, P_API(1, 0), tek, tik),
			  SEVM_ABI_SEV_RET_BAD_MEASUREMENT);
	OK(send_page(&src, PAGE, PAGE, &p));
	ck_assert_uint_eq(p.hdr[0] | p.hdr[1] | p.hdr[2] | p.hdr[3], 0);	/* FLAGS */
	/* MAC = HMAC-SHA256(TIK, 0x02 || FLAGS || IV || GUEST_LEN || TRANS_LEN || ciphertext) */
	m[0] = 0x02;
	memcpy(m + 1, p.hdr, 20);
	for (int i = 0; i < 4; i++)
		m[21 + i] = m[25 + i] = (uint8_t)(PAGE >> (8 * i));
	memcpy(m + 29, p.trans, PAGE);
	ck_assert_ptr_nonnull(HMAC(EVP_sha256(), g->tik, 16, m, 29 + PAGE, mac, &n));
	ck_assert_mem_eq(mac, p.hdr + 20, 32);
	/* ciphertext = AES-128-CTR(TEK, IV, the page's plaintext) */
	ck_assert_int_eq(EVP_DecryptInit_ex(ctr, EVP_aes_128_ctr(), NULL, g->tek, p.hdr + 4), 1);
	ck_assert_int_eq(EVP_DecryptUpdate(ctr, plain, &outl, p.trans, PAGE), 1);
	for (uint32_t i = 0; i < PAGE; i++)
		ck_assert_uint_eq(plain[i], pattern(PAGE + i));
	/* the same page again: a fresh IV, other ciphertext */
	OK(send_page(&src, PAGE, PAGE, &q));
	ck_assert_int_ne(memcmp(p.hdr + 4, q.hdr + 4, 16), 0);
	ck_assert_int_ne(memcmp(p.trans, q.trans, PAGE), 0);
	EVP_CIPHER_CTX_free(ctr);
	free(m);
	vm_free(&src);
}
END_TEST

/* ---- Certificates ------------------------------------------------------------ */

static struct sevm_cert_chain chain_of(const struct certs *c)
{
	return (struct sevm_cert_chain){
		.sz = sizeof(struct sevm_cert_chain),
		.pdh = c->pdh, .pdh_len = CERT, .pek = c->chain, .pek_len = CERT,
		.oca = c->chain + CERT, .oca_len = CERT, .cek = c->chain + 2 * CERT,
		.cek_len = CERT, .ask = c->amd, .ask_len = AMD_LEN / 2,
		.ark = c->amd + AMD_LEN / 2, .ark_len = AMD_LEN / 2 };
}

static void assert_cert(const uint8_t *cert, size_t len, uint32_t usage, uint8_t major,
			uint8_t minor)
{
	struct sevm_cert_info i = { .sz = sizeof(i) };

	ck_assert_msg(sevm_cert_parse(cert, len, &i) == 0, "%s", sevm_last_error());
	ck_assert_uint_eq(i.usage, usage);
	ck_assert_uint_eq(i.len, len);
	if (usage != SEVM_CERT_ARK && usage != SEVM_CERT_ASK) {
		ck_assert_uint_eq(i.api_major, major);
		ck_assert_uint_eq(i.api_minor, minor);
		ck_assert_uint_eq(i.key_bits, 384);
	}
}

START_TEST(exported_chain_verifies)
{
	struct sevsim_host_opts o = { .sz = sizeof(o), .api_major = 1, .api_minor = 49,
				      .build = 3 };
	struct sevm_cert_chain ch;
	struct certs c, c2;
	uint32_t len = 0;
	struct sevsim *other;

	tu_sim_with(&o);
	own_certs(&c);
	assert_cert(c.pdh, CERT, SEVM_CERT_PDH, 1, 49);
	assert_cert(c.chain, CERT, SEVM_CERT_PEK, 1, 49);
	assert_cert(c.chain + CERT, CERT, SEVM_CERT_OCA, 1, 49);
	assert_cert(c.chain + 2 * CERT, CERT, SEVM_CERT_CEK, 1, 49);
	assert_cert(c.amd, AMD_LEN / 2, SEVM_CERT_ASK, 0, 0);
	assert_cert(c.amd + AMD_LEN / 2, AMD_LEN / 2, SEVM_CERT_ARK, 0, 0);
	/* sevsim_amd_certs: the length query */
	ck_assert_int_eq(sevsim_amd_certs(tu_sim, NULL, &len), -ENOSPC);
	ck_assert_uint_eq(len, AMD_LEN);
	len = 100;
	ck_assert_int_eq(sevsim_amd_certs(tu_sim, c2.amd, &len), -ENOSPC);
	ck_assert_uint_eq(len, AMD_LEN);
	ch = chain_of(&c);
	ck_assert_msg(sevm_cert_chain_verify(&ch) == 0, "%s", sevm_last_error());
	/* the PEK holds both signatures: by the OCA and by the CEK */
	ck_assert_int_eq(sevm_cert_verify(c.chain, CERT, c.chain + CERT, CERT), 0);
	ck_assert_int_eq(sevm_cert_verify(c.chain, CERT, c.chain + 2 * CERT, CERT), 0);
	/* a changed body byte breaks its link */
	c.chain[0x200] ^= 1;
	ck_assert_int_eq(sevm_cert_chain_verify(&ch), -EKEYREJECTED);
	c.chain[0x200] ^= 1;
	/* another host: other keys under the same root */
	ck_assert_int_eq(sevsim_host_create(NULL, &other), 0);
	ck_assert_int_eq(sevsim_install(other), 0);
	ck_assert_int_eq(certs_get(other, &c2), 0);
	ck_assert_int_eq(sevsim_install(tu_sim), 0);
	sevsim_free(other);
	ch = chain_of(&c2);
	ck_assert_msg(sevm_cert_chain_verify(&ch) == 0, "%s", sevm_last_error());
	ck_assert_int_ne(memcmp(c.pdh, c2.pdh, CERT), 0);
	ck_assert_int_ne(memcmp(c.chain + CERT, c2.chain + CERT, CERT), 0);
	ck_assert_int_eq(memcmp(c.amd + AMD_LEN / 2, c2.amd + AMD_LEN / 2, 0x240), 0);
	/* host 1's PEK under host 2's OCA does not verify */
	ck_assert_int_eq(sevm_cert_verify(c.chain, CERT, c2.chain + CERT, CERT), -EKEYREJECTED);
}
END_TEST

START_TEST(pdh_cert_export_rules)
{
	struct sevm_abi_sev_user_data_pdh_cert_export p = { 0 };
	uint8_t pdh[CERT], chain[CHAIN], first[CERT];
	int ro = sevm_open("/dev/sev", O_RDONLY);
	struct vm g;

	ck_assert_int_ge(ro, 0);
	/* the length query: a zeroed struct, INVALID_LEN, both lengths back */
	FW_FAILS(sev_issue(ro, SEVM_ABI_SEV_DEV_PDH_CERT_EXPORT, &p),
		 SEVM_ABI_SEV_RET_INVALID_LEN);
	ck_assert_uint_eq(p.pdh_cert_len, CERT);
	ck_assert_uint_eq(p.cert_chain_len, CHAIN);
	/* a read-only fd exports from an INIT platform: nothing to initialise */
	p.pdh_cert_address = (uintptr_t)pdh;
	p.cert_chain_address = (uintptr_t)chain;
	OK(sev_issue(ro, SEVM_ABI_SEV_DEV_PDH_CERT_EXPORT, &p));
	ck_assert_uint_eq(fw, 0);
	ck_assert_uint_eq(p.pdh_cert_len, CERT);
	ck_assert_uint_eq(p.cert_chain_len, CHAIN);
	memcpy(first, pdh, CERT);
	/* and from a WORKING one (the driver's state is INIT all the same) */
	new_vm(&g, K_SEV, 0);
	OK(launch(&g, 0, false));
	memset(pdh, 0, sizeof(pdh));
	OK(sev_issue(ro, SEVM_ABI_SEV_DEV_PDH_CERT_EXPORT, &p));
	ck_assert_mem_eq(pdh, first, CERT);
	/* a short chain buffer: INVALID_LEN, both lengths back, no blob copied */
	memset(pdh, 0x5a, sizeof(pdh));
	p.cert_chain_len = CHAIN - 1;
	FW_FAILS(sev_issue(ro, SEVM_ABI_SEV_DEV_PDH_CERT_EXPORT, &p),
		 SEVM_ABI_SEV_RET_INVALID_LEN);
	ck_assert_uint_eq(p.pdh_cert_len, CERT);
	ck_assert_uint_eq(p.cert_chain_len, CHAIN);
	ck_assert_uint_eq(pdh[0], 0x5a);
	/* lengths above the blob cap: -EFAULT, before the firmware */
	p.pdh_cert_len = 0x4001;
	ck_assert_int_eq(sev_issue(ro, SEVM_ABI_SEV_DEV_PDH_CERT_EXPORT, &p), -EFAULT);
	/* longer buffers are fine; the lengths come back exact */
	{
		uint8_t big_pdh[CERT + 16], big_chain[CHAIN + 16];

		p = (struct sevm_abi_sev_user_data_pdh_cert_export){
			.pdh_cert_address = (uintptr_t)big_pdh, .pdh_cert_len = sizeof(big_pdh),
			.cert_chain_address = (uintptr_t)big_chain,
			.cert_chain_len = sizeof(big_chain) };
		OK(sev_issue(ro, SEVM_ABI_SEV_DEV_PDH_CERT_EXPORT, &p));
		ck_assert_uint_eq(p.pdh_cert_len, CERT);
		ck_assert_uint_eq(p.cert_chain_len, CHAIN);
		ck_assert_mem_eq(big_pdh, first, CERT);
	}
	vm_free(&g);
	sevm_close(ro);
}
END_TEST

/* ---- Length queries ------------------------------------------------------- */

START_TEST(length_queries)
{
	struct sevm_abi_sev_send_start ss = { 0 };
	struct sevm_abi_sev_send_update_data su = { 0 };
	struct vm g;

	new_vm(&g, K_SEV, 0);
	/* §8.1: SESSION_LEN comes before the guest's state: a launching guest answers it */
	OK(sev_cmd(g.fd, SEVM_ABI_SEV_LAUNCH_START, &(struct sevm_abi_sev_launch_start){ 0 },
		   g.sev));
	FW_FAILS(sev_cmd(g.fd, SEVM_ABI_SEV_SEND_START, &ss, 0), SEVM_ABI_SEV_RET_INVALID_LEN);
	ck_assert_uint_eq(ss.session_len, SESSION);
	ck_assert_uint_eq(ss.policy, 0);
	/* §5.3: HDR_LEN comes before the handle and the state */
	FW_FAILS(sev_cmd(g.fd, SEVM_ABI_SEV_SEND_UPDATE_DATA, &su, 0),
		 SEVM_ABI_SEV_RET_INVALID_LEN);
	ck_assert_uint_eq(su.hdr_len, HDR);
	ck_assert_uint_eq(su.trans_len, 0);
	/* trans_len alone also asks */
	su = (struct sevm_abi_sev_send_update_data){ .hdr_len = 100 };
	FW_FAILS(sev_cmd(g.fd, SEVM_ABI_SEV_SEND_UPDATE_DATA, &su, 0),
		 SEVM_ABI_SEV_RET_INVALID_LEN);
	ck_assert_uint_eq(su.hdr_len, HDR);
	vm_free(&g);
	/* a running guest with policy 0x30001 (NODBG, API 3.0): the query's policy is 0 */
	new_vm(&g, K_SEV, 0);
	OK(launch(&g, P_NODBG | P_API(3, 0), false));
	ss = (struct sevm_abi_sev_send_start){ .policy = 77 };
	FW_FAILS(sev_cmd(g.fd, SEVM_ABI_SEV_SEND_START, &ss, 0), SEVM_ABI_SEV_RET_INVALID_LEN);
	ck_assert_uint_eq(ss.session_len, SESSION);
	ck_assert_uint_eq(ss.policy, 0);
	/* KVM's own rules for the full command */
	ss = (struct sevm_abi_sev_send_start){ .session_len = SESSION };
	ck_assert_int_eq(sev_cmd(g.fd, SEVM_ABI_SEV_SEND_START, &ss, 0), -EINVAL);
	ck_assert_uint_eq(guest_state(&g), SEVSIM_GSTATE_RUNNING);
	vm_free(&g);
}
END_TEST

/* ---- Migrations ------------------------------------------------------------- */

START_TEST(sev_migration)
{
	struct packet p[NPAGES];
	uint8_t session[SESSION];
	struct certs c;
	struct vm src, dst;
	uint32_t policy = P_API(1, 0);

	sending(&src, policy, &c, session);
	ck_assert_uint_eq(guest_state(&src), SEVSIM_GSTATE_SUPDATE);
	OK(send_all(&src, p));
	/* a sub-page packet, at an offset */
	{
		struct packet part;

		OK(send_page(&src, PAGE + 48, 160, &part));
		ck_assert_uint_eq(part.len, 160);
	}
	OK(sev_cmd(src.fd, SEVM_ABI_SEV_SEND_FINISH, NULL, 0));
	ck_assert_uint_eq(guest_state(&src), SEVSIM_GSTATE_SENT);
	/* the destination: this host's PDH is the sender's too */
	new_vm(&dst, K_SEV, 0);
	memset(dst.mem, 0, MEM_LEN);
	OK(receive_start(&dst, c.pdh, session, policy));
	ck_assert_uint_eq(guest_state(&dst), SEVSIM_GSTATE_RUPDATE);
	ck_assert_uint_ne(info(dst.fd).handle, info(src.fd).handle);
	/* ACTIVATE bound the destination's own ASID (§4.16 step 6) */
	ck_assert_uint_ne(info(dst.fd).asid, 0);
	ck_assert_uint_ne(info(dst.fd).asid, info(src.fd).asid);
	ck_assert_int_eq(info(dst.fd).saved_sev_fd, dst.sev);
	OK(receive_all(&dst, p, NPAGES));
	ck_assert(!channel_keys_zero(&dst));
	OK(sev_cmd(dst.fd, SEVM_ABI_SEV_RECEIVE_FINISH, NULL, 0));
	ck_assert_uint_eq(guest_state(&dst), SEVSIM_GSTATE_RUNNING);
	ck_assert(channel_keys_zero(&dst));
	OK(check_all_plain(&dst));
	/* the VMM sees ciphertext, under another key than the source's */
	ck_assert_int_ne(memcmp(dst.mem, src.mem, PAGE), 0);
	assert_ciphertext(&dst);
	vm_free(&dst);
	vm_free(&src);
}
END_TEST

static void set_vcpu_state(int vcpu, unsigned int i)
{
	struct kvm_regs regs = { .rax = 0x1111 * (i + 1), .rip = 0x7c00 + i, .rflags = 2 };
	struct kvm_sregs sregs;

	OK(sevm_ioctl(vcpu, KVM_GET_SREGS, &sregs));
	sregs.cr0 = 0x60000011 + i;
	sregs.cs.base = 0xf0000 + 16 * i;
	OK(sevm_ioctl(vcpu, KVM_SET_REGS, &regs));
	OK(sevm_ioctl(vcpu, KVM_SET_SREGS, &sregs));
}

START_TEST(sev_es_migration)
{
	struct packet p[NPAGES + NR_VCPUS], extra;
	uint8_t session[SESSION];
	struct kvm_regs want_regs[NR_VCPUS], regs;
	struct kvm_sregs want_sregs[NR_VCPUS], sregs;
	uint32_t policy = P_ES;
	struct vm src, dst, dst2;
	struct certs c;
	int late;

	new_vm(&src, K_ES, NR_VCPUS);
	for (unsigned int i = 0; i < NR_VCPUS; i++) {
		set_vcpu_state(src.vcpu[i], i);
		OK(sevm_ioctl(src.vcpu[i], KVM_GET_REGS, &want_regs[i]));
		OK(sevm_ioctl(src.vcpu[i], KVM_GET_SREGS, &want_sregs[i]));
	}
	OK(launch(&src, policy, true));
	ck_assert_uint_eq(info(src.fd).nr_vmsas, NR_VCPUS);
	own_certs(&c);
	OK(send_start(&src, &c, session, NULL));
	OK(send_all(&src, p));
	for (unsigned int i = 0; i < NR_VCPUS; i++)
		OK(send_vmsa(&src, i, &p[NPAGES + i]));
	/* KVM's rules for the extension: the vCPU id, the page-sized transport */
	ck_assert_int_eq(send_vmsa(&src, 9, &extra), -EINVAL);
	{
		struct sevm_abi_sev_update_vmsa a = {
			.vcpu_id = 0, .hdr_uaddr = (uintptr_t)extra.hdr, .hdr_len = HDR,
			.trans_uaddr = (uintptr_t)extra.trans, .trans_len = 100 };

		ck_assert_int_eq(sev_cmd(src.fd, SEVM_ABI_SEV_SEND_UPDATE_VMSA, &a, 0), -EINVAL);
	}
	/* §5.3 step 9: a vCPU whose VMSA the firmware never encrypted */
	late = sevm_ioctl(src.fd, KVM_CREATE_VCPU, (void *)7l);
	ck_assert_int_ge(late, 0);
	FW_FAILS(send_vmsa(&src, 7, &extra), SEVM_ABI_SEV_RET_INVALID_PARAM);
	sevm_close(late);
	OK(sev_cmd(src.fd, SEVM_ABI_SEV_SEND_FINISH, NULL, 0));
	/* a legacy SEV-ES destination: its register getters show what arrived */
	new_vm(&dst, K_ES_LEGACY, NR_VCPUS);
	OK(receive_start(&dst, c.pdh, session, policy));
	OK(receive_all(&dst, p, NPAGES + NR_VCPUS));
	ck_assert_uint_eq(info(dst.fd).nr_vmsas, NR_VCPUS);
	/* as LAUNCH_UPDATE_VMSA: a VMSA already there is -EINVAL */
	ck_assert_int_eq(receive(&dst, &p[NPAGES]), -EINVAL);
	OK(sev_cmd(dst.fd, SEVM_ABI_SEV_RECEIVE_FINISH, NULL, 0));
	OK(check_all_plain(&dst));
	for (unsigned int i = 0; i < NR_VCPUS; i++) {
		OK(sevm_ioctl(dst.vcpu[i], KVM_GET_REGS, &regs));
		OK(sevm_ioctl(dst.vcpu[i], KVM_GET_SREGS, &sregs));
		ck_assert_mem_eq(&regs, &want_regs[i], sizeof(regs));
		ck_assert_mem_eq(&sregs, &want_sregs[i], sizeof(sregs));
	}
	/* an SEV-ES-type destination: the same packets, and its state is protected */
	new_vm(&dst2, K_ES, NR_VCPUS);
	OK(receive_start(&dst2, c.pdh, session, policy));
	OK(receive_all(&dst2, p, NPAGES + NR_VCPUS));
	ck_assert_uint_eq(info(dst2.fd).nr_vmsas, NR_VCPUS);
	ck_assert_int_eq(sevm_ioctl(dst2.vcpu[1], KVM_GET_REGS, &regs), -EINVAL);
	vm_free(&dst2);
	vm_free(&dst);
	vm_free(&src);
}
END_TEST

/* The plain SEV guest's side of VMSA packets, in both directions. */
START_TEST(vmsa_on_sev_guest)
{
	struct packet p, vm_pkt;
	uint8_t session[SESSION];
	struct certs c;
	struct vm src, dst;

	new_vm(&src, K_SEV, 1);
	OK(launch(&src, 0, false));
	own_certs(&c);
	OK(send_start(&src, &c, session, NULL));
	/* §5.3 step 5 */
	FW_FAILS(send_vmsa(&src, 0, &vm_pkt), SEVM_ABI_SEV_RET_UNSUPPORTED);
	OK(send_page(&src, 0, PAGE, &p));
	new_vm(&dst, K_SEV, 1);
	OK(receive_start(&dst, c.pdh, session, 0));
	/* §5.4 step 4: before the MAC is looked at */
	memcpy(&vm_pkt, &p, sizeof(p));
	vm_pkt.vcpu = 0;
	FW_FAILS(receive(&dst, &vm_pkt), SEVM_ABI_SEV_RET_UNSUPPORTED);
	OK(receive(&dst, &p));
	OK(check_plain(&dst, 0, PAGE));
	vm_free(&dst);
	vm_free(&src);
}
END_TEST

/* ---- Two hosts, two processes ------------------------------------------------ */

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n <= 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* What the source sends the destination: QEMU's stream, in spirit (§15). */
struct stream {
	uint32_t policy;
	uint8_t pdh[CERT];	/* the sender's own PDH */
	uint8_t session[SESSION];
	struct packet p[NPAGES];
};

/*
 * The destination process: its own host, whose certificates it hands to the
 * source; then it receives the guest and checks every page.  Exit status 0,
 * or the step that failed.
 */
static int remote_child(int sock)
{
	struct sevsim *host;
	struct stream *s = malloc(sizeof(*s));
	struct certs c;
	struct vm dst;
	int r;

	if (!s || sevsim_host_create(NULL, &host) || sevsim_install(host))
		return 2;
	if (certs_get(host, &c) || write_all(sock, &c, sizeof(c)))
		return 3;
	if (read_all(sock, s, sizeof(*s)))
		return 4;
	r = vm_new(&dst, K_SEV, 0);
	if (!r)
		r = receive_start(&dst, s->pdh, s->session, s->policy);
	if (!r)
		r = receive_all(&dst, s->p, NPAGES);
	if (!r)
		r = sev_cmd(dst.fd, SEVM_ABI_SEV_RECEIVE_FINISH, NULL, 0);
	if (!r)
		r = check_all_plain(&dst);
	if (write_all(sock, &r, sizeof(r)))
		return 5;
	vm_free(&dst);
	sevsim_free(host);
	free(s);
	return r ? 6 : 0;
}

START_TEST(two_hosts_two_processes)
{
	struct stream *s = malloc(sizeof(*s));
	struct certs theirs, mine;
	struct sevm_cert_chain ch;
	struct vm src;
	int sv[2], st, child_r = -1;
	pid_t pid;

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (!pid) {
		close(sv[0]);
		_exit(remote_child(sv[1]));
	}
	close(sv[1]);
	ck_assert_int_eq(read_all(sv[0], &theirs, sizeof(theirs)), 0);
	own_certs(&mine);
	ck_assert_int_ne(memcmp(theirs.pdh, mine.pdh, CERT), 0);
	ch = chain_of(&theirs);
	ck_assert_msg(sevm_cert_chain_verify(&ch) == 0, "%s", sevm_last_error());
	/* policy SEV: this host's firmware checks the other's chain up to its own root */
	s->policy = P_SEV | P_API(1, 55);
	new_vm(&src, K_SEV, 0);
	OK(launch(&src, s->policy, false));
	OK(send_start(&src, &theirs, s->session, NULL));
	OK(send_all(&src, s->p));
	OK(sev_cmd(src.fd, SEVM_ABI_SEV_SEND_FINISH, NULL, 0));
	memcpy(s->pdh, mine.pdh, CERT);
	ck_assert_int_eq(write_all(sv[0], s, sizeof(*s)), 0);
	ck_assert_int_eq(read_all(sv[0], &child_r, sizeof(child_r)), 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(child_r == 0, "destination: %d (firmware 0x%x)", child_r, fw);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
	close(sv[0]);
	vm_free(&src);
	free(s);
}
END_TEST

/* ---- Packets: integrity, replay, lengths ----------------------------------- */

START_TEST(tampered_packets)
{
	static const struct { size_t off; bool trans; const char *what; } flips[] = {
		{ 4, false, "IV" }, { 19, false, "IV's last byte" }, { 20, false, "MAC" },
		{ 51, false, "MAC's last byte" }, { 0, true, "transport" },
		{ PAGE - 1, true, "transport's last byte" },
	};
	struct packet p[NPAGES], bad;
	uint8_t session[SESSION], before[PAGE];
	struct certs c;
	struct vm src, dst;

	sending(&src, 0, &c, session);
	OK(send_all(&src, p));
	new_vm(&dst, K_SEV, 0);
	OK(receive_start(&dst, c.pdh, session, 0));
	memcpy(before, dst.mem + PAGE, PAGE);
	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		bad = p[1];
		if (flips[i].trans)
			bad.trans[flips[i].off] ^= 0x10;
		else
			bad.hdr[flips[i].off] ^= 0x10;
		FW_FAILS(receive(&dst, &bad), SEVM_ABI_SEV_RET_BAD_MEASUREMENT);
		ck_assert_msg(memcmp(dst.mem + PAGE, before, PAGE) == 0, "%s: page written",
			      flips[i].what);
	}
	/* FLAGS.COMPRESSED: UNSUPPORTED before the MAC (§5.4 step 8) */
	bad = p[1];
	bad.hdr[0] = 1;
	FW_FAILS(receive(&dst, &bad), SEVM_ABI_SEV_RET_UNSUPPORTED);
	/* §5.4 step 6: lengths, and nothing written back */
	{
		struct sevm_abi_sev_receive_update_data d = {
			.hdr_uaddr = (uintptr_t)p[1].hdr, .hdr_len = HDR - 1,
			.guest_uaddr = (uintptr_t)dst.mem + PAGE, .guest_len = PAGE,
			.trans_uaddr = (uintptr_t)p[1].trans, .trans_len = PAGE };

		FW_FAILS(sev_cmd(dst.fd, SEVM_ABI_SEV_RECEIVE_UPDATE_DATA, &d, 0),
			 SEVM_ABI_SEV_RET_INVALID_LEN);
		ck_assert_uint_eq(d.hdr_len, HDR - 1);
		d.hdr_len = HDR;
		d.guest_len = PAGE - 16;
		FW_FAILS(sev_cmd(dst.fd, SEVM_ABI_SEV_RECEIVE_UPDATE_DATA, &d, 0),
			 SEVM_ABI_SEV_RET_INVALID_LEN);
		/* KVM's single-page rule, then the firmware's alignment (§5.4 step 7) */
		d.guest_len = PAGE;
		d.guest_uaddr += 8;
		ck_assert_int_eq(sev_cmd(dst.fd, SEVM_ABI_SEV_RECEIVE_UPDATE_DATA, &d, 0), -EINVAL);
		d.guest_len = d.trans_len = PAGE - 16;
		FW_FAILS(sev_cmd(dst.fd, SEVM_ABI_SEV_RECEIVE_UPDATE_DATA, &d, 0),
			 SEVM_ABI_SEV_RET_INVALID_ADDRESS);
	}
	ck_assert_int_eq(memcmp(dst.mem + PAGE, before, PAGE), 0);
	/* a packet is bound to its length: the same bytes as a shorter one fail */
	bad = p[1];
	bad.len = PAGE / 2;
	FW_FAILS(receive(&dst, &bad), SEVM_ABI_SEV_RET_BAD_MEASUREMENT);
	/* out of order, and again: no sequence number (§6) */
	OK(receive(&dst, &p[3]));
	OK(receive(&dst, &p[1]));
	OK(receive(&dst, &p[1]));
	OK(receive(&dst, &p[0]));
	OK(receive(&dst, &p[2]));
	ck_assert_int_ne(memcmp(dst.mem + PAGE, before, PAGE), 0);
	OK(check_all_plain(&dst));
	/* nothing binds a packet to its address: page 0's contents land at page 2 */
	bad = p[0];
	bad.off = 2 * PAGE;
	OK(receive(&dst, &bad));
	ck_assert_int_eq(check_plain(&dst, 2 * PAGE, PAGE), -EILSEQ);
	vm_free(&dst);
	vm_free(&src);
}
END_TEST

/* ---- Policy ---------------------------------------------------------------------- */

START_TEST(nosend_policy)
{
	struct sevm_abi_sev_send_start ss;
	uint8_t session[SESSION];
	struct certs c;
	struct vm g;

	new_vm(&g, K_SEV, 0);
	OK(launch(&g, P_NOSEND, false));
	own_certs(&c);
	ss = (struct sevm_abi_sev_send_start){
		.pdh_cert_uaddr = (uintptr_t)c.pdh, .pdh_cert_len = CERT,
		.plat_certs_uaddr = (uintptr_t)c.chain, .plat_certs_len = CHAIN,
		.amd_certs_uaddr = (uintptr_t)c.amd, .amd_certs_len = AMD_LEN,
		.session_uaddr = (uintptr_t)session, .session_len = SESSION, .policy = 99 };
	memset(session, 0x77, sizeof(session));
	FW_FAILS(sev_cmd(g.fd, SEVM_ABI_SEV_SEND_START, &ss, 0), SEVM_ABI_SEV_RET_POLICY_FAILURE);
	/* the struct comes back: the firmware's (untouched) buffer, policy 0 */
	ck_assert_uint_eq(ss.policy, 0);
	ck_assert_uint_eq(ss.session_len, SESSION);
	ck_assert_uint_eq(session[0], 0x77);
	ck_assert_uint_eq(guest_state(&g), SEVSIM_GSTATE_RUNNING);
	vm_free(&g);
}
END_TEST

START_TEST(sev_policy_checks_receiver)
{
	uint8_t session[SESSION];
	struct certs c, bad;
	struct vm g;

	own_certs(&c);
	/* the receiver's PEK says API 1.55 (the default firmware): 1.56 is too new */
	new_vm(&g, K_SEV, 0);
	OK(launch(&g, P_SEV | P_API(1, 56), false));
	FW_FAILS(send_start(&g, &c, session, NULL), SEVM_ABI_SEV_RET_POLICY_FAILURE);
	vm_free(&g);
	new_vm(&g, K_SEV, 0);
	OK(launch(&g, P_SEV | P_API(1, 55), false));
	/* a broken link anywhere: the PDH's body, the CEK's ASK signature, the ARK */
	bad = c;
	bad.pdh[0x30] ^= 1;
	FW_FAILS(send_start(&g, &bad, session, NULL), SEVM_ABI_SEV_RET_BAD_SIGNATURE);
	bad = c;
	bad.chain[2 * CERT + 0x41c] ^= 1;
	FW_FAILS(send_start(&g, &bad, session, NULL), SEVM_ABI_SEV_RET_BAD_SIGNATURE);
	bad = c;
	bad.amd[AMD_LEN / 2 + 0x40] ^= 2;	/* the ARK's exponent */
	FW_FAILS(send_start(&g, &bad, session, NULL), SEVM_ABI_SEV_RET_BAD_SIGNATURE);
	/* a well-made ARK under the root's KEY_ID but of another key: not the fused root */
	{
		EVP_PKEY *k = EVP_RSA_gen(2048);

		ck_assert_ptr_nonnull(k);
		bad = c;
		ck_assert_int_eq(sim__amd_cert_make(bad.amd + AMD_LEN / 2, sim__ark_key_id,
						    sim__ark_key_id, SEVM_CERT_ARK, k, k), 0);
		EVP_PKEY_free(k);
		FW_FAILS(send_start(&g, &bad, session, NULL),
			 SEVM_ABI_SEV_RET_INVALID_CERTIFICATE);
	}
	/* a PDH signed by another usage's key: no matching slot */
	bad = c;
	bad.pdh[0x414] = 0x01;	/* SIG1 says OCA */
	FW_FAILS(send_start(&g, &bad, session, NULL), SEVM_ABI_SEV_RET_INVALID_CERTIFICATE);
	/* §2.3: amd_certs of a length no chain has */
	{
		struct sevm_abi_sev_send_start ss = {
			.pdh_cert_uaddr = (uintptr_t)c.pdh, .pdh_cert_len = CERT,
			.plat_certs_uaddr = (uintptr_t)c.chain, .plat_certs_len = CHAIN,
			.amd_certs_uaddr = (uintptr_t)c.amd, .amd_certs_len = AMD_LEN - 1,
			.session_uaddr = (uintptr_t)session, .session_len = SESSION };

		FW_FAILS(sev_cmd(g.fd, SEVM_ABI_SEV_SEND_START, &ss, 0),
			 SEVM_ABI_SEV_RET_INVALID_LEN);
	}
	ck_assert_uint_eq(guest_state(&g), SEVSIM_GSTATE_RUNNING);
	OK(send_start(&g, &c, session, NULL));
	ck_assert_uint_eq(guest_state(&g), SEVSIM_GSTATE_SUPDATE);
	vm_free(&g);
	/* without SEV or DOMAIN only the PDH's sanity counts: a bad PEK passes */
	new_vm(&g, K_SEV, 0);
	OK(launch(&g, 0, false));
	bad = c;
	bad.chain[0x30] ^= 1;
	OK(send_start(&g, &bad, session, NULL));
	vm_free(&g);
	/* ... but not a PDH that is no PDH (§8.1 step 9) */
	new_vm(&g, K_SEV, 0);
	OK(launch(&g, 0, false));
	FW_FAILS(send_start(&g, &(struct certs){ 0 }, session, NULL),
		 SEVM_ABI_SEV_RET_INVALID_CERTIFICATE);
	memcpy(bad.pdh, c.chain, CERT);		/* the PEK where the PDH goes */
	FW_FAILS(send_start(&g, &bad, session, NULL), SEVM_ABI_SEV_RET_INVALID_CERTIFICATE);
	bad = c;
	bad.pdh[0x14] ^= 1;			/* QX: no longer on the curve */
	FW_FAILS(send_start(&g, &bad, session, NULL), SEVM_ABI_SEV_RET_INVALID_CERTIFICATE);
	vm_free(&g);
}
END_TEST

/* Export a certificates set from a new host made with o; the fixture host is back after. */
static void other_host_certs(const struct sevsim_host_opts *o, struct certs *c)
{
	struct sevsim *h;

	ck_assert_int_eq(sevsim_host_create(o, &h), 0);
	ck_assert_int_eq(sevsim_install(h), 0);
	ck_assert_int_eq(certs_get(h, c), 0);
	ck_assert_int_eq(sevsim_install(tu_sim), 0);
	sevsim_free(h);
}

START_TEST(domain_policy)
{
	struct sevsim_host_opts same = { .sz = sizeof(same), .domain_of = tu_sim };
	uint8_t session[SESSION];
	struct certs mine, friend, stranger;
	struct vm g;

	own_certs(&mine);
	other_host_certs(&same, &friend);
	other_host_certs(NULL, &stranger);
	/* one owner: the very OCA certificate, other PEK and PDH */
	ck_assert_int_eq(memcmp(friend.chain + CERT, mine.chain + CERT, CERT), 0);
	ck_assert_int_ne(memcmp(friend.pdh, mine.pdh, CERT), 0);
	ck_assert_int_ne(memcmp(stranger.chain + CERT, mine.chain + CERT, CERT), 0);
	new_vm(&g, K_SEV, 0);
	OK(launch(&g, P_DOMAIN, false));
	FW_FAILS(send_start(&g, &stranger, session, NULL), SEVM_ABI_SEV_RET_POLICY_FAILURE);
	/* the stranger's PEK under the owner's OCA: the signature fails first */
	memcpy(stranger.chain + CERT, mine.chain + CERT, CERT);
	FW_FAILS(send_start(&g, &stranger, session, NULL), SEVM_ABI_SEV_RET_BAD_SIGNATURE);
	OK(send_start(&g, &friend, session, NULL));
	ck_assert_uint_eq(guest_state(&g), SEVSIM_GSTATE_SUPDATE);
	vm_free(&g);
	/* DOMAIN and SEV together: both chains */
	new_vm(&g, K_SEV, 0);
	OK(launch(&g, P_DOMAIN | P_SEV, false));
	OK(send_start(&g, &friend, session, NULL));
	vm_free(&g);
}
END_TEST

START_TEST(tampered_session)
{
	static const size_t flips[] = { 0x00, 0x10, 0x2f, 0x30, 0x40, 0x5f, 0x60, 0x7f };
	struct sevm_abi_sev_receive_start rs;
	uint8_t session[SESSION], bad[SESSION];
	struct certs c, other;
	struct vm src, dst;

	sending(&src, P_API(1, 0), &c, session);
	new_vm(&dst, K_SEV, 0);
	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		memcpy(bad, session, SESSION);
		bad[flips[i]] ^= 0x80;
		FW_FAILS(receive_start(&dst, c.pdh, bad, P_API(1, 0)),
			 SEVM_ABI_SEV_RET_BAD_MEASUREMENT);
	}
	/* the policy is what POLICY_MAC binds */
	FW_FAILS(receive_start(&dst, c.pdh, session, P_API(1, 1)),
		 SEVM_ABI_SEV_RET_BAD_MEASUREMENT);
	/* another PDH: another Z, so WRAP_MAC fails */
	other_host_certs(NULL, &other);
	FW_FAILS(receive_start(&dst, other.pdh, session, P_API(1, 0)),
		 SEVM_ABI_SEV_RET_BAD_MEASUREMENT);
	/* §8.2 steps 2 and 3: no length goes back */
	rs = (struct sevm_abi_sev_receive_start){
		.policy = P_API(1, 0), .pdh_uaddr = (uintptr_t)c.pdh, .pdh_len = CERT,
		.session_uaddr = (uintptr_t)session, .session_len = SESSION - 1 };
	FW_FAILS(sev_cmd(dst.fd, SEVM_ABI_SEV_RECEIVE_START, &rs, dst.sev),
		 SEVM_ABI_SEV_RET_INVALID_LEN);
	ck_assert_uint_eq(rs.session_len, SESSION - 1);
	ck_assert_uint_eq(rs.handle, 0);
	ck_assert_uint_eq(info(dst.fd).handle, 0);
	rs.session_len = SESSION;
	OK(sev_cmd(dst.fd, SEVM_ABI_SEV_RECEIVE_START, &rs, dst.sev));
	ck_assert_uint_ne(rs.handle, 0);
	ck_assert_uint_eq(rs.handle, info(dst.fd).handle);
	vm_free(&dst);
	vm_free(&src);
}
END_TEST

START_TEST(receiver_policy_rules)
{
	uint8_t session[SESSION];
	struct certs c;
	struct vm src, dst;

	/* a policy asking for API 1.60: LAUNCH_START without a DH certificate takes it */
	sending(&src, P_API(1, 60), &c, session);
	new_vm(&dst, K_SEV, 0);
	FW_FAILS(receive_start(&dst, c.pdh, session, P_API(1, 60)),
		 SEVM_ABI_SEV_RET_POLICY_FAILURE);
	vm_free(&dst);
	vm_free(&src);
	/* an SEV-ES policy onto an SEV VM: the firmware takes it, ACTIVATE does not */
	new_vm(&src, K_ES, 1);
	OK(launch(&src, P_ES, true));
	OK(send_start(&src, &c, session, NULL));
	new_vm(&dst, K_SEV, 0);
	FW_FAILS(receive_start(&dst, c.pdh, session, P_ES), SEVM_ABI_SEV_RET_INVALID_ASID);
	ck_assert_uint_eq(info(dst.fd).handle, 0);
	vm_free(&dst);
	vm_free(&src);
}
END_TEST

/*
 * §8.2 step 8: an SEV-ES policy needs the platform's SEV-ES.  The sender
 * (this host) sends to a host without it (kvm_amd.sev_es=0), whose firmware
 * opens the session and then refuses.
 */
START_TEST(receive_es_without_platform_es)
{
	struct sevsim_host_opts o = { .sz = sizeof(o), .no_sev_es = true };
	uint8_t session[SESSION];
	struct sevsim *no_es;
	struct certs mine, theirs;
	struct vm src, dst;

	own_certs(&mine);
	ck_assert_int_eq(sevsim_host_create(&o, &no_es), 0);
	ck_assert_int_eq(sevsim_install(no_es), 0);
	ck_assert_int_eq(certs_get(no_es, &theirs), 0);
	ck_assert_int_eq(sevsim_install(tu_sim), 0);
	new_vm(&src, K_ES, 1);
	OK(launch(&src, P_ES, true));
	OK(send_start(&src, &theirs, session, NULL));
	ck_assert_int_eq(sevsim_install(no_es), 0);
	new_vm(&dst, K_SEV, 0);
	FW_FAILS(receive_start(&dst, mine.pdh, session, P_ES), SEVM_ABI_SEV_RET_UNSUPPORTED);
	/* the same session under another policy fails its MAC first */
	FW_FAILS(receive_start(&dst, mine.pdh, session, 0), SEVM_ABI_SEV_RET_BAD_MEASUREMENT);
	vm_free(&dst);
	ck_assert_int_eq(sevsim_install(tu_sim), 0);
	sevsim_free(no_es);
	vm_free(&src);
}
END_TEST

/* ---- States --------------------------------------------------------------------- */

START_TEST(send_before_start)
{
	struct packet p;
	struct vm g;

	new_vm(&g, K_SEV, 0);
	OK(launch(&g, 0, false));
	FW_FAILS(send_page(&g, 0, PAGE, &p), SEVM_ABI_SEV_RET_INVALID_GUEST_STATE);
	FW_FAILS(sev_cmd(g.fd, SEVM_ABI_SEV_SEND_FINISH, NULL, 0),
		 SEVM_ABI_SEV_RET_INVALID_GUEST_STATE);
	FW_FAILS(sev_cmd(g.fd, SEVM_ABI_SEV_SEND_CANCEL, NULL, 0),
		 SEVM_ABI_SEV_RET_INVALID_GUEST_STATE);
	FW_FAILS(sev_cmd(g.fd, SEVM_ABI_SEV_RECEIVE_FINISH, NULL, 0),
		 SEVM_ABI_SEV_RET_INVALID_GUEST_STATE);
	memset(&p, 0, sizeof(p));
	p.len = PAGE;
	p.vcpu = -1;
	FW_FAILS(receive(&g, &p), SEVM_ABI_SEV_RET_INVALID_GUEST_STATE);
	ck_assert_uint_eq(guest_state(&g), SEVSIM_GSTATE_RUNNING);
	vm_free(&g);
}
END_TEST

START_TEST(cancel_and_send_again)
{
	struct packet first, second;
	uint8_t s1[SESSION], s2[SESSION];
	struct certs c;
	struct vm src, dst;

	sending(&src, 0, &c, s1);
	OK(send_page(&src, 0, PAGE, &first));
	ck_assert(!channel_keys_zero(&src));
	OK(sev_cmd(src.fd, SEVM_ABI_SEV_SEND_CANCEL, NULL, 0));
	ck_assert_uint_eq(guest_state(&src), SEVSIM_GSTATE_RUNNING);
	ck_assert(channel_keys_zero(&src));
	/* the channel is gone with the keys */
	FW_FAILS(send_page(&src, 0, PAGE, &second), SEVM_ABI_SEV_RET_INVALID_GUEST_STATE);
	OK(send_start(&src, &c, s2, NULL));
	ck_assert_int_ne(memcmp(s1, s2, SESSION), 0);
	OK(send_page(&src, 0, PAGE, &second));
	new_vm(&dst, K_SEV, 0);
	OK(receive_start(&dst, c.pdh, s2, 0));
	/* the first session's packet does not pass under the second's keys */
	FW_FAILS(receive(&dst, &first), SEVM_ABI_SEV_RET_BAD_MEASUREMENT);
	OK(receive(&dst, &second));
	OK(check_plain(&dst, 0, PAGE));
	OK(sev_cmd(src.fd, SEVM_ABI_SEV_SEND_FINISH, NULL, 0));
	vm_free(&dst);
	vm_free(&src);
}
END_TEST

START_TEST(sent_guest)
{
	struct sevm_abi_sev_guest_status st = { 0 };
	struct sevm_abi_sev_attestation_report ar = { 0 };
	struct sevm_abi_sev_send_start ss = { 0 };
	uint8_t session[SESSION];
	struct packet p;
	struct certs c;
	struct vm g;

	sending(&g, 0, &c, session);
	OK(sev_cmd(g.fd, SEVM_ABI_SEV_SEND_FINISH, NULL, 0));
	ck_assert(channel_keys_zero(&g));
	/* §6: a SENT guest keeps its handle; GUEST_STATUS still answers */
	OK(sev_cmd(g.fd, SEVM_ABI_SEV_GUEST_STATUS, &st, 0));
	ck_assert_uint_eq(st.state, SEVSIM_GSTATE_SENT);
	ck_assert_uint_eq(st.handle, info(g.fd).handle);
	FW_FAILS(sev_cmd(g.fd, SEVM_ABI_SEV_GET_ATTESTATION_REPORT, &ar, 0),
		 SEVM_ABI_SEV_RET_INVALID_LEN);
	FW_FAILS(send_page(&g, 0, PAGE, &p), SEVM_ABI_SEV_RET_INVALID_GUEST_STATE);
	FW_FAILS(sev_cmd(g.fd, SEVM_ABI_SEV_SEND_FINISH, NULL, 0),
		 SEVM_ABI_SEV_RET_INVALID_GUEST_STATE);
	/* the session-length query still answers (before the state), SEND_START does not */
	FW_FAILS(sev_cmd(g.fd, SEVM_ABI_SEV_SEND_START, &ss, 0), SEVM_ABI_SEV_RET_INVALID_LEN);
	FW_FAILS(send_start(&g, &c, session, NULL), SEVM_ABI_SEV_RET_INVALID_GUEST_STATE);
	vm_free(&g);
}
END_TEST

START_TEST(upstream_vmsa_ids)
{
	struct sevsim_host_opts o = { .sz = sizeof(o), .upstream_vmsa_ids = true };
	struct packet p = { .vcpu = 0 };
	struct vm g;

	tu_sim_with(&o);
	new_vm(&g, K_ES, 1);
	OK(launch(&g, P_ES, true));
	/* sev_mem_enc_ioctl()'s default: -EINVAL and no write-back of error */
	ck_assert_int_eq(send_vmsa(&g, 0, &p), -EINVAL);
	ck_assert_uint_eq(fw, 0xeeeeeeee);
	ck_assert_int_eq(receive(&g, &p), -EINVAL);
	ck_assert_uint_eq(fw, 0xeeeeeeee);
	vm_free(&g);
	/* the model's default takes them: the same command reaches the firmware */
	tu_sim_with(NULL);
	new_vm(&g, K_ES, 1);
	OK(launch(&g, P_ES, true));
	FW_FAILS(send_vmsa(&g, 0, &p), SEVM_ABI_SEV_RET_INVALID_GUEST_STATE);
	vm_free(&g);
}
END_TEST

/* ---- Suite ------------------------------------------------------------------------- */

static TCase *tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, tu_sim_default, tu_sim_down);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("sevsim-remote");
	TCase *tc;

	tc = tcase(s, "crypto");
	tcase_add_test(tc, kdf_and_session_vectors);
	tcase_add_test(tc, transport_format);
	tc = tcase(s, "certs");
	tcase_add_test(tc, exported_chain_verifies);
	tcase_add_test(tc, pdh_cert_export_rules);
	tc = tcase(s, "migrate");
	tcase_add_test(tc, length_queries);
	tcase_add_test(tc, sev_migration);
	tcase_add_test(tc, sev_es_migration);
	tcase_add_test(tc, vmsa_on_sev_guest);
	tcase_add_test(tc, two_hosts_two_processes);
	tcase_add_test(tc, tampered_packets);
	tc = tcase(s, "policy");
	tcase_add_test(tc, nosend_policy);
	tcase_add_test(tc, sev_policy_checks_receiver);
	tcase_add_test(tc, domain_policy);
	tcase_add_test(tc, tampered_session);
	tcase_add_test(tc, receiver_policy_rules);
	tcase_add_test(tc, receive_es_without_platform_es);
	tc = tcase(s, "states");
	tcase_add_test(tc, send_before_start);
	tcase_add_test(tc, cancel_and_send_again);
	tcase_add_test(tc, sent_guest);
	tcase_add_test(tc, upstream_vmsa_ids);
	return tu_run(s);
}
