/* Unit tests of parallel gzip decoding (pinflate.c): on every kind of stream — one plain member,
 * many members, BGZF-like blocks, independent flush points (pigz --independent), dependent
 * flush points (pigz's default), corrupt and truncated ones — the output is byte-identical to
 * the sequential decoder's, or both fail with BadCompression. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../fuzz/pz_rig.h"
#include "gunzip.h"
#include "bytes.h"

/* Text-like data with zero runs and repeats far apart (back-references across flush points). */
static uint8_t *sample(size_t n, unsigned seed) {
        uint8_t *p = malloc(n);
        uint32_t x = seed * 2654435761u + 1;
        for (size_t i = 0; i < n; i++) {
                x = x * 1103515245u + 12345u;
                p[i] = (i / 7000) % 4 == 0 ? 0 : (i / 7000) % 4 == 2 && i >= 9000 ? p[i - 9000] : (uint8_t)('a' + (x >> 16) % 20);
        }
        return p;
}

/* gzip (zlib's own header and trailer) with a flush of the given kind every `every` input
 * bytes: Z_FULL_FLUSH makes the pieces independent, Z_SYNC_FLUSH does not. */
static void gzip_flushed(struct bytes *out, const uint8_t *data, size_t n, size_t every, int flush, int level) {
        z_stream z = { 0 };
        assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
        size_t cap = deflateBound(&z, n) + ((every ? n / every : 0) + 2) * 16;
        uint8_t *buf = malloc(cap);
        z.next_out = buf;
        z.avail_out = (uInt)cap;
        for (size_t pos = 0; pos < n || pos == 0;) {
                size_t l = every && n - pos > every ? every : n - pos;
                z.next_in = (Bytef *)data + pos;
                z.avail_in = (uInt)l;
                pos += l;
                int r = deflate(&z, pos == n ? Z_FINISH : flush);
                assert_true(r == Z_OK || r == Z_STREAM_END);
                if (pos == n)
                        break;
        }
        put(out, buf, cap - z.avail_out);
        deflateEnd(&z);
        free(buf);
}

static int seq_decode(const struct bytes *in, struct bytes *out, struct hv_error *e) {
        struct gunzip g;
        memset(e, 0, sizeof(*e));
        assert_int_equal(gunzip_init(&g, GUNZIP_ISAL), 0);
        static uint8_t ob[1 << 16];
        size_t pos = 0;
        int r;
        for (;;) {
                size_t iu, ou;
                if ((r = gunzip_step(&g, in->p + pos, in->n - pos, &iu, ob, sizeof(ob), &ou, e)) < 0)
                        return r;
                put(out, ob, ou);
                pos += iu;
                if (iu == 0 && ou == 0)
                        break;
        }
        return gunzip_finish(&g, e);
}

/* Both decoders on in, at several chunk sizes and thread counts, with and without chunks at
 * blocks found by trial (few: only the first two chunk sizes and the last, two threads): same
 * bytes or both refuse. */
static void compare(const struct bytes *in, unsigned *accepted, bool few) {
        struct bytes want = { 0 };
        struct hv_error e1;
        int r1 = seq_decode(in, &want, &e1);
        size_t chunks[] = { 64, 1000, 20000, 300000 };
        unsigned threads[] = { 2, 3, 8, 1 }; /* 1: the daemon's one-thread path, no pool */
        for (unsigned c = 0; c < sizeof(chunks) / sizeof(*chunks); c++)
                for (unsigned t = 0; t < (few ? 1 : sizeof(threads) / sizeof(*threads)); t++)
                        for (int spec = 0; spec < 2; spec++) {
                                /* blocks found by trial need room to be checked: not with tiny chunks */
                                if ((few && c == 2) || (spec && chunks[c] < 20000))
                                        continue;
                                uint8_t *got;
                                size_t got_len;
                                struct hv_error e2 = { 0 };
                                struct pz_io st;
                                int r2 = rig_run(in->p, in->n, threads[t], spec, chunks[c], 4096, 1ull << 32, &got, &got_len, &st, &e2);
                                if (r1 >= 0) {
                                        if (r2 < 0)
                                                fail_msg("parallel decode failed (%s) where the sequential one did not", e2.msg);
                                        assert_int_equal(got_len, want.n);
                                        assert_memory_equal(got, want.p, want.n);
                                } else {
                                        if (r2 >= 0)
                                                fail_msg("parallel decode succeeded where the sequential one failed (%s)", e1.msg);
                                        assert_int_equal(e2.kind, HV_E_BAD_COMPRESSION);
                                }
                                if (accepted)
                                        *accepted += st.accepted;
                                if (getenv("PZ_DEBUG"))
                                        print_message("chunk %zu threads %u spec %d: %u chunks, %u accepted (%u found by trial), %u redone, gave up %d, r %d\n",
                                                      chunks[c], threads[t], spec, st.chunks, st.accepted, st.spec, st.redone, st.gave_up, r2);
                                free(got);
                        }
        free(want.p);
}

