/* pinflate.c: see pinflate.h. The coordinator (the pipeline's inflate thread) cuts chunks,
 * starts a thread per chunk and passes the output on in order. The decoder that went on from
 * the chunk before ("cur") is the authority on where the next chunk really starts: a chunk's
 * speculative output counts only when cur ended exactly at its start, at the kind of boundary
 * it assumed. Otherwise cur decodes the chunk itself (skipping what was already passed on). */
#define _GNU_SOURCE
#include "pinflate.h"

#include <errno.h>
#include <isa-l/crc.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pinflate_int.h"
#include "util.h"

#define GIVE_UP 4 /* chunks in a row that could not be decoded side by side: in order from there on */

static void *decode_thread(void *arg) {
        struct pz *pz = arg;
        for (;;) {
                pthread_mutex_lock(&pz->mtx);
                while (!pz->stop && pz->q_n == 0)
                        pthread_cond_wait(&pz->cond, &pz->mtx);
                if (pz->stop) {
                        pz->io->cpu_threads += hv_thread_cpu_usec();
                        pthread_mutex_unlock(&pz->mtx);
                        return NULL;
                }
                struct slot *s = pz->queue[pz->q_head];
                pz->q_head = (pz->q_head + 1) % pz->n;
                pz->q_n--;
                pthread_mutex_unlock(&pz->mtx);
                pz_decode_chunk(s);
        }
}

/* Hands s to the decoding threads (unless no decoder can start where it does). */
static void start(struct pz *pz, struct slot *s) {
        s->running = false;
        if (s->kind == PZ_NONE || pz->seq)
                return;
        atomic_store(&s->cancel, false);
        atomic_store(&s->win_ready, false);
        s->no_handover = pz->io->no_handover;
        s->status = 0;
        pthread_mutex_lock(&pz->mtx);
        pz->queue[(pz->q_head + pz->q_n) % pz->n] = s;
        pz->q_n++;
        pthread_cond_signal(&pz->cond);
        pthread_mutex_unlock(&pz->mtx);
        s->running = true;
        pz->io->chunks++;
}

/* A member that began before cur and ended in it: its pieces' CRC32 and length against its trailer. */
static int settle(struct pz *pz, struct hv_error *e) {
        struct gz_partial_end *f = &pz->cur.first;
        if (!f->ended)
                return 0;
        f->ended = false;
        uint32_t crc = (uint32_t)crc32_combine(pz->pre_crc, f->crc, (z_off_t)f->len);
        uint64_t len = pz->pre_len + f->len;
        pz->pre_crc = 0;
        pz->pre_len = 0;
        if (crc != f->trailer_crc)
                return hv_fail(e, HV_E_BAD_COMPRESSION, EBADMSG, "gzip member %u: CRC32 mismatch (trailer says %08x, data gives %08x)",
                               pz->cur.members, f->trailer_crc, crc);
        if ((uint32_t)len != f->trailer_isize)
                return hv_fail(e, HV_E_BAD_COMPRESSION, EBADMSG,
                               "gzip member %u: length mismatch (trailer says %u mod 2^32, data gives %llu)", pz->cur.members,
                               f->trailer_isize, (unsigned long long)len);
        return 0;
}

/* A wide buffer of s: its markers resolved with the window (in place), then on to the writer;
 * false when a marker reaches before the member's start (the sequential decoder's error). */
static int pass_resolved(struct pz *pz, struct slot *s, struct buf *b, uint32_t *crc, uint64_t *len, bool *ok, struct hv_error *e) {
        size_t n = b->len / 2, done;
        b->wide = false;
        if (ds_resolve((const uint16_t *)b->data, n, s->known, s->known_avail, b->data, &done) < 0) {
                *ok = false;
                b->len = 0;
                return bufq_push(&s->free, b);
        }
        b->len = n;
        *crc = crc32_gzip_refl(*crc, b->data, n);
        *len += n;
        return pz_pass_on(pz, b, e);
}

/* The oldest chunk: its speculative output on to the writer if it started where cur ended,
 * else (or when it failed) cur decodes it. */
