/* jobs.c: waiting for a job (progress, Ctrl-C cancels), listing, canceling and watching jobs. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

int cmd_jobs(sd_bus *bus) {
        sd_bus_message *reply = NULL;
        int r = ctl_call(bus, "ListJobs", &reply, "");
        if (r < 0)
                return -r;
        json_object *arr = json_object_new_array();
        r = sd_bus_message_enter_container(reply, 'a', "(usssdo)");
        bool header = false;
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
                if (!arg.json && !header && ctl_legend())
                        printf("%-10s %-7s %-24s %-10s %6s  %s\n", "ID", "TYPE", "TARGET", "PHASE", "DONE", "PATH");
                header = true;
                if (!arg.json)
                        printf("%-10u %-7s %-24s %-10s %5.1f%%  %s\n", id, type, target, phase, progress * 100.0, path);
        }
        sd_bus_message_unref(reply);
        if (r < 0) {
                json_object_put(arr);
                return ctl_bad_reply(r);
        }
        if (!arg.json && !header)
                ctl_none("jobs");
        if (arg.json)
                ctl_print_json(arr);
        else
                json_object_put(arr);
        return EXIT_OK;
}

int cmd_cancel(sd_bus *bus, uint32_t id) {
        int r = ctl_call(bus, "CancelJob", NULL, "u", id);
        return r < 0 ? -r : EXIT_OK;
}

struct wait_state {
        uint32_t id;
        char path[128];
        bool done;
        char result[16];
        char *error_name, *error_message;
        char last_phase[32];
        bool tty;
        bool daemon_gone; /* hvwgd left the bus: no JobRemoved will come */
        uint64_t last_draw, start;
};

static int on_owner_changed(sd_bus_message *m, void *ud, sd_bus_error *err) {
        (void)err;
        struct wait_state *w = ud;
        const char *name, *old, *new;
        if (sd_bus_message_read(m, "sss", &name, &old, &new) >= 0 && strcmp(name, BUS_NAME) == 0 && !*new)
                w->daemon_gone = true;
        return 0;
}

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
                if (w->daemon_gone)
                        return ctl_error(SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                         "hvwgd went away while job %u was running (its log says why; a restarted hvwgd removes what "
                                         "the job left)", w->id);
                if (interrupted && !canceled) {
                        canceled = true;
                        if (!arg.quiet)
                                fprintf(stderr, "\n%s: interrupted, canceling job %u\n", ctl_program, w->id);
                        sd_bus_call_method(bus, BUS_NAME, OBJ, MGR, "CancelJob", NULL, NULL, "u", w->id);
                }
                int r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        return ctl_error(SD_BUS_ERROR_DISCONNECTED, "lost the connection to hvwgd: %s", strerror(-r));
                }
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, 200000);
                if (r < 0 && r != -EINTR) {
                        return ctl_error(SD_BUS_ERROR_DISCONNECTED, "lost the connection to hvwgd: %s", strerror(-r));
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
                ctl_print_json(o);
        }
        int code = EXIT_OK;
        if (strcmp(w->result, "done") == 0) {
                if (!arg.quiet && !arg.json)
                        printf("job %u: done\n", w->id);
        } else if (strcmp(w->result, "canceled") == 0) {
                if (!arg.json)
                        fprintf(stderr, "%s: job %u canceled\n", ctl_program, w->id);
                code = EXIT_CANCELED;
        } else {
                const char *name = w->error_name && *w->error_name ? w->error_name : NULL;
                ctl_error(name, "%s", w->error_message && *w->error_message ? w->error_message : "job failed");
                code = name && strcmp(name, SD_BUS_ERROR_INVALID_ARGS) == 0 ? EXIT_USAGE : EXIT_FAILED;
        }
        free(w->error_name);
        free(w->error_message);
        return code;
}

/* JobRemoved and the jobs' PropertiesChanged, into w (only its job counts). */
static int subscribe_job(sd_bus *bus, struct wait_state *w) {
        int r = sd_bus_match_signal(bus, NULL, BUS_NAME, OBJ, MGR, "JobRemoved", on_job_removed, w);
        if (r >= 0) /* and hvwgd's end (a crash): nothing else would say so */
                r = sd_bus_add_match(bus, NULL,
                                     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                     "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" BUS_NAME "'",
                                     on_owner_changed, w);
        if (r >= 0)
                r = sd_bus_add_match(bus, NULL,
                                     "type='signal',sender='" BUS_NAME "',interface='org.freedesktop.DBus.Properties',"
                                     "member='PropertiesChanged',path_namespace='" HV_JOB_PREFIX "'",
                                     on_job_props, w);
        return r;
}

static int run_job(sd_bus *bus, sd_bus_message *m, const char *method);

