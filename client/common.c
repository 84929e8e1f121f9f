/* common.c: hvwgctl's bus calls, errors, exit codes and output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

struct ctl_args arg;
volatile sig_atomic_t interrupted;
const char *ctl_program = "hvwgctl";

static void on_signal(int sig) {
        interrupted = sig;
}

void ctl_catch_signals(void) {
        struct sigaction sa = { .sa_handler = on_signal };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
}

int ctl_connect(sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;
        if (arg.address) {
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, arg.address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, 1);
                if (r >= 0)
                        r = sd_bus_start(bus);
        } else
                r = sd_bus_open_system(&bus);
        if (r < 0) {
                sd_bus_unref(bus);
                return ctl_error(SD_BUS_ERROR_NO_SERVER, "cannot connect to the bus %s: %s",
                                 arg.address ? arg.address : "(system)", strerror(-r));
        }
        *ret = bus;
        return 0;
}

int ctl_exit_for(const char *name) {
        if (!name)
                return EXIT_FAILED;
        if (strcmp(name, SD_BUS_ERROR_INVALID_ARGS) == 0 || strcmp(name, "usage") == 0)
                return EXIT_USAGE;
        static const char *const unreachable[] = { SD_BUS_ERROR_ACCESS_DENIED, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                                   SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_DISCONNECTED, SD_BUS_ERROR_NO_SERVER };
        for (size_t i = 0; i < ELEMENTSOF(unreachable); i++)
                if (strcmp(name, unreachable[i]) == 0)
                        return EXIT_UNREACHABLE;
        return EXIT_FAILED;
}

static int verror(const char *name, const char *fmt, va_list ap) {
        char msg[2048];
        vsnprintf(msg, sizeof(msg), fmt, ap);
        if (arg.json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "error", json_object_new_string(name ? name : "failed"));
                json_object_object_add(o, "message", json_object_new_string(msg));
                fprintf(stderr, "%s\n",
                        json_object_to_json_string_ext(o, JSON_C_TO_STRING_NOSLASHESCAPE |
                                                                  (arg.json == JSON_PRETTY ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN)));
                json_object_put(o);
        } else {
                fprintf(stderr, "%s: %s\n", ctl_program, msg);
                if (arg.verbose && name)
                        fprintf(stderr, "%s: (%s)\n", ctl_program, name);
        }
        return ctl_exit_for(name);
}

int ctl_error(const char *name, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = verror(name, fmt, ap);
        va_end(ap);
        return r;
}

int ctl_usage(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        verror("usage", fmt, ap);
        va_end(ap);
        return EXIT_USAGE;
}

int ctl_fail_bus(const char *what, const sd_bus_error *e, int r) {
        if (e && sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                return ctl_error(e->name, "hvwgd is not running (nobody owns %s on this bus)", BUS_NAME);
        if (e && sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED) && e->message && strstr(e->message, "Rejected send message"))
                /* the bus policy said no, before hvwgd saw the call */
                return ctl_error(e->name, "access denied: %s is allowed only to root and members of the group hvwg", what);
        if (e && sd_bus_error_is_set(e))
                return ctl_error(e->name, "%s", e->message ? e->message : e->name);
        return ctl_error(r == -ETIMEDOUT ? SD_BUS_ERROR_NO_REPLY : NULL, "%s: %s", what, strerror(-r));
}

