/* imagelist.c: the HEPiX image list body (JSON, json-c) and the rules for accepting it. Pure:
 * every byte is hostile (the list came over the network; its signature says who wrote it, not
 * that it is well-formed). */
#define _GNU_SOURCE
#include "imagelist.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#define SKEW_SEC 300

static int bad(struct hv_error *e, const char *where, const char *fmt, ...) HV_PRINTF(3, 4);
static int bad(struct hv_error *e, const char *where, const char *fmt, ...) {
        char what[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        return hv_fail(e, HV_E_LIST_INVALID, EBADMSG, "image list: %s: %s", where, what);
}

static json_object *field(json_object *o, const char *key) {
        json_object *v = NULL;
        return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* A string field into buf (printable, no control bytes); required or "" when absent. */
static int get_str(json_object *o, const char *key, bool required, char *buf, size_t len, const char *where,
                   struct hv_error *e) {
        json_object *v = field(o, key);
        buf[0] = 0;
        if (!v || json_object_is_type(v, json_type_null))
                return required ? bad(e, where, "%s is missing", key) : 0;
        if (!json_object_is_type(v, json_type_string))
                return bad(e, where, "%s is not a string", key);
        const char *s = json_object_get_string(v);
        size_t n = (size_t)json_object_get_string_len(v);
        if (n >= len)
                return bad(e, where, "%s is %zu bytes long, at most %zu", key, n, len - 1);
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return bad(e, where, "%s holds a control character", key);
        if (required && n == 0)
                return bad(e, where, "%s is empty", key);
        memcpy(buf, s, n);
        buf[n] = 0;
        return 0;
}

/* A count: a JSON integer ≥ 0, or a string of digits (AppDB writes them so). */
static int get_u64(json_object *o, const char *key, bool required, uint64_t *ret, const char *where, struct hv_error *e) {
        json_object *v = field(o, key);
        *ret = 0;
        if (!v || json_object_is_type(v, json_type_null))
                return required ? bad(e, where, "%s is missing", key) : 0;
        if (json_object_is_type(v, json_type_int)) {
                errno = 0;
                int64_t x = json_object_get_int64(v);
                if (x < 0 || errno == ERANGE)
                        return bad(e, where, "%s is not a byte count", key);
                *ret = (uint64_t)x;
                return 0;
        }
        if (!json_object_is_type(v, json_type_string))
                return bad(e, where, "%s is neither a number nor a string of digits", key);
        const char *s = json_object_get_string(v);
        size_t n = strlen(s);
        if (n == 0 || n > 19 || strspn(s, "0123456789") != n)
                return bad(e, where, "%s \"%.40s\" is not a whole number", key, s);
        *ret = strtoull(s, NULL, 10);
        return 0;
}

int imagelist_parse_date(const char *s, int64_t *ret) {
        struct tm tm = { 0 };
        const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end || strlen(s) != 20)
                return -EINVAL;
        time_t t = timegm(&tm);
        if (t == (time_t)-1)
                return -EINVAL;
        *ret = (int64_t)t;
        return 0;
}

static int get_date(json_object *o, const char *key, bool required, int64_t *ret, const char *where, struct hv_error *e) {
        char buf[64];
        int r = get_str(o, key, required, buf, sizeof(buf), where, e);
        *ret = 0;
        if (r < 0 || !buf[0])
                return r;
        if (imagelist_parse_date(buf, ret) < 0)
                return bad(e, where, "%s \"%s\" is not a date of the form 2026-11-26T12:00:00Z", key, buf);
        return 0;
}

static bool http_uri(const char *u) {
        return strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0;
}

static int parse_image(json_object *wrap, unsigned idx, struct il_image *img, struct hv_error *e) {
        char where[64];
        snprintf(where, sizeof(where), "image %u", idx + 1);
        json_object *o = json_object_is_type(wrap, json_type_object) ? field(wrap, "hv:image") : NULL;
        if (!o || !json_object_is_type(o, json_type_object))
                return bad(e, where, "not an object {\"hv:image\": {…}}");
        char sha[160];
        int r;
        if ((r = get_str(o, "dc:identifier", true, img->identifier, sizeof(img->identifier), where, e)) < 0)
                return r;
        snprintf(where, sizeof(where), "image %u (%.40s)", idx + 1, img->identifier);
        for (const char *p = img->identifier; *p; p++)
                if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
                        return bad(e, where, "dc:identifier may hold only letters, digits, '-', '_' and '.'");
        if ((r = get_str(o, "dc:title", false, img->title, sizeof(img->title), where, e)) < 0 ||
            (r = get_str(o, "hv:uri", true, img->uri, sizeof(img->uri), where, e)) < 0 ||
            (r = get_u64(o, "hv:size", true, &img->size, where, e)) < 0 ||
            (r = get_str(o, "sl:checksum:sha512", true, sha, sizeof(sha), where, e)) < 0 ||
            (r = get_str(o, "hv:version", true, img->version, sizeof(img->version), where, e)) < 0 ||
            (r = get_str(o, "hv:format", false, img->format, sizeof(img->format), where, e)) < 0 ||
            (r = get_str(o, "sl:arch", false, img->arch, sizeof(img->arch), where, e)) < 0 ||
            (r = get_str(o, "sl:os", false, img->os, sizeof(img->os), where, e)) < 0 ||
            (r = get_str(o, "sl:osversion", false, img->osversion, sizeof(img->osversion), where, e)) < 0 ||
            (r = get_str(o, "hv:hypervisor", false, img->hypervisor, sizeof(img->hypervisor), where, e)) < 0 ||
            (r = get_u64(o, "hv:core_minimum", false, &img->core_minimum, where, e)) < 0 ||
            (r = get_u64(o, "hv:ram_minimum", false, &img->ram_minimum, where, e)) < 0 ||
            (r = get_date(o, "dc:date:expires", false, &img->expires, where, e)) < 0)
                return r;
        if (!http_uri(img->uri))
                return bad(e, where, "hv:uri must be http:// or https://");
        if (img->size == 0)
                return bad(e, where, "hv:size is 0");
        if (strlen(sha) != HV_SHA512_HEX || strspn(sha, "0123456789abcdefABCDEF") != HV_SHA512_HEX)
                return bad(e, where, "sl:checksum:sha512 is not 128 hexadecimal digits");
        for (size_t i = 0; i < HV_SHA512_HEX; i++)
                img->sha512[i] = (char)tolower((unsigned char)sha[i]);
        img->sha512[HV_SHA512_HEX] = 0;
        return 0;
}

static int parse_head(json_object *o, json_object *x509, struct imagelist *l, struct hv_error *e) {
        int r;
        if ((r = get_str(o, "dc:identifier", true, l->identifier, sizeof(l->identifier), "list", e)) < 0 ||
            (r = get_str(o, "dc:title", false, l->title, sizeof(l->title), "list", e)) < 0 ||
            (r = get_str(o, "hv:version", true, l->version, sizeof(l->version), "list", e)) < 0 ||
            (r = get_str(o, "hv:uri", false, l->uri, sizeof(l->uri), "list", e)) < 0 ||
            (r = get_date(o, "dc:date:created", true, &l->created, "list", e)) < 0 ||
            (r = get_date(o, "dc:date:expires", true, &l->expires, "list", e)) < 0 ||
            (r = get_str(x509, "hv:dn", true, l->endorser.dn, sizeof(l->endorser.dn), "endorser", e)) < 0 ||
            (r = get_str(x509, "hv:ca", true, l->endorser.ca, sizeof(l->endorser.ca), "endorser", e)) < 0 ||
            (r = get_str(x509, "hv:email", false, l->endorser.email, sizeof(l->endorser.email), "endorser", e)) < 0 ||
            (r = get_str(x509, "dc:creator", false, l->endorser.creator, sizeof(l->endorser.creator), "endorser", e)) < 0)
                return r;
        return 0;
}

int imagelist_parse(const char *json, size_t len, struct imagelist *l, struct hv_error *e) {
        *l = (struct imagelist){ 0 };
        if (len > INT32_MAX)
                return bad(e, "body", "too large");
        json_tokener *tok = json_tokener_new_ex(32);
        if (!tok)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        /* strict JSON, and valid UTF-8 only: every string may go out in a D-Bus reply */
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        json_object *root = json_tokener_parse_ex(tok, json, (int)len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t used = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!root || jerr != json_tokener_success) {
                json_object_put(root);
                return bad(e, "body", "not JSON (%s, near byte %zu)", json_tokener_error_desc(jerr), used);
        }
        for (size_t i = used; i < len; i++)
                if (!isspace((unsigned char)json[i])) {
                        json_object_put(root);
                        return bad(e, "body", "trailing data after the JSON object at byte %zu", i);
                }
        int r = 0;
        json_object *o = json_object_is_type(root, json_type_object) ? field(root, "hv:imagelist") : NULL;
        json_object *x509 = NULL, *images = NULL;
        if (!o || !json_object_is_type(o, json_type_object))
                r = bad(e, "body", "no top-level object \"hv:imagelist\"");
        if (r >= 0) {
                json_object *end = field(o, "hv:endorser");
                x509 = end && json_object_is_type(end, json_type_object) ? field(end, "hv:x509") : NULL;
                if (!x509 || !json_object_is_type(x509, json_type_object))
                        r = bad(e, "list", "hv:endorser/hv:x509 is missing");
        }
        if (r >= 0)
                r = parse_head(o, x509, l, e);
        if (r >= 0) {
                images = field(o, "hv:images");
                if (!images || !json_object_is_type(images, json_type_array))
                        r = bad(e, "list", "hv:images is missing or not a list");
        }
        size_t n = r >= 0 ? json_object_array_length(images) : 0;
        if (r >= 0 && n > IL_MAX_IMAGES)
                r = bad(e, "list", "%zu images, at most %u", n, IL_MAX_IMAGES);
        if (r >= 0 && n && !(l->images = calloc(n, sizeof(*l->images))))
                r = hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = parse_image(json_object_array_get_idx(images, i), (unsigned)i, &l->images[i], e);
                for (size_t k = 0; r >= 0 && k < i; k++)
                        if (strcmp(l->images[k].identifier, l->images[i].identifier) == 0)
                                r = bad(e, "list", "image %s appears twice", l->images[i].identifier);
                l->n_images = (unsigned)i + 1;
        }
        json_object_put(root);
        return r < 0 ? r : 0;
}

