/* lint_cli.h: `hvwgd --lint FILE`: the contents and findings of an image file (raw or gzip),
 * without a daemon. */
#pragma once
#include <stdint.h>

/* Prints the findings; 0, or 1 when there is an error (max_size bounds a gzip's output). */
int lint_cli(const char *file, uint64_t max_size);
