/* bus_subscription.c: image list subscriptions on the bus (additions to API.md), and what a
 * refreshed list means for the store: new versions fetched (auto_fetch) through FetchImage's
 * job with the list's sha512 and size, images the list dropped (or an expired list) marked
 * expired and removed once no machine uses them, aliases resolved for CreateMachine. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "bus.h"
#include "errors.h"
#include "fetch.h"
#include "import.h"
#include "log.h"
#include "subscriptions.h"

#define MAX_SUBSCRIPTIONS 64

static struct job *refresh_of(struct manager *m, const char *id) {
        return jobs_find_target(m->jobs, &refresh_kind, id);
}

static struct job *start_refresh(struct manager *m, struct subscription *s, uid_t uid) {
        struct refresh_job *rj = refresh_job_new(s, m->snap, m->subs);
        struct job *j = rj ? job_new(m->jobs, &refresh_kind, s->st.id, s->uri_shown, uid, rj) : NULL;
        if (j)
                log_info("job %u: refresh subscription %s (%s)", j->id, s->st.id, s->uri_shown);
        return j;
}

static bool list_has(const struct subscription *s, const struct image_origin *o, int64_t now) {
        if (!s->have_list || s->list.expires <= now)
                return false;
        for (unsigned i = 0; i < s->list.n_images; i++) {
                const struct il_image *li = &s->list.images[i];
                if (strcmp(li->identifier, o->identifier) == 0 && strcmp(li->version, o->version) == 0)
                        return !li->expires || li->expires > now;
        }
        return false;
}

/* Every image of a subscription: expired unless its subscription's current list has it. */
static void mark_expired(struct manager *m) {
        int64_t now = (int64_t)(hv_now_usec() / 1000000);
        for (struct image *img = m->store.images; img; img = img->next) {
                if (!img->origin.subscription[0])
                        continue;
                struct subscription *s = subscriptions_find(m->subs, img->origin.subscription);
                bool was = img->expired;
                /* judged only by a list we have: a subscription whose list is lost (unreadable
                 * after a crash) leaves its images alone until a refresh brings one */
                img->expired = s && s->have_list && !list_has(s, &img->origin, now);
                if (img->expired && !was)
                        log_info("image %s expired: subscription %s's list no longer has %s version %s", img->name, s->st.id,
                                 img->origin.identifier, img->origin.version);
        }
}

/* RemoveImage's rule (bus_image_busy: a machine or a create job uses it), and no fetch replaces it. */
static bool image_in_use(struct manager *m, const char *name) {
        return jobs_find_target(m->jobs, &fetch_kind, name) || bus_image_busy(m, name, NULL) < 0;
}

void bus_subscriptions_sweep(struct manager *m) {
        if (!m->subs)
                return;
        mark_expired(m);
        for (struct image *img = m->store.images, *next; img; img = next) {
                next = img->next;
                if (!img->expired || image_in_use(m, img->name))
                        continue;
                char name[HV_NAME_MAX + 1];
                snprintf(name, sizeof(name), "%s", img->name);
                struct hv_error e = { 0 };
                if (store_remove(&m->store, name, &e) < 0)
                        log_warning("expired image %s cannot be removed: %s", name, e.msg);
                else
                        log_info("expired image %s removed (no machine uses it)", name);
        }
}

/* The state of a list's image here, and its local name. */
static const char *image_state(struct manager *m, const struct subscription *s, const struct il_image *li, char *name, size_t len) {
        if (imagelist_image_name(s->st.prefix, li, name, len) < 0) {
                snprintf(name, len, "-");
                return "bad-name";
        }
        int64_t now = (int64_t)(hv_now_usec() / 1000000);
        if (s->list.expires <= now || (li->expires && li->expires <= now))
                return "expired";
        if (!imagelist_format_supported(li))
                return "unsupported-format";
        if (jobs_find_target(m->jobs, &fetch_kind, name))
                return "queued";
        struct image *img = store_find(&m->store, name);
        if (img)
                return img->expired ? "expired" : "present";
        return "absent";
}

/* auto_fetch: the list's images not here yet, through FetchImage's job (sha512 and size from
 * the list: a wrong one fails that job with ChecksumMismatch/SizeMismatch; the list stays). */
