/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "guest_state.h"
#include "restore_pool.h"

int sevm__guest_put_header(const struct sevm__guest_desc *g, uint64_t vcpu_items,
			   struct sevm__snap_writer *w)
{
	struct sevm__sect_guest s = { .nr_vcpus = g->nr_vcpus, .vm_type = g->vm_type,
				      .flags = g->flags, .vcpu_items = vcpu_items };

	return sevm__snap_put(w, SEVM_SECT_GUEST, SEVM_SNAP_MANDATORY, 0, &s, sizeof(s));
}

int sevm__guest_same_items(unsigned int i, uint64_t items, uint64_t first)
{
	return items == first ? 0 :
	       sevm__fail(-EIO, "vCPU %u has state items 0x%llx, the first vCPU 0x%llx", i,
			  (unsigned long long)items, (unsigned long long)first);
}

/* vCPU 0 travels behind the GUEST section, which names the items every vCPU has. */
static int put_first_vcpu(const struct sevm__guest_desc *g, struct sevm__snap_writer *w,
			  uint64_t *items)
{
	struct sevm__buf first = { 0 };
	struct sevm__snap_writer w0;
	int err;

	sevm__snap_sections(&w0, &first);
	err = sevm__vcpu_capture(g->caps, g->vcpu_fds[0], 0, &w0, items);
	if (!err)
		err = sevm__guest_put_header(g, *items, w);
	if (!err) {
		void *p = sevm__buf_grow(w->buf, first.len);

		if (!p)
			err = sevm__fail(-ENOMEM, "guest state");
		else
			memcpy(p, first.data, first.len);
		w->nr_sections += w0.nr_sections;
		w->payload_bytes += w0.payload_bytes;
	}
	sevm__buf_free(&first);
	return err;
}

int sevm__guest_capture_vcpus(const struct sevm__guest_desc *g, struct sevm__snap_writer *w,
			      int (*flush)(void *ctx), void *ctx)
{
	uint64_t items0, items;
	int err;

	if (!g->nr_vcpus)
		return sevm__fail(-EINVAL, "guest state: no vCPUs");
	err = put_first_vcpu(g, w, &items0);
	if (!err && flush)
		err = flush(ctx);
	for (unsigned int i = 1; !err && i < g->nr_vcpus; i++) {
		err = sevm__vcpu_capture(g->caps, g->vcpu_fds[i], i, w, &items);
		if (!err)
			err = sevm__guest_same_items(i, items, items0);
		if (!err && flush)
			err = flush(ctx);
	}
	return err;
}

int sevm__guest_rx_init(struct sevm__guest_rx *rx, const struct sevm__guest_desc *g)
{
	memset(rx, 0, sizeof(*rx));
	rx->g = *g;
	sevm__snap_reader_sections(&rx->r, NULL, 0);
	rx->restored = calloc(g->nr_vcpus ? g->nr_vcpus : 1, sizeof(*rx->restored));
	rx->img = calloc(g->nr_vcpus ? g->nr_vcpus : 1, sizeof(*rx->img));
	if (rx->restored && rx->img)
		return 0;
	sevm__guest_rx_free(rx);
	return sevm__fail(-ENOMEM, "vCPU images");
}

void sevm__guest_rx_free(struct sevm__guest_rx *rx)
{
	free(rx->restored);
	free(rx->img);
	rx->restored = NULL;
	rx->img = NULL;
}

static int take_guest(struct sevm__guest_rx *rx, const struct sevm__sect *s)
{
	const struct sevm__guest_desc *d = &rx->g;
	struct sevm__sect_guest g;

	if (rx->have_guest || s->len != sizeof(g))
		return sevm__fail(-SEVM_ERR_FORMAT, "GUEST section repeated or of %llu bytes",
				  (unsigned long long)s->len);
	memcpy(&g, s->data, sizeof(g));
	if (g.nr_vcpus != d->nr_vcpus || g.vm_type != d->vm_type || g.flags != d->flags)
		return sevm__fail(-SEVM_ERR_FORMAT, "state is for %u vCPUs, VM type %u, flags 0x%x; "
				  "this guest has %u, %u, 0x%x", g.nr_vcpus, g.vm_type, g.flags,
				  d->nr_vcpus, d->vm_type, d->flags);
	if (!g.vcpu_items || g.reserved)
		return sevm__fail(-SEVM_ERR_FORMAT, "GUEST section names no vCPU state");
	rx->expected = g.vcpu_items;
	rx->have_guest = true;
	return 0;
}

