/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the SEV examples share: an SEV or SEV-ES guest on the SEV model
 * (sevsim), its memory filled with a pattern that says where each byte is,
 * and the destination's certificates carried over a socket.  Not part of
 * the library; every KVM call goes through its seam, as a VMM that runs on
 * the model must.
 */
#ifndef SEVGUEST_H
#define SEVGUEST_H

#include <stddef.h>
#include <stdint.h>

#include <sevmigrate.h>

#include "sevsim.h"

#define SEVGUEST_MAX_VCPUS 8

struct sevguest {
	enum sevm_sev_type type;
	int vm;
	int vcpus[SEVGUEST_MAX_VCPUS];
	unsigned int nr_vcpus;
	int sev_fd;		/* /dev/sev, kept open at its number for the VM's life */
	int ram_fd;
	uint8_t *ram;
	size_t ram_size;
};

/* The byte the guest holds at offset off of its memory. */
uint8_t sevguest_byte(size_t off);

/* A VM of `type` with its vCPUs and RAM (slot 0 at GPA 0, an encrypted region); not launched. */
int sevguest_create(struct sevguest *g, enum sevm_sev_type type, unsigned int nr_vcpus,
		    size_t ram_size);
/*
 * Fill RAM with the pattern and launch: the first private_size bytes are
 * encrypted in place (private), the rest stays plain (shared with the host).
 */
int sevguest_launch(struct sevguest *g, uint32_t policy, size_t private_size);
/* The guest holds the pattern: private bytes through DBG_DECRYPT, shared ones as they are. */
int sevguest_check(const struct sevguest *g, size_t private_size);
void sevguest_destroy(struct sevguest *g);

/* The destination's certificates, what SEND_START needs of it. */
struct sevguest_certs {
	uint8_t pdh[SEVM_SEV_CERT_LEN];
	uint8_t chain[SEVM_SEV_CHAIN_LEN];	/* PEK || OCA || CEK */
	uint8_t amd[4096];			/* ASK || ARK */
	uint32_t amd_len;
};

/* Destination: export this platform's certificates and write them to sock. */
int sevguest_certs_send(int sock, int sev_fd, struct sevsim *sim);
/* Source: read them. */
int sevguest_certs_recv(int sock, struct sevguest_certs *c);

#endif
