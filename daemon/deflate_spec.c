/* deflate_spec.c: see deflate_spec.h. The decoder's output is 16-bit symbols so a byte the chunk
 * cannot know yet can stand as a marker. Only the start of a chunk runs here — until its output
 * is clean or the window is known — so simplicity beats speed, within reason. */
#include <stdlib.h>

#include "deflate_bits.h"

enum { ST_HEADER, ST_CODES, ST_STORED };

struct ds {
        struct bits b;
        uint64_t end;
        const atomic_bool *yield;
        unsigned state;
        unsigned stored_left;
        bool last; /* the current block is the final one */
        struct huff lit, dist;
        /* the inner loop's tables (entries from lit_entry/dist_entry with the code's length in
         * bits 0-3; 0: a code longer than LB bits) */
        uint32_t lt[1 << LB], dt[1 << LB];
        uint64_t total;       /* symbols put out */
        int64_t last_marker;  /* the index of the last marker put out, -1: none */
        uint16_t hist[DS_WIN]; /* the last DS_WIN symbols (a ring) */
};

struct ds *ds_new(void) { return calloc(1, sizeof(struct ds)); }

void ds_free(struct ds *d) { free(d); }

void ds_start(struct ds *d, const uint8_t *p, size_t n, uint64_t bit, uint64_t end, const atomic_bool *yield) {
        bits_at(&d->b, p, n, bit < (uint64_t)n * 8 ? bit : 0);
        if (bit >= (uint64_t)n * 8)
                d->b.ip = n, d->b.cnt = 0, d->b.buf = 0;
        d->end = end;
        d->yield = yield;
        d->state = ST_HEADER;
        d->total = 0;
        d->last_marker = -1;
}

uint64_t ds_bit(const struct ds *d) { return bit_pos(&d->b); }

uint64_t ds_total(const struct ds *d) { return d->total; }

int ds_window_known(const struct ds *d, const uint8_t *known, uint64_t avail, uint8_t *win, size_t *len) {
        uint64_t have = avail + d->total;
        size_t n = have < DS_WIN ? (size_t)have : DS_WIN;
        for (size_t i = 0; i < n; i++) {
                int64_t at = (int64_t)d->total - (int64_t)n + (int64_t)i; /* < 0: before the chunk */
                uint16_t v = at < 0 ? known[DS_WIN + at] : d->hist[at & (DS_WIN - 1)];
                if (v >= DS_MARKER) {
                        unsigned w = v - DS_MARKER;
                        if (DS_WIN - w > avail)
                                return -1;
                        v = known[w];
                }
                win[i] = (uint8_t)v;
        }
        *len = n;
        return 0;
}

/* A literal/length symbol as the inner loop takes it: bits 4-5 its kind (0 a literal, 1 a
 * length, 2 the end of the block, 3 not a symbol), bits 8-11 a length's extra bits, bits 16-31
 * the literal or the length's base. */
enum { K_LIT = 0, K_LEN = 1 << 4, K_END = 2 << 4, K_BAD = 3 << 4, K_MASK = 3 << 4 };
static inline uint32_t lit_entry(unsigned s) {
        if (s < 256)
                return (uint32_t)s << 16 | K_LIT;
        if (s == 256)
                return K_END;
        if (s > 285)
                return K_BAD;
        return (uint32_t)len_base[s - 257] << 16 | (uint32_t)len_extra[s - 257] << 8 | K_LEN;
}

/* A distance symbol: bit 4 set when it is none (30, 31), bits 8-11 its extra bits, 16-31 its base. */
static inline uint32_t dist_entry(unsigned s) {
        return s > 29 ? 1u << 4 : (uint32_t)dist_base[s] << 16 | (uint32_t)dist_extra[s] << 8;
}

static void tables(struct ds *d) {
        for (unsigned i = 0; i < (1u << LB); i++) {
                uint16_t l = d->lit.fast[i], k = d->dist.fast[i];
                d->lt[i] = l ? lit_entry(l >> 4) | (l & 15) : 0;
                d->dt[i] = k ? dist_entry(k >> 4) | (k & 15) : 0;
        }
}