/* Restore every vCPU whose sections are all in. */
static int restore_complete(struct sevm__guest_rx *rx)
{
	for (unsigned int i = 0; i < rx->g.nr_vcpus; i++) {
		struct sevm__vcpu_image *img = &rx->img[i];
		int err;

		if (rx->restored[i] || !img->items)
			continue;
		if (img->items != rx->expected)
			return sevm__fail(-SEVM_ERR_FORMAT, "vCPU %u: state items 0x%llx, expected 0x%llx "
					  "in one message", i, (unsigned long long)img->items,
					  (unsigned long long)rx->expected);
		img->preset = rx->presets ? &rx->presets[i] : NULL;
		err = rx->pool ? sevm__restore_pool_add(rx->pool, i, img, rx->expected) :
				 sevm__vcpu_restore(rx->g.caps, rx->g.vcpu_fds[i], i, img, rx->expected);
		if (err)
			return err;
		rx->restored[i] = true;
		rx->nr_restored++;
		memset(img, 0, sizeof(*img));
	}
	return 0;
}

static int take_section(struct sevm__guest_rx *rx, const struct sevm__sect *s)
{
	int err;

	if (s->id == SEVM_SECT_GUEST)
		return take_guest(rx, s);
	if (!rx->have_guest)
		return sevm__fail(-SEVM_ERR_FORMAT, "section 0x%x before GUEST", s->id);
	if (s->id >= SEVM_SECT_CPUID && s->id <= SEVM_SECT_NESTED) {
		if (s->instance >= rx->g.nr_vcpus || rx->restored[s->instance])
			return sevm__fail(-SEVM_ERR_FORMAT, "section 0x%x for vCPU %u, which is %s",
					  s->id, s->instance, s->instance >= rx->g.nr_vcpus ?
					  "not in this guest" : "restored already");
		return sevm__vcpu_image_add(&rx->img[s->instance], s);
	}
	switch (s->id) {
	case SEVM_SECT_VM_CLOCK:
	case SEVM_SECT_IRQCHIP:
	case SEVM_SECT_PIT2:
		/* A reader of the whole state at once gets here with the vCPUs complete. */
		err = restore_complete(rx);
		if (err)
			return err;
		if (rx->nr_restored != rx->g.nr_vcpus)
			return sevm__fail(-SEVM_ERR_FORMAT, "VM state before every vCPU's");
		err = rx->pool ? sevm__restore_pool_wait(rx->pool) : 0;
		return err ? err : sevm__vm_restore_section(rx->g.vm_fd, s);
	case SEVM_SECT_PRIVATE:
	case SEVM_SECT_VMM:
		return rx->other ? rx->other(rx->ctx, s) : sevm__snap_unknown(s);
	case SEVM_SECT_END:
		if (rx->nr_restored != rx->g.nr_vcpus)
			return sevm__fail(-SEVM_ERR_FORMAT, "END after %u of %u vCPUs",
					  rx->nr_restored, rx->g.nr_vcpus);
		return rx->pool ? sevm__restore_pool_wait(rx->pool) : 0;
	default:
		return sevm__snap_unknown(s);
	}
}

/* One reader across calls, so END can check the counts of the whole state. */
int sevm__guest_rx_apply(struct sevm__guest_rx *rx, const void *data, size_t len)
{
	struct sevm__sect s;
	int err;

	rx->r.p = data;
	rx->r.len = len;
	rx->r.off = 0;
	while ((err = sevm__snap_next(&rx->r, &s)) == 1) {
		err = take_section(rx, &s);
		if (err)
			return err;
	}
	return err ? err : restore_complete(rx);
}
