/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The other VMM of the plain handoff sweeps, a process of its own that runs
 * with no fault injected:   fault-peer MODE FD
 * FD is its end of a socketpair with the sweep.  Its exit status says what
 * became of the guest on this side (the sweep checks it against its own
 * result):
 *
 *   recv          take the guest; 0: it runs here with exact heartbeats
 *   send          boot a guest and hand it over; 0: handed over; PEER_ROLLED_BACK:
 *                 the handoff failed and the guest runs on here, exactly;
 *                 PEER_INDOUBT: the switch said in doubt (the guest stays paused)
 *   die-after-go  take the guest, and die by SIGKILL just before saying RESUMED
 *
 * PEER_BROKEN: a guest that should run here does not; 1: this side failed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "handoff/wire.h"
#include "fault-peer.h"
#include "testutil.h"
#include "tinyvm-handoff.h"
#include "tu-tinyvm.h"

static const struct sevm_handoff_opts opts = { .sz = sizeof(opts),
					       .timeout_ms = PEER_TIMEOUT_MS };

static int say(const char *what, int err, int status)
{
	fprintf(stderr, "fault-peer %d: %s: %d (%s)\n", (int)getpid(), what, err,
		sevm_last_error());
	return status;
}

static int receive(int fd)
{
	struct tinyvm_handoff_times t = { .verify_ram = true };
	struct tinyvm vm = { 0 };
	struct sevm_handoff *h;
	int err = sevm_handoff_from_fd(fd, false, &opts, &h);

	if (err)
		return say("from_fd", err, 1);
	err = tinyvm_handoff_receive(&vm, h, &t);
	sevm_handoff_free(h);
	if (err) {
		tinyvm_destroy(&vm);
		return say("receive", err, 1);
	}
	err = tu_runs(&vm, 3) ? 0 : say("the guest does not run here", 0, PEER_BROKEN);
	tinyvm_destroy(&vm);
	return err;
}

static int send_guest(int fd)
{
	struct tinyvm_handoff_times t = { .verify_ram = true };
	struct tinyvm vm = { 0 };
	struct sevm_handoff *h;
	int err, status;

	if (tinyvm_create(&vm, PEER_VCPUS, PEER_MEM, TINYVM_F_PIT) || tinyvm_load_guest(&vm, 256) ||
	    tinyvm_start(&vm) || !tu_runs(&vm, 2))
		return say("booting the guest", 0, 1);
	err = sevm_handoff_from_fd(fd, true, &opts, &h);
	if (err) {
		close(fd);
		status = tu_runs(&vm, 3) ? PEER_ROLLED_BACK : PEER_BROKEN;
		tinyvm_destroy(&vm);
		return say("from_fd", err, status);
	}
	err = tinyvm_handoff_send(&vm, h, &t);
	sevm_handoff_free(h);
	if (!err)
		status = 0;
	else if (err == -SEVM_ERR_INDOUBT)
		status = say("in doubt", err, PEER_INDOUBT);
	else
		status = say("rolled back", err, tu_runs(&vm, 3) ? PEER_ROLLED_BACK : PEER_BROKEN);
	tinyvm_destroy(&vm);
	return status;
}

int main(int argc, char **argv)
{
	int fd;

	if (argc < 3)
		return 2;
	fd = atoi(argv[2]);
	if (!strcmp(argv[1], "recv"))
		return receive(fd);
	if (!strcmp(argv[1], "send"))
		return send_guest(fd);
	if (!strcmp(argv[1], "die-after-go")) {
		tu_die_before_msg(SEVM_MSG_RESUMED);
		receive(fd);
		return say("still alive after GO", -EINVAL, 1);
	}
	return 2;
}
