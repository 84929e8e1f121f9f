/* hvwgctl: the operators' client of hvwgd, and the example client for batch-system authors.
 * Exit codes: 0 success, 1 the operation failed, 2 usage error, 3 canceled, 4 daemon not
 * reachable or access denied. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "names.h"
#include "util.h"

#define BUS_NAME HV_BUS_NAME
#define OBJ HV_OBJ_PATH
#define MGR HV_MANAGER_IFACE
#define JOB_IFACE HV_JOB_IFACE

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_CANCELED = 3, EXIT_UNREACHABLE = 4 };

static struct {
        const char *address;
        bool json, quiet, no_wait, verbose, bytes;
        const char *sha512, *size, *max_size;
        bool replace, raw;
        const char *cores, *memory, *scratch, *scratch_fs, *hypervisor, *network;
        bool no_start, keep_disks;
} arg;

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
        (void)sig;
        interrupted = 1;
}

static int bus_exit_code(const sd_bus_error *e, int r) {
        if (e && e->name &&
            (strcmp(e->name, SD_BUS_ERROR_ACCESS_DENIED) == 0 || strcmp(e->name, SD_BUS_ERROR_SERVICE_UNKNOWN) == 0 ||
             strcmp(e->name, SD_BUS_ERROR_NAME_HAS_NO_OWNER) == 0 || strcmp(e->name, SD_BUS_ERROR_NO_REPLY) == 0 ||
             strcmp(e->name, SD_BUS_ERROR_DISCONNECTED) == 0))
                return EXIT_UNREACHABLE;
        if (r == -EACCES || r == -EPERM || r == -ECONNREFUSED || r == -ENOENT || r == -EHOSTDOWN)
                return EXIT_UNREACHABLE;
        return EXIT_FAILED;
}

static int fail_bus(const char *what, const sd_bus_error *e, int r) {
        if (e && sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                fprintf(stderr, "hvwgctl: hvwgd is not running (nobody owns %s on this bus)\n", BUS_NAME);
                if (arg.verbose)
                        fprintf(stderr, "hvwgctl: (%s: %s)\n", e->name, e->message ? e->message : "");
        } else if (e && sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED) && e->message && strstr(e->message, "Rejected send message")) {
                /* the bus policy said no, before hvwgd saw the call */
                fprintf(stderr, "hvwgctl: access denied: %s is allowed only to root and members of the group hvwg\n", what);
                if (arg.verbose)
                        fprintf(stderr, "hvwgctl: (%s: %s)\n", e->name, e->message);
        } else if (e && sd_bus_error_is_set(e)) {
                fprintf(stderr, "hvwgctl: %s\n", e->message ? e->message : e->name);
                if (arg.verbose)
                        fprintf(stderr, "hvwgctl: (%s)\n", e->name);
        } else
                fprintf(stderr, "hvwgctl: %s: %s\n", what, strerror(-r));
        return bus_exit_code(e, r);
}

/* Calls a Manager method: 0, or on failure prints the error and returns its exit code negated. */
static int call_manager(sd_bus *bus, const char *method, sd_bus_message **reply, const char *types, ...) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        va_list ap;
        va_start(ap, types);
        int r = sd_bus_call_methodv(bus, BUS_NAME, OBJ, MGR, method, &e, reply, types, ap);
        va_end(ap);
        if (r < 0) {
                r = -fail_bus(method, &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        return 0;
}

static int connect_bus(sd_bus **ret) {
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
                fprintf(stderr, "hvwgctl: cannot connect to the bus %s: %s\n", arg.address ? arg.address : "(system)", strerror(-r));
                sd_bus_unref(bus);
                return -EXIT_UNREACHABLE;
        }
        *ret = bus;
        return 0;
}

static void print_json(json_object *o) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
}

static const char *size_str(uint64_t v, char *buf, size_t len) {
        if (arg.bytes) {
                snprintf(buf, len, "%llu", (unsigned long long)v);
                return buf;
        }
        return hv_format_size(v, buf, len);
}

