/* audit.h: one log line per state-changing call: who (uid, pid), what (the method and its
 * arguments, secrets left out) and how it ended, refusals included. Loop thread only. */
#pragma once
#include "creds.h"
#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

struct audit_rec {
        char method[40];
        char args[1024];
        uid_t uid;
        pid_t pid;
};

/* The call's method, caller and arguments; msg is rewound afterwards, so the handler reads it
 * from the start. c: the caller (may be NULL: shown as unknown). */
void audit_begin(struct audit_rec *rec, sd_bus_message *msg, const struct caller *c);
/* Logs the call once: error_name NULL for success (outcome: "ok", "job 12", …), else the
 * error's name with its message as outcome. */
void audit_end(const struct audit_rec *rec, const char *error_name, const char *outcome);
/* Pure: option keys whose values are secrets (user-data, context files and variables); the
 * log shows <secret> for them. */
bool audit_secret_key(const char *key);
