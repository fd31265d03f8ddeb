/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sev-upgrade: the intra-host handoff of an SEV or SEV-ES guest, end to end,
 * on the SEV model (sevsim) — runs on any machine, no SEV hardware needed.
 *
 * The old VMM launches an encrypted guest (its RAM is ciphertext to the VMM
 * and plaintext through the firmware's DBG_DECRYPT), then starts its
 * successor, a freshly exec'd copy of this binary, and hands the guest over:
 * the VM fd and the RAM fd travel by SCM_RIGHTS, the new VMM creates a VM of
 * the same type and the kernel (here, the model) moves the encryption
 * context into it.  The new VMM checks, page by page through DBG_DECRYPT,
 * that the guest's memory is what the old VMM launched.
 *
 *   sev-upgrade [--es]
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

#include <linux/kvm.h>
#include <sevmigrate.h>

#include "sevsim.h"

#define RAM_SIZE (4u << 20)
#define NR_VCPUS 4

static uint8_t secret(size_t i)
{
	return (uint8_t)(i * 13 + (i >> 12));
}

static int die(const char *what)
{
	fprintf(stderr, "sev-upgrade: %s: %s\n", what, sevm_last_error());
	return 1;
}

/* Create nr vCPUs through the seam, as every call of a VMM that runs on the model. */
static int vcpus(int vm, int *fds)
{
	for (int i = 0; i < NR_VCPUS; i++)
		if ((fds[i] = sevm_ioctl(vm, KVM_CREATE_VCPU, (void *)(long)i)) < 0)
			return fds[i];
	return 0;
}

/* Every page of the guest, decrypted by the firmware, must be the secret. */
static int check_memory(int vm, const uint8_t *ram)
{
	static uint8_t page[4096];
	uint32_t fw;

	for (size_t off = 0; off < RAM_SIZE; off += sizeof(page)) {
		if (sevm_sev_dbg_decrypt(vm, ram + off, page, sizeof(page), &fw))
			return die("DBG_DECRYPT");
		for (size_t i = 0; i < sizeof(page); i++)
			if (page[i] != secret(off + i)) {
				fprintf(stderr, "sev-upgrade: byte %zu differs\n", off + i);
				return 1;
			}
	}
	return 0;
}

static int new_vmm(int sock)
{
	struct sevm_guest_info gi = { .sz = sizeof(gi) };
	struct sevm_region r = { .sz = sizeof(r) };
	struct sevm_sev_status st = { .sz = sizeof(st) };
	struct sevm_handoff *h;
	int kvm, vm, fds[NR_VCPUS];
	uint32_t fw;

	if (sevm_handoff_from_fd(sock, false, NULL, &h) || sevm_handoff_info(h, &gi))
		return die("accepting the old VMM");
	/* A VM of the guest's type, not initialised: the context moves into it. */
	kvm = sevm_open("/dev/kvm", O_RDWR);
	vm = kvm < 0 ? kvm : sevm_ioctl(kvm, KVM_CREATE_VM, (void *)(long)gi.vm_type);
	if (vm < 0 || vcpus(vm, fds))
		return die("creating the new VM");
	if (sevm_handoff_set_vm(h, vm, fds, gi.nr_vcpus) || sevm_handoff_prepare(h) ||
	    sevm_handoff_switch_receive(h, NULL, NULL) || sevm_handoff_region(h, 0, &r))
		return die("taking the guest");
	/*
	 * MOVE does not carry the /dev/sev fd number LAUNCH_START saved: from
	 * now on this VM's firmware commands resolve fd 0 of this process.
	 */
	dup2(sevm_open("/dev/sev", O_RDWR), 0);
	if (sevm_sev_guest_status(vm, &st, &fw))
		return die("GUEST_STATUS");
	printf("[new VMM %d] %s guest received: handle %u, state %s, %u vCPUs\n", (int)getpid(),
	       gi.vm_type == SEVM_SEV_ES ? "SEV-ES" : "SEV", st.handle,
	       st.state == 3 ? "RUNNING" : "?", gi.nr_vcpus);
	if (check_memory(vm, r.host_addr))
		return 1;
	printf("[new VMM %d] all %u MiB of guest memory decrypt to what was launched\n",
	       (int)getpid(), RAM_SIZE >> 20);
	sevm_handoff_free(h);
	return 0;
}

static int launch(enum sevm_sev_type type, int *vm, int *fds, uint8_t **ram, int *ram_fd)
{
	struct sevm_sev_launch l = { .sz = sizeof(l), .policy = type == SEVM_SEV_ES ? 0x4 : 0 };
	int sev = sevm_open("/dev/sev", O_RDWR);
	uint32_t fw, len = 0;
	uint8_t m[64];

	*vm = sevm_sev_vm_create(type, NULL, &fw);
	if (sev < 0 || *vm < 0 || vcpus(*vm, fds))
		return die("creating the SEV VM");
	*ram_fd = memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (*ram_fd < 0 || ftruncate(*ram_fd, RAM_SIZE))
		return 1;
	*ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, *ram_fd, 0);
	if (*ram == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < RAM_SIZE; i++)
		(*ram)[i] = secret(i);
	if (sevm_sev_region_register(*vm, *ram, RAM_SIZE) ||
	    sevm_sev_launch_start(*vm, sev, &l, &fw) ||
	    sevm_sev_launch_update_data(*vm, *ram, RAM_SIZE, &fw) ||
	    (type == SEVM_SEV_ES && sevm_sev_launch_update_vmsa(*vm, &fw)))
		return die("launching the guest");
	/* The measurement a guest owner would check before FINISH (LUPDATE -> LSECRET). */
	if (sevm_sev_launch_measure(*vm, NULL, &len, &fw) || len > sizeof(m) ||
	    sevm_sev_launch_measure(*vm, m, &len, &fw) || sevm_sev_launch_finish(*vm, &fw))
		return die("measuring and finishing the launch");
	printf("[old VMM %d] %s guest launched: %u vCPUs, %u MiB encrypted in place "
	       "(the VMM now reads ciphertext: %02x, not %02x)\n", (int)getpid(),
	       type == SEVM_SEV_ES ? "SEV-ES" : "SEV", NR_VCPUS, RAM_SIZE >> 20,
	       (*ram)[1], secret(1));
	return 0;
}

