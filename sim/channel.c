/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SEV transport: the key derivation and the 128-byte session of
 * SEND_START / RECEIVE_START (sev-firmware.md §4), and the packets of
 * SEND_UPDATE_* / RECEIVE_UPDATE_* (§5): AES-128-CTR under the TEK, then
 * HMAC-SHA256 under the TIK over a 29-byte AAD and the ciphertext.
 *
 * Nothing in a packet numbers it (§6, §17.8): a packet of a session can be
 * received again, or out of order, and passes its MAC each time.  The model
 * is as permissive as the firmware.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

/* §4.1 session layout */
#define S_NONCE		0x00
#define S_WRAP_TK	0x10
#define S_WRAP_IV	0x30
#define S_WRAP_MAC	0x40
#define S_POLICY_MAC	0x60

/* §5.1 header layout, §5.2 AAD */
#define H_FLAGS		0x00
#define H_IV		0x04
#define H_MAC		0x14
#define AAD_LEN		29
#define AAD_CONTEXT	0x02	/* FW (Genoa): DATA and VMSA packets alike */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int sim__kdf(const uint8_t *key, size_t key_len, const char *label, const uint8_t *ctx,
	     size_t ctx_len, uint8_t *out, size_t out_len)
{
	size_t label_len = strlen(label), n = 4 + label_len + 1 + ctx_len + 4, done = 0;
	uint8_t m[64], block[32];

	if (n > sizeof(m))
		return -EINVAL;
	/* i || label || 0x00 || context || L, with i and L (in bits) little-endian */
	memcpy(m + 4, label, label_len);
	m[4 + label_len] = 0;
	if (ctx_len)
		memcpy(m + 5 + label_len, ctx, ctx_len);
	put_le32(m + n - 4, (uint32_t)(out_len * 8));
	for (uint32_t i = 1; done < out_len; i++) {
		size_t take = out_len - done < sizeof(block) ? out_len - done : sizeof(block);

		put_le32(m, i);
		if (sim__hmac(key, key_len, m, n, block))
			return -EIO;
		memcpy(out + done, block, take);
		done += take;
	}
	return 0;
}

/* §4.2: master secret from Z and the nonce, KEK and KIK from the master secret */
static int channel_keys(const uint8_t *z, size_t z_len, const uint8_t nonce[16],
			uint8_t kek[16], uint8_t kik[16])
{
	uint8_t master[16];
	int r;

	r = sim__kdf(z, z_len, "sev-master-secret", nonce, 16, master, sizeof(master));
	if (!r)
		r = sim__kdf(master, sizeof(master), "sev-kek", NULL, 0, kek, 16);
	if (!r)
		r = sim__kdf(master, sizeof(master), "sev-kik", NULL, 0, kik, 16);
	OPENSSL_cleanse(master, sizeof(master));
	return r;
}

static int policy_mac(const uint8_t tik[16], uint32_t policy, uint8_t mac[32])
{
	uint8_t p[4];

	put_le32(p, policy);
	return sim__hmac(tik, 16, p, sizeof(p), mac);
}

int sim__session_build(const uint8_t *z, size_t z_len, const uint8_t nonce[16],
		       const uint8_t wrap_iv[16], const uint8_t tek[16], const uint8_t tik[16],
		       uint32_t policy, uint8_t session[SIM_SESSION_LEN])
{
	uint8_t kek[16], kik[16], tk[32];
	int r;

	memcpy(tk, tek, 16);
	memcpy(tk + 16, tik, 16);
	memcpy(session + S_NONCE, nonce, 16);
	memcpy(session + S_WRAP_IV, wrap_iv, 16);
	r = channel_keys(z, z_len, nonce, kek, kik);
	if (!r)
		r = sim__aes_ctr(kek, wrap_iv, tk, session + S_WRAP_TK, sizeof(tk));
	if (!r)
		r = sim__hmac(kik, sizeof(kik), session + S_WRAP_TK, 32, session + S_WRAP_MAC);
	if (!r)
		r = policy_mac(tik, policy, session + S_POLICY_MAC);
	OPENSSL_cleanse(kek, sizeof(kek));
	OPENSSL_cleanse(kik, sizeof(kik));
	OPENSSL_cleanse(tk, sizeof(tk));
	return r;
}

