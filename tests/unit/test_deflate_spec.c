/* Unit tests of the speculative deflate decoder (deflate_spec.c) against zlib: the block finder
 * lands on real block boundaries (zlib's inflate with Z_BLOCK lists them), decoding from there
 * without the window and resolving the markers afterwards gives zlib's output byte for byte, the
 * window it reports at a clean point is the real one, and it refuses what is not deflate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "deflate_spec.h"
#include "bytes.h"

/* Text-like data: words from a small vocabulary, runs of zeros, and (far) repeats 20000 bytes
 * apart. Copies of copies keep markers alive; without far, random letters: the few copies die out. */
static uint8_t *sample_far(size_t n, unsigned seed, bool far) {
        static const char *words[] = { "kernel ", "block ", "image ", "scratch ", "hepix ", "volume ", "\n", "ext4 " };
        uint8_t *p = malloc(n);
        uint32_t x = seed * 2654435761u + 7;
        for (size_t i = 0; i < n && !far; i++) {
                x = x * 1103515245u + 12345u;
                p[i] = (uint8_t)('a' + (x >> 24) % 16);
        }
        for (size_t i = 0; i < n && far;) {
                x = x * 1103515245u + 12345u;
                unsigned k = (x >> 16) % 64;
                if (k < 8) {
                        const char *w = words[k];
                        for (size_t j = 0; w[j] && i < n; j++)
                                p[i++] = (uint8_t)w[j];
                } else if (k < 10 && i > 20000 && far) {
                        size_t from = i - 20000 + (x >> 8) % 1000, l = 40 + (x >> 20) % 200;
                        for (size_t j = 0; j < l && i < n; j++)
                                p[i++] = p[from + j];
                } else if (k == 10) {
                        for (size_t j = 0; j < 300 && i < n; j++)
                                p[i++] = 0;
                } else
                        p[i++] = (uint8_t)(x >> 24);
        }
        return p;
}

static uint8_t *sample(size_t n, unsigned seed) { return sample_far(n, seed, true); }

/* The block boundaries zlib sees: bit offsets and the output before each. */
struct edges {
        uint64_t bit[4096], out[4096];
        unsigned n;
};

static void list_edges(const struct bytes *c, size_t plain_n, struct edges *ed) {
        z_stream z = { 0 };
        assert_int_equal(inflateInit2(&z, -15), Z_OK);
        uint8_t *sink = malloc(plain_n + 1);
        z.next_in = c->p;
        z.avail_in = (uInt)c->n;
        z.next_out = sink;
        z.avail_out = (uInt)plain_n + 1;
        ed->n = 0;
        for (;;) {
                int r = inflate(&z, Z_BLOCK);
                assert_true(r == Z_OK || r == Z_STREAM_END);
                if (r == Z_STREAM_END)
                        break;
                if ((z.data_type & 128) && !(z.data_type & 64) && ed->n < 4096) {
                        ed->bit[ed->n] = (uint64_t)z.total_in * 8 - (unsigned)(z.data_type & 7);
                        ed->out[ed->n] = z.total_out;
                        ed->n++;
                }
        }
        inflateEnd(&z);
        free(sink);
}

static int edge_index(const struct edges *ed, uint64_t bit) {
        for (unsigned i = 0; i < ed->n; i++)
                if (ed->bit[i] == bit)
                        return (int)i;
        return -1;
}

/* Decodes from edge i speculatively up to edge `last` (or to a clean point), resolves against the
 * real window and compares; returns the symbols decoded. */
static uint64_t check_from(const struct bytes *c, const uint8_t *plain, const struct edges *ed, unsigned i, unsigned last,
                           bool *clean) {
        struct ds *d = ds_new();
        assert_non_null(d);
        ds_start(d, c->p, c->n, ed->bit[i], ed->bit[last], NULL);
        uint64_t at = ed->out[i];
        static uint16_t sym[70000];
        static uint8_t bytes[70000];
        const uint8_t *win = plain + at - DS_WIN; /* callers start at >= DS_WIN of output */
        int r;
        do {
                size_t made, done;
                r = ds_run(d, sym, sizeof(sym) / sizeof(sym[0]), &made);
                assert_true(r >= 0);
                assert_int_equal(ds_resolve(sym, made, win, at, bytes, &done), 0);
                assert_int_equal(done, made);
                assert_memory_equal(bytes, plain + at, made);
                /* in place, as pinflate does it */
                assert_int_equal(ds_resolve(sym, made, win, at, (uint8_t *)sym, &done), 0);
                assert_memory_equal(sym, plain + at, made);
                at += made;
        } while (r == DS_MORE);
        *clean = r == DS_CLEAN;
        uint64_t total = ds_total(d);
        if (r == DS_CLEAN) {
                int k = edge_index(ed, ds_bit(d));
                assert_true(k > (int)i);
                assert_int_equal(ed->out[k], ed->out[i] + total);
                static uint8_t w[DS_WIN];
                size_t wl;
                assert_int_equal(ds_window_known(d, NULL, 0, w, &wl), 0);
                assert_int_equal(wl, DS_WIN);
                assert_memory_equal(w, plain + ed->out[k] - DS_WIN, DS_WIN);
        } else {
                assert_int_equal(r, DS_END);
                assert_int_equal(ds_bit(d), ed->bit[last]);
                assert_int_equal(total, ed->out[last] - ed->out[i]);
        }
        ds_free(d);
        return total;
}

