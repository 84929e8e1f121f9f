/* pinflate.c: see pinflate.h. The coordinator (the pipeline's inflate thread) cuts chunks,
 * starts a thread per chunk and passes the output on in order. The decoder that went on from
 * the chunk before ("cur") is the authority on where the next chunk really starts: a chunk's
 * speculative output counts only when cur ended exactly at its start, at the kind of boundary
 * it assumed. Otherwise cur decodes the chunk itself (skipping what was already passed on). */
#define _GNU_SOURCE
#include "pinflate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define GIVE_UP 4 /* chunks in a row that could not be decoded side by side: in order from there on */

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
        if (from + 4 < limit) {
                const uint8_t *q = memmem(p + from, limit - from, "\0\0\xff\xff", 4);
                if (q && (size_t)(q - p) + 4 < limit) {
                        cut = (size_t)(q - p) + 4;
                        *kind = PZ_BLOCK;
                }
        }
        return cut;
}

struct slot {
        uint8_t *in;
        size_t in_len;
        uint64_t in_off;
        enum pz_kind kind;
        bool running; /* handed to the decoding threads: its output ends with an eof buffer */
        atomic_bool cancel;
        struct bufq free, full;
        struct buf *bufs;
        unsigned n_bufs;
        struct gunzip g;
        int status;
        struct hv_error err;
};

struct pz {
        struct pz_io *io;
        struct slot *slots;
        unsigned n, head, count; /* slots; the chunks in flight, oldest first (a ring) */
        /* the decoding threads take chunks from a queue: more chunks are in flight than threads
         * decode, so a thread that is done goes on while the oldest chunk is still decoding */
        pthread_t *threads;
        unsigned n_threads, n_threads_used;
        pthread_mutex_t mtx;
        pthread_cond_t cond;
        struct slot **queue; /* a ring of n */
        unsigned q_head, q_n;
        bool stop;
        size_t chunk_max, slot_out, in_cap;
        uint8_t *carry; /* what was read past the last cut: the next chunk's start */
        size_t carry_len;
        enum pz_kind carry_kind;
        uint64_t carry_off;
        bool in_eof;
        uint64_t out_total;
        struct gunzip cur;
        uint32_t pre_crc; /* the current member's output before cur's share */
        uint64_t pre_len;
        unsigned fails;
        bool seq; /* in order only, from now on */
        double ratio; /* output per compressed byte, lately */
};

/* Where decoded output goes: a thread's own buffers, or (pz set) on to the writer. */
struct sink {
        struct bufq *free, *full;
        struct buf *b;
        uint64_t skip; /* output already passed on: dropped */
        uint64_t made;
        atomic_bool *cancel;
        struct pz *pz;
};

static int pass_on(struct pz *pz, struct buf *b, struct hv_error *e) {
        pz->out_total += b->len;
        int r = pz->io->check_out(pz->io->ud, pz->out_total, e);
        return r < 0 ? r : bufq_push(pz->io->out_full, b);
}

static int sink_put(struct sink *k, struct hv_error *e) {
        struct buf *b = k->b;
        k->b = NULL;
        if (!k->pz)
                return bufq_push(k->full, b);
        if (b->len == 0)
                return bufq_push(b->home ? b->home : k->free, b);
        return pass_on(k->pz, b, e);
}

/* Runs g over in[0..n) into the sink, until it has taken all the input and has no more output. */
static int decode(struct gunzip *g, const uint8_t *in, size_t n, struct sink *k, struct hv_error *e) {
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
                        if ((r = sink_put(k, e)) < 0)
                                return r;
                } else if (iu == 0 && made == 0) {
                        if (pos < n)
                                return hv_fail(e, HV_E_BAD_COMPRESSION, EBADMSG, "decompressor stuck at byte offset %llu",
                                               (unsigned long long)g->in_off);
                        return 0;
                }
        }
}

static void decode_chunk(struct slot *s) {
        struct hv_error e = { 0 };
        int r = s->kind == PZ_BLOCK ? gunzip_init_block(&s->g, s->in_off) : gunzip_init(&s->g, GUNZIP_ISAL);
        s->g.in_off = s->g.member_start = s->in_off;
        struct sink k = { .free = &s->free, .full = &s->full, .cancel = &s->cancel };
        if (r == 0)
                r = decode(&s->g, s->in, s->in_len, &k, &e);
        s->status = r;
        s->err = e;
        /* the end marker: the last buffer, maybe empty */
        if (!k.b && bufq_pop(&s->free, &k.b) == 0)
                k.b->len = 0;
        if (k.b) {
                k.b->eof = true;
                (void)bufq_push(&s->full, k.b); /* fails only when the whole pipeline is aborted */
        }
}

static void *decode_thread(void *arg) {
        struct pz *pz = arg;
        for (;;) {
                pthread_mutex_lock(&pz->mtx);
                while (!pz->stop && pz->q_n == 0)
                        pthread_cond_wait(&pz->cond, &pz->mtx);
                if (pz->stop) {
                        pthread_mutex_unlock(&pz->mtx);
                        return NULL;
                }
                struct slot *s = pz->queue[pz->q_head];
                pz->q_head = (pz->q_head + 1) % pz->n;
                pz->q_n--;
                pthread_mutex_unlock(&pz->mtx);
                decode_chunk(s);
        }
}

