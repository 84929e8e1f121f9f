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
        int r = hv_pwrite_all(w->fd, p, len, off);
        if (r < 0)
                return hv_fail_errno(e, HV_E_ERRNO, -r, "writing the image at byte %llu", (unsigned long long)off);
        return 0;
}

/* One run of data at a block-aligned offset; its length is whole blocks except at the end. */
static int write_run(struct sparse_writer *w, const uint8_t *p, size_t len, uint64_t off, struct hv_error *e) {
        if (len == 0)
                return 0;
        w->data_bytes += len;
        if (w->direct && len % SPARSE_BLOCK) {
                /* only the image's last block can be partial: finish without O_DIRECT */
                int fl = fcntl(w->fd, F_GETFL);
                if (fl < 0 || fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) < 0)
                        return hv_fail_errno(e, HV_E_ERRNO, errno, "clearing O_DIRECT for the image's tail");
                w->direct = false;
        }
        if (!w->direct || (uintptr_t)p % SPARSE_BLOCK == 0)
                return write_at(w, p, len, off, e);
        if (!w->bounce && posix_memalign((void **)&w->bounce, SPARSE_BLOCK, SPARSE_BOUNCE) != 0) {
                w->bounce = NULL;
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        }
        for (size_t done = 0; done < len;) {
                size_t n = len - done < SPARSE_BOUNCE ? len - done : SPARSE_BOUNCE;
                memcpy(w->bounce, p + done, n);
                int r = write_at(w, w->bounce, n, off + done, e);
                if (r < 0)
                        return r;
                done += n;
        }
        return 0;
}

/* Whole blocks at block-aligned offset off: runs of non-zero blocks go out in one write each. */
static int put_blocks(struct sparse_writer *w, const uint8_t *buf, size_t len, uint64_t off, struct hv_error *e) {
        size_t run_start = 0;
        bool in_run = false;
        for (size_t i = 0; i < len; i += SPARSE_BLOCK) {
                bool zero = sparse_is_zero(buf + i, SPARSE_BLOCK);
                if (!zero && !in_run) {
                        run_start = i;
                        in_run = true;
                } else if (zero && in_run) {
                        int r = write_run(w, buf + run_start, i - run_start, off + run_start, e);
                        if (r < 0)
                                return r;
                        in_run = false;
                }
        }
        return in_run ? write_run(w, buf + run_start, len - run_start, off + run_start, e) : 0;
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
                        if ((r = put_blocks(w, w->blk, SPARSE_BLOCK, w->off + i - SPARSE_BLOCK, e)) < 0)
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
        if (w->blk_len && !sparse_is_zero(w->blk, w->blk_len)) {
                int r = write_run(w, w->blk, w->blk_len, w->off - w->blk_len, e);
                if (r < 0)
                        return r;
        }
        w->blk_len = 0;
        if (ftruncate(w->fd, (off_t)w->off) < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "setting the image size to %llu bytes", (unsigned long long)w->off);
        return 0;
}
