/* libFuzzer target: the URI checks and redaction (uri.c). Invariants: an accepted URI has no
 * control byte raw or percent-encoded; a decoded file path has none either; the redacted form
 * is NUL-terminated within its buffer, keeps no password or query value, and is stable. */
#include <string.h>

#include "uri.h"

static bool has_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > HV_URI_MAX)
                return 0;
        char s[HV_URI_MAX + 1];
        memcpy(s, data, size);
        s[size] = 0;
        struct hv_error e = { 0 };
        enum uri_scheme sc;
        if (uri_scheme(s, &sc, &e) >= 0) {
                if (has_control(s))
                        __builtin_trap();
                for (const char *p = strchr(s, '%'); p; p = strchr(p + 1, '%'))
                        if (p[1] == '0' || p[1] == '1' || ((p[1] == '7') && (p[2] == 'f' || p[2] == 'F')))
                                __builtin_trap();
        } else if (!e.msg[0])
                __builtin_trap(); /* every refusal says why */
        char path[256];
        if (uri_file_path(s, path, sizeof(path)) >= 0 && (has_control(path) || path[0] != '/'))
                __builtin_trap();
        char out[128], again[128];
        uri_redact(s, out, sizeof(out));
        if (memchr(out, 0, sizeof(out)) == NULL)
                __builtin_trap();
        /* a query value never survives: after '?', every '=' is followed by "***" */
        const char *q = strchr(out, '?');
        for (const char *p = q ? strchr(q, '=') : NULL; p; p = strchr(p + 1, '='))
                if (strncmp(p + 1, "***", 3) != 0 && strncmp(p + 1, "..", 2) != 0 && p[1] != 0 && p[1] != '.')
                        __builtin_trap();
        if (strlen(out) < sizeof(out) - 4 && !strstr(out, "...")) {
                uri_redact(out, again, sizeof(again));
                if (strcmp(out, again) != 0)
                        __builtin_trap();
        }
        return 0;
}
