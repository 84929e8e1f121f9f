/* uri.h: pure checks on image source URIs: characters, file:// paths, allowed directories, and
 * the redacted form shown wherever a URI leaves the caller's own call. No I/O. */
#pragma once
#include "util.h"

/* Longest URI accepted from a caller (the bus edge refuses longer strings first). */
#define HV_URI_MAX 4096

enum uri_scheme { URI_HTTP, URI_HTTPS, URI_FILE };

/* Refuses a URI holding a byte below 0x20 or 0x7f, raw or percent-encoded (%00-%1F, %7F), or
 * a malformed percent escape. `space_ok`: a raw space is allowed (file:// paths). */
int uri_check_chars(const char *uri, bool space_ok, struct hv_error *e);

/* The scheme, with the checks every scheme shares; InvalidArgs naming what is wrong. */
int uri_scheme(const char *uri, enum uri_scheme *ret, struct hv_error *e);

/* file:///path or file://localhost/path, percent-decoded into out. -EINVAL if malformed,
 * -ENAMETOOLONG if it does not fit. */
int uri_file_path(const char *uri, char *out, size_t len);

/* Which allowed directory `path` lies under (lexically): its index, with *rel pointing into
 * path at the rest (never empty, no leading '/'). -EPERM when none. */
int uri_allowed_dir(const char *path, const char (*dirs)[512], unsigned n_dirs, const char **rel);

/* The URI as it may be shown and stored: a password in the user info becomes "***" (a user
 * name alone, often a token, too), every query value becomes "***", a fragment is dropped.
 * Always NUL-terminates; a URI too long for out is cut and ends in "...". */
void uri_redact(const char *uri, char *out, size_t len);
