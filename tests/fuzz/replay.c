/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Replays inputs through a harness in the normal build, as a regression
 * test: every file in the directories (or the files) named on the command
 * line, in name order.  The corpus and every past crash run this way; a
 * crash aborts the run, so reaching the end means none.  Files whose name
 * starts with '.' or "README" are not inputs.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p = NULL;
	size_t n = 0, cap = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (n == cap) {
			uint8_t *q = realloc(p, cap = cap ? 2 * cap : 4096);

			if (!q) {
				free(p);
				fclose(f);
				return -ENOMEM;
			}
			p = q;
		}
		size_t got = fread(p + n, 1, cap - n, f);

		if (!got)
			break;
		n += got;
	}
	fclose(f);
	/* Exactly the input's size, so a read past its end is caught under ASan. */
	*out = fuzz_copy(p, n);
	free(p);
	*len = n;
	return 0;
}

static int run_one(const char *path)
{
	uint8_t *p = NULL;
	size_t len = 0;
	int err = read_file(path, &p, &len);

	if (err) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(-err));
		return err;
	}
	LLVMFuzzerTestOneInput(p, len);
	free(p);
	return 0;
}

static bool is_input(const char *name)
{
	return name[0] != '.' && strncmp(name, "README", 6);
}

/* Runs every input in dir; the count, or -errno. */
static int run_dir(const char *dir)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort), count = 0, err = 0;

	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		if (!err && is_input(ents[i]->d_name) && stat(path, &st) == 0 &&
		    S_ISREG(st.st_mode)) {
			err = run_one(path);
			count++;
		}
		free(ents[i]);
	}
	free(ents);
	return err ? err : count;
}

int main(int argc, char **argv)
{
	unsigned int total = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int n;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode))
			n = run_dir(argv[i]);
		else
			n = run_one(argv[i]) ? -1 : 1;
		if (n < 0)
			return 1;
		total += (unsigned int)n;
	}
	printf("replay: %u inputs, 0 crashes\n", total);
	return 0;
}
