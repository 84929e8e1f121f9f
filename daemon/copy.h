/* copy.h: a machine's own root disk from an image: reflink, else a sparse copy. */
#pragma once
#include <stdatomic.h>

#include "util.h"

typedef void (*copy_progress_fn)(void *userdata, uint64_t done, uint64_t total);

/* Creates dst (must not exist) as a copy of src: FICLONE where the filesystem can (instant),
 * else SEEK_DATA/SEEK_HOLE + copy_file_range, never reading holes. Removes dst on failure. */
int copy_sparse(const char *src, const char *dst, copy_progress_fn progress, void *userdata, atomic_bool *cancel,
                bool *ret_reflinked, struct hv_error *e);
