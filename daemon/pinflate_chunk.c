/* pinflate_chunk.c: see pinflate_int.h. Where the stream is cut into chunks (member headers,
 * flush points, blocks found by trial) and how a decoding thread decodes one — ISA-L from a
 * member or flush point, or speculatively, with markers, from a block found by trial. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pinflate_int.h"

#define PZ_CHECK_ROOM (64u << 10) /* input after a flush point to check the block after it */
#define SPEC_MARGIN (128u << 10) /* input after a block found by trial, to check the block with */

size_t pz_find_cut(const uint8_t *p, size_t n, size_t from, enum pz_kind *kind) {
        size_t cut = 0;
        for (size_t i = from; i + 10 <= n;) {
                const uint8_t *q = memmem(p + i, n - i, "\x1f\x8b\x08", 3);
                size_t at = q ? (size_t)(q - p) : n;
                if (at + 10 > n)
                        break;
                if (at > 0 && !(p[at + 3] & 0xe0)) { /* reserved flag bits clear */
                        cut = at;
                        *kind = PZ_MEMBER;
                        break;
                }
                i = at + 1;
        }
        size_t limit = cut ? cut : n;
        for (size_t i = from; i + 4 < limit;) {
                const uint8_t *q = memmem(p + i, limit - i, "\0\0\xff\xff", 4);
                if (!q || (size_t)(q - p) + 4 >= limit)
                        break;
                size_t at = (size_t)(q - p);
                /* an empty stored block: its header bits and padding (zeros) are in the byte before;
                 * with room to tell, the block after it must check out too (these bytes are common
                 * in data that was stored as it is) */
                if (at > 0 && !(p[at - 1] & 0xe0) && (n - at - 4 < PZ_CHECK_ROOM || ds_block_at(p, n, (uint64_t)(at + 4) * 8))) {
                        cut = at + 4;
                        *kind = PZ_BLOCK;
                        break;
                }
                i = at + 1;
        }
        return cut;
}

int pz_pass_on(struct pz *pz, struct buf *b, struct hv_error *e) {
        pz->out_total += b->len;
        if (pz->n && pz->io->speculate) { /* the window of a chunk after that starts speculatively */
                size_t l = b->len < DS_WIN ? b->len : DS_WIN;
                memmove(pz->win, pz->win + l, DS_WIN - l);
                memcpy(pz->win + DS_WIN - l, b->data + b->len - l, l);
        }
        int r = pz->io->check_out(pz->io->ud, pz->out_total, e);
        return r < 0 ? r : bufq_push(pz->io->out_full, b);
}

int pz_sink_put(struct sink *k, struct hv_error *e) {
        struct buf *b = k->b;
        k->b = NULL;
        if (!k->pz)
                return bufq_push(k->full, b);
        if (b->len == 0)
                return bufq_push(b->home ? b->home : k->free, b);
        return pz_pass_on(k->pz, b, e);
}

/* Runs g over in[0..n) into the sink, until it has taken all the input and has no more output. */
int pz_decode(struct gunzip *g, const uint8_t *in, size_t n, struct sink *k, struct hv_error *e) {
        size_t pos = 0;
        for (;;) {
                if (k->cancel && atomic_load(k->cancel))
                        return -ECANCELED;
                int r;
                if (!k->b) {
                        if ((r = bufq_pop(k->free, &k->b)) < 0)
                                return r;
                        k->b->len = 0;
                        k->b->eof = false;
                        k->b->wide = false;
                }
                struct buf *b = k->b;
                size_t iu, made;
                if ((r = gunzip_step(g, in + pos, n - pos, &iu, b->data + b->len, b->cap - b->len, &made, e)) < 0)
                        return r;
                pos += iu;
                size_t keep = made;
                if (k->skip) {
                        size_t s = k->skip < made ? (size_t)k->skip : made;
                        memmove(b->data + b->len, b->data + b->len + s, made - s);
                        keep -= s;
                        k->skip -= s;
                }
                b->len += keep;
                k->made += made;
                if (b->len == b->cap) {
                        if ((r = pz_sink_put(k, e)) < 0)
                                return r;
                } else if (iu == 0 && made == 0) {
                        if (pos < n)
                                return hv_fail(e, HV_E_BAD_COMPRESSION, EBADMSG, "decompressor stuck at byte offset %llu",
                                               (unsigned long long)g->in_off);
                        return 0;
                }
        }
}

/* A chunk that starts at a block found by trial: with markers for the unknown window
 * (deflate_spec.h), until the output is clean or the window is known; then ISA-L from that
 * block on. A speculative decoder that went on to the chunk's end leaves the decoder that goes
 * on from there to consume(), which knows the window then. */
