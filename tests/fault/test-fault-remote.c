/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Remote migration of an SEV-ES guest on the SEV model, every call of one
 * side failing in turn (sweep.h).  Both sides live in this process, over a
 * socketpair and one model host: the side under test in the main thread,
 * the other in a thread of its own that the injector leaves alone.
 *
 *   remote-send  sevm_send_new(), sevm_send_precopy(), sevm_send_final()
 *   remote-recv  sevm_recv_new(), sevm_recv_run()
 *
 * Promised (doc/remote.md, "Failures"): a sender that fails before
 * sevm_send_final() returned 0 cancels, and its guest is RUNNING for the
 * firmware with its memory intact (SEND_FINISH failing after END is
 * -SEVM_ERR_INDOUBT: the guest stays SUPDATE, the destination has it); the
 * firmware status travels in *fw_error beside -EIO; a receiver that fails
 * says so and its guest is not RUNNING.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "sevguest.h"
#include "sevsim.h"
#include "sweep.h"
#include "testutil.h"

#define RAM_SIZE	(64u << 10)
#define PRIVATE_SIZE	(32u << 10)
#define NR_VCPUS	2
#define TYPE		SEVM_SEV_ES
#define POLICY		0x4u	/* ES */
#define TIMEOUT_MS	2000

struct rig {
	struct sevsim *sim;
	struct sevguest src, dst;
	struct sevguest_certs certs;
	struct sevm_bitmap *private_pages;
	struct sevm_region src_region, dst_region;
	int sock[2];		/* [0] the sender's end, [1] the receiver's */
	pthread_t peer;
	struct sevm_send *s;
	struct sevm_recv *r;
	uint32_t fw;		/* the side under test: the last public call's firmware status */
	/* The peer thread's outcome. */
	int peer_err;
	bool peer_guest_ok;	/* sender peer after a failure: cancelled, RUNNING, intact */
};

static uint32_t guest_state(int vm)
{
	struct sevm_sev_status st = { .sz = sizeof(st) };
	uint32_t fw;

	return sevm_sev_guest_status(vm, &st, &fw) ? UINT32_MAX : st.state;
}

/* Both guests, certificates of the destination, the private-page map, the socket. */
static void rig_up(struct rig *g)
{
	struct sevsim_host_opts o = { .sz = sizeof(o) };
	struct sevm_gfn_range map = { .gfn = 0, .npages = RAM_SIZE / 4096 };
	uint32_t pdh_len = sizeof(g->certs.pdh), chain_len = sizeof(g->certs.chain), fw;
	int buf = 16384;

	memset(g, 0, sizeof(*g));
	ck_assert_int_eq(sevsim_host_create(&o, &g->sim), 0);
	ck_assert_int_eq(sevsim_install(g->sim), 0);
	ck_assert_msg(sevguest_create(&g->src, TYPE, NR_VCPUS, RAM_SIZE) == 0 &&
		      sevguest_launch(&g->src, POLICY, PRIVATE_SIZE) == 0, "%s", sevm_last_error());
	ck_assert_msg(sevguest_create(&g->dst, TYPE, NR_VCPUS, RAM_SIZE) == 0, "%s",
		      sevm_last_error());
	ck_assert_int_eq(sevm_sev_pdh_export(g->dst.sev_fd, g->certs.pdh, &pdh_len, g->certs.chain,
					     &chain_len, &fw), 0);
	g->certs.amd_len = sizeof(g->certs.amd);
	ck_assert_int_eq(sevsim_amd_certs(g->sim, g->certs.amd, &g->certs.amd_len), 0);
	ck_assert_int_eq(sevm_bitmap_new(&map, 1, &g->private_pages), 0);
	ck_assert_int_eq(sevm_bitmap_set(g->private_pages, 0, PRIVATE_SIZE / 4096), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g->sock), 0);
	/*
	 * Small buffers, as over a network: the sender cannot run far ahead of
	 * the receiver, so a failing receiver mostly stops a sender that can
	 * still cancel.
	 */
	ck_assert_int_eq(setsockopt(g->sock[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf)), 0);
	ck_assert_int_eq(setsockopt(g->sock[1], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf)), 0);
}

static void rig_down(struct rig *g)
{
	for (int i = 0; i < 2; i++)
		if (g->sock[i] >= 0)
			close(g->sock[i]);
	sevm_send_free(g->s);
	sevm_recv_free(g->r);
	sevm_bitmap_free(g->private_pages);
	sevguest_destroy(&g->dst);
	sevguest_destroy(&g->src);
	sevsim_free(g->sim);
}

