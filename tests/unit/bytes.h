/* bytes.h: a growing byte buffer, and raw deflate into one, for the unit tests that build gzip
 * and deflate streams (include after cmocka.h). */
#pragma once
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct bytes {
        uint8_t *p;
        size_t n, cap;
};

static inline void put(struct bytes *b, const void *p, size_t n) {
        if (n > ((size_t)1 << 40))
                abort(); /* tells gcc -O3 the sum below cannot wrap */
        if (b->n + n + 1 > b->cap) {
                b->cap = (b->n + n + 1) * 2;
                b->p = realloc(b->p, b->cap);
                assert_non_null(b->p);
        }
        memcpy(b->p + b->n, p, n);
        b->n += n;
}

/* Raw deflate of data. */
static inline void deflate_raw(struct bytes *out, const uint8_t *data, size_t n, int level) {
        z_stream z = { 0 };
        assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
        size_t cap = deflateBound(&z, n);
        uint8_t *buf = malloc(cap);
        z.next_in = (Bytef *)data;
        z.avail_in = (uInt)n;
        z.next_out = buf;
        z.avail_out = (uInt)cap;
        assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
        put(out, buf, cap - z.avail_out);
        deflateEnd(&z);
        free(buf);
}
