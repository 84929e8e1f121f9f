/* uri.c: pure checks on image source URIs (see uri.h). */
#include "uri.h"

#include <errno.h>
#include <string.h>

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static bool is_control(unsigned char c) {
        return c < 0x20 || c == 0x7f;
}

int uri_check_chars(const char *uri, bool space_ok, struct hv_error *e) {
        for (size_t i = 0; uri[i]; i++) {
                unsigned char c = (unsigned char)uri[i];
                if (is_control(c) || (c == ' ' && !space_ok))
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "source URI contains %s at byte %zu",
                                       c == ' ' ? "a space" : "a control character", i);
                if (c != '%')
                        continue;
                int a = hexval(uri[i + 1]), b = a >= 0 ? hexval(uri[i + 2]) : -1;
                if (a < 0 || b < 0)
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "source URI has a malformed percent escape at byte %zu", i);
                if (is_control((unsigned char)(a * 16 + b)))
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL,
                                       "source URI contains an encoded control character (%%%c%c) at byte %zu", uri[i + 1], uri[i + 2], i);
                i += 2;
        }
        return 0;
}

int uri_scheme(const char *uri, enum uri_scheme *ret, struct hv_error *e) {
        if (strncmp(uri, "http://", 7) == 0 || strncmp(uri, "https://", 8) == 0) {
                bool tls = uri[4] == 's';
                const char *host = uri + (tls ? 8 : 7);
                if (*host == 0 || *host == '/')
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "URL has no host");
                int r = uri_check_chars(uri, false, e);
                if (r < 0)
                        return r;
                *ret = tls ? URI_HTTPS : URI_HTTP;
                return 0;
        }
        if (strncmp(uri, "file://", 7) == 0) {
                int r = uri_check_chars(uri, true, e);
                if (r < 0)
                        return r;
                *ret = URI_FILE;
                return 0;
        }
        if (uri[0] == '/')
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "source %.200s is a path, not a URI: write file://%.200s", uri, uri);
        char shown[256];
        uri_redact(uri, shown, sizeof(shown));
        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "unsupported source %s: use http://, https:// or file://", shown);
}

int uri_file_path(const char *uri, char *out, size_t len) {
        if (strncmp(uri, "file://", 7) != 0)
                return -EINVAL;
        const char *p = uri + 7;
        if (strncmp(p, "localhost/", 10) == 0)
                p += 9;
        if (*p != '/')
                return -EINVAL;
        size_t o = 0;
        for (; *p; p++) {
                char c = *p;
                if (c == '?' || c == '#')
                        return -EINVAL;
                if (c == '%') {
                        int a = hexval(p[1]), b = a >= 0 ? hexval(p[2]) : -1;
                        if (a < 0 || b < 0)
                                return -EINVAL;
                        c = (char)(a * 16 + b);
                        p += 2;
                }
                if (is_control((unsigned char)c) || c == 0)
                        return -EINVAL; /* after decoding too: defence in depth */
                if (o + 1 >= len)
                        return -ENAMETOOLONG;
                out[o++] = c;
        }
        out[o] = 0;
        return 0;
}

int uri_allowed_dir(const char *path, const char (*dirs)[512], unsigned n_dirs, const char **rel) {
        for (unsigned i = 0; i < n_dirs; i++) {
                const char *dir = dirs[i];
                size_t dl = strlen(dir);
                while (dl > 1 && dir[dl - 1] == '/')
                        dl--;
                if (strncmp(path, dir, dl) != 0 || (path[dl] != '/' && dl != 1))
                        continue;
                const char *r = path + dl;
                while (*r == '/')
                        r++;
                if (!*r)
                        continue;
                *rel = r;
                return (int)i;
        }
        return -EPERM;
}

/* Appends n bytes of s to out at *o, keeping room for the "..." of a cut. */
static bool put(char *out, size_t len, size_t *o, const char *s, size_t n) {
        if (*o + n + 4 > len)
                return false;
        memcpy(out + *o, s, n);
        *o += n;
        return true;
}

void uri_redact(const char *uri, char *out, size_t len) {
        if (len < 8) {
                if (len)
                        out[0] = 0;
                return;
        }
        size_t o = 0;
        bool ok = true;
        const char *p = uri;
        /* a scheme is letters, digits, '+', '-', '.' (RFC 3986); "a?b=c://" is none */
        size_t sl = strspn(uri, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
        const char *sep = sl > 0 && sl < 16 && strncmp(uri + sl, "://", 3) == 0 ? uri + sl : NULL;
        if (sep) {
                ok = put(out, len, &o, uri, (size_t)(sep - uri) + 3);
                p = sep + 3;
                size_t auth = strcspn(p, "/?#");
                const char *at = NULL; /* the last '@' of the authority ends the user info */
                for (size_t k = 0; k < auth; k++)
                        if (p[k] == '@')
                                at = p + k;
                if (at) {
                        const char *colon = memchr(p, ':', (size_t)(at - p));
                        if (colon)
                                ok = ok && put(out, len, &o, p, (size_t)(colon - p)) && put(out, len, &o, ":***", 4);
                        else
                                ok = ok && put(out, len, &o, "***", 3);
                        p = at; /* the '@' and the host follow */
                }
        }
        size_t path = strcspn(p, "?#");
        ok = ok && put(out, len, &o, p, path);
        p += path;
        if (ok && *p == '?') {
                p++;
                ok = put(out, len, &o, "?", 1);
                while (ok && *p && *p != '#') {
                        size_t field = strcspn(p, "&#");
                        size_t key = strcspn(p, "=&#");
                        ok = put(out, len, &o, p, key);
                        if (ok && key < field)
                                ok = put(out, len, &o, "=***", 4);
                        p += field;
                        if (ok && *p == '&') {
                                ok = put(out, len, &o, "&", 1);
                                p++;
                        }
                }
        }
        if (!ok) {
                memcpy(out + o, "...", 3);
                o += 3;
        }
        out[o] = 0;
}
