/* machines.c: create, machines, show, start, stop, reboot, destroy, console, wait. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

#define CONTEXT_FILE_MAX (256u << 20) /* hvwgd's MaxContextSize bounds the whole */

/* Appends a context option holding a file's bytes (ay). */
static int append_file(sd_bus_message *m, const char *key, const char *path) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = hv_read_file(path, CONTEXT_FILE_MAX, &data, &len);
        if (r < 0)
                return ctl_usage("cannot read %s for %s: %s", path, key, strerror(-r));
        if ((r = sd_bus_message_open_container(m, 'e', "sv")) < 0 || (r = sd_bus_message_append(m, "s", key)) < 0 ||
            (r = sd_bus_message_open_container(m, 'v', "ay")) < 0 || (r = sd_bus_message_append_array(m, 'y', data, len)) < 0 ||
            (r = sd_bus_message_close_container(m)) < 0 || (r = sd_bus_message_close_container(m)) < 0)
                return ctl_error(NULL, "cannot build the CreateMachine call: %s", strerror(-r));
        return 0;
}

/* Appends KEY=VALUE arguments as an a{ss} (files: NAME=FILE as an a{say}). */
static int append_pairs(sd_bus_message *m, const char *key, const char *const *args, unsigned n, bool files) {
        if (!n)
                return 0;
        int r;
        if ((r = sd_bus_message_open_container(m, 'e', "sv")) < 0 || (r = sd_bus_message_append(m, "s", key)) < 0 ||
            (r = sd_bus_message_open_container(m, 'v', files ? "a{say}" : "a{ss}")) < 0 ||
            (r = sd_bus_message_open_container(m, 'a', files ? "{say}" : "{ss}")) < 0)
                return ctl_error(NULL, "cannot build the CreateMachine call: %s", strerror(-r));
        for (unsigned i = 0; i < n; i++) {
                const char *eq = strchr(args[i], '=');
                if (!eq || eq == args[i])
                        return ctl_usage("--%s takes %s, got \"%s\"", files ? "context-file" : strcmp(key, "meta_data") ? "context-var" : "meta-data",
                                         files ? "NAME=FILE" : "KEY=VALUE", args[i]);
                _cleanup_free_ char *k = strndup(args[i], (size_t)(eq - args[i]));
                if (!k)
                        return ctl_error(NULL, "out of memory");
                if (files) {
                        _cleanup_free_ char *data = NULL;
                        size_t len = 0;
                        if ((r = hv_read_file(eq + 1, CONTEXT_FILE_MAX, &data, &len)) < 0)
                                return ctl_usage("cannot read %s for the context file %s: %s", eq + 1, k, strerror(-r));
                        r = sd_bus_message_open_container(m, 'e', "say");
                        if (r >= 0)
                                r = sd_bus_message_append(m, "s", k);
                        if (r >= 0)
                                r = sd_bus_message_append_array(m, 'y', data, len);
                        if (r >= 0)
                                r = sd_bus_message_close_container(m);
                } else
                        r = sd_bus_message_append(m, "{ss}", k, eq + 1);
                if (r < 0)
                        return ctl_error(NULL, "cannot build the CreateMachine call: %s", strerror(-r));
        }
        if ((r = sd_bus_message_close_container(m)) < 0 || (r = sd_bus_message_close_container(m)) < 0 ||
            (r = sd_bus_message_close_container(m)) < 0)
                return ctl_error(NULL, "cannot build the CreateMachine call: %s", strerror(-r));
        return 0;
}

/* The context options of create; an exit code, or 0. */
static int append_context(sd_bus_message *m) {
        int r = 0;
        if (arg.user_data && (r = append_file(m, "user_data", arg.user_data)) != 0)
                return r;
        if (arg.network_config && (r = append_file(m, "network_config", arg.network_config)) != 0)
                return r;
        if ((r = append_pairs(m, "meta_data", arg.meta_data, arg.n_meta_data, false)) != 0 ||
            (r = append_pairs(m, "context_vars", arg.context_vars, arg.n_context_vars, false)) != 0)
                return r;
        return append_pairs(m, "context_files", arg.context_files, arg.n_context_files, true);
}

