/* subscriptions.h: subscriptions to HEPiX image lists — the registry (loop thread), their
 * records in ImageRoot/.subscriptions (ID.sub: the settings and the last refresh; ID.json:
 * the last accepted list's verified body), their refresh timers, and the refresh job kind
 * (refresh.c): download, verify the signature, parse, check against the list we have. */
#pragma once
#include <systemd/sd-event.h>

#include "conf.h"
#include "imagelist.h"
#include "job.h"
#include "store.h"
#include "subrec.h"
#include "uri.h"

struct subscription {
        struct sub_state st;
        char uri_shown[HV_URI_MAX + 8]; /* redacted */
        struct imagelist list;          /* the last accepted list */
        bool have_list;
        sd_event_source *timer;
        struct subscriptions *owner;
        struct subscription *next;
};

struct subscriptions;
/* Loop thread: a refresh ended (result: last_result), or a subscription's timer is due. */
typedef void (*sub_updated_fn)(void *ud, struct subscription *s);
typedef void (*sub_due_fn)(void *ud, struct subscription *s);

/* Opens ImageRoot/.subscriptions (made 0700) and loads what is there (start-up: before the
 * loop runs). A record that does not parse is logged and left alone. */
int subscriptions_open(struct subscriptions **ret, const char *image_root, sd_event *event, struct hv_error *e);
struct subscriptions *subscriptions_free(struct subscriptions *subs);
void subscriptions_set_callbacks(struct subscriptions *subs, sub_updated_fn updated, sub_due_fn due, void *ud);
struct subscription *subscriptions_first(struct subscriptions *subs);
struct subscription *subscriptions_find(struct subscriptions *subs, const char *id);
struct subscription *subscriptions_find_uri(struct subscriptions *subs, const char *uri);
const char *subscriptions_dir(struct subscriptions *subs);
/* A new subscription (not yet on disk: its first refresh writes it). NULL: out of memory. */
struct subscription *subscriptions_add(struct subscriptions *subs, const struct sub_state *st);
/* Drops it from the registry; its files are removed on a thread. */
void subscriptions_remove(struct subscriptions *subs, struct subscription *s);
/* (Re)arms the timer: due after delay_usec. */
void subscription_arm(struct subscriptions *subs, struct subscription *s, uint64_t delay_usec);

/* Worker: writes ID.sub (and ID.json when body) atomically, 0600. */
int sub_state_save(const char *dir, const struct sub_state *st, const char *body, size_t body_len, struct hv_error *e);

/* The refresh job kind (refresh.c). */
struct refresh_job {
        struct sub_state st;             /* in: the subscription's; out: as this refresh left it */
        const struct imagelist *prev;    /* the list we have (the loop's, unchanged while this runs) */
        struct hv_conf_snap *conf;
        char dir[HV_STORE_DIR_MAX];
        char uri_shown[HV_URI_MAX + 8];
        struct subscriptions *subs;      /* the loop's: finished() hands the result over */
        struct imagelist next;           /* out: the new list */
        bool have_next;
};
extern const struct job_kind refresh_kind;
struct refresh_job *refresh_job_new(const struct subscription *s, struct hv_conf_snap *conf, struct subscriptions *subs);
/* Loop: the job's result into its subscription (refresh.c calls it from finished()). */
void subscriptions_refreshed(struct subscriptions *subs, struct refresh_job *j, int result);
