/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sev-migrate-send: the source of a remote migration of an SEV or SEV-ES
 * guest, on the SEV model (sevsim: no SEV hardware needed).  Start
 * sev-migrate-recv first.
 *
 *   sev-migrate-send [--es] [--to IPV4 [--port N]]
 *
 * 1. Launch a guest: 3 MiB private (encrypted in place), 1 MiB shared.
 * 2. Connect, read the destination's certificates and check their chain.
 * 3. sevm_send_new(): SEND_START, so that the firmware opens a channel to
 *    the destination's firmware; the guest keeps running.
 * 4. Pre-copy while it runs, then pause it and send the rest:
 *    sevm_send_final() ends with SEND_FINISH.  The guest now lives there.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sevguest.h"

#define RAM_SIZE	(4u << 20)
#define PRIVATE_SIZE	(3u << 20)
#define NR_VCPUS	4
#define POLICY_ES	(1u << 2)

static int die(const char *what, uint32_t fw)
{
	fprintf(stderr, "sev-migrate-send: %s: %s (firmware: %s)\n", what, sevm_last_error(),
		fw ? sevm_fw_status_name(fw) : "not reached");
	return 1;
}

static int connect_to(const char *ip, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0 || inet_pton(AF_INET, ip, &a.sin_addr) != 1 ||
	    connect(s, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	return s;
}

int main(int argc, char **argv)
{
	enum sevm_sev_type type = SEVM_SEV;
	struct sevsim_host_opts ho = { .sz = sizeof(ho) };
	struct sevm_iteration_stats st = { .sz = sizeof(st) };
	struct sevm_gfn_range map = { .gfn = 0, .npages = RAM_SIZE / 4096 };
	struct sevm_bitmap *private_pages;
	struct sevguest_certs certs;
	struct sevguest g;
	struct sevsim *sim;
	struct sevm_send *s;
	const char *ip = "127.0.0.1";
	int port = 4444, sock;
	uint32_t fw = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--es"))
			type = SEVM_SEV_ES;
		else if (!strcmp(argv[i], "--to") && i + 1 < argc)
			ip = argv[++i];
		else if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
	}
	if (sevsim_host_create(&ho, &sim) || sevsim_install(sim))
		return 1;
	if (sevguest_create(&g, type, NR_VCPUS, RAM_SIZE) ||
	    sevguest_launch(&g, type == SEVM_SEV_ES ? POLICY_ES : 0, PRIVATE_SIZE))
		return die("launching the guest", 0);
	/* Which pages are private: the VMM learns it from the guest's KVM_HC_MAP_GPA_RANGE. */
	if (sevm_bitmap_new(&map, 1, &private_pages) ||
	    sevm_bitmap_set(private_pages, 0, PRIVATE_SIZE / 4096))
		return die("the private-page map", 0);
	printf("[source] %s guest launched: %u vCPUs, %u MiB private, %u MiB shared\n",
	       type == SEVM_SEV_ES ? "SEV-ES" : "SEV", NR_VCPUS, PRIVATE_SIZE >> 20,
	       (RAM_SIZE - PRIVATE_SIZE) >> 20);

	sock = connect_to(ip, port);
	if (sock < 0 || sevguest_certs_recv(sock, &certs)) {
		perror("sev-migrate-send: the destination's certificates");
		return 1;
	}
	/* The firmware checks the chain too (policy bit SEV); checking first names the bad link. */
	struct sevm_cert_chain chain = {
		.sz = sizeof(chain), .pdh = certs.pdh, .pdh_len = sizeof(certs.pdh),
		.pek = certs.chain, .pek_len = SEVM_SEV_CERT_LEN,
		.oca = certs.chain + SEVM_SEV_CERT_LEN, .oca_len = SEVM_SEV_CERT_LEN,
		.cek = certs.chain + 2 * SEVM_SEV_CERT_LEN, .cek_len = SEVM_SEV_CERT_LEN,
		.ask = certs.amd, .ask_len = certs.amd_len / 2,
		.ark = certs.amd + certs.amd_len / 2, .ark_len = certs.amd_len / 2,
	};
	if (sevm_cert_chain_verify(&chain))
		return die("the destination's certificate chain", 0);
	printf("[source] the destination's chain PDH <- PEK <- OCA/CEK <- ASK <- ARK verifies\n");

	struct sevm_region region = { .sz = sizeof(region), .size = RAM_SIZE,
				      .flags = SEVM_REGION_ENCRYPTED, .fd = g.ram_fd,
				      .host_addr = g.ram };
	struct sevm_migrate_opts o = {
		.sz = sizeof(o), .fd = sock, .vm_fd = g.vm, .vcpu_fds = g.vcpus,
		.nr_vcpus = g.nr_vcpus, .regions = &region, .nr_regions = 1,
		.sev_type = type, .sev_fd = g.sev_fd,
		.pdh = certs.pdh, .pdh_len = sizeof(certs.pdh),
		.plat_certs = certs.chain, .plat_certs_len = sizeof(certs.chain),
		.amd_certs = certs.amd, .amd_certs_len = certs.amd_len,
		.private_pages = private_pages,
	};
	if (sevm_send_new(&o, &s, &fw))
		return die("SEND_START", fw);
	/*
	 * Pre-copy while the guest runs on: passes over what the dirty log says
	 * changed.  The model keeps no dirty log, so here it is 0 passes and the
	 * final pass sends everything.
	 */
	int passes = sevm_send_precopy(s, NULL, &fw);
	if (passes < 0) {
		sevm_send_cancel(s, NULL);
		return die("pre-copy (cancelled: the guest runs on here)", fw);
	}
	printf("[source] pre-copy: %d passes while the guest ran\n", passes);
	/* The VMM pauses its vCPUs here; then the rest goes, and SEND_FINISH. */
	if (sevm_send_final(s, NULL, 0, &fw)) {
		sevm_send_cancel(s, NULL);
		return die("the final pass (cancelled: the guest runs on here)", fw);
	}
	for (unsigned int i = 0; sevm_send_stats(s, i, &st) == 0; i++)
		printf("[source] pass %u: %llu private and %llu shared pages, %llu bytes, %.1f ms\n",
		       st.iteration, (unsigned long long)st.pages_private,
		       (unsigned long long)st.pages_shared, (unsigned long long)st.bytes,
		       st.ns / 1e6);
	printf("[source] sent: the guest is SENT here and runs on the destination\n");
	sevm_send_free(s);
	sevm_bitmap_free(private_pages);
	close(sock);
	sevguest_destroy(&g);
	sevsim_free(sim);
	return 0;
}
