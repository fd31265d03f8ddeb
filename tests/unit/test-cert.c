/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SEV certificate parsing and verification on AMD's real certificates
 * (../shared/reference/sev-certs beside the source tree, see its
 * PROVENANCE.md): every ARK and ASK from Naples to Turin, the Naples and Rome
 * sample platform chains, and damaged copies of them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "testutil.h"

#define CERT_DIR SOURCE_ROOT "/../shared/reference/sev-certs"

struct blob {
	uint8_t *p;
	size_t len;
};

static struct blob load(const char *name)
{
	char path[512];
	struct blob b = { 0 };
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", CERT_DIR, name);
	f = fopen(path, "rb");
	ck_assert_msg(f, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_gt(n, 0);
	rewind(f);
	b.len = (size_t)n;
	b.p = malloc(b.len);
	ck_assert_ptr_nonnull(b.p);
	ck_assert_uint_eq(fread(b.p, 1, b.len, f), b.len);
	fclose(f);
	return b;
}

/* An exact-size heap copy of p[0..len), so a read past the end is caught by ASan. */
static uint8_t *copy(const uint8_t *p, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(c);
	memcpy(c, p, len);
	return c;
}

static void hex(const uint8_t *id, char out[33])
{
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", id[i]);
}

static const char *const gens[] = { "naples", "rome", "milan", "genoa", "turin" };

/* §2.4 of the reference: ARK and ASK KEY_IDs, byte order as stored. */
static const char *const ark_ids[] = {
	"1bb987c359494606b174945601c9ea5b", "e6002122fb58419399d15fee7b131351",
	"94c38e4177d0479292a7ae671d083fb6", "9f9d4a8fe761456599f6946c4c010f3a",
	"d05c3a8bde484904b49552422ceb3942",
};
static const char *const ask_ids[] = {
	"e139970cfc464377ae61b289e2f9e96e", "c6cbcf145b3146f498e40ecb4ad4fded",
	"73478c05cc174bfeb06e718fa75dc3c8", "acbb4ad21acc436fb3e932f812cd01b0",
	"15051693f7304d65a527b4a7f3f7cb77",
};

static struct blob load_gen(const char *gen, const char *what)
{
	char name[64];