/* The parallel decoder on gz, which must succeed with n bytes: the output (the caller frees it). */
static uint8_t *decoded(const struct bytes *gz, unsigned threads, bool spec, size_t chunk, size_t n, struct pz_io *st) {
        uint8_t *got;
        size_t len;
        struct hv_error e = { 0 };
        if (rig_run(gz->p, gz->n, threads, spec, chunk, 4096, 1ull << 32, &got, &len, st, &e) < 0)
                fail_msg("parallel decode failed: %s", e.msg);
        assert_int_equal(len, n);
        return got;
}

static void same_as_sequential(const struct bytes *in, unsigned *accepted) {
        compare(in, accepted, false);
}

static void test_find_cut(void **state) {
        (void)state;
        enum pz_kind k = PZ_NONE;
        uint8_t p[64] = { 0 };
        assert_int_equal(pz_find_cut(p, sizeof(p), 0, &k), 0); /* zeros: 00 00 but no ff ff */
        memcpy(p + 20, "\0\0\xff\xff", 4);
        assert_int_equal(pz_find_cut(p, sizeof(p), 0, &k), 24);
        assert_int_equal(k, PZ_BLOCK);
        assert_int_equal(pz_find_cut(p, sizeof(p), 21, &k), 0); /* from past it */
        memcpy(p + 10, "\x1f\x8b\x08\x04", 4);
        assert_int_equal(pz_find_cut(p, sizeof(p), 0, &k), 10);
        assert_int_equal(k, PZ_MEMBER);
        p[13] = 0x20; /* a reserved flag bit: not a header */
        assert_int_equal(pz_find_cut(p, sizeof(p), 0, &k), 24);
        p[13] = 0;
        assert_int_equal(pz_find_cut(p, 15, 0, &k), 0); /* too few bytes after it to tell */
}

static void test_single_member(void **state) {
        (void)state;
        size_t n = 700000;
        uint8_t *d = sample(n, 1);
        struct bytes gz = { 0 };
        gzip_flushed(&gz, d, n, 0, Z_NO_FLUSH, 6);
        same_as_sequential(&gz, NULL);
        /* large chunks: no cut point at all, one thread decodes, after GIVE_UP chunks */
        struct pz_io st;
        uint8_t *got = decoded(&gz, 2, false, 4096, n, &st);
        assert_true(st.gave_up);
        free(got);
        free(gz.p);
        free(d);
}

/* One plain member (no member headers, no flush points): chunks start at blocks found by trial
 * and are decoded with markers for the window they cannot know yet — data whose markers die out
 * within a chunk (the decoder hands over to ISA-L), data with copies from 30000 bytes back whose
 * markers last to the chunk's end, data with incompressible stretches (stored blocks) — at
 * levels 1, 6 and 9: the same bytes as the sequential decoder, and chunks found by trial taken. */
