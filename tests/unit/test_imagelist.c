/* Unit tests of imagelist.c (the list body, the update rules, the names) and smime.c (the
 * signature, against a throwaway CA made by tests/unit/imagelist-ca.sh with openssl). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imagelist.h"
#include "smime.h"

#define SHA "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"

static const char *good_list(char *buf, size_t len, const char *size, const char *extra) {
        snprintf(buf, len,
                 "{\"hv:imagelist\": {\"dc:identifier\": \"0b0f1c54-2a4e-4a0e-9a64-000000000001\", \"dc:title\": \"t\","
                 " \"dc:date:created\": \"2026-11-20T10:00:00Z\", \"dc:date:expires\": \"2027-01-01T00:00:00Z\","
                 " \"hv:version\": \"3\", \"ad:unknown\": [1, {\"x\": null}],"
                 " \"hv:endorser\": {\"hv:x509\": {\"hv:dn\": \"/DC=org/CN=E\", \"hv:ca\": \"/DC=org/CN=CA\", \"dc:creator\": \"E\"}},"
                 " \"hv:images\": [{\"hv:image\": {\"dc:identifier\": \"img-1\", \"hv:uri\": \"https://h/x.img.gz\","
                 " \"hv:size\": %s, \"sl:checksum:sha512\": \"%s\", \"hv:version\": \"2.1\", \"sl:os\": \"Linux\","
                 " \"sl:comments\": \"\"%s}}]}}\r\n",
                 size, SHA, extra);
        return buf;
}

static void test_parse(void **state) {
        (void)state;
        char buf[4096];
        struct imagelist l;
        struct hv_error e = { 0 };
        good_list(buf, sizeof(buf), "1234", "");
        assert_int_equal(imagelist_parse(buf, strlen(buf), &l, &e), 0);
        assert_string_equal(l.identifier, "0b0f1c54-2a4e-4a0e-9a64-000000000001");
        assert_int_equal(l.n_images, 1);
        assert_int_equal(l.images[0].size, 1234);
        assert_string_equal(l.images[0].sha512, SHA);
        assert_string_equal(l.endorser.dn, "/DC=org/CN=E");
        int64_t t;
        assert_int_equal(imagelist_parse_date("2026-11-20T10:00:00Z", &t), 0);
        assert_int_equal(l.created, t);
        imagelist_free(&l);
        /* AppDB writes numbers as strings */
        good_list(buf, sizeof(buf), "\"121243136\"", ", \"hv:core_minimum\": \"2\", \"hv:ram_minimum\": 2048");
        assert_int_equal(imagelist_parse(buf, strlen(buf), &l, &e), 0);
        assert_int_equal(l.images[0].size, 121243136);
        assert_int_equal(l.images[0].core_minimum, 2);
        assert_int_equal(l.images[0].ram_minimum, 2048);
        imagelist_free(&l);
        /* refusals, each naming what is wrong */
        struct { const char *size, *extra, *why; } badc[] = {
                { "-1", "", "hv:size is not a byte count" },
                { "\"12a\"", "", "is not a whole number" },
                { "1.5", "", "neither a number" },
                { "0", "", "hv:size is 0" },
                { "1", ", \"dc:date:expires\": \"tomorrow\"", "is not a date" },
                { "1", ", \"hv:version\": 3", "" }, /* a duplicate key: json-c keeps the last: not a string */
        };
        for (size_t i = 0; i < ELEMENTSOF(badc); i++) {
                e = (struct hv_error){ 0 };
                good_list(buf, sizeof(buf), badc[i].size, badc[i].extra);
                int r = imagelist_parse(buf, strlen(buf), &l, &e);
                imagelist_free(&l);
                if (r != -EBADMSG || e.kind != HV_E_LIST_INVALID || !strstr(e.msg, badc[i].why))
                        fail_msg("case %zu: %d %s", i, r, e.msg);
        }
        const char *notlists[] = { "", "not json", "[1,2]", "{\"hv:imagelist\": 5}", "{\"hv:imagelist\": {}}", "{\"a\":1} trailing",
                                   "{\"hv:imagelist\": {\"dc:identifier\": \"x\"}}",
                                   "{\"hv:imagelist\": {\"dc:title\": \"\xff\xfe\"}}" /* not UTF-8 */, NULL };
        for (size_t i = 0; notlists[i]; i++) {
                e = (struct hv_error){ 0 };
                assert_int_equal(imagelist_parse(notlists[i], strlen(notlists[i]), &l, &e), -EBADMSG);
                assert_int_equal(e.kind, HV_E_LIST_INVALID);
                imagelist_free(&l);
        }
        /* a bad digest, a file:// download, a control character, deep nesting */
        char other[4096];
        snprintf(other, sizeof(other), "%s", good_list(buf, sizeof(buf), "1", ""));
        char *p = strstr(other, SHA);
        p[5] = 'g';
        e = (struct hv_error){ 0 };
        assert_int_equal(imagelist_parse(other, strlen(other), &l, &e), -EBADMSG);
        assert_non_null(strstr(e.msg, "128 hexadecimal"));
        imagelist_free(&l);
        snprintf(other, sizeof(other), "%s", good_list(buf, sizeof(buf), "1", ""));
        p = strstr(other, "https://h/");
        memcpy(p, "file://h/ ", 10);
        e = (struct hv_error){ 0 };
        assert_int_equal(imagelist_parse(other, strlen(other), &l, &e), -EBADMSG);
        imagelist_free(&l);
        char deep[400] = "";
        for (int i = 0; i < 100; i++)
                strcat(deep, "[");
        e = (struct hv_error){ 0 };
        assert_int_equal(imagelist_parse(deep, strlen(deep), &l, &e), -EBADMSG);
        imagelist_free(&l);
}

