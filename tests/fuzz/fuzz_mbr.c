/* libFuzzer target: the MBR/EBR parser. Input: 8-byte image size, then records of an 8-byte LBA
 * and a 512-byte sector; sectors not given read as zeros. */
#include <string.h>

#include "mbr.h"

struct fimg {
        const uint8_t *data;
        size_t n;
};

static uint64_t le64(const uint8_t *p) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
                v = v << 8 | p[i];
        return v;
}

static int rd(void *ud, uint64_t off, void *buf, size_t len) {
        const struct fimg *f = ud;
        memset(buf, 0, len);
        if (off % 512 || len != 512)
                __builtin_trap();
        /* the last record for an LBA wins, as a later write would */
        for (size_t p = 8; p + 520 <= f->n; p += 520)
                if (le64(f->data + p) == off / 512)
                        memcpy(buf, f->data + p + 8, 512);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 8)
                return 0;
        struct fimg f = { data, size };
        struct mbr_table t;
        struct hv_error e = { 0 };
        int r = mbr_parse(le64(data), rd, &f, &t, &e);
        if (r >= 0) {
                /* invariants of an accepted table */
                if (t.n == 0 || t.n > MBR_MAX_PARTS)
                        __builtin_trap();
                for (unsigned i = 0; i < t.n; i++)
                        if (t.parts[i].offset == 0 || t.parts[i].size == 0 || t.parts[i].offset + t.parts[i].size > le64(data) ||
                            t.parts[i].type == 0x8e || t.parts[i].type == 0xee)
                                __builtin_trap();
        } else if (!hv_error_set(&e) || strlen(e.msg) == 0)
                __builtin_trap(); /* every refusal says why */
        return 0;
}