static void test_speculative(void **state) {
        (void)state;
        size_t n = 3u << 20;
        uint8_t *kinds[3] = { sample(n, 9), malloc(n), malloc(n) };
        uint32_t x = 17;
        for (size_t i = 0; i < n; i++) {
                x = x * 1103515245u + 12345u;
                kinds[1][i] = i >= 30000 && (i / 500) % 4 ? kinds[1][i - 30000] : (uint8_t)(x >> 24);
                kinds[2][i] = (i / 40000) % 3 == 1 ? (uint8_t)(x >> 16) : kinds[0][i];
        }
        for (unsigned k = 0; k < 3; k++)
                for (int level = 1; level <= 9; level += 4) {
                        if (k != 0 && level == 5)
                                continue; /* levels 1 and 9 are enough for the others */
                        struct bytes gz = { 0 }, want = { 0 };
                        gzip_flushed(&gz, kinds[k], n, 0, Z_NO_FLUSH, level);
                        struct hv_error e = { 0 };
                        assert_int_equal(seq_decode(&gz, &want, &e), 0);
                        for (unsigned threads = 2; threads <= 4; threads++) {
                                rig_no_handover = threads == 4; /* markers to each chunk's end */
                                struct pz_io st;
                                uint8_t *got = decoded(&gz, threads, true, 300000, n, &st);
                                assert_memory_equal(got, want.p, n);
                                if (getenv("PZ_DEBUG"))
                                        print_message("kind %u level %d threads %u: %u chunks, %u accepted (%u by trial, %u to the end, %llu marker bytes), %u redone\n",
                                                      k, level, threads, st.chunks, st.accepted, st.spec, st.spec_to_end,
                                                      (unsigned long long)st.marker_bytes, st.redone);
                                assert_true(st.spec >= 2);
                                assert_true(st.marker_bytes > 0);
                                if (rig_no_handover && k == 1) /* these markers last: the decoder after the chunk is made in consume() */
                                        assert_true(st.spec_to_end >= 2);
                                free(got);
                        }
                        rig_no_handover = false;
                        free(want.p);
                        free(gz.p);
                }
        for (unsigned k = 0; k < 3; k++)
                free(kinds[k]);
}

static void test_members(void **state) {
        (void)state;
        size_t n = 400000;
        uint8_t *d = sample(n, 2);
        struct bytes gz = { 0 };
        for (size_t pos = 0; pos < n; pos += 30000) /* concatenated members (BGZF-sized pieces) */
                gzip_flushed(&gz, d + pos, n - pos < 30000 ? n - pos : 30000, 0, Z_NO_FLUSH, 6);
        unsigned accepted = 0;
        same_as_sequential(&gz, &accepted);
        assert_true(accepted > 10); /* decoded side by side, not only in order */
        /* an empty member between them, and one of stored blocks */
        struct bytes more = { 0 };
        put(&more, gz.p, gz.n);
        gzip_flushed(&more, d, 0, 0, Z_NO_FLUSH, 6);
        gzip_flushed(&more, d, 50000, 0, Z_NO_FLUSH, 0);
        same_as_sequential(&more, NULL);
        free(more.p);
        free(gz.p);
        free(d);
}

static void test_independent_flushes(void **state) {
        (void)state;
        size_t n = 600000;
        uint8_t *d = sample(n, 3);
        struct bytes gz = { 0 };
        gzip_flushed(&gz, d, n, 16384, Z_FULL_FLUSH, 6); /* what pigz --independent does */
        unsigned accepted = 0;
        same_as_sequential(&gz, &accepted);
        assert_true(accepted > 10);
        /* two such members: a member split over chunks has its CRC put together */
        gzip_flushed(&gz, d, n / 2, 10000, Z_FULL_FLUSH, 1);
        same_as_sequential(&gz, NULL);
        free(gz.p);
        free(d);
}

/* Cut points that are none: whole gzip members and flush markers inside stored blocks (an
 * image holding .gz files, compressed at level 0). Decoded from there they are valid gzip —
 * only the decoder of the chunk before knows they are data. */
static void test_false_boundaries(void **state) {
        (void)state;
        uint8_t *d = sample(3000, 7);
        struct bytes inner = { 0 }, payload = { 0 }, gz = { 0 };
        gzip_flushed(&inner, d, 3000, 1000, Z_FULL_FLUSH, 6);
        for (int i = 0; i < 40; i++)
                put(&payload, inner.p, inner.n);
        gzip_flushed(&gz, payload.p, payload.n, 0, Z_NO_FLUSH, 0);
        unsigned accepted = 0;
        same_as_sequential(&gz, &accepted);
        free(inner.p);
        free(payload.p);
        free(gz.p);
        free(d);
}

/* One member: independent flush points first, then dependent ones (it goes on one thread in
 * the middle of the member); its trailer is checked whichever decoder ends it: a wrong CRC32 or
 * ISIZE is refused by both decoders. */
