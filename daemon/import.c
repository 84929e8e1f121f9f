/* import.c: one FetchImage job: read + SHA-512 | inflate (one thread, or pinflate.c's) | sparse
 * write, then verify, inspect and publish. The stages hand whole buffers through bounded queues. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "import.h"

#include "bufq.h"
#include "contents_ext.h"
#include "fetch.h"
#include "inspect.h"
#include "log.h"
#include "pinflate.h"
#include "sparse.h"

#define IN_BUF_SIZE (256 * 1024)
#define IN_BUFS 16
#define OUT_BUF_SIZE (1024 * 1024)
#define OUT_BUFS 8
/* a free queue holds all of a stage's buffers: more would block their set-up for ever */
_Static_assert(IN_BUFS <= BUFQ_MAX && OUT_BUFS <= BUFQ_MAX, "more buffers than a queue holds");
/* Typical ratio of real (non-zero) data to its gzip size, for the early free-space check:
 * zero runs become holes, so the estimate counts only compressed data expanding. */
#define SPACE_RATIO 2

struct pipeline {
        struct job_ctl *ctl;
        const struct fetch_job *job;
        const struct fetch_params *fp;
        const struct hv_conf *conf;
        pthread_mutex_t err_mtx;
        struct hv_error err;
        int r;
        struct bufq in_free, in_full, out_free, out_full;
        struct buf in_bufs[IN_BUFS], out_bufs[OUT_BUFS];
        struct bufq *home_of_in, *home_of_out;
        EVP_MD_CTX *sha;
        uint64_t read_bytes, total;
        struct buf *cur;
        bool retrying; /* between tries of a download: the phase says "retry" */
        char etag[256], last_modified[64]; /* the source's validators */
        int fd;
        char store_dir[HV_STORE_DIR_MAX];
        char tmp[PATH_MAX]; /* the image being written, until it is published */
        struct sparse_writer sw;
        struct pz *pz; /* the parallel decoder, when there is one */
        struct pz_io pz_io;
        uint64_t cpu_read, cpu_inflate, cpu_write; /* each stage's CPU time (µs), for the log */
};

/* The first error wins; it aborts every stage. A stage that merely saw the abort says nothing. */
static void pipe_fail(struct pipeline *p, int r, const struct hv_error *e) {
        if (r == -ECANCELED && (!e || e->kind == HV_E_CANCELED || !hv_error_set(e)))
                return;
        pthread_mutex_lock(&p->err_mtx);
        if (p->r == 0) {
                p->r = r;
                if (e)
                        p->err = *e;
        }
        pthread_mutex_unlock(&p->err_mtx);
        atomic_store(job_ctl_abort(p->ctl), true);
}

static struct bufq *home(struct pipeline *p, struct buf *b) {
        if (b->home)
                return b->home; /* a parallel decoder's */
        return (b >= p->in_bufs && b < p->in_bufs + IN_BUFS) ? &p->in_free : &p->out_free;
}

static int on_total(void *ud, uint64_t total, struct hv_error *e) {
        struct pipeline *p = ud;
        const struct fetch_params *fp = p->fp;
        p->total = total;
        if (fp->have_size && total && total != fp->size)
                return hv_fail(e, HV_E_SIZE, EBADMSG, "size mismatch: expected %llu bytes, got %llu (the size the source announces)",
                               (unsigned long long)fp->size, (unsigned long long)total);
        uint64_t max_dl = hv_conf_max_download(p->conf);
        if (total > max_dl) {
                char a[32];
                return hv_fail(e, HV_E_TOO_LARGE, EFBIG, "the download is %llu bytes, more than the limit of %s (MaxDownloadSize)",
                               (unsigned long long)total, hv_format_size(max_dl, a, sizeof(a)));
        }
        uint64_t known = fp->have_size ? fp->size : total;
        job_ctl_bytes(p->ctl, 0, known);
        if (!known)
                return 0;
        uint64_t need = fp->compressed ? known * SPACE_RATIO : known;
        if (need > fp->max_size)
                need = fp->max_size;
        struct statvfs sv;
        if (fstatvfs(p->fd, &sv) == 0) {
                uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
                if (avail < need) {
                        char a[32], b[32];
                        return hv_fail(e, HV_E_NO_SPACE, ENOSPC,
                                       "not enough space in %s: the image needs about %s, %s free",
                                       p->store_dir, hv_format_size(need, a, sizeof(a)), hv_format_size(avail, b, sizeof(b)));
                }
        }
        return 0;
}

