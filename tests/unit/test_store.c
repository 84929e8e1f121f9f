/* Unit tests of the image metadata format (store.c): a round trip, and a reader that trusts
 * nothing it did not write: injected lines, unknown and duplicate keys, malformed values. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

static void test_meta_roundtrip(void **state) {
        (void)state;
        struct image a = { .size = 1 << 30, .compressed_size = 12345, .created_usec = 99, .inode = 42 };
        strcpy(a.name, "sl7");
        memset(a.sha512, 'a', 128);
        a.source = strdup("https://example.org/a b.gz");
        a.table = calloc(1, sizeof(*a.table));
        a.table->n = 2;
        a.table->parts[0] = (struct mbr_part){ .number = 1, .type = 0x83, .bootable = true, .offset = 1048576, .size = 4096 };
        strcpy(a.table->parts[0].fs, "ext4");
        a.table->parts[1] = (struct mbr_part){ .number = 5, .type = 0x82, .offset = 8192, .size = 512 };
        strcpy(a.etag, "\"33a64df5\"");
        strcpy(a.last_modified, "Wed, 25 Nov 2026 10:00:00 GMT");
        char *text = image_meta_format(&a);
        assert_non_null(text);
        struct image b = { 0 };
        assert_int_equal(image_meta_parse(&b, text), 0);
        assert_string_equal(b.source, a.source);
        assert_string_equal(b.sha512, a.sha512);
        assert_int_equal(b.size, a.size);
        assert_int_equal(b.compressed_size, 12345);
        assert_int_equal(b.created_usec, 99);
        assert_int_equal(b.inode, 42);
        assert_string_equal(b.etag, "\"33a64df5\"");
        assert_string_equal(b.last_modified, "Wed, 25 Nov 2026 10:00:00 GMT");
        assert_non_null(b.table);
        assert_int_equal(b.table->n, 2);
        assert_int_equal(b.table->parts[0].type, 0x83);
        assert_true(b.table->parts[0].bootable);
        assert_string_equal(b.table->parts[0].fs, "ext4");
        assert_string_equal(b.table->parts[1].fs, "");
        assert_int_equal(b.table->parts[1].number, 5);
        free(text);
        free(a.source);
        free(a.table);
        free(b.source);
        free(b.table);
        struct image c = { 0 };
        assert_true(image_meta_parse(&c, "partition=1 2 3\n") < 0);
        assert_true(image_meta_parse(&c, "table=gpt\n") < 0);
        free(c.table);
        free(c.source);
}

static void free_img(struct image *i) {
        free(i->source);
        free(i->table);
        memset(i, 0, sizeof(*i));
}

static void test_meta_refusals(void **state) {
        (void)state;
        char sha[129];
        memset(sha, 'b', 128);
        sha[128] = 0;
        char good[512];
        snprintf(good, sizeof(good), "name=x\nsource=file:///s/x.gz\nsha512=%s\nsize=512\ntable=mbr\npartition=1 131 1 0 1048576 4096 ext4\n",
                 sha);
        struct image img = { 0 };
        assert_int_equal(image_meta_parse(&img, good), 0);
        assert_int_equal(img.table->n, 1);
        free_img(&img);
        static const char *const bad[] = {
                "name=x\nname=x\n",                         /* a key twice */
                "size=1\nsize=2\n",
                "table=mbr\ntable=mbr\n",
                "owner=root\n",                             /* unknown */
                "size=12abc\n",                             /* not a number */
                "size=-1\n",
                "size=99999999999999999999999\n",
                "sha512=xyz\n",
                "name=../x\n",
                "partition=1 131 1 0 0 4096 ext4\n",        /* before table= */
                "table=mbr\npartition=1 131 2 0 0 4096 ext4\n",
                "table=mbr\npartition=1 131 1 0 0 4096 ext4 extra\n",
                "table=mbr\npartition=0 131 1 0 0 4096 ext4\n",
                "source=a\rb\n",
                "novalue\n",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (image_meta_parse(&img, bad[i]) >= 0)
                        fail_msg("accepted: %s", bad[i]);
                free_img(&img);
        }
        /* the name must be the file's */
        strcpy(img.name, "other");
        assert_true(image_meta_parse(&img, "name=x\n") < 0);
        free_img(&img);
}

