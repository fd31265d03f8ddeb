/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "sevguest.h"

uint8_t sevguest_byte(size_t off)
{
	return (uint8_t)(off * 13 + (off >> 12));
}

int sevguest_create(struct sevguest *g, enum sevm_sev_type type, unsigned int nr_vcpus,
		    size_t ram_size)
{
	struct kvm_userspace_memory_region slot = { .memory_size = ram_size };
	uint32_t fw;

	memset(g, 0, sizeof(*g));
	g->type = type;
	g->vm = g->sev_fd = g->ram_fd = -1;
	if (nr_vcpus > SEVGUEST_MAX_VCPUS)
		return -EINVAL;
	g->vm = sevm_sev_vm_create(type, NULL, &fw);
	if (g->vm < 0)
		return g->vm;
	for (; g->nr_vcpus < nr_vcpus; g->nr_vcpus++) {
		g->vcpus[g->nr_vcpus] = sevm_ioctl(g->vm, KVM_CREATE_VCPU,
						   (void *)(long)g->nr_vcpus);
		if (g->vcpus[g->nr_vcpus] < 0)
			return g->vcpus[g->nr_vcpus];
	}
	g->sev_fd = sevm_sev_dev_open(true);
	if (g->sev_fd < 0)
		return g->sev_fd;
	g->ram_fd = memfd_create("guest-ram", MFD_CLOEXEC);
	if (g->ram_fd < 0 || ftruncate(g->ram_fd, (off_t)ram_size))
		return -errno;
	g->ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED, g->ram_fd, 0);
	if (g->ram == MAP_FAILED) {
		g->ram = NULL;
		return -errno;
	}
	g->ram_size = ram_size;
	slot.userspace_addr = (uintptr_t)g->ram;
	if (sevm_ioctl(g->vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
		return -EIO;
	return sevm_sev_region_register(g->vm, g->ram, ram_size);
}

int sevguest_launch(struct sevguest *g, uint32_t policy, size_t private_size)
{
	struct sevm_sev_launch l = { .sz = sizeof(l), .policy = policy };
	uint8_t m[64];
	uint32_t fw, len = sizeof(m);
	int err;

	for (size_t i = 0; i < g->ram_size; i++)
		g->ram[i] = sevguest_byte(i);
	err = sevm_sev_launch_start(g->vm, g->sev_fd, &l, &fw);
	if (!err && private_size)
		err = sevm_sev_launch_update_data(g->vm, g->ram, private_size, &fw);
	if (!err && g->type == SEVM_SEV_ES)
		err = sevm_sev_launch_update_vmsa(g->vm, &fw);
	/* The measurement a guest owner checks before FINISH (LUPDATE -> LSECRET). */
	if (!err)
		err = sevm_sev_launch_measure(g->vm, m, &len, &fw);
	return err ? err : sevm_sev_launch_finish(g->vm, &fw);
}

int sevguest_check(const struct sevguest *g, size_t private_size)
{
	static uint8_t page[4096];
	uint32_t fw;

	for (size_t off = 0; off < g->ram_size; off += sizeof(page)) {
		const uint8_t *p = g->ram + off;

		if (off < private_size) {
			if (sevm_sev_dbg_decrypt(g->vm, p, page, sizeof(page), &fw))
				return -EIO;
			p = page;
		}
		for (size_t i = 0; i < sizeof(page); i++)
			if (p[i] != sevguest_byte(off + i)) {
				fprintf(stderr, "guest byte %zu (%s) is 0x%02x, not 0x%02x\n", off + i,
					off < private_size ? "private" : "shared", p[i],
					sevguest_byte(off + i));
				return -EBADMSG;
			}
	}
	return 0;
}

void sevguest_destroy(struct sevguest *g)
{
	if (g->ram)
		munmap(g->ram, g->ram_size);
	for (unsigned int i = 0; i < g->nr_vcpus; i++)
		sevm_close(g->vcpus[i]);
	sevm_close(g->vm);
	sevm_close(g->sev_fd);
	if (g->ram_fd >= 0)
		close(g->ram_fd);
	memset(g, 0, sizeof(*g));
}

static int write_all(int sock, const void *buf, uint32_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(sock, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		p += n;
		len -= (uint32_t)n;
	}
	return 0;
}

static int read_all(int sock, void *buf, uint32_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(sock, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		p += n;
		len -= (uint32_t)n;
	}
	return 0;
}

/* Three blobs, each behind its length (4 bytes, host order: both ends are x86). */
static int put_blob(int sock, const void *p, uint32_t len)
{
	int err = write_all(sock, &len, sizeof(len));

	return err ? err : write_all(sock, p, len);
}

static int get_blob(int sock, void *p, uint32_t cap, uint32_t *len)
{
	int err = read_all(sock, len, sizeof(*len));

	if (err)
		return err;
	return *len > cap ? -EMSGSIZE : read_all(sock, p, *len);
}

int sevguest_certs_send(int sock, int sev_fd, struct sevsim *sim)
{
	struct sevguest_certs c;
	uint32_t pdh_len = sizeof(c.pdh), chain_len = sizeof(c.chain), fw;
	int err;

	c.amd_len = sizeof(c.amd);
	err = sevm_sev_pdh_export(sev_fd, c.pdh, &pdh_len, c.chain, &chain_len, &fw);
	/* On hardware ASK || ARK come from AMD's key server; the model has its own. */
	if (!err)
		err = sevsim_amd_certs(sim, c.amd, &c.amd_len);
	if (!err)
		err = put_blob(sock, c.pdh, pdh_len);
	if (!err)
		err = put_blob(sock, c.chain, chain_len);
	return err ? err : put_blob(sock, c.amd, c.amd_len);
}

int sevguest_certs_recv(int sock, struct sevguest_certs *c)
{
	uint32_t len;
	int err = get_blob(sock, c->pdh, sizeof(c->pdh), &len);

	if (!err && len != sizeof(c->pdh))
		err = -EBADMSG;
	if (!err)
		err = get_blob(sock, c->chain, sizeof(c->chain), &len);
	if (!err && len != sizeof(c->chain))
		err = -EBADMSG;
	return err ? err : get_blob(sock, c->amd, sizeof(c->amd), &c->amd_len);
}
