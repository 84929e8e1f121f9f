/* machines.c: the machine registry and the machine directories. */
#include "machines.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

struct machines {
        struct loop *loop;
        pthread_mutex_t lock;
        struct machine *list; /* in name order */
        machine_state_fn fn;
        void *ud;
};

int machines_new(struct loop *loop, struct machines **ret) {
        struct machines *ms = calloc(1, sizeof(*ms));
        if (!ms)
                return -ENOMEM;
        ms->loop = loop;
        pthread_mutex_init(&ms->lock, NULL);
        *ret = ms;
        return 0;
}

struct machines *machines_free(struct machines *ms) {
        if (!ms)
                return NULL;
        for (struct machine *x = ms->list, *n; x; x = n) {
                n = x->next;
                free(x);
        }
        pthread_mutex_destroy(&ms->lock);
        free(ms);
        return NULL;
}

void machines_subscribe(struct machines *ms, machine_state_fn fn, void *ud) {
        ms->fn = fn;
        ms->ud = ud;
}

/* Called with the lock held. */
static struct machine *find_locked(struct machines *ms, const char *name) {
        for (struct machine *x = ms->list; x; x = x->next)
                if (strcmp(x->name, name) == 0)
                        return x;
        return NULL;
}

bool machines_exists(struct machines *ms, const char *name) {
        pthread_mutex_lock(&ms->lock);
        bool found = find_locked(ms, name) != NULL;
        pthread_mutex_unlock(&ms->lock);
        return found;
}

bool machines_image_in_use(struct machines *ms, const char *image) {
        pthread_mutex_lock(&ms->lock);
        bool found = false;
        for (struct machine *x = ms->list; x && !found; x = x->next)
                found = strcmp(x->image, image) == 0;
        pthread_mutex_unlock(&ms->lock);
        return found;
}

void machines_put(struct machines *ms, const struct machine *src) {
        pthread_mutex_lock(&ms->lock);
        struct machine *x = find_locked(ms, src->name);
        if (!x && (x = calloc(1, sizeof(*x)))) {
                struct machine **pp = &ms->list;
                while (*pp && strcmp((*pp)->name, src->name) < 0)
                        pp = &(*pp)->next;
                x->next = *pp;
                *pp = x;
        }
        if (x) {
                struct machine *next = x->next;
                bool destroying = x->destroying;
                *x = *src;
                x->next = next;
                x->destroying = destroying;
        } else
                log_error("out of memory: machine %s is not listed", src->name);
        pthread_mutex_unlock(&ms->lock);
}

struct state_note {
        struct machines *ms;
        char name[HV_NAME_MAX + 1];
        char state[HV_STATE_MAX];
};

static void deliver_state(void *data) {
        struct state_note *n = data;
        if (n->ms->fn)
                n->ms->fn(n->ms->ud, n->name, n->state);
        free(n);
}

static void post_state(struct machines *ms, const char *name, const char *state) {
        struct state_note *n = calloc(1, sizeof(*n));
        if (!n)
                return;
        n->ms = ms;
        snprintf(n->name, sizeof(n->name), "%s", name);
        snprintf(n->state, sizeof(n->state), "%s", state);
        if (loop_post(ms->loop, deliver_state, n) < 0)
                free(n);
}

void machines_set_state(struct machines *ms, const char *name, const char *state) {
        pthread_mutex_lock(&ms->lock);
        struct machine *x = find_locked(ms, name);
        bool changed = x && strcmp(x->state, state) != 0;
        if (changed)
                snprintf(x->state, sizeof(x->state), "%s", state);
        pthread_mutex_unlock(&ms->lock);
        if (changed)
                post_state(ms, name, state);
}

void machines_remove(struct machines *ms, const char *name) {
        pthread_mutex_lock(&ms->lock);
        bool found = false;
        for (struct machine **pp = &ms->list; *pp; pp = &(*pp)->next)
                if (strcmp((*pp)->name, name) == 0) {
                        struct machine *x = *pp;
                        *pp = x->next;
                        free(x);
                        found = true;
                        break;
                }
        pthread_mutex_unlock(&ms->lock);
        if (found)
                post_state(ms, name, "undefined");
}

int machines_begin_destroy(struct machines *ms, const char *name) {
        pthread_mutex_lock(&ms->lock);
        struct machine *x = find_locked(ms, name);
        int r = !x ? -ENOENT : x->destroying ? -EBUSY : 0;
        if (r == 0)
                x->destroying = true;
        pthread_mutex_unlock(&ms->lock);
        return r;
}

