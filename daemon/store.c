/* store.c: the on-disk image store and its in-memory index (the loop answers from memory). */
#define _GNU_SOURCE
#include "store.h"

#include "contents_ext.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "inspect.h"
#include "log.h"
#include "uri.h"

struct image *image_new(const char *name, const char *source) {
        struct image *img = calloc(1, sizeof(*img));
        if (!img || !(img->table = calloc(1, sizeof(*img->table))) || !(img->source = strdup(source))) {
                image_free(img);
                return NULL;
        }
        snprintf(img->name, sizeof(img->name), "%s", name);
        return img;
}

void image_free(struct image *img) {
        if (!img)
                return;
        free(img->source);
        free(img->table);
        free(img->contents);
        free(img);
}

static bool clean_value(const char *v) {
        for (; *v; v++)
                if ((unsigned char)*v < 0x20 || *v == 0x7f)
                        return false;
        return true;
}

char *image_meta_format(const struct image *img) {
        /* one key per line: a value with a newline could forge keys (defence in depth: names and
         * URIs are checked before they get here) */
        if (!clean_value(img->name) || !clean_value(img->sha512) || (img->source && !clean_value(img->source)) ||
            !clean_value(img->etag) || !clean_value(img->last_modified) || !clean_value(img->origin.subscription) ||
            !clean_value(img->origin.identifier) || !clean_value(img->origin.version)) {
                errno = EINVAL;
                return NULL;
        }
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        fprintf(f, "# hvwgd image metadata\nname=%s\nsource=%s\nsha512=%s\nsize=%llu\ncompressed_size=%llu\ncreated_usec=%llu\ninode=%llu\n",
                img->name, img->source ? img->source : "", img->sha512, (unsigned long long)img->size,
                (unsigned long long)img->compressed_size, (unsigned long long)img->created_usec,
                (unsigned long long)img->inode);
        if (img->etag[0])
                fprintf(f, "etag=%s\n", img->etag);
        if (img->last_modified[0])
                fprintf(f, "last_modified=%s\n", img->last_modified);
        if (img->contents) {
                _cleanup_free_ char *json = contents_to_json(img->contents);
                if (!json || !clean_value(json)) {
                        fclose(f);
                        free(buf);
                        errno = EINVAL;
                        return NULL;
                }
                fprintf(f, "contents=%s\n", json);
        }
        if (img->origin.subscription[0])
                fprintf(f, "subscription=%s\nlist_image=%s\nlist_version=%s\n", img->origin.subscription, img->origin.identifier,
                        img->origin.version);
        if (img->table) {
                fprintf(f, "table=mbr\n");
                for (unsigned i = 0; i < img->table->n; i++) {
                        const struct mbr_part *p = &img->table->parts[i];
                        fprintf(f, "partition=%u %u %d %d %llu %llu %s\n", p->number, p->type, p->bootable, p->extended,
                                (unsigned long long)p->offset, (unsigned long long)p->size, p->fs[0] ? p->fs : "-");
                }
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* A whole decimal number, nothing else. */
static bool parse_u64(const char *v, uint64_t *ret) {
        if (*v < '0' || *v > '9')
                return false;
        uint64_t x = 0;
        for (; *v; v++) {
                if (*v < '0' || *v > '9' || x > (UINT64_MAX - (uint64_t)(*v - '0')) / 10)
                        return false;
                x = x * 10 + (uint64_t)(*v - '0');
        }
        *ret = x;
        return true;
}

static bool is_sha512(const char *v) {
        return *v == 0 || (strlen(v) == 128 && strspn(v, "0123456789abcdef") == 128);
}

/* The metadata is trusted only as written: an unknown key, a key twice (but partition), a
 * malformed value, a control character or a name other than the file's is a refusal, and the
 * caller then re-inspects the image instead. */
int image_meta_parse(struct image *img, const char *text) {
        static const char *const keys[] = { "name",  "source", "sha512",        "size", "compressed_size", "created_usec",
                                            "inode", "table",  "etag", "last_modified", "subscription", "list_image",
                                            "list_version", "contents" };
        bool seen[ELEMENTSOF(keys)] = { false };
        const char *p = text;
        while (*p) {
                const char *nl = strchrnul(p, '\n');
                size_t l = (size_t)(nl - p);
                if (l >= 256 * 1024)
                        return -EINVAL;
                _cleanup_free_ char *line = strndup(p, l);
                if (!line)
                        return -ENOMEM;
                p = *nl ? nl + 1 : nl;
                if (line[0] == '#' || line[0] == 0)
                        continue;
                if (!clean_value(line))
                        return -EINVAL;
                char *eq = strchr(line, '=');
                if (!eq)
                        return -EINVAL;
                *eq = 0;
                const char *k = line, *v = eq + 1;
                size_t ki = ELEMENTSOF(keys);
                for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                        if (strcmp(k, keys[i]) == 0)
                                ki = i;
                if (ki < ELEMENTSOF(keys)) {
                        if (seen[ki])
                                return -EINVAL;
                        seen[ki] = true;
                }
                uint64_t u;
                if (strcmp(k, "name") == 0) {
                        if (!hv_name_valid(v) || (img->name[0] && strcmp(img->name, v) != 0))
                                return -EINVAL;
                        snprintf(img->name, sizeof(img->name), "%s", v);
                } else if (strcmp(k, "source") == 0) {
                        if (strlen(v) > HV_URI_MAX)
                                return -EINVAL;
                        free(img->source);
                        if (!(img->source = strdup(v)))
                                return -ENOMEM;
                } else if (strcmp(k, "sha512") == 0) {
                        if (!is_sha512(v))
                                return -EINVAL;
                        snprintf(img->sha512, sizeof(img->sha512), "%s", v);
                } else if (strcmp(k, "size") == 0 && parse_u64(v, &u)) {
                        img->size = u;
                } else if (strcmp(k, "compressed_size") == 0 && parse_u64(v, &u)) {
                        img->compressed_size = u;
                } else if (strcmp(k, "created_usec") == 0 && parse_u64(v, &u)) {
                        img->created_usec = u;
                } else if (strcmp(k, "etag") == 0 && strlen(v) < sizeof(img->etag)) {
                        snprintf(img->etag, sizeof(img->etag), "%s", v);
                } else if (strcmp(k, "last_modified") == 0 && strlen(v) < sizeof(img->last_modified)) {
                        snprintf(img->last_modified, sizeof(img->last_modified), "%s", v);
                } else if (strcmp(k, "contents") == 0) {
                        if (!img->contents && !(img->contents = calloc(1, sizeof(*img->contents))))
                                return -ENOMEM;
                        if (contents_from_json(img->contents, v, strlen(v)) < 0)
                                return -EINVAL;
                } else if (strcmp(k, "subscription") == 0 && strlen(v) < sizeof(img->origin.subscription)) {
                        snprintf(img->origin.subscription, sizeof(img->origin.subscription), "%s", v);
                } else if (strcmp(k, "list_image") == 0 && strlen(v) < sizeof(img->origin.identifier)) {
                        snprintf(img->origin.identifier, sizeof(img->origin.identifier), "%s", v);
                } else if (strcmp(k, "list_version") == 0 && strlen(v) < sizeof(img->origin.version)) {
                        snprintf(img->origin.version, sizeof(img->origin.version), "%s", v);
                } else if (strcmp(k, "inode") == 0 && parse_u64(v, &u)) {
                        img->inode = u;
                } else if (strcmp(k, "table") == 0) {
                        if (strcmp(v, "mbr") != 0)
                                return -EINVAL;
                        if (!img->table && !(img->table = calloc(1, sizeof(*img->table))))
                                return -ENOMEM;
                } else if (strcmp(k, "partition") == 0) {
                        if (!img->table || img->table->n >= MBR_MAX_PARTS)
                                return -EINVAL;
                        struct mbr_part *pt = &img->table->parts[img->table->n];
                        unsigned num, type;
                        int boot, ext, end = 0;
                        unsigned long long off, size;
                        char fs[32];
                        if (sscanf(v, "%u %u %d %d %llu %llu %31s%n", &num, &type, &boot, &ext, &off, &size, fs, &end) != 7 ||
                            v[end] != 0 || type > 255 || num == 0 || num > MBR_MAX_PARTS || (boot != 0 && boot != 1) ||
                            (ext != 0 && ext != 1))
                                return -EINVAL;
                        memset(pt, 0, sizeof(*pt));
                        pt->number = num;
                        pt->type = (uint8_t)type;
                        pt->bootable = boot;
                        pt->extended = ext;
                        pt->offset = off;
                        pt->size = size;
                        if (strcmp(fs, "-") != 0)
                                snprintf(pt->fs, sizeof(pt->fs), "%s", fs);
                        img->table->n++;
                        if (pt->bootable)
                                img->table->n_bootable++;
                } else
                        return -EINVAL; /* an unknown key, or a number that is not one */
        }
        return 0;
}

static int clean_tmp(const char *tmp) {
        DIR *d = opendir(tmp);
        if (!d)
                return -errno;
        struct dirent *de;
        int dfd = dirfd(d);
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (unlinkat(dfd, de->d_name, 0) < 0)
                        log_warning("cannot remove leftover %s/%s: %m", tmp, de->d_name);
                else
                        log_info("removed leftover %s/%s from an interrupted job", tmp, de->d_name);
        }
        closedir(d);
        return 0;
}

/* Loads one image at start-up: metadata if it matches the file, else re-inspects it. */
static struct image *load_image(const char *root, const char *name) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s.raw", root, name);
        struct stat st;
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                return NULL;
        struct image *img = calloc(1, sizeof(*img));
        if (!img)
                return NULL;
        snprintf(img->name, sizeof(img->name), "%s", name);
        char mpath[PATH_MAX];
        snprintf(mpath, sizeof(mpath), "%s/%s.meta", root, name);
        _cleanup_free_ char *text = NULL;
        bool meta_ok = hv_read_file(mpath, 1 << 20, &text, NULL) >= 0 && image_meta_parse(img, text) >= 0 &&
                       img->inode == (uint64_t)st.st_ino;
        if (!meta_ok) {
                log_warning("image %s: metadata missing or stale, re-inspecting %s", name, path);
                free(img->source);
                free(img->table);
                free(img->contents);
                memset(img, 0, sizeof(*img));
                snprintf(img->name, sizeof(img->name), "%s", name);
                img->created_usec = (uint64_t)st.st_mtim.tv_sec * 1000000ULL + (uint64_t)st.st_mtim.tv_nsec / 1000;
                img->inode = st.st_ino;
                img->table = calloc(1, sizeof(*img->table));
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                struct hv_error e = { 0 };
                if (!img->table || fd < 0 || inspect_fd(fd, (uint64_t)st.st_size, img->table, &e) < 0) {
                        log_warning("image %s: cannot inspect: %s", name, e.msg[0] ? e.msg : "open failed");
                        free(img->table);
                        img->table = NULL;
                } else if ((img->contents = calloc(1, sizeof(*img->contents))))
                        contents_scan(path, img->table, img->contents);
                if (fd >= 0)
                        close(fd);
                img->size = (uint64_t)st.st_size;
                _cleanup_free_ char *m = image_meta_format(img);
                if (m && hv_write_file_atomic(mpath, m, strlen(m), 0644) < 0)
                        log_warning("image %s: cannot rewrite metadata %s: %m", name, mpath);
        }
        if (img->source) {
                /* metadata written before sources were redacted may hold a secret */
                char shown[HV_URI_MAX + 8];
                uri_redact(img->source, shown, sizeof(shown));
                if (strcmp(shown, img->source) != 0) {
                        free(img->source);
                        img->source = strdup(shown);
                        _cleanup_free_ char *m = image_meta_format(img);
                        if (m && hv_write_file_atomic(mpath, m, strlen(m), 0644) < 0)
                                log_warning("image %s: cannot rewrite metadata %s: %m", name, mpath);
                }
        }
        img->size = (uint64_t)st.st_size;
        img->allocated = (uint64_t)st.st_blocks * 512ULL;
        return img;
}