static struct sevm_migrate_opts send_opts(struct rig *g)
{
	g->src_region = (struct sevm_region){ .sz = sizeof(g->src_region), .size = RAM_SIZE,
		.flags = SEVM_REGION_ENCRYPTED, .fd = g->src.ram_fd, .host_addr = g->src.ram };
	return (struct sevm_migrate_opts){
		.sz = sizeof(struct sevm_migrate_opts), .fd = g->sock[0], .timeout_ms = TIMEOUT_MS,
		.vm_fd = g->src.vm, .vcpu_fds = g->src.vcpus, .nr_vcpus = g->src.nr_vcpus,
		.regions = &g->src_region, .nr_regions = 1, .sev_type = TYPE,
		.sev_fd = g->src.sev_fd,
		.pdh = g->certs.pdh, .pdh_len = sizeof(g->certs.pdh),
		.plat_certs = g->certs.chain, .plat_certs_len = sizeof(g->certs.chain),
		.amd_certs = g->certs.amd, .amd_certs_len = g->certs.amd_len,
		.private_pages = g->private_pages,
	};
}

static struct sevm_migrate_opts recv_opts(struct rig *g)
{
	g->dst_region = (struct sevm_region){ .sz = sizeof(g->dst_region), .size = RAM_SIZE,
		.flags = SEVM_REGION_ENCRYPTED, .fd = g->dst.ram_fd, .host_addr = g->dst.ram };
	return (struct sevm_migrate_opts){
		.sz = sizeof(struct sevm_migrate_opts), .fd = g->sock[1], .timeout_ms = TIMEOUT_MS,
		.vm_fd = g->dst.vm, .vcpu_fds = g->dst.vcpus, .nr_vcpus = g->dst.nr_vcpus,
		.regions = &g->dst_region, .nr_regions = 1, .sev_type = TYPE,
		.sev_fd = g->dst.sev_fd,
	};
}

/* The source VMM's calls, up to SEND_FINISH. */
static int send_guest(struct rig *g, struct sevm_send **s, uint32_t *fw)
{
	struct sevm_migrate_opts o = send_opts(g);
	int err = sevm_send_new(&o, s, fw);

	if (!err)
		err = sevm_send_precopy(*s, NULL, fw);
	if (err >= 0)
		err = sevm_send_final(*s, NULL, 0, fw);
	return err;
}

static int receive_guest(struct rig *g, struct sevm_recv **r, uint32_t *fw)
{
	struct sevm_migrate_opts o = recv_opts(g);
	int err = sevm_recv_new(&o, r);

	return err ? err : sevm_recv_run(*r, fw);
}

/* Each peer closes its end when done, so that the side under test never waits it out. */
static void *receiver_thread(void *arg)
{
	struct rig *g = arg;
	struct sevm_recv *r = NULL;
	uint32_t fw;

	g->peer_err = receive_guest(g, &r, &fw);
	sevm_recv_free(r);
	close(g->sock[1]);
	g->sock[1] = -1;
	return NULL;
}

static void *sender_thread(void *arg)
{
	struct rig *g = arg;
	struct sevm_send *s = NULL;
	uint32_t fw;

	g->peer_err = send_guest(g, &s, &fw);
	/* Cancel, as the source VMM must; its guest is then RUNNING, intact. */
	if (g->peer_err && g->peer_err != -SEVM_ERR_INDOUBT)
		g->peer_guest_ok = (!s || sevm_send_cancel(s, NULL) == 0) &&
				   guest_state(g->src.vm) == SEVSIM_GSTATE_RUNNING &&
				   sevguest_check(&g->src, PRIVATE_SIZE) == 0;
	sevm_send_free(s);
	close(g->sock[0]);
	g->sock[0] = -1;
	return NULL;
}

/* ---- remote-send ------------------------------------------------------------- */

static void setup_send(void *ctx)
{
	struct rig *g = ctx;

	rig_up(g);
	ck_assert_int_eq(pthread_create(&g->peer, NULL, receiver_thread, g), 0);
}

static int run_send(void *ctx)
{
	struct rig *g = ctx;

	return send_guest(g, &g->s, &g->fw);
}

/* The destination holds the guest as the source launched it. */
static bool arrived(struct rig *g)
{
	return guest_state(g->dst.vm) == SEVSIM_GSTATE_RUNNING &&
	       sevguest_check(&g->dst, PRIVATE_SIZE) == 0;
}