	snprintf(name, sizeof(name), "%s-%s.cert", gen, what);
	return load(name);
}

START_TEST(parse_amd_certs)
{
	for (int g = 0; g < 5; g++) {
		struct blob ark = load_gen(gens[g], "ark"), ask = load_gen(gens[g], "ask");
		struct sevm_cert_info a = { .sz = sizeof(a) }, s = { .sz = sizeof(s) };
		uint32_t bits = g == 0 ? 2048 : 4096;
		char id[33];

		ck_assert_int_eq(sevm_cert_parse(ark.p, ark.len, &a), 0);
		ck_assert_int_eq(sevm_cert_parse(ask.p, ask.len, &s), 0);
		ck_assert_uint_eq(a.sz, sizeof(a));
		ck_assert_uint_eq(a.usage, SEVM_CERT_ARK);
		ck_assert_uint_eq(s.usage, SEVM_CERT_ASK);
		ck_assert_uint_eq(a.key_bits, bits);
		ck_assert_uint_eq(s.key_bits, bits);
		/* §2.2: the hash follows the key size; reported as the SEV code. */
		ck_assert_uint_eq(a.algo, g == 0 ? 0x001 : 0x101);
		ck_assert_uint_eq(a.len, ark.len);
		ck_assert_uint_eq(s.len, ask.len);
		ck_assert_uint_eq(a.len, 64 + 3 * bits / 8);
		ck_assert_uint_eq(a.api_major, 0);
		hex(a.key_id, id);
		ck_assert_str_eq(id, ark_ids[g]);
		hex(a.certifying_id, id);
		ck_assert_str_eq(id, ark_ids[g]);
		hex(s.key_id, id);
		ck_assert_str_eq(id, ask_ids[g]);
		hex(s.certifying_id, id);
		ck_assert_str_eq(id, ark_ids[g]);
		free(ark.p);
		free(ask.p);
	}
}
END_TEST

struct sample {
	const char *file;
	uint32_t usage, algo;
	uint8_t major, minor;
};

/* PROVENANCE.md and §1.6: what the sample certificates hold. */
static const struct sample samples[] = {
	{ "naples-sample-pdh.cert", SEVM_CERT_PDH, 0x003, 0, 16 },
	{ "naples-sample-pek.cert", SEVM_CERT_PEK, 0x002, 0, 16 },
	{ "naples-sample-oca.cert", SEVM_CERT_OCA, 0x002, 0, 16 },
	{ "naples-sample-cek.cert", SEVM_CERT_CEK, 0x002, 0, 14 },
	{ "rome-sample-pdh.cert", SEVM_CERT_PDH, 0x003, 0, 22 },
	{ "rome-sample-pek.cert", SEVM_CERT_PEK, 0x002, 0, 22 },
	{ "rome-sample-oca.cert", SEVM_CERT_OCA, 0x002, 0, 22 },
	{ "rome-sample-cek.cert", SEVM_CERT_CEK, 0x002, 0, 14 },
};

START_TEST(parse_sev_certs)
{
	static const uint8_t zero[16];

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		const struct sample *t = &samples[i];
		struct blob b = load(t->file);
		struct sevm_cert_info info = { .sz = sizeof(info) };

		ck_assert_uint_eq(b.len, 2084);
		ck_assert_msg(sevm_cert_parse(b.p, b.len, &info) == 0, "%s: %s", t->file,
			      sevm_last_error());
		ck_assert_uint_eq(info.usage, t->usage);
		ck_assert_uint_eq(info.algo, t->algo);
		ck_assert_uint_eq(info.len, 2084);
		ck_assert_uint_eq(info.key_bits, 384);
		ck_assert_uint_eq(info.api_major, t->major);
		ck_assert_uint_eq(info.api_minor, t->minor);
		ck_assert_mem_eq(info.key_id, zero, 16);
		ck_assert_mem_eq(info.certifying_id, zero, 16);
		/* NULL info: only the check. */
		ck_assert_int_eq(sevm_cert_parse(b.p, b.len, NULL), 0);
		free(b.p);
	}
}
END_TEST

START_TEST(parse_info_size_rules)
{
	struct blob b = load("rome-sample-pdh.cert");
	struct {
		struct sevm_cert_info info;
		uint64_t future;
	} big = { .info.sz = sizeof(big) };
	struct sevm_cert_info unset = { 0 };

	ck_assert_int_eq(sevm_cert_parse(b.p, b.len, &big.info), 0);
	ck_assert_uint_eq(big.info.usage, SEVM_CERT_PDH);
	big.future = 1;
	ck_assert_int_eq(sevm_cert_parse(b.p, b.len, &big.info), -E2BIG);
	ck_assert_int_eq(sevm_cert_parse(b.p, b.len, &unset), -EINVAL);
	ck_assert_int_eq(sevm_cert_parse(NULL, 0, NULL), -EINVAL);
	free(b.p);
}
END_TEST

START_TEST(ark_and_ask_verify)
{
	for (int g = 0; g < 5; g++) {
		struct blob ark = load_gen(gens[g], "ark"), ask = load_gen(gens[g], "ask");

		ck_assert_msg(sevm_cert_verify(ark.p, ark.len, ark.p, ark.len) == 0, "%s ARK: %s",
			      gens[g], sevm_last_error());
		ck_assert_msg(sevm_cert_verify(ask.p, ask.len, ark.p, ark.len) == 0, "%s ASK: %s",
			      gens[g], sevm_last_error());
		/* The ASK signs CEKs only, and no ASK signs itself. */
		ck_assert_int_eq(sevm_cert_verify(ark.p, ark.len, ask.p, ask.len), -SEVM_ERR_FORMAT);
		ck_assert_int_eq(sevm_cert_verify(ask.p, ask.len, ask.p, ask.len), -SEVM_ERR_FORMAT);
		/* Another generation's ARK: another key (and for Naples, another size). */
		struct blob other = load_gen(gens[(g + 1) % 5], "ark");
		ck_assert_int_eq(sevm_cert_verify(ask.p, ask.len, other.p, other.len),
				 -EKEYREJECTED);
		ck_assert_ptr_nonnull(strstr(sevm_last_error(), "ASK <- ARK"));
		free(other.p);
		free(ark.p);
		free(ask.p);
	}
}
END_TEST

