/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest and the channel, as both drivers take them from their options. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "migrate.h"

int sevm__side_init(struct sevm__side *d, const struct sevm_migrate_opts *o)
{
	int err;

	memset(d, 0, sizeof(*d));
	d->vm_fd = o->vm_fd;
	d->nr_vcpus = o->nr_vcpus;
	d->sev_type = o->sev_type;
	d->vcpu_fds = malloc(o->nr_vcpus * sizeof(int));
	if (!d->vcpu_fds)
		return sevm__fail(-ENOMEM, "%u vCPU fds", o->nr_vcpus);
	memcpy(d->vcpu_fds, o->vcpu_fds, o->nr_vcpus * sizeof(int));
	err = sevm__mio_init(&d->io, o->fd, o->io, o->timeout_ms);
	return err ? err : sevm__memmap_init(&d->map, o->regions, o->nr_regions);
}

void sevm__side_free(struct sevm__side *d)
{
	sevm__memmap_free(&d->map);
	free(d->vcpu_fds);
	d->vcpu_fds = NULL;
}
