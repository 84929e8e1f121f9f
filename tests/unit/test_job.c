/* Unit tests of the job engine (job.c) and the loop channel (loop.c) on a real sd-event loop,
 * with a fake kind: events in order (NEW, CHANGED…, one REMOVED), progress, results, cancel of
 * a queued and of a running job, MaxConcurrent, turns between users, the per-user cap, limits
 * raised live, the payload freed exactly once, stop. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "job.h"

/* A fake kind: runs until told to finish (or canceled), reporting a phase and bytes. */
struct fake {
        atomic_bool go, started;
        int result;      /* what run returns once go */
        atomic_int *frees;
        int finished_result;
        bool finished_called;
};

static int fake_run(struct job_ctl *ctl, void *payload, struct hv_error *e) {
        struct fake *f = payload;
        atomic_store(&f->started, true);
        job_ctl_phase(ctl, "working");
        for (int i = 0; !atomic_load(&f->go); i++) {
                if (job_ctl_canceled(ctl, e) < 0)
                        return -ECANCELED;
                job_ctl_bytes(ctl, (uint64_t)i, 1000);
                usleep(1000);
        }
        if (f->result < 0)
                return hv_fail(e, HV_E_FETCH_FAILED, -f->result, "fake failure");
        return 0;
}

static void fake_finished(void *payload, int result) {
        struct fake *f = payload;
        f->finished_called = true;
        f->finished_result = result;
}

static void fake_free(void *payload) {
        struct fake *f = payload;
        atomic_fetch_add(f->frees, 1);
}

/* kind->joined of the waiting kind: a leader that succeeded settles the waiter's work (it
 * records the leader's id), one that did not leaves the waiter to work itself. */
static bool fake_joined(void *payload, struct job *leader, int result) {
        struct fake *f = payload;
        f->finished_result = (int)leader->id;
        return result >= 0;
}

static const struct job_kind fake_kind = { .name = "fake", .run = fake_run, .finished = fake_finished, .free = fake_free };
static const struct job_kind wait_kind = { .name = "wait", .run = fake_run, .free = fake_free, .joined = fake_joined };
static const struct job_kind other_kind = { .name = "other", .run = fake_run, .free = fake_free };

struct world {
        sd_event *event;
        struct loop *loop;
        struct jobs *jobs;
        char events[64][32]; /* "N:id", "C:id", "R:id:result" */
        unsigned n_events;
        atomic_int frees;
        struct fake *fakes[16]; /* released and freed by teardown, whatever the test did */
        unsigned n_fakes;
};

static void listener(void *ud, enum job_event ev, struct job *j) {
        struct world *w = ud;
        if (w->n_events < 64)
                snprintf(w->events[w->n_events++], 32, "%c:%u%s%s", "NCR"[ev], j->id, ev == JOB_REMOVED ? ":" : "",
                         ev == JOB_REMOVED ? job_result(j) : "");
}

static int setup(void **state) {
        struct world *w = calloc(1, sizeof(*w));
        assert_non_null(w);
        assert_int_equal(sd_event_new(&w->event), 0);
        assert_int_equal(loop_new(w->event, &w->loop), 0);
        assert_int_equal(jobs_new(w->loop, 100, &w->jobs), 0);
        assert_int_equal(jobs_subscribe(w->jobs, listener, w), 0);
        *state = w;
        return 0;
}

static bool count_is(struct world *w, void *arg);
static bool run_until(struct world *w, bool (*pred)(struct world *w, void *arg), void *arg);

static int teardown(void **state) {
        struct world *w = *state;
        for (unsigned i = 0; i < w->n_fakes; i++)
                atomic_store(&w->fakes[i]->go, true);
        jobs_stop(w->jobs);
        unsigned zero = 0;
        run_until(w, count_is, &zero);
        jobs_free(w->jobs);
        for (unsigned i = 0; i < w->n_fakes; i++)
                free(w->fakes[i]);
        loop_free(w->loop);
        sd_event_unref(w->event);
        free(w);
        return 0;
}

/* Runs the loop until pred holds (5 s at most). */
static bool run_until(struct world *w, bool (*pred)(struct world *w, void *arg), void *arg) {
        for (int i = 0; i < 5000; i++) {
                if (pred(w, arg))
                        return true;
                sd_event_run(w->event, 1000);
        }
        return pred(w, arg);
}

static bool count_is(struct world *w, void *arg) {
        return jobs_count(w->jobs) == *(unsigned *)arg;
}

static bool started(struct world *w, void *arg) {
        (void)w;
        return atomic_load(&((struct fake *)arg)->started);
}

static unsigned removed(struct world *w) {
        unsigned n = 0;
        for (unsigned i = 0; i < w->n_events; i++)
                n += w->events[i][0] == 'R';
        return n;
}

