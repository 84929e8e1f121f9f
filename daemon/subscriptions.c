/* subscriptions.c: the registry of image list subscriptions, their records and timers. */
#define _GNU_SOURCE
#include "subscriptions.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

struct subscriptions {
        char dir[HV_STORE_DIR_MAX];
        sd_event *event;
        struct subscription *list;
        sub_updated_fn updated;
        sub_due_fn due;
        void *ud;
};

int sub_state_save(const char *dir, const struct sub_state *st, const char *body, size_t body_len, struct hv_error *e) {
        char path[PATH_MAX];
        int r;
        if (body) {
                snprintf(path, sizeof(path), "%s/%s.json", dir, st->id);
                if ((r = hv_write_file_atomic(path, body, body_len, 0600)) < 0)
                        return hv_fail_errno(e, HV_E_ERRNO, -r, "cannot write %s", path);
        }
        _cleanup_free_ char *text = sub_state_format(st);
        if (!text)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot format the subscription record");
        snprintf(path, sizeof(path), "%s/%s.sub", dir, st->id);
        if ((r = hv_write_file_atomic(path, text, strlen(text), 0600)) < 0)
                return hv_fail_errno(e, HV_E_ERRNO, -r, "cannot write %s", path);
        return 0;
}

/* ---- the registry (loop thread) ---- */

static void sub_free(struct subscription *s) {
        if (!s)
                return;
        sd_event_source_disable_unref(s->timer);
        imagelist_free(&s->list);
        free(s);
}

static struct subscription *sub_new(const struct sub_state *st) {
        struct subscription *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->st = *st;
        uri_redact(st->uri, s->uri_shown, sizeof(s->uri_shown));
        return s;
}

/* One record and its list, at start-up. */
static void load_one(struct subscriptions *subs, const char *name) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", subs->dir, name);
        _cleanup_free_ char *text = NULL, *body = NULL;
        size_t len = 0, blen = 0;
        struct sub_state st;
        int r = hv_read_file(path, 64 * 1024, &text, &len);
        if (r < 0 || sub_state_parse(&st, text) < 0 || strncmp(name, st.id, SUB_ID_LEN) != 0) {
                log_warning("subscription record %s cannot be read (%s): left alone", path, r < 0 ? strerror(-r) : "malformed");
                return;
        }
        struct subscription *s = sub_new(&st);
        if (!s)
                return;
        s->owner = subs;
        snprintf(path, sizeof(path), "%s/%s.json", subs->dir, st.id);
        struct hv_error e = { 0 };
        if (hv_read_file(path, 256ULL << 20, &body, &blen) == 0) {
                if (imagelist_parse(body, blen, &s->list, &e) == 0)
                        s->have_list = true;
                else {
                        imagelist_free(&s->list);
                        log_warning("subscription %s: its stored list %s does not parse (%s): it is fetched again", st.id, path, e.msg);
                        s->st.etag[0] = s->st.last_modified[0] = 0;
                }
        }
        s->next = subs->list;
        subs->list = s;
        log_info("subscription %s: %s, %u images in its list", st.id, s->uri_shown, s->have_list ? s->list.n_images : 0);
}

int subscriptions_open(struct subscriptions **ret, const char *image_root, sd_event *event, struct hv_error *e) {
        struct subscriptions *subs = calloc(1, sizeof(*subs));
        if (!subs)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        snprintf(subs->dir, sizeof(subs->dir), "%s/.subscriptions", image_root);
        subs->event = event;
        if (mkdir(subs->dir, 0700) < 0 && errno != EEXIST) {
                free(subs);
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot create %s/.subscriptions", image_root);
        }
        DIR *d = opendir(subs->dir);
        if (!d) {
                int r = hv_fail_errno(e, HV_E_ERRNO, errno, "cannot open %s", subs->dir);
                free(subs);
                return r;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (l == SUB_ID_LEN + 4 && strcmp(de->d_name + SUB_ID_LEN, ".sub") == 0)
                        load_one(subs, de->d_name);
        }
        closedir(d);
        *ret = subs;
        return 0;
}

struct subscriptions *subscriptions_free(struct subscriptions *subs) {
        if (!subs)
                return NULL;
        for (struct subscription *s = subs->list, *n; s; s = n) {
                n = s->next;
                sub_free(s);
        }
        free(subs);
        return NULL;
}

void subscriptions_set_callbacks(struct subscriptions *subs, sub_updated_fn updated, sub_due_fn due, void *ud) {
        subs->updated = updated;
        subs->due = due;
        subs->ud = ud;
}

struct subscription *subscriptions_first(struct subscriptions *subs) {
        return subs->list;
}

struct subscription *subscriptions_find(struct subscriptions *subs, const char *id) {
        for (struct subscription *s = subs->list; s; s = s->next)
                if (strcmp(s->st.id, id) == 0)
                        return s;
        return NULL;
}

struct subscription *subscriptions_find_uri(struct subscriptions *subs, const char *uri) {
        for (struct subscription *s = subs->list; s; s = s->next)
                if (strcmp(s->st.uri, uri) == 0)
                        return s;
        return NULL;
}

const char *subscriptions_dir(struct subscriptions *subs) {
        return subs->dir;
}

struct subscription *subscriptions_add(struct subscriptions *subs, const struct sub_state *st) {
        struct subscription *s = sub_new(st);
        if (!s)
                return NULL;
        s->owner = subs;
        struct subscription **pp = &subs->list;
        while (*pp)
                pp = &(*pp)->next;
        *pp = s;
        return s;
}

void subscriptions_remove(struct subscriptions *subs, struct subscription *s) {
        struct subscription **pp = &subs->list;
        while (*pp && *pp != s)
                pp = &(*pp)->next;
        if (*pp)
                *pp = s->next;
        sub_free(s);
}

static int on_timer(sd_event_source *src, uint64_t usec, void *ud) {
        (void)src; (void)usec;
        struct subscription *s = ud;
        if (s->owner->due)
                s->owner->due(s->owner->ud, s);
        return 0;
}

void subscription_arm(struct subscriptions *subs, struct subscription *s, uint64_t delay_usec) {
        if (!subs->event)
                return;
        if (s->timer) {
                if (sd_event_source_set_time_relative(s->timer, delay_usec) < 0 ||
                    sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT) < 0)
                        log_warning("subscription %s: cannot re-arm its refresh timer", s->st.id);
                return;
        }
        if (sd_event_add_time_relative(subs->event, &s->timer, CLOCK_MONOTONIC, delay_usec, 1000000, on_timer, s) < 0)
                log_warning("subscription %s: cannot arm its refresh timer: it refreshes only when asked", s->st.id);
}

void subscriptions_refreshed(struct subscriptions *subs, struct refresh_job *j, int result) {
        (void)result;
        struct subscription *s = subscriptions_find(subs, j->st.id);
        if (!s)
                return;
        s->st = j->st;
        if (j->have_next) {
                imagelist_free(&s->list);
                s->list = j->next;
                j->next = (struct imagelist){ 0 };
                j->have_next = false;
                s->have_list = true;
        }
        if (subs->updated)
                subs->updated(subs->ud, s);
}