/* The next chunk into s: the carry, then input buffers, up to a cut point after the target size
 * (the output one chunk may hold ahead, at the ratio seen lately). */
static int fill(struct pz *pz, struct slot *s) {
        memcpy(s->in, pz->carry, pz->carry_len);
        s->in_len = pz->carry_len;
        s->kind = pz->carry_kind;
        s->in_off = pz->carry_off;
        pz->carry_len = 0;
        /* at most half the hard limit: room to find a cut point after it */
        size_t hi = pz->chunk_max / 2, lo = PZ_CHUNK_MIN < hi ? PZ_CHUNK_MIN : hi;
        double t = (double)pz->slot_out / pz->ratio;
        size_t target = t < (double)lo ? lo : t > (double)hi ? hi : (size_t)t;
        size_t searched = 0;
        for (;;) {
                if (s->in_len > target) {
                        enum pz_kind k = PZ_NONE;
                        size_t c = pz_find_cut(s->in, s->in_len, searched > target ? searched : target, &k);
                        if (c) {
                                pz->carry_len = s->in_len - c;
                                memcpy(pz->carry, s->in + c, pz->carry_len);
                                pz->carry_kind = k;
                                pz->carry_off = s->in_off + c;
                                s->in_len = c;
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
        return 0;
}

/* Hands s to the decoding threads (unless no decoder can start where it does). */
static void start(struct pz *pz, struct slot *s) {
        s->running = false;
        if (s->kind == PZ_NONE || pz->seq)
                return;
        atomic_store(&s->cancel, false);
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

/* The oldest chunk: its speculative output on to the writer if it started where cur ended,
 * else (or when it failed) cur decodes it. */
static int consume(struct pz *pz, struct slot *s, struct hv_error *e) {
        enum gunzip_edge edge = gunzip_edge(&pz->cur);
        bool valid = s->running && ((s->kind == PZ_MEMBER && edge == GZ_EDGE_MEMBER) || (s->kind == PZ_BLOCK && edge == GZ_EDGE_BLOCK));
        uint64_t fwd = 0;
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
                        if (valid && b->len) {
                                fwd += b->len;
                                if ((r = pass_on(pz, b, e)) < 0)
                                        return r;
                        } else if ((r = bufq_push(&s->free, b)) < 0)
                                return r;
                }
                s->running = false;
        }
        uint64_t made = fwd;
        if (valid && s->status == 0) {
                if (s->kind == PZ_BLOCK) {
                        pz->pre_crc = (uint32_t)crc32_combine(pz->pre_crc, pz->cur.crc, (z_off_t)pz->cur.member_out);
                        pz->pre_len += pz->cur.member_out;
                } else
                        pz->pre_crc = 0, pz->pre_len = 0;
                unsigned before = pz->cur.members;
                pz->cur = s->g;
                pz->cur.members += before;
                pz->io->accepted++;
                pz->fails = 0;
        } else {
                if (s->kind != PZ_NONE)
                        pz->io->redone++;
                if (++pz->fails >= GIVE_UP && !pz->seq) {
                        pz->seq = pz->io->gave_up = true;
                        log_info("job %u: this gzip stream has too few places to start decoding apart (member starts, "
                                 "flush points) or they depend on each other: decoding it on one thread from byte %llu",
                                 pz->io->job, (unsigned long long)s->in_off);
                }
                struct sink k = { .free = pz->io->out_free, .full = pz->io->out_full, .pz = pz, .skip = fwd };
                if ((r = decode(&pz->cur, s->in, s->in_len, &k, e)) < 0 || (k.b && (r = sink_put(&k, e)) < 0))
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
        if (pz->carry_len) { /* a member split before may end in it */
                if ((r = decode(&pz->cur, pz->carry, pz->carry_len, &k, e)) >= 0)
                        r = settle(pz, e);
                pz->carry_len = 0;
        }
        while (r >= 0 && !pz->in_eof) {
                struct buf *b;
                if ((r = bufq_pop(pz->io->in_full, &b)) < 0)
                        break;
                pz->in_eof = b->eof;
                r = decode(&pz->cur, b->data, b->len, &k, e);
                int r2 = bufq_push(pz->io->in_free, b);
                if (r >= 0)
                        r = r2;
                if (r >= 0)
                        r = settle(pz, e);
        }
        if (r >= 0 && k.b)
                r = sink_put(&k, e);
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
        *pz = (struct pz){ .io = io, .chunk_max = io->chunk_max ? io->chunk_max : PZ_CHUNK_MAX, .carry_kind = PZ_MEMBER, .ratio = 4.0 };
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
                if (!s->in || !s->bufs) {
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
        pz->n_threads_used = pz->n_threads;
        return pz;
}

int pz_run(struct pz *pz, struct hv_error *e) {
        struct pz_io *io = pz->io;
        int r = 0;
        for (;;) {
                while (!pz->seq && pz->count < pz->n && (!pz->in_eof || pz->carry_len)) {
                        struct slot *s = &pz->slots[(pz->head + pz->count) % pz->n];
                        if ((r = fill(pz, s)) < 0)
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
        if (r >= 0 && (*pz)->n_threads_used)
                log_info("job %u: gzip decoded on %u threads: %u chunks side by side, %u again in order (of %u started)%s",
                         io->job, (*pz)->n_threads_used, io->accepted, io->redone, io->chunks, io->gave_up ? ", then one thread" : "");
        return r;
}
