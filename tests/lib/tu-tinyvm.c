/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "testutil.h"
#include "tu-tinyvm.h"

/* The vCPU count, read once: every loop below covers the same vCPUs. */
static unsigned int vcpus(const struct tinyvm *vm)
{
	return vm->nr_vcpus < TINYVM_MAX_VCPUS ? vm->nr_vcpus : TINYVM_MAX_VCPUS;
}

static bool all_beat(const struct tinyvm *vm, unsigned int nr, const uint64_t *before,
		     unsigned int n)
{
	for (unsigned int i = 0; i < nr; i++)
		if (tinyvm_heartbeats(vm, i) < before[i] + n)
			return false;
	return true;
}

bool tu_beats_advance(const struct tinyvm *vm, unsigned int n)
{
	uint64_t before[TINYVM_MAX_VCPUS];
	unsigned int nr = vcpus(vm);

	for (unsigned int i = 0; i < nr; i++)
		before[i] = tinyvm_heartbeats(vm, i);
	for (int tries = 0; tries < 2500; tries++) {
		if (all_beat(vm, nr, before, n))
			return true;
		tu_sleep_ms(2);
	}
	return all_beat(vm, nr, before, n);
}

bool tu_runs(const struct tinyvm *vm, unsigned int n)
{
	return tu_beats_advance(vm, n) && tinyvm_total_errors(vm) == 0;
}

bool tu_stays_paused(const struct tinyvm *vm)
{
	uint64_t before[TINYVM_MAX_VCPUS];
	unsigned int nr = vcpus(vm);

	for (unsigned int i = 0; i < nr; i++)
		before[i] = tinyvm_heartbeats(vm, i);
	tu_sleep_ms(50);
	for (unsigned int i = 0; i < nr; i++)
		if (tinyvm_heartbeats(vm, i) != before[i])
			return false;
	return true;
}