struct chain_files {
	struct blob pdh, pek, oca, cek, ask, ark;
};

static struct chain_files load_chain(const char *gen)
{
	struct chain_files c;
	char name[64];

#define LOAD(x) (snprintf(name, sizeof(name), "%s-sample-" #x ".cert", gen), c.x = load(name))
	LOAD(pdh);
	LOAD(pek);
	LOAD(oca);
	LOAD(cek);
#undef LOAD
	c.ask = load_gen(gen, "ask");
	c.ark = load_gen(gen, "ark");
	return c;
}

static void free_chain(struct chain_files *c)
{
	free(c->pdh.p);
	free(c->pek.p);
	free(c->oca.p);
	free(c->cek.p);
	free(c->ask.p);
	free(c->ark.p);
}

static struct sevm_cert_chain to_chain(const struct chain_files *f)
{
	struct sevm_cert_chain c = {
		.sz = sizeof(c),
		.pdh = f->pdh.p, .pdh_len = f->pdh.len, .pek = f->pek.p, .pek_len = f->pek.len,
		.oca = f->oca.p, .oca_len = f->oca.len, .cek = f->cek.p, .cek_len = f->cek.len,
		.ask = f->ask.p, .ask_len = f->ask.len, .ark = f->ark.p, .ark_len = f->ark.len,
	};
	return c;
}

#define VERIFY_OK(a, b) \
	ck_assert_msg(sevm_cert_verify((a).p, (a).len, (b).p, (b).len) == 0, \
		      "%s %s <- %s: %s", gens[g], #a, #b, sevm_last_error())

START_TEST(sample_chains_verify)
{
	for (int g = 0; g < 2; g++) {
		struct chain_files f = load_chain(gens[g]);
		struct sevm_cert_chain c = to_chain(&f);

		ck_assert_msg(sevm_cert_chain_verify(&c) == 0, "%s: %s", gens[g],
			      sevm_last_error());
		VERIFY_OK(f.pdh, f.pek);
		VERIFY_OK(f.pek, f.oca);
		VERIFY_OK(f.pek, f.cek);
		VERIFY_OK(f.oca, f.oca);
		VERIFY_OK(f.cek, f.ask);
		VERIFY_OK(f.ask, f.ark);
		VERIFY_OK(f.ark, f.ark);

		/* Partial chains: the links whose ends are both present. */
		c.ark = c.ask = NULL;
		ck_assert_int_eq(sevm_cert_chain_verify(&c), 0);
		c.cek = c.oca = c.pek = NULL;
		ck_assert_int_eq(sevm_cert_chain_verify(&c), 0);
		c.pdh = NULL;
		ck_assert_int_eq(sevm_cert_chain_verify(&c), -EINVAL);

		/* Wrong signers: a PDH by the OCA, an OCA by the PEK. */
		ck_assert_int_eq(sevm_cert_verify(f.pdh.p, f.pdh.len, f.oca.p, f.oca.len),
				 -SEVM_ERR_FORMAT);
		ck_assert_ptr_nonnull(strstr(sevm_last_error(), "PDH <- OCA"));
		ck_assert_int_eq(sevm_cert_verify(f.oca.p, f.oca.len, f.pek.p, f.pek.len),
				 -SEVM_ERR_FORMAT);
		/* A certificate in the wrong place of the chain. */
		c = to_chain(&f);
		c.pek = f.pdh.p;
		ck_assert_int_eq(sevm_cert_chain_verify(&c), -SEVM_ERR_FORMAT);
		ck_assert_ptr_nonnull(strstr(sevm_last_error(), "the PEK is a PDH"));
		free_chain(&f);
	}
}
END_TEST

START_TEST(cross_generation_fails)
{
	struct chain_files n = load_chain("naples"), r = load_chain("rome");
	struct sevm_cert_chain c = to_chain(&r);
	int err;

	err = sevm_cert_verify(r.cek.p, r.cek.len, n.ask.p, n.ask.len);
	ck_assert_msg(err == -EKEYREJECTED || err == -SEVM_ERR_FORMAT, "%d", err);
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "CEK <- ASK"));

	c.ask = n.ask.p, c.ask_len = n.ask.len;
	c.ark = n.ark.p, c.ark_len = n.ark.len;
	err = sevm_cert_chain_verify(&c);
	ck_assert_msg(err == -EKEYREJECTED || err == -SEVM_ERR_FORMAT, "%d", err);
	ck_assert_msg(strstr(sevm_last_error(), "chain link CEK <- ASK"), "%s",
		      sevm_last_error());

	/* The Rome PEK with the Naples OCA: the first failing link is named. */
	c = to_chain(&r);
	c.oca = n.oca.p;
	ck_assert_int_eq(sevm_cert_chain_verify(&c), -EKEYREJECTED);
	ck_assert_msg(strstr(sevm_last_error(), "chain link OCA <- OCA") == NULL &&
		      strstr(sevm_last_error(), "chain link PEK <- OCA"), "%s",
		      sevm_last_error());
	free_chain(&n);
	free_chain(&r);
}
END_TEST

