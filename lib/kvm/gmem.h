/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* guest_memfd: what kind of file an fd is, for the handoff's region checks. */
#ifndef SEVM_KVM_GMEM_H
#define SEVM_KVM_GMEM_H

#include <stdbool.h>

/*
 * A guest_memfd is an anonymous inode ("anon_inode:[kvm-gmem]" in
 * /proc/self/fd).  Linux 6.18 gives it S_IFREG and its size in st_size, so
 * fstat() alone cannot tell it from a memfd: the link name does.
 */
bool sevm__is_gmem(int fd);

#endif
