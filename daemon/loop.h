/* loop.h: the one channel from other threads to the event loop: a queue of (fn, data) tasks
 * and an eventfd that wakes the loop to run them, in the order they were posted. */
#pragma once
#include <systemd/sd-event.h>

struct loop;
typedef void (*loop_fn)(void *data);

int loop_new(sd_event *event, struct loop **ret);
struct loop *loop_free(struct loop *l);
sd_event *loop_event(struct loop *l);
/* Runs fn(data) on the loop thread soon; callable from any thread. -ENOMEM if it cannot. */
int loop_post(struct loop *l, loop_fn fn, void *data);
/* Runs what is queued now, on the calling (loop) thread: the wake does this; so does the end,
 * after the threads that post have stopped. */
void loop_run_pending(struct loop *l);
