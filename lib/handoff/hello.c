/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The setup messages: HELLO (the guest, the region table, the memory fds)
 * and PREPARED (the receiver's pid and mappings), each checked on arrival
 * before anything is mapped or bound.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/error.h"
#include "handoff.h"

/* Turn the wire table into regions that own the received fds. */
static int take_regions(struct sevm_handoff *h, const struct sevm__hello *hello)
{
	const struct sevm__region_wire *w = (const void *)((const uint8_t *)h->msg.payload.data + sizeof(*hello));
	unsigned int n = hello->nr_regions;

	h->regions = calloc(n ? n : 1, sizeof(*h->regions));
	h->peer_addrs = calloc(n ? n : 1, sizeof(*h->peer_addrs));
	if (!h->regions || !h->peer_addrs)
		return sevm__fail(-ENOMEM, "region table");
	for (unsigned int i = 0; i < n; i++) {
		struct sevm_region *r = &h->regions[i];

		if (w[i].fd_index != i)
			return sevm__fail(-SEVM_ERR_FORMAT, "region %u names fd %u", i, w[i].fd_index);
		if (w[i].reserved)
			return sevm__fail(-SEVM_ERR_FORMAT, "region %u has reserved bits set", i);
		/* Only an SEV guest's HELLO may name encrypted regions, as its sender checks. */
		if ((w[i].flags & SEVM_REGION_ENCRYPTED) && !h->sev_type)
			return sevm__fail(-SEVM_ERR_FORMAT, "region %u has flags 0x%x, encrypted, and "
					  "the guest is not an SEV guest", i, w[i].flags);
		*r = (struct sevm_region){
			.sz = sizeof(*r), .slot = w[i].slot, .flags = w[i].flags,
			.guest_phys_addr = w[i].guest_phys_addr, .size = w[i].size,
			.offset = w[i].offset, .fd = h->msg.fds[i],
		};
		h->msg.fds[i] = -1;
		h->peer_addrs[i] = w[i].host_addr;
		h->nr_regions = i + 1;
	}
	int err = sevm__regions_validate(h->regions, n, -SEVM_ERR_FORMAT);
	for (unsigned int i = 0; !err && i < n; i++)
		err = sevm__region_fd_check(&h->regions[i], -SEVM_ERR_FORMAT);
	return err;
}

int sevm__hello_read(struct sevm_handoff *h)
{
	struct sevm__hello hello;
	unsigned int sev;
	int err = sevm__wire_recv(h->sock, &h->msg, h->timeout_ms, false);

	if (err)
		return sevm__context(err, "waiting for HELLO");
	err = sevm__wire_peer_abort(&h->msg);
	if (err)
		return err;
	if (h->msg.type != SEVM_MSG_HELLO)
		return sevm__fail(-SEVM_ERR_FORMAT, "expected HELLO, got %s", sevm__msg_name(h->msg.type));
	if (h->msg.payload.len < sizeof(hello))
		return sevm__fail(-SEVM_ERR_FORMAT, "HELLO of %zu bytes", h->msg.payload.len);
	memcpy(&hello, h->msg.payload.data, sizeof(hello));
	if (hello.major != SEVM_PROTO_MAJOR)
		return sevm__fail(-SEVM_ERR_VERSION, "sender speaks protocol %u.%u, we speak %u.%u",
				  hello.major, hello.minor, SEVM_PROTO_MAJOR, SEVM_PROTO_MINOR);
	if (hello.features & ~SEVM_FEATS_KNOWN)
		return sevm__fail(-SEVM_ERR_VERSION, "sender needs features 0x%x we do not have",
				  hello.features & ~SEVM_FEATS_KNOWN);
	sev = hello.features & SEVM_FEAT_SEV;
	if (sev && hello.vm_type != SEVM_SEV && hello.vm_type != SEVM_SEV_ES)
		return sevm__fail(-SEVM_ERR_FORMAT, "HELLO announces an SEV guest of VM type %u",
				  hello.vm_type);
	if (hello.reserved)
		return sevm__fail(-SEVM_ERR_FORMAT, "HELLO has reserved bits set");
	if (!hello.nr_vcpus || hello.nr_vcpus > SEVM_MAX_VCPUS)
		return sevm__fail(-SEVM_ERR_FORMAT, "HELLO announces %u vCPUs", hello.nr_vcpus);
	if (hello.guest_flags & ~(SEVM_GUEST_IRQCHIP | SEVM_GUEST_PIT))
		return sevm__fail(-SEVM_ERR_FORMAT, "HELLO has unknown guest flags 0x%x", hello.guest_flags);
	if (hello.nr_regions > SEVM_MAX_REGIONS || hello.nr_regions + sev != h->msg.nr_fds ||
	    h->msg.payload.len != sizeof(hello) + (size_t)hello.nr_regions * sizeof(struct sevm__region_wire))
		return sevm__fail(-SEVM_ERR_FORMAT, "HELLO announces %u regions in %zu bytes with %u fds",
				  hello.nr_regions, h->msg.payload.len, h->msg.nr_fds);
	sevm__peer_announced(&h->peer, (pid_t)hello.pid);
	/* The sender's VM fd follows the memory fds: the source of the MOVE. */
	if (sev) {
		h->sev_type = hello.vm_type;
		h->peer_vm_fd = h->msg.fds[hello.nr_regions];
		h->msg.fds[hello.nr_regions] = -1;
	}
	h->info = (struct sevm_guest_info){
		.sz = sizeof(h->info), .vm_type = hello.vm_type, .nr_vcpus = hello.nr_vcpus,
		.nr_regions = hello.nr_regions, .flags = hello.guest_flags,
	};
	return take_regions(h, &hello);
}

int sevm__hello_send(struct sevm_handoff *h)
{
	size_t len = sizeof(struct sevm__hello) + h->nr_regions * sizeof(struct sevm__region_wire);
	struct sevm__hello hello = {
		.major = SEVM_PROTO_MAJOR, .minor = SEVM_PROTO_MINOR,
		.vm_type = h->info.vm_type, .nr_vcpus = h->nr_vcpus,
		.nr_regions = h->nr_regions, .guest_flags = h->info.flags,
		.pid = (uint32_t)getpid(),
		.features = h->sev_type ? SEVM_FEAT_SEV : 0,
	};
	int fds[SEVM_MAX_REGIONS + 1];
	uint8_t *p;

	sevm__buf_reset(&h->out);
	p = sevm__buf_grow(&h->out, len);
	if (!p)
		return sevm__fail(-ENOMEM, "HELLO");
	memcpy(p, &hello, sizeof(hello));
	for (unsigned int i = 0; i < h->nr_regions; i++) {
		const struct sevm_region *r = &h->regions[i];
		struct sevm__region_wire w = {
			.slot = r->slot, .flags = r->flags, .guest_phys_addr = r->guest_phys_addr,
			.size = r->size, .offset = r->offset, .fd_index = i,
			.host_addr = (uintptr_t)r->host_addr,
		};

		memcpy(p + sizeof(hello) + i * sizeof(w), &w, sizeof(w));
		fds[i] = r->fd;
	}
	if (h->sev_type)
		fds[h->nr_regions] = h->vm_fd;
	return sevm__wire_send(h->sock, SEVM_MSG_HELLO, p, len, fds, h->nr_regions + !!h->sev_type,
			       h->timeout_ms);
}

/* PREPARED: u32 pid, u32 regions, then where the receiver mapped each one. */
struct sevm__prepared {
	uint32_t pid;
	uint32_t nr_regions;
};

int sevm__prepared_take(struct sevm_handoff *h)
{
	struct sevm__prepared p;
	size_t want;

	if (h->msg.payload.len < sizeof(p))
		return sevm__fail(-SEVM_ERR_FORMAT, "PREPARED of %zu bytes", h->msg.payload.len);
	memcpy(&p, h->msg.payload.data, sizeof(p));
	want = sizeof(p) + (size_t)h->nr_regions * sizeof(uint64_t);
	if (p.nr_regions != h->nr_regions || h->msg.payload.len != want)
		return sevm__fail(-SEVM_ERR_FORMAT, "PREPARED names %u regions in %zu bytes, we sent %u",
				  p.nr_regions, h->msg.payload.len, h->nr_regions);
	sevm__peer_announced(&h->peer, (pid_t)p.pid);
	free(h->peer_addrs);
	h->peer_addrs = malloc(h->nr_regions ? h->nr_regions * sizeof(uint64_t) : 1);
	if (!h->peer_addrs)
		return sevm__fail(-ENOMEM, "region addresses");
	memcpy(h->peer_addrs, (const uint8_t *)h->msg.payload.data + sizeof(p),
	       h->nr_regions * sizeof(uint64_t));
	return 0;
}

int sevm__prepared_send(struct sevm_handoff *h)
{
	size_t len = sizeof(struct sevm__prepared) + (size_t)h->nr_regions * sizeof(uint64_t);
	struct sevm__prepared p = { .pid = (uint32_t)getpid(), .nr_regions = h->nr_regions };
	uint8_t *b;

	sevm__buf_reset(&h->out);
	b = sevm__buf_grow(&h->out, len);
	if (!b)
		return sevm__fail(-ENOMEM, "PREPARED");
	memcpy(b, &p, sizeof(p));
	for (unsigned int i = 0; i < h->nr_regions; i++) {
		uint64_t a = (uintptr_t)h->regions[i].host_addr;

		memcpy(b + sizeof(p) + i * sizeof(a), &a, sizeof(a));
	}
	/*
	 * An SEV sender gets our VM too: if the context moves here and we then
	 * fail or die, it can still move it back from this VM.
	 */
	return sevm__wire_send(h->sock, SEVM_MSG_PREPARED, b, len, &h->vm_fd, !!h->sev_type,
			       h->timeout_ms);
}