static void test_mixed_flushes(void **state) {
        (void)state;
        size_t n = 400000;
        uint8_t *d = sample(n, 6);
        struct bytes gz = { 0 };
        z_stream z = { 0 };
        assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
        size_t cap = deflateBound(&z, n) + 4096;
        uint8_t *buf = malloc(cap);
        z.next_out = buf;
        z.avail_out = (uInt)cap;
        for (size_t pos = 0; pos < n; pos += 10000) {
                z.next_in = d + pos;
                z.avail_in = 10000;
                int r = deflate(&z, pos + 10000 >= n ? Z_FINISH : pos < n / 2 ? Z_FULL_FLUSH : Z_SYNC_FLUSH);
                assert_true(r == Z_OK || r == Z_STREAM_END);
        }
        put(&gz, buf, cap - z.avail_out);
        deflateEnd(&z);
        free(buf);
        same_as_sequential(&gz, NULL);
        size_t backs[] = { 8, 1 }; /* a byte of the CRC32, then of ISIZE */
        for (unsigned i = 0; i < 2; i++) {
                gz.p[gz.n - backs[i]] ^= 1;
                compare(&gz, NULL, false);
                gz.p[gz.n - backs[i]] ^= 1;
        }
        free(gz.p);
        free(d);
}

static void test_dependent_flushes(void **state) {
        (void)state;
        size_t n = 600000;
        uint8_t *d = sample(n, 4);
        struct bytes gz = { 0 };
        gzip_flushed(&gz, d, n, 16384, Z_SYNC_FLUSH, 6); /* pigz's default: back-references across */
        same_as_sequential(&gz, NULL);
        /* with speculation the flush points after the first that refers back start with markers */
        struct pz_io st;
        uint8_t *got = decoded(&gz, 2, true, 20000, n, &st);
        assert_memory_equal(got, d, n);
        assert_false(st.gave_up);
        assert_true(st.spec >= 3);
        free(got);
        free(gz.p);
        free(d);
}

/* Corruption anywhere: both decoders refuse (or, where a flip hits nothing that matters —
 * a header's MTIME — both give the same bytes). */
static void test_corrupt(void **state) {
        (void)state;
        size_t n = 200000;
        uint8_t *d = sample(n, 5);
        struct bytes gz = { 0 };
        gzip_flushed(&gz, d, n, 8000, Z_FULL_FLUSH, 6);
        gzip_flushed(&gz, d, n, 0, Z_NO_FLUSH, 6);
        for (size_t at = 3; at < gz.n; at += gz.n / 23) {
                struct bytes bad = { 0 };
                put(&bad, gz.p, gz.n);
                bad.p[at] ^= 0x5a;
                compare(&bad, NULL, true);
                free(bad.p);
        }
        /* truncated, and with trailing garbage */
        struct bytes cut = { .p = gz.p, .n = gz.n - 5 };
        compare(&cut, NULL, true);
        struct bytes tail = { 0 };
        put(&tail, gz.p, gz.n);
        put(&tail, "garbage!", 8);
        compare(&tail, NULL, true);
        free(tail.p);
        free(gz.p);
        free(d);
}

static void test_limit(void **state) {
        (void)state;
        size_t n = 3 << 20;
        uint8_t *d = calloc(1, n);
        struct bytes gz = { 0 };
        for (size_t pos = 0; pos < n; pos += 1 << 18)
                gzip_flushed(&gz, d + pos, 1 << 18, 0, Z_NO_FLUSH, 9);
        uint8_t *got;
        size_t len;
        struct hv_error e = { 0 };
        assert_true(rig_run(gz.p, gz.n, 2, true, 1000, 4096, 1 << 20, &got, &len, NULL, &e) < 0);
        assert_int_equal(e.kind, HV_E_TOO_LARGE);
        free(got);
        free(gz.p);
        free(d);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_find_cut),        cmocka_unit_test(test_single_member), cmocka_unit_test(test_speculative), cmocka_unit_test(test_members),
                cmocka_unit_test(test_independent_flushes), cmocka_unit_test(test_dependent_flushes), cmocka_unit_test(test_false_boundaries),
                cmocka_unit_test(test_mixed_flushes), cmocka_unit_test(test_corrupt),
                cmocka_unit_test(test_limit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
