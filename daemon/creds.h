/* creds.h: who called. The bus daemon names the connection's uid and pid
 * (GetConnectionCredentials, asked without waiting: bus.c); the groups come from the caller's
 * /proc/PID/status, as sd-bus's SD_BUS_CREDS_AUGMENT reads them (dbus 1.14 does not send them). */
#pragma once
#include <sys/types.h>

#include "util.h"

#define CREDS_GIDS_MAX 1024 /* more: no group is trusted (the caller must be root) */

struct caller {
        uid_t uid;  /* the connection's uid, from the bus daemon; (uid_t)-1 unknown */
        pid_t pid;  /* -1 unknown */
        gid_t egid; /* (gid_t)-1 unknown */
        unsigned n_gids;
        gid_t gids[CREDS_GIDS_MAX]; /* supplementary groups */
};

/* Pure: the effective uid and gid and the supplementary groups from the text of a
 * /proc/PID/status. 0; -EINVAL when a "Uid:" or "Gid:" line is missing or malformed (an empty
 * "Groups:" line is none); -E2BIG past max groups (nothing is trusted then). */
int creds_parse_status(const char *text, uid_t *euid, gid_t *egid, gid_t *gids, unsigned max, unsigned *n);
