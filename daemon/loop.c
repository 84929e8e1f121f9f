/* loop.c: tasks handed to the event loop by other threads. */
#include "loop.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

struct task {
        loop_fn fn;
        void *data;
        struct task *next;
};

struct loop {
        sd_event *event;
        int fd;
        sd_event_source *source;
        pthread_mutex_t mtx;
        struct task *head, **tail;
};

void loop_run_pending(struct loop *l) {
        pthread_mutex_lock(&l->mtx);
        struct task *t = l->head;
        l->head = NULL;
        l->tail = &l->head;
        pthread_mutex_unlock(&l->mtx);
        while (t) {
                struct task *next = t->next;
                t->fn(t->data);
                free(t);
                t = next;
        }
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *ud) {
        (void)s; (void)revents;
        uint64_t v;
        if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                log_warning("eventfd read: %m");
        loop_run_pending(ud);
        return 0;
}

int loop_new(sd_event *event, struct loop **ret) {
        struct loop *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        pthread_mutex_init(&l->mtx, NULL);
        l->tail = &l->head;
        l->event = sd_event_ref(event);
        l->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (l->fd < 0) {
                int r = -errno;
                loop_free(l);
                return r;
        }
        int r = sd_event_add_io(event, &l->source, l->fd, EPOLLIN, on_wake, l);
        if (r < 0) {
                loop_free(l);
                return r;
        }
        *ret = l;
        return 0;
}

struct loop *loop_free(struct loop *l) {
        if (!l)
                return NULL;
        sd_event_source_disable_unref(l->source);
        if (l->fd >= 0)
                close(l->fd);
        for (struct task *t = l->head, *n; t; t = n) {
                n = t->next;
                free(t);
        }
        pthread_mutex_destroy(&l->mtx);
        sd_event_unref(l->event);
        free(l);
        return NULL;
}

sd_event *loop_event(struct loop *l) {
        return l->event;
}

int loop_post(struct loop *l, loop_fn fn, void *data) {
        assert(l && fn);
        struct task *t = malloc(sizeof(*t));
        if (!t) {
                log_error("out of memory handing work to the event loop");
                return -ENOMEM;
        }
        *t = (struct task){ .fn = fn, .data = data };
        pthread_mutex_lock(&l->mtx);
        *l->tail = t;
        l->tail = &t->next;
        pthread_mutex_unlock(&l->mtx);
        uint64_t one = 1;
        /* EAGAIN: the counter is already non-zero, the loop wakes anyway */
        if (write(l->fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                log_error("cannot wake the event loop: %m");
        return 0;
}