void imagelist_free(struct imagelist *l) {
        free(l->images);
        l->images = NULL;
        l->n_images = 0;
}

int imagelist_check_update(const struct imagelist *prev, const struct imagelist *next, int64_t now, struct hv_error *e) {
        char a[32], b[32];
        struct tm tm;
        if (next->expires <= now) {
                time_t t = (time_t)next->expires;
                strftime(a, sizeof(a), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
                return hv_fail(e, HV_E_LIST_EXPIRED, EKEYEXPIRED, "the image list %s expired at %s (dc:date:expires)", next->identifier, a);
        }
        if (next->created > now + SKEW_SEC) {
                time_t t = (time_t)next->created;
                strftime(a, sizeof(a), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
                return hv_fail(e, HV_E_LIST_INVALID, EBADMSG, "the image list %s says it was created at %s, in the future "
                               "(dc:date:created; check this host's clock)", next->identifier, a);
        }
        if (!prev)
                return 0;
        if (strcmp(prev->identifier, next->identifier) != 0)
                return hv_fail(e, HV_E_LIST_IDENTIFIER, EBADMSG, "the subscription's list is %s, this one is %s (dc:identifier): refused",
                               prev->identifier, next->identifier);
        int v = strverscmp(next->version, prev->version);
        if (next->created < prev->created || v < 0) {
                time_t t1 = (time_t)prev->created, t2 = (time_t)next->created;
                strftime(a, sizeof(a), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t1, &tm));
                strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t2, &tm));
                return hv_fail(e, HV_E_LIST_ROLLBACK, EBADMSG, "the image list %s went back: version %s created %s, after version %s "
                               "created %s (a replayed or rolled-back list): refused", next->identifier, next->version, b, prev->version, a);
        }
        return v == 0 ? 1 : 0;
}

