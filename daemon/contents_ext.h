/* contents_ext.h: an image's contents read from its ext2/3/4 partitions (libext2fs, read-only,
 * no mount). Worker threads only: it reads the file. */
#pragma once
#include "contents.h"

/* What the raw image at path holds, partition by partition (t: its inspected table). Never
 * fails: what cannot be read is a note in c->parts. */
void contents_scan(const char *path, const struct mbr_table *t, struct contents *c);
