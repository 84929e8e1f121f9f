/* subrec.h: a subscription's record (ImageRoot/.subscriptions/ID.sub), pure: its fields and
 * their text form, key=value lines, one key once. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "imagelist.h"
#include "uri.h"

#define SUB_ID_LEN 16

/* What a subscription is and what its last refresh found: the record on disk. */
struct sub_state {
        char id[SUB_ID_LEN + 1];
        char uri[HV_URI_MAX + 1];    /* as given: the transfer only (it may hold credentials) */
        char endorser_dn[IL_DN_MAX], ca_dn[IL_DN_MAX]; /* pinned */
        char prefix[33];             /* of its images' names */
        bool auto_fetch;
        uint64_t refresh_sec;
        uint64_t created_usec;
        char etag[256], last_modified[64]; /* of the list's last 200 */
        uint64_t last_refresh_usec;
        char last_result[32];        /* "", updated, not-modified, same-version, failed, canceled */
        char last_error_name[96];
        char last_error[1024];
};

/* The record's text and back (a key twice, an unknown key, a control character, an id that is
 * not SUB_ID_LEN hex digits: -EINVAL). */
char *sub_state_format(const struct sub_state *st);
int sub_state_parse(struct sub_state *st, const char *text);