static struct fake *fake_new(struct world *w) {
        struct fake *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        assert_true(w->n_fakes < 16);
        f->frees = &w->frees;
        w->fakes[w->n_fakes++] = f;
        return f;
}

static void test_life(void **state) {
        struct world *w = *state;
        jobs_set_limits(w->jobs, &(struct job_limits){ .max_concurrent = 1, .running_per_user = UINT_MAX });
        struct fake *f = fake_new(w);
        struct job *j = job_new(w->jobs, &fake_kind, "img", "file:///x", 0, f);
        assert_non_null(j);
        assert_int_equal(j->id, 101);
        assert_string_equal(j->path, "/org/hepix/hvwg1/job/_101");
        assert_int_equal(w->n_events, 0); /* not announced before job_submit */
        job_submit(j);
        assert_string_equal(w->events[0], "N:101");
        assert_true(run_until(w, started, f));
        usleep(150 * 1000);
        struct job_progress p;
        job_get_progress(j, &p);
        assert_string_equal(p.phase, "working");
        assert_true(p.total == 1000 && p.done > 0 && p.fraction > 0 && p.fraction < 1);
        atomic_store(&f->go, true);
        unsigned zero = 0;
        assert_true(run_until(w, count_is, &zero));
        assert_string_equal(w->events[w->n_events - 1], "R:101:done");
        assert_int_equal(removed(w), 1);
        assert_true(w->n_events >= 3 && w->events[1][0] == 'C'); /* the phase change was told */
        assert_true(f->finished_called && f->finished_result == 0);
        assert_int_equal(atomic_load(&w->frees), 1);
}

static void test_failure_and_cancel(void **state) {
        struct world *w = *state;
        jobs_set_limits(w->jobs, &(struct job_limits){ .max_concurrent = 1, .running_per_user = UINT_MAX });
        struct fake *a = fake_new(w), *b = fake_new(w), *c = fake_new(w);
        a->result = -EIO;
        struct job *ja = job_new(w->jobs, &fake_kind, "a", "", 0, a), *jb = job_new(w->jobs, &fake_kind, "b", "", 0, b),
                   *jc = job_new(w->jobs, &fake_kind, "c", "", 0, c);
        uint32_t ida = ja->id, idb = jb->id, idc = jc->id;
        job_submit(ja);
        job_submit(jb);
        job_submit(jc);
        assert_true(run_until(w, started, a));
        assert_false(atomic_load(&b->started)); /* one slot */
        job_cancel(jc);                          /* queued: ends without running */
        assert_int_equal(jobs_count(w->jobs), 3);
        unsigned two = 2;
        assert_true(run_until(w, count_is, &two));
        assert_false(atomic_load(&c->started));
        atomic_store(&a->go, true); /* fails */
        assert_true(run_until(w, started, b));
        job_cancel(jb); /* running: sees it between steps */
        unsigned zero = 0;
        assert_true(run_until(w, count_is, &zero));
        char want[3][32];
        snprintf(want[0], 32, "R:%u:canceled", idc);
        snprintf(want[1], 32, "R:%u:failed", ida);
        snprintf(want[2], 32, "R:%u:canceled", idb);
        unsigned k = 0;
        for (unsigned i = 0; i < w->n_events; i++)
                if (w->events[i][0] == 'R') {
                        assert_true(k < 3);
                        assert_string_equal(w->events[i], want[k]);
                        k++;
                }
        assert_int_equal(k, 3);
        assert_true(a->finished_called && a->finished_result == -EIO);
        assert_int_equal(atomic_load(&w->frees), 3);
}

/* User 1000 queues three jobs, then user 2000 one, while one slot is busy. When a second slot
 * opens, it goes to 2000 (turns by uid), not to 1000's next job. With RunningJobsPerUser=1 set
 * live, a freed slot does not go to 1000, who runs one already; raised to 2, it does. Another
 * kind has its own slots. */
