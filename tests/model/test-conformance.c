/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SEV migration conformance suite (conformance.c): every case on the
 * SEV model, always; on the real kernel where this host has SEV, otherwise
 * one SKIP line per case saying why.  Check cannot skip from inside a test,
 * so the skips are decided before srunner_run_all.
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <sevmigrate.h>

#include "conformance.h"
#include "testutil.h"

static struct conf_backend model, kernel;
static unsigned int passed_model, passed_kernel;

static void model_up(void)
{
	conf_setup(&model);
}

static void model_down(void)
{
	conf_teardown(&model);
}

static void kernel_up(void)
{
	conf_setup(&kernel);
}

static void kernel_down(void)
{
	conf_teardown(&kernel);
}

START_TEST(on_model)
{
	conf_run(&model, &conf_cases[_i]);
	passed_model++;
}
END_TEST

START_TEST(on_kernel)
{
	conf_run(&kernel, &conf_cases[_i]);
	passed_kernel++;
}
END_TEST

/*
 * The fd-0 quirk makes fd 0 matter: the cases expect it open and not
 * /dev/sev, so that the first /dev/sev they open is not fd 0.
 */
static void keep_fd0_taken(void)
{
	if (fcntl(0, F_GETFD) < 0)
		open("/dev/null", O_RDONLY);
}

int main(void)
{
	Suite *s = suite_create("conformance");
	TCase *on_m = tcase_create("model"), *on_k = tcase_create("kernel");
	unsigned int skipped = 0;
	char why[320];
	int r;

	keep_fd0_taken();
	/* the probe reads the kernel: before any model is installed */
	conf_kernel_backend(&kernel);
	conf_model_backend(&model);
	tcase_add_checked_fixture(on_m, model_up, model_down);
	tcase_add_checked_fixture(on_k, kernel_up, kernel_down);
	for (unsigned int i = 0; i < conf_nr_cases; i++) {
		tcase_add_loop_test(on_m, on_model, (int)i, (int)i + 1);
		if (conf_skip_reason(&kernel, &conf_cases[i], why, sizeof(why))) {
			printf("SKIP %s on %s: %s\n", conf_cases[i].name, kernel.name, why);
			skipped++;
			continue;
		}
		tcase_add_loop_test(on_k, on_kernel, (int)i, (int)i + 1);
	}
	suite_add_tcase(s, on_m);
	suite_add_tcase(s, on_k);	/* Check frees only what a suite holds */
	fflush(stdout);
	r = tu_run(s);
	printf("conformance: %u cases passed on the model, %u on the kernel, %u skipped on the "
	       "kernel\n", passed_model, passed_kernel, skipped);
	if (conf_nr_gaps())
		printf("conformance: %u library messages vaguer than the case (GAP lines above)\n",
		       conf_nr_gaps());
	return r;
}