static const char *time_str(uint64_t usec, char *buf, size_t len) {
        time_t t = (time_t)(usec / 1000000ULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
        return buf;
}

/* ---- status ---- */

static int cmd_status(sd_bus *bus) {
        static const char *const sprops[] = { "Version", "ImageRoot", "MachineRoot", "LibvirtURI", "Hypervisor" };
        static const char *const tprops[] = { "ScratchPerCoreGiB", "MemoryPerCoreMiB", "MaxImageSize" };
        sd_bus_error e = SD_BUS_ERROR_NULL;
        json_object *o = json_object_new_object();
        int r;
        for (size_t i = 0; i < ELEMENTSOF(sprops); i++) {
                char *v = NULL;
                r = sd_bus_get_property_string(bus, BUS_NAME, OBJ, MGR, sprops[i], &e, &v);
                if (r < 0) {
                        json_object_put(o);
                        r = fail_bus("reading properties", &e, r);
                        sd_bus_error_free(&e);
                        return r;
                }
                json_object_object_add(o, sprops[i], json_object_new_string(v));
                free(v);
        }
        for (size_t i = 0; i < ELEMENTSOF(tprops); i++) {
                uint64_t v;
                r = sd_bus_get_property_trivial(bus, BUS_NAME, OBJ, MGR, tprops[i], &e, 't', &v);
                if (r < 0) {
                        json_object_put(o);
                        r = fail_bus("reading properties", &e, r);
                        sd_bus_error_free(&e);
                        return r;
                }
                json_object_object_add(o, tprops[i], json_object_new_uint64(v));
        }
        uint32_t active;
        r = sd_bus_get_property_trivial(bus, BUS_NAME, OBJ, MGR, "ActiveJobs", &e, 'u', &active);
        if (r < 0) {
                json_object_put(o);
                r = fail_bus("reading properties", &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        json_object_object_add(o, "ActiveJobs", json_object_new_int64(active));
        if (arg.json) {
                print_json(o);
                return EXIT_OK;
        }
        json_object_object_foreach(o, key, val) {
                if (json_object_get_type(val) == json_type_string)
                        printf("%-18s %s\n", key, json_object_get_string(val));
                else if (strcmp(key, "MaxImageSize") == 0) {
                        char b[32];
                        printf("%-18s %s\n", key, size_str(json_object_get_uint64(val), b, sizeof(b)));
                } else
                        printf("%-18s %llu\n", key, (unsigned long long)json_object_get_uint64(val));
        }
        json_object_put(o);
        return EXIT_OK;
}

/* ---- images ---- */

static int cmd_images(sd_bus *bus) {
        sd_bus_message *reply = NULL;
        int r = call_manager(bus, "ListImages", &reply, "");
        if (r < 0)
                return -r;
        json_object *arr = json_object_new_array();
        r = sd_bus_message_enter_container(reply, 'a', "(sttts)");
        const char *name, *source;
        uint64_t size, alloc, created;
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sttts)", &name, &size, &alloc, &created, &source)) > 0) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "size", json_object_new_uint64(size));
                json_object_object_add(o, "allocated", json_object_new_uint64(alloc));
                json_object_object_add(o, "created_usec", json_object_new_uint64(created));
                json_object_object_add(o, "source", json_object_new_string(source));
                json_object_array_add(arr, o);
        }
        sd_bus_message_unref(reply);
        if (r < 0) {
                json_object_put(arr);
                fprintf(stderr, "hvwgctl: bad reply from hvwgd: %s\n", strerror(-r));
                return EXIT_FAILED;
        }
        if (arg.json) {
                print_json(arr);
                return EXIT_OK;
        }
        if (!arg.quiet)
                printf("%-24s %12s %12s %-19s %s\n", "NAME", "SIZE", "ALLOCATED", "CREATED", "SOURCE");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *o = json_object_array_get_idx(arr, i), *v;
                char a[32], b[32], c[32];
                json_object_object_get_ex(o, "name", &v);
                const char *n = json_object_get_string(v);
                json_object_object_get_ex(o, "size", &v);
                uint64_t s = json_object_get_uint64(v);
                json_object_object_get_ex(o, "allocated", &v);
                uint64_t al = json_object_get_uint64(v);
                json_object_object_get_ex(o, "created_usec", &v);
                uint64_t cr = json_object_get_uint64(v);
                json_object_object_get_ex(o, "source", &v);
                printf("%-24s %12s %12s %-19s %s\n", n, size_str(s, a, sizeof(a)), size_str(al, b, sizeof(b)), time_str(cr, c, sizeof(c)),
                       json_object_get_string(v));
        }
        json_object_put(arr);
        return EXIT_OK;
}