static void test_update_rules(void **state) {
        (void)state;
        struct imagelist a = { .identifier = "L", .version = "1.9", .created = 1000, .expires = 5000 };
        struct imagelist b = a;
        struct hv_error e = { 0 };
        assert_int_equal(imagelist_check_update(NULL, &a, 2000, &e), 0);
        assert_int_equal(imagelist_check_update(&a, &b, 2000, &e), 1); /* the same again: a warning */
        snprintf(b.version, sizeof(b.version), "1.10");
        b.created = 1500;
        assert_int_equal(imagelist_check_update(&a, &b, 2000, &e), 0); /* 1.10 after 1.9 */
        e = (struct hv_error){ 0 };
        assert_true(imagelist_check_update(&b, &a, 2000, &e) < 0);
        assert_int_equal(e.kind, HV_E_LIST_ROLLBACK);
        e = (struct hv_error){ 0 };
        assert_true(imagelist_check_update(&a, &b, 6000, &e) < 0);
        assert_int_equal(e.kind, HV_E_LIST_EXPIRED);
        b.created = 2000 + 301;
        e = (struct hv_error){ 0 };
        assert_true(imagelist_check_update(&a, &b, 2000, &e) < 0);
        assert_int_equal(e.kind, HV_E_LIST_INVALID);
        b.created = 1500;
        snprintf(b.identifier, sizeof(b.identifier), "M");
        e = (struct hv_error){ 0 };
        assert_true(imagelist_check_update(&a, &b, 2000, &e) < 0);
        assert_int_equal(e.kind, HV_E_LIST_IDENTIFIER);
        snprintf(a.endorser.dn, sizeof(a.endorser.dn), "/CN=E");
        snprintf(a.endorser.ca, sizeof(a.endorser.ca), "/CN=CA");
        assert_int_equal(imagelist_check_claim(&a, "/CN=E", "/CN=CA", &e), 0);
        e = (struct hv_error){ 0 };
        assert_int_equal(imagelist_check_claim(&a, "/CN=F", "/CN=CA", &e), -EPERM);
        assert_int_equal(e.kind, HV_E_ENDORSER);
}