static int decode_spec(struct slot *s, struct sink *k, struct hv_error *e) {
        ds_start(s->ds, s->in, s->in_len, s->bit, s->end_bit, s->no_handover ? NULL : &s->win_ready);
        s->spec_end = false;
        int r;
        do {
                if (atomic_load(&s->cancel))
                        return -ECANCELED;
                struct buf *b;
                if ((r = bufq_pop(&s->free, &b)) < 0)
                        return r;
                size_t made;
                r = ds_run(s->ds, (uint16_t *)b->data, b->cap / 2, &made);
                b->len = made * 2;
                b->wide = true;
                b->eof = false;
                int r2 = bufq_push(made ? &s->full : &s->free, b);
                if (r2 < 0)
                        return r2;
        } while (r == DS_MORE);
        if (r == DS_END) {
                s->spec_end = true;
                return 0;
        }
        static const char *why[] = { "", "not deflate data where a block seemed to start", "a block goes on past the chunk",
                                     "the last block came before the output could be told" };
        if (r < 0)
                return hv_fail(e, HV_E_BAD_COMPRESSION, EBADMSG, "speculative decoding at byte %llu: %s",
                               (unsigned long long)s->in_off, why[-r]);
        uint8_t dict[DS_WIN];
        size_t dict_len;
        bool clean = r == DS_CLEAN;
        if (ds_window_known(s->ds, clean ? NULL : s->known, clean ? 0 : s->known_avail, dict, &dict_len) < 0)
                return hv_fail(e, HV_E_BAD_COMPRESSION, EBADMSG, "speculative decoding at byte %llu: a back-reference before the start of the stream",
                               (unsigned long long)s->in_off);
        uint64_t bit = ds_bit(s->ds);
        size_t from = (size_t)((bit + 7) / 8);
        if ((r = gunzip_init_bits(&s->g, s->in_off * 8 + bit, s->in + bit / 8, dict, dict_len)) < 0)
                return hv_fail(e, HV_E_ERRNO, -r, "setting up the decoder after speculative decoding");
        return pz_decode(&s->g, s->in + from, s->in_len - from, k, e);
}

void pz_decode_chunk(struct slot *s) {
        struct hv_error e = { 0 };
        int r = s->kind == PZ_BLOCK ? gunzip_init_block(&s->g, s->in_off) : s->kind == PZ_MEMBER ? gunzip_init(&s->g, GUNZIP_ISAL) : 0;
        if (s->kind != PZ_SPEC)
                s->g.in_off = s->g.member_start = s->in_off;
        struct sink k = { .free = &s->free, .full = &s->full, .cancel = &s->cancel };
        if (r == 0)
                r = s->kind == PZ_SPEC ? decode_spec(s, &k, &e) : pz_decode(&s->g, s->in, s->in_len, &k, &e);
        s->status = r;
        s->err = e;
        /* the end marker: the last buffer, maybe empty */
        if (!k.b && bufq_pop(&s->free, &k.b) == 0)
                k.b->len = 0;
        if (k.b) {
                k.b->eof = true;
                k.b->wide = false;
                (void)bufq_push(&s->full, k.b); /* fails only when the whole pipeline is aborted */
        }
}


/* The next chunk into s: the carry, then input buffers, up to a cut point after the target size
 * (the output one chunk may hold ahead, at the ratio seen lately). */
int pz_fill(struct pz *pz, struct slot *s) {
        memcpy(s->in, pz->carry, pz->carry_len);
        s->in_len = pz->carry_len;
        s->kind = pz->carry_kind;
        s->bit = pz->carry_bit;
        s->in_off = pz->carry_off;
        pz->carry_len = 0;
        pz->carry_bit = 0;
        /* at most half the hard limit: room to find a cut point after it */
        size_t hi = pz->chunk_max / 2, lo = PZ_CHUNK_MIN < hi ? PZ_CHUNK_MIN : hi;
        double t = (double)pz->slot_out / pz->ratio;
        size_t target = t < (double)lo ? lo : t > (double)hi ? hi : (size_t)t;
        size_t searched = 0, tried = target;
        for (;;) {
                if (s->in_len > target) {
                        enum pz_kind k = PZ_NONE;
                        size_t c = pz_find_cut(s->in, s->in_len, searched > target ? searched : target, &k);
                        uint64_t b = UINT64_MAX;
                        size_t margin = pz->chunk_max / 4 < SPEC_MARGIN ? pz->chunk_max / 4 : SPEC_MARGIN;
                        if (!c && pz->io->speculate && s->in_len > tried + margin) { /* no place to start cheaply: a block found by trial */
                                b = ds_find_block(s->in, s->in_len, (uint64_t)tried * 8, (uint64_t)(s->in_len - margin) * 8);
                                tried = s->in_len - margin;
                                if (b != UINT64_MAX)
                                        c = (size_t)(b / 8), k = PZ_SPEC;
                        }
                        /* flush points whose blocks refer back (pigz's default): started speculatively */
                        if (k == PZ_BLOCK && pz->io->speculate && pz->dependent)
                                k = PZ_SPEC;
                        if (c) {
                                pz->carry_len = s->in_len - c;
                                memcpy(pz->carry, s->in + c, pz->carry_len);
                                pz->carry_kind = k;
                                pz->carry_bit = b != UINT64_MAX ? (unsigned)(b % 8) : 0;
                                pz->carry_off = s->in_off + c;
                                s->in_len = c + (pz->carry_bit ? 1 : 0); /* the byte the cut is in: both chunks' */
                                s->end_bit = b != UINT64_MAX ? b : (uint64_t)c * 8;
                                return 0;
                        }
                        searched = s->in_len > 16 ? s->in_len - 16 : 0;
                        if (s->in_len >= pz->chunk_max)
                                break;
                }
                if (pz->in_eof)
                        break;
                struct buf *b;
                int r = bufq_pop(pz->io->in_full, &b);
                if (r < 0)
                        return r;
                memcpy(s->in + s->in_len, b->data, b->len);
                s->in_len += b->len;
                pz->in_eof = b->eof;
                if ((r = bufq_push(pz->io->in_free, b)) < 0)
                        return r;
        }
        pz->carry_kind = PZ_NONE; /* cut where no decoder can start: cur decodes the next chunk */
        pz->carry_off = s->in_off + s->in_len;
        s->end_bit = (uint64_t)s->in_len * 8;
        return 0;
}

