/* pinflate_int.h: what the two halves of the parallel gzip decoder share — pinflate.c (the
 * coordinator: chunks in flight, hand-overs, output in order) and pinflate_chunk.c (cutting the
 * stream into chunks, and what the decoding threads do with one). Private to those two files. */
#pragma once
#include "deflate_spec.h"
#include "pinflate.h"

struct slot {
        uint8_t *in;
        size_t in_len;
        uint64_t in_off;
        enum pz_kind kind;
        unsigned bit;     /* PZ_SPEC: the chunk starts at this bit of in[0] */
        uint64_t end_bit; /* where the chunk ends (the next one starts), a bit offset into in */
        /* PZ_SPEC: the speculative decoder; the window, once known, with the bytes of the same
         * member in it (win_ready set: the thread hands over to ISA-L at its next block) */
        struct ds *ds;
        uint8_t *known;
        uint64_t known_avail;
        atomic_bool win_ready;
        bool spec_end; /* the speculative decoder went on to the chunk's end */
        bool no_handover;
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
        unsigned n_threads;
        pthread_mutex_t mtx;
        pthread_cond_t cond;
        struct slot **queue; /* a ring of n */
        unsigned q_head, q_n;
        bool stop;
        size_t chunk_max, slot_out, in_cap;
        uint8_t *carry; /* what was read past the last cut: the next chunk's start */
        size_t carry_len;
        enum pz_kind carry_kind;
        unsigned carry_bit;
        uint64_t carry_off;
        bool in_eof;
        uint64_t out_total;
        struct gunzip cur;
        uint32_t pre_crc; /* the current member's output before cur's share */
        uint64_t pre_len;
        unsigned fails;
        bool seq; /* in order only, from now on */
        bool dependent; /* a flush point's blocks referred back before it: the next ones start speculatively */
        double ratio; /* output per compressed byte, lately */
        uint8_t win[DS_WIN]; /* the last output passed on */
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

/* Output on to the writer (the window of the chunk after kept up to date). */
int pz_pass_on(struct pz *pz, struct buf *b, struct hv_error *e);
/* Runs g over in[0..n) into the sink, until it has taken all the input and has no more output. */
int pz_decode(struct gunzip *g, const uint8_t *in, size_t n, struct sink *k, struct hv_error *e);
int pz_sink_put(struct sink *k, struct hv_error *e);
/* The next chunk into s: the carry, then input buffers, up to a cut point after the target size. */
int pz_fill(struct pz *pz, struct slot *s);
/* What a decoding thread does with a chunk: its output in s's buffers, the last one eof. */
void pz_decode_chunk(struct slot *s);