static int cmd_inspect(sd_bus *bus, const char *name) {
        sd_bus_message *reply = NULL;
        int r = call_manager(bus, "InspectImage", &reply, "s", name);
        if (r < 0)
                return -r;
        const char *table;
        uint64_t size;
        json_object *o = json_object_new_object(), *arr = json_object_new_array();
        r = sd_bus_message_read(reply, "st", &table, &size);
        if (r >= 0) {
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "table", json_object_new_string(table));
                json_object_object_add(o, "size", json_object_new_uint64(size));
                r = sd_bus_message_enter_container(reply, 'a', "(uybtts)");
        }
        uint32_t num;
        uint8_t type;
        int boot;
        uint64_t off, psize;
        const char *fs;
        while (r >= 0 && (r = sd_bus_message_read(reply, "(uybtts)", &num, &type, &boot, &off, &psize, &fs)) > 0) {
                json_object *p = json_object_new_object();
                json_object_object_add(p, "number", json_object_new_int64(num));
                json_object_object_add(p, "type", json_object_new_int64(type));
                json_object_object_add(p, "bootable", json_object_new_boolean(boot));
                json_object_object_add(p, "offset", json_object_new_uint64(off));
                json_object_object_add(p, "size", json_object_new_uint64(psize));
                json_object_object_add(p, "filesystem", json_object_new_string(fs));
                json_object_array_add(arr, p);
        }
        json_object_object_add(o, "partitions", arr);
        sd_bus_message_unref(reply);
        if (r < 0) {
                json_object_put(o);
                fprintf(stderr, "hvwgctl: bad reply from hvwgd: %s\n", strerror(-r));
                return EXIT_FAILED;
        }
        if (arg.json) {
                print_json(o);
                return EXIT_OK;
        }
        char b[32];
        json_object *tv;
        json_object_object_get_ex(o, "table", &tv); /* the reply (and its strings) is gone by now */
        printf("Image %s: %s table, %s\n", name, json_object_get_string(tv), size_str(size, b, sizeof(b)));
        printf("%-4s %-6s %-4s %14s %14s %s\n", "NR", "TYPE", "BOOT", "OFFSET", "SIZE", "FILESYSTEM");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *p = json_object_array_get_idx(arr, i), *v;
                char s1[32], s2[32];
                json_object_object_get_ex(p, "number", &v);
                int n = json_object_get_int(v);
                json_object_object_get_ex(p, "type", &v);
                int t = json_object_get_int(v);
                json_object_object_get_ex(p, "bootable", &v);
                int bt = json_object_get_boolean(v);
                json_object_object_get_ex(p, "offset", &v);
                uint64_t of = json_object_get_uint64(v);
                json_object_object_get_ex(p, "size", &v);
                uint64_t sz = json_object_get_uint64(v);
                json_object_object_get_ex(p, "filesystem", &v);
                printf("%-4d 0x%02x   %-4s %14s %14s %s\n", n, t, bt ? "*" : "", size_str(of, s1, sizeof(s1)), size_str(sz, s2, sizeof(s2)),
                       json_object_get_string(v));
        }
        json_object_put(o);
        return EXIT_OK;
}


static int cmd_jobs(sd_bus *bus) {
        sd_bus_message *reply = NULL;
        int r = call_manager(bus, "ListJobs", &reply, "");
        if (r < 0)
                return -r;
        json_object *arr = json_object_new_array();
        r = sd_bus_message_enter_container(reply, 'a', "(usssdo)");
        if (r >= 0 && !arg.json && !arg.quiet)
                printf("%-6s %-7s %-24s %-10s %6s  %s\n", "ID", "TYPE", "TARGET", "PHASE", "DONE", "PATH");
        uint32_t id;
        const char *type, *target, *phase, *path;
        double progress;
        while (r >= 0 && (r = sd_bus_message_read(reply, "(usssdo)", &id, &type, &target, &phase, &progress, &path)) > 0) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "id", json_object_new_int64(id));
                json_object_object_add(o, "type", json_object_new_string(type));
                json_object_object_add(o, "target", json_object_new_string(target));
                json_object_object_add(o, "phase", json_object_new_string(phase));
                json_object_object_add(o, "progress", json_object_new_double(progress));
                json_object_object_add(o, "path", json_object_new_string(path));
                json_object_array_add(arr, o);
                if (!arg.json)
                        printf("%-6u %-7s %-24s %-10s %5.1f%%  %s\n", id, type, target, phase, progress * 100.0, path);
        }
        sd_bus_message_unref(reply);
        if (arg.json)
                print_json(arr);
        else
                json_object_put(arr);
        return r < 0 ? EXIT_FAILED : EXIT_OK;
}

/* ---- fetch, with waiting ---- */

struct wait_state {
        uint32_t id;
        char path[128];
        bool done;
        char result[16];
        char *error_name, *error_message;
        char last_phase[32];
        bool tty;
        uint64_t last_draw, start;
};

static int on_job_removed(sd_bus_message *m, void *ud, sd_bus_error *err) {
        (void)err;
        struct wait_state *w = ud;
        uint32_t id;
        const char *path, *result, *en, *em;
        if (sd_bus_message_read(m, "uosss", &id, &path, &result, &en, &em) < 0 || id != w->id)
                return 0;
        w->done = true;
        snprintf(w->result, sizeof(w->result), "%s", result);
        w->error_name = strdup(en);
        w->error_message = strdup(em);
        return 0;
}