static void fetch_new(struct manager *m, struct subscription *s) {
        if (!s->st.auto_fetch || !s->have_list)
                return;
        for (unsigned i = 0; i < s->list.n_images; i++) {
                const struct il_image *li = &s->list.images[i];
                char name[HV_NAME_MAX + 8];
                if (strcmp(image_state(m, s, li, name, sizeof(name)), "absent") != 0)
                        continue;
                struct fetch_params fp = {
                        .have_size = true,
                        .size = li->size,
                        .max_size = m->conf.max_image_size,
                        .engine = strcmp(m->conf.inflate, "zlib") == 0 ? GUNZIP_ZLIB : GUNZIP_ISAL,
                };
                snprintf(fp.sha512, sizeof(fp.sha512), "%s", li->sha512);
                /* a list gives no compression: the URL's .gz says it (before any query) */
                size_t ul = strcspn(li->uri, "?#");
                fp.compressed = ul >= 3 && strncasecmp(li->uri + ul - 3, ".gz", 3) == 0;
                struct image_origin o = { 0 };
                snprintf(o.subscription, sizeof(o.subscription), "%s", s->st.id);
                snprintf(o.identifier, sizeof(o.identifier), "%s", li->identifier);
                snprintf(o.version, sizeof(o.version), "%s", li->version);
                uint32_t id;
                struct hv_error e = { 0 };
                if (bus_fetch_start(m, li->uri, name, &fp, &o, &id, &e) < 0)
                        log_warning("subscription %s: cannot fetch %s version %s as %s: %s", s->st.id, li->identifier, li->version, name,
                                    e.msg);
                else
                        log_info("subscription %s: job %u fetches %s version %s as %s", s->st.id, id, li->identifier, li->version, name);
        }
}

static uint64_t jittered(uint64_t sec) {
        uint16_t rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
                rnd = 32768;
        /* ± 10 %: a farm's hosts do not all ask at the same second */
        return sec * 1000000ULL * (58982ULL + (uint64_t)rnd * 13107ULL / 65535ULL) / 65536ULL;
}

static void on_updated(void *ud, struct subscription *s) {
        struct manager *m = ud;
        int r = sd_bus_emit_signal(m->bus, HV_OBJ_PATH, HV_MANAGER_IFACE, "SubscriptionUpdated", "ss", s->st.id, s->st.last_result);
        if (r < 0)
                log_warning("cannot emit SubscriptionUpdated for %s: %s", s->st.id, strerror(-r));
        if (m->stopping) /* a refresh canceled by the stop: nothing new starts */
                return;
        bus_subscriptions_sweep(m); /* first: the images' expired marks as the new list says */
        fetch_new(m, s);
        subscription_arm(m->subs, s, jittered(s->st.refresh_sec));
}

static void on_due(void *ud, struct subscription *s) {
        struct manager *m = ud;
        if (refresh_of(m, s->st.id) || m->stopping)
                return;
        struct job *j = start_refresh(m, s, 0);
        if (j)
                job_submit(j);
        else
                subscription_arm(m->subs, s, jittered(s->st.refresh_sec));
}

int bus_subscriptions_setup(struct manager *m) {
        subscriptions_set_callbacks(m->subs, on_updated, on_due, m);
        for (struct subscription *s = subscriptions_first(m->subs); s; s = s->next) {
                /* soon after start-up (a list may have changed meanwhile), spread over a minute */
                uint64_t first = jittered(s->st.refresh_sec) / 2;
                subscription_arm(m->subs, s, first < 60000000ULL ? first : jittered(60) / 2 + 1000000);
        }
        bus_subscriptions_sweep(m);
        return 0;
}

const char *bus_subscriptions_resolve(struct manager *m, const char *alias) {
        struct image *best = NULL;
        for (struct subscription *s = subscriptions_first(m->subs); s; s = s->next)
                for (unsigned i = 0; s->have_list && i < s->list.n_images; i++) {
                        char a[HV_NAME_MAX + 8];
                        if (imagelist_alias(s->st.prefix, &s->list.images[i], a, sizeof(a)) < 0 || strcmp(a, alias) != 0)
                                continue;
                        for (struct image *img = m->store.images; img; img = img->next)
                                if (!img->expired && strcmp(img->origin.subscription, s->st.id) == 0 &&
                                    strcmp(img->origin.identifier, s->list.images[i].identifier) == 0 &&
                                    (!best || strverscmp(img->origin.version, best->origin.version) > 0))
                                        best = img;
                }
        return best ? best->name : NULL;
}

/* ---- methods ---- */

/* Which endorsers a host trusts is the site's choice, not a batch user's: subscriptions are
 * added and removed by root; members of hvwg may read and refresh them. */
static int root_only(uid_t uid, const char *what, sd_bus_error *ret) {
        if (uid == 0)
                return 0;
        return bus_fail(ret, HV_E_ACCESS, "%s is for root only (uid %u): which endorsers this host trusts is the site's choice",
                        what, (unsigned)uid);
}

