/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by the test programs that play their VMMs with tinyvm
 * (examples/tinyvm.h): whether its guest runs.  Kept out of testutil, which
 * the programs without tinyvm link too.
 */
#ifndef SEVM_TU_TINYVM_H
#define SEVM_TU_TINYVM_H

#include <stdbool.h>

#include "tinyvm.h"

/* Every vCPU beats at least n more times; false after 5 s. */
bool tu_beats_advance(const struct tinyvm *vm, unsigned int n);
/* The same, and no beat was ever wrong. */
bool tu_runs(const struct tinyvm *vm, unsigned int n);
/* A paused guest stays paused: no vCPU beats for 50 ms. */
bool tu_stays_paused(const struct tinyvm *vm);

#endif