static int consume(struct pz *pz, struct slot *s, struct hv_error *e) {
        uint64_t member_before = pz->pre_len + pz->cur.member_out;
        /* a member's start, or the bit a flush point or a block found by trial is at (s->bit: 0 for a flush point) */
        bool valid = s->running && (s->kind == PZ_MEMBER ? gunzip_between_members(&pz->cur)
                                                         : s->kind != PZ_NONE && gunzip_block_bit(&pz->cur) == s->in_off * 8 + s->bit);
        if (valid && s->kind == PZ_SPEC) { /* the window is known now: the thread may hand over */
                memcpy(s->known, pz->win, DS_WIN);
                s->known_avail = member_before;
                atomic_store(&s->win_ready, true);
        }
        uint64_t fwd = 0, m_len = 0;
        uint32_t m_crc = 0;
        int r;
        if (s->running) {
                if (!valid)
                        atomic_store(&s->cancel, true);
                for (bool eof = false; !eof;) {
                        struct buf *b;
                        if ((r = bufq_pop(&s->full, &b)) < 0)
                                return r;
                        eof = b->eof;
                        b->eof = false;
                        if (valid && b->wide) {
                                if ((r = pass_resolved(pz, s, b, &m_crc, &m_len, &valid, e)) < 0)
                                        return r;
                                if (!valid)
                                        atomic_store(&s->cancel, true);
                                fwd = m_len;
                        } else if (valid && b->len) {
                                fwd += b->len;
                                if ((r = pz_pass_on(pz, b, e)) < 0)
                                        return r;
                        } else if ((r = bufq_push(&s->free, b)) < 0)
                                return r;
                }
                s->running = false;
        }
        uint64_t made = fwd;
        if (valid && s->status == 0) {
                unsigned before = pz->cur.members;
                if (s->kind == PZ_BLOCK || s->kind == PZ_SPEC) {
                        pz->pre_crc = (uint32_t)crc32_combine(pz->pre_crc, pz->cur.crc, (z_off_t)pz->cur.member_out);
                        pz->pre_len += pz->cur.member_out;
                        pz->pre_crc = (uint32_t)crc32_combine(pz->pre_crc, m_crc, (z_off_t)m_len);
                        pz->pre_len += m_len;
                } else
                        pz->pre_crc = 0, pz->pre_len = 0;
                if (s->kind == PZ_SPEC) {
                        pz->io->spec++;
                        pz->io->marker_bytes += m_len;
                }
                if (s->spec_end) { /* on from the chunk's end, with the window it left */
                        pz->io->spec_to_end++;
                        size_t dict = pz->pre_len < DS_WIN ? (size_t)pz->pre_len : DS_WIN;
                        gunzip_done(&pz->cur);
                        if ((r = gunzip_init_bits(&pz->cur, s->in_off * 8 + s->end_bit, s->in + s->end_bit / 8, pz->win + DS_WIN - dict, dict)) < 0)
                                return hv_fail(e, HV_E_ERRNO, -r, "setting up the decoder after speculative decoding");
                        pz->cur.members = before;
                } else {
                        pz->cur = s->g;
                        pz->cur.members += before;
                }
                pz->io->accepted++;
                pz->fails = 0;
        } else {
                if (s->kind != PZ_NONE) {
                        pz->io->redone++;
                        log_debug("job %u: the chunk at byte %llu decoded again in order: %s", pz->io->job, (unsigned long long)s->in_off,
                                  !valid ? "the chunk before did not end where it began" : s->err.msg[0] ? s->err.msg : "canceled");
                }
                /* a flush point whose blocks refer back: with speculation the next ones start with
                 * markers, so this and those already in flight do not count towards giving up */
                bool dependent = s->kind == PZ_BLOCK && valid && s->g.lookback && pz->io->speculate;
                if (dependent)
                        pz->dependent = true;
                if (!dependent && ++pz->fails >= GIVE_UP && !pz->seq) {
                        pz->seq = pz->io->gave_up = true;
                        log_info("job %u: this gzip stream has too few places to start decoding apart (member starts, "
                                 "flush points, blocks found by trial) or they depend on each other: decoding it on one thread from byte %llu",
                                 pz->io->job, (unsigned long long)s->in_off);
                }
                /* the byte a cut inside a byte is in was cur's already */
                size_t skip = s->kind == PZ_SPEC && s->bit ? 1 : 0;
                struct sink k = { .free = pz->io->out_free, .full = pz->io->out_full, .pz = pz, .skip = fwd };
                if ((r = pz_decode(&pz->cur, s->in + skip, s->in_len - skip, &k, e)) < 0 || (k.b && (r = pz_sink_put(&k, e)) < 0))
                        return r;
                made = k.made;
        }
        if (s->in_len)
                pz->ratio = 0.5 * pz->ratio + 0.5 * ((double)made / (double)s->in_len + 0.01);
        return settle(pz, e);
}