static int header(struct ds *d) {
        uint64_t at = bit_pos(&d->b);
        if (at == d->end)
                return DS_END;
        if (at > d->end)
                return DS_EINPUT;
        if ((int64_t)d->total - d->last_marker - 1 >= (int64_t)DS_WIN)
                return DS_CLEAN;
        if (d->yield && atomic_load_explicit(d->yield, memory_order_acquire))
                return DS_YIELD;
        int64_t v = get(&d->b, 3);
        if (v < 0)
                return DS_EINPUT;
        if (v & 1)
                return DS_EFINAL;
        switch (v >> 1) {
        case 0: {
                int64_t l = stored_len(&d->b);
                if (l < 0)
                        return (int)l;
                d->stored_left = (unsigned)l;
                d->state = ST_STORED;
                return DS_MORE;
        }
        case 1:
                dsb_fixed_codes(&d->lit, &d->dist);
                break;
        case 2: {
                int r = dsb_read_dynamic(&d->b, &d->lit, &d->dist);
                if (r < 0)
                        return r;
                break;
        }
        default:
                return DS_EDATA;
        }
        tables(d);
        d->state = ST_CODES;
        return DS_MORE;
}

/* The symbol `back` places before out[o]: this call's output, the ring (the calls before), or a
 * marker for the window before the chunk. */
static inline uint16_t behind(const struct ds *d, const uint16_t *out, size_t o, uint64_t base, unsigned back) {
        if (back <= o)
                return out[o - back];
        uint64_t before = back - o;
        if (before <= base)
                return d->hist[(base - before) & (DS_WIN - 1)];
        return (uint16_t)(DS_MARKER + DS_WIN - (before - base));
}

/* A match of len symbols from dist back onto out[o], the new count returned: from this call's
 * output in words of 4 symbols (8 where the distance allows), else through behind(). With
 * `room` the last word may run up to 7 symbols past the match (out has room for them; they are
 * written over later). A distance under 4 copies its first symbols one by one, then words
 * from a multiple of it (4 or 6) back — the same symbols, without a load waiting on the store
 * just before it.
 * *last_marker gets the index of the last marker it (may have) copied. */
static inline size_t copy_match(const struct ds *d, uint16_t *out, size_t o, uint64_t base, unsigned len, unsigned dist,
                                int64_t *last_marker, bool room) {
        if (dist > o) {
                for (unsigned i = 0; i < len; i++, o++) {
                        out[o] = behind(d, out, o, base, dist);
                        if (out[o] >= DS_MARKER)
                                *last_marker = (int64_t)(base + o);
                }
                return o;
        }
        uint16_t *dst = out + o;
        unsigned i = 0, step = dist;
        if (dist < 4) {
                step = dist == 3 ? 6 : 4;
                const uint16_t *near = dst - dist;
                for (; i < step && i < len; i++)
                        dst[i] = near[i];
        }
        const uint16_t *src = dst - step;
        if (room && step >= 8)
                for (; i < len; i += 8) {
                        uint8_t w[16];
                        memcpy(w, src + i, 16);
                        memcpy(dst + i, w, 16);
                }
        else if (room)
                for (; i < len; i += 4) {
                        uint64_t w;
                        memcpy(&w, src + i, 8);
                        memcpy(dst + i, &w, 8);
                }
        else {
                for (; i + 4 <= len; i += 4) {
                        uint64_t w;
                        memcpy(&w, src + i, 8);
                        memcpy(dst + i, &w, 8);
                }
                for (; i < len; i++)
                        dst[i] = src[i];
        }
        /* a marker may have been copied: clean only 32 KiB after this */
        if (*last_marker >= (int64_t)(base + o - dist))
                *last_marker = (int64_t)(base + o + len - 1);
        return o + len;
}