/* A source with a newline (the injection of the hostile-inputs report) is never written. */
static void test_meta_writer_refuses_injection(void **state) {
        (void)state;
        struct image a = { 0 };
        strcpy(a.name, "x");
        a.source = strdup("file:///s/x\ntable=mbr\npartition=9 142 1 0 0 512 -");
        errno = 0;
        assert_null(image_meta_format(&a));
        assert_int_equal(errno, EINVAL);
        free(a.source);
        a.source = strdup("file:///s/x.gz");
        strcpy(a.etag, "\"x\"\nsha512=forged"); /* a validator from a hostile server */
        errno = 0;
        assert_null(image_meta_format(&a));
        assert_int_equal(errno, EINVAL);
        a.etag[0] = 0;
        char *t = image_meta_format(&a);
        assert_non_null(t);
        free(t);
        free(a.source);
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

static struct image *test_image(const char *name) {
        struct image *img = calloc(1, sizeof(*img));
        assert_non_null(img);
        snprintf(img->name, sizeof(img->name), "%s", name);
        memset(img->sha512, 'b', 128);
        img->source = strdup("file:///src/x.gz");
        img->table = calloc(1, sizeof(*img->table));
        img->size = 4;
        return img;
}

/* store_publish: the temp file becomes NAME.raw with NAME.meta beside it (recording its inode),
 * the temp names are gone; a second publish of the name is ImageExists (nothing moved, the first
 * image intact) unless it replaces. */
static void test_publish(void **state) {
        (void)state;
        char root[] = "/tmp/hvwg-store-XXXXXX";
        assert_non_null(mkdtemp(root));
        char tmp[600], raw[600], meta[600], text[64];
        snprintf(tmp, sizeof(tmp), "%s/new.tmp", root);
        snprintf(raw, sizeof(raw), "%s/img.raw", root);
        snprintf(meta, sizeof(meta), "%s/img.meta", root);
        write_file(tmp, "one\n");
        struct hv_error e = { 0 };
        struct image *a = test_image("img");
        assert_int_equal(store_publish(root, tmp, a, false, &e), 0);
        struct stat st;
        assert_int_equal(stat(raw, &st), 0);
        assert_int_equal(st.st_ino, a->inode);
        assert_int_equal(access(tmp, F_OK), -1);
        char *m = NULL;
        assert_int_equal(hv_read_file(meta, 1 << 16, &m, NULL), 0);
        struct image back = { 0 };
        assert_int_equal(image_meta_parse(&back, m), 0);
        assert_string_equal(back.name, "img");
        assert_int_equal(back.inode, st.st_ino);
        free(m);
        free(back.source);
        free(back.table);

        write_file(tmp, "two\n");
        struct image *b = test_image("img");
        memset(&e, 0, sizeof(e));
        assert_true(store_publish(root, tmp, b, false, &e) < 0);
        assert_int_equal(e.kind, HV_E_IMAGE_EXISTS);
        FILE *f = fopen(raw, "r");
        assert_non_null(fgets(text, sizeof(text), f));
        fclose(f);
        assert_string_equal(text, "one\n"); /* the first image is intact */
        char tmeta[620];
        snprintf(tmeta, sizeof(tmeta), "%s.meta", tmp);
        assert_int_equal(access(tmeta, F_OK), -1); /* its temp metadata was removed */
        assert_int_equal(store_publish(root, tmp, b, true, &e), 0); /* replace */
        f = fopen(raw, "r");
        assert_non_null(fgets(text, sizeof(text), f));
        fclose(f);
        assert_string_equal(text, "two\n");
        image_free(a);
        image_free(b);
        unlink(raw);
        unlink(meta);
        assert_int_equal(rmdir(root), 0); /* nothing else was left behind */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_meta_roundtrip),
                cmocka_unit_test(test_meta_refusals),
                cmocka_unit_test(test_meta_writer_refuses_injection),
                cmocka_unit_test(test_publish),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
