/* copy.c: sparse, cancellable file copy for root disks. */
#define _GNU_SOURCE
#include "copy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define CHUNK (64ULL << 20)

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
                } else
                        r = copy_data(in, out, (uint64_t)st.st_size, progress, ud, cancel, data, e);
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