/* The ring gets the last symbols of this call's output. */
static void keep(struct ds *d, const uint16_t *out, size_t o, uint64_t base) {
        size_t k = o < DS_WIN ? o : DS_WIN;
        uint64_t pos = base + o - k;
        size_t at = (size_t)(pos & (DS_WIN - 1)), first = DS_WIN - at < k ? DS_WIN - at : k;
        memcpy(d->hist + at, out + o - k, first * sizeof(*out));
        memcpy(d->hist, out + o - k + first, (k - first) * sizeof(*out));
        d->total = base + o;
}

/* The inner loop while at least 8 bytes of input are left: one refill gives the 48 bits a literal
 * or a length/distance pair can take; codes longer than LB bits take decode_sym's slow path.
 * The bit reader lives in locals here (kept in registers). Returns the new output count; *r is
 * set on an error; d->state at the block's end. */
static size_t fast_codes(struct ds *d, uint16_t *out, size_t o, size_t cap, uint64_t base, int *r) {
        const uint32_t *lt = d->lt, *dt = d->dt;
        const uint8_t *p = d->b.p;
        size_t ip = d->b.ip, n = d->b.n;
        uint64_t buf = d->b.buf;
        unsigned cnt = d->b.cnt;
        int64_t last_marker = d->last_marker;
        /* a code longer than LB bits, bit by bit: its entry, without a length (the bits are taken) */
#define SLOW(h, entry, e)                                                                  \
        do {                                                                               \
                d->b = (struct bits){ .p = p, .n = n, .ip = ip, .buf = buf, .cnt = cnt }; \
                int s_ = decode_sym(&d->b, h); /* not with 56 bits: a complete code */      \
                e = entry(s_ < 0 ? 0xffff : (unsigned)s_);                                 \
                ip = d->b.ip, buf = d->b.buf, cnt = d->b.cnt;                              \
        } while (0)
        /* the next symbol's entry from table t (its code's bits taken), or through SLOW */
#define TAKE(t, h, entry, e)                                      \
        do {                                                      \
                e = t[buf & ((1u << LB) - 1)];                    \
                if (e) {                                          \
                        buf >>= e & 15;                           \
                        cnt -= e & 15;                            \
                } else                                            \
                        SLOW(h, entry, e);                        \
        } while (0)
        /* an entry's base plus its extra bits (bits 8-11 of the entry say how many) */
#define VALUE(e, v)                                                          \
        do {                                                                 \
                unsigned x_ = (e >> 8) & 15;                                 \
                v = (e >> 16) + (unsigned)(buf & ((1u << x_) - 1));          \
                buf >>= x_;                                                  \
                cnt -= x_;                                                   \
        } while (0)
        while (o + MAX_MATCH + 16 <= cap && ip + 8 <= n) {
                uint64_t v;
                memcpy(&v, p + ip, 8);
                buf |= le64toh(v) << cnt;
                ip += (63 - cnt) >> 3;
                cnt |= 56; /* an iteration takes at most 15 + 5 + 15 + 13 bits */
                uint32_t e;
                TAKE(lt, &d->lit, lit_entry, e);
                if ((e & K_MASK) == K_LIT) {
                        out[o++] = (uint16_t)(e >> 16);
                        /* more literals while the bits last: up to 15 + 33 per symbol after this */
                        while (cnt >= 48 && (e = lt[buf & ((1u << LB) - 1)]) && (e & K_MASK) == K_LIT) {
                                buf >>= e & 15;
                                cnt -= e & 15;
                                out[o++] = (uint16_t)(e >> 16);
                        }
                        continue;
                }
                if ((e & K_MASK) != K_LEN) {
                        if ((e & K_MASK) == K_END)
                                d->state = ST_HEADER;
                        else
                                *r = DS_EDATA;
                        break;
                }
                unsigned len, dist;
                VALUE(e, len);
                uint32_t f;
                TAKE(dt, &d->dist, dist_entry, f);
                if (f & (1u << 4)) {
                        *r = DS_EDATA;
                        break;
                }
                VALUE(f, dist);
                o = copy_match(d, out, o, base, len, dist, &last_marker, true);
        }
#undef VALUE
#undef TAKE
#undef SLOW
        d->b = (struct bits){ .p = p, .n = n, .ip = ip, .buf = buf, .cnt = cnt };
        d->last_marker = last_marker;
        return o;
}

