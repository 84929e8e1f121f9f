/* hvwgctl: image list subscriptions — subscribe, subscriptions, unsubscribe, refresh,
 * list-images. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

static void put_s(json_object *o, const char *key, const char *v) {
        json_object_object_add(o, key, json_object_new_string(v));
}

static void put_t(json_object *o, const char *key, uint64_t v) {
        json_object_object_add(o, key, json_object_new_uint64(v));
}

/* ListSubscriptions as JSON objects; the one with id when id is given (NULL: not there). */
static int read_subscriptions(sd_bus *bus, const char *id, json_object **ret) {
        sd_bus_message *reply = NULL;
        int r = ctl_call(bus, "ListSubscriptions", &reply, "");
        if (r < 0)
                return r;
        json_object *arr = json_object_new_array();
        r = sd_bus_message_enter_container(reply, 'a', "(sssssstttbsssu)");
        const char *sid, *uri, *ident, *title, *dn, *ca, *prefix, *result, *error;
        uint64_t last, expires, every;
        int autof;
        uint32_t n;
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sssssstttbsssu)", &sid, &uri, &ident, &title, &dn, &ca, &last, &expires, &every,
                                                  &autof, &prefix, &result, &error, &n)) > 0) {
                if (id && strcmp(id, sid) != 0)
                        continue;
                json_object *o = json_object_new_object();
                put_s(o, "id", sid);
                put_s(o, "uri", uri);
                put_s(o, "list_identifier", ident);
                put_s(o, "title", title);
                put_s(o, "endorser_dn", dn);
                put_s(o, "ca_dn", ca);
                put_t(o, "last_refresh_usec", last);
                put_t(o, "expires_usec", expires);
                put_t(o, "refresh_sec", every);
                json_object_object_add(o, "auto_fetch", json_object_new_boolean(autof));
                put_s(o, "name_prefix", prefix);
                put_s(o, "last_result", result);
                put_s(o, "last_error", error);
                put_t(o, "images", n);
                json_object_array_add(arr, o);
        }
        sd_bus_message_unref(reply);
        if (r < 0) {
                json_object_put(arr);
                return -ctl_bad_reply(r);
        }
        if (id) {
                json_object *o = json_object_array_length(arr) ? json_object_get(json_object_array_get_idx(arr, 0)) : NULL;
                json_object_put(arr);
                *ret = o;
        } else
                *ret = arr;
        return 0;
}

/* One subscription's last refresh, as a line or JSON; exit 1 when it failed. */
static int report(sd_bus *bus, const char *id) {
        json_object *o = NULL;
        int r = read_subscriptions(bus, id, &o);
        if (r < 0)
                return -r;
        if (!o)
                return ctl_error(NULL, "subscription %s is gone", id);
        const char *result = ctl_json_str(o, "last_result");
        bool failed = strcmp(result, "failed") == 0 || strcmp(result, "canceled") == 0;
        if (arg.json)
                ctl_print_json(json_object_get(o));
        else if (failed)
                fprintf(stderr, "%s: subscription %s: the list was refused: %s\n", ctl_program, id, ctl_json_str(o, "last_error"));
        else if (!arg.quiet)
                printf("subscription %s: %s; list %s \"%s\", %s images\n", id, result, ctl_json_str(o, "list_identifier"),
                       ctl_json_str(o, "title"), ctl_json_str(o, "images"));
        json_object_put(o);
        return failed ? EXIT_FAILED : EXIT_OK;
}

static int on_updated(sd_bus_message *m, void *ud, sd_bus_error *e) {
        (void)e;
        char *want = ud;
        const char *id, *result;
        if (sd_bus_message_read(m, "ss", &id, &result) >= 0 && strcmp(id, want) == 0)
                want[0] = 0; /* seen */
        return 0;
}

