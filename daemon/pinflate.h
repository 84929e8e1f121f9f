/* pinflate.h: an import's gzip decoding stage, on one thread (threads 1, or zlib) or on
 * several. For several, the compressed stream is cut into chunks at
 * the places a decoder can start without knowing what came before — gzip member headers
 * (concatenated members, BGZF) and byte-aligned flush points (pigz --independent); chunks are
 * decoded speculatively side by side and their output goes on in order, each one only once the
 * decoder of the chunk before has ended exactly where it starts. A speculation that fails
 * (a boundary that was none, a back-reference into the chunk before) is decoded again in order
 * by the decoder of the chunk before, so the output is always that of the sequential decode;
 * CRC32 and ISIZE of a member split over chunks are put together and checked. */
#pragma once
#include "bufq.h"
#include "gunzip.h"

#define PZ_MAX_THREADS 8
#define PZ_AHEAD 1 /* chunks in flight beyond one per thread */
/* The memory bound: output held by the chunks decoded ahead, over all chunks in flight (each
 * at most PZ_SLOT_OUT_MAX), and their compressed bytes — each chunk (and the carry to the next)
 * at most PZ_IN_BUDGET over the chunks in flight, within PZ_CHUNK_MAX_MIN..PZ_CHUNK_MAX, plus
 * one input buffer. Large chunks: fewer blocks to find by trial, and more of a speculative
 * chunk's output is clean before its window is known (measured: 1 MiB chunks made 0.84x, 4 MiB
 * 1.04-1.13x of one thread on two cores). */
#define PZ_OUT_BUDGET (20u << 20)
#define PZ_SLOT_OUT_MAX (8u << 20)
#define PZ_OUT_BUF (1u << 20)
#define PZ_IN_BUDGET (16u << 20)
#define PZ_CHUNK_MIN (64u << 10)
#define PZ_CHUNK_MAX_MIN (1u << 20)
#define PZ_CHUNK_MAX (4u << 20)

/* where a chunk starts: nowhere a decoder can start (the decoder of the chunk before goes on), a
 * member header, a flush point (byte-aligned, nothing before needed in practice), a block
 * boundary found by trial (any bit; decoded with markers for the window it cannot know yet) */
enum pz_kind { PZ_NONE, PZ_MEMBER, PZ_BLOCK, PZ_SPEC };

/* Where a chunk may start in p[from..n): a gzip member header (cut at it) or right after an
 * empty stored block 00 00 ff ff (a flush point). Returns the offset, or 0 when there is none
 * with enough bytes after it to tell. Pure. */
size_t pz_find_cut(const uint8_t *p, size_t n, size_t from, enum pz_kind *kind);

struct pz_io {
        /* input buffers (the last one eof) come from in_full and go back to in_free; output
         * buffers are taken from out_free and passed on to out_full in order, the last one eof.
         * Buffers of the decoding threads carry their own home queue (struct buf.home). */
        struct bufq *in_full, *in_free, *out_free, *out_full;
        atomic_bool *abort;
        enum gunzip_engine engine; /* zlib decodes on one thread */
        unsigned threads;          /* 1: one thread (the coordinator's own), no pool */
        bool speculate;            /* also cut at blocks found by trial (a member without flush points) */
        bool no_handover;          /* tests: the speculative decoder goes on to its chunk's end */
        size_t in_buf_size; /* the size of an input buffer */
        size_t chunk_max;   /* 0: from PZ_IN_BUDGET (tests use small chunks) */
        size_t out_buf;     /* 0: PZ_OUT_BUF, the size of a decoding thread's output buffer */
        size_t out_budget;  /* 0: PZ_OUT_BUDGET */
        /* called with the output passed on so far; an error stops the decode */
        int (*check_out)(void *ud, uint64_t total, struct hv_error *e);
        void *ud;
        uint32_t job; /* for the log */
        /* filled in: how it went */
        unsigned chunks, accepted, redone;
        /* of the accepted, started speculatively (at a block found by trial, or at a flush point whose
         * blocks refer back); of those, with markers to their end */
        unsigned spec, spec_to_end;
        uint64_t marker_bytes; /* output the speculative decoder made before handing over */
        uint64_t cpu_threads;  /* the decoding threads' CPU time (µs), once they have ended */
        unsigned threads_used; /* decoding threads started (fewer than asked when one cannot start) */
        bool gave_up;
};

struct pz;
/* The decoder's threads' buffers and queues (the memory bound above; none for one thread);
 * NULL: out of memory. */
struct pz *pz_new(struct pz_io *io);
/* Decodes the whole stream; on return its own threads have ended. 0, or a negative errno with
 * e set (the error the sequential decoder gives). */
int pz_run(struct pz *pz, struct hv_error *e);
/* Only once nobody holds its output buffers any more (the writer has ended). */
void pz_free(struct pz *pz);
/* pz_new + pz_run, with a line in the log on how the threads did; *pz is the caller's to pz_free. */
int pz_stage(struct pz_io *io, struct pz **pz, struct hv_error *e);