int store_open(struct store *s, const char *root, struct hv_error *e) {
        memset(s, 0, sizeof(*s));
        snprintf(s->root, sizeof(s->root), "%s", root);
        snprintf(s->tmp, sizeof(s->tmp), "%s/.tmp", root);
        int r = hv_mkdir_p(s->tmp, 0755);
        if (r < 0)
                return hv_fail_errno(e, HV_E_ERRNO, -r, "cannot create image store %s", s->tmp);
        r = clean_tmp(s->tmp);
        if (r < 0)
                return hv_fail_errno(e, HV_E_ERRNO, -r, "cannot clean %s", s->tmp);
        DIR *d = opendir(root);
        if (!d)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot open image store %s", root);
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                char name[80];
                if (l < 5 || l - 4 >= sizeof(name) || strcmp(de->d_name + l - 4, ".raw") != 0)
                        continue;
                memcpy(name, de->d_name, l - 4);
                name[l - 4] = 0;
                if (!hv_name_valid(name)) {
                        log_warning("ignoring %s/%s: not a valid image name", root, de->d_name);
                        continue;
                }
                struct image *img = load_image(root, name);
                if (img)
                        store_insert(s, img);
        }
        closedir(d);
        return 0;
}

void store_close(struct store *s) {
        while (s->images) {
                struct image *n = s->images->next;
                image_free(s->images);
                s->images = n;
        }
}