int cmd_subscribe(sd_bus *bus, const char *uri) {
        uint64_t every = 0;
        if (!arg.endorser_dn || !arg.ca_dn)
                return ctl_usage("subscribe needs --endorser-dn and --ca-dn (the endorser certificate's subject and issuer, as "
                                 "`openssl x509 -noout -subject -issuer -nameopt compat` prints them)");
        if (arg.refresh && hv_parse_size(arg.refresh, &every) < 0)
                return ctl_usage("invalid --refresh %s (seconds)", arg.refresh);
        char seen[64] = "";
        /* the first refresh's signal may come right after the reply: listen before asking */
        int r = sd_bus_match_signal(bus, NULL, BUS_NAME, OBJ, MGR, "SubscriptionUpdated", on_updated, seen);
        if (r < 0)
                return ctl_error(NULL, "cannot watch for SubscriptionUpdated: %s", strerror(-r));
        sd_bus_message *m = NULL;
        if ((r = ctl_new_call(bus, &m, "AddSubscription")) < 0)
                return EXIT_FAILED;
        r = sd_bus_message_append(m, "s", uri);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}", "endorser_dn", "s", arg.endorser_dn);
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}", "ca_dn", "s", arg.ca_dn);
        if (r >= 0 && arg.auto_fetch)
                r = sd_bus_message_append(m, "{sv}", "auto_fetch", "b", 1);
        if (r >= 0 && every)
                r = sd_bus_message_append(m, "{sv}", "refresh_sec", "t", every);
        if (r >= 0 && arg.name_prefix)
                r = sd_bus_message_append(m, "{sv}", "name_prefix", "s", arg.name_prefix);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0) {
                sd_bus_message_unref(m);
                return ctl_error(NULL, "cannot build the call: %s", strerror(-r));
        }
        sd_bus_message *reply = NULL;
        if ((r = ctl_send(bus, m, 0, &reply, "AddSubscription")) != 0)
                return r;
        const char *id;
        r = sd_bus_message_read(reply, "s", &id);
        if (r < 0) {
                sd_bus_message_unref(reply);
                return ctl_bad_reply(r);
        }
        snprintf(seen, sizeof(seen), "%s", id);
        sd_bus_message_unref(reply);
        if (arg.no_wait) {
                printf("%s\n", seen);
                return EXIT_OK;
        }
        char keep[64];
        snprintf(keep, sizeof(keep), "%s", seen);
        while (seen[0] && !interrupted) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return ctl_error(NULL, "lost the bus: %s", strerror(-r));
                if (r == 0 && (r = sd_bus_wait(bus, 500000)) < 0 && r != -EINTR)
                        return ctl_error(NULL, "lost the bus: %s", strerror(-r));
        }
        if (interrupted)
                return EXIT_CANCELED;
        return report(bus, keep);
}

int cmd_subscriptions(sd_bus *bus) {
        json_object *arr = NULL;
        int r = read_subscriptions(bus, NULL, &arr);
        if (r < 0)
                return -r;
        if (arg.json) {
                ctl_print_json(arr);
                return EXIT_OK;
        }
        size_t n = json_object_array_length(arr);
        if (n && ctl_legend())
                printf("%-16s %-12s %6s %-19s %-7s %s\n", "ID", "RESULT", "IMAGES", "REFRESHED", "AUTO", "URI / ENDORSER");
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(arr, i), *v;
                char t[32];
                json_object_object_get_ex(o, "last_refresh_usec", &v);
                uint64_t last = json_object_get_uint64(v);
                json_object_object_get_ex(o, "auto_fetch", &v);
                bool autof = json_object_get_boolean(v);
                printf("%-16s %-12s %6s %-19s %-7s %s\n%53s %s\n", ctl_json_str(o, "id"), ctl_json_str(o, "last_result"),
                       ctl_json_str(o, "images"), last ? ctl_time(last, t, sizeof(t)) : "never", autof ? "fetch" : "-",
                       ctl_json_str(o, "uri"), "", ctl_json_str(o, "endorser_dn"));
                const char *err = ctl_json_str(o, "last_error");
                if (*err)
                        printf("%53s last error: %s\n", "", err);
        }
        if (!n)
                ctl_none("subscriptions");
        json_object_put(arr);
        return EXIT_OK;
}

