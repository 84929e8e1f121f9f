/* bufq.c: bounded buffer queues. Waits are timed so an abort flag set from anywhere (a cancel
 * from the bus) is seen within 100 ms even without a wake-up. */
#include "bufq.h"

#include <errno.h>
#include <time.h>

void bufq_init(struct bufq *q, atomic_bool *abort) {
        pthread_mutex_init(&q->mtx, NULL);
        pthread_condattr_t a;
        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        pthread_cond_init(&q->cond, &a);
        pthread_condattr_destroy(&a);
        q->head = q->n = 0;
        q->pop_wait_usec = 0;
        q->abort = abort;
}

void bufq_destroy(struct bufq *q) {
        pthread_cond_destroy(&q->cond);
        pthread_mutex_destroy(&q->mtx);
}

static void wait_a_bit(struct bufq *q) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&q->cond, &q->mtx, &ts);
}

int bufq_push(struct bufq *q, struct buf *b) {
        pthread_mutex_lock(&q->mtx);
        while (q->n == BUFQ_MAX && !atomic_load(q->abort))
                wait_a_bit(q);
        if (atomic_load(q->abort)) {
                pthread_mutex_unlock(&q->mtx);
                return -ECANCELED;
        }
        q->items[(q->head + q->n) % BUFQ_MAX] = b;
        q->n++;
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->mtx);
        return 0;
}

int bufq_pop(struct bufq *q, struct buf **ret) {
        pthread_mutex_lock(&q->mtx);
        if (q->n == 0 && !atomic_load(q->abort)) {
                uint64_t t0 = hv_mono_usec();
                while (q->n == 0 && !atomic_load(q->abort))
                        wait_a_bit(q);
                q->pop_wait_usec += hv_mono_usec() - t0;
        }
        if (atomic_load(q->abort)) {
                pthread_mutex_unlock(&q->mtx);
                return -ECANCELED;
        }
        *ret = q->items[q->head];
        q->head = (q->head + 1) % BUFQ_MAX;
        q->n--;
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->mtx);
        return 0;
}

void bufq_wake(struct bufq *q) {
        pthread_mutex_lock(&q->mtx);
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->mtx);
}