static void on_validators(void *ud, const char *etag, const char *last_modified) {
        struct pipeline *p = ud;
        snprintf(p->etag, sizeof(p->etag), "%s", etag);
        snprintf(p->last_modified, sizeof(p->last_modified), "%s", last_modified);
}

/* A try of the download failed; another follows (fetch.c). */
static void on_retry(void *ud, unsigned attempt, unsigned max, unsigned delay_sec, const char *why) {
        struct pipeline *p = ud;
        (void)delay_sec;
        log_info("job %u: retry %u of %u: %s", job_ctl_id(p->ctl), attempt, max, why);
        p->retrying = true;
        job_ctl_phase(p->ctl, "retry");
}

static int on_data(void *ud, const uint8_t *data, size_t n, struct hv_error *e) {
        struct pipeline *p = ud;
        if (atomic_load(job_ctl_abort(p->ctl)))
                return -ECANCELED;
        if (p->retrying) {
                p->retrying = false;
                job_ctl_phase(p->ctl, "download");
        }
        p->read_bytes += n;
        if (p->fp->have_size && p->read_bytes > p->fp->size)
                return hv_fail(e, HV_E_SIZE, EBADMSG, "size mismatch: the download is longer than the expected %llu bytes",
                               (unsigned long long)p->fp->size);
        uint64_t max_dl = hv_conf_max_download(p->conf);
        if (p->read_bytes > max_dl) {
                char a[32];
                return hv_fail(e, HV_E_TOO_LARGE, EFBIG, "the download exceeds the limit of %s (MaxDownloadSize); stopped after %llu bytes",
                               hv_format_size(max_dl, a, sizeof(a)), (unsigned long long)p->read_bytes);
        }
        if (EVP_DigestUpdate(p->sha, data, n) != 1)
                return hv_fail(e, HV_E_ERRNO, EIO, "SHA-512 update failed");
        while (n > 0) {
                if (!p->cur) {
                        int r = bufq_pop(&p->in_free, &p->cur);
                        if (r < 0)
                                return r;
                        p->cur->len = 0;
                        p->cur->eof = false;
                }
                size_t k = p->cur->cap - p->cur->len;
                if (k > n)
                        k = n;
                memcpy(p->cur->data + p->cur->len, data, k);
                p->cur->len += k;
                data += k;
                n -= k;
                if (p->cur->len == p->cur->cap) {
                        int r = bufq_push(&p->in_full, p->cur);
                        p->cur = NULL;
                        if (r < 0)
                                return r;
                }
        }
        job_ctl_bytes(p->ctl, p->read_bytes, p->fp->have_size ? p->fp->size : p->total);
        return 0;
}

/* The output so far against max_size (also the parallel decoder's check_out). */
static int too_large(void *ud, uint64_t out, struct hv_error *e) {
        struct pipeline *p = ud;
        if (out <= p->fp->max_size)
                return 0;
        char a[32];
        return hv_fail(e, HV_E_TOO_LARGE, EFBIG, "the image is larger than the limit of %s (%llu bytes); stopped after %llu bytes",
                       hv_format_size(p->fp->max_size, a, sizeof(a)), (unsigned long long)p->fp->max_size,
                       (unsigned long long)out);
}

/* A raw source: its buffers go straight on to the writer (gzip goes through pinflate.c). */
static int pass_raw(struct pipeline *p, struct hv_error *e) {
        uint64_t total_out = 0;
        for (;;) {
                struct buf *b;
                int r = bufq_pop(&p->in_full, &b);
                if (r < 0)
                        return r;
                bool eof = b->eof;
                total_out += b->len;
                if ((r = too_large(p, total_out, e)) < 0 || (r = bufq_push(&p->out_full, b)) < 0 || eof)
                        return r;
        }
}

