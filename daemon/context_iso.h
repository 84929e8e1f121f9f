/* context_iso.h: the context disk, an ISO 9660 image (Rock Ridge + Joliet, volume label
 * "cidata") built in-process with libisofs. */
#pragma once
#include <stdatomic.h>

#include "context.h"

/* Writes the files as an ISO image at path (temp file, fsync, rename; mode 0600: user-data
 * often holds tokens). The temp file is removed on every failure. abort (may be NULL) stops it
 * between blocks. 0, or -errno with e. */
int context_iso_write(const char *path, const struct context_files *cf, atomic_bool *abort, struct hv_error *e);
