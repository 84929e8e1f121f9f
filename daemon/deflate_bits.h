/* deflate_bits.h: the pieces of a deflate decoder over memory (RFC 1951) that the block finder
 * (deflate_find.c) and the speculative decoder (deflate_spec.c) share: a bit reader, canonical
 * Huffman tables with a 10-bit lookup (longer codes bit by bit: they are rare by construction),
 * the length and distance tables. Private to those two files. */
#pragma once
#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "deflate_spec.h"

#define LB 10 /* bits of the lookup tables */
#define MAX_MATCH 258

struct bits {
        const uint8_t *p;
        size_t n, ip; /* bytes; the next byte to load */
        uint64_t buf; /* bits loaded, not yet used (low first) */
        unsigned cnt;
};

static inline void refill(struct bits *b) {
        if (b->ip + 8 <= b->n) {
                uint64_t v;
                memcpy(&v, b->p + b->ip, 8);
                b->buf |= le64toh(v) << b->cnt;
                b->ip += (63 - b->cnt) >> 3;
                b->cnt |= 56;
                return;
        }
        while (b->cnt <= 56 && b->ip < b->n) {
                b->buf |= (uint64_t)b->p[b->ip++] << b->cnt;
                b->cnt += 8;
        }
}

/* k bits (k <= 32), or -1 when the input has ended */
static inline int64_t get(struct bits *b, unsigned k) {
        if (b->cnt < k) {
                refill(b);
                if (b->cnt < k)
                        return -1;
        }
        uint64_t v = b->buf & ((1ull << k) - 1);
        b->buf >>= k;
        b->cnt -= k;
        return (int64_t)v;
}

static inline uint64_t bit_pos(const struct bits *b) { return (uint64_t)b->ip * 8 - b->cnt; }

static inline void bits_at(struct bits *b, const uint8_t *p, size_t n, uint64_t bit) {
        *b = (struct bits){ .p = p, .n = n, .ip = (size_t)(bit / 8) };
        if (bit % 8)
                (void)get(b, (unsigned)(bit % 8)); /* bit / 8 < n: ds callers check */
}

struct huff {
        uint16_t fast[1 << LB]; /* symbol << 4 | length; 0: a code longer than LB bits */
        uint16_t count[16];     /* codes per length */
        uint16_t sym[288];      /* symbols in canonical order */
};

/* A symbol, or -1 when the input ended */
static inline int decode_sym(struct bits *b, const struct huff *h) {
        if (b->cnt < 15)
                refill(b);
        uint16_t e = h->fast[b->buf & ((1u << LB) - 1)];
        if (e && (e & 15) <= b->cnt) {
                b->buf >>= e & 15;
                b->cnt -= e & 15;
                return e >> 4;
        }
        int code = 0, first = 0, index = 0;
        for (unsigned l = 1; l < 16; l++) {
                int64_t bit = get(b, 1);
                if (bit < 0)
                        return -1;
                code |= (int)bit;
                int count = h->count[l];
                if (code - count < first)
                        return h->sym[index + (code - first)];
                index += count;
                first = (first + count) << 1;
                code <<= 1;
        }
        return -1; /* not reached for a complete code */
}

static const uint16_t len_base[29] = { 3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                       31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258 };
static const uint8_t len_extra[29] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0 };
static const uint16_t dist_base[30] = { 1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
                                        193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577 };
static const uint8_t dist_extra[30] = { 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13 };

/* A length/distance pair after length symbol s: 0, DS_EDATA or DS_EINPUT. */
static inline int read_match(struct bits *b, const struct huff *dist, int s, unsigned *len, unsigned *d) {
        if (s > 285)
                return DS_EDATA;
        s -= 257;
        int64_t x = len_extra[s] ? get(b, len_extra[s]) : 0;
        int ds = decode_sym(b, dist);
        if (x < 0 || ds < 0)
                return DS_EINPUT;
        if (ds > 29)
                return DS_EDATA;
        int64_t y = dist_extra[ds] ? get(b, dist_extra[ds]) : 0;
        if (y < 0)
                return DS_EINPUT;
        *len = len_base[s] + (unsigned)x;
        *d = dist_base[ds] + (unsigned)y;
        return 0;
}

/* A stored block's length, after its 3 header bits (padding to the byte, LEN, NLEN): the length,
 * DS_EINPUT, or DS_EDATA when NLEN is not LEN's complement. */
static inline int64_t stored_len(struct bits *b) {
        (void)get(b, b->cnt % 8);
        int64_t l = get(b, 16), nl = get(b, 16);
        if (l < 0 || nl < 0)
                return DS_EINPUT;
        return (l ^ nl) == 0xffff ? l : DS_EDATA;
}

/* Only complete codes: an over-subscribed or incomplete one gives -1 (zlib writes complete codes
 * only; the sequential decoder gets whatever this refuses). */
int dsb_huff_build(struct huff *h, const uint8_t *len, unsigned n);
/* The rest of a dynamic block's header (after BFINAL and BTYPE): 0, DS_EDATA or DS_EINPUT. */
int dsb_read_dynamic(struct bits *b, struct huff *lit, struct huff *dist);
void dsb_fixed_codes(struct huff *lit, struct huff *dist);