/* In order only: the carry, then each input buffer straight from the queue. */
static int run_seq(struct pz *pz, struct hv_error *e) {
        struct sink k = { .free = pz->io->out_free, .full = pz->io->out_full, .pz = pz };
        int r = 0;
        if (pz->carry_len) { /* a member split before may end in it; the byte a cut inside a byte is in was cur's already */
                size_t skip = pz->carry_kind == PZ_SPEC && pz->carry_bit ? 1 : 0;
                if ((r = pz_decode(&pz->cur, pz->carry + skip, pz->carry_len - skip, &k, e)) >= 0)
                        r = settle(pz, e);
                pz->carry_len = 0;
        }
        while (r >= 0 && !pz->in_eof) {
                struct buf *b;
                if ((r = bufq_pop(pz->io->in_full, &b)) < 0)
                        break;
                pz->in_eof = b->eof;
                r = pz_decode(&pz->cur, b->data, b->len, &k, e);
                int r2 = bufq_push(pz->io->in_free, b);
                if (r >= 0)
                        r = r2;
                if (r >= 0)
                        r = settle(pz, e);
        }
        if (r >= 0 && k.b)
                r = pz_sink_put(&k, e);
        return r;
}

/* Stops and joins the decoding threads (what they decode is dropped). */
static void stop_threads(struct pz *pz) {
        for (unsigned i = 0; i < pz->n; i++)
                atomic_store(&pz->slots[i].cancel, true);
        pthread_mutex_lock(&pz->mtx);
        pz->stop = true;
        pthread_cond_broadcast(&pz->cond);
        pthread_mutex_unlock(&pz->mtx);
        for (unsigned i = 0; i < pz->n_threads; i++)
                pthread_join(pz->threads[i], NULL);
        pz->n_threads = 0;
}

void pz_free(struct pz *pz) {
        if (!pz)
                return;
        stop_threads(pz);
        for (unsigned i = 0; i < pz->n; i++) {
                struct slot *s = &pz->slots[i];
                for (unsigned j = 0; j < s->n_bufs; j++)
                        free(s->bufs[j].data);
                free(s->bufs);
                free(s->in);
                free(s->known);
                ds_free(s->ds);
                bufq_destroy(&s->free);
                bufq_destroy(&s->full);
        }
        free(pz->slots);
        free(pz->carry);
        free(pz->threads);
        free(pz->queue);
        gunzip_done(&pz->cur);
        pthread_cond_destroy(&pz->cond);
        pthread_mutex_destroy(&pz->mtx);
        free(pz);
}

