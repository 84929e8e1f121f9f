/* sparse.c: the zero-block-skipping writer of decompressed images. Holes fall on 4 KiB blocks
 * of the file; a block a buffer ends inside waits in a staging block for the next buffer, so
 * buffers of any size keep O_DIRECT. Data whose memory is not aligned like its file offset
 * (the parallel decoder's chunks end anywhere) goes out through an aligned bounce buffer. */
#define _GNU_SOURCE
#include "sparse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define SPARSE_BOUNCE (1u << 20)

void sparse_init(struct sparse_writer *w, int fd) {
        memset(w, 0, sizeof(*w));
        w->fd = fd;
        int fl = fcntl(fd, F_GETFL);
        w->direct = fl >= 0 && (fl & O_DIRECT);
}

void sparse_done(struct sparse_writer *w) {
        free(w->blk);
        free(w->bounce);
        w->blk = w->bounce = NULL;
}

bool sparse_is_zero(const uint8_t *p, size_t len) {
        if (len == 0)
                return true;
        /* Check the first 16 bytes cheaply (most data blocks fail here), then compare the block
         * with itself shifted by 16 bytes: equal iff every byte is zero given the first 16 are. */
        size_t head = len < 16 ? len : 16;
        for (size_t i = 0; i < head; i++)
                if (p[i])
                        return false;
        return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}

static int write_at(struct sparse_writer *w, const uint8_t *p, size_t len, uint64_t off, struct hv_error *e) {
        uint64_t t0 = hv_mono_usec();
        int r = hv_pwrite_all(w->fd, p, len, off);
        w->write_usec += hv_mono_usec() - t0;
        if (r < 0)
                return hv_fail_errno(e, HV_E_ERRNO, -r, "writing the image at byte %llu", (unsigned long long)off);
        w->data_bytes += len;
        return 0;
}

static int flush_bounce(struct sparse_writer *w, struct hv_error *e) {
        int r = w->bounce_len ? write_at(w, w->bounce, w->bounce_len, w->bounce_off, e) : 0;
        w->bounce_len = 0;
        return r;
}

/* A non-zero block whose memory is not aligned like its offset: copied into the bounce buffer,
 * which goes out in one write per run of contiguous blocks (or when full). */
static int bounce_block(struct sparse_writer *w, const uint8_t *p, uint64_t off, struct hv_error *e) {
        int r;
        if (w->bounce_len && (w->bounce_off + w->bounce_len != off || w->bounce_len == SPARSE_BOUNCE) &&
            (r = flush_bounce(w, e)) < 0)
                return r;
        if (!w->bounce && posix_memalign((void **)&w->bounce, SPARSE_BLOCK, SPARSE_BOUNCE) != 0) {
                w->bounce = NULL;
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        }
        if (!w->bounce_len)
                w->bounce_off = off;
        memcpy(w->bounce + w->bounce_len, p, SPARSE_BLOCK);
        w->bounce_len += SPARSE_BLOCK;
        return 0;
}

/* Whole blocks at block-aligned offset off: runs of non-zero blocks go out in one write each
 * (through the bounce buffer when O_DIRECT cannot take buf's memory as it is). */
static int put_blocks(struct sparse_writer *w, const uint8_t *buf, size_t len, uint64_t off, struct hv_error *e) {
        bool bounce = w->direct && (uintptr_t)buf % SPARSE_BLOCK;
        size_t run_start = 0;
        bool in_run = false;
        int r;
        for (size_t i = 0; i < len; i += SPARSE_BLOCK) {
                bool zero = sparse_is_zero(buf + i, SPARSE_BLOCK);
                if (bounce) {
                        if (!zero && (r = bounce_block(w, buf + i, off + i, e)) < 0)
                                return r;
                } else if (!zero && !in_run) {
                        run_start = i;
                        in_run = true;
                } else if (zero && in_run) {
                        if ((r = write_at(w, buf + run_start, i - run_start, off + run_start, e)) < 0)
                                return r;
                        in_run = false;
                }
        }
        return in_run ? write_at(w, buf + run_start, len - run_start, off + run_start, e) : 0;
}

int sparse_append(struct sparse_writer *w, const uint8_t *buf, size_t len, struct hv_error *e) {
        /* w->blk holds the bytes from the last block boundary up to w->off */
        size_t i = 0;
        int r;
        if (!w->blk && posix_memalign((void **)&w->blk, SPARSE_BLOCK, SPARSE_BLOCK) != 0) {
                w->blk = NULL;
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        }
        if (w->blk_len) {
                i = SPARSE_BLOCK - w->blk_len < len ? SPARSE_BLOCK - w->blk_len : len;
                memcpy(w->blk + w->blk_len, buf, i);
                w->blk_len += i;
                if (w->blk_len == SPARSE_BLOCK) {
                        /* through the bounce buffer when direct: it joins the run after it */
                        uint64_t at = w->off + i - SPARSE_BLOCK;
                        if (!sparse_is_zero(w->blk, SPARSE_BLOCK) &&
                            (r = w->direct ? bounce_block(w, w->blk, at, e) : write_at(w, w->blk, SPARSE_BLOCK, at, e)) < 0)
                                return r;
                        w->blk_len = 0;
                }
        }
        size_t whole = (len - i) / SPARSE_BLOCK * SPARSE_BLOCK;
        if ((r = put_blocks(w, buf + i, whole, w->off + i, e)) < 0)
                return r;
        i += whole;
        memcpy(w->blk + w->blk_len, buf + i, len - i);
        w->blk_len += len - i;
        w->off += len;
        return 0;
}

int sparse_finish(struct sparse_writer *w, struct hv_error *e) {
        int r = flush_bounce(w, e);
        if (r < 0)
                return r;
        if (w->blk_len && !sparse_is_zero(w->blk, w->blk_len)) {
                /* only the image's last block can be partial: written without O_DIRECT */
                int fl = fcntl(w->fd, F_GETFL);
                if (w->direct && (fl < 0 || fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) < 0))
                        return hv_fail_errno(e, HV_E_ERRNO, errno, "clearing O_DIRECT for the image's tail");
                w->direct = false;
                if ((r = write_at(w, w->blk, w->blk_len, w->off - w->blk_len, e)) < 0)
                        return r;
        }
        w->blk_len = 0;
        if (ftruncate(w->fd, (off_t)w->off) < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "setting the image size to %llu bytes", (unsigned long long)w->off);
        return 0;
}
