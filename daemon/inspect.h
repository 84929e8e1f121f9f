/* inspect.h: partition table + filesystem probing of a raw image file. */
#pragma once
#include "mbr.h"

/* Parses the table of the image open at fd (size bytes) and probes each partition's
 * filesystem with libblkid. A refusal fills e (BadPartitionTable / LvmNotAllowed); with no
 * table at all the message says which whole-disk filesystem was found instead, if any. */
int inspect_fd(int fd, uint64_t size, struct mbr_table *t, struct hv_error *e);
/* Probes the filesystem type in [off, off+size) of fd; buf gets "" when nothing is found. */
int inspect_probe_fs(int fd, uint64_t off, uint64_t size, char *buf, size_t len);
