/* errors.h: the one mapping from internal error kinds (util.h) to D-Bus error names (names.h,
 * shared/API.md). Nothing else in the daemon spells an error name. */
#pragma once
#include "util.h"

/* The D-Bus error name for an error record: its kind, else its errno. */
const char *hv_error_name(const struct hv_error *e);
