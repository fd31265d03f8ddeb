/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Getting the two VMMs connected: a socket path, or a socket the VMM has. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../core/error.h"
#include "handoff.h"

static int unix_addr(const char *path, struct sockaddr_un *a)
{
	if (!path || !*path || strlen(path) >= sizeof(a->sun_path))
		return sevm__fail(-EINVAL, "socket path %s", path && *path ? "too long" : "missing");
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	strcpy(a->sun_path, path);
	return 0;
}

int sevm_handoff_listen(const char *path)
{
	struct sockaddr_un a;
	struct stat st;
	int fd, err = unix_addr(path, &a);

	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sevm__fail(-errno, "socket");
	/* Replace a stale socket left by an earlier receiver, never another kind of file. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1) < 0) {
		err = sevm__fail(-errno, "listen on %s", path);
		close(fd);
		return err;
	}
	return fd;
}

int sevm_handoff_connect(const char *path, const struct sevm_handoff_opts *opts,
			 struct sevm_handoff **out)
{
	struct sockaddr_un a;
	int fd, err = sevm__handoff_check_args(opts, out, "sevm_handoff_connect");

	if (!err)
		err = unix_addr(path, &a);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sevm__fail(-errno, "socket");
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		err = sevm__fail(-errno, "connect to %s", path);
		close(fd);
		return err;
	}
	err = sevm_handoff_from_fd(fd, true, opts, out);
	if (err)
		close(fd);
	return err;
}

int sevm_handoff_accept(int listen_fd, const struct sevm_handoff_opts *opts,
			struct sevm_handoff **out)
{
	struct pollfd p = { .fd = listen_fd, .events = POLLIN };
	int fd, err = sevm__handoff_check_args(opts, out, "sevm_handoff_accept");

	if (err)
		return err;
	do
		err = poll(&p, 1, sevm__handoff_opts(opts).timeout_ms);
	while (err < 0 && errno == EINTR);
	if (err <= 0)
		return sevm__fail(err ? -errno : -ETIMEDOUT, "waiting for a sender to connect");
	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return sevm__fail(-errno, "accept");
	err = sevm_handoff_from_fd(fd, false, opts, out);
	if (err)
		close(fd);
	return err;
}