int ds_run(struct ds *d, uint16_t *out, size_t cap, size_t *made) {
        size_t o = 0;
        const uint64_t base = d->total;
        int r = DS_MORE;
        while (r == DS_MORE) {
                if (d->state == ST_HEADER) {
                        d->total = base + o;
                        r = header(d);
                        continue;
                }
                if (d->state == ST_STORED) {
                        while (d->stored_left && o < cap) {
                                int64_t v = get(&d->b, 8);
                                if (v < 0) {
                                        r = DS_EINPUT;
                                        break;
                                }
                                out[o++] = (uint16_t)v;
                                d->stored_left--;
                        }
                        if (d->stored_left == 0)
                                d->state = ST_HEADER;
                        else if (r == DS_MORE)
                                break; /* out is full */
                        continue;
                }
                if (cap - o < MAX_MATCH)
                        break;
                o = fast_codes(d, out, o, cap, base, &r);
                if (r != DS_MORE || d->state != ST_CODES || cap - o < MAX_MATCH)
                        continue;
                int s = decode_sym(&d->b, &d->lit);
                if (s < 0) {
                        r = DS_EINPUT;
                } else if (s < 256) {
                        out[o++] = (uint16_t)s;
                } else if (s == 256) {
                        d->state = ST_HEADER;
                } else {
                        unsigned len, dist;
                        if ((r = read_match(&d->b, &d->dist, s, &len, &dist)) < 0)
                                break;
                        o = copy_match(d, out, o, base, len, dist, &d->last_marker, false);
                }
        }
        keep(d, out, o, base);
        *made = o;
        return r;
}

/* Whether a run of 64 symbols holds a marker, and its low bytes into out (a fixed count: vectorises). */
static inline bool narrow64(const uint16_t *sym, uint8_t *out) {
        uint16_t any = 0;
        for (unsigned i = 0; i < 64; i++) {
                any |= sym[i];
                out[i] = (uint8_t)sym[i];
        }
        return any >= DS_MARKER;
}

int ds_resolve(const uint16_t *sym, size_t n, const uint8_t *win, uint64_t avail, uint8_t *out, size_t *done) {
        /* every symbol's byte in one table: runs with markers without a branch per symbol */
        static _Thread_local uint8_t full[DS_MARKER + DS_WIN];
        for (unsigned i = 0; i < DS_MARKER; i++)
                full[i] = (uint8_t)i;
        memcpy(full + DS_MARKER, win, DS_WIN);
        /* in runs of 64 through a buffer of its own (out may be sym's memory) */
        uint8_t tmp[64];
        uint16_t last[64];
        for (size_t j = 0; j < n; j += 64) {
                size_t m = n - j < 64 ? n - j : 64;
                const uint16_t *run = sym + j;
                if (m < 64) { /* the tail, padded */
                        memset(last, 0, sizeof(last));
                        memcpy(last, sym + j, m * sizeof(*sym));
                        run = last;
                }
                if (narrow64(run, tmp)) {
                        if (avail < DS_WIN) /* near the stream's start: a marker may reach before it */
                                for (size_t i = 0; i < m; i++)
                                        if (run[i] >= DS_MARKER && DS_WIN - (unsigned)(run[i] - DS_MARKER) > avail) {
                                                for (size_t k = 0; k < i; k++)
                                                        tmp[k] = full[run[k]];
                                                memcpy(out + j, tmp, i);
                                                *done = j + i;
                                                return -1;
                                        }
                        for (size_t i = 0; i < 64; i++)
                                tmp[i] = full[run[i]];
                }
                memcpy(out + j, tmp, m);
        }
        *done = n;
        return 0;
}