struct pz *pz_new(struct pz_io *io) {
        struct pz *pz = calloc(1, sizeof(*pz));
        if (!pz)
                return NULL;
        *pz = (struct pz){ .io = io, .carry_kind = PZ_MEMBER, .ratio = 4.0 };
        io->threads_used = 0;
        pthread_mutex_init(&pz->mtx, NULL);
        pthread_cond_init(&pz->cond, NULL);
        if (io->threads < 2 || io->engine != GUNZIP_ISAL) { /* in order from the start: no pool, no chunks */
                pz->seq = true;
                if (gunzip_init(&pz->cur, io->engine) < 0) {
                        pz_free(pz);
                        return NULL;
                }
                return pz;
        }
        unsigned threads = io->threads > PZ_MAX_THREADS ? PZ_MAX_THREADS : io->threads;
        unsigned n = threads + PZ_AHEAD;
        /* the input budget over the chunks in flight and the carry (tests set smaller chunks) */
        size_t share = PZ_IN_BUDGET / (n + 1);
        pz->chunk_max = io->chunk_max                ? io->chunk_max
                        : share < PZ_CHUNK_MAX_MIN ? PZ_CHUNK_MAX_MIN
                        : share > PZ_CHUNK_MAX     ? PZ_CHUNK_MAX
                                                   : share;
        pz->threads = calloc(threads, sizeof(*pz->threads));
        pz->queue = calloc(n, sizeof(*pz->queue));
        size_t buf_size = io->out_buf ? io->out_buf : PZ_OUT_BUF;
        pz->slot_out = (io->out_budget ? io->out_budget : PZ_OUT_BUDGET) / n;
        if (pz->slot_out > PZ_SLOT_OUT_MAX)
                pz->slot_out = PZ_SLOT_OUT_MAX;
        unsigned n_bufs = (unsigned)(pz->slot_out / buf_size);
        if (n_bufs < 2)
                n_bufs = 2;
        if (n_bufs > BUFQ_MAX)
                n_bufs = BUFQ_MAX;
        pz->in_cap = pz->chunk_max + io->in_buf_size + 16;
        pz->slots = calloc(n, sizeof(*pz->slots));
        pz->carry = malloc(pz->in_cap);
        if (!pz->slots || !pz->carry || !pz->threads || !pz->queue || gunzip_init(&pz->cur, GUNZIP_ISAL) < 0) {
                pz_free(pz);
                return NULL;
        }
        for (; pz->n < n; pz->n++) {
                struct slot *s = &pz->slots[pz->n];
                bufq_init(&s->free, io->abort);
                bufq_init(&s->full, io->abort);
                s->in = malloc(pz->in_cap);
                s->bufs = calloc(n_bufs, sizeof(*s->bufs));
                s->known = malloc(DS_WIN);
                s->ds = ds_new();
                if (!s->in || !s->bufs || !s->known || !s->ds) {
                        pz->n++;
                        pz_free(pz);
                        return NULL;
                }
                for (; s->n_bufs < n_bufs; s->n_bufs++) {
                        struct buf *b = &s->bufs[s->n_bufs];
                        /* page-aligned: the writer may use O_DIRECT */
                        void *data;
                        if (posix_memalign(&data, 4096, buf_size) != 0) {
                                pz->n++;
                                pz_free(pz);
                                return NULL;
                        }
                        *b = (struct buf){ .data = data, .cap = buf_size, .home = &s->free };
                        if (bufq_push(&s->free, b) < 0) {
                                free(data);
                                pz->n++;
                                pz_free(pz);
                                return NULL;
                        }
                }
        }
        for (; pz->n_threads < threads; pz->n_threads++)
                if (pthread_create(&pz->threads[pz->n_threads], NULL, decode_thread, pz) != 0)
                        break; /* fewer threads: still correct */
        if (pz->n_threads == 0) {
                pz_free(pz);
                return NULL;
        }
        io->threads_used = pz->n_threads;
        return pz;
}

int pz_run(struct pz *pz, struct hv_error *e) {
        struct pz_io *io = pz->io;
        int r = 0;
        for (;;) {
                while (!pz->seq && pz->count < pz->n && (!pz->in_eof || pz->carry_len)) {
                        struct slot *s = &pz->slots[(pz->head + pz->count) % pz->n];
                        if ((r = pz_fill(pz, s)) < 0)
                                goto out;
                        start(pz, s);
                        pz->count++;
                }
                if (pz->count == 0)
                        break;
                if ((r = consume(pz, &pz->slots[pz->head], e)) < 0)
                        goto out;
                pz->head = (pz->head + 1) % pz->n;
                pz->count--;
        }
        if ((pz->seq && (r = run_seq(pz, e)) < 0) || (r = gunzip_finish(&pz->cur, e)) < 0)
                goto out;
        struct buf *last;
        if ((r = bufq_pop(io->out_free, &last)) < 0)
                goto out;
        last->len = 0;
        last->eof = true;
        r = bufq_push(io->out_full, last);
out:
        if (r < 0) {
                atomic_store(io->abort, true); /* stops the threads still decoding, and the other stages */
                struct bufq *qs[] = { io->in_full, io->in_free, io->out_free, io->out_full };
                for (unsigned i = 0; i < 4; i++)
                        bufq_wake(qs[i]);
                for (unsigned i = 0; i < pz->n; i++) {
                        bufq_wake(&pz->slots[i].free);
                        bufq_wake(&pz->slots[i].full);
                }
        }
        stop_threads(pz);
        return r;
}

int pz_stage(struct pz_io *io, struct pz **pz, struct hv_error *e) {
        if (!(*pz = pz_new(io)))
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory setting up parallel decoding");
        int r = pz_run(*pz, e);
        if (r >= 0 && io->threads_used)
                log_info("job %u: gzip decoded on %u threads: %u chunks side by side (%u of them speculatively, %llu bytes "
                         "through the speculative decoder), %u again in order (of %u started)%s",
                         io->job, io->threads_used, io->accepted, io->spec, (unsigned long long)io->marker_bytes, io->redone,
                         io->chunks, io->gave_up ? ", then one thread" : "");
        return r;
}
