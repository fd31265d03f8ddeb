/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sev-migrate-recv: the destination of a remote migration of an SEV or
 * SEV-ES guest, on the SEV model (sevsim: no SEV hardware needed).  Start it
 * first, then sev-migrate-send on the source host.
 *
 *   sev-migrate-recv [--es] [--port N]
 *
 * 1. Create an empty VM of the guest's kind: vCPUs, memory, not launched.
 * 2. Accept the source and give it this platform's certificates: its
 *    firmware encrypts the guest's private pages for ours alone.
 * 3. sevm_recv_run(): RECEIVE_START from the stream's session, every page
 *    and VMSA applied once its record was checked, RECEIVE_FINISH at END.
 * 4. Check, page by page, that the guest holds what the source launched.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sevguest.h"

#define RAM_SIZE	(4u << 20)
#define PRIVATE_SIZE	(3u << 20)	/* what the source launched encrypted */
#define NR_VCPUS	4

static int die(const char *what)
{
	fprintf(stderr, "sev-migrate-recv: %s: %s\n", what, sevm_last_error());
	return 1;
}

static int accept_one(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), s;

	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1))
		return -1;
	printf("[destination] listening on port %d\n", port);
	fflush(stdout);
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	return s;
}

int main(int argc, char **argv)
{
	enum sevm_sev_type type = SEVM_SEV;
	struct sevsim_host_opts ho = { .sz = sizeof(ho) };
	struct sevm_iteration_stats st = { .sz = sizeof(st) };
	struct sevm_sev_status gs = { .sz = sizeof(gs) };
	struct sevm_bitmap *private_pages;
	struct sevguest g;
	struct sevsim *sim;
	struct sevm_recv *r;
	int port = 4444, sock;
	uint32_t fw = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--es"))
			type = SEVM_SEV_ES;
		else if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
	}
	/* The model stands in for this host's KVM and SEV firmware. */
	if (sevsim_host_create(&ho, &sim) || sevsim_install(sim))
		return 1;
	if (sevguest_create(&g, type, NR_VCPUS, RAM_SIZE))
		return die("creating the destination VM");
	sock = accept_one(port);
	if (sock < 0) {
		perror("sev-migrate-recv: accept");
		return 1;
	}
	if (sevguest_certs_send(sock, g.sev_fd, sim))
		return die("sending this platform's certificates");

	struct sevm_region region = { .sz = sizeof(region), .size = RAM_SIZE,
				      .flags = SEVM_REGION_ENCRYPTED, .fd = g.ram_fd,
				      .host_addr = g.ram };
	struct sevm_migrate_opts o = { .sz = sizeof(o), .fd = sock, .vm_fd = g.vm,
				       .vcpu_fds = g.vcpus, .nr_vcpus = g.nr_vcpus,
				       .regions = &region, .nr_regions = 1, .sev_type = type,
				       .sev_fd = g.sev_fd };
	if (sevm_recv_new(&o, &r) || sevm_recv_run(r, &fw)) {
		fprintf(stderr, "sev-migrate-recv: receiving: %s (firmware: %s)\n",
			sevm_last_error(), fw ? sevm_fw_status_name(fw) : "not reached");
		return 1;
	}
	for (unsigned int i = 0; sevm_recv_stats(r, i, &st) == 0; i++)
		printf("[destination] pass %u: %llu private and %llu shared pages, %llu bytes\n",
		       st.iteration, (unsigned long long)st.pages_private,
		       (unsigned long long)st.pages_shared, (unsigned long long)st.bytes);
	if (sevm_recv_private(r, &private_pages) == 0) {
		printf("[destination] the source's private-page map: %lld pages private\n",
		       (long long)sevm_bitmap_count(private_pages, 0, RAM_SIZE / 4096));
		sevm_bitmap_free(private_pages);
	}
	if (sevm_sev_guest_status(g.vm, &gs, &fw))
		return die("GUEST_STATUS");
	if (sevguest_check(&g, PRIVATE_SIZE))
		return die("the guest's memory");
	printf("[destination] %s guest received: state %s, %u MiB as launched\n",
	       type == SEVM_SEV_ES ? "SEV-ES" : "SEV", gs.state == 3 ? "RUNNING" : "?",
	       RAM_SIZE >> 20);
	sevm_recv_free(r);
	close(sock);
	sevguest_destroy(&g);
	sevsim_free(sim);
	return 0;
}