int cmd_create(sd_bus *bus, const char *image, const char *name) {
        unsigned cores;
        uint64_t memory = 0, scratch = 0;
        if (!arg.cores)
                return ctl_usage("create needs --cores=N");
        if (hv_parse_uint(arg.cores, 1, 4096, &cores) < 0)
                return ctl_usage("invalid --cores %s (1-4096)", arg.cores);
        if (arg.memory && (hv_parse_size(arg.memory, &memory) < 0 || memory < (1ULL << 20) || memory % (1ULL << 20)))
                return ctl_usage("invalid --memory %s (whole MiB, e.g. 4G or 1536M)", arg.memory);
        if (arg.scratch && (hv_parse_size(arg.scratch, &scratch) < 0 || scratch % (1ULL << 30)))
                return ctl_usage("invalid --scratch %s (whole GiB, e.g. 40G; 0 for none)", arg.scratch);
        if (arg.transient && arg.no_start)
                return ctl_usage("--transient and --no-start do not go together: a transient machine starts at once");
        sd_bus_message *m = NULL;
        int r = ctl_new_call(bus, &m, "CreateMachine");
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
        if (r >= 0 && arg.transient)
                r = sd_bus_message_append(m, "{sv}", "transient", "b", 1);
        if (r >= 0 && arg.no_start)
                r = sd_bus_message_append(m, "{sv}", "start", "b", 0);
        if (r >= 0) {
                int code = append_context(m);
                if (code != 0) {
                        sd_bus_message_unref(m);
                        return code;
                }
        }
        return ctl_run_job(bus, m, r, "CreateMachine");
}

int cmd_machines(sd_bus *bus) {
        sd_bus_message *reply = NULL;
        int r = ctl_call(bus, "ListMachines", &reply, "");
        if (r < 0)
                return -r;
        json_object *arr = json_object_new_array();
        r = sd_bus_message_enter_container(reply, 'a', "(ssuttss)");
        const char *name, *uuid, *image, *state;
        uint32_t cores;
        uint64_t mem, scratch;
        size_t n = 0;
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
                        if (!n++ && ctl_legend())
                                printf("%-24s %-36s %5s %10s %10s %-20s %s\n", "NAME", "UUID", "CORES", "MEMORY", "SCRATCH", "IMAGE", "STATE");
                        printf("%-24s %-36s %5u %10s %10s %-20s %s\n", name, uuid, cores, ctl_size(mem << 20, a, sizeof(a)),
                               ctl_size(scratch, b, sizeof(b)), image, state);
                }
        }
        sd_bus_message_unref(reply);
        if (r < 0) {
                json_object_put(arr);
                return ctl_bad_reply(r);
        }
        if (!arg.json && !n)
                ctl_none("machines");
        if (arg.json)
                ctl_print_json(arr);
        else
                json_object_put(arr);
        return EXIT_OK;
}

static int get_machine(sd_bus *bus, const char *name, json_object **ret) {
        sd_bus_message *reply = NULL;
        int r = ctl_call(bus, "GetMachine", &reply, "s", name);
        if (r < 0)
                return r;
        r = ctl_read_dict(reply, ret);
        sd_bus_message_unref(reply);
        return r < 0 ? -ctl_bad_reply(r) : 0;
}

int cmd_show(sd_bus *bus, const char *name) {
        json_object *o = NULL;
        int r = get_machine(bus, name, &o);
        if (r < 0)
                return -r;
        if (arg.json) {
                ctl_print_json(o);
                return EXIT_OK;
        }
        char a[32], b[32], c[32];
        json_object *v;
        json_object_object_get_ex(o, "transient", &v);
        printf("%s (%s)\n", name, ctl_json_str(o, "uuid"));
        printf("  State:      %s%s%s%s since %s\n", ctl_json_str(o, "state"), *ctl_json_str(o, "state_reason") ? " (" : "", ctl_json_str(o, "state_reason"),
               *ctl_json_str(o, "state_reason") ? ")" : "", ctl_time(ctl_json_u64(o, "state_changed_usec"), a, sizeof(a)));
        printf("  Created:    %s by uid %llu%s\n", ctl_time(ctl_json_u64(o, "created_usec"), b, sizeof(b)),
               (unsigned long long)ctl_json_u64(o, "owner_uid"), json_object_get_boolean(v) ? ", transient (removed when it stops)" : "");
        printf("  Image:      %s (sha512 %.16s…)\n", ctl_json_str(o, "image"), *ctl_json_str(o, "image_sha512") ? ctl_json_str(o, "image_sha512") : "unknown");
        printf("  Resources:  %llu cores, %s memory, %s scratch\n", (unsigned long long)ctl_json_u64(o, "cores"),
               ctl_size(ctl_json_u64(o, "memory_mib") << 20, a, sizeof(a)), ctl_size(ctl_json_u64(o, "scratch_bytes"), b, sizeof(b)));
        printf("  Hypervisor: %s, network %s\n", ctl_json_str(o, "hypervisor"), *ctl_json_str(o, "network") ? ctl_json_str(o, "network") : "none");
        json_object *disks;
        json_object_object_get_ex(o, "disks", &disks);
        for (size_t i = 0; disks && i < json_object_array_length(disks); i++) {
                json_object *d = json_object_array_get_idx(disks, i);
                printf("  Disk:       %-7s %s (%s allocated)\n", ctl_json_str(d, "role"), ctl_json_str(d, "path"),
                       ctl_size(ctl_json_u64(d, "allocated"), c, sizeof(c)));
        }
        printf("  Console:    %s\n", ctl_json_str(o, "console_log"));
        json_object_put(o);
        return EXIT_OK;
}

