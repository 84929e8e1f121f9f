/* sparse.h: appends data to a file, leaving holes where whole 4 KiB blocks are zero. */
#pragma once
#include "util.h"

#define SPARSE_BLOCK 4096

struct sparse_writer {
        int fd;
        bool direct;         /* fd has O_DIRECT: writes must be block-aligned (the tail is not) */
        uint64_t off;        /* logical end of what was appended */
        uint64_t data_bytes; /* bytes actually written (non-zero blocks) */
        uint64_t write_usec; /* time spent in pwrite (for the log) */
        uint8_t *blk;        /* the block w->off is inside: its first blk_len bytes, not yet written */
        size_t blk_len;
        uint8_t *bounce;     /* aligned copies of data whose memory is not aligned like its offset */
        size_t bounce_len;   /* a run of blocks from bounce_off, not yet written */
        uint64_t bounce_off;
};

/* fd may have O_DIRECT set: buffers of any size and alignment keep it (copied where they must
 * be); only the image's last partial block is written without it. */
void sparse_init(struct sparse_writer *w, int fd);
/* Frees the writer's buffers (sparse_init again to reuse it). */
void sparse_done(struct sparse_writer *w);
/* True when all len bytes are zero. */
bool sparse_is_zero(const uint8_t *p, size_t len);
/* Appends buf. Runs of non-zero blocks go out in one pwrite; zero blocks are skipped (the file
 * was empty, so they read back as zeros); a block buf ends inside is written with the next. */
int sparse_append(struct sparse_writer *w, const uint8_t *buf, size_t len, struct hv_error *e);
/* Writes the last partial block, sets the file size to the logical end (the tail may be a hole). */
int sparse_finish(struct sparse_writer *w, struct hv_error *e);
