/* libFuzzer target: the speculative deflate decoder (deflate_spec.c) on raw deflate data. The
 * block finder runs over the input; then the decoder starts at the bit the first byte names
 * (a block boundary, or not), its markers are resolved with a made-up window, and zlib decodes
 * from the same bit with that window as its dictionary: what the speculative decoder put out
 * must be what zlib puts out there, byte for byte — it may refuse more than zlib (it takes only
 * complete codes and no last block), never less. */
#include <string.h>
#include <zlib.h>

#include "deflate_spec.h"

#define OUT_MAX (1u << 20)

/* zlib from bit `bit` of in[0..n) with dictionary win: up to max bytes into out; the count. */
static size_t zlib_from(const uint8_t *in, size_t n, uint64_t bit, const uint8_t *win, uint8_t *out, size_t max) {
        z_stream z = { 0 };
        if (inflateInit2(&z, -15) != Z_OK)
                return 0;
        size_t at = (size_t)(bit / 8), got = 0;
        if (bit % 8 && at < n) {
                unsigned k = (unsigned)(bit % 8);
                inflatePrime(&z, (int)(8 - k), in[at] >> k);
                at++;
        }
        if (inflateSetDictionary(&z, win, DS_WIN) == Z_OK && at <= n) {
                z.next_in = (Bytef *)in + at;
                z.avail_in = (uInt)(n - at);
                z.next_out = out;
                z.avail_out = (uInt)max;
                (void)inflate(&z, Z_NO_FLUSH); /* as far as it goes */
                got = max - z.avail_out;
        }
        inflateEnd(&z);
        return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 2)
                return 0;
        const uint8_t *in = data + 1;
        size_t n = size - 1;
        uint64_t found = ds_find_block(in, n, data[0] % 16, (uint64_t)n * 8);
        if (found != UINT64_MAX && (found >= (uint64_t)n * 8 || !ds_block_at(in, n, found)))
                __builtin_trap(); /* the finder must name a place ds_block_at accepts */
        uint64_t bit = data[0] & 0x80 && found != UINT64_MAX ? found : data[0] % 24;
        if (bit >= (uint64_t)n * 8)
                return 0;
        static uint8_t win[DS_WIN];
        for (unsigned w = 0; w < DS_WIN; w++)
                win[w] = (uint8_t)(w * 7 + (w >> 8));
        static uint16_t sym[4096];
        static uint8_t spec[OUT_MAX], ref[OUT_MAX];
        struct ds *d = ds_new();
        if (!d)
                return 0;
        ds_start(d, in, n, bit, UINT64_MAX, NULL);
        size_t total = 0;
        int r;
        do {
                size_t made, done;
                r = ds_run(d, sym, sizeof(sym) / sizeof(*sym), &made);
                if (made > sizeof(sym) / sizeof(*sym))
                        __builtin_trap();
                if (total + made > OUT_MAX)
                        break;
                if (ds_resolve(sym, made, win, DS_WIN, spec + total, &done) < 0 || done != made)
                        __builtin_trap(); /* with a whole window every marker resolves */
                total += made;
        } while (r == DS_MORE);
        if (r == DS_CLEAN) { /* the window it reports is its last output */
                static uint8_t w2[DS_WIN];
                size_t wl;
                if (ds_window_known(d, NULL, 0, w2, &wl) < 0 || wl != DS_WIN || total < DS_WIN ||
                    memcmp(w2, spec + total - DS_WIN, DS_WIN) != 0)
                        __builtin_trap();
        }
        ds_free(d);
        size_t got = zlib_from(in, n, bit, win, ref, total);
        if (got != total || memcmp(spec, ref, total) != 0)
                __builtin_trap(); /* it put out what zlib does not */
        return 0;
}