static void draw_progress(struct wait_state *w, const char *phase, uint64_t done, uint64_t total, bool force) {
        uint64_t now = hv_mono_usec();
        if (arg.quiet || arg.json)
                return;
        if (!w->tty) {
                if (strcmp(phase, w->last_phase) != 0) {
                        printf("job %u: %s\n", w->id, phase);
                        fflush(stdout);
                }
        } else if (force || now - w->last_draw >= 100000) {
                char a[32], b[32], c[32];
                double secs = (double)(now - w->start) / 1e6;
                double rate = secs > 0 ? (double)done / secs : 0;
                int pct = total ? (int)(100.0 * (double)done / (double)total) : 0;
                char eta[32] = "";
                if (total && rate > 0 && done <= total)
                        snprintf(eta, sizeof(eta), " ETA %.0fs", (double)(total - done) / rate);
                printf("\r\033[K%-10s %3d%% %s/%s %s/s%s", phase, pct, hv_format_size(done, a, sizeof(a)),
                       total ? hv_format_size(total, b, sizeof(b)) : "?", hv_format_size((uint64_t)rate, c, sizeof(c)), eta);
                fflush(stdout);
                w->last_draw = now;
        }
        snprintf(w->last_phase, sizeof(w->last_phase), "%s", phase);
}

static uint64_t cur_done, cur_total;
static char cur_phase[32] = "queued";

/* PropertiesChanged of any job object: we subscribed before the job existed; only ours counts. */
static int on_job_props(sd_bus_message *m, void *ud, sd_bus_error *err) {
        (void)err;
        struct wait_state *w = ud;
        const char *iface;
        if (!w->path[0] || strcmp(sd_bus_message_get_path(m), w->path) != 0 || sd_bus_message_read(m, "s", &iface) < 0)
                return 0;
        if (sd_bus_message_enter_container(m, 'a', "{sv}") <= 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                const char *name, *contents;
                if (sd_bus_message_read(m, "s", &name) < 0 || sd_bus_message_peek_type(m, NULL, &contents) < 0)
                        return 0;
                if (strcmp(name, "Phase") == 0 && strcmp(contents, "s") == 0) {
                        const char *ph;
                        if (sd_bus_message_read(m, "v", "s", &ph) >= 0)
                                snprintf(cur_phase, sizeof(cur_phase), "%s", ph);
                } else if (strcmp(name, "BytesDone") == 0 && strcmp(contents, "t") == 0)
                        sd_bus_message_read(m, "v", "t", &cur_done);
                else if (strcmp(name, "BytesTotal") == 0 && strcmp(contents, "t") == 0)
                        sd_bus_message_read(m, "v", "t", &cur_total);
                else
                        sd_bus_message_skip(m, "v");
                sd_bus_message_exit_container(m);
        }
        draw_progress(w, cur_phase, cur_done, cur_total, false);
        return 0;
}

/* The state before any signal: the job may be queued and quiet for a while. */
static void read_job_state(sd_bus *bus, struct wait_state *w) {
        char *phase = NULL;
        if (sd_bus_get_property_string(bus, BUS_NAME, w->path, JOB_IFACE, "Phase", NULL, &phase) < 0)
                return; /* already gone: JobRemoved is on its way */
        snprintf(cur_phase, sizeof(cur_phase), "%s", phase);
        free(phase);
        sd_bus_get_property_trivial(bus, BUS_NAME, w->path, JOB_IFACE, "BytesDone", NULL, 't', &cur_done);
        sd_bus_get_property_trivial(bus, BUS_NAME, w->path, JOB_IFACE, "BytesTotal", NULL, 't', &cur_total);
        draw_progress(w, cur_phase, cur_done, cur_total, true);
}

static int wait_job(sd_bus *bus, struct wait_state *w) {
        bool canceled = false;
        w->start = hv_mono_usec();
        read_job_state(bus, w);
        while (!w->done) {
                if (interrupted && !canceled) {
                        canceled = true;
                        if (!arg.quiet)
                                fprintf(stderr, "\nhvwgctl: interrupted, canceling job %u\n", w->id);
                        sd_bus_call_method(bus, BUS_NAME, OBJ, MGR, "CancelJob", NULL, NULL, "u", w->id);
                }
                int r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        fprintf(stderr, "hvwgctl: lost the connection to hvwgd: %s\n", strerror(-r));
                        return EXIT_UNREACHABLE;
                }
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, 200000);
                if (r < 0 && r != -EINTR) {
                        fprintf(stderr, "hvwgctl: lost the connection to hvwgd: %s\n", strerror(-r));
                        return EXIT_UNREACHABLE;
                }
        }
        if (w->tty && !arg.quiet && !arg.json && strcmp(w->result, "done") == 0)
                draw_progress(w, "done", cur_total ? cur_total : cur_done, cur_total, true);
        if (w->tty && !arg.quiet && !arg.json)
                printf("\n");
        if (arg.json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "id", json_object_new_int64(w->id));
                json_object_object_add(o, "path", json_object_new_string(w->path));
                json_object_object_add(o, "result", json_object_new_string(w->result));
                json_object_object_add(o, "error_name", json_object_new_string(w->error_name ? w->error_name : ""));
                json_object_object_add(o, "error_message", json_object_new_string(w->error_message ? w->error_message : ""));
                print_json(o);
        }
        int code = EXIT_OK;
        if (strcmp(w->result, "done") == 0) {
                if (!arg.quiet && !arg.json)
                        printf("job %u: done\n", w->id);
        } else if (strcmp(w->result, "canceled") == 0) {
                if (!arg.json)
                        fprintf(stderr, "hvwgctl: job %u canceled\n", w->id);
                code = EXIT_CANCELED;
        } else {
                if (!arg.json) {
                        fprintf(stderr, "hvwgctl: %s\n", w->error_message && *w->error_message ? w->error_message : "job failed");
                        if (arg.verbose)
                                fprintf(stderr, "hvwgctl: (%s)\n", w->error_name);
                }
                code = EXIT_FAILED;
        }
        free(w->error_name);
        free(w->error_message);
        return code;
}

