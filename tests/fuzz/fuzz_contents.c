/* libFuzzer target: the contents reader (contents_ext.c, libext2fs read-only) on corrupted
 * ext2/3/4 images (seeds: small filesystems with the files it looks for, symlink loops), then the
 * lint and the stored form. Invariants: no crash, no leak, no hang (libFuzzer's -timeout); the
 * stored form reads back as the same; every finding has a code and a message. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "contents_ext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static int fd = -1;
        if (fd < 0 && (fd = memfd_create("fuzz-contents", MFD_CLOEXEC)) < 0)
                return 0;
        if (ftruncate(fd, 0) < 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
                return 0;
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        struct mbr_table t = { .n = 1 };
        t.parts[0] = (struct mbr_part){ .number = 1, .type = 0x83, .offset = 0, .size = size };
        snprintf(t.parts[0].fs, sizeof(t.parts[0].fs), "%s", size > 2048 && data[1024 + 0x38] == 0x53 ? "ext4" : "ext2");
        struct contents *c = calloc(1, sizeof(*c)), *back = calloc(1, sizeof(*back));
        struct ct_finding *f = calloc(CT_MAX_FINDINGS, sizeof(*f));
        if (!c || !back || !f)
                goto out;
        contents_scan(path, &t, c);
        unsigned n = contents_lint(c, f);
        for (unsigned i = 0; i < n; i++)
                if (!f[i].code[0] || !f[i].message[0])
                        __builtin_trap();
        char *json = contents_to_json(c);
        if (json) {
                if (contents_from_json(back, json, strlen(json)) != 0)
                        __builtin_trap();
                char *again = contents_to_json(back);
                if (!again || strcmp(json, again) != 0)
                        __builtin_trap();
                free(again);
                free(json);
        }
out:
        free(c);
        free(back);
        free(f);
        return 0;
}