/* §4.4, in its order: KEK and KIK, WRAP_MAC, unwrap, POLICY_MAC */
uint32_t sim__session_open(const uint8_t *z, size_t z_len,
			   const uint8_t session[SIM_SESSION_LEN], uint32_t policy,
			   uint8_t tek[16], uint8_t tik[16])
{
	uint8_t kek[16], kik[16], mac[32], tk[32];
	uint32_t st = SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;

	if (channel_keys(z, z_len, session + S_NONCE, kek, kik) ||
	    sim__hmac(kik, sizeof(kik), session + S_WRAP_TK, 32, mac))
		goto out;
	if (CRYPTO_memcmp(mac, session + S_WRAP_MAC, sizeof(mac))) {
		st = SEVM_ABI_SEV_RET_BAD_MEASUREMENT;
		goto out;
	}
	if (sim__aes_ctr(kek, session + S_WRAP_IV, session + S_WRAP_TK, tk, sizeof(tk)) ||
	    policy_mac(tk + 16, policy, mac))
		goto out;
	if (CRYPTO_memcmp(mac, session + S_POLICY_MAC, sizeof(mac))) {
		st = SEVM_ABI_SEV_RET_BAD_MEASUREMENT;
		goto out;
	}
	memcpy(tek, tk, 16);
	memcpy(tik, tk + 16, 16);
	st = SEVM_ABI_SEV_RET_SUCCESS;
out:
	OPENSSL_cleanse(kek, sizeof(kek));
	OPENSSL_cleanse(kik, sizeof(kik));
	OPENSSL_cleanse(tk, sizeof(tk));
	return st;
}

/*
 * §5.2: HMAC-SHA256(TIK, 0x02 || FLAGS || IV || GUEST_LEN || TRANS_LEN ||
 * ciphertext).  The firmware sets TRANS_LEN to GUEST_LEN: nothing is
 * compressed.
 */
static int packet_mac(const uint8_t tik[16], const uint8_t hdr[SIM_HDR_LEN],
		      const uint8_t *trans, uint32_t len, uint8_t mac[32])
{
	uint8_t *m = malloc(AAD_LEN + (size_t)len);
	int r;

	if (!m)
		return -ENOMEM;
	m[0] = AAD_CONTEXT;
	memcpy(m + 1, hdr + H_FLAGS, 4);
	memcpy(m + 5, hdr + H_IV, 16);
	put_le32(m + 21, len);
	put_le32(m + 25, len);
	memcpy(m + AAD_LEN, trans, len);
	r = sim__hmac(tik, 16, m, AAD_LEN + (size_t)len, mac);
	free(m);
	return r;
}

int sim__packet_seal(const uint8_t tek[16], const uint8_t tik[16], const uint8_t *plain,
		     uint32_t len, uint8_t hdr[SIM_HDR_LEN], uint8_t *trans)
{
	int r;

	memset(hdr, 0, SIM_HDR_LEN);
	/* a fresh IV per packet, from the sending firmware */
	r = sim__random(hdr + H_IV, 16);
	if (!r)
		r = sim__aes_ctr(tek, hdr + H_IV, plain, trans, len);
	return r ? r : packet_mac(tik, hdr, trans, len, hdr + H_MAC);
}

uint32_t sim__packet_open(const uint8_t tek[16], const uint8_t tik[16],
			  const uint8_t hdr[SIM_HDR_LEN], const uint8_t *trans, uint32_t len,
			  uint8_t *plain)
{
	uint8_t mac[32];

	if (packet_mac(tik, hdr, trans, len, mac))
		return SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM;
	if (CRYPTO_memcmp(mac, hdr + H_MAC, sizeof(mac)))
		return SEVM_ABI_SEV_RET_BAD_MEASUREMENT;
	return sim__aes_ctr(tek, hdr + H_IV, trans, plain, len) ?
	       SEVM_ABI_SEV_RET_HWSEV_RET_PLATFORM : SEVM_ABI_SEV_RET_SUCCESS;
}