static void test_names(void **state) {
        (void)state;
        struct il_image img = { .identifier = "0b0f1c54-2a4e-4a0e-9a64-000000000001", .version = "2024.11 beta/1" };
        char n[80];
        assert_int_equal(imagelist_alias("", &img, n, sizeof(n)), 0);
        assert_string_equal(n, "0b0f1c54-2a4e-4a0e-9a64-000000000001");
        assert_int_equal(imagelist_image_name("", &img, n, sizeof(n)), 0);
        assert_string_equal(n, "0b0f1c54-2a4e-4a0e-9a64-000000000001-2024.11-beta-1");
        assert_int_equal(imagelist_alias("cern-", &img, n, sizeof(n)), 0);
        assert_string_equal(n, "cern-0b0f1c54"); /* past 40: the first 8 characters */
        assert_int_equal(imagelist_alias("cern", &img, n, sizeof(n)), 0);
        assert_string_equal(n, "cern-0b0f1c54-2a4e-4a0e-9a64-000000000001"); /* the '-' added; 40 in all: whole */
        assert_int_equal(imagelist_alias("cern7", &img, n, sizeof(n)), 0);
        assert_string_equal(n, "cern7-0b0f1c54");
        assert_int_equal(imagelist_alias("-x", &img, n, sizeof(n)), -EINVAL);
        snprintf(img.version, sizeof(img.version), "%070d", 1);
        assert_int_equal(imagelist_image_name("", &img, n, sizeof(n)), -EINVAL);
        assert_true(imagelist_format_supported(&(struct il_image){ .format = "RAW" }));
        assert_true(imagelist_format_supported(&(struct il_image){ .format = "" }));
        assert_false(imagelist_format_supported(&(struct il_image){ .format = "OVA" }));
}

static char *slurp(const char *path, size_t *len) {
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        char *buf = malloc(1 << 20);
        assert_non_null(buf);
        *len = fread(buf, 1, (1 << 20) - 1, f);
        buf[*len] = 0;
        fclose(f);
        return buf;
}

/* The fixture (imagelist-ca.sh): a CA, an endorser, a good list, a tampered one, one signed by
 * a certificate of another CA, one by a revoked certificate, one by a certificate not for
 * S/MIME. */
static void test_smime(void **state) {
        (void)state;
        const char *dir = getenv("HVWG_IL_FIXTURE");
        if (!dir)
                skip();
        char path[512], cadir[512];
        snprintf(cadir, sizeof(cadir), "%s/cadir", dir);
        struct { const char *file; int kind; const char *why; } cases[] = {
                { "good.smime", 0, "" },
                { "tampered.smime", HV_E_SIGNATURE, "does not verify" },
                { "otherca.smime", HV_E_SIGNATURE, "unable to get local issuer" },
                { "revoked.smime", HV_E_REVOKED, "revoked" },
                { "nosmime.smime", HV_E_SIGNATURE, "unsuitable certificate purpose" },
                { "good.json", HV_E_SIGNATURE, "not an S/MIME" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, cases[i].file);
                size_t len;
                char *msg = slurp(path, &len);
                struct smime_signed s;
                struct hv_error e = { 0 };
                int r = smime_verify(msg, len, cadir, &s, &e);
                if (cases[i].kind == 0) {
                        if (r < 0)
                                fail_msg("%s: %s", cases[i].file, e.msg);
                        assert_string_equal(s.signer_dn, "/DC=org/DC=example/CN=Endorser One/emailAddress=e@example.org");
                        assert_string_equal(s.issuer_dn, "/DC=org/DC=example/CN=Test CA");
                        struct imagelist l;
                        assert_int_equal(imagelist_parse(s.body, s.body_len, &l, &e), 0);
                        assert_int_equal(imagelist_check_claim(&l, s.signer_dn, s.issuer_dn, &e), 0);
                        imagelist_free(&l);
                } else if (r >= 0 || (int)e.kind != cases[i].kind || !strstr(e.msg, cases[i].why))
                        fail_msg("%s: %d kind %d: %s", cases[i].file, r, e.kind, e.msg);
                smime_signed_free(&s);
                free(msg);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_update_rules),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_smime),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