static int find_sub(struct manager *m, sd_bus_message *msg, struct subscription **ret, sd_bus_error *err) {
        const char *id;
        int r = sd_bus_message_read(msg, "s", &id);
        if (r < 0)
                return r;
        if (!(*ret = subscriptions_find(m->subs, id)))
                return bus_fail(err, HV_E_NO_SUCH_SUBSCRIPTION, "no subscription %.40s (ListSubscriptions shows them)", id);
        return 0;
}

int bus_method_add_subscription(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        uid_t uid;
        const char *uri;
        struct opt_value opts[OPTS_MAX];
        size_t n_opts;
        int r;
        if ((r = bus_check_access(m, "AddSubscription", &uid, ret)) < 0 || (r = root_only(uid, "AddSubscription", ret)) < 0 ||
            (r = sd_bus_message_read(msg, "s", &uri)) < 0 || (r = bus_check_string(uri, "uri", ret)) < 0 ||
            (r = bus_read_options(msg, opts, &n_opts, NULL, ret)) < 0)
                return r;
        struct subscribe_params sp;
        struct hv_error e = { 0 };
        enum uri_scheme scheme;
        if ((r = opts_subscribe(opts, n_opts, &sp, &e)) < 0 || (r = fetch_check_uri(uri, &m->conf, &scheme, &e)) < 0)
                return bus_reply_error(ret, &e);
        if (m->stopping)
                return bus_fail(ret, HV_E_FAILED, "hvwgd is shutting down");
        struct subscription *old = subscriptions_find_uri(m->subs, uri);
        if (old)
                return bus_fail(ret, HV_E_SUBSCRIPTION_EXISTS, "subscription %s already has this list", old->st.id);
        unsigned n = 0;
        for (struct subscription *s = subscriptions_first(m->subs); s; s = s->next)
                n++;
        if (n >= MAX_SUBSCRIPTIONS)
                return bus_fail(ret, HV_E_LIMITS, "there are %u subscriptions already, the most hvwgd keeps", n);
        struct sub_state st = { .auto_fetch = sp.auto_fetch, .refresh_sec = sp.refresh_sec ? sp.refresh_sec : m->conf.refresh_sec,
                                .created_usec = hv_now_usec() };
        uint8_t rnd[16];
        hv_uuid_random(rnd); /* random bytes; the first 8 name it */
        hv_hex(rnd, SUB_ID_LEN / 2, st.id);
        snprintf(st.uri, sizeof(st.uri), "%s", uri);
        snprintf(st.endorser_dn, sizeof(st.endorser_dn), "%s", sp.endorser_dn);
        snprintf(st.ca_dn, sizeof(st.ca_dn), "%s", sp.ca_dn);
        snprintf(st.prefix, sizeof(st.prefix), "%s", sp.prefix);
        struct subscription *s = subscriptions_add(m->subs, &st);
        struct job *j = s ? start_refresh(m, s, uid) : NULL;
        if (!j) {
                if (s)
                        subscriptions_remove(m->subs, s);
                return -ENOMEM;
        }
        job_submit(j);
        log_info("subscription %s: %s, endorser %s (CA %s), auto_fetch %s, every %llu s (uid %u)", st.id, s->uri_shown, st.endorser_dn,
                 st.ca_dn, st.auto_fetch ? "yes" : "no", (unsigned long long)st.refresh_sec, (unsigned)uid);
        snprintf(m->call.note, sizeof(m->call.note), "subscription %s, job %u", st.id, j->id);
        return sd_bus_reply_method_return(msg, "s", st.id);
}

int bus_method_list_subscriptions(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        (void)ret;
        struct manager *m = ud;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssssstttbsssu)");
        for (struct subscription *s = subscriptions_first(m->subs); s && r >= 0; s = s->next)
                r = sd_bus_message_append(reply, "(sssssstttbsssu)", s->st.id, s->uri_shown, s->have_list ? s->list.identifier : "",
                                          s->have_list ? s->list.title : "", s->st.endorser_dn, s->st.ca_dn, s->st.last_refresh_usec,
                                          s->have_list ? (uint64_t)s->list.expires * 1000000ULL : 0, s->st.refresh_sec,
                                          (int)s->st.auto_fetch, s->st.prefix, s->st.last_result,
                                          s->st.last_error[0] ? s->st.last_error : "", s->have_list ? s->list.n_images : 0u);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}

int bus_method_list_subscription_images(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        struct subscription *s;
        int r = find_sub(m, msg, &s, ret);
        if (r < 0)
                return r;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssstssss)");
        for (unsigned i = 0; s->have_list && i < s->list.n_images && r >= 0; i++) {
                const struct il_image *li = &s->list.images[i];
                char name[HV_NAME_MAX + 8], alias[HV_NAME_MAX + 8];
                const char *state = image_state(m, s, li, name, sizeof(name));
                if (imagelist_alias(s->st.prefix, li, alias, sizeof(alias)) < 0)
                        alias[0] = 0;
                char shown[HV_URI_MAX + 8];
                uri_redact(li->uri, shown, sizeof(shown));
                r = sd_bus_message_append(reply, "(sssstssss)", li->identifier, li->title, li->version, shown, li->size, li->sha512,
                                          name, alias, state);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}

