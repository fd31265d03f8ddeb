/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "testutil.h"
#include "tu-sevsim.h"

struct sevsim *tu_sim;

void tu_sim_up(const struct sevsim_host_opts *o)
{
	ck_assert_int_eq(sevsim_host_create(o, &tu_sim), 0);
	ck_assert_int_eq(sevsim_install(tu_sim), 0);
}

void tu_sim_default(void)
{
	tu_sim_up(NULL);
}

void tu_sim_down(void)
{
	sevsim_free(tu_sim);
	tu_sim = NULL;
}

void tu_sim_with(const struct sevsim_host_opts *o)
{
	tu_sim_down();
	tu_sim_up(o);
}
