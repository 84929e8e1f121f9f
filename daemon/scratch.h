/* scratch.h: V2 scratch disks: sizing (pure) and in-process formatting with libext2fs. */
#pragma once
#include "conf.h"
#include "util.h"

#define SCRATCH_LABEL "scratch"
#define SCRATCH_MIN_SIZE (32ULL << 20)

enum scratch_alloc { SCRATCH_SPARSE, SCRATCH_FALLOCATE };

struct scratch_opts {
        const char *fs;            /* ext4, ext3, ext2 */
        uint64_t bytes_per_inode;  /* ScratchBytesPerInode */
        enum scratch_alloc alloc;
};


/* Creates a new file at path (which must not exist) of size bytes, sparse or fallocated, and
 * formats it with the label "scratch" and a fresh UUID (returned as text in uuid, 37 bytes).
 * On failure the file is removed. Formatting is serialised process-wide (libext2fs is not
 * thread-safe). */
int scratch_create(const char *path, uint64_t size, const struct scratch_opts *o, char *uuid, struct hv_error *e);

/* Formats an existing file or device. zeroed: the target is known to read as zeros (a fresh
 * sparse or fallocated file, or a device after a zeroing discard), so inode tables and the
 * journal need not be written. */
int scratch_format(const char *path, uint64_t size, const struct scratch_opts *o, bool zeroed, char *uuid,
                   struct hv_error *e);

/* Block devices ([Machine] ScratchDevices=). Checks with libudev and libblkid that devnode is a
 * free disk or partition: not mounted, not swap, no holders, no partitions, no signature other
 * than an hvwgd scratch filesystem whose UUID is in our_uuids. Returns its size in *ret_size. */
/* hvwgd --format-scratch: formats PATH (a file of SIZE, or a blank block device) as CreateMachine
 * does and prints its UUID; the exit code. */
int scratch_format_cli(const struct hv_conf *c, const char *path, const char *size_s, const char *fs, const char *alloc);
int scratch_check_device(const char *devnode, const char *const *our_uuids, size_t n_uuids, uint64_t *ret_size,
                         struct hv_error *e);
/* Picks the smallest free device of at least min_size among the glob patterns, never one already
 * claimed in this process, and claims it. */
int scratch_claim_device(const char *const *patterns, size_t n_patterns, uint64_t min_size, const char *const *our_uuids,
                         size_t n_uuids, char *ret_path, size_t len, struct hv_error *e);
void scratch_release_device(const char *path);
