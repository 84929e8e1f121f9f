/* Unit tests of the streaming gzip decoder, on both engines (ISA-L and zlib). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gunzip.h"
#include "bytes.h"

static void put_le32(struct bytes *b, uint32_t v) {
        uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
        put(b, x, 4);
}

/* One gzip member with the given header flags (FEXTRA/FNAME/FCOMMENT/FHCRC). */
static void member(struct bytes *out, const uint8_t *data, size_t n, uint8_t flags) {
        struct bytes h = { 0 };
        uint8_t fixed[10] = { 0x1f, 0x8b, 8, flags, 1, 2, 3, 4, 0, 3 };
        put(&h, fixed, 10);
        if (flags & 4) {
                uint8_t xlen[2] = { 6, 0 };
                put(&h, xlen, 2);
                put(&h, "AB\x02\x00xy", 6);
        }
        if (flags & 8)
                put(&h, "image.raw", 10);
        if (flags & 16)
                put(&h, "a comment", 10);
        if (flags & 2) {
                uint32_t c = (uint32_t)crc32(0, h.p, (uInt)h.n);
                uint8_t hc[2] = { (uint8_t)c, (uint8_t)(c >> 8) };
                put(&h, hc, 2);
        }
        put(out, h.p, h.n);
        free(h.p);
        deflate_raw(out, data, n, 6);
        put_le32(out, (uint32_t)crc32(0, data, (uInt)n));
        put_le32(out, (uint32_t)n);
}

static uint8_t *sample(size_t n, unsigned seed) {
        uint8_t *p = malloc(n);
        uint32_t x = seed * 2654435761u + 1;
        for (size_t i = 0; i < n; i++) {
                x = x * 1103515245u + 12345u;
                /* compressible but not trivial: text-like with zero runs */
                p[i] = (i / 5000) % 3 == 0 ? 0 : (uint8_t)('a' + (x >> 16) % 16);
        }
        return p;
}

/* Decodes in chunks of in_chunk / out_chunk bytes. Returns the decoder's result. */
static int decode(enum gunzip_engine eng, const struct bytes *in, size_t in_chunk, size_t out_chunk, struct bytes *out,
                  struct hv_error *e) {
        struct gunzip g;
        memset(e, 0, sizeof(*e));
        assert_int_equal(gunzip_init(&g, eng), 0);
        uint8_t *ob = malloc(out_chunk);
        size_t pos = 0;
        int r = 0;
        for (;;) {
                size_t len = in->n - pos < in_chunk ? in->n - pos : in_chunk;
                bool eof = len == 0;
                size_t iu, ou;
                unsigned spins = 0;
                do {
                        r = gunzip_step(&g, in->p + pos, len, &iu, ob, out_chunk, &ou, e);
                        if (r < 0)
                                goto done;
                        put(out, ob, ou);
                        pos += iu;
                        len -= iu;
                        assert_true(++spins < 10000000);
                } while (len > 0 || ou > 0);
                if (eof)
                        break;
        }
        r = gunzip_finish(&g, e);
done:
        gunzip_done(&g);
        free(ob);
        return r;
}

static const enum gunzip_engine engines[] = { GUNZIP_ISAL, GUNZIP_ZLIB };

static void test_roundtrip_chunks(void **state) {
        (void)state;
        size_t n = 300000;
        uint8_t *data = sample(n, 1);
        struct bytes gz = { 0 };
        member(&gz, data, n, 0);
        size_t in_chunks[] = { 1, 7, 4096, 1 << 20 };
        size_t out_chunks[] = { 1, 13, 65536, 1 << 22 };
        for (size_t k = 0; k < 2; k++)
                for (size_t i = 0; i < 4; i++)
                        for (size_t o = 0; o < 4; o++) {
                                if (in_chunks[i] == 1 && out_chunks[o] == 1 && engines[k] == GUNZIP_ISAL)
                                        continue; /* slow, covered by the zlib pass */
                                struct bytes out = { 0 };
                                struct hv_error e;
                                int r = decode(engines[k], &gz, in_chunks[i], out_chunks[o], &out, &e);
                                if (r < 0)
                                        fail_msg("engine %zu in %zu out %zu: %s", k, in_chunks[i], out_chunks[o], e.msg);
                                assert_int_equal(out.n, n);
                                assert_memory_equal(out.p, data, n);
                                free(out.p);
                        }
        free(gz.p);
        free(data);
}