int bus_method_refresh_subscription(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        uid_t uid;
        struct subscription *s;
        int r;
        if ((r = bus_check_access(m, "RefreshSubscription", &uid, ret)) < 0 || (r = find_sub(m, msg, &s, ret)) < 0)
                return r;
        if (m->stopping)
                return bus_fail(ret, HV_E_FAILED, "hvwgd is shutting down");
        struct job *j = refresh_of(m, s->st.id);
        if (j) { /* one at a time: the caller gets the running one */
                snprintf(m->call.note, sizeof(m->call.note), "job %u (already refreshing)", j->id);
                return sd_bus_reply_method_return(msg, "uo", j->id, j->path);
        }
        if ((r = bus_check_quota(m, uid, ret)) < 0)
                return r;
        if (!(j = start_refresh(m, s, uid)))
                return -ENOMEM;
        return bus_announce_job(m, msg, j);
}

struct unlink_ctx {
        struct manager *m;
        char dir[HV_STORE_DIR_MAX];
        char id[SUB_ID_LEN + 1];
};

static void unlinked(void *data) {
        struct unlink_ctx *c = data;
        manager_thread_done(c->m);
        free(c);
}

static void *unlink_thread(void *arg) {
        struct unlink_ctx *c = arg;
        static const char *const ext[] = { "sub", "json" };
        for (size_t i = 0; i < ELEMENTSOF(ext); i++) {
                char path[HV_STORE_DIR_MAX + 32];
                snprintf(path, sizeof(path), "%s/%s.%s", c->dir, c->id, ext[i]);
                if (unlink(path) < 0 && errno != ENOENT)
                        log_warning("cannot remove %s: %m", path);
        }
        (void)hv_fsync_dir(c->dir);
        if (loop_post(c->m->loop, unlinked, c) < 0)
                log_error("subscription files removed, but the loop cannot be told (out of memory)");
        return NULL;
}

int bus_method_remove_subscription(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        uid_t uid;
        struct subscription *s;
        struct opt_value opts[OPTS_MAX];
        size_t n_opts;
        bool remove_images;
        struct hv_error e = { 0 };
        int r;
        if ((r = bus_check_access(m, "RemoveSubscription", &uid, ret)) < 0 ||
            (r = root_only(uid, "RemoveSubscription", ret)) < 0 || (r = find_sub(m, msg, &s, ret)) < 0 ||
            (r = bus_read_options(msg, opts, &n_opts, NULL, ret)) < 0)
                return r;
        if ((r = opts_unsubscribe(opts, n_opts, &remove_images, &e)) < 0)
                return bus_reply_error(ret, &e);
        struct job *j = refresh_of(m, s->st.id);
        if (j)
                return bus_fail(ret, HV_E_FAILED, "subscription %s is being refreshed (job %u): cancel it or wait, then remove", s->st.id,
                                j->id);
        struct unlink_ctx *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->m = m;
        snprintf(c->dir, sizeof(c->dir), "%s", subscriptions_dir(m->subs));
        snprintf(c->id, sizeof(c->id), "%s", s->st.id);
        pthread_t t;
        if (pthread_create(&t, NULL, unlink_thread, c) != 0) {
                free(c);
                return bus_fail(ret, HV_E_FAILED, "cannot start a thread to remove the subscription's files");
        }
        pthread_detach(t);
        manager_thread_started(m);
        unsigned kept = 0, removed = 0;
        for (struct image *img = m->store.images, *next; img; img = next) {
                next = img->next;
                if (strcmp(img->origin.subscription, c->id) != 0)
                        continue;
                img->expired = false; /* no list judges it any more */
                if (!remove_images || image_in_use(m, img->name)) {
                        kept++;
                        continue;
                }
                char name[HV_NAME_MAX + 1];
                snprintf(name, sizeof(name), "%s", img->name);
                if (store_remove(&m->store, name, &e) < 0) {
                        log_warning("image %s of subscription %s cannot be removed: %s", name, c->id, e.msg);
                        e = (struct hv_error){ 0 };
                        kept++;
                } else
                        removed++;
        }
        log_info("subscription %s removed (uid %u): %u of its images removed, %u kept", c->id, (unsigned)uid, removed, kept);
        snprintf(m->call.note, sizeof(m->call.note), "ok: %u images removed, %u kept", removed, kept);
        subscriptions_remove(m->subs, s);
        return sd_bus_reply_method_return(msg, "");
}
