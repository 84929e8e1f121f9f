/* copy.c: sparse, cancellable file copy for root disks. */
#define _GNU_SOURCE
#include "copy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "bufq.h"

#define CHUNK (64ULL << 20)
#define DIO_BUF (4u << 20)
#define DIO_BUFS 4
#define ALIGN 4096

static int copy_data(int in, int out, uint64_t size, copy_progress_fn progress, void *ud, atomic_bool *cancel,
                     uint64_t total_data, struct hv_error *e) {
        uint64_t pos = 0, done = 0;
        while (pos < size) {
                off_t data = lseek(in, (off_t)pos, SEEK_DATA);
                if (data < 0) {
                        if (errno == ENXIO)
                                break; /* only a hole is left */
                        return hv_fail_errno(e, HV_E_ERRNO, errno, "seeking data in the image");
                }
                off_t hole = lseek(in, data, SEEK_HOLE);
                if (hole < 0)
                        return hv_fail_errno(e, HV_E_ERRNO, errno, "seeking a hole in the image");
                for (off_t off = data; off < hole;) {
                        if (cancel && atomic_load(cancel))
                                return hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
                        size_t len = (size_t)((uint64_t)(hole - off) < CHUNK ? (uint64_t)(hole - off) : CHUNK);
                        loff_t a = off, b = off;
                        ssize_t n = copy_file_range(in, &a, out, &b, len, 0);
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                return hv_fail_errno(e, HV_E_ERRNO, errno, "copying the image at byte %lld", (long long)off);
                        }
                        if (n == 0)
                                return hv_fail(e, HV_E_ERRNO, EIO, "the image shrank while being copied");
                        off += n;
                        done += (uint64_t)n;
                        if (progress)
                                progress(ud, done, total_data);
                }
                pos = (uint64_t)hole;
        }
        return 0;
}

/* ---- copy with O_DIRECT writes: a reader (this thread) and a writer thread, whole 4 MiB
 * buffers ---- */

struct dio {
        int in, out;
        atomic_bool abort;
        struct bufq free_q, full_q;
        struct buf bufs[DIO_BUFS];
        int werr;          /* writer's errno */
        uint64_t werr_off;
        bool out_direct;
};

static void *dio_writer(void *arg) {
        struct dio *d = arg;
        for (;;) {
                struct buf *b;
                if (bufq_pop(&d->full_q, &b) < 0)
                        return NULL;
                if (b->len == 0) /* end marker */
                        return NULL;
                if (d->out_direct && (b->len % ALIGN)) {
                        /* only the file's last block can be partial: finish it buffered */
                        int fl = fcntl(d->out, F_GETFL);
                        if (fl < 0 || fcntl(d->out, F_SETFL, fl & ~O_DIRECT) < 0) {
                                d->werr = errno;
                                d->werr_off = b->off;
                                atomic_store(&d->abort, true);
                                return NULL;
                        }
                        d->out_direct = false;
                }
                int r = hv_pwrite_all(d->out, b->data, b->len, b->off);
                if (r < 0) {
                        d->werr = -r;
                        d->werr_off = b->off;
                        atomic_store(&d->abort, true);
                        return NULL;
                }
                if (bufq_push(&d->free_q, b) < 0)
                        return NULL;
        }
}