int cmd_unsubscribe(sd_bus *bus, const char *id) {
        sd_bus_message *m = NULL;
        int r = ctl_new_call(bus, &m, "RemoveSubscription");
        if (r < 0)
                return EXIT_FAILED;
        r = sd_bus_message_append(m, "s", id);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg.remove_images)
                r = sd_bus_message_append(m, "{sv}", "remove_images", "b", 1);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0) {
                sd_bus_message_unref(m);
                return ctl_error(NULL, "cannot build the call: %s", strerror(-r));
        }
        sd_bus_message *reply = NULL;
        if ((r = ctl_send(bus, m, 0, &reply, "RemoveSubscription")) != 0)
                return r;
        sd_bus_message_unref(reply);
        if (!arg.quiet && !arg.json)
                printf("subscription %s removed\n", id);
        return EXIT_OK;
}

int cmd_refresh(sd_bus *bus, const char *id) {
        sd_bus_message *m = NULL;
        int r = ctl_new_call(bus, &m, "RefreshSubscription");
        if (r < 0)
                return EXIT_FAILED;
        r = sd_bus_message_append(m, "s", id);
        bool quiet = arg.quiet;
        enum json_mode json = arg.json;
        arg.quiet = true; /* the job's own lines would repeat what the report says */
        arg.json = JSON_OFF;
        r = ctl_run_job_plain(bus, m, r, "RefreshSubscription");
        arg.quiet = quiet;
        arg.json = json;
        if (r == EXIT_CANCELED || r == EXIT_UNREACHABLE || r == EXIT_USAGE || arg.no_wait)
                return r;
        int rep = report(bus, id);
        return r ? r : rep;
}

int cmd_list_images(sd_bus *bus, const char *id) {
        sd_bus_message *reply = NULL;
        int r = ctl_call(bus, "ListSubscriptionImages", &reply, "s", id);
        if (r < 0)
                return -r;
        json_object *arr = json_object_new_array();
        r = sd_bus_message_enter_container(reply, 'a', "(sssstssss)");
        const char *ident, *title, *version, *uri, *sha, *name, *alias, *state;
        uint64_t size;
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sssstssss)", &ident, &title, &version, &uri, &size, &sha, &name, &alias,
                                                  &state)) > 0) {
                json_object *o = json_object_new_object();
                put_s(o, "identifier", ident);
                put_s(o, "title", title);
                put_s(o, "version", version);
                put_s(o, "uri", uri);
                put_t(o, "size", size);
                put_s(o, "sha512", sha);
                put_s(o, "name", name);
                put_s(o, "alias", alias);
                put_s(o, "state", state);
                json_object_array_add(arr, o);
        }
        sd_bus_message_unref(reply);
        if (r < 0) {
                json_object_put(arr);
                return ctl_bad_reply(r);
        }
        if (arg.json) {
                ctl_print_json(arr);
                return EXIT_OK;
        }
        size_t n = json_object_array_length(arr);
        if (n && ctl_legend())
                printf("%-18s %-40s %-14s %10s %s\n", "STATE", "NAME", "VERSION", "SIZE", "TITLE");
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(arr, i), *v;
                char b[32];
                json_object_object_get_ex(o, "size", &v);
                printf("%-18s %-40s %-14s %10s %s\n", ctl_json_str(o, "state"), ctl_json_str(o, "name"), ctl_json_str(o, "version"),
                       ctl_size(json_object_get_uint64(v), b, sizeof(b)), ctl_json_str(o, "title"));
        }
        if (!n)
                ctl_none("images in this list");
        json_object_put(arr);
        return EXIT_OK;
}