struct image *store_find(struct store *s, const char *name) {
        for (struct image *i = s->images; i; i = i->next)
                if (strcmp(i->name, name) == 0)
                        return i;
        return NULL;
}

void store_insert(struct store *s, struct image *img) {
        struct image **pp = &s->images;
        for (; *pp; pp = &(*pp)->next)
                if (strcmp((*pp)->name, img->name) == 0) {
                        struct image *old = *pp;
                        img->next = old->next;
                        *pp = img;
                        image_free(old);
                        return;
                }
        /* keep the list sorted by name for stable listings */
        for (pp = &s->images; *pp && strcmp((*pp)->name, img->name) < 0; pp = &(*pp)->next)
                ;
        img->next = *pp;
        *pp = img;
}

struct removal {
        char raw[PATH_MAX], meta[PATH_MAX], dir[PATH_MAX];
};

/* Deleting a large file can take a while and fsync can stall under write-back: both run here,
 * off the loop. */
static void *unlink_thread(void *arg) {
        struct removal *rm = arg;
        if (unlink(rm->raw) < 0 && errno != ENOENT)
                log_warning("cannot delete %s: %m", rm->raw);
        if (unlink(rm->meta) < 0 && errno != ENOENT)
                log_warning("cannot delete %s: %m", rm->meta);
        int r = hv_fsync_dir(rm->dir);
        if (r < 0)
                log_warning("cannot fsync %s: %s", rm->dir, strerror(-r));
        free(rm);
        return NULL;
}

