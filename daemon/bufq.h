/* bufq.h: bounded queues of whole buffers between the stages of an import pipeline. */
#pragma once
#include <pthread.h>
#include <stdatomic.h>

#include "util.h"

#define BUFQ_MAX 16

struct buf {
        uint8_t *data;
        size_t cap, len;
        uint64_t off; /* where the data goes, for users that write at offsets */
        bool eof; /* the last buffer of the stream (may be empty) */
        bool wide; /* pinflate.c: 16-bit symbols of a speculative decode (len counts bytes), not output */
        struct bufq *home; /* where it goes back when used; NULL: the stage's default */
};

struct bufq {
        pthread_mutex_t mtx;
        pthread_cond_t cond;
        struct buf *items[BUFQ_MAX];
        unsigned head, n;
        atomic_bool *abort; /* shared by every queue of a pipeline */
        uint64_t pop_wait_usec; /* how long bufq_pop waited for a buffer, all callers together (under mtx) */
};

void bufq_init(struct bufq *q, atomic_bool *abort);
void bufq_destroy(struct bufq *q);
/* Blocks while full; -ECANCELED once the pipeline is aborted. */
int bufq_push(struct bufq *q, struct buf *b);
/* Blocks while empty; -ECANCELED once the pipeline is aborted. */
int bufq_pop(struct bufq *q, struct buf **ret);
/* Wakes those waiting on q at once (after the abort flag was set) rather than within 100 ms. */
void bufq_wake(struct bufq *q);
