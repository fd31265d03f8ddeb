/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A program that knows the library only through pkg-config. */
#include <stdio.h>
#include <string.h>
#include <sevmigrate.h>

int main(void)
{
	struct sevm_probe_report r = { .sz = sizeof(r) };

	if (sevm_version() != SEVM_VERSION) {
		fprintf(stderr, "header %x, library %x\n", SEVM_VERSION, sevm_version());
		return 1;
	}
	if (sevm_probe(&r)) {
		fprintf(stderr, "probe: %s\n", sevm_last_error());
		return 1;
	}
	printf("consumer: libsevmigrate %s, flavour %s\n", sevm_version_string(),
	       sevm_flavour_name(SEVM_FLAVOUR_INTRAHOST));
	return strcmp(sevm_strerror(-SEVM_ERR_PEER), "") == 0;
}