int store_remove(struct store *s, const char *name, struct hv_error *e) {
        struct image **pp = &s->images;
        while (*pp && strcmp((*pp)->name, name) != 0)
                pp = &(*pp)->next;
        if (!*pp)
                return hv_fail(e, HV_E_NO_SUCH_IMAGE, ENOENT, "no image named %s", name);
        struct removal *rm = calloc(1, sizeof(*rm));
        if (!rm)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        char raw[PATH_MAX], meta[PATH_MAX];
        snprintf(raw, sizeof(raw), "%s/%s.raw", s->root, name);
        snprintf(meta, sizeof(meta), "%s/%s.meta", s->root, name);
        unsigned long long stamp = (unsigned long long)hv_mono_usec();
        snprintf(rm->raw, sizeof(rm->raw), "%s/removed-%s.%llu.raw", s->tmp, name, stamp);
        snprintf(rm->meta, sizeof(rm->meta), "%s/removed-%s.%llu.meta", s->tmp, name, stamp);
        snprintf(rm->dir, sizeof(rm->dir), "%s", s->root);
        /* Two renames on the loop (instant, atomic: the name is gone at once; a crash leaves
         * the data in .tmp, emptied at start-up); the rest on a thread. */
        if (rename(raw, rm->raw) < 0) {
                int err = errno;
                free(rm);
                return hv_fail_errno(e, HV_E_ERRNO, err, "cannot remove image %s", name);
        }
        if (rename(meta, rm->meta) < 0 && errno != ENOENT)
                log_warning("cannot move %s away: %m", meta);
        struct image *img = *pp;
        *pp = img->next;
        image_free(img);
        pthread_t t;
        if (pthread_create(&t, NULL, unlink_thread, rm) == 0)
                pthread_detach(t);
        else
                unlink_thread(rm);
        return 0;
}

int store_publish(const char *root, const char *tmp_path, struct image *img, bool replace, struct hv_error *e) {
        char raw[PATH_MAX], meta[PATH_MAX], tmeta[PATH_MAX];
        snprintf(raw, sizeof(raw), "%s/%s.raw", root, img->name);
        snprintf(meta, sizeof(meta), "%s/%s.meta", root, img->name);
        snprintf(tmeta, sizeof(tmeta), "%s.meta", tmp_path);
        struct stat st;
        if (stat(tmp_path, &st) < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot stat %s", tmp_path);
        img->inode = st.st_ino;
        img->allocated = (uint64_t)st.st_blocks * 512ULL;
        _cleanup_free_ char *m = image_meta_format(img);
        if (!m)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        int fd = open(tmeta, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot create %s", tmeta);
        int r = hv_write_all(fd, m, strlen(m));
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r < 0) {
                unlink(tmeta);
                return hv_fail_errno(e, HV_E_ERRNO, -r, "cannot write image metadata");
        }
        /* The raw file goes first: a crash before the metadata follows leaves an image whose
         * metadata does not match its inode, and start-up re-inspects it. */
        if (renameat2(AT_FDCWD, tmp_path, AT_FDCWD, raw, replace ? 0 : RENAME_NOREPLACE) < 0) {
                int err = errno;
                unlink(tmeta);
                if (err == EEXIST)
                        return hv_fail(e, HV_E_IMAGE_EXISTS, EEXIST, "image %s already exists (pass replace=true to replace it)", img->name);
                return hv_fail_errno(e, HV_E_ERRNO, err, "cannot publish image %s", img->name);
        }
        if (rename(tmeta, meta) < 0) {
                int err = errno;
                unlink(tmeta);
                log_warning("image %s: cannot move metadata into place (%s); it will be rebuilt at start-up", img->name, strerror(err));
        }
        r = hv_fsync_dir(root);
        if (r < 0)
                log_warning("cannot fsync %s: %s", root, strerror(-r));
        return 0;
}
