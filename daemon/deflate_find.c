/* deflate_find.c: see deflate_spec.h (ds_block_at, ds_find_block): where in a deflate stream a
 * block starts, found by trial — for a parallel decode of a gzip member without flush points. */
#include <stdlib.h>

#include "deflate_bits.h"

static unsigned rev(unsigned code, unsigned len) {
        unsigned r = 0;
        for (unsigned i = 0; i < len; i++, code >>= 1)
                r = (r << 1) | (code & 1);
        return r;
}

/* Only complete codes: an over-subscribed or incomplete one gives -1 (zlib writes complete codes
 * only; the sequential decoder gets whatever this refuses). */
int dsb_huff_build(struct huff *h, const uint8_t *len, unsigned n) {
        memset(h->count, 0, sizeof(h->count));
        for (unsigned i = 0; i < n; i++)
                h->count[len[i]]++;
        h->count[0] = 0;
        int left = 1;
        for (unsigned l = 1; l < 16; l++) {
                left = 2 * left - h->count[l];
                if (left < 0)
                        return -1;
        }
        if (left != 0)
                return -1;
        uint16_t offs[16];
        offs[1] = 0;
        for (unsigned l = 1; l < 15; l++)
                offs[l + 1] = (uint16_t)(offs[l] + h->count[l]);
        for (unsigned s = 0; s < n; s++)
                if (len[s])
                        h->sym[offs[len[s]]++] = (uint16_t)s;
        memset(h->fast, 0, sizeof(h->fast));
        unsigned code = 0, k = 0;
        for (unsigned l = 1; l <= LB; l++, code <<= 1)
                for (unsigned c = 0; c < h->count[l]; c++, k++, code++)
                        for (unsigned f = rev(code, l); f < (1u << LB); f += 1u << l)
                                h->fast[f] = (uint16_t)(h->sym[k] << 4 | l);
        return 0;
}

static const uint8_t cl_order[19] = { 16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15 };
/* The rest of a dynamic block's header (after BFINAL and BTYPE): 0, DS_EDATA or DS_EINPUT. */
int dsb_read_dynamic(struct bits *b, struct huff *lit, struct huff *dist) {
        int64_t v = get(b, 14);
        if (v < 0)
                return DS_EINPUT;
        unsigned hlit = (unsigned)(v & 31) + 257, hdist = (unsigned)((v >> 5) & 31) + 1, hclen = (unsigned)(v >> 10) + 4;
        if (hlit > 286 || hdist > 30)
                return DS_EDATA;
        uint8_t cl[19] = { 0 }, len[286 + 30];
        for (unsigned i = 0; i < hclen; i++) {
                if ((v = get(b, 3)) < 0)
                        return DS_EINPUT;
                cl[cl_order[i]] = (uint8_t)v;
        }
        struct huff *clh = dist; /* scratch until the distance code is built */
        if (dsb_huff_build(clh, cl, 19) < 0)
                return DS_EDATA;
        for (unsigned i = 0; i < hlit + hdist;) {
                int s = decode_sym(b, clh);
                if (s < 0)
                        return DS_EINPUT;
                if (s < 16) {
                        len[i++] = (uint8_t)s;
                        continue;
                }
                unsigned rep, val = 0;
                if (s == 16) {
                        if (i == 0)
                                return DS_EDATA;
                        val = len[i - 1];
                        v = get(b, 2), rep = 3;
                } else if (s == 17)
                        v = get(b, 3), rep = 3;
                else
                        v = get(b, 7), rep = 11;
                if (v < 0)
                        return DS_EINPUT;
                rep += (unsigned)v;
                if (i + rep > hlit + hdist)
                        return DS_EDATA;
                memset(len + i, (int)val, rep);
                i += rep;
        }
        if (len[256] == 0 || dsb_huff_build(lit, len, hlit) < 0 || dsb_huff_build(dist, len + hlit, hdist) < 0)
                return DS_EDATA;
        return 0;
}

void dsb_fixed_codes(struct huff *lit, struct huff *dist) {
        uint8_t len[288];
        memset(len, 8, 144);
        memset(len + 144, 9, 112);
        memset(len + 256, 7, 24);
        memset(len + 280, 8, 8);
        (void)dsb_huff_build(lit, len, 288);
        /* all 32 five-bit codes; 30 and 31 are refused where they are read */
        uint8_t l32[32];
        memset(l32, 5, 32);
        (void)dsb_huff_build(dist, l32, 32);
}

/* The header of the block after a candidate: anything but a reserved type or a stored block whose
 * lengths disagree. */
static bool next_header_ok(struct bits *b) {
        int64_t v = get(b, 3);
        if (v < 0 || (v >> 1) == 3)
                return false;
        if ((v >> 1) == 0)
                return stored_len(b) >= 0;
        if ((v >> 1) == 1)
                return true;
        struct huff lit, dist;
        return dsb_read_dynamic(b, &lit, &dist) == 0;
}

/* Decodes a Huffman-coded block's symbols up to its end-of-block without output. */
static bool skim_codes(struct bits *b, const struct huff *lit, const struct huff *dist) {
        for (;;) {
                int s = decode_sym(b, lit);
                if (s < 0)
                        return false;
                if (s < 256)
                        continue;
                if (s == 256)
                        return true;
                unsigned len, d;
                if (read_match(b, dist, s, &len, &d) < 0)
                        return false;
        }
}

