/* pz_rig.h: runs the parallel gzip decoder (pinflate.c) on a buffer in memory the way an
 * import does — a reader thread handing input buffers, the decoder's threads, a writer taking
 * the output in order — for the unit test and the gzip fuzz target. */
#pragma once
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pinflate.h"

#define RIG_BUFS 8
#define RIG_OUT_BUF (64u << 10)

/* tests: the speculative decoder never hands over to ISA-L before its chunk's end */
static bool rig_no_handover;

struct rig {
        struct bufq in_full, in_free, out_free, out_full;
        struct buf in_bufs[RIG_BUFS], out_bufs[RIG_BUFS];
        atomic_bool abort;
        const uint8_t *data;
        size_t n, in_size;
        struct pz_io io;
        struct pz *pz;
        struct hv_error e;
        int r;
};

static void *rig_reader(void *arg) {
        struct rig *g = arg;
        size_t pos = 0;
        do {
                struct buf *b;
                if (bufq_pop(&g->in_free, &b) < 0)
                        return NULL;
                size_t l = g->n - pos < g->in_size ? g->n - pos : g->in_size;
                memcpy(b->data, g->data + pos, l);
                b->len = l;
                pos += l;
                b->eof = pos == g->n;
                if (bufq_push(&g->in_full, b) < 0)
                        return NULL;
        } while (pos < g->n);
        return NULL;
}

static void *rig_decoder(void *arg) {
        struct rig *g = arg;
        g->r = pz_run(g->pz, &g->e);
        return NULL;
}

static int rig_check(void *ud, uint64_t total, struct hv_error *e) {
        uint64_t max = *(const uint64_t *)ud;
        return total > max ? hv_fail(e, HV_E_TOO_LARGE, EFBIG, "more than %llu bytes", (unsigned long long)max) : 0;
}

/* Decodes data on threads (speculate: also from blocks found by trial) with chunks of at most
 * chunk_max compressed bytes (0: the daemon's
 * sizes of chunks and buffers, else small buffers: quick to set up, many hand-overs); the output
 * (malloc'd, at most max bytes) in *out and *out_len — with out NULL it is only counted.
 * Returns the decoder's result, e its error. */
static int rig_run(const uint8_t *data, size_t n, unsigned threads, bool speculate, size_t chunk_max, size_t in_size, uint64_t max,
                   uint8_t **out, size_t *out_len, struct pz_io *stats, struct hv_error *e) {
        struct rig *g = calloc(1, sizeof(*g));
        uint64_t *limit = malloc(sizeof(*limit));
        if (!g || !limit)
                abort();
        *limit = max;
        size_t out_size = chunk_max ? RIG_OUT_BUF : PZ_OUT_BUF;
        g->data = data;
        g->n = n;
        g->in_size = in_size;
        struct bufq *qs[] = { &g->in_full, &g->in_free, &g->out_free, &g->out_full };
        for (unsigned i = 0; i < 4; i++)
                bufq_init(qs[i], &g->abort);
        for (unsigned i = 0; i < RIG_BUFS; i++) {
                g->in_bufs[i] = (struct buf){ .data = malloc(in_size), .cap = in_size };
                g->out_bufs[i] = (struct buf){ .data = malloc(out_size), .cap = out_size };
                if (!g->in_bufs[i].data || !g->out_bufs[i].data || bufq_push(&g->in_free, &g->in_bufs[i]) < 0 ||
                    bufq_push(&g->out_free, &g->out_bufs[i]) < 0)
                        abort();
        }
        g->io = (struct pz_io){ .in_full = &g->in_full, .in_free = &g->in_free, .out_free = &g->out_free, .out_full = &g->out_full,
                                .abort = &g->abort, .threads = threads, .speculate = speculate, .no_handover = rig_no_handover, .in_buf_size = in_size, .chunk_max = chunk_max,
                                .out_buf = chunk_max ? RIG_OUT_BUF : 0, .out_budget = chunk_max ? 8 * RIG_OUT_BUF : 0,
                                .check_out = rig_check, .ud = limit };
        if (!(g->pz = pz_new(&g->io)))
                abort();
        pthread_t tr, td;
        if (pthread_create(&tr, NULL, rig_reader, g) != 0 || pthread_create(&td, NULL, rig_decoder, g) != 0)
                abort();
        uint8_t *o = NULL;
        size_t len = 0;
        for (;;) {
                struct buf *b;
                if (bufq_pop(&g->out_full, &b) < 0)
                        break;
                if (out) {
                        uint8_t *grown = realloc(o, len + b->len + 1);
                        if (!grown)
                                abort();
                        o = grown;
                        memcpy(o + len, b->data, b->len);
                }
                len += b->len;
                bool eof = b->eof;
                if (bufq_push(b->home ? b->home : &g->out_free, b) < 0 || eof)
                        break;
        }
        pthread_join(td, NULL);
        atomic_store(&g->abort, true); /* the reader may wait for a buffer nobody returns */
        pthread_join(tr, NULL);
        int r = g->r;
        *e = g->e;
        if (stats)
                *stats = g->io;
        pz_free(g->pz); /* the output loop above has ended: nobody holds its buffers */
        for (unsigned i = 0; i < 4; i++)
                bufq_destroy(qs[i]);
        for (unsigned i = 0; i < RIG_BUFS; i++) {
                free(g->in_bufs[i].data);
                free(g->out_bufs[i].data);
        }
        free(g);
        free(limit);
        if (out)
                *out = o;
        *out_len = len;
        return r;
}
