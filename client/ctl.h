/* ctl.h: what the parts of hvwgctl share: the parsed options, the bus calls with their error
 * reporting and exit codes, output in text or JSON. common.c and jobs.c are also the bus code
 * of hvwg-run. */
#pragma once
#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "names.h"
#include "util.h"

#define BUS_NAME HV_BUS_NAME
#define OBJ HV_OBJ_PATH
#define MGR HV_MANAGER_IFACE
#define JOB_IFACE HV_JOB_IFACE

/* 0 success, 1 the operation failed, 2 usage error (the client's or the daemon's InvalidArgs),
 * 3 canceled, 4 daemon not reachable or access denied. */
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_CANCELED = 3, EXIT_UNREACHABLE = 4 };
enum json_mode { JSON_OFF, JSON_SHORT, JSON_PRETTY };

struct ctl_args {
        const char *address;
        enum json_mode json;
        bool quiet, no_legend, no_wait, verbose, bytes;
        const char *sha512, *size, *max_size;
        bool replace, raw;
        const char *cores, *memory, *scratch, *scratch_fs, *hypervisor, *network;
        bool no_start, keep_disks, transient, force, follow;
        const char *timeout, *state;
        /* create: the context */
        const char *user_data, *network_config;
        const char *meta_data[256], *context_files[256], *context_vars[256]; /* KEY=VALUE, NAME=FILE, KEY=VALUE */
        unsigned n_meta_data, n_context_files, n_context_vars;
        /* image list subscriptions */
        const char *endorser_dn, *ca_dn, *refresh, *name_prefix;
        bool auto_fetch, remove_images, lint;
};
extern struct ctl_args arg;
/* The signal that interrupted (SIGINT, SIGTERM), 0 while none did. */
extern volatile sig_atomic_t interrupted;
/* The name errors are prefixed with ("hvwgctl", "hvwg-run"). */
extern const char *ctl_program;

/* ---- common.c ---- */
int ctl_connect(sd_bus **ret);
/* Prints an error (text, or {"error", "message"} on stderr with --json); returns the exit code
 * for name (NULL: 1). */
int ctl_error(const char *name, const char *fmt, ...) HV_PRINTF(2, 3);
/* A usage error: exit 2. */
int ctl_usage(const char *fmt, ...) HV_PRINTF(1, 2);
/* A failed bus call: the error in words, its exit code. */
int ctl_fail_bus(const char *what, const sd_bus_error *e, int r);
int ctl_exit_for(const char *error_name);
/* Calls a Manager method: 0, or (after printing the error) its exit code negated. */
int ctl_call(sd_bus *bus, const char *method, sd_bus_message **reply, const char *types, ...);
int ctl_new_call(sd_bus *bus, sd_bus_message **m, const char *method);
/* Sends a call built with ctl_new_call (unref'd here); timeout 0: sd-bus's default. */
int ctl_send(sd_bus *bus, sd_bus_message *m, uint64_t timeout_usec, sd_bus_message **reply, const char *what);
/* A reply that does not parse. */
int ctl_bad_reply(int r);
/* Prints (and frees) o: compact or pretty, no "\/" escapes. */
void ctl_print_json(json_object *o);
const char *ctl_size(uint64_t v, char *buf, size_t len);
const char *ctl_time(uint64_t usec, char *buf, size_t len);
/* Headers are printed unless --quiet or --no-legend. */
bool ctl_legend(void);
/* An empty list says so ("No machines.") unless --quiet or --no-legend. */
void ctl_none(const char *what);
/* Reads one a{sv} dictionary of basic types (and as, a(sst)) into a JSON object. */
int ctl_read_dict(sd_bus_message *reply, json_object **ret);
/* A field of a JSON object read from a reply: "" or 0 when it is missing. */
const char *ctl_json_str(json_object *o, const char *key);
uint64_t ctl_json_u64(json_object *o, const char *key);
/* One machine's signals (MachineStateChanged, MachineRemoved) as they arrive. */
struct ctl_machine_watch {
        const char *name;
        char state[32];  /* the last state; "removed" once MachineRemoved came */
        char reason[32]; /* MachineRemoved's reason */
        bool changed, removed;
};
/* Subscribes w (0, or the exit code after saying why). */
int ctl_watch_machine(sd_bus *bus, struct ctl_machine_watch *w);
/* No longer running: shut-off, crashed, undefined, removed. */
bool ctl_machine_stopped(const char *state);
/* OpenConsole: the console log's fd (the caller's to close). Else with report the error is
 * printed and its exit code returned negated; without, -1 (it may just not exist yet). */
int ctl_open_console(sd_bus *bus, const char *name, bool report);
/* Interrupts (SIGINT, SIGTERM) set `interrupted`. */
void ctl_catch_signals(void);

/* ---- jobs.c ---- */
/* Calls a job-starting method built in m (FetchImage, CreateMachine; its options dictionary
 * still open, r how building it went; m is unref'd here), then waits for the job (progress,
 * Ctrl-C cancels) or, with --no-wait, prints its id and path. */
int ctl_run_job(sd_bus *bus, sd_bus_message *m, int r, const char *method);
/* The same for a call without an options dictionary (m complete). */
int ctl_run_job_plain(sd_bus *bus, sd_bus_message *m, int r, const char *method);
int cmd_jobs(sd_bus *bus);
int cmd_cancel(sd_bus *bus, uint32_t id);
int cmd_watch(sd_bus *bus);
int ctl_wait_job(sd_bus *bus, uint32_t id);

/* ---- images.c ---- */
int cmd_status(sd_bus *bus);
int cmd_fetch(sd_bus *bus, const char *uri, const char *name);
int cmd_images(sd_bus *bus);
int cmd_inspect(sd_bus *bus, const char *name);
int cmd_rm(sd_bus *bus, const char *name);

/* ---- machines.c ---- */
int cmd_create(sd_bus *bus, const char *image, const char *name);
int cmd_machines(sd_bus *bus);
int cmd_show(sd_bus *bus, const char *name);
int cmd_start(sd_bus *bus, const char *name);
int cmd_stop(sd_bus *bus, const char *name);
int cmd_reboot(sd_bus *bus, const char *name);
int cmd_destroy(sd_bus *bus, const char *name);
int cmd_console(sd_bus *bus, const char *name);
/* wait MACHINE: until it reaches --state (default: until it no longer runs). */
int cmd_wait_machine(sd_bus *bus, const char *name);

/* subscriptions.c */
int cmd_subscribe(sd_bus *bus, const char *uri);
int cmd_subscriptions(sd_bus *bus);
int cmd_unsubscribe(sd_bus *bus, const char *id);
int cmd_refresh(sd_bus *bus, const char *id);
int cmd_list_images(sd_bus *bus, const char *id);
