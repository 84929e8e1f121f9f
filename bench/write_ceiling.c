/* The disk's side of the import benchmark's ceiling: writes the data of a sparse file's layout
 * (every data range SEEK_DATA/SEEK_HOLE find in LIKE, at the same offsets) to a new file in DIR
 * the way hvwgd's writer does — O_DIRECT, 1 MiB pwrites, one thread — then fsyncs it; nothing
 * is decoded or hashed. The data is a non-zero pattern (a host that skips zero writes would
 * flatter zeros). Prints seconds in all, in the writes and in the fsync, and bytes written; the
 * file is removed. On a VM disk with a write-back cache the fsync is the host writing back.
 * usage: write_ceiling DIR LIKE */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1u << 20)

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
        if (argc != 3)
                return fprintf(stderr, "usage: write_ceiling DIR LIKE\n"), 2;
        int like = open(argv[2], O_RDONLY | O_CLOEXEC);
        if (like < 0)
                return perror(argv[2]), 1;
        char path[4096];
        snprintf(path, sizeof(path), "%s/write-ceiling.XXXXXX", argv[1]);
        int fd = mkostemp(path, O_CLOEXEC | O_DIRECT);
        if (fd < 0)
                return perror(path), 1;
        uint8_t *buf;
        if (posix_memalign((void **)&buf, 4096, CHUNK) != 0)
                return unlink(path), 1;
        uint64_t x = 0x9e3779b97f4a7c15ull; /* xorshift: cheap, never all zero */
        for (size_t i = 0; i < CHUNK; i += 8) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                memcpy(buf + i, &x, 8);
        }
        off_t end = lseek(like, 0, SEEK_END);
        uint64_t bytes = 0;
        int rc = 0;
        double t0 = now();
        for (off_t d = lseek(like, 0, SEEK_DATA); d >= 0 && d < end; d = lseek(like, d, SEEK_DATA)) {
                off_t h = lseek(like, d, SEEK_HOLE);
                if (h < 0)
                        break;
                while (d < h) {
                        size_t n = h - d < CHUNK ? (size_t)(h - d) : CHUNK;
                        if (n % 4096) { /* only a file's tail: O_DIRECT needs whole blocks */
                                int fl = fcntl(fd, F_GETFL);
                                (void)fcntl(fd, F_SETFL, fl & ~O_DIRECT);
                        }
                        ssize_t w = pwrite(fd, buf, n, d);
                        if (w <= 0) {
                                perror("pwrite");
                                rc = 1;
                                goto out;
                        }
                        d += w;
                        bytes += (uint64_t)w;
                }
        }
        if (ftruncate(fd, end) < 0) {
                perror("ftruncate");
                rc = 1;
                goto out;
        }
        double t1 = now();
        if (fsync(fd) < 0) {
                perror("fsync");
                rc = 1;
                goto out;
        }
        double t2 = now();
        printf("%.3f %.3f %.3f %llu\n", t2 - t0, t1 - t0, t2 - t1, (unsigned long long)bytes);
out:
        unlink(path);
        return rc;
}