static void test_finds_and_decodes(void **state) {
        (void)state;
        for (int level = 1; level <= 13; level += 4) {
                size_t n = 6u << 20;
                bool far = level <= 9; /* 13: level 9 again, without far repeats */
                uint8_t *plain = sample_far(n, (unsigned)level, far);
                struct bytes c = { 0 };
                deflate_raw(&c, plain, n, far ? level : 9);
                static struct edges ed;
                list_edges(&c, n, &ed);
                assert_true(ed.n > 8);
                unsigned cleans = 0, tried = 0;
                /* from offsets spread over the stream: the finder's answer is a real boundary, the next
                 * dynamic one at or after where it looked (none is missed) */
                for (uint64_t from = c.n / 9 * 8; from < (uint64_t)c.n * 8 * 8 / 9; from += c.n * 8 / 7 + 13) {
                        uint64_t bit = ds_find_block(c.p, c.n, from, (uint64_t)c.n * 8);
                        assert_true(bit != UINT64_MAX);
                        int k = edge_index(&ed, bit);
                        assert_true(k > 0);
                        assert_true(ed.bit[k - 1] < from || ed.bit[k - 1] == bit);
                        unsigned blocks = far ? 3 : 60;
                        if (ed.out[k] < DS_WIN || (unsigned)k + blocks >= ed.n)
                                continue;
                        bool clean;
                        check_from(&c, plain, &ed, (unsigned)k, (unsigned)k + blocks, &clean);
                        cleans += clean;
                        tried++;
                }
                assert_true(tried >= 4);
                if (getenv("DS_DEBUG"))
                        print_message("level %d far %d: %u of %u clean\n", level, far, cleans, tried);
                if (!far) /* markers die out: the decoder says so, with the right window (check_from) */
                        assert_true(cleans >= tried / 2);
                free(c.p);
                free(plain);
        }
}

static void test_end_at_next_edge(void **state) {
        (void)state;
        size_t n = 2u << 20;
        uint8_t *plain = malloc(n);
        /* incompressible-ish with long repeats: markers last, the decoder reaches its end bit */
        uint32_t x = 99;
        for (size_t i = 0; i < n; i++) {
                x = x * 1103515245u + 12345u;
                plain[i] = i >= 32000 && (i / 500) % 2 ? plain[i - 32000] : (uint8_t)(x >> 24);
        }
        struct bytes c = { 0 };
        deflate_raw(&c, plain, n, 6);
        static struct edges ed;
        list_edges(&c, n, &ed);
        assert_true(ed.n > 3);
        unsigned k = 1;
        while (ed.out[k] < DS_WIN)
                k++;
        bool clean;
        check_from(&c, plain, &ed, k, k + 1, &clean);
        free(c.p);
        free(plain);
}

/* The window becomes known while decoding: the decoder stops at the next block boundary, and
 * the window it gives from there (its own output with the markers resolved) is the real one. */
static void test_yield(void **state) {
        (void)state;
        size_t n = 4u << 20;
        uint8_t *plain = sample(n, 3);
        struct bytes c = { 0 };
        deflate_raw(&c, plain, n, 6);
        static struct edges ed;
        list_edges(&c, n, &ed);
        unsigned k = 1;
        while (ed.out[k] < 2 * DS_WIN)
                k++;
        struct ds *d = ds_new();
        atomic_bool yield = false;
        ds_start(d, c.p, c.n, ed.bit[k], UINT64_MAX, &yield);
        static uint16_t sym[1000];
        size_t made;
        assert_int_equal(ds_run(d, sym, 1000, &made), DS_MORE); /* somewhere inside the first block */
        atomic_store(&yield, true);
        int r;
        do {
                static uint16_t more[70000];
                r = ds_run(d, more, 70000, &made);
        } while (r == DS_MORE);
        assert_int_equal(r, DS_YIELD);
        int at = edge_index(&ed, ds_bit(d));
        assert_int_equal(at, (int)k + 1); /* the next boundary */
        assert_int_equal(ed.out[at] - ed.out[k], ds_total(d));
        static uint8_t win[DS_WIN];
        size_t len;
        assert_int_equal(ds_window_known(d, plain + ed.out[k] - DS_WIN, ed.out[k], win, &len), 0);
        assert_int_equal(len, DS_WIN);
        assert_memory_equal(win, plain + ed.out[at] - DS_WIN, DS_WIN);
        /* with too little of the stream before the chunk the markers reach past its start */
        if (ds_total(d) < DS_WIN)
                assert_int_equal(ds_window_known(d, plain + ed.out[k] - DS_WIN, 10, win, &len), -1);
        ds_free(d);
        free(c.p);
        free(plain);
}

