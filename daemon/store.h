/* store.h: the image store: ImageRoot/NAME.raw + NAME.meta, work in ImageRoot/.tmp. */
#pragma once
#include "contents.h"
#include "names.h"
#include "mbr.h"

/* An image of a subscription's list (subscriptions.c): where it came from. */
struct image_origin {
        char subscription[24];   /* the subscription's id, "" for any other image */
        char identifier[64];     /* the image's dc:identifier in the list */
        char version[256];       /* its hv:version */
};

struct image {
        char name[HV_NAME_MAX + 1];
        uint64_t size;          /* virtual size */
        uint64_t allocated;     /* bytes allocated on disk */
        uint64_t created_usec;
        uint64_t compressed_size;
        uint64_t inode;         /* ties the metadata to the raw file it describes */
        char sha512[HV_SHA512_HEX + 1];
        char etag[256];          /* the source's validators (http), for a conditional re-fetch */
        char last_modified[64];
        char *source;
        struct image_origin origin;
        bool expired;            /* runtime: its list no longer has it, or expired (CreateMachine refuses it) */
        struct mbr_table *table; /* NULL until inspected */
        struct contents *contents; /* what its filesystems hold (contents_ext.c); NULL: not scanned */
        struct image *next;
};

struct store {
        char root[512];
        char tmp[HV_STORE_DIR_MAX];
        struct image *images;
};

/* An image record with an empty partition table; NULL: out of memory. */
struct image *image_new(const char *name, const char *source);
void image_free(struct image *img);
/* Metadata text <-> struct: pure, tested directly. */
char *image_meta_format(const struct image *img);
int image_meta_parse(struct image *img, const char *text);

/* Creates the directories, empties .tmp (logging what it removes) and loads the index. */
int store_open(struct store *s, const char *root, struct hv_error *e);
void store_close(struct store *s);
struct image *store_find(struct store *s, const char *name);
/* Takes ownership; replaces a record of the same name. */
void store_insert(struct store *s, struct image *img);
/* Renames the image away (instant), drops it from the index, deletes the data off-thread. The
 * caller has checked that no machine or job uses it. */
int store_remove(struct store *s, const char *name, struct hv_error *e);
/* Worker side: the raw file at tmp_path (already fsynced) becomes NAME.raw with its metadata.
 * Fails with ImageExists when the name is taken and !replace. */
int store_publish(const char *root, const char *tmp_path, struct image *img, bool replace, struct hv_error *e);