/* A block at b: not the last, valid to its end, and a plausible header after it. */
static bool block_ok(struct bits *b, bool dynamic_only) {
        int64_t v = get(b, 3);
        if (v < 0 || (v & 1) || (dynamic_only && v != 4))
                return false;
        struct huff lit, dist;
        switch (v >> 1) {
        case 0: {
                int64_t l = stored_len(b);
                if (l < 0)
                        return false;
                for (int64_t i = 0; i < l; i++)
                        if (get(b, 8) < 0)
                                return false;
                break;
        }
        case 1:
                dsb_fixed_codes(&lit, &dist);
                if (!skim_codes(b, &lit, &dist))
                        return false;
                break;
        case 2:
                if (dsb_read_dynamic(b, &lit, &dist) < 0 || !skim_codes(b, &lit, &dist))
                        return false;
                break;
        default:
                return false;
        }
        return next_header_ok(b);
}

bool ds_block_at(const uint8_t *p, size_t n, uint64_t bit) {
        if (bit / 8 >= n)
                return false;
        struct bits b;
        bits_at(&b, p, n, bit);
        return block_ok(&b, false);
}

static bool dynamic_at(const uint8_t *p, size_t n, uint64_t bit) {
        struct bits b;
        bits_at(&b, p, n, bit);
        return block_ok(&b, true);
}

/* A stored block's LEN and NLEN at byte i, and its header's zero bits in the byte before. */
static bool stored_at(const uint8_t *p, size_t i) {
        return (p[i] ^ p[i + 2]) == 0xff && (p[i + 1] ^ p[i + 3]) == 0xff && (p[i - 1] & 0xe0) == 0;
}

static uint64_t load64(const uint8_t *p, size_t n, size_t i) {
        uint64_t w = 0;
        if (i + 8 <= n) {
                memcpy(&w, p + i, 8);
                return le64toh(w);
        }
        for (size_t j = 0; i + j < n; j++)
                w |= (uint64_t)p[i + j] << (8 * j);
        return w;
}

/* Whether a complete code-length code follows the 17 header bits at `bit`. */
static bool cl_complete(const uint8_t *p, size_t n, uint64_t bit, unsigned hclen, const uint16_t *k4) {
        uint64_t cl = bit + 17;
        uint64_t cw = load64(p, n, (size_t)(cl / 8)) >> (cl % 8); /* 57 bits at least: the 19 lengths */
        unsigned kraft = 0;
        for (unsigned j = 0; j < hclen; j += 4)
                kraft += k4[(cw >> (3 * j)) & (hclen - j >= 4 ? 4095u : (1u << (3 * (hclen - j))) - 1)];
        return kraft == 128;
}

uint64_t ds_find_block(const uint8_t *p, size_t n, uint64_t from, uint64_t to) {
        if (to > (uint64_t)n * 8)
                to = (uint64_t)n * 8;
        if (to < 74 || from > to - 74)
                return UINT64_MAX;
        uint64_t last = to - 74; /* the last bit offset with room for a header's cheap tests */
        /* tables: the 13 bits BFINAL 0, BTYPE 2, HLIT <= 29, HDIST <= 29 (one in nine passes);
         * the Kraft sum (in 128ths) of four 3-bit code lengths */
        uint8_t ok13[8192];
        uint16_t k4[4096];
        for (unsigned i = 0; i < 8192; i++)
                ok13[i] = (i & 7) == 4 && ((i >> 3) & 31) <= 29 && ((i >> 8) & 31) <= 29;
        for (unsigned i = 0; i < 4096; i++) {
                k4[i] = 0;
                for (unsigned j = 0; j < 4; j++) {
                        unsigned l = (i >> (3 * j)) & 7;
                        k4[i] = (uint16_t)(k4[i] + (l ? 128u >> l : 0));
                }
        }
        /* a stored block found first ends where a chunk may start; scanned ahead of the bit scan */
        uint64_t after_stored = UINT64_MAX;
        size_t stored_from = 0, next_stored = from / 8 < 1 ? 1 : (size_t)(from / 8);
        for (size_t i = (size_t)(from / 8); (uint64_t)i * 8 <= last; i++) {
                if (after_stored == UINT64_MAX && next_stored <= i) {
                        /* the next stored block whose end is at or after here, in the next 64 KiB */
                        size_t lim = (size_t)(to / 8) > next_stored + 65536 ? next_stored + 65536 : (size_t)(to / 8);
                        for (; next_stored + 4 < lim; next_stored++) {
                                if (!stored_at(p, next_stored))
                                        continue;
                                uint64_t end = ((uint64_t)next_stored + 4 + (p[next_stored] | (unsigned)p[next_stored + 1] << 8)) * 8;
                                if (end >= from && end >= (uint64_t)i * 8 && end + 74 <= to && ds_block_at(p, n, end)) {
                                        after_stored = end;
                                        stored_from = next_stored;
                                        break;
                                }
                        }
                }
                /* blocks found inside a stored block's data are those of compressed files stored in
                 * the image (a .gz, a .deb), not of this stream: the stored block's end comes first */
                if (after_stored != UINT64_MAX && i + 1 >= stored_from)
                        return after_stored;
                uint64_t word = load64(p, n, i);
                unsigned mask = 0;
                for (unsigned b = 0; b < 8; b++)
                        mask |= (unsigned)ok13[(word >> b) & 8191] << b;
                while (mask) {
                        unsigned b = (unsigned)__builtin_ctz(mask);
                        mask &= mask - 1;
                        uint64_t bit = (uint64_t)i * 8 + b;
                        if (bit < from || bit > last)
                                continue;
                        unsigned hclen = (unsigned)((word >> (b + 13)) & 15) + 4;
                        if (cl_complete(p, n, bit, hclen, k4) && dynamic_at(p, n, bit))
                                return bit;
                }
        }
        return after_stored;
}