/* A 258-symbol match that ends exactly at the end of the output buffer: the copy must not write
 * past it (an exactly sized heap buffer: ASan sees a byte too many). */
static void test_match_at_the_end(void **state) {
        (void)state;
        uint8_t plain[8000];
        for (size_t i = 0; i < sizeof(plain); i++)
                plain[i] = (uint8_t)("abcd"[i % 4]);
        z_stream z = { 0 };
        assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
        uint8_t c[4096];
        z.next_out = c;
        z.avail_out = sizeof(c);
        z.next_in = plain;
        z.avail_in = 4000;
        assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK); /* the first block is not the last */
        z.next_in = plain + 4000;
        z.avail_in = 4000;
        assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
        size_t n = sizeof(c) - z.avail_out;
        deflateEnd(&z);
        struct ds *d = ds_new();
        unsigned exact = 0;
        for (size_t cap = 258; cap < 258 + 300; cap++) {
                ds_start(d, c, n, 0, UINT64_MAX, NULL);
                size_t made;
                uint16_t *out = malloc(cap * sizeof(*out));
                assert_int_equal(ds_run(d, out, cap, &made), DS_MORE);
                for (size_t i = 0; i < made; i++)
                        assert_int_equal(out[i], plain[i]);
                exact += made == cap; /* a match of 258 ended at the buffer's end */
                free(out);
        }
        assert_true(exact >= 1);
        ds_free(d);
}

static void test_resolve_depth(void **state) {
        (void)state;
        uint8_t win[DS_WIN];
        for (unsigned i = 0; i < DS_WIN; i++)
                win[i] = (uint8_t)i;
        uint16_t sym[4] = { 'a', DS_MARKER + DS_WIN - 1, DS_MARKER + DS_WIN - 100, 'b' };
        uint8_t out[4];
        size_t done;
        /* 100 bytes of the stream before the chunk: the marker 100 deep is the first byte of it */
        assert_int_equal(ds_resolve(sym, 4, win, 100, out, &done), 0);
        assert_int_equal(out[1], (uint8_t)(DS_WIN - 1));
        assert_int_equal(out[2], (uint8_t)(DS_WIN - 100));
        /* with 99 it reaches before the stream's start: refused where it is */
        assert_int_equal(ds_resolve(sym, 4, win, 99, out, &done), -1);
        assert_int_equal(done, 2);
}

static void test_refuses(void **state) {
        (void)state;
        uint8_t junk[4096];
        uint32_t x = 5;
        for (size_t i = 0; i < sizeof(junk); i++) {
                x = x * 1103515245u + 12345u;
                junk[i] = (uint8_t)(x >> 24);
        }
        /* random bytes: no candidate survives the whole check */
        assert_true(ds_find_block(junk, sizeof(junk), 0, sizeof(junk) * 8) == UINT64_MAX);
        struct ds *d = ds_new();
        uint16_t out[1024];
        size_t made;
        /* a final block where a chunk starts is not a place to speculate from */
        const uint8_t fin[] = { 0x03, 0x00 }; /* BFINAL 1, fixed codes, end of block */
        ds_start(d, fin, sizeof(fin), 0, 16, NULL);
        assert_int_equal(ds_run(d, out, 1024, &made), DS_EFINAL);
        /* reserved block type */
        const uint8_t bad[] = { 0x06, 0x00 };
        ds_start(d, bad, sizeof(bad), 0, 16, NULL);
        assert_int_equal(ds_run(d, out, 1024, &made), DS_EDATA);
        /* a stored block whose lengths disagree */
        const uint8_t st[] = { 0x00, 0x05, 0x00, 0xfa, 0xfe, 1, 2, 3, 4, 5 };
        ds_start(d, st, sizeof(st), 0, 80, NULL);
        assert_int_equal(ds_run(d, out, 1024, &made), DS_EDATA);
        /* ...and one that holds: five bytes, then the end bit */
        const uint8_t ok[] = { 0x00, 0x05, 0x00, 0xfa, 0xff, 1, 2, 3, 4, 5 };
        ds_start(d, ok, sizeof(ok), 0, 80, NULL);
        assert_int_equal(ds_run(d, out, 1024, &made), DS_END);
        assert_int_equal(made, 5);
        assert_int_equal(out[4], 5);
        /* input that ends inside a block */
        ds_start(d, ok, 7, 0, 80, NULL);
        assert_int_equal(ds_run(d, out, 1024, &made), DS_EINPUT);
        ds_free(d);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_finds_and_decodes),
                cmocka_unit_test(test_end_at_next_edge),
                cmocka_unit_test(test_yield),
                cmocka_unit_test(test_match_at_the_end),
                cmocka_unit_test(test_resolve_depth),
                cmocka_unit_test(test_refuses),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