/*
 * A flipped bit in every byte of the signed body (every bit of the header,
 * one bit per byte of the key, which keeps the run short): the firmware
 * checks the signature before the fields, so each is a bad signature.  Only
 * AMD's two size fields (0x38-0x3f) move the layout itself; no single flip
 * there leaves 2048 or 4096, so those are malformed.
 */
static void flip_every_byte(const struct blob *cert, size_t body, const struct blob *signer,
			    bool amd, const char *what)
{
	size_t hdr = amd ? 0x40 : 0x14;
	uint8_t *c = copy(cert->p, cert->len);

	for (size_t i = 0; i < body; i++) {
		for (int bit = i < hdr ? 0 : (int)(i % 8); bit < (i < hdr ? 8 : (int)(i % 8) + 1);
		     bit++) {
			int want = amd && i >= 0x38 && i < 0x40 ? -SEVM_ERR_FORMAT : -EKEYREJECTED;
			int err;

			c[i] ^= 1u << bit;
			err = sevm_cert_verify(c, cert->len, signer->p, signer->len);
			ck_assert_msg(err == want, "%s: byte 0x%zx bit %d: %d, %s", what, i, bit,
				      err, sevm_last_error());
			c[i] ^= 1u << bit;
		}
	}
	ck_assert_int_eq(sevm_cert_verify(c, cert->len, signer->p, signer->len), 0);
	free(c);
}

START_TEST(flipped_bit_sev)
{
	struct chain_files f = load_chain(gens[_i]);

	flip_every_byte(&f.pdh, 0x414, &f.pek, false, "PDH");
	flip_every_byte(&f.pek, 0x414, &f.oca, false, "PEK by OCA");
	flip_every_byte(&f.pek, 0x414, &f.cek, false, "PEK by CEK");
	flip_every_byte(&f.oca, 0x414, &f.oca, false, "OCA");
	flip_every_byte(&f.cek, 0x414, &f.ask, false, "CEK");
	free_chain(&f);
}
END_TEST

START_TEST(flipped_bit_amd)
{
	struct blob ark = load_gen(gens[_i], "ark"), ask = load_gen(gens[_i], "ask");
	size_t body = 64 + 2 * (ark.len - 64) / 3;

	flip_every_byte(&ark, body, &ark, true, "ARK");
	flip_every_byte(&ask, body, &ark, true, "ASK");
	free(ark.p);
	free(ask.p);
}
END_TEST