int ctl_call(sd_bus *bus, const char *method, sd_bus_message **reply, const char *types, ...) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        va_list ap;
        va_start(ap, types);
        int r = sd_bus_call_methodv(bus, BUS_NAME, OBJ, MGR, method, &e, reply, types, ap);
        va_end(ap);
        if (r < 0) {
                r = -ctl_fail_bus(method, &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        return 0;
}

int ctl_new_call(sd_bus *bus, sd_bus_message **m, const char *method) {
        int r = sd_bus_message_new_method_call(bus, m, BUS_NAME, OBJ, MGR, method);
        if (r < 0)
                ctl_error(NULL, "cannot build the %s call: %s", method, strerror(-r));
        return r;
}

int ctl_send(sd_bus *bus, sd_bus_message *m, uint64_t timeout_usec, sd_bus_message **reply, const char *what) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call(bus, m, timeout_usec, &e, reply);
        sd_bus_message_unref(m);
        if (r < 0) {
                r = ctl_fail_bus(what, &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        return EXIT_OK;
}

int ctl_bad_reply(int r) {
        return ctl_error(NULL, "bad reply from hvwgd: %s", strerror(-r));
}

void ctl_print_json(json_object *o) {
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE | (arg.json == JSON_PRETTY ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
                                                                               : JSON_C_TO_STRING_PLAIN);
        printf("%s\n", json_object_to_json_string_ext(o, flags));
        fflush(stdout);
        json_object_put(o);
}

const char *ctl_size(uint64_t v, char *buf, size_t len) {
        if (arg.bytes) {
                snprintf(buf, len, "%llu", (unsigned long long)v);
                return buf;
        }
        return hv_format_size(v, buf, len);
}

const char *ctl_time(uint64_t usec, char *buf, size_t len) {
        if (!usec) {
                snprintf(buf, len, "-");
                return buf;
        }
        time_t t = (time_t)(usec / 1000000ULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
        return buf;
}

bool ctl_legend(void) {
        return !arg.quiet && !arg.no_legend;
}

void ctl_none(const char *what) {
        if (ctl_legend())
                printf("No %s.\n", what);
}

/* One variant's value (basic types, as, a(sst)) as JSON. */
static int read_variant(sd_bus_message *m, const char *contents, json_object **ret) {
        int r;
        if (strlen(contents) == 1) {
                union {
                        const char *s;
                        uint64_t t;
                        uint32_t u;
                        int b;
                        double d;
                } v;
                switch (contents[0]) {
                case 's':
                        r = sd_bus_message_read(m, "v", "s", &v.s);
                        *ret = json_object_new_string(r >= 0 ? v.s : "");
                        return r;
                case 't':
                        r = sd_bus_message_read(m, "v", "t", &v.t);
                        *ret = json_object_new_uint64(v.t);
                        return r;
                case 'u':
                        r = sd_bus_message_read(m, "v", "u", &v.u);
                        *ret = json_object_new_int64(v.u);
                        return r;
                case 'b':
                        r = sd_bus_message_read(m, "v", "b", &v.b);
                        *ret = json_object_new_boolean(v.b);
                        return r;
                case 'd':
                        r = sd_bus_message_read(m, "v", "d", &v.d);
                        *ret = json_object_new_double(v.d);
                        return r;
                }
        }
        if (strcmp(contents, "as") == 0 || strcmp(contents, "a(sst)") == 0) {
                json_object *arr = json_object_new_array();
                *ret = arr;
                if ((r = sd_bus_message_enter_container(m, 'v', contents)) < 0 ||
                    (r = sd_bus_message_enter_container(m, 'a', contents + 1)) < 0)
                        return r;
                for (;;) {
                        if (contents[1] == 's') {
                                const char *s;
                                if ((r = sd_bus_message_read(m, "s", &s)) <= 0)
                                        break;
                                json_object_array_add(arr, json_object_new_string(s));
                        } else {
                                const char *role, *path;
                                uint64_t bytes;
                                if ((r = sd_bus_message_read(m, "(sst)", &role, &path, &bytes)) <= 0)
                                        break;
                                json_object *d = json_object_new_object();
                                json_object_object_add(d, "role", json_object_new_string(role));
                                json_object_object_add(d, "path", json_object_new_string(path));
                                json_object_object_add(d, "allocated", json_object_new_uint64(bytes));
                                json_object_array_add(arr, d);
                        }
                }
                if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                        return r;
                return sd_bus_message_exit_container(m);
        }
        /* an array of structs of strings (fstab's a(ssss), findings' a(sss)): arrays of strings */
        size_t cl = strlen(contents);
        if (cl > 4 && strncmp(contents, "a(", 2) == 0 && contents[cl - 1] == ')' && strspn(contents + 2, "s") == cl - 3) {
                json_object *arr = json_object_new_array();
                *ret = arr;
                if ((r = sd_bus_message_enter_container(m, 'v', contents)) < 0 ||
                    (r = sd_bus_message_enter_container(m, 'a', contents + 1)) < 0)
                        return r;
                char inner[16];
                snprintf(inner, sizeof(inner), "%.*s", (int)(cl - 3), contents + 2);
                while ((r = sd_bus_message_enter_container(m, 'r', inner)) > 0) {
                        json_object *row = json_object_new_array();
                        const char *v;
                        for (size_t i = 0; i < cl - 3 && (r = sd_bus_message_read(m, "s", &v)) > 0; i++)
                                json_object_array_add(row, json_object_new_string(v));
                        json_object_array_add(arr, row);
                        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                                return r;
                }
                if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                        return r;
                return sd_bus_message_exit_container(m);
        }
        *ret = json_object_new_null();
        return sd_bus_message_skip(m, "v");
}

int ctl_read_dict(sd_bus_message *reply, json_object **ret) {
        json_object *o = json_object_new_object();
        int r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *key, *contents;
                json_object *v = NULL;
                if ((r = sd_bus_message_read(reply, "s", &key)) < 0 || (r = sd_bus_message_peek_type(reply, NULL, &contents)) < 0 ||
                    (r = read_variant(reply, contents, &v)) < 0) {
                        json_object_put(v);
                        break;
                }
                json_object_object_add(o, key, v);
                r = sd_bus_message_exit_container(reply);
        }
        if (r < 0) {
                json_object_put(o);
                return r;
        }
        *ret = o;
        return 0;
}

const char *ctl_json_str(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

uint64_t ctl_json_u64(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_uint64(v) : 0;
}

static int on_machine_signal(sd_bus_message *m, void *ud, sd_bus_error *err) {
        (void)err;
        struct ctl_machine_watch *w = ud;
        const char *member = sd_bus_message_get_member(m), *name, *a, *b;
        if (member && strcmp(member, "MachineStateChanged") == 0 && sd_bus_message_read(m, "ss", &name, &a) >= 0 &&
            strcmp(name, w->name) == 0) {
                snprintf(w->state, sizeof(w->state), "%s", a);
                w->changed = true;
        } else if (member && strcmp(member, "MachineRemoved") == 0 && sd_bus_message_read(m, "sss", &name, &a, &b) >= 0 &&
                   strcmp(name, w->name) == 0) {
                snprintf(w->state, sizeof(w->state), "removed");
                snprintf(w->reason, sizeof(w->reason), "%s", a);
                w->changed = w->removed = true;
        }
        return 0;
}

int ctl_watch_machine(sd_bus *bus, struct ctl_machine_watch *w) {
        int r = sd_bus_match_signal(bus, NULL, BUS_NAME, OBJ, MGR, "MachineStateChanged", on_machine_signal, w);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, BUS_NAME, OBJ, MGR, "MachineRemoved", on_machine_signal, w);
        return r < 0 ? ctl_error(NULL, "cannot subscribe to the machine signals: %s", strerror(-r)) : 0;
}

bool ctl_machine_stopped(const char *state) {
        return !strcmp(state, "shut-off") || !strcmp(state, "crashed") || !strcmp(state, "undefined") || !strcmp(state, "removed");
}

int ctl_open_console(sd_bus *bus, const char *name, bool report) {
        sd_bus_message *reply = NULL;
        int r = report ? ctl_call(bus, "OpenConsole", &reply, "s", name)
                       : sd_bus_call_method(bus, BUS_NAME, OBJ, MGR, "OpenConsole", NULL, &reply, "s", name);
        if (r < 0)
                return report ? r : -1;
        int fd = -1;
        r = sd_bus_message_read(reply, "h", &fd);
        int own = r >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
        if (own < 0 && r >= 0)
                r = -errno;
        sd_bus_message_unref(reply);
        if (own < 0)
                return report ? -ctl_bad_reply(r) : -1;
        return own;
}