static void *inflate_thread(void *arg) {
        struct pipeline *p = arg;
        struct hv_error e = { 0 };
        int r;
        if (!p->fp->compressed)
                r = pass_raw(p, &e);
        else {
                /* one thread or several (pinflate.c); p->pz is freed by run_pipeline once the
                 * writer has ended: it holds the decoder's buffers */
                unsigned threads = hv_conf_inflate_threads(p->conf, sysconf(_SC_NPROCESSORS_ONLN));
                p->pz_io = (struct pz_io){ .in_full = &p->in_full, .in_free = &p->in_free, .out_free = &p->out_free,
                                           .out_full = &p->out_full, .abort = job_ctl_abort(p->ctl), .engine = p->fp->engine,
                                           .threads = threads, .speculate = hv_conf_inflate_speculate(p->conf, threads),
                                           .in_buf_size = IN_BUF_SIZE, .check_out = too_large, .ud = p, .job = job_ctl_id(p->ctl) };
                r = pz_stage(&p->pz_io, &p->pz, &e);
        }
        p->cpu_inflate = hv_thread_cpu_usec();
        if (r < 0)
                pipe_fail(p, r, &e);
        return NULL;
}

static int write_all(struct pipeline *p, struct hv_error *e) {
        for (;;) {
                struct buf *b;
                int r = bufq_pop(&p->out_full, &b);
                if (r < 0)
                        return r;
                bool eof = b->eof;
                if ((r = sparse_append(&p->sw, b->data, b->len, e)) < 0 || (r = bufq_push(home(p, b), b)) < 0)
                        return r;
                if (eof)
                        return sparse_finish(&p->sw, e);
        }
}

static void *write_thread(void *arg) {
        struct pipeline *p = arg;
        struct hv_error e = { 0 };
        int r = write_all(p, &e);
        p->cpu_write = hv_thread_cpu_usec();
        if (r < 0)
                pipe_fail(p, r, &e);
        return NULL;
}

