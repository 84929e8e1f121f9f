/* imagelist.h: HEPiX image lists (pure: no I/O). The verified body of a signed list, a JSON
 * object {"hv:imagelist": {…}}, parsed with json-c into a struct; the rules for accepting a
 * list after the one we have; the local names of its images. */
#pragma once
#include <stdint.h>
#include <time.h>

#include "names.h"
#include "util.h"

#define IL_MAX_IMAGES 512
#define IL_ID_MAX 64     /* dc:identifier: a UUID in practice */
#define IL_TEXT_MAX 256  /* titles, versions, OS names */
#define IL_DN_MAX 512    /* X.509 DNs in OpenSSL's one-line form */
#define IL_URI_MAX 2048

struct il_image {
        char identifier[IL_ID_MAX];
        char title[IL_TEXT_MAX];
        char uri[IL_URI_MAX];
        uint64_t size;                    /* hv:size: bytes of the download */
        char sha512[HV_SHA512_HEX + 1];   /* of the download, lower-case hex */
        char version[IL_TEXT_MAX];
        char format[32];                  /* hv:format, "" when absent */
        char arch[32], os[64], osversion[64], hypervisor[64];
        uint64_t core_minimum, ram_minimum; /* 0: not given */
        int64_t expires;                  /* per-image dc:date:expires (AppDB); 0: none */
};

struct imagelist {
        char identifier[IL_ID_MAX];
        char title[IL_TEXT_MAX];
        char version[IL_TEXT_MAX];
        char uri[IL_URI_MAX];
        int64_t created, expires;        /* seconds since the epoch (UTC) */
        struct {
                char dn[IL_DN_MAX], ca[IL_DN_MAX];
                char email[IL_TEXT_MAX], creator[IL_TEXT_MAX];
        } endorser;
        struct il_image *images;
        unsigned n_images;
};

/* Parses the JSON body (at most len bytes; not NUL-terminated necessarily). Required: the list's
 * dc:identifier, dc:date:created, dc:date:expires, hv:version, hv:endorser/hv:x509 hv:dn and
 * hv:ca, hv:images; each image's dc:identifier, hv:uri (http/https), hv:size, sl:checksum:sha512,
 * hv:version. Numbers may be JSON numbers or strings of digits; unknown keys are ignored.
 * -EBADMSG with e (kind HV_E_LIST_INVALID) naming the field. The list is freed with
 * imagelist_free (also on failure). */
int imagelist_parse(const char *json, size_t len, struct imagelist *l, struct hv_error *e);
void imagelist_free(struct imagelist *l);
/* "%Y-%m-%dT%H:%M:%SZ" (UTC) → seconds. -EINVAL if not exactly that. */
int imagelist_parse_date(const char *s, int64_t *ret);

/* Whether `next` may follow `prev` (NULL: the first list of a subscription) at time now:
 * not expired (ListExpired), not created in the future (ListInvalid, 5 minutes of clock skew
 * allowed), the same dc:identifier (ListIdentifierChanged), not older by dc:date:created or
 * hv:version (ListRollback). 1: the same version again (accept, warn); 0: newer; <0 refused. */
int imagelist_check_update(const struct imagelist *prev, const struct imagelist *next, int64_t now, struct hv_error *e);
/* Whether the list's own endorser claim names the certificate that signed it. 0 or -EPERM
 * (EndorserMismatch). */
int imagelist_check_claim(const struct imagelist *l, const char *signer_dn, const char *issuer_dn, struct hv_error *e);

/* Local names: the alias PREFIX-IDENT (IDENT the image's dc:identifier, its first 8
 * characters where the whole would be longer than 40; no '-' added after a prefix that ends in
 * '-', '.' or '_'), and the version's PREFIX-IDENT-VERSION
 * (characters outside [A-Za-z0-9._-] of the version become '-'). -EINVAL when the result is
 * not a valid image name (too long, bad prefix). */
int imagelist_alias(const char *prefix, const struct il_image *img, char *buf, size_t len);
int imagelist_image_name(const char *prefix, const struct il_image *img, char *buf, size_t len);
/* Whether hvwgd can import the image's format: absent, or "raw" in any case. */
bool imagelist_format_supported(const struct il_image *img);
