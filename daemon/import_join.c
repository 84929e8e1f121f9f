/* import_join.c: one download per image. A FetchImage of a source that another fetch job is
 * already downloading waits for that job (job_wait_for); when it ends well, the image it
 * published gets this job's name as a second hard link of the same file (no second download,
 * no second copy on disk), or, asked for under the same name, is simply there; when it failed,
 * this job fails the same way; when it was canceled, this job downloads after all. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import.h"
#include "log.h"

bool fetch_joinable(const struct fetch_job *a, const char *source, const struct fetch_params *fp) {
        if (a->source_fd >= 0 || strcmp(a->source, source) != 0 || a->fp.compressed != fp->compressed)
                return false;
        if (a->fp.sha512[0] && fp->sha512[0] && strcmp(a->fp.sha512, fp->sha512) != 0)
                return false;
        return !(a->fp.have_size && fp->have_size && a->fp.size != fp->size);
}

/* On the loop (job.h: kind->joined): what the job this one waited for left. */
bool fetch_joined(void *payload, struct job *leader, int result) {
        struct fetch_job *j = payload;
        const struct fetch_job *l = leader->payload;
        if (result < 0) {
                const struct hv_error *le = job_error(leader);
                if (strcmp(job_result(leader), "canceled") == 0)
                        return false; /* its owner's choice, not this caller's: download after all */
                j->join_failed = true;
                j->join_error = *le;
                snprintf(j->join_from, sizeof(j->join_from), "%u", leader->id);
                return true;
        }
        const struct image *img = store_find(j->store, l->target);
        if (!img || !img->table || !img->source || strcmp(img->source, l->source_shown) != 0)
                return false; /* replaced or removed already */
        struct image *c = image_new(j->target, j->source_shown);
        if (!c)
                return false;
        *c->table = *img->table;
        if (img->contents && (c->contents = malloc(sizeof(*c->contents))))
                *c->contents = *img->contents;
        memcpy(c->sha512, img->sha512, sizeof(c->sha512));
        memcpy(c->etag, img->etag, sizeof(c->etag));
        memcpy(c->last_modified, img->last_modified, sizeof(c->last_modified));
        c->size = img->size;
        c->compressed_size = img->compressed_size;
        c->inode = img->inode;
        c->origin = j->origin;
        snprintf(j->join_from, sizeof(j->join_from), "%s", img->name);
        image_free(j->join_image);
        j->join_image = c;
        return true;
}

/* The joined download's image against this caller's own expectations. */
static int check_expected(const struct fetch_job *j, const struct image *img, struct hv_error *e) {
        if (j->fp.sha512[0] && strcmp(j->fp.sha512, img->sha512) != 0)
                return hv_fail(e, HV_E_CHECKSUM, EBADMSG, "checksum mismatch: expected sha512 %s, got %s (the download of image %s, "
                               "which this fetch joined)", j->fp.sha512, img->sha512, j->join_from);
        if (j->fp.have_size && j->fp.size != img->compressed_size)
                return hv_fail(e, HV_E_SIZE, EBADMSG, "size mismatch: expected %llu bytes, got %llu (the download of image %s, "
                               "which this fetch joined)", (unsigned long long)j->fp.size,
                               (unsigned long long)img->compressed_size, j->join_from);
        if (img->size > j->fp.max_size)
                return hv_fail(e, HV_E_TOO_LARGE, EFBIG, "the image is %llu bytes, more than this fetch's limit of %llu (max_size)",
                               (unsigned long long)img->size, (unsigned long long)j->fp.max_size);
        return 0;
}

/* The name asked for is already this very file (the same name asked for twice, or another
 * waiter for it was first): nothing to publish. */
static bool already_there(const char *path, const struct image *img, uint32_t id, const char *name) {
        struct stat st;
        if (stat(path, &st) < 0 || st.st_ino != img->inode)
                return false;
        log_info("job %u: image %s is already the file the download this fetch waited for published", id, name);
        return true;
}

int fetch_join_run(struct job_ctl *ctl, struct fetch_job *j, struct hv_error *e) {
        uint32_t id = job_ctl_id(ctl);
        if (j->join_failed)
                return hv_fail(e, j->join_error.kind, j->join_error.err ? j->join_error.err : EIO,
                               "%s (the download of job %s, which this fetch joined)", j->join_error.msg, j->join_from);
        const char *root = j->conf->c.image_root;
        struct image *img = j->join_image;
        int r = check_expected(j, img, e);
        if (r < 0)
                return r;
        char from[PATH_MAX], tmp[PATH_MAX], to[PATH_MAX];
        snprintf(to, sizeof(to), "%s/%s.raw", root, j->target);
        if (already_there(to, img, id, j->target))
                return 0;
        job_ctl_phase(ctl, "publish");
        img->created_usec = hv_now_usec();
        snprintf(from, sizeof(from), "%s/%s.raw", root, j->join_from);
        snprintf(tmp, sizeof(tmp), "%s/.tmp/%s.join-%u", root, j->target, id);
        if (link(from, tmp) < 0) {
                if (errno == ENOENT)
                        return -EAGAIN; /* removed meanwhile: download after all */
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot link image %s as %s", j->join_from, j->target);
        }
        struct stat st;
        if (stat(tmp, &st) < 0 || st.st_ino != img->inode) {
                (void)unlink(tmp);
                return -EAGAIN; /* replaced meanwhile */
        }
        if ((r = job_ctl_canceled(ctl, e)) < 0 || (r = store_publish(root, tmp, img, j->fp.replace, e)) < 0) {
                if (unlink(tmp) < 0 && errno != ENOENT)
                        log_warning("cannot remove %s: %m", tmp);
                if (e->kind == HV_E_IMAGE_EXISTS && already_there(to, img, id, j->target)) {
                        *e = (struct hv_error){ 0 };
                        return 0;
                }
                return r;
        }
        log_info("image %s published as a second name of image %s (the same download, the same file)", j->target, j->join_from);
        j->image = HV_TAKE_PTR(j->join_image);
        return 0;
}