static void test_multi_member_and_headers(void **state) {
        (void)state;
        uint8_t *a = sample(100000, 2), *b = sample(5000, 3);
        struct bytes gz = { 0 }, want = { 0 };
        member(&gz, a, 100000, 8);         /* FNAME */
        member(&gz, b, 0, 0);              /* an empty member */
        member(&gz, b, 5000, 4 | 16);      /* FEXTRA + FCOMMENT */
        member(&gz, a, 77777, 2 | 4 | 8 | 16); /* all of them, with FHCRC */
        put(&want, a, 100000);
        put(&want, b, 5000);
        put(&want, a, 77777);
        for (size_t k = 0; k < 2; k++) {
                struct bytes out = { 0 };
                struct hv_error e;
                int r = decode(engines[k], &gz, 1000, 65536, &out, &e);
                if (r < 0)
                        fail_msg("engine %zu: %s", k, e.msg);
                assert_int_equal(out.n, want.n);
                assert_memory_equal(out.p, want.p, want.n);
                free(out.p);
        }
        free(gz.p);
        free(want.p);
        free(a);
        free(b);
}

static void expect_bad(const struct bytes *gz, const char *what) {
        for (size_t k = 0; k < 2; k++) {
                struct bytes out = { 0 };
                struct hv_error e;
                int r = decode(engines[k], gz, 4096, 65536, &out, &e);
                free(out.p);
                if (r >= 0)
                        fail_msg("engine %zu accepted input that should fail with \"%s\"", k, what);
                assert_int_equal(e.kind, HV_E_BAD_COMPRESSION);
                if (!strstr(e.msg, what) || !strstr(e.msg, "offset"))
                        fail_msg("engine %zu: \"%s\" lacks \"%s\" or an offset", k, e.msg, what);
        }
}

static void test_corruptions(void **state) {
        (void)state;
        size_t n = 200000;
        uint8_t *data = sample(n, 4);
        struct bytes good = { 0 };
        member(&good, data, n, 0);

        struct bytes c = { 0 };
        put(&c, good.p, good.n);
        c.p[c.n - 8] ^= 0x55; /* CRC */
        expect_bad(&c, "member 1");
        c.p[c.n - 8] ^= 0x55;
        c.p[c.n - 2] ^= 0x01; /* ISIZE */
        expect_bad(&c, "member 1");
        free(c.p);

        size_t cuts[] = { 5, 10, 500, good.n / 2, good.n - 8, good.n - 3, good.n - 1 };
        for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
                struct bytes t = { 0 };
                put(&t, good.p, cuts[i]);
                expect_bad(&t, "end of input");
                free(t.p);
        }

        struct bytes g = { 0 };
        put(&g, good.p, good.n);
        put(&g, "garbage!", 8);
        expect_bad(&g, "trailing garbage");
        free(g.p);
        struct bytes z = { 0 };
        put(&z, good.p, good.n);
        put(&z, "\0\0\0\0", 4); /* zero padding is garbage too */
        expect_bad(&z, "trailing garbage");
        free(z.p);

        struct bytes d = { 0 };
        put(&d, good.p, good.n);
        for (size_t i = 20; i < 60; i++)
                d.p[i] = 0xff; /* corrupt the deflate stream */
        expect_bad(&d, "member 1");
        free(d.p);

        struct bytes m = { 0 };
        put(&m, "PK\x03\x04 this is a zip", 18);
        expect_bad(&m, "not gzip");
        free(m.p);

        struct bytes f = { 0 };
        put(&f, good.p, good.n);
        f.p[3] = 0x20; /* reserved flag bit */
        expect_bad(&f, "reserved");
        free(f.p);

        struct bytes h = { 0 };
        member(&h, data, 1000, 2 | 8);
        h.p[10 + 10] ^= 1; /* the FHCRC byte after the 10-byte name */
        expect_bad(&h, "FHCRC");
        free(h.p);

        struct bytes cm = { 0 };
        put(&cm, good.p, good.n);
        cm.p[2] = 7;
        expect_bad(&cm, "compression method");
        free(cm.p);

        free(good.p);
        free(data);
}

