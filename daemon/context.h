/* context.h: a machine's context — what its guest learns at boot from the context disk (an
 * ISO 9660 image labelled "cidata"): cloud-init NoCloud files (user-data, meta-data,
 * network-config) and the HEPiX context files (prolog.sh, epilog.sh, context.sh, others).
 * Pure: the caller's input checked and turned into the list of files; context_iso.c writes it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"
#include "util.h"

#define CONTEXT_NAME_MAX 64       /* a context file's name */
#define CONTEXT_KEY_MAX 64        /* a meta-data or context variable key */
#define CONTEXT_MAX_ENTRIES 256   /* files, meta-data keys, variables: each */
#define CONTEXT_LABEL "cidata"    /* the volume label NoCloud looks for (lower case) */

/* A byte string of the caller's (pointing into its message) or ours (owned). */
struct context_blob {
        const uint8_t *data;
        size_t len;
};

struct context_pair {
        const char *key;
        struct context_blob value; /* a string (a{ss}) or bytes (a{say}) */
};

/* What CreateMachine was given; all pointers are the caller's. */
struct context_input {
        bool have_user_data, have_network_config;
        struct context_blob user_data, network_config;
        struct context_pair meta[CONTEXT_MAX_ENTRIES];
        size_t n_meta;
        struct context_pair files[CONTEXT_MAX_ENTRIES];
        size_t n_files;
        struct context_pair vars[CONTEXT_MAX_ENTRIES];
        size_t n_vars;
};

/* One file of the context disk (owned). */
struct context_file {
        char name[CONTEXT_NAME_MAX + 1];
        uint8_t *data;
        size_t len;
};

struct context_files {
        struct context_file *f;
        size_t n;
};

/* Anything given at all (a machine without it gets no context disk). */
bool context_given(const struct context_input *in);
/* A context file name: plain (no '/'), not "." or "..", no leading dot, 1-64 bytes of
 * printable ASCII, not one of the NoCloud names hvwgd writes itself. */
bool context_file_name_valid(const char *name);
/* The input checked (names, keys, duplicates, total size ≤ max_size): 0 or -EINVAL with e
 * (InvalidArgs) saying what and, for the size, how much. */
int context_check(const struct context_input *in, uint64_t max_size, struct hv_error *e);
/* The files of the context disk, in this order: user-data (an empty #cloud-config when none
 * was given), meta-data (instance-id and local-hostname unless given, then the caller's keys,
 * as YAML), network-config (if given), context.sh (from the variables, shell-quoted), then the
 * caller's files. in must have passed context_check. -ENOMEM or 0. */
int context_build(const struct context_input *in, const char *instance_id, const char *hostname, struct context_files *out);
void context_files_free(struct context_files *cf);
uint64_t context_files_size(const struct context_files *cf);
/* Shell-safe KEY='value' (a ' becomes '\''): appended to buf at *used (buf grows). -ENOMEM. */
int context_shell_assign(char **buf, size_t *used, size_t *cap, const char *key, const char *value);
