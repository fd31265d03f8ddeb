/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one place the library reaches the kernel: every open, ioctl and close
 * on KVM and /dev/sev fds and every sendmsg/recvmsg on a handoff socket.
 * A backend (the SEV model, a fault injector) plugs in here.
 *
 * Each call returns its result or a negative errno, retries EINTR (except
 * where EINTR is the answer, KVM_RUN), and on failure records a message that
 * names the call.
 */
#ifndef SEVM_CORE_SEAM_H
#define SEVM_CORE_SEAM_H

#include <sys/socket.h>

/* Opens with O_CLOEXEC added. */
int sevm__open(const char *path, int flags);
int sevm__ioctl(int fd, unsigned long request, void *arg);
/* Closes fd if it is >= 0; the descriptor is gone whatever the result. */
void sevm__close(int fd);
ssize_t sevm__sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t sevm__recvmsg(int fd, struct msghdr *msg, int flags);

/*
 * The same calls without the failure message: for calls whose failure is an
 * answer (a device or capability absent), not an error.
 */
int sevm__open_quiet(const char *path, int flags);
int sevm__ioctl_quiet(int fd, unsigned long request, void *arg);

#endif
