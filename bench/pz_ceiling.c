/* The parallel decoder's own speed for the import benchmark: pinflate.c on a gzip file already
 * in memory, with N threads, output counted and dropped (the rig of the unit tests and the fuzz
 * target: a reader thread handing 256 KiB buffers, the decoder, a consumer in order). No
 * SHA-512, no writes: what decoding alone costs, to set beside the single-thread ISA-L ceiling.
 * With "spec", a plain gzip file too (InflateSpeculate=yes). Prints seconds, output bytes,
 * chunks decoded side by side, chunks decoded again in order, of those side by side the ones
 * found by trial, and the output bytes the speculative decoder made (with markers).
 * usage: pz_ceiling FILE.gz THREADS [spec] */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pz_rig.h"

int main(int argc, char **argv) {
        if (argc < 3)
                return 2;
        int fd = open(argv[1], O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return perror(argv[1]), 1;
        uint8_t *in = malloc((size_t)st.st_size + 1);
        size_t got = 0;
        while (in && got < (size_t)st.st_size) {
                ssize_t n = read(fd, in + got, (size_t)st.st_size - got);
                if (n <= 0)
                        return perror("read"), 1;
                got += (size_t)n;
        }
        /* each page of the input touched once before the clock starts: on a VM with shadow paging
         * the first touch of a page costs µs, ~0.9 s for 700 MB — not decoding, and not what an
         * import pays (it reads into buffers it reuses) */
        uint8_t touch = 0;
        for (size_t i = 0; i < got; i += 4096)
                touch ^= in[i];
        __asm__ volatile("" : : "r"(touch)); /* kept: the loop is not optimised away */
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        size_t len;
        struct hv_error e = { 0 };
        struct pz_io stats;
        bool spec = argc > 3 && strcmp(argv[3], "spec") == 0;
        int r = rig_run(in, got, (unsigned)atoi(argv[2]), spec, 0, 256 << 10, UINT64_MAX, NULL, &len, &stats, &e);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (r < 0)
                return fprintf(stderr, "%s\n", e.msg), 1;
        printf("%.3f %zu %u %u %u %llu\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, len, stats.accepted,
               stats.redone, stats.spec, (unsigned long long)stats.marker_bytes);
        free(in);
        return 0;
}
