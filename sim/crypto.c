/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The firmware's cryptography, with OpenSSL's libcrypto.
 *
 * Memory encryption: AES-128 in an XEX (XOR-encrypt-XOR) construction per
 * 16-byte block, C = E_K1(P ^ T) ^ T with T = E_K2(i), where i is the block's
 * index within its 4 KiB page (little-endian in a 16-byte block).  SEV
 * hardware tweaks with the block's physical address, which a userspace model
 * cannot know; the page offset keeps ciphertext position-dependent inside a
 * page and lets the same bytes decrypt wherever the page is mapped (in the
 * source and in the destination of a MOVE).
 *
 * Launch digest: hardware hashes all measured plaintext as one SHA-256
 * stream (sev-firmware.md §14).  A SHA-256 state cannot be kept in the
 * shared mapping through libcrypto's opaque contexts, so the model chains:
 * D0 = SHA-256(""), Di = SHA-256(Di-1 || chunk i).
 */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "internal.h"

#define BLOCKS_PER_PAGE (SIM_PAGE_SIZE / 16)

int sim__random(void *buf, size_t len)
{
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -EIO;
}

static int ecb(const uint8_t key[16], bool enc, uint8_t *buf, size_t len)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ok, out;

	if (!c)
		return -ENOMEM;
	ok = EVP_CipherInit_ex(c, EVP_aes_128_ecb(), NULL, key, NULL, enc) == 1 &&
	     EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
	     EVP_CipherUpdate(c, buf, &out, buf, (int)len) == 1 && out == (int)len;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -EIO;
}

/* T for every block index of a page. */
static int page_tweaks(const uint8_t k2[16], uint8_t t[BLOCKS_PER_PAGE][16])
{
	memset(t, 0, BLOCKS_PER_PAGE * 16);
	for (unsigned int i = 0; i < BLOCKS_PER_PAGE; i++) {
		t[i][0] = (uint8_t)i;
		t[i][1] = (uint8_t)(i >> 8);
	}
	return ecb(k2, true, &t[0][0], BLOCKS_PER_PAGE * 16);
}

static void xor_tweaks(const uint8_t t[BLOCKS_PER_PAGE][16], uint64_t addr, uint8_t *buf,
		       size_t len)
{
	for (size_t off = 0; off < len; off += 16) {
		const uint8_t *tw = t[((addr + off) % SIM_PAGE_SIZE) / 16];

		for (int k = 0; k < 16; k++)
			buf[off + k] ^= tw[k];
	}
}

int sim__mem_crypt(const uint8_t vek[32], bool enc, uint64_t addr, uint8_t *buf, size_t len)
{
	uint8_t t[BLOCKS_PER_PAGE][16];
	int r;

	if (len % 16 || addr % 16)
		return -EINVAL;
	if (!len)
		return 0;
	r = page_tweaks(vek + 16, t);
	if (r)
		return r;
	xor_tweaks(t, addr, buf, len);
	r = ecb(vek, enc, buf, len);
	xor_tweaks(t, addr, buf, len);
	return r;
}

static void sha256_two(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int n = 0;

	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, a, alen) != 1 || EVP_DigestUpdate(c, b, blen) != 1 ||
	    EVP_DigestFinal_ex(c, out, &n) != 1)
		memset(out, 0, 32);
	EVP_MD_CTX_free(c);
}

void sim__digest_init(uint8_t digest[32])
{
	sha256_two("", 0, "", 0, digest);
}

void sim__digest_extend(uint8_t digest[32], const void *data, size_t len)
{
	uint8_t prev[32];

	memcpy(prev, digest, sizeof(prev));
	sha256_two(prev, sizeof(prev), data, len, digest);
}

int sim__hmac(const uint8_t *key, size_t key_len, const void *data, size_t len, uint8_t out[32])
{
	unsigned int n = 0;

	if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) || n != 32)
		return -EIO;
	return 0;
}

int sim__aes_ctr(const uint8_t key[16], const uint8_t iv[16], const uint8_t *in, uint8_t *out,
		 size_t len)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ok, n;

	if (!c)
		return -ENOMEM;
	ok = EVP_DecryptInit_ex(c, EVP_aes_128_ctr(), NULL, key, iv) == 1 &&
	     EVP_DecryptUpdate(c, out, &n, in, (int)len) == 1 && n == (int)len;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -EIO;
}
