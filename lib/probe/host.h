/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Facts about the host and this process that no ioctl gives. */
#ifndef SEVM_PROBE_HOST_H
#define SEVM_PROBE_HOST_H

#include "sevmigrate.h"

void sevm__probe_kvm_amd(struct sevm_probe_report *r);
void sevm__probe_cgroup(struct sevm_probe_report *r);
void sevm__probe_privilege(struct sevm_probe_report *r);

#endif