/* Calls a job-starting method (FetchImage, CreateMachine) built in m, then waits for the job
 * or prints its id. The matches are in place before the call: the end cannot be missed. */
static int run_job(sd_bus *bus, sd_bus_message *m, const char *method) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        struct wait_state w = { .tty = isatty(STDOUT_FILENO) };
        int r = sd_bus_match_signal(bus, NULL, BUS_NAME, OBJ, MGR, "JobRemoved", on_job_removed, &w);
        if (r >= 0)
                r = sd_bus_add_match(bus, NULL,
                                     "type='signal',sender='" BUS_NAME "',interface='org.freedesktop.DBus.Properties',"
                                     "member='PropertiesChanged',path_namespace='/org/hepix/hvwg1/job'",
                                     on_job_props, &w);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &e, &reply);
        if (r < 0) {
                r = fail_bus(method, &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        const char *path;
        r = sd_bus_message_read(reply, "uo", &w.id, &path);
        if (r >= 0)
                snprintf(w.path, sizeof(w.path), "%s", path);
        sd_bus_message_unref(reply);
        if (r < 0) {
                fprintf(stderr, "hvwgctl: bad reply from hvwgd: %s\n", strerror(-r));
                return EXIT_FAILED;
        }
        if (arg.no_wait) {
                if (arg.json) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "id", json_object_new_int64(w.id));
                        json_object_object_add(o, "path", json_object_new_string(w.path));
                        print_json(o);
                } else
                        printf("%u %s\n", w.id, w.path);
                return EXIT_OK;
        }
        return wait_job(bus, &w);
}

static int new_call(sd_bus *bus, sd_bus_message **m, const char *method) {
        int r = sd_bus_message_new_method_call(bus, m, BUS_NAME, OBJ, MGR, method);
        if (r < 0)
                fprintf(stderr, "hvwgctl: cannot build the %s call: %s\n", method, strerror(-r));
        return r;
}

static int cmd_fetch(sd_bus *bus, const char *uri, const char *name) {
        uint64_t size = 0, max_size = 0;
        if (arg.size && hv_parse_size(arg.size, &size) < 0) {
                fprintf(stderr, "hvwgctl: invalid --size %s\n", arg.size);
                return EXIT_USAGE;
        }
        if (arg.max_size && (hv_parse_size(arg.max_size, &max_size) < 0 || max_size == 0)) {
                fprintf(stderr, "hvwgctl: invalid --max-size %s (e.g. 20G)\n", arg.max_size);
                return EXIT_USAGE;
        }
        sd_bus_message *m = NULL;
        int r = new_call(bus, &m, "FetchImage");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", uri, name ? name : "");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg.sha512)
                r = sd_bus_message_append(m, "{sv}", "sha512", "s", arg.sha512);
        if (r >= 0 && arg.size)
                r = sd_bus_message_append(m, "{sv}", "size", "t", size);
        if (r >= 0 && arg.max_size)
                r = sd_bus_message_append(m, "{sv}", "max_size", "t", max_size);
        if (r >= 0 && arg.replace)
                r = sd_bus_message_append(m, "{sv}", "replace", "b", 1);
        if (r >= 0 && arg.raw)
                r = sd_bus_message_append(m, "{sv}", "compression", "s", "none");
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0) {
                sd_bus_message_unref(m);
                return EXIT_FAILED;
        }
        r = run_job(bus, m, "FetchImage");
        sd_bus_message_unref(m);
        return r;
}

