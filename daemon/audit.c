/* audit.c: the audit trail of state-changing calls. */
#include "audit.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "uri.h"
#include "util.h"

bool audit_secret_key(const char *key) {
        static const char *const secret[] = { "user_data", "meta_data", "network_config", "context_files", "context_vars",
                                              "password", "token" };
        for (size_t i = 0; i < ELEMENTSOF(secret); i++)
                if (strcmp(key, secret[i]) == 0)
                        return true;
        return false;
}

struct out {
        char *buf;
        size_t len, used;
};

static void put(struct out *o, const char *fmt, ...) HV_PRINTF(2, 3);
static void put(struct out *o, const char *fmt, ...) {
        if (o->used >= o->len)
                return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->used, o->len - o->used, fmt, ap);
        va_end(ap);
        o->used = n < 0 ? o->len : o->used + (size_t)n;
}

/* A string as shown: URIs redacted, quotes and control bytes escaped, at most 200 bytes. */
static void put_string(struct out *o, const char *s) {
        char shown[512];
        if (strstr(s, "://")) {
                uri_redact(s, shown, sizeof(shown));
                s = shown;
        }
        put(o, "\"");
        for (size_t i = 0; s[i] && i < 200; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f)
                        put(o, "\\x%02x", c);
                else
                        put(o, "%c", c);
        }
        put(o, strlen(s) > 200 ? "…\"" : "\"");
}

/* One value of a basic type (or a variant or array of them, summarised), consumed from msg. */
static void put_value(struct out *o, sd_bus_message *msg, char type, const char *contents, bool secret) {
        union {
                const char *s;
                uint64_t t;
                uint32_t u;
                int32_t i;
                int b;
                uint8_t y;
                double d;
        } v;
        switch (type) {
        case SD_BUS_TYPE_STRING:
        case SD_BUS_TYPE_OBJECT_PATH:
                if (sd_bus_message_read_basic(msg, type, &v.s) > 0)
                        put_string(o, v.s);
                return;
        case SD_BUS_TYPE_UINT64:
                if (sd_bus_message_read_basic(msg, type, &v.t) > 0)
                        put(o, "%llu", (unsigned long long)v.t);
                return;
        case SD_BUS_TYPE_UINT32:
                if (sd_bus_message_read_basic(msg, type, &v.u) > 0)
                        put(o, "%u", v.u);
                return;
        case SD_BUS_TYPE_INT32:
                if (sd_bus_message_read_basic(msg, type, &v.i) > 0)
                        put(o, "%d", v.i);
                return;
        case SD_BUS_TYPE_BOOLEAN:
                if (sd_bus_message_read_basic(msg, type, &v.b) > 0)
                        put(o, "%s", v.b ? "true" : "false");
                return;
        case SD_BUS_TYPE_BYTE:
                if (sd_bus_message_read_basic(msg, type, &v.y) > 0)
                        put(o, "%u", v.y);
                return;
        case SD_BUS_TYPE_VARIANT:
                if (contents && sd_bus_message_enter_container(msg, 'v', contents) > 0) {
                        if (secret || strlen(contents) != 1) {
                                put(o, secret ? "<secret>" : "<%s>", contents);
                                (void)sd_bus_message_skip(msg, contents);
                        } else
                                put_value(o, msg, contents[0], NULL, false);
                        (void)sd_bus_message_exit_container(msg);
                } else
                        (void)sd_bus_message_skip(msg, "v");
                return;
        default:
                put(o, "<%c>", type);
                (void)sd_bus_message_skip(msg, NULL);
        }
}

/* An a{sv} dictionary as {key=value, …}. */
static void put_options(struct out *o, sd_bus_message *msg) {
        put(o, "{");
        if (sd_bus_message_enter_container(msg, 'a', "{sv}") <= 0) {
                put(o, "?}");
                return;
        }
        bool first = true;
        while (sd_bus_message_enter_container(msg, 'e', "sv") > 0) {
                const char *key = NULL, *contents = NULL;
                char t;
                if (sd_bus_message_read(msg, "s", &key) < 0 || sd_bus_message_peek_type(msg, &t, &contents) < 0)
                        break;
                put(o, "%s", first ? "" : ", ");
                first = false;
                put_string(o, key);
                put(o, "=");
                put_value(o, msg, SD_BUS_TYPE_VARIANT, contents, audit_secret_key(key));
                (void)sd_bus_message_exit_container(msg);
        }
        (void)sd_bus_message_exit_container(msg);
        put(o, "}");
}

void audit_begin(struct audit_rec *rec, sd_bus_message *msg, const struct caller *c) {
        memset(rec, 0, sizeof(*rec));
        snprintf(rec->method, sizeof(rec->method), "%s", sd_bus_message_get_member(msg) ? sd_bus_message_get_member(msg) : "?");
        rec->uid = (uid_t)-1;
        rec->pid = -1;
        if (c) {
                rec->uid = c->uid;
                rec->pid = c->pid;
        }
        struct out o = { .buf = rec->args, .len = sizeof(rec->args) };
        for (bool first = true;; first = false) {
                char t;
                const char *contents = NULL;
                if (sd_bus_message_peek_type(msg, &t, &contents) <= 0)
                        break;
                put(&o, "%s", first ? "" : ", ");
                if (t == SD_BUS_TYPE_ARRAY && contents && strcmp(contents, "{sv}") == 0)
                        put_options(&o, msg);
                else
                        put_value(&o, msg, t, contents, false);
        }
        (void)sd_bus_message_rewind(msg, true);
}

void audit_end(const struct audit_rec *rec, const char *error_name, const char *outcome) {
        if (error_name)
                log_info("audit: uid=%ld pid=%ld %s(%s) → refused (%s): %s", (long)(int)rec->uid, (long)rec->pid, rec->method, rec->args,
                         error_name, outcome ? outcome : "");
        else
                log_info("audit: uid=%ld pid=%ld %s(%s) → %s", (long)(int)rec->uid, (long)rec->pid, rec->method, rec->args,
                         outcome ? outcome : "ok");
}