static int alloc_bufs(struct buf *bufs, unsigned n, size_t size, struct bufq *free_q) {
        for (unsigned i = 0; i < n; i++) {
                /* page-aligned: the writer may use O_DIRECT */
                if (posix_memalign((void **)&bufs[i].data, 4096, size) != 0)
                        return -ENOMEM;
                bufs[i].cap = size;
                bufs[i].len = 0;
                int r = bufq_push(free_q, &bufs[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Runs the three stages; on return every thread has ended. */
static int run_pipeline(struct pipeline *p, struct hv_error *e) {
        atomic_bool *abort = job_ctl_abort(p->ctl);
        bufq_init(&p->in_free, abort);
        bufq_init(&p->in_full, abort);
        bufq_init(&p->out_free, abort);
        bufq_init(&p->out_full, abort);
        pthread_mutex_init(&p->err_mtx, NULL);
        int r = alloc_bufs(p->in_bufs, IN_BUFS, IN_BUF_SIZE, &p->in_free);
        if (r >= 0)
                r = alloc_bufs(p->out_bufs, OUT_BUFS, OUT_BUF_SIZE, &p->out_free);
        EVP_MD_CTX_free(p->sha); /* a restart's leftover */
        p->sha = EVP_MD_CTX_new();
        if (r < 0 || !p->sha || EVP_DigestInit_ex(p->sha, EVP_sha512(), NULL) != 1) {
                r = hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory setting up the import");
                goto out;
        }
        pthread_t ti, tw;
        if (pthread_create(&ti, NULL, inflate_thread, p) != 0) {
                r = hv_fail(e, HV_E_ERRNO, EAGAIN, "cannot start the inflate thread");
                goto out;
        }
        if (pthread_create(&tw, NULL, write_thread, p) != 0) {
                atomic_store(abort, true);
                pthread_join(ti, NULL);
                r = hv_fail(e, HV_E_ERRNO, EAGAIN, "cannot start the write thread");
                goto out;
        }
        struct fetch_req req = { .uri = p->job->source, .uri_shown = p->job->source_shown, .fd = p->job->source_fd,
                                 .conf = p->conf, .cancel = abort, .data = on_data, .total = on_total, .retrying = on_retry,
                                 .validators = on_validators, .if_none_match = p->job->if_none_match,
                                 .if_modified_since = p->job->if_modified_since, .userdata = p };
        struct hv_error re = { 0 };
        uint64_t cpu0 = hv_thread_cpu_usec();
        r = fetch_run(&req, &re);
        p->cpu_read = hv_thread_cpu_usec() - cpu0;
        if (r >= 0) {
                /* hand over the last partial buffer, then the end marker */
                if (!p->cur) {
                        r = bufq_pop(&p->in_free, &p->cur);
                        if (r >= 0)
                                p->cur->len = 0;
                }
                if (r >= 0) {
                        p->cur->eof = true;
                        r = bufq_push(&p->in_full, p->cur);
                        p->cur = NULL;
                }
        }
        if (r < 0)
                pipe_fail(p, r, &re);
        pthread_join(ti, NULL);
        pthread_join(tw, NULL);
        r = p->r;
        if (r < 0)
                *e = p->err;
        else if (job_ctl_user_canceled(p->ctl))
                r = hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
out:
        pz_free(p->pz);
        p->pz = NULL;
        for (unsigned i = 0; i < IN_BUFS; i++)
                free(p->in_bufs[i].data);
        for (unsigned i = 0; i < OUT_BUFS; i++)
                free(p->out_bufs[i].data);
        bufq_destroy(&p->in_free);
        bufq_destroy(&p->in_full);
        bufq_destroy(&p->out_free);
        bufq_destroy(&p->out_full);
        pthread_mutex_destroy(&p->err_mtx);
        return r;
}

static int verify(struct pipeline *p, char *hex, struct hv_error *e) {
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        if (EVP_DigestFinal_ex(p->sha, md, &mdlen) != 1)
                return hv_fail(e, HV_E_ERRNO, EIO, "SHA-512 finalisation failed");
        hv_hex(md, mdlen, hex);
        if (p->fp->have_size && p->read_bytes != p->fp->size)
                return hv_fail(e, HV_E_SIZE, EBADMSG, "size mismatch: expected %llu bytes, got %llu",
                               (unsigned long long)p->fp->size, (unsigned long long)p->read_bytes);
        if (p->fp->sha512[0] && strcmp(p->fp->sha512, hex) != 0) {
                /* JobRemoved goes to every bus client: the digest of a file they may not read would
                 * let them confirm a guess of its contents. The log has it either way. */
                log_warning("job %u: checksum mismatch: expected sha512 %s, got %s", job_ctl_id(p->ctl), p->fp->sha512, hex);
                if (!p->job->source_public)
                        return hv_fail(e, HV_E_CHECKSUM, EBADMSG,
                                       "checksum mismatch: expected sha512 %s, got another digest (not shown: the source file "
                                       "is not world-readable; it is in the daemon's log)", p->fp->sha512);
                return hv_fail(e, HV_E_CHECKSUM, EBADMSG, "checksum mismatch: expected sha512 %s, got %s", p->fp->sha512, hex);
        }
        return 0;
}

/* The pipeline's resources: the temp file (removed unless published), its fd, the digest. */
static void pipeline_free(struct pipeline *p) {
        if (!p)
                return;
        sparse_done(&p->sw);
        if (p->fd >= 0)
                close(p->fd);
        if (p->tmp[0] && unlink(p->tmp) < 0 && errno != ENOENT)
                log_warning("cannot remove %s: %m", p->tmp);
        EVP_MD_CTX_free(p->sha);
        free(p);
}
HV_DEFINE_CLEANUP(struct pipeline *, pipeline_free)
HV_DEFINE_CLEANUP(struct image *, image_free)

/* A temp file in ImageRoot/.tmp: O_DIRECT, so the decompressed image goes to disk without a
 * copy into the page cache (measured: buffered write + fsync of 2 GB takes 3× as long on these
 * VMs) and nothing is left to flush at the end. Filesystems without it (tmpfs) get buffered. */
static int make_tmp(struct pipeline *p, const char *image_root, const char *target, struct hv_error *e) {
        snprintf(p->tmp, sizeof(p->tmp), "%s/.tmp/%s.XXXXXX", image_root, target);
        p->fd = mkostemp(p->tmp, O_CLOEXEC | O_DIRECT);
        if (p->fd < 0 && errno == EINVAL) {
                snprintf(p->tmp, sizeof(p->tmp), "%s/.tmp/%s.XXXXXX", image_root, target);
                p->fd = mkostemp(p->tmp, O_CLOEXEC);
        }
        if (p->fd < 0) {
                p->tmp[0] = 0;
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot create a temporary file in %s/.tmp", image_root);
        }
        return 0;
}

static int fetch_run_job(struct job_ctl *ctl, void *payload, struct hv_error *e) {
        struct fetch_job *j = payload;
        const struct hv_conf *conf = &j->conf->c;
        uint32_t id = job_ctl_id(ctl);
        if (j->join_failed || j->join_image) {
                int jr = fetch_join_run(ctl, j, e);
                if (jr != -EAGAIN)
                        return jr;
                log_info("job %u: image %s went away before it could be linked; downloading", id, j->join_from);
        }
        _cleanup_(pipeline_freep) struct pipeline *p = calloc(1, sizeof(*p));
        if (!p)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        *p = (struct pipeline){ .ctl = ctl, .job = j, .fp = &j->fp, .conf = conf, .fd = -1 };
        snprintf(p->store_dir, sizeof(p->store_dir), "%s", conf->image_root);
        char hex[HV_SHA512_HEX + 1] = "";
        job_ctl_phase(ctl, "download");
        int r = make_tmp(p, conf->image_root, j->target, e);
        if (r < 0)
                return r;
        sparse_init(&p->sw, p->fd);
        uint64_t t0 = hv_mono_usec();
        /* a download that cannot resume (the server ignores Range, the file changed, no
         * validator) starts over from byte 0, twice at most */
        for (unsigned restarts = 0; (r = run_pipeline(p, e)) == -ERESTART; restarts++) {
                if (restarts == 2 || job_ctl_user_canceled(ctl)) {
                        char why[sizeof(e->msg) - 64];
                        snprintf(why, sizeof(why), "%.900s", e->msg);
                        *e = (struct hv_error){ 0 };
                        return hv_fail(e, HV_E_FETCH_FAILED, EIO, "%s; started over %u times, giving up", why, restarts);
                }
                log_info("job %u: starting the download over from byte 0 (%s)", id, e->msg);
                if (ftruncate(p->fd, 0) < 0)
                        return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot empty %s", p->tmp);
                sparse_done(&p->sw);
                sparse_init(&p->sw, p->fd);
                p->r = 0;
                p->err = (struct hv_error){ 0 };
                p->read_bytes = p->total = 0;
                p->cur = NULL;
                *e = (struct hv_error){ 0 };
                atomic_store(job_ctl_abort(ctl), false); /* set by the failed try's stages; a user's cancel stays */
                if (job_ctl_user_canceled(ctl))
                        return hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
        }
        if (r == -EALREADY) { /* a conditional re-fetch: the image we have is current */
                log_info("job %u: %s; image %s kept as it is", id, e->msg, j->target);
                *e = (struct hv_error){ 0 };
                j->not_modified = true;
                job_ctl_phase(ctl, "not-modified");
                return 0;
        }
        if (r < 0)
                return r;
        uint64_t t1 = hv_mono_usec();
        if (p->sw.direct) {
                /* inspection reads single sectors: back to buffered I/O for the rest */
                int fl = fcntl(p->fd, F_GETFL);
                if (fl < 0 || fcntl(p->fd, F_SETFL, fl & ~O_DIRECT) < 0)
                        return hv_fail_errno(e, HV_E_ERRNO, errno, "clearing O_DIRECT");
        }
        job_ctl_phase(ctl, "verify");
        if ((r = verify(p, hex, e)) < 0)
                return r;
        if (fsync(p->fd) < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot flush the image to disk");
        uint64_t t2 = hv_mono_usec();
        if ((r = job_ctl_canceled(ctl, e)) < 0)
                return r;
        job_ctl_phase(ctl, "inspect");
        _cleanup_(image_freep) struct image *img = image_new(j->target, j->source_shown);
        if (!img)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        if ((r = inspect_fd(p->fd, p->sw.off, img->table, e)) < 0)
                return r;
        /* what its filesystems hold, read in place (no mount): never fails the import */
        uint64_t t3 = hv_mono_usec();
        if ((img->contents = calloc(1, sizeof(*img->contents))))
                contents_scan(p->tmp, img->table, img->contents);
        char threads[64] = "";
        if (p->pz_io.cpu_threads)
                snprintf(threads, sizeof(threads), " + %.2f s on %u decoding threads", (double)p->pz_io.cpu_threads / 1e6,
                         p->pz_io.threads_used);
        log_info("job %u: streamed %llu -> %llu bytes in %.2f s (CPU: read+SHA-512 %.2f s, inflate %.2f s%s, write %.2f s; "
                 "in pwrite %.2f s; waited: reader %.2f s, inflate for input %.2f s and for output buffers %.2f s, writer %.2f s), "
                 "fsync %.2f s, inspect %.3f s, contents %.3f s",
                 id, (unsigned long long)p->read_bytes, (unsigned long long)p->sw.off, (double)(t1 - t0) / 1e6, (double)p->cpu_read / 1e6,
                 (double)p->cpu_inflate / 1e6, threads, (double)p->cpu_write / 1e6, (double)p->sw.write_usec / 1e6,
                 /* how long each stage waited on the one before or after it: the counts of the last try's queues */
                 (double)p->in_free.pop_wait_usec / 1e6, (double)p->in_full.pop_wait_usec / 1e6,
                 (double)p->out_free.pop_wait_usec / 1e6, (double)p->out_full.pop_wait_usec / 1e6,
                 (double)(t2 - t1) / 1e6, (double)(t3 - t2) / 1e6, (double)(hv_mono_usec() - t3) / 1e6);
        job_ctl_phase(ctl, "publish");
        snprintf(img->sha512, sizeof(img->sha512), "%s", hex);
        snprintf(img->etag, sizeof(img->etag), "%s", p->etag);
        snprintf(img->last_modified, sizeof(img->last_modified), "%s", p->last_modified);
        img->origin = j->origin;
        img->size = p->sw.off;
        img->compressed_size = p->read_bytes;
        img->created_usec = hv_now_usec();
        /* 0440 root:hvwg: an image may come from a file only its owner could read; those who may
         * fetch (root, hvwg) may read images, nobody else (0400 where the group does not exist) */
        gid_t gid = j->group;
        if (gid != (gid_t)-1 && fchown(p->fd, (uid_t)-1, gid) < 0)
                log_warning("job %u: cannot give the image to group hvwg: %m", id);
        if (fchmod(p->fd, gid != (gid_t)-1 ? 0440 : 0400) < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot make the image read-only");
        if ((r = job_ctl_canceled(ctl, e)) < 0 || (r = store_publish(conf->image_root, p->tmp, img, j->fp.replace, e)) < 0)
                return r;
        log_info("image %s published: %llu bytes (%llu allocated) from %s", img->name, (unsigned long long)img->size,
                 (unsigned long long)img->allocated, j->source_shown);
        p->tmp[0] = 0; /* it has its real name now */
        j->image = HV_TAKE_PTR(img);
        return 0;
}

/* On the loop: a published image joins the store's index. */
static void fetch_finished(void *payload, int result) {
        struct fetch_job *j = payload;
        if (result >= 0 && j->image) {
                store_insert(j->store, j->image);
                j->image = NULL;
        }
}

static void fetch_job_free(void *payload) {
        struct fetch_job *j = payload;
        if (!j)
                return;
        image_free(j->image);
        image_free(j->join_image);
        if (j->source_fd >= 0)
                close(j->source_fd);
        hv_conf_snap_unref(j->conf);
        free(j->source);
        free(j->source_shown);
        free(j);
}

struct fetch_job *fetch_job_new(const char *target, const char *source, const struct fetch_params *fp, int *fd, bool source_public,
                                struct hv_conf_snap *conf, gid_t group, struct store *store) {
        struct fetch_job *j = calloc(1, sizeof(*j));
        if (!j)
                return NULL;
        char shown[HV_URI_MAX + 8];
        uri_redact(source, shown, sizeof(shown));
        j->source_fd = -1;
        j->source = strdup(source);
        j->source_shown = strdup(shown);
        if (!j->source || !j->source_shown) {
                fetch_job_free(j);
                return NULL;
        }
        snprintf(j->target, sizeof(j->target), "%s", target);
        j->fp = *fp;
        j->source_fd = *fd;
        *fd = -1;
        j->source_public = source_public;
        j->conf = hv_conf_snap_ref(conf);
        j->group = group;
        j->store = store;
        return j;
}

const struct job_kind fetch_kind = {
        .name = "fetch",
        .run = fetch_run_job,
        .finished = fetch_finished,
        .free = fetch_job_free,
        .joined = fetch_joined,
};