static int cmd_create(sd_bus *bus, const char *image, const char *name) {
        unsigned cores;
        uint64_t memory = 0, scratch = 0;
        if (!arg.cores) {
                fprintf(stderr, "hvwgctl: create needs --cores=N\n");
                return EXIT_USAGE;
        }
        if (hv_parse_uint(arg.cores, 1, 4096, &cores) < 0) {
                fprintf(stderr, "hvwgctl: invalid --cores %s (1-4096)\n", arg.cores);
                return EXIT_USAGE;
        }
        if (arg.memory && (hv_parse_size(arg.memory, &memory) < 0 || memory < (1ULL << 20) || memory % (1ULL << 20))) {
                fprintf(stderr, "hvwgctl: invalid --memory %s (whole MiB, e.g. 4G or 1536M)\n", arg.memory);
                return EXIT_USAGE;
        }
        if (arg.scratch && (hv_parse_size(arg.scratch, &scratch) < 0 || scratch % (1ULL << 30))) {
                fprintf(stderr, "hvwgctl: invalid --scratch %s (whole GiB, e.g. 40G; 0 for none)\n", arg.scratch);
                return EXIT_USAGE;
        }
        sd_bus_message *m = NULL;
        int r = new_call(bus, &m, "CreateMachine");
        if (r >= 0)
                r = sd_bus_message_append(m, "ssu", image, name, (uint32_t)cores);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg.memory)
                r = sd_bus_message_append(m, "{sv}", "memory_mib", "t", memory >> 20);
        if (r >= 0 && arg.scratch)
                r = sd_bus_message_append(m, "{sv}", "scratch_gib", "t", scratch >> 30);
        if (r >= 0 && arg.scratch_fs)
                r = sd_bus_message_append(m, "{sv}", "scratch_fs", "s", arg.scratch_fs);
        if (r >= 0 && arg.hypervisor)
                r = sd_bus_message_append(m, "{sv}", "hypervisor", "s", arg.hypervisor);
        if (r >= 0 && arg.network)
                r = sd_bus_message_append(m, "{sv}", "network", "s", arg.network);
        if (r >= 0 && arg.no_start)
                r = sd_bus_message_append(m, "{sv}", "start", "b", 0);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0) {
                sd_bus_message_unref(m);
                return EXIT_FAILED;
        }
        r = run_job(bus, m, "CreateMachine");
        sd_bus_message_unref(m);
        return r;
}

static int cmd_machines(sd_bus *bus) {
        sd_bus_message *reply = NULL;
        int r = call_manager(bus, "ListMachines", &reply, "");
        if (r < 0)
                return -r;
        json_object *arr = json_object_new_array();
        r = sd_bus_message_enter_container(reply, 'a', "(ssuttss)");
        const char *name, *uuid, *image, *state;
        uint32_t cores;
        uint64_t mem, scratch;
        if (r >= 0 && !arg.json && !arg.quiet)
                printf("%-24s %-36s %5s %10s %10s %-20s %s\n", "NAME", "UUID", "CORES", "MEMORY", "SCRATCH", "IMAGE", "STATE");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(ssuttss)", &name, &uuid, &cores, &mem, &scratch, &image, &state)) > 0) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "uuid", json_object_new_string(uuid));
                json_object_object_add(o, "cores", json_object_new_int64(cores));
                json_object_object_add(o, "memory_mib", json_object_new_uint64(mem));
                json_object_object_add(o, "scratch_bytes", json_object_new_uint64(scratch));
                json_object_object_add(o, "image", json_object_new_string(image));
                json_object_object_add(o, "state", json_object_new_string(state));
                json_object_array_add(arr, o);
                if (!arg.json) {
                        char a[32], b[32];
                        printf("%-24s %-36s %5u %10s %10s %-20s %s\n", name, uuid, cores, size_str(mem << 20, a, sizeof(a)),
                               size_str(scratch, b, sizeof(b)), image, state);
                }
        }
        sd_bus_message_unref(reply);
        if (arg.json)
                print_json(arr);
        else
                json_object_put(arr);
        if (r < 0) {
                fprintf(stderr, "hvwgctl: bad reply from hvwgd: %s\n", strerror(-r));
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

static int cmd_destroy(sd_bus *bus, const char *name) {
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = new_call(bus, &m, "DestroyMachine");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", name);
        if (r >= 0)
                r = arg.keep_disks ? sd_bus_message_append(m, "a{sv}", 1, "keep_disks", "b", 1) : sd_bus_message_append(m, "a{sv}", 0);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &e, &reply);
        sd_bus_message_unref(m);
        sd_bus_message_unref(reply);
        if (r < 0) {
                r = fail_bus("DestroyMachine", &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        return EXIT_OK;
}

/* ---- watch: a live view of the jobs until interrupted ---- */

static bool watch_dirty;

static int on_watch_signal(sd_bus_message *m, void *ud, sd_bus_error *err) {
        (void)ud;
        (void)err;
        watch_dirty = true;
        if (!isatty(STDOUT_FILENO) && !arg.json) {
                const char *member = sd_bus_message_get_member(m);
                if (strcmp(member, "JobNew") == 0) {
                        uint32_t id;
                        const char *path;
                        if (sd_bus_message_read(m, "uo", &id, &path) >= 0)
                                printf("job %u: new (%s)\n", id, path);
                } else if (strcmp(member, "JobRemoved") == 0) {
                        uint32_t id;
                        const char *path, *result, *en, *em;
                        if (sd_bus_message_read(m, "uosss", &id, &path, &result, &en, &em) >= 0)
                                printf("job %u: %s%s%s\n", id, result, *em ? ": " : "", em);
                }
                fflush(stdout);
        }
        return 0;
}

static int cmd_watch(sd_bus *bus) {
        int r = sd_bus_match_signal(bus, NULL, BUS_NAME, OBJ, MGR, "JobNew", on_watch_signal, NULL);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, BUS_NAME, OBJ, MGR, "JobRemoved", on_watch_signal, NULL);
        if (r >= 0)
                r = sd_bus_add_match(bus, NULL,
                                     "type='signal',sender='" BUS_NAME "',interface='org.freedesktop.DBus.Properties',"
                                     "member='PropertiesChanged',path_namespace='/org/hepix/hvwg1/job'",
                                     on_watch_signal, NULL);
        if (r < 0) {
                fprintf(stderr, "hvwgctl: cannot subscribe to job signals: %s\n", strerror(-r));
                return EXIT_UNREACHABLE;
        }
        bool tty = isatty(STDOUT_FILENO) && !arg.json;
        uint64_t last = 0;
        watch_dirty = true;
        while (!interrupted) {
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        fprintf(stderr, "hvwgctl: lost the connection to hvwgd: %s\n", strerror(-r));
                        return EXIT_UNREACHABLE;
                }
                if (r > 0)
                        continue;
                if (tty && watch_dirty && hv_mono_usec() - last >= 100000) {
                        watch_dirty = false;
                        last = hv_mono_usec();
                        printf("\033[H\033[2J");
                        r = cmd_jobs(bus);
                        if (r != EXIT_OK)
                                return r;
                        printf("(watching; Ctrl-C to stop)\n");
                        fflush(stdout);
                }
                sd_bus_wait(bus, 100000);
        }
        return EXIT_OK;
}