/* Members whose deflate data ends at a byte boundary (stored blocks, a flush before the end):
 * ISA-L may have read the whole trailer ahead into its bit buffer; it is checked all the same,
 * whatever the sizes, whether the input comes whole or in pieces. */
static void test_trailer_read_ahead(void **state) {
        (void)state;
        uint8_t *data = sample(5000, 9);
        int levels[] = { 0, 1, 6 };
        for (size_t n = 0; n < 5000; n += 97)
                for (unsigned l = 0; l < 3; l++)
                        for (int flush = 0; flush < 2; flush++) {
                                struct bytes gz = { 0 };
                                z_stream z = { 0 };
                                assert_int_equal(deflateInit2(&z, levels[l], Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
                                uint8_t buf[8192];
                                z.next_in = data;
                                z.avail_in = (uInt)n;
                                z.next_out = buf;
                                z.avail_out = sizeof(buf);
                                if (flush)
                                        assert_int_equal(deflate(&z, Z_FULL_FLUSH), Z_OK);
                                assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
                                put(&gz, buf, sizeof(buf) - z.avail_out);
                                deflateEnd(&z);
                                for (size_t in_chunk = 1; in_chunk <= (1u << 20); in_chunk *= 64) {
                                        struct bytes out = { 0 };
                                        struct hv_error e;
                                        int r = decode(GUNZIP_ISAL, &gz, in_chunk, 1 << 16, &out, &e);
                                        if (r < 0)
                                                fail_msg("%zu bytes, level %d, flush %d, input by %zu: %s", n, levels[l], flush, in_chunk,
                                                         e.msg);
                                        assert_int_equal(out.n, n);
                                        assert_memory_equal(out.p, data, n);
                                        free(out.p);
                                }
                                free(gz.p);
                        }
        free(data);
}

static void test_empty_input(void **state) {
        (void)state;
        struct bytes empty = { 0 };
        for (size_t k = 0; k < 2; k++) {
                struct bytes out = { 0 };
                struct hv_error e;
                assert_true(decode(engines[k], &empty, 4096, 4096, &out, &e) < 0);
                assert_non_null(strstr(e.msg, "empty"));
                free(out.p);
        }
}

static void test_header_parser(void **state) {
        (void)state;
        /* byte-at-a-time and all-at-once agree */
        struct bytes gz = { 0 };
        uint8_t one = 'x';
        member(&gz, &one, 1, 2 | 4 | 8 | 16);
        struct gz_header h;
        gz_header_init(&h);
        size_t used, total = 0;
        int r = 0;
        while (r == 0) {
                r = gz_header_feed(&h, gz.p + total, 1, &used);
                total += used;
        }
        assert_int_equal(r, 1);
        size_t hdr_len = total;
        gz_header_init(&h);
        assert_int_equal(gz_header_feed(&h, gz.p, gz.n, &used), 1);
        assert_int_equal(used, hdr_len);
        assert_int_equal(hdr_len, 10 + 2 + 6 + 10 + 10 + 2);
        free(gz.p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip_chunks), cmocka_unit_test(test_multi_member_and_headers),
                cmocka_unit_test(test_corruptions),      cmocka_unit_test(test_empty_input), cmocka_unit_test(test_trailer_read_ahead),
                cmocka_unit_test(test_header_parser),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
