/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "sevmigrate.h"

#define STR_(x) #x
#define STR(x) STR_(x)

unsigned int sevm_version(void)
{
	return SEVM_VERSION;
}

const char *sevm_version_string(void)
{
	return STR(SEVM_VERSION_MAJOR) "." STR(SEVM_VERSION_MINOR) "." STR(SEVM_VERSION_MICRO);
}