static void usage(FILE *f) {
        fprintf(f, "Usage: hvwgctl [OPTIONS] COMMAND ...\n\n"
                   "Commands:\n"
                   "  status                      daemon properties\n"
                   "  fetch URI [NAME]            import an image (waits; Ctrl-C cancels)\n"
                   "        [--sha512=HEX] [--size=BYTES] [--max-size=SIZE] [--replace] [--raw]\n"
                   "  images                      list images\n"
                   "  inspect NAME                partition table of an image\n"
                   "  rm NAME                     remove an image\n"
                   "  create IMAGE NAME --cores=N create a machine (waits; Ctrl-C cancels)\n"
                   "        [--memory=SIZE] [--scratch=SIZE] [--scratch-fs=FS] [--hypervisor=H]\n"
                   "        [--network=NET] [--no-start]\n"
                   "  machines                    list machines\n"
                   "  destroy NAME [--keep-disks] stop, undefine and delete a machine\n"
                   "  jobs                        list jobs\n"
                   "  cancel ID                   cancel a job\n"
                   "  watch                       live view of the jobs until interrupted\n\n"
                   "Options:\n"
                   "  --system                    the system bus (default)\n"
                   "  --bus-address=ADDR          another bus\n"
                   "  --json                      machine-readable output (see hvwgctl(1))\n"
                   "  --bytes                     exact sizes in tables\n"
                   "  -q, --quiet                 less output\n"
                   "  --no-wait                   print the job id and path instead of waiting\n"
                   "  --verbose                   D-Bus error names too\n"
                   "  -h, --help, --version\n\n"
                   "Exit codes: 0 ok, 1 failed, 2 usage, 3 canceled, 4 daemon unreachable or access denied.\n");
}