/* Returns 1 when it did the copy, 0 when O_DIRECT is not available (fall back), <0 on error. */
static int copy_direct(const char *src, int out, uint64_t size, copy_progress_fn progress, void *ud, atomic_bool *cancel,
                       uint64_t total_data, struct hv_error *e) {
        /* the image is read through the page cache: it is read again for every machine made
         * from it, and a warm cache serves those reads from memory */
        int in = open(src, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot open %s", src);
        (void)posix_fadvise(in, 0, 0, POSIX_FADV_SEQUENTIAL);
        int fl = fcntl(out, F_GETFL);
        if (fl < 0 || fcntl(out, F_SETFL, fl | O_DIRECT) < 0) {
                close(in);
                return 0;
        }
        struct dio *d = calloc(1, sizeof(*d));
        int r = 0;
        if (!d) {
                close(in);
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        }
        d->in = in;
        d->out = out;
        d->out_direct = true;
        bufq_init(&d->free_q, &d->abort);
        bufq_init(&d->full_q, &d->abort);
        for (unsigned i = 0; i < DIO_BUFS; i++) {
                if (posix_memalign((void **)&d->bufs[i].data, ALIGN, DIO_BUF) != 0) {
                        r = hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
                        goto out;
                }
                d->bufs[i].cap = DIO_BUF;
                bufq_push(&d->free_q, &d->bufs[i]);
        }
        pthread_t t;
        if (pthread_create(&t, NULL, dio_writer, d) != 0) {
                r = hv_fail(e, HV_E_ERRNO, EAGAIN, "cannot start the copy thread");
                goto out;
        }
        uint64_t pos = 0, done = 0;
        while (pos < size && r >= 0) {
                off_t data = lseek(in, (off_t)pos, SEEK_DATA);
                if (data < 0) {
                        if (errno != ENXIO)
                                r = hv_fail_errno(e, HV_E_ERRNO, errno, "seeking data in the image");
                        break;
                }
                off_t hole = lseek(in, data, SEEK_HOLE);
                if (hole < 0) {
                        r = hv_fail_errno(e, HV_E_ERRNO, errno, "seeking a hole in the image");
                        break;
                }
                for (uint64_t off = (uint64_t)data; off < (uint64_t)hole && r >= 0;) {
                        if (cancel && atomic_load(cancel)) {
                                r = hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
                                break;
                        }
                        struct buf *b;
                        if (bufq_pop(&d->free_q, &b) < 0) {
                                r = -ECANCELED; /* the writer failed */
                                break;
                        }
                        size_t want = (uint64_t)hole - off < DIO_BUF ? (size_t)((uint64_t)hole - off) : DIO_BUF;
                        size_t got = 0, aligned = (want + ALIGN - 1) / ALIGN * ALIGN;
                        while (got < want) {
                                ssize_t n = pread(in, b->data + got, aligned - got, (off_t)(off + got));
                                if (n < 0 && errno == EINTR)
                                        continue;
                                if (n <= 0) {
                                        r = n < 0 ? hv_fail_errno(e, HV_E_ERRNO, errno, "reading the image at byte %llu",
                                                                  (unsigned long long)(off + got))
                                                  : hv_fail(e, HV_E_ERRNO, EIO, "the image shrank while being copied");
                                        break;
                                }
                                got += (size_t)n;
                        }
                        if (r < 0)
                                break;
                        b->len = want;
                        b->off = off;
                        if (bufq_push(&d->full_q, b) < 0) {
                                r = -ECANCELED;
                                break;
                        }
                        off += want;
                        done += want;
                        if (progress)
                                progress(ud, done, total_data);
                }
                pos = (uint64_t)hole;
        }
        if (r >= 0) {
                struct buf *b;
                if (bufq_pop(&d->free_q, &b) >= 0) {
                        b->len = 0; /* end marker */
                        bufq_push(&d->full_q, b);
                }
        } else
                atomic_store(&d->abort, true);
        pthread_join(t, NULL);
        if (d->werr && (r >= 0 || r == -ECANCELED))
                r = hv_fail_errno(e, HV_E_ERRNO, d->werr, "writing the root disk at byte %llu", (unsigned long long)d->werr_off);
        else if (r == -ECANCELED && !hv_error_set(e))
                r = hv_fail(e, HV_E_ERRNO, EIO, "the copy stopped");
        if (r >= 0)
                r = 1;
out:
        for (unsigned i = 0; i < DIO_BUFS; i++)
                free(d->bufs[i].data);
        bufq_destroy(&d->free_q);
        bufq_destroy(&d->full_q);
        free(d);
        close(in);
        fl = fcntl(out, F_GETFL);
        if (fl >= 0)
                (void)fcntl(out, F_SETFL, fl & ~O_DIRECT);
        return r;
}

int copy_sparse(const char *src, const char *dst, copy_progress_fn progress, void *ud, atomic_bool *cancel, bool *ret_reflinked,
                struct hv_error *e) {
        _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot open image %s", src);
        struct stat st;
        if (fstat(in, &st) < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot stat image %s", src);
        uint64_t data = (uint64_t)st.st_blocks * 512;
        int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (out < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot create %s", dst);
        int r = 0;
        bool reflinked = ioctl(out, FICLONE, in) == 0;
        if (!reflinked) {
                struct statvfs sv;
                if (fstatvfs(out, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < data) {
                        char a[32], b[32];
                        r = hv_fail(e, HV_E_NO_SPACE, ENOSPC, "not enough space for the root disk %s: it needs %s, %s free", dst,
                                    hv_format_size(data, a, sizeof(a)), hv_format_size((uint64_t)sv.f_bavail * sv.f_frsize, b, sizeof(b)));
                } else {
                        /* O_DIRECT writes where the filesystem allows them: no page-cache copy and
                         * nothing left to flush (3x faster writes on these VMs, see README); else
                         * copy_file_range */
                        r = copy_direct(src, out, (uint64_t)st.st_size, progress, ud, cancel, data, e);
                        if (r == 0)
                                r = copy_data(in, out, (uint64_t)st.st_size, progress, ud, cancel, data, e);
                }
                if (r >= 0 && ftruncate(out, st.st_size) < 0)
                        r = hv_fail_errno(e, HV_E_ERRNO, errno, "sizing %s", dst);
        } else if (progress)
                progress(ud, data, data);
        if (r >= 0 && fsync(out) < 0)
                r = hv_fail_errno(e, HV_E_ERRNO, errno, "flushing %s", dst);
        if (close(out) < 0 && r >= 0)
                r = hv_fail_errno(e, HV_E_ERRNO, errno, "closing %s", dst);
        if (r < 0)
                unlink(dst);
        else if (ret_reflinked)
                *ret_reflinked = reflinked;
        return r;
}
