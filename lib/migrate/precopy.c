/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pre-copy: send every page while the guest runs, then what it wrote
 * meanwhile, until what is left is small enough to send paused.
 */
#include <errno.h>

#include "../core/error.h"
#include "../core/opts.h"
#include "../sev/cmd.h"
#include "migrate.h"

#define PAGE		4096u
#define MAX_PASSES	30
#define STOP_PAGES	256

/*
 * Without KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_GET_DIRTY_LOG clears what
 * it returns, and a KVM_CLEAR_DIRTY_LOG after it would succeed too — and
 * clear a page the guest wrote again in between, losing that write.  The
 * kernel cannot be asked which mode a VM is in, so the VMM says.
 */
static int read_region(struct sevm_send *s, struct sevm_bitmap *b, const struct sevm_region *r,
		       bool final)
{
	uint64_t gfn = r->guest_phys_addr / PAGE, n = r->size / PAGE;

	if (!(r->flags & SEVM_REGION_LOG_DIRTY))
		return final ? sevm_bitmap_set(b, gfn, n) : 0;
	return sevm_bitmap_add_dirty_log(b, s->d.vm_fd, r->slot, gfn, n, s->dirty_clear);
}

int sevm__send_read_dirty(struct sevm_send *s, struct sevm_bitmap *b, bool final)
{
	for (unsigned int i = 0; i < s->d.map.nr; i++) {
		int err = read_region(s, b, &s->d.map.regions[i], final);

		if (err)
			return sevm__context(err, "dirty log");
	}
	return 0;
}

static bool logs_dirty(const struct sevm_send *s)
{
	for (unsigned int i = 0; i < s->d.map.nr; i++)
		if (s->d.map.regions[i].flags & SEVM_REGION_LOG_DIRTY)
			return true;
	return false;
}

static int64_t all_set(const struct sevm_send *s, const struct sevm_bitmap *b)
{
	int64_t total = 0;

	for (unsigned int i = 0; i < s->d.map.nr; i++) {
		int64_t n = sevm_bitmap_count(b, s->d.map.ranges[i].gfn, s->d.map.ranges[i].npages);

		if (n < 0)
			return n;
		total += n;
	}
	return total;
}

int64_t sevm_send_dirty(struct sevm_send *s, struct sevm_bitmap *dirty)
{
	int err;

	if (!s || !dirty)
		return sevm__fail(-EINVAL, "sevm_send_dirty: no handle or no bitmap");
	err = sevm__send_read_dirty(s, dirty, false);
	return err ? err : all_set(s, dirty);
}

static int clear_all(struct sevm_send *s, struct sevm_bitmap *b)
{
	for (unsigned int i = 0; i < s->d.map.nr; i++) {
		int err = sevm_bitmap_clear(b, s->d.map.ranges[i].gfn, s->d.map.ranges[i].npages);

		if (err)
			return err;
	}
	return 0;
}

/* Send `pages` (NULL: all), close the pass with the dirty count it left. */
static int pass(struct sevm_send *s, const struct sevm_bitmap *pages, int64_t *dirty,
		uint32_t *fw_error)
{
	int err = sevm__send_set(s, pages, fw_error);

	if (!err)
		err = clear_all(s, s->dirty);
	if (!err)
		err = sevm__stream_put_iteration(&s->w);
	if (!err)
		err = sevm__send_flush(s);
	if (!err)
		err = sevm__send_read_dirty(s, s->dirty, false);
	*dirty = err ? 0 : all_set(s, s->dirty);
	if (!err && *dirty < 0)
		err = (int)*dirty;
	s->passes.cur.dirty_pages = err ? 0 : (uint64_t)*dirty;
	return err ? err : sevm__pass_end(&s->passes, s->d.io.bytes);
}

int sevm_send_precopy(struct sevm_send *s, const struct sevm_precopy_opts *opts,
		      uint32_t *fw_error)
{
	struct sevm_precopy_opts o = { 0 };
	unsigned int passes = 0;
	int64_t dirty = 0, before;
	int err;

	sevm__fw_zero(fw_error);
	if (!s)
		return sevm__fail(-EINVAL, "sevm_send_precopy: no handle");
	if (opts) {
		err = SEVM_OPTS_CHECK(opts, "sevm_precopy_opts");
		if (err)
			return err;
		SEVM_OPTS_IN(o, opts);
	}
	if (!o.max_passes)
		o.max_passes = MAX_PASSES;
	if (!o.stop_pages)
		o.stop_pages = STOP_PAGES;
	err = sevm__send_check_open(s, "sevm_send_precopy");
	if (err)
		return err;
	if (!logs_dirty(s)) {
		/* Nothing would tell what changed: the final pass sends it all anyway. */
		sevm__log(SEVM_LOG_INFO, "pre-copy skipped: no region logs dirty pages");
		return 0;
	}
	/* Open the window: what the guest writes from here on is caught. */
	err = sevm__send_read_dirty(s, s->dirty, false);
	if (!err)
		err = clear_all(s, s->dirty);
	s->tracking = !err;
	before = INT64_MAX;
	while (!err && passes < o.max_passes) {
		err = pass(s, passes ? s->dirty : NULL, &dirty, fw_error);
		if (err)
			break;
		passes++;
		if (o.progress && o.progress(&s->passes.v[s->passes.nr - 1], o.ctx))
			break;
		if ((uint64_t)dirty <= o.stop_pages || dirty >= before)
			break;
		before = dirty;
	}
	if (err)
		return sevm__send_failed(s, sevm__context(err, "pre-copy pass %u", passes));
	return (int)passes;
}