int imagelist_check_claim(const struct imagelist *l, const char *signer_dn, const char *issuer_dn, struct hv_error *e) {
        if (strcmp(l->endorser.dn, signer_dn) != 0 || strcmp(l->endorser.ca, issuer_dn) != 0)
                return hv_fail(e, HV_E_ENDORSER, EPERM, "the list says its endorser is \"%s\" (CA \"%s\"), but it was signed by \"%s\" "
                               "(CA \"%s\")", l->endorser.dn, l->endorser.ca, signer_dn, issuer_dn);
        return 0;
}

int imagelist_alias(const char *prefix, const struct il_image *img, char *buf, size_t len) {
        size_t pl = strlen(prefix), il = strlen(img->identifier);
        /* PREFIX-IDENT: the '-' unless the prefix ends in a separator already */
        const char *sep = pl && !strchr("-._", prefix[pl - 1]) ? "-" : "";
        int n = snprintf(buf, len, "%s%s%.*s", prefix, sep, (int)(pl + il > 40 ? 8 : il), img->identifier);
        return n > 0 && (size_t)n < len && (size_t)n <= HV_NAME_MAX && hv_name_valid(buf) ? 0 : -EINVAL;
}

int imagelist_image_name(const char *prefix, const struct il_image *img, char *buf, size_t len) {
        char alias[HV_NAME_MAX + 1];
        if (imagelist_alias(prefix, img, alias, sizeof(alias)) < 0)
                return -EINVAL;
        char v[IL_TEXT_MAX];
        snprintf(v, sizeof(v), "%s", img->version);
        for (char *p = v; *p; p++)
                if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
                        *p = '-';
        int n = snprintf(buf, len, "%s-%s", alias, v);
        return n > 0 && (size_t)n < len && (size_t)n <= HV_NAME_MAX && hv_name_valid(buf) ? 0 : -EINVAL;
}

bool imagelist_format_supported(const struct il_image *img) {
        return !img->format[0] || strcasecmp(img->format, "raw") == 0;
}