void machines_end_destroy(struct machines *ms, const char *name) {
        pthread_mutex_lock(&ms->lock);
        struct machine *x = find_locked(ms, name);
        if (x)
                x->destroying = false;
        pthread_mutex_unlock(&ms->lock);
}

int machines_snapshot(struct machines *ms, struct machine **ret) {
        pthread_mutex_lock(&ms->lock);
        size_t n = 0;
        for (struct machine *x = ms->list; x; x = x->next)
                n++;
        struct machine *a = calloc(n ? n : 1, sizeof(*a));
        if (a) {
                size_t i = 0;
                for (struct machine *x = ms->list; x; x = x->next)
                        a[i++] = *x;
                for (i = 0; i < n; i++)
                        a[i].next = NULL;
        }
        pthread_mutex_unlock(&ms->lock);
        if (!a)
                return -ENOMEM;
        *ret = a;
        return (int)n;
}

/* A machine directory holds only these files of ours, and what a crash can leave behind: the
 * temp files of hv_write_file_atomic ("machine.meta.tmp.PID") and the O_DIRECT probe. */
static bool our_file(const char *name) {
        static const char *const files[] = { "root.raw", "scratch.img", "root.raw.tmp", "console.log", "machine.meta",
                                             ".odirect-probe" };
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                if (strcmp(name, files[i]) == 0)
                        return true;
        const char *tmp = "machine.meta.tmp.";
        return strncmp(name, tmp, strlen(tmp)) == 0 && name[strlen(tmp)] && strspn(name + strlen(tmp), "0123456789") == strlen(name + strlen(tmp));
}

/* Removes our files (all but the disks with keep_disks) and, without keep_disks, the directory.
 * The .creating marker goes last, only once nothing else is left: a directory that cannot be
 * emptied keeps it, so the next start-up still knows it for a half-made machine. */
bool machine_dir_remove(const char *dir, bool keep_disks) {
        DIR *d = opendir(dir);
        if (!d)
                return errno == ENOENT;
        bool others = false;
        struct dirent *de;
        while ((de = readdir(d))) {
                const char *n = de->d_name;
                if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, ".creating"))
                        continue;
                if (!our_file(n) || (keep_disks && (!strcmp(n, "root.raw") || !strcmp(n, "scratch.img")))) {
                        others |= !keep_disks;
                        continue;
                }
                if (unlinkat(dirfd(d), n, 0) < 0 && errno != ENOENT) {
                        log_warning("cannot remove %s/%s: %m", dir, n);
                        others = true;
                }
        }
        closedir(d);
        if (others) {
                log_warning("cannot remove %s: it holds files that are not hvwgd's; remove them and restart hvwgd (or DestroyMachine)",
                            dir);
                return false;
        }
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%.4000s/.creating", dir);
        if (unlink(p) < 0 && errno != ENOENT)
                log_warning("cannot remove %s: %m", p);
        if (!keep_disks && rmdir(dir) < 0 && errno != ENOENT) {
                log_warning("cannot remove %s: %m", dir);
                return false;
        }
        return true;
}

static bool exists_in(const char *dir, const char *name) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%.4000s/%s", dir, name);
        return access(p, F_OK) == 0;
}

/* Start-up, before anything else looks at MachineRoot: directories a crash left mid-create are
 * removed, with a log line each. They still have .creating — or, killed between mkdir and the
 * marker, hold nothing at all of a machine (no record, no disks; kept disks are never touched). */
int machine_clean_interrupted(const char *machine_root) {
        DIR *d = opendir(machine_root);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                char dir[HV_STORE_DIR_MAX];
                if (!hv_name_valid(de->d_name))
                        continue;
                snprintf(dir, sizeof(dir), "%.511s/%.64s", machine_root, de->d_name);
                bool marked = exists_in(dir, ".creating");
                bool empty = !exists_in(dir, "machine.meta") && !exists_in(dir, "root.raw") && !exists_in(dir, "scratch.img") &&
                             !exists_in(dir, "root.raw.tmp");
                if (!marked && !empty)
                        continue;
                if (machine_dir_remove(dir, false))
                        log_info("removed %s: a machine creation interrupted by a crash", dir);
        }
        closedir(d);
        return 0;
}

