/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmm-upgrade: a minimal VMM that upgrades itself under a running guest.
 *
 * The old VMM boots a tiny guest (several vCPUs, each counting and sending
 * heartbeats through port I/O) in memfd RAM, runs it, then starts its
 * successor — a freshly exec'd copy of this binary — and hands the guest over
 * through libsevmigrate on a socketpair.  The new VMM checks that guest RAM
 * is identical and that every vCPU's next heartbeat follows its last one
 * exactly, runs the guest on, and prints the blackout.  With --generations
 * the new VMM upgrades itself again.
 *
 *   vmm-upgrade [--vcpus N] [--mem-mib M] [--run-ms T] [--generations G]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "tinyvm-handoff.h"

struct config {
	unsigned int vcpus;
	uint64_t mem_mib;
	unsigned int run_ms;
	unsigned int generations;	/* handoffs still to do */
	unsigned int generation;	/* this process's */
	int receive_fd;			/* -1: the first VMM */
};

static void run_for(const struct tinyvm *vm, const struct config *c)
{
	struct timespec ts = { .tv_sec = c->run_ms / 1000, .tv_nsec = (c->run_ms % 1000) * 1000000L };
	uint64_t total = 0;

	nanosleep(&ts, NULL);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		total += tinyvm_heartbeats(vm, i);
	printf("[gen %u, pid %d] guest ran %u ms: %llu heartbeats, %llu errors; counters",
	       c->generation, (int)getpid(), c->run_ms, (unsigned long long)total,
	       (unsigned long long)tinyvm_total_errors(vm));
	for (unsigned int i = 0; i < vm->nr_vcpus && i < 8; i++)
		printf(" %u", tinyvm_counter(vm, i));
	printf("%s\n", vm->nr_vcpus > 8 ? " ..." : "");
	fflush(stdout);
}

/* Start the successor: this binary again, receiving on one end of a socketpair. */
static pid_t spawn_successor(const char *self, const struct config *c, int *sock)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		char fd[16], gens[16], gen[16], ms[16];

		snprintf(fd, sizeof(fd), "%d", dup(sv[1]));	/* dup drops CLOEXEC */
		snprintf(gens, sizeof(gens), "%u", c->generations - 1);
		snprintf(gen, sizeof(gen), "%u", c->generation + 1);
		snprintf(ms, sizeof(ms), "%u", c->run_ms);
		execl(self, self, "--receive-fd", fd, "--generations", gens,
		      "--generation", gen, "--run-ms", ms, (char *)NULL);
		perror("exec");
		_exit(127);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return -errno;
	}
	*sock = sv[0];
	return pid;
}

/* Hand the guest to a new VMM; 0 when it took it, else the guest runs on here. */
static int upgrade(struct tinyvm *vm, const char *self, const struct config *c, pid_t *child)
{
	struct tinyvm_handoff_times t = { .verify_ram = true };
	struct sevm_handoff *h;
	int sock = -1, err;

	*child = spawn_successor(self, c, &sock);
	if (*child < 0)
		return *child;
	err = sevm_handoff_from_fd(sock, true, NULL, &h);
	if (err) {
		close(sock);
		return err;
	}
	printf("[gen %u, pid %d] handing the guest to pid %d\n", c->generation, (int)getpid(),
	       (int)*child);
	fflush(stdout);
	err = tinyvm_handoff_send(vm, h, &t);
	if (err)
		fprintf(stderr, "[gen %u] handoff failed, guest resumed here: %s\n",
			c->generation, sevm_last_error());
	sevm_handoff_free(h);
	return err;
}

static int receive(struct tinyvm *vm, const struct config *c)
{
	struct tinyvm_handoff_times t = { .verify_ram = true };
	struct sevm_handoff *h;
	int err = sevm_handoff_from_fd(c->receive_fd, false, NULL, &h);

	if (err) {
		fprintf(stderr, "[gen %u] %s\n", c->generation, sevm_last_error());
		return err;
	}
	err = tinyvm_handoff_receive(vm, h, &t);
	if (err)
		fprintf(stderr, "[gen %u] taking the guest failed: %s\n", c->generation,
			err == -EIO || err == -EPROTO ? strerror(-err) : sevm_last_error());
	else
		printf("[gen %u, pid %d] guest resumed: blackout %.3f ms, RAM checksum equal, "
		       "heartbeats continue from the old VMM's\n", c->generation, (int)getpid(),
		       (double)(t.resumed_ns - t.pause_ns) / 1e6);
	fflush(stdout);
	sevm_handoff_free(h);
	return err;
}

static int parse(int argc, char **argv, struct config *c)
{
	static const struct option opts[] = {
		{ "vcpus", required_argument, NULL, 'v' },
		{ "mem-mib", required_argument, NULL, 'm' },
		{ "run-ms", required_argument, NULL, 't' },
		{ "generations", required_argument, NULL, 'g' },
		{ "generation", required_argument, NULL, 'G' },
		{ "receive-fd", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	int o;

	*c = (struct config){ .vcpus = 4, .mem_mib = 64, .run_ms = 300, .generations = 1,
			      .receive_fd = -1 };
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'v': c->vcpus = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'm': c->mem_mib = strtoull(optarg, NULL, 0); break;
		case 't': c->run_ms = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'g': c->generations = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'G': c->generation = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'r': c->receive_fd = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [--vcpus N] [--mem-mib M] [--run-ms T] "
				"[--generations G]\n", argv[0]);
			return -EINVAL;
		}
	}
	if (!c->vcpus || c->vcpus > TINYVM_MAX_VCPUS || !c->mem_mib) {
		fprintf(stderr, "vmm-upgrade: 1..%d vCPUs and some memory, please\n", TINYVM_MAX_VCPUS);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct tinyvm vm = { 0 };
	struct config c;
	pid_t child = -1;
	int err, status = 0;

	if (parse(argc, argv, &c))
		return 2;
	if (c.receive_fd < 0) {
		err = tinyvm_create(&vm, c.vcpus, c.mem_mib << 20, 0);
		if (!err)
			err = tinyvm_load_guest(&vm, 1u << 12);
		if (!err)
			err = tinyvm_start(&vm);
		if (err) {
			fprintf(stderr, "vmm-upgrade: cannot boot the guest: %s\n", strerror(-err));
			return 1;
		}
		printf("[gen 0, pid %d] guest booted: %u vCPUs, %llu MiB memfd RAM\n",
		       (int)getpid(), c.vcpus, (unsigned long long)c.mem_mib);
	} else if (receive(&vm, &c)) {
		tinyvm_destroy(&vm);
		return 1;
	}
	run_for(&vm, &c);
	err = 0;
	if (c.generations) {
		err = upgrade(&vm, argv[0], &c, &child);
		if (!err) {
			/* The successor owns the guest; this VMM waits only to pass on its verdict. */
			tinyvm_destroy(&vm);
			waitpid(child, &status, 0);
			return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
		}
		run_for(&vm, &c);	/* rollback: the guest runs on here */
	}
	if (tinyvm_total_errors(&vm))
		err = -EIO;
	tinyvm_destroy(&vm);
	if (child > 0)
		waitpid(child, &status, 0);
	if (!err)
		printf("[gen %u, pid %d] done: the guest survived every handoff\n", c.generation,
		       (int)getpid());
	return err ? 1 : 0;
}
