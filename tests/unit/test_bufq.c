/* Unit tests of bufq.c: order, bounded capacity (a full push waits for a pop), many buffers
 * through a producer/consumer pair, and the abort flag ending every wait (-ECANCELED). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "bufq.h"

static struct buf bufs[BUFQ_MAX + 1];

static void test_order_and_bound(void **s) {
        (void)s;
        atomic_bool abort = false;
        struct bufq q;
        bufq_init(&q, &abort);
        for (int i = 0; i < BUFQ_MAX; i++) {
                bufs[i].off = (uint64_t)i;
                assert_int_equal(bufq_push(&q, &bufs[i]), 0);
        }
        assert_int_equal(q.n, BUFQ_MAX);
        for (int i = 0; i < BUFQ_MAX; i++) {
                struct buf *b;
                assert_int_equal(bufq_pop(&q, &b), 0);
                assert_int_equal(b->off, (uint64_t)i);
        }
        bufq_destroy(&q);
}

struct pc {
        struct bufq *q;
        int n;
        uint64_t sum;
        int r;
};

static void *consumer(void *arg) {
        struct pc *c = arg;
        for (int i = 0; i < c->n; i++) {
                struct buf *b;
                if ((c->r = bufq_pop(c->q, &b)) < 0)
                        return NULL;
                c->sum += b->off;
        }
        return NULL;
}

/* 100 000 buffers through a queue of BUFQ_MAX: nothing lost, nothing twice. */
static void test_producer_consumer(void **s) {
        (void)s;
        atomic_bool abort = false;
        struct bufq q;
        bufq_init(&q, &abort);
        struct pc c = { .q = &q, .n = 100000 };
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, consumer, &c), 0);
        static struct buf many[100000];
        uint64_t want = 0;
        for (int i = 0; i < c.n; i++) {
                many[i].off = (uint64_t)i;
                want += (uint64_t)i;
                assert_int_equal(bufq_push(&q, &many[i]), 0);
        }
        pthread_join(t, NULL);
        assert_int_equal(c.r, 0);
        assert_int_equal(c.sum, want);
        bufq_destroy(&q);
}

static void *late_abort(void *arg) {
        usleep(100 * 1000);
        atomic_store((atomic_bool *)arg, true);
        return NULL;
}

/* A pop on an empty queue and a push on a full one both end with -ECANCELED once aborted. */
static void test_abort(void **s) {
        (void)s;
        atomic_bool abort = false;
        struct bufq empty, full;
        bufq_init(&empty, &abort);
        bufq_init(&full, &abort);
        for (int i = 0; i < BUFQ_MAX; i++)
                assert_int_equal(bufq_push(&full, &bufs[i]), 0);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, late_abort, &abort), 0);
        struct buf *b;
        assert_int_equal(bufq_pop(&empty, &b), -ECANCELED);
        assert_int_equal(bufq_push(&full, &bufs[BUFQ_MAX]), -ECANCELED);
        pthread_join(t, NULL);
        bufq_destroy(&empty);
        bufq_destroy(&full);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_order_and_bound),
                cmocka_unit_test(test_producer_consumer),
                cmocka_unit_test(test_abort),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