int main(int argc, char **argv) {
        enum { O_SYSTEM = 256, O_ADDR, O_JSON, O_QUIET, O_NOWAIT, O_VERBOSE, O_VERSION, O_SHA, O_SIZE, O_MAXSIZE, O_REPLACE, O_RAW, O_BYTES,
               O_CORES, O_MEMORY, O_SCRATCH, O_SCRATCHFS, O_HYPERVISOR, O_NETWORK, O_NOSTART, O_KEEPDISKS };
        static const struct option opts[] = {
                { "system", no_argument, NULL, O_SYSTEM },   { "bus-address", required_argument, NULL, O_ADDR },
                { "json", no_argument, NULL, O_JSON },       { "quiet", no_argument, NULL, O_QUIET },
                { "no-wait", no_argument, NULL, O_NOWAIT },  { "verbose", no_argument, NULL, O_VERBOSE },
                { "version", no_argument, NULL, O_VERSION }, { "help", no_argument, NULL, 'h' },
                { "sha512", required_argument, NULL, O_SHA }, { "size", required_argument, NULL, O_SIZE },
                { "max-size", required_argument, NULL, O_MAXSIZE }, { "replace", no_argument, NULL, O_REPLACE },
                { "raw", no_argument, NULL, O_RAW },         { "bytes", no_argument, NULL, O_BYTES },
                { "cores", required_argument, NULL, O_CORES }, { "memory", required_argument, NULL, O_MEMORY },
                { "scratch", required_argument, NULL, O_SCRATCH }, { "scratch-fs", required_argument, NULL, O_SCRATCHFS },
                { "hypervisor", required_argument, NULL, O_HYPERVISOR }, { "network", required_argument, NULL, O_NETWORK },
                { "no-start", no_argument, NULL, O_NOSTART }, { "keep-disks", no_argument, NULL, O_KEEPDISKS },
                {}
        };
        int c;
        while ((c = getopt_long(argc, argv, "hq", opts, NULL)) >= 0) {
                switch (c) {
                case O_SYSTEM: arg.address = NULL; break;
                case O_ADDR: arg.address = optarg; break;
                case O_JSON: arg.json = true; break;
                case 'q':
                case O_QUIET: arg.quiet = true; break;
                case O_NOWAIT: arg.no_wait = true; break;
                case O_VERBOSE: arg.verbose = true; break;
                case O_VERSION: printf("hvwgctl %s\n", HVWGD_VERSION); return EXIT_OK;
                case 'h': usage(stdout); return EXIT_OK;
                case O_SHA: arg.sha512 = optarg; break;
                case O_SIZE: arg.size = optarg; break;
                case O_MAXSIZE: arg.max_size = optarg; break;
                case O_REPLACE: arg.replace = true; break;
                case O_RAW: arg.raw = true; break;
                case O_BYTES: arg.bytes = true; break;
                case O_CORES: arg.cores = optarg; break;
                case O_MEMORY: arg.memory = optarg; break;
                case O_SCRATCH: arg.scratch = optarg; break;
                case O_SCRATCHFS: arg.scratch_fs = optarg; break;
                case O_HYPERVISOR: arg.hypervisor = optarg; break;
                case O_NETWORK: arg.network = optarg; break;
                case O_NOSTART: arg.no_start = true; break;
                case O_KEEPDISKS: arg.keep_disks = true; break;
                default: usage(stderr); return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        const char *cmd = argv[optind];
        int nargs = argc - optind - 1;
        char **args = argv + optind + 1;
        struct { const char *name; int min, max; } cmds[] = {
                { "status", 0, 0 }, { "fetch", 1, 2 }, { "images", 0, 0 }, { "inspect", 1, 1 },
                { "rm", 1, 1 }, { "jobs", 0, 0 }, { "cancel", 1, 1 }, { "create", 2, 2 }, { "machines", 0, 0 },
                { "destroy", 1, 1 }, { "watch", 0, 0 },
        };
        size_t i;
        for (i = 0; i < ELEMENTSOF(cmds); i++)
                if (strcmp(cmd, cmds[i].name) == 0)
                        break;
        if (i == ELEMENTSOF(cmds)) {
                fprintf(stderr, "hvwgctl: unknown command %s (see --help)\n", cmd);
                return EXIT_USAGE;
        }
        if (nargs < cmds[i].min || nargs > cmds[i].max) {
                fprintf(stderr, "hvwgctl: %s takes %d to %d arguments (see --help)\n", cmd, cmds[i].min, cmds[i].max);
                return EXIT_USAGE;
        }
        unsigned job_id = 0;
        if (strcmp(cmd, "cancel") == 0 && hv_parse_uint(args[0], 1, UINT32_MAX, &job_id) < 0) {
                fprintf(stderr, "hvwgctl: invalid job id %s\n", args[0]);
                return EXIT_USAGE;
        }
        struct sigaction sa = { .sa_handler = on_sigint };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sd_bus *bus = NULL;
        int r = connect_bus(&bus);
        if (r < 0)
                return -r;
        if (strcmp(cmd, "status") == 0)
                r = cmd_status(bus);
        else if (strcmp(cmd, "fetch") == 0)
                r = cmd_fetch(bus, args[0], nargs > 1 ? args[1] : NULL);
        else if (strcmp(cmd, "images") == 0)
                r = cmd_images(bus);
        else if (strcmp(cmd, "inspect") == 0)
                r = cmd_inspect(bus, args[0]);
        else if (strcmp(cmd, "rm") == 0)
                r = call_manager(bus, "RemoveImage", NULL, "s", args[0]);
        else if (strcmp(cmd, "jobs") == 0)
                r = cmd_jobs(bus);
        else if (strcmp(cmd, "create") == 0)
                r = cmd_create(bus, args[0], args[1]);
        else if (strcmp(cmd, "machines") == 0)
                r = cmd_machines(bus);
        else if (strcmp(cmd, "destroy") == 0)
                r = cmd_destroy(bus, args[0]);
        else if (strcmp(cmd, "watch") == 0)
                r = cmd_watch(bus);
        else
                r = call_manager(bus, "CancelJob", NULL, "u", (uint32_t)job_id);
        sd_bus_flush_close_unref(bus);
        return r < 0 ? -r : r;
}