static int simple_call(sd_bus *bus, const char *method, const char *name, uint64_t timeout_usec, const char *done_msg) {
        sd_bus_message *m = NULL;
        int r = ctl_new_call(bus, &m, method);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", name);
        if (r >= 0 && (strcmp(method, "StopMachine") == 0 || strcmp(method, "DestroyMachine") == 0)) {
                r = sd_bus_message_open_container(m, 'a', "{sv}");
                if (r >= 0 && arg.force)
                        r = sd_bus_message_append(m, "{sv}", "force", "b", 1);
                if (r >= 0 && arg.keep_disks)
                        r = sd_bus_message_append(m, "{sv}", "keep_disks", "b", 1);
                if (r >= 0 && arg.timeout) {
                        unsigned t;
                        if (hv_parse_uint(arg.timeout, 0, 86400, &t) < 0) {
                                sd_bus_message_unref(m);
                                return ctl_usage("invalid --timeout %s (seconds, 0-86400)", arg.timeout);
                        }
                        r = sd_bus_message_append(m, "{sv}", "timeout_sec", "t", (uint64_t)t);
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r < 0) {
                sd_bus_message_unref(m);
                return ctl_error(NULL, "cannot build the %s call: %s", method, strerror(-r));
        }
        r = ctl_send(bus, m, timeout_usec, NULL, method);
        if (r == EXIT_OK && !arg.quiet && !arg.json)
                printf("machine %s: %s\n", name, done_msg);
        if (r == EXIT_OK && arg.json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "result", json_object_new_string("done"));
                ctl_print_json(o);
        }
        return r;
}

/* Long calls: sd-bus's 25 s default would give up on a slow libvirt or a long ACPI timeout. */
#define LONG_CALL_USEC (600 * 1000000ULL)

int cmd_start(sd_bus *bus, const char *name) {
        return simple_call(bus, "StartMachine", name, LONG_CALL_USEC, "started");
}

int cmd_reboot(sd_bus *bus, const char *name) {
        return simple_call(bus, "RebootMachine", name, LONG_CALL_USEC, "rebooting");
}

int cmd_stop(sd_bus *bus, const char *name) {
        unsigned t = 0;
        if (arg.timeout && hv_parse_uint(arg.timeout, 0, 86400, &t) < 0)
                return ctl_usage("invalid --timeout %s (seconds, 0-86400)", arg.timeout);
        /* the daemon's StopTimeoutSec applies without --timeout: allow up to a day */
        return simple_call(bus, "StopMachine", name, (arg.timeout ? t + 120ULL : 86400ULL) * 1000000ULL, "stopped");
}

int cmd_destroy(sd_bus *bus, const char *name) {
        return simple_call(bus, "DestroyMachine", name, LONG_CALL_USEC, arg.keep_disks ? "destroyed, disks kept" : "destroyed");
}

/* ---- console and wait: signals about one machine ---- */

/* Copies what the console log holds from *pos on; on a terminal, control bytes a guest could
 * use against it (escape sequences) are shown as '?'. false at a write error. */
static bool copy_out(int fd, off_t *pos, bool tty) {
        char buf[65536];
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_size < *pos) /* the log was truncated (the machine started again) */
                *pos = 0;
        for (;;) {
                ssize_t n = pread(fd, buf, sizeof(buf), *pos);
                if (n <= 0)
                        return true;
                *pos += n;
                if (tty)
                        for (ssize_t i = 0; i < n; i++) {
                                unsigned char c = (unsigned char)buf[i];
                                if ((c < 0x20 && c != '\n' && c != '\t' && c != '\r') || c == 0x7f)
                                        buf[i] = '?';
                        }
                if (hv_write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
                        return false;
        }
}