/* Calls a job-starting method (FetchImage, CreateMachine) built in m, then waits for the job
 * or prints its id. The matches are in place before the call: the end cannot be missed. */
int ctl_run_job(sd_bus *bus, sd_bus_message *m, int r, const char *method) {
        /* m is the call with its options dictionary open; r: how building it went */
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return ctl_run_job_plain(bus, m, r, method);
}

int ctl_run_job_plain(sd_bus *bus, sd_bus_message *m, int r, const char *method) {
        if (r < 0) {
                sd_bus_message_unref(m);
                return ctl_error(NULL, "cannot build the %s call: %s", method, strerror(-r));
        }
        r = run_job(bus, m, method);
        sd_bus_message_unref(m);
        return r;
}

static int run_job(sd_bus *bus, sd_bus_message *m, const char *method) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        struct wait_state w = { .tty = isatty(STDOUT_FILENO) };
        int r = subscribe_job(bus, &w);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &e, &reply);
        if (r < 0) {
                r = ctl_fail_bus(method, &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        const char *path;
        r = sd_bus_message_read(reply, "uo", &w.id, &path);
        if (r >= 0)
                snprintf(w.path, sizeof(w.path), "%s", path);
        sd_bus_message_unref(reply);
        if (r < 0) {
                return ctl_bad_reply(r);
        }
        if (arg.no_wait) {
                if (arg.json) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "id", json_object_new_int64(w.id));
                        json_object_object_add(o, "path", json_object_new_string(w.path));
                        ctl_print_json(o);
                } else
                        printf("%u %s\n", w.id, w.path);
                return EXIT_OK;
        }
        return wait_job(bus, &w);
}

/* ---- wait JOB: until a job started elsewhere ends ---- */

int ctl_wait_job(sd_bus *bus, uint32_t id) {
        struct wait_state w = { .id = id, .tty = isatty(STDOUT_FILENO) };
        snprintf(w.path, sizeof(w.path), "%s/_%u", HV_JOB_PREFIX, id);
        int r = subscribe_job(bus, &w);
        if (r < 0)
                return ctl_error(NULL, "cannot subscribe to the job signals: %s", strerror(-r));
        /* subscribed first: then the job either is still listed, or its end is on its way */
        sd_bus_message *reply = NULL;
        if ((r = ctl_call(bus, "ListJobs", &reply, "")) < 0)
                return -r;
        bool found = false;
        r = sd_bus_message_enter_container(reply, 'a', "(usssdo)");
        uint32_t jid;
        const char *type, *target, *phase, *path;
        double progress;
        while (r >= 0 && (r = sd_bus_message_read(reply, "(usssdo)", &jid, &type, &target, &phase, &progress, &path)) > 0)
                found |= jid == id;
        sd_bus_message_unref(reply);
        if (r < 0)
                return ctl_bad_reply(r);
        if (!found) {
                sd_bus_process(bus, NULL);
                if (!w.done)
                        return ctl_error(HV_ERROR_NO_SUCH_JOB, "no job with id %u (it has ended, or never was)", id);
        }
        return wait_job(bus, &w);
}

/* ---- watch: a live view of jobs and machines until interrupted ---- */

static bool watch_dirty;

