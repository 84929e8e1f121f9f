/* opts.h: what a FetchImage or CreateMachine caller asks for, and the pure validation of the
 * options dictionary (a{sv}). The bus edge reads the dictionary into opt_value entries; these
 * functions know nothing of D-Bus, so unit tests and fuzz_opts reach them directly. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domxml.h"
#include "gunzip.h"
#include "names.h"
#include "util.h"

#define OPTS_MAX 32          /* entries in one options dictionary */
#define HV_FS_NAME_MAX 7     /* "ext4" */

/* The types of opt_value beyond the basic 's', 't' (uint64) and 'b': the context's byte
 * arrays and dictionaries, whose values the bus edge reads into a context_input (context.h). */
#define OPT_BYTES 'y'      /* ay */
#define OPT_STRING_MAP 'm' /* a{ss} */
#define OPT_BYTES_MAP 'f'  /* a{say} */

/* One dictionary entry: its key and type, and the value of a basic type. */
struct opt_value {
        const char *key;
        char type;
        const char *s;
        uint64_t t;
        bool b;
};

struct fetch_params {
        char sha512[HV_SHA512_HEX + 1]; /* lower-case hex, "" when not given */
        bool have_size;
        uint64_t size;
        uint64_t max_size; /* min(option, MaxImageSize) */
        bool compressed;
        bool replace;
        enum gunzip_engine engine;
};

struct create_params {
        char image[HV_NAME_MAX + 1];
        char image_path[1024];
        unsigned cores;
        uint64_t memory_mib;
        uint64_t scratch_bytes;
        char scratch_fs[HV_FS_NAME_MAX + 1];
        enum dom_hv hv;
        char network[HV_NAME_MAX + 1];
        bool transient;
        bool start;
        bool bind_to_caller;    /* destroyed when the caller's bus connection closes */
        char uuid[HV_UUID_STR]; /* the caller's (bus edge) to fill: the domain's and the context's instance-id */
};

#define MAX_STOP_TIMEOUT_SEC 86400
/* StopMachine's options. */
struct stop_params {
        bool force;
        bool have_timeout;
        uint64_t timeout_sec;
};

/* What the host can give machines, and what they have already. */
struct capacity {
        long online_cpus;
        unsigned cpu_overcommit;
        uint64_t ram_mib;
        uint64_t reserved_memory_mib;
        uint64_t committed_cores;
        uint64_t committed_memory_mib;
        uint64_t committed_scratch_bytes; /* shown (CommittedScratchBytes); free space bounds it */
};

/* What CreateMachine falls back to, from the configuration and the host. */
struct create_defaults {
        const char *hypervisor;       /* effective (auto resolved) */
        const char *scratch_fs;
        const char *network;
        long online_cpus;
        unsigned cpu_overcommit;
        uint64_t memory_per_core_mib;
        uint64_t scratch_per_core_gib;
        uint64_t max_scratch_size;
};

/* Scratch disk size in bytes: opt_gib when given, else cores × per_core_gib; checked against [min, max].
 * 0 (from scratch_gib=0) means "no scratch disk" and is returned as such. */
int scratch_size(uint32_t cores, uint64_t per_core_gib, bool have_opt, uint64_t opt_gib, uint64_t max_size,
                 uint64_t *ret, struct hv_error *e);

/* FetchImage's options (sha512, size, max_size, compression, replace) over the defaults.
 * 0, or -EINVAL with e saying what is wrong (HV_E_INVALID_ARGS). */
int opts_fetch(const struct opt_value *v, size_t n, uint64_t max_image_size, enum gunzip_engine engine,
               struct fetch_params *fp, struct hv_error *e);
/* CreateMachine's cores and options (memory_mib, scratch_gib, scratch_fs, hypervisor, network,
 * transient, start, bind_to_caller, and the context's keys); image and image_path are the caller's to fill. */
int opts_create(const struct opt_value *v, size_t n, uint32_t cores, const struct create_defaults *d,
                struct create_params *cp, struct hv_error *e);
/* StopMachine's options (force, timeout_sec ≤ one day). */
int opts_stop(const struct opt_value *v, size_t n, struct stop_params *sp, struct hv_error *e);
/* CreateMachine past the host's limits: LimitsExceeded naming what is short (cores: online
 * CPUs × CpuOvercommit; memory: RAM − ReservedMemoryMiB), else 0. */
int capacity_check(const struct capacity *c, unsigned cores, uint64_t memory_mib, struct hv_error *e);
/* AddSubscription's options. */
struct subscribe_params {
        char endorser_dn[512], ca_dn[512]; /* required: the list's signer and its issuer */
        bool auto_fetch;
        uint64_t refresh_sec;              /* 0: [Lists] RefreshSec */
        char prefix[33];
};
/* endorser_dn and ca_dn (required, OpenSSL one-line DNs "/…=…"), auto_fetch, refresh_sec
 * (60 s – 1 week), name_prefix (≤ 32 of [A-Za-z0-9._-], starting with a letter or digit). */
int opts_subscribe(const struct opt_value *v, size_t n, struct subscribe_params *sp, struct hv_error *e);
/* RemoveSubscription's options (remove_images). */
int opts_unsubscribe(const struct opt_value *v, size_t n, bool *remove_images, struct hv_error *e);
/* DestroyMachine's options (keep_disks). */
int opts_destroy(const struct opt_value *v, size_t n, bool *keep_disks, struct hv_error *e);