/* Every proper prefix is malformed, for parse and as a subject; never a crash. */
static void truncate_all(const struct blob *cert, const struct blob *signer)
{
	for (size_t len = 0; len < cert->len; len++) {
		uint8_t *c = copy(cert->p, len);
		struct sevm_cert_info info = { .sz = sizeof(info) };

		ck_assert_msg(sevm_cert_parse(c, len, &info) == -SEVM_ERR_FORMAT, "len %zu", len);
		ck_assert_msg(sevm_cert_verify(c, len, signer->p, signer->len) == -SEVM_ERR_FORMAT,
			      "len %zu", len);
		ck_assert_msg(sevm_cert_verify(signer->p, signer->len, c, len) == -SEVM_ERR_FORMAT,
			      "len %zu", len);
		free(c);
	}
}

START_TEST(truncated_pdh_and_ark)
{
	struct chain_files f = load_chain("rome");
	struct blob nark = load("naples-ark.cert");

	truncate_all(&f.pdh, &f.pek);
	truncate_all(&f.ark, &f.ark);
	truncate_all(&nark, &nark);
	free(nark.p);
	free_chain(&f);
}
END_TEST

START_TEST(naples_ark_as_published)
{
	struct blob bad = load("naples-ark-truncated.cert.bad");
	struct blob sig = load("naples-ark-signature.sig");
	struct blob ark = load("naples-ark.cert"), ask = load("naples-ask.cert");
	struct sevm_cert_info info = { .sz = sizeof(info) };
	struct blob whole;

	ck_assert_uint_eq(bad.len, 576);
	ck_assert_int_eq(sevm_cert_parse(bad.p, bad.len, &info), -SEVM_ERR_FORMAT);
	ck_assert_msg(strstr(sevm_last_error(), "no signature"), "%s", sevm_last_error());
	ck_assert_int_eq(sevm_cert_verify(bad.p, bad.len, bad.p, bad.len), -SEVM_ERR_FORMAT);
	ck_assert_int_eq(sevm_cert_verify(ask.p, ask.len, bad.p, bad.len), -SEVM_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(sevm_last_error(), "signer"));

	whole.len = bad.len + sig.len;
	whole.p = malloc(whole.len);
	ck_assert_ptr_nonnull(whole.p);
	memcpy(whole.p, bad.p, bad.len);
	memcpy(whole.p + bad.len, sig.p, sig.len);
	ck_assert_mem_eq(whole.p, ark.p, ark.len);
	ck_assert_int_eq(sevm_cert_parse(whole.p, whole.len, &info), 0);
	ck_assert_uint_eq(info.usage, SEVM_CERT_ARK);
	ck_assert_int_eq(sevm_cert_verify(whole.p, whole.len, whole.p, whole.len), 0);
	ck_assert_int_eq(sevm_cert_verify(ask.p, ask.len, whole.p, whole.len), 0);
	free(whole.p);
	free(bad.p);
	free(sig.p);
	free(ark.p);
	free(ask.p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cert");
	TCase *tc = tcase_create("cert");

	if (access(CERT_DIR, R_OK) != 0) {
		printf("SKIP: %s not found (the reference certificates live beside the "
		       "repository)\n", CERT_DIR);
		return TU_SKIP;
	}
	tcase_add_test(tc, parse_amd_certs);
	tcase_add_test(tc, parse_sev_certs);
	tcase_add_test(tc, parse_info_size_rules);
	tcase_add_test(tc, ark_and_ask_verify);
	tcase_add_test(tc, sample_chains_verify);
	tcase_add_test(tc, cross_generation_fails);
	tcase_add_loop_test(tc, flipped_bit_sev, 0, 2);
	tcase_add_loop_test(tc, flipped_bit_amd, 0, 5);
	tcase_add_test(tc, truncated_pdh_and_ark);
	tcase_add_test(tc, naples_ark_as_published);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