/* --json: one object per line and event. */
static void watch_json(sd_bus_message *m, const char *member) {
        json_object *o = json_object_new_object();
        uint32_t id;
        const char *a, *b, *c, *d;
        int r = -EINVAL;
        if (strcmp(member, "JobNew") == 0 && (r = sd_bus_message_read(m, "uo", &id, &a)) >= 0) {
                json_object_object_add(o, "event", json_object_new_string("job_new"));
                json_object_object_add(o, "id", json_object_new_int64(id));
                json_object_object_add(o, "path", json_object_new_string(a));
        } else if (strcmp(member, "JobRemoved") == 0 && (r = sd_bus_message_read(m, "uosss", &id, &a, &b, &c, &d)) >= 0) {
                json_object_object_add(o, "event", json_object_new_string("job_removed"));
                json_object_object_add(o, "id", json_object_new_int64(id));
                json_object_object_add(o, "path", json_object_new_string(a));
                json_object_object_add(o, "result", json_object_new_string(b));
                json_object_object_add(o, "error_name", json_object_new_string(c));
                json_object_object_add(o, "error_message", json_object_new_string(d));
        } else if (strcmp(member, "MachineStateChanged") == 0 && (r = sd_bus_message_read(m, "ss", &a, &b)) >= 0) {
                json_object_object_add(o, "event", json_object_new_string("machine_state"));
                json_object_object_add(o, "name", json_object_new_string(a));
                json_object_object_add(o, "state", json_object_new_string(b));
        } else if (strcmp(member, "MachineRemoved") == 0 && (r = sd_bus_message_read(m, "sss", &a, &b, &c)) >= 0) {
                json_object_object_add(o, "event", json_object_new_string("machine_removed"));
                json_object_object_add(o, "name", json_object_new_string(a));
                json_object_object_add(o, "reason", json_object_new_string(b));
                json_object_object_add(o, "console_log", json_object_new_string(c));
        } else if (strcmp(member, "PropertiesChanged") == 0) {
                const char *path = sd_bus_message_get_path(m);
                json_object_object_add(o, "event", json_object_new_string("job_changed"));
                json_object_object_add(o, "path", json_object_new_string(path ? path : ""));
                r = sd_bus_message_skip(m, "s");
                if (r >= 0)
                        r = sd_bus_message_enter_container(m, 'a', "{sv}");
                while (r >= 0 && sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                        const char *name, *contents;
                        if (sd_bus_message_read(m, "s", &name) < 0 || sd_bus_message_peek_type(m, NULL, &contents) < 0)
                                break;
                        uint64_t t;
                        double dv;
                        if (strcmp(contents, "s") == 0 && sd_bus_message_read(m, "v", "s", &a) >= 0)
                                json_object_object_add(o, strcmp(name, "Phase") == 0 ? "phase" : name, json_object_new_string(a));
                        else if (strcmp(contents, "t") == 0 && sd_bus_message_read(m, "v", "t", &t) >= 0)
                                json_object_object_add(o, strcmp(name, "BytesDone") == 0 ? "bytes_done" : "bytes_total",
                                                       json_object_new_uint64(t));
                        else if (strcmp(contents, "d") == 0 && sd_bus_message_read(m, "v", "d", &dv) >= 0)
                                json_object_object_add(o, "progress", json_object_new_double(dv));
                        else
                                sd_bus_message_skip(m, "v");
                        sd_bus_message_exit_container(m);
                }
        }
        if (r < 0)
                json_object_put(o);
        else
                ctl_print_json(o);
}

static int on_watch_signal(sd_bus_message *m, void *ud, sd_bus_error *err) {
        (void)ud;
        (void)err;
        watch_dirty = true;
        const char *member = sd_bus_message_get_member(m);
        if (!member)
                return 0;
        if (arg.json) {
                watch_json(m, member);
                return 0;
        }
        if (isatty(STDOUT_FILENO))
                return 0;
        uint32_t id;
        const char *a, *b, *c, *d;
        if (strcmp(member, "JobNew") == 0 && sd_bus_message_read(m, "uo", &id, &a) >= 0)
                printf("job %u: new (%s)\n", id, a);
        else if (strcmp(member, "JobRemoved") == 0 && sd_bus_message_read(m, "uosss", &id, &a, &b, &c, &d) >= 0)
                printf("job %u: %s%s%s\n", id, b, *d ? ": " : "", d);
        else if (strcmp(member, "MachineStateChanged") == 0 && sd_bus_message_read(m, "ss", &a, &b) >= 0)
                printf("machine %s: %s\n", a, b);
        else if (strcmp(member, "MachineRemoved") == 0 && sd_bus_message_read(m, "sss", &a, &b, &c) >= 0)
                printf("machine %s: removed (%s)%s%s\n", a, b, *c ? ", console log " : "", c);
        fflush(stdout);
        return 0;
}

int cmd_watch(sd_bus *bus) {
        static const char *const members[] = { "JobNew", "JobRemoved", "MachineStateChanged", "MachineRemoved" };
        int r = 0;
        for (size_t i = 0; i < ELEMENTSOF(members) && r >= 0; i++)
                r = sd_bus_match_signal(bus, NULL, BUS_NAME, OBJ, MGR, members[i], on_watch_signal, NULL);
        if (r >= 0)
                r = sd_bus_add_match(bus, NULL,
                                     "type='signal',sender='" BUS_NAME "',interface='org.freedesktop.DBus.Properties',"
                                     "member='PropertiesChanged',path_namespace='" HV_JOB_PREFIX "'",
                                     on_watch_signal, NULL);
        if (r < 0)
                return ctl_error(NULL, "cannot subscribe to the signals of hvwgd: %s", strerror(-r));
        /* the matches are in place once the bus has seen them: a round trip */
        if ((r = ctl_call(bus, "ListJobs", NULL, "")) < 0)
                return -r;
        bool tty = isatty(STDOUT_FILENO) && !arg.json;
        uint64_t last = 0;
        watch_dirty = true;
        while (!interrupted) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return ctl_error(SD_BUS_ERROR_DISCONNECTED, "lost the connection to hvwgd: %s", strerror(-r));
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
