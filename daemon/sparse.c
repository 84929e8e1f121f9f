/* sparse.c: the zero-block-skipping writer of decompressed images. */
#define _GNU_SOURCE
#include "sparse.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

void sparse_init(struct sparse_writer *w, int fd) {
        memset(w, 0, sizeof(*w));
        w->fd = fd;
        int fl = fcntl(fd, F_GETFL);
        w->direct = fl >= 0 && (fl & O_DIRECT);
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

static int flush_run(struct sparse_writer *w, const uint8_t *p, size_t len, uint64_t off, struct hv_error *e) {
        if (len == 0)
                return 0;
        if (w->direct && (len % SPARSE_BLOCK || off % SPARSE_BLOCK || (uintptr_t)p % SPARSE_BLOCK)) {
                /* only the image's last block can be partial: finish without O_DIRECT */
                int fl = fcntl(w->fd, F_GETFL);
                if (fl < 0 || fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) < 0)
                        return hv_fail_errno(e, HV_E_ERRNO, errno, "clearing O_DIRECT for the image's tail");
                w->direct = false;
        }
        int r = hv_pwrite_all(w->fd, p, len, off);
        if (r < 0)
                return hv_fail_errno(e, HV_E_ERRNO, -r, "writing the image at byte %llu", (unsigned long long)off);
        w->data_bytes += len;
        return 0;
}

int sparse_append(struct sparse_writer *w, const uint8_t *buf, size_t len, struct hv_error *e) {
        size_t run_start = 0, i = 0;
        bool in_run = false;
        /* Blocks are aligned to the file offset so holes fall on filesystem block boundaries. */
        while (i < len) {
                uint64_t pos = w->off + i;
                size_t blk = SPARSE_BLOCK - (size_t)(pos % SPARSE_BLOCK);
                if (blk > len - i)
                        blk = len - i;
                bool zero = sparse_is_zero(buf + i, blk);
                if (!zero && !in_run) {
                        run_start = i;
                        in_run = true;
                } else if (zero && in_run) {
                        int r = flush_run(w, buf + run_start, i - run_start, w->off + run_start, e);
                        if (r < 0)
                                return r;
                        in_run = false;
                }
                i += blk;
        }
        if (in_run) {
                int r = flush_run(w, buf + run_start, len - run_start, w->off + run_start, e);
                if (r < 0)
                        return r;
        }
        w->off += len;
        return 0;
}

int sparse_finish(struct sparse_writer *w, struct hv_error *e) {
        if (ftruncate(w->fd, (off_t)w->off) < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "setting the image size to %llu bytes", (unsigned long long)w->off);
        return 0;
}
