/* context_iso.c: the context ISO, written with libisofs (no genisoimage/xorriso fork). */
#define _GNU_SOURCE
#include "context_iso.h"

#include <errno.h>
#include <fcntl.h>
/* libisofs hands the image out as a libburn burn_source; we read it ourselves, without libburn */
#define LIBISOFS_WITHOUT_LIBBURN 1
#include <libisofs/libisofs.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ISO_BLOCK 2048

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_r;

static void init(void) {
        /* bit0: no locale from the environment; names are bytes as given */
        init_r = iso_init_with_flag(1);
        if (init_r >= 0) /* messages: none to stderr, the caller gets the error code */
                iso_set_msgs_severities("NEVER", "NEVER", "hvwgd");
}

static void burn_source_release(struct burn_source *src) {
        if (src && --src->refcount <= 0) {
                if (src->free_data)
                        src->free_data(src);
                free(src);
        }
}

HV_DEFINE_CLEANUP(IsoImage *, iso_image_unref)
HV_DEFINE_CLEANUP(IsoWriteOpts *, iso_write_opts_free)

static int iso_fail(struct hv_error *e, int code, const char *what) {
        return hv_fail(e, HV_E_ERRNO, code == (int)ISO_OUT_OF_MEM ? ENOMEM : EIO, "building the context disk: %s: %s (libisofs 0x%x)", what,
                       iso_error_to_msg(code), (unsigned)code);
}

/* The image in memory: the files at the root, read-only for everyone in the guest. */
static int make_image(const struct context_files *cf, IsoImage **ret, struct hv_error *e) {
        IsoImage *image = NULL;
        int r = iso_image_new(CONTEXT_LABEL, &image);
        if (r < 0)
                return iso_fail(e, r, "a new image");
        iso_image_set_volume_id(image, CONTEXT_LABEL);
        iso_image_set_application_id(image, "hvwgd");
        IsoDir *root = iso_image_get_root(image);
        for (size_t i = 0; i < cf->n; i++) {
                /* the stream owns a copy: cf stays the caller's */
                unsigned char *copy = malloc(cf->f[i].len ? cf->f[i].len : 1);
                IsoStream *stream = NULL;
                IsoFile *file = NULL;
                if (!copy) {
                        iso_image_unref(image);
                        return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
                }
                memcpy(copy, cf->f[i].data, cf->f[i].len);
                if ((r = iso_memory_stream_new(copy, cf->f[i].len, &stream)) < 0) {
                        free(copy);
                        iso_image_unref(image);
                        return iso_fail(e, r, cf->f[i].name);
                }
                /* the new file takes our reference to the stream over */
                r = iso_tree_add_new_file(root, cf->f[i].name, stream, &file);
                if (r < 0) {
                        iso_stream_unref(stream);
                        iso_image_unref(image);
                        return iso_fail(e, r, cf->f[i].name);
                }
                iso_node_set_permissions((IsoNode *)file, 0444);
                iso_node_set_uid((IsoNode *)file, 0);
                iso_node_set_gid((IsoNode *)file, 0);
        }
        *ret = image;
        return 0;
}

/* Reads the generated image block by block into fd. */
static int copy_out(struct burn_source *src, int fd, atomic_bool *abort, struct hv_error *e) {
        /* one block per read: the burn_source must fill every buffer it is given but the last,
         * and only the block size is sure to divide the image */
        unsigned char buf[ISO_BLOCK];
        uint64_t off = 0;
        for (;;) {
                if (abort && atomic_load(abort)) {
                        if (src->version > 0 && src->cancel)
                                src->cancel(src);
                        return hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
                }
                int n = src->read ? src->read(src, buf, sizeof(buf)) : src->read_xt(src, buf, sizeof(buf));
                if (n < 0)
                        return hv_fail(e, HV_E_ERRNO, EIO, "building the context disk: libisofs failed while writing it");
                if (n == 0)
                        return 0;
                int r = hv_pwrite_all(fd, buf, (size_t)n, off);
                if (r < 0)
                        return hv_fail_errno(e, HV_E_ERRNO, -r, "cannot write the context disk");
                off += (uint64_t)n;
        }
}

int context_iso_write(const char *path, const struct context_files *cf, atomic_bool *abort, struct hv_error *e) {
        pthread_once(&once, init);
        if (init_r < 0)
                return iso_fail(e, init_r, "initialising libisofs");
        _cleanup_(iso_image_unrefp) IsoImage *image = NULL;
        int r = make_image(cf, &image, e);
        if (r < 0)
                return r;
        _cleanup_(iso_write_opts_freep) IsoWriteOpts *opts = NULL;
        if ((r = iso_write_opts_new(&opts, 0)) < 0)
                return iso_fail(e, r, "write options");
        /* level 3 (files of any size), Rock Ridge (names, modes) and Joliet (long names for
         * readers without Rock Ridge); timestamps of now, in UTC */
        if ((r = iso_write_opts_set_iso_level(opts, 3)) < 0 || (r = iso_write_opts_set_rockridge(opts, 1)) < 0 ||
            (r = iso_write_opts_set_joliet(opts, 1)) < 0 || (r = iso_write_opts_set_always_gmt(opts, 1)) < 0)
                return iso_fail(e, r, "write options");
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot create %s", tmp);
        struct burn_source *src = NULL;
        if ((r = iso_image_create_burn_source(image, opts, &src)) < 0) {
                unlink(tmp);
                return iso_fail(e, r, "starting the writer");
        }
        r = copy_out(src, fd, abort, e);
        burn_source_release(src);
        if (r >= 0 && fsync(fd) < 0)
                r = hv_fail_errno(e, HV_E_ERRNO, errno, "cannot flush %s", tmp);
        if (r >= 0 && rename(tmp, path) < 0)
                r = hv_fail_errno(e, HV_E_ERRNO, errno, "cannot rename %s", tmp);
        if (r < 0)
                unlink(tmp);
        return r;
}