static void test_turns(void **state) {
        struct world *w = *state;
        jobs_set_limits(w->jobs, &(struct job_limits){ .max_concurrent = 1, .running_per_user = UINT_MAX });
        struct fake *f[5];
        uid_t owner[5] = { 1000, 1000, 1000, 2000, 1000 };
        for (int i = 0; i < 5; i++) {
                f[i] = fake_new(w);
                job_submit(job_new(w->jobs, i == 4 ? &other_kind : &fake_kind, "t", "", owner[i], f[i]));
        }
        assert_true(run_until(w, started, f[0]));
        assert_true(run_until(w, started, f[4])); /* another kind: its own slot */
        assert_false(atomic_load(&f[1]->started) || atomic_load(&f[3]->started));
        jobs_set_limits(w->jobs, &(struct job_limits){ .max_concurrent = 2, .running_per_user = UINT_MAX });
        assert_true(run_until(w, started, f[3])); /* 2000's turn, before 1000's second */
        assert_false(atomic_load(&f[1]->started));
        jobs_set_limits(w->jobs, &(struct job_limits){ .max_concurrent = 2, .running_per_user = 1 });
        atomic_store(&f[3]->go, true);
        unsigned four = 4;
        assert_true(run_until(w, count_is, &four)); /* 2000's job has ended */
        usleep(50 * 1000);
        sd_event_run(w->event, 1000);
        assert_false(atomic_load(&f[1]->started)); /* a slot is free, but 1000 is at its cap */
        jobs_set_limits(w->jobs, &(struct job_limits){ .max_concurrent = 2, .running_per_user = 2 });
        assert_true(run_until(w, started, f[1]));
        assert_false(atomic_load(&f[2]->started)); /* two slots, both taken */
        for (int i = 0; i < 5; i++)
                atomic_store(&f[i]->go, true);
        unsigned zero = 0;
        assert_true(run_until(w, count_is, &zero));
        assert_int_equal(removed(w), 5);
        assert_int_equal(atomic_load(&w->frees), 5);
}

/* job_wait_for: waiters start only after their leader ends (not in a free slot), show its
 * progress, and learn its result. The leader is canceled: the first waiter leads the rest,
 * which then wait for it (not for the canceled one); it succeeds: they are settled and run. */
static void test_wait_for(void **state) {
        struct world *w = *state;
        jobs_set_limits(w->jobs, &(struct job_limits){ .max_concurrent = 4, .running_per_user = UINT_MAX });
        struct fake *f[4];
        struct job *j[4];
        for (int i = 0; i < 4; i++) {
                f[i] = fake_new(w);
                j[i] = job_new(w->jobs, &wait_kind, "w", "", 0, f[i]);
                if (i > 0)
                        job_wait_for(j[i], i == 1 ? j[0] : j[1]); /* a waiter's waiter waits for the leader */
                job_submit(j[i]);
        }
        assert_ptr_equal(j[3]->after, j[0]);
        uint32_t id0 = j[0]->id, id1 = j[1]->id;
        assert_true(run_until(w, started, f[0]));
        usleep(300 * 1000);
        sd_event_run(w->event, 1000);
        assert_false(atomic_load(&f[1]->started) || atomic_load(&f[2]->started)); /* free slots, but they wait */
        struct job_progress p;
        job_get_progress(j[2], &p);
        assert_string_equal(p.phase, "waiting");
        assert_int_equal(p.total, 1000); /* the leader's */
        job_cancel(j[0]);
        assert_true(run_until(w, started, f[1]));
        assert_int_equal(f[1]->finished_result, (int)id0);
        assert_ptr_equal(j[2]->after, j[1]);
        assert_ptr_equal(j[3]->after, j[1]);
        assert_false(atomic_load(&f[2]->started));
        atomic_store(&f[1]->go, true);
        assert_true(run_until(w, started, f[2]));
        assert_true(run_until(w, started, f[3]));
        assert_int_equal(f[3]->finished_result, (int)id1);
        atomic_store(&f[2]->go, true);
        atomic_store(&f[3]->go, true);
        unsigned zero = 0;
        assert_true(run_until(w, count_is, &zero));
        assert_int_equal(atomic_load(&w->frees), 4);
}

static void test_stop(void **state) {
        struct world *w = *state;
        jobs_set_limits(w->jobs, &(struct job_limits){ .max_concurrent = 1, .running_per_user = UINT_MAX });
        struct fake *a = fake_new(w), *b = fake_new(w);
        job_submit(job_new(w->jobs, &fake_kind, "a", "", 0, a));
        job_submit(job_new(w->jobs, &fake_kind, "b", "", 0, b));
        assert_true(run_until(w, started, a));
        jobs_stop(w->jobs);
        unsigned zero = 0;
        assert_true(run_until(w, count_is, &zero));
        assert_false(atomic_load(&b->started)); /* nothing starts once stopping */
        assert_int_equal(removed(w), 2);
}

static void bump(void *data) {
        atomic_fetch_add((atomic_int *)data, 1);
}

static bool frees_at(struct world *w, void *arg) {
        return atomic_load(&w->frees) == *(int *)arg;
}

static void *poster(void *arg) {
        struct world *w = arg;
        for (int i = 0; i < 1000; i++)
                assert_int_equal(loop_post(w->loop, bump, &w->frees), 0);
        return NULL;
}

/* loop.c: tasks from several threads all run, on the loop. */
static void test_loop_post(void **state) {
        struct world *w = *state;
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
                assert_int_equal(pthread_create(&t[i], NULL, poster, w), 0);
        for (int i = 0; i < 4; i++)
                pthread_join(t[i], NULL);
        int want = 4000;
        assert_true(run_until(w, frees_at, &want));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_life, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failure_and_cancel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_turns, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wait_for, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_loop_post, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
