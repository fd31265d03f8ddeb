/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by the test programs on the SEV model (sim/): the model's host they
 * run on, installed at the library's seam.  Kept out of testutil, which the
 * programs without the model link too.
 */
#ifndef SEVM_TU_SEVSIM_H
#define SEVM_TU_SEVSIM_H

#include "sevsim.h"

/* The host installed now; NULL between tu_sim_down() and tu_sim_up(). */
extern struct sevsim *tu_sim;

/* A new host with these options (NULL: the defaults), installed. */
void tu_sim_up(const struct sevsim_host_opts *o);
/* tu_sim_up(NULL), as a Check fixture's setup. */
void tu_sim_default(void);
void tu_sim_down(void);
/* Replace the host with one of these options. */
void tu_sim_with(const struct sevsim_host_opts *o);

#endif
