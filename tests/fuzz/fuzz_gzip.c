/* libFuzzer target: the gzip member parser and the streaming decoder on both engines, and the
 * parallel decoder (pinflate.c) on two threads with small chunks. The first byte picks the
 * input chunk size; output goes through a small buffer; at most 4 MiB is decoded. When both
 * engines accept the input they must produce the same bytes; the parallel decoder must give
 * the sequential one's bytes, or fail where it fails (BadCompression). */
#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "gunzip.h"
#include "pz_rig.h"

#define OUT_MAX (4u << 20)

static int run(enum gunzip_engine eng, const uint8_t *in, size_t n, size_t chunk, uint32_t *crc, uint64_t *len) {
        struct gunzip g;
        struct hv_error e = { 0 };
        if (gunzip_init(&g, eng) < 0)
                return -1;
        uint8_t out[1000];
        size_t pos = 0;
        int r = 0;
        *crc = 0;
        *len = 0;
        for (;;) {
                size_t l = n - pos < chunk ? n - pos : chunk;
                bool eof = l == 0;
                size_t iu, ou;
                do {
                        r = gunzip_step(&g, in + pos, l, &iu, out, sizeof(out), &ou, &e);
                        if (r < 0)
                                goto done;
                        *crc = (uint32_t)crc32(*crc, out, (uInt)ou);
                        *len += ou;
                        if (*len > OUT_MAX) {
                                r = -EFBIG;
                                goto done;
                        }
                        if (iu == 0 && ou == 0 && l > 0)
                                __builtin_trap(); /* no progress with input left: a hang */
                        pos += iu;
                        l -= iu;
                } while (l > 0 || ou > 0);
                if (eof)
                        break;
        }
        r = gunzip_finish(&g, &e);
done:
        if (r < 0 && r != -EFBIG && (!hv_error_set(&e) || e.kind == HV_E_ERRNO))
                __builtin_trap(); /* refusals are BadCompression with a message */
        gunzip_done(&g);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        size_t chunk = (size_t)data[0] * 37 + 1;
        uint32_t c1, c2;
        uint64_t l1, l2;
        int r1 = run(GUNZIP_ISAL, data + 1, size - 1, chunk, &c1, &l1);
        int r2 = run(GUNZIP_ZLIB, data + 1, size - 1, chunk, &c2, &l2);
        if (r1 >= 0 && r2 >= 0 && (c1 != c2 || l1 != l2))
                __builtin_trap();
        uint8_t *got;
        size_t got_len;
        struct hv_error e = { 0 };
        int r3 = rig_run(data + 1, size - 1, 2, true, 64 + chunk % 2000, 1 + chunk % 700, OUT_MAX, &got, &got_len, NULL, &e);
        if (r1 >= 0 && (r3 < 0 || got_len != l1 || (uint32_t)crc32(0, got, (uInt)got_len) != c1))
                __builtin_trap(); /* the parallel decode differs */
        if (r1 < 0 && r1 != -EFBIG && (r3 >= 0 || e.kind != HV_E_BAD_COMPRESSION))
                __builtin_trap(); /* it accepted what the sequential decode refuses */
        free(got);
        /* the header parser alone, byte by byte */
        struct gz_header h;
        gz_header_init(&h);
        size_t used, pos = 1;
        while (pos < size && gz_header_feed(&h, data + pos, 1, &used) == 0)
                pos += used;
        return 0;
}