static void check_fw(struct rig *g, const struct tu_call *hit)
{
	uint32_t want = hit ? hit->fw_status : 0;

	sweep_expect(g->fw == want, "*fw_error is 0x%x, the firmware said 0x%x", g->fw, want);
}

static void check_send(void *ctx, int err, const struct tu_call *hit)
{
	struct rig *g = ctx;
	uint32_t fw = 0;
	char buf[64];

	if (err == 0) {
		pthread_join(g->peer, NULL);
		sweep_expect(g->peer_err == 0 && arrived(g), "sent, but the destination failed (%d) "
			     "or does not hold the guest", g->peer_err);
		sweep_expect(guest_state(g->src.vm) == SEVSIM_GSTATE_SENT, "sent, but the source is "
			     "in state %u", guest_state(g->src.vm));
	} else if (err == -SEVM_ERR_INDOUBT) {
		sweep_expect(hit && hit->sev && !strcmp(sweep_call_name(hit, buf, sizeof(buf)),
							"SEV SEND_FINISH"),
			     "in doubt, yet SEND_FINISH did not fail");
		pthread_join(g->peer, NULL);
		sweep_expect(g->peer_err == 0 && arrived(g), "in doubt: the destination failed (%d)",
			     g->peer_err);
		sweep_expect(guest_state(g->src.vm) == SEVSIM_GSTATE_SUPDATE, "in doubt: the source "
			     "is in state %u, not SUPDATE", guest_state(g->src.vm));
	} else {
		check_fw(g, hit);
		sweep_expect(!g->s || sevm_send_cancel(g->s, &fw) == 0, "the cancel failed: %s",
			     sevm_last_error());
		sweep_expect(guest_state(g->src.vm) == SEVSIM_GSTATE_RUNNING, "failed with %d and "
			     "cancelled, but the source is in state %u", err, guest_state(g->src.vm));
		sweep_expect(sevguest_check(&g->src, PRIVATE_SIZE) == 0, "failed with %d: the "
			     "source's memory is not intact", err);
		shutdown(g->sock[0], SHUT_RDWR);
		pthread_join(g->peer, NULL);
		sweep_expect(g->peer_err < 0, "the sender failed with %d, yet the receiver "
			     "finished", err);
		sweep_expect(guest_state(g->dst.vm) != SEVSIM_GSTATE_RUNNING, "the sender failed, "
			     "yet the destination runs the guest");
	}
	rig_down(g);
}

/* ---- remote-recv ------------------------------------------------------------- */

static void setup_recv(void *ctx)
{
	struct rig *g = ctx;

	rig_up(g);
	ck_assert_int_eq(pthread_create(&g->peer, NULL, sender_thread, g), 0);
}

static int run_recv(void *ctx)
{
	struct rig *g = ctx;

	return receive_guest(g, &g->r, &g->fw);
}

static void check_recv(void *ctx, int err, const struct tu_call *hit)
{
	struct rig *g = ctx;

	if (err == 0) {
		sweep_expect(arrived(g), "received, but the guest is not here intact");
		pthread_join(g->peer, NULL);
		sweep_expect(g->peer_err == 0, "received, but the sender failed with %d",
			     g->peer_err);
	} else {
		check_fw(g, hit);
		sweep_expect(guest_state(g->dst.vm) != SEVSIM_GSTATE_RUNNING, "failed with %d, yet "
			     "the guest is RUNNING here", err);
		shutdown(g->sock[1], SHUT_RDWR);
		pthread_join(g->peer, NULL);
		if (g->peer_err == 0)
			sweep_note("the receiver failed after the sender had written END: the "
				   "source guest is SENT (doc/remote.md: the VMMs' own channel "
				   "must tell the source)");
		else
			sweep_expect(g->peer_guest_ok, "the sender failed too (%d), but after its "
				     "cancel the source guest is not RUNNING and intact",
				     g->peer_err);
	}
	rig_down(g);
}

static struct rig rig;

START_TEST(remote_send)
{
	struct sweep_flow f = { .name = "remote-send", .ctx = &rig, .setup = setup_send,
				.run = run_send, .check = check_send };

	sweep(&f);
}
END_TEST

START_TEST(remote_recv)
{
	struct sweep_flow f = { .name = "remote-recv", .ctx = &rig, .setup = setup_recv,
				.run = run_recv, .check = check_recv };

	sweep(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fault-remote");
	TCase *tc = tcase_create("remote migration, SEV-ES on the model");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, remote_send);
	tcase_add_test(tc, remote_recv);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