int cmd_console(sd_bus *bus, const char *name) {
        struct ctl_machine_watch w = { .name = name };
        int r;
        if (arg.follow && (r = ctl_watch_machine(bus, &w)) != 0)
                return r;
        int own = ctl_open_console(bus, name, true);
        if (own < 0)
                return -own;
        bool tty = isatty(STDOUT_FILENO);
        off_t pos = 0;
        int code = EXIT_OK;
        for (;;) {
                if (!copy_out(own, &pos, tty)) {
                        code = EXIT_FAILED;
                        break;
                }
                if (!arg.follow || interrupted)
                        break;
                if (w.changed && ctl_machine_stopped(w.state)) {
                        copy_out(own, &pos, tty); /* what it wrote last */
                        if (!arg.quiet && w.removed)
                                fprintf(stderr, "hvwgctl: machine %s was removed (%s)\n", name, w.reason);
                        else if (!arg.quiet)
                                fprintf(stderr, "hvwgctl: machine %s stopped (%s)\n", name, w.state);
                        break;
                }
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        code = ctl_error(SD_BUS_ERROR_DISCONNECTED, "lost the connection to hvwgd: %s", strerror(-r));
                        break;
                }
                if (r == 0)
                        sd_bus_wait(bus, 200000);
        }
        close(own);
        return code;
}

int cmd_wait_machine(sd_bus *bus, const char *name) {
        struct ctl_machine_watch w = { .name = name };
        unsigned timeout = 0;
        if (arg.timeout && hv_parse_uint(arg.timeout, 1, 86400 * 30, &timeout) < 0)
                return ctl_usage("invalid --timeout %s (seconds)", arg.timeout);
        int r = ctl_watch_machine(bus, &w);
        if (r != 0)
                return r;
        /* subscribed first: the state read now cannot miss a later change */
        json_object *o = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        r = sd_bus_call_method(bus, BUS_NAME, OBJ, MGR, "GetMachine", &e, &reply, "s", name);
        if (r < 0 && sd_bus_error_has_name(&e, HV_ERROR_NO_SUCH_MACHINE))
                snprintf(w.state, sizeof(w.state), "removed");
        else if (r < 0) {
                r = ctl_fail_bus("GetMachine", &e, r);
                sd_bus_error_free(&e);
                return r;
        } else {
                r = ctl_read_dict(reply, &o);
                sd_bus_message_unref(reply);
                if (r < 0)
                        return ctl_bad_reply(r);
                snprintf(w.state, sizeof(w.state), "%s", ctl_json_str(o, "state"));
                json_object_put(o);
        }
        sd_bus_error_free(&e);
        uint64_t until = timeout ? hv_mono_usec() + timeout * 1000000ULL : 0;
        for (;;) {
                bool reached = arg.state ? strcmp(w.state, arg.state) == 0 : ctl_machine_stopped(w.state);
                if (reached)
                        break;
                if (!strcmp(w.state, "removed"))
                        return ctl_error(HV_ERROR_NO_SUCH_MACHINE, "machine %s is gone%s%s%s (waited for %s)", name, w.reason[0] ? " (" : "",
                                         w.reason, w.reason[0] ? ")" : "", arg.state);
                if (interrupted)
                        return EXIT_CANCELED;
                if (until && hv_mono_usec() >= until)
                        return ctl_error("timeout", "machine %s is still %s after %u s", name, w.state, timeout);
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return ctl_error(SD_BUS_ERROR_DISCONNECTED, "lost the connection to hvwgd: %s", strerror(-r));
                if (r == 0)
                        sd_bus_wait(bus, 200000);
        }
        if (arg.json) {
                json_object *j = json_object_new_object();
                json_object_object_add(j, "name", json_object_new_string(name));
                json_object_object_add(j, "state", json_object_new_string(w.state));
                json_object_object_add(j, "reason", json_object_new_string(w.reason));
                ctl_print_json(j);
        } else if (!arg.quiet)
                printf("machine %s: %s%s%s%s\n", name, w.state, w.reason[0] ? " (" : "", w.reason, w.reason[0] ? ")" : "");
        return EXIT_OK;
}