static int old_vmm(const char *self, enum sevm_sev_type type, struct sevsim *sim)
{
	int vm, fds[NR_VCPUS], ram_fd = -1, sv[2], status;
	struct sevm_handoff *h;
	uint8_t *ram = NULL;
	pid_t pid;

	if (launch(type, &vm, fds, &ram, &ram_fd))
		return 1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return 1;
	pid = fork();
	if (pid == 0) {
		char sock[16], host[16];

		/* The new VMM joins the same modelled host: its state is in this fd. */
		snprintf(sock, sizeof(sock), "%d", dup(sv[1]));
		snprintf(host, sizeof(host), "%d", dup(sevsim_host_fd(sim)));
		execl(self, self, "--new", sock, host, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	struct sevm_region r = { .sz = sizeof(r), .flags = SEVM_REGION_ENCRYPTED,
				 .size = RAM_SIZE, .fd = ram_fd, .host_addr = ram };
	if (sevm_handoff_from_fd(sv[0], true, NULL, &h) || sevm_handoff_set_sev(h, type) ||
	    sevm_handoff_set_vm(h, vm, fds, NR_VCPUS) || sevm_handoff_add_region(h, &r) ||
	    sevm_handoff_prepare(h))
		return die("preparing the handoff");
	printf("[old VMM %d] handing the guest to pid %d\n", (int)getpid(), (int)pid);
	fflush(stdout);
	if (sevm_handoff_switch(h, NULL, 0))
		return die("switch");
	sevm_handoff_free(h);
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return 1;
	struct sevm_sev_status st = { .sz = sizeof(st) };
	uint32_t fw;
	if (sevm_sev_guest_status(vm, &st, &fw) != -ENOTTY)
		return die("the old VM still answers as an SEV guest");
	printf("[old VMM %d] done: the old VM is no SEV guest any more (%s)\n", (int)getpid(),
	       sevm_last_error());
	return 0;
}

int main(int argc, char **argv)
{
	struct sevsim_host_opts o = { .sz = sizeof(o) };
	struct sevsim *sim;

	if (argc == 4 && !strcmp(argv[1], "--new")) {
		if (sevsim_host_attach(atoi(argv[3]), &sim) || sevsim_install(sim))
			return 1;
		return new_vmm(atoi(argv[2]));
	}
	if (sevsim_host_create(&o, &sim) || sevsim_install(sim))
		return 1;
	return old_vmm(argv[0], argc > 1 && !strcmp(argv[1], "--es") ? SEVM_SEV_ES : SEVM_SEV,
		       sim);
}
