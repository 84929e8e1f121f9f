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

#include "util.h"

#define BUS_NAME "org.hepix.hvwg1"
#define OBJ "/org/hepix/hvwg1"
#define MGR "org.hepix.hvwg1.Manager"
#define JOB_IFACE "org.hepix.hvwg1.Job"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_CANCELED = 3, EXIT_UNREACHABLE = 4 };

static struct {
        const char *address;
        bool json, quiet, no_wait, verbose, bytes;
        const char *sha512, *size, *max_size;
        bool replace, raw;
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
        if (e && sd_bus_error_is_set(e)) {
                fprintf(stderr, "hvwgctl: %s\n", e->message ? e->message : e->name);
                if (arg.verbose)
                        fprintf(stderr, "hvwgctl: (%s)\n", e->name);
        } else
                fprintf(stderr, "hvwgctl: %s: %s\n", what, strerror(-r));
        return bus_exit_code(e, r);
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
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r = sd_bus_call_method(bus, BUS_NAME, OBJ, MGR, "ListImages", &e, &reply, "");
        if (r < 0) {
                r = fail_bus("ListImages", &e, r);
                sd_bus_error_free(&e);
                return r;
        }
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
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r = sd_bus_call_method(bus, BUS_NAME, OBJ, MGR, "InspectImage", &e, &reply, "s", name);
        if (r < 0) {
                r = fail_bus("InspectImage", &e, r);
                sd_bus_error_free(&e);
                return r;
        }
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
        printf("Image %s: %s table, %s\n", name, table, size_str(size, b, sizeof(b)));
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

static int simple_call(sd_bus *bus, const char *method, const char *sig, ...) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        int r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJ, MGR, method);
        if (r >= 0) {
                va_list ap;
                va_start(ap, sig);
                r = sd_bus_message_appendv(m, sig, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &e, &reply);
        sd_bus_message_unref(m);
        sd_bus_message_unref(reply);
        if (r < 0) {
                r = fail_bus(method, &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        return EXIT_OK;
}

static int cmd_jobs(sd_bus *bus) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r = sd_bus_call_method(bus, BUS_NAME, OBJ, MGR, "ListJobs", &e, &reply, "");
        if (r < 0) {
                r = fail_bus("ListJobs", &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        json_object *arr = json_object_new_array();
        r = sd_bus_message_enter_container(reply, 'a', "(usssdo)");
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

static void poll_job(sd_bus *bus, struct wait_state *w) {
        char *phase = NULL;
        uint64_t done = 0, total = 0;
        if (sd_bus_get_property_string(bus, BUS_NAME, w->path, JOB_IFACE, "Phase", NULL, &phase) < 0)
                return;
        sd_bus_get_property_trivial(bus, BUS_NAME, w->path, JOB_IFACE, "BytesDone", NULL, 't', &done);
        sd_bus_get_property_trivial(bus, BUS_NAME, w->path, JOB_IFACE, "BytesTotal", NULL, 't', &total);
        draw_progress(w, phase, done, total, false);
        free(phase);
}

static int wait_job(sd_bus *bus, struct wait_state *w) {
        bool canceled = false;
        w->start = hv_mono_usec();
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
                if (!w->done)
                        poll_job(bus, w);
                r = sd_bus_wait(bus, 200000);
                if (r < 0 && r != -EINTR) {
                        fprintf(stderr, "hvwgctl: lost the connection to hvwgd: %s\n", strerror(-r));
                        return EXIT_UNREACHABLE;
                }
        }
        if (w->tty && !arg.quiet && !arg.json)
                printf("\r\033[K");
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

static int cmd_fetch(sd_bus *bus, const char *uri, const char *name) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        struct wait_state w = { .tty = isatty(STDOUT_FILENO) };
        uint64_t size = 0, max_size = 0;
        if (arg.size && hv_parse_size(arg.size, &size) < 0) {
                fprintf(stderr, "hvwgctl: invalid --size %s\n", arg.size);
                return EXIT_USAGE;
        }
        if (arg.max_size && (hv_parse_size(arg.max_size, &max_size) < 0 || max_size == 0)) {
                fprintf(stderr, "hvwgctl: invalid --max-size %s (e.g. 20G)\n", arg.max_size);
                return EXIT_USAGE;
        }
        /* Subscribe before starting the job so its end cannot be missed. */
        int r = sd_bus_match_signal(bus, NULL, BUS_NAME, OBJ, MGR, "JobRemoved", on_job_removed, &w);
        if (r >= 0)
                r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJ, MGR, "FetchImage");
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
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &e, &reply);
        sd_bus_message_unref(m);
        if (r < 0) {
                r = fail_bus("FetchImage", &e, r);
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

static void usage(FILE *f) {
        fprintf(f, "Usage: hvwgctl [OPTIONS] COMMAND ...\n\n"
                   "Commands:\n"
                   "  status                      daemon properties\n"
                   "  fetch URI [NAME]            import an image (waits; Ctrl-C cancels)\n"
                   "        [--sha512=HEX] [--size=BYTES] [--max-size=SIZE] [--replace] [--raw]\n"
                   "  images                      list images\n"
                   "  inspect NAME                partition table of an image\n"
                   "  rm NAME                     remove an image\n"
                   "  jobs                        list jobs\n"
                   "  cancel ID                   cancel a job\n\n"
                   "Options:\n"
                   "  --system                    the system bus (default)\n"
                   "  --bus-address=ADDR          another bus\n"
                   "  --json                      machine-readable output\n"
                   "  --bytes                     exact sizes in tables\n"
                   "  --quiet                     less output\n"
                   "  --no-wait                   print the job id and path instead of waiting\n"
                   "  --verbose                   D-Bus error names too\n"
                   "  -h, --help, --version\n\n"
                   "Exit codes: 0 ok, 1 failed, 2 usage, 3 canceled, 4 daemon unreachable or access denied.\n");
}

int main(int argc, char **argv) {
        enum { O_SYSTEM = 256, O_ADDR, O_JSON, O_QUIET, O_NOWAIT, O_VERBOSE, O_VERSION, O_SHA, O_SIZE, O_MAXSIZE, O_REPLACE, O_RAW, O_BYTES };
        static const struct option opts[] = {
                { "system", no_argument, NULL, O_SYSTEM },   { "bus-address", required_argument, NULL, O_ADDR },
                { "json", no_argument, NULL, O_JSON },       { "quiet", no_argument, NULL, O_QUIET },
                { "no-wait", no_argument, NULL, O_NOWAIT },  { "verbose", no_argument, NULL, O_VERBOSE },
                { "version", no_argument, NULL, O_VERSION }, { "help", no_argument, NULL, 'h' },
                { "sha512", required_argument, NULL, O_SHA }, { "size", required_argument, NULL, O_SIZE },
                { "max-size", required_argument, NULL, O_MAXSIZE }, { "replace", no_argument, NULL, O_REPLACE },
                { "raw", no_argument, NULL, O_RAW },         { "bytes", no_argument, NULL, O_BYTES },
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
                { "rm", 1, 1 }, { "jobs", 0, 0 }, { "cancel", 1, 1 },
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
                r = simple_call(bus, "RemoveImage", "s", args[0]);
        else if (strcmp(cmd, "jobs") == 0)
                r = cmd_jobs(bus);
        else
                r = simple_call(bus, "CancelJob", "u", (uint32_t)job_id);
        sd_bus_flush_close_unref(bus);
        return r;
}
