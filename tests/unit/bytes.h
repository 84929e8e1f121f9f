/* bytes.h: a growing byte buffer for the unit tests that build gzip streams (include after
 * cmocka.h). */
#pragma once
#include <stdlib.h>
#include <string.h>

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
