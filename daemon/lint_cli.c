/* lint_cli.c: `hvwgd --lint FILE` for image producers, without a daemon: a raw image, or a gzip
 * one inflated first into an unnamed temporary file (sparse), then the partition table, the
 * contents and the findings. Exit 0, or 1 when there is an error finding (or the image cannot
 * be read at all). */
#define _GNU_SOURCE
#include "lint_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "contents_ext.h"
#include "inspect.h"

/* The gzip stream of fd into an unnamed temporary file (zero blocks left as holes). */
static int inflate_to_tmp(int fd, uint64_t max, int *ret) {
        const char *dir = getenv("TMPDIR");
        int out = open(dir && *dir ? dir : "/var/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (out < 0)
                return -errno;
        int in = dup(fd);
        gzFile gz = in >= 0 ? gzdopen(in, "rb") : NULL;
        if (!gz) {
                if (in >= 0)
                        close(in);
                close(out);
                return -ENOMEM;
        }
        enum { CHUNK = 1 << 20 };
        static const char zero[4096];
        char *buf = malloc(CHUNK);
        uint64_t off = 0;
        int r = buf ? 0 : -ENOMEM;
        while (r == 0) {
                int n = gzread(gz, buf, CHUNK);
                if (n < 0) {
                        r = -EBADMSG;
                        break;
                }
                if (n == 0)
                        break;
                if (off + (uint64_t)n > max) {
                        r = -EFBIG;
                        break;
                }
                for (int i = 0; i < n && r == 0; i += 4096) {
                        int l = n - i < 4096 ? n - i : 4096;
                        if (memcmp(buf + i, zero, (size_t)l) != 0)
                                r = hv_pwrite_all(out, buf + i, (size_t)l, off + (uint64_t)i);
                }
                off += (uint64_t)n;
        }
        free(buf);
        gzclose(gz);
        if (r == 0 && ftruncate(out, (off_t)off) < 0)
                r = -errno;
        if (r < 0) {
                close(out);
                return r;
        }
        *ret = out;
        return 0;
}

int lint_cli(const char *file, uint64_t max_size) {
        _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                fprintf(stderr, "hvwgd: %s: %m\n", file);
                return 1;
        }
        if (!S_ISREG(st.st_mode)) {
                fprintf(stderr, "hvwgd: %s is not a regular file\n", file);
                return 1;
        }
        uint8_t magic[2] = { 0 };
        if (pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
                int raw = -1, r = inflate_to_tmp(fd, max_size, &raw);
                if (r < 0) {
                        fprintf(stderr, "hvwgd: %s: cannot inflate: %s\n", file, r == -EBADMSG ? "not a valid gzip stream" : strerror(-r));
                        return 1;
                }
                close(fd);
                fd = raw;
                if (fstat(fd, &st) < 0)
                        return 1;
        }
        struct mbr_table *t = calloc(1, sizeof(*t));
        struct ct_finding *f = calloc(CT_MAX_FINDINGS, sizeof(*f));
        struct contents *c = calloc(1, sizeof(*c));
        struct hv_error e = { 0 };
        int rc = 1;
        if (!t || !f || !c)
                fprintf(stderr, "hvwgd: out of memory\n");
        else if (inspect_fd(fd, (uint64_t)st.st_size, t, &e) < 0)
                printf("error   %-22s %s\n", "partition-table", e.msg);
        else {
                char path[64], scratch[256];
                snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
                contents_scan(path, t, c);
                contents_scratch(c, scratch, sizeof(scratch));
                printf("image %s: %llu bytes, %u partitions; root partition %u; bootloader %s\nscratch: %s\n", file,
                       (unsigned long long)st.st_size, t->n, c->root, c->bootloader[0] ? c->bootloader : "none", scratch);
                unsigned n = contents_lint(c, f), errors = 0;
                for (unsigned i = 0; i < n; i++) {
                        printf("%-7s %-22s %s\n", contents_level_name(f[i].level), f[i].code, f[i].message);
                        errors += f[i].level == CT_ERROR;
                }
                rc = errors ? 1 : 0;
        }
        free(t);
        free(f);
        free(c);
        return rc;
}
