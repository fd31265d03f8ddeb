/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "error.h"
#include "opts.h"

int sevm__opts_check(const void *opts, size_t known, const char *what)
{
	size_t sz;

	if (!opts)
		return sevm__fail(-EINVAL, "%s: NULL struct", what);
	memcpy(&sz, opts, sizeof(sz));
	if (sz < sizeof(size_t))
		return sevm__fail(-EINVAL, "%s: sz is %zu, set it to sizeof the struct", what, sz);
	for (size_t i = known; i < sz; i++)
		if (((const unsigned char *)opts)[i])
			return sevm__fail(-E2BIG, "%s: byte %zu of a %zu-byte struct is set, "
					  "but this library knows only %zu bytes", what, i, sz, known);
	return 0;
}

void sevm__report_out(void *dst, const void *src, size_t known)
{
	size_t sz;

	memcpy(&sz, dst, sizeof(sz));
	memset(dst, 0, sz);
	memcpy(dst, src, sz < known ? sz : known);
	memcpy(dst, &sz, sizeof(sz));
}
