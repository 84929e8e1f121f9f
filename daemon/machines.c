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

#define MAX_SUBSCRIBERS 4

struct machines {
        struct loop *loop;
        pthread_mutex_t lock;
        struct machine *list; /* in name order */
        struct {
                machine_event_fn fn;
                void *ud;
        } subs[MAX_SUBSCRIBERS];
        unsigned n_subs;
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

int machines_subscribe(struct machines *ms, machine_event_fn fn, void *ud) {
        if (ms->n_subs == MAX_SUBSCRIBERS)
                return -ENOSPC;
        ms->subs[ms->n_subs].fn = fn;
        ms->subs[ms->n_subs++].ud = ud;
        return 0;
}

/* Called with the lock held. */
static struct machine *find_locked(struct machines *ms, const char *name) {
        for (struct machine *x = ms->list; x; x = x->next)
                if (strcmp(x->name, name) == 0)
                        return x;
        return NULL;
}

bool machines_exists(struct machines *ms, const char *name) {
        return machines_get(ms, name, NULL);
}

bool machines_get(struct machines *ms, const char *name, struct machine *ret) {
        pthread_mutex_lock(&ms->lock);
        struct machine *x = find_locked(ms, name);
        if (x && ret) {
                *ret = *x;
                ret->next = NULL;
        }
        pthread_mutex_unlock(&ms->lock);
        return x != NULL;
}

unsigned machines_using_image(struct machines *ms, const char *image, char *buf, size_t len) {
        unsigned n = 0;
        size_t used = 0;
        if (len)
                buf[0] = 0;
        pthread_mutex_lock(&ms->lock);
        for (struct machine *x = ms->list; x; x = x->next) {
                if (strcmp(x->image, image) != 0)
                        continue;
                if (used < len) {
                        int w = snprintf(buf + used, len - used, "%s%s", n ? ", " : "", x->name);
                        used += w > 0 ? (size_t)w : 0;
                }
                n++;
        }
        pthread_mutex_unlock(&ms->lock);
        return n;
}

void machines_totals(struct machines *ms, struct machine_totals *t) {
        *t = (struct machine_totals){ 0 };
        pthread_mutex_lock(&ms->lock);
        for (struct machine *x = ms->list; x; x = x->next) {
                /* leftovers without a domain (undefined) can no longer run, but their disks stay */
                if (strcmp(x->state, "undefined") != 0) {
                        t->cores += x->cores;
                        t->memory_mib += x->memory_mib;
                }
                t->scratch_bytes += x->scratch_bytes;
        }
        pthread_mutex_unlock(&ms->lock);
}

struct note {
        struct machines *ms;
        struct machine_event ev;
};

static void deliver(void *data) {
        struct note *n = data;
        for (unsigned i = 0; i < n->ms->n_subs; i++)
                n->ms->subs[i].fn(n->ms->subs[i].ud, &n->ev);
        free(n);
}

static void post_event(struct machines *ms, enum machine_event_kind kind, const struct machine *x, const char *reason,
                       const char *console_log) {
        struct note *n = calloc(1, sizeof(*n));
        if (!n)
                return;
        n->ms = ms;
        n->ev.kind = kind;
        n->ev.m = *x;
        n->ev.m.next = NULL;
        snprintf(n->ev.reason, sizeof(n->ev.reason), "%s", reason ? reason : "");
        snprintf(n->ev.console_log, sizeof(n->ev.console_log), "%s", console_log ? console_log : "");
        if (loop_post(ms->loop, deliver, n) < 0)
                free(n);
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
        struct machine copy;
        if (x) {
                struct machine *next = x->next;
                bool destroying = x->destroying;
                *x = *src;
                x->next = next;
                x->destroying = destroying;
                if (!x->state_usec)
                        x->state_usec = hv_now_usec();
                copy = *x;
        } else
                log_error("out of memory: machine %s is not listed", src->name);
        pthread_mutex_unlock(&ms->lock);
        if (x)
                post_event(ms, MACHINE_STATE, &copy, copy.reason, NULL);
}

static void set_state(struct machines *ms, const char *name, const uint64_t *gen, const char *state, const char *reason) {
        pthread_mutex_lock(&ms->lock);
        struct machine *x = find_locked(ms, name);
        reason = reason ? reason : "";
        bool changed = x && (!gen || x->state_gen == *gen) &&
                       (strcmp(x->state, state) != 0 || (*reason && strcmp(x->reason, reason) != 0));
        struct machine copy;
        if (changed) {
                snprintf(x->state, sizeof(x->state), "%s", state);
                snprintf(x->reason, sizeof(x->reason), "%s", reason);
                x->state_usec = hv_now_usec();
                x->state_gen++;
                copy = *x;
        }
        pthread_mutex_unlock(&ms->lock);
        if (changed)
                post_event(ms, MACHINE_STATE, &copy, copy.reason, NULL);
}

void machines_set_state(struct machines *ms, const char *name, const char *state, const char *reason) {
        set_state(ms, name, NULL, state, reason);
}

void machines_set_state_since(struct machines *ms, const char *name, uint64_t gen, const char *state, const char *reason) {
        set_state(ms, name, &gen, state, reason);
}

void machines_remove(struct machines *ms, const char *name, const char *reason, const char *console_log) {
        pthread_mutex_lock(&ms->lock);
        struct machine *found = NULL;
        for (struct machine **pp = &ms->list; *pp; pp = &(*pp)->next)
                if (strcmp((*pp)->name, name) == 0) {
                        found = *pp;
                        *pp = found->next;
                        break;
                }
        pthread_mutex_unlock(&ms->lock);
        if (found) {
                snprintf(found->state, sizeof(found->state), "undefined");
                post_event(ms, MACHINE_REMOVED, found, reason, console_log);
                free(found);
        }
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

const char *machine_end_reason(const char *state, const char *reason) {
        if ((strcmp(state, "shut-off") != 0 && strcmp(state, "crashed") != 0 && strcmp(state, "undefined") != 0) ||
            strcmp(reason, "disks-kept") == 0)
                return NULL;
        static const char *const known[] = { "poweroff", "crash", "destroyed", "host-shutdown" };
        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                if (strcmp(reason, known[i]) == 0)
                        return known[i];
        return strcmp(state, "crashed") == 0 ? "crash" : "host-shutdown";
}

int machine_record_format(const struct machine *x, char *buf, size_t len) {
        int n = snprintf(buf, len,
                         "# hvwgd machine record\nname=%s\nuuid=%s\nimage=%s\ncores=%u\nmemory_mib=%llu\nscratch_bytes=%llu\n"
                         "scratch_path=%s\nscratch_uuid=%s\nhypervisor=%s\nnetwork=%s\nowner=%u\ntransient=%d\ncreated_usec=%llu\n",
                         x->name, x->uuid, x->image, x->cores, (unsigned long long)x->memory_mib, (unsigned long long)x->scratch_bytes,
                         x->scratch_path, x->scratch_uuid, x->hypervisor, x->network, x->owner, x->transient ? 1 : 0,
                         (unsigned long long)x->created_usec);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

/* Hostile text is possible (the directory may have been edited): every field is bounded and
 * a line that does not parse is skipped. */
void machine_record_parse(const char *text, struct machine *x) {
        for (const char *line = text; line && *line;) {
                const char *eol = strchr(line, '\n');
                size_t n = eol ? (size_t)(eol - line) : strlen(line);
                char l[1100];
                if (n < sizeof(l)) {
                        memcpy(l, line, n);
                        l[n] = 0;
                        char *eq = strchr(l, '=');
                        if (eq && l[0] != '#') {
                                *eq = 0;
                                const char *k = l, *v = eq + 1;
                                char *end = NULL;
                                unsigned long long u = strtoull(v, &end, 10);
                                bool num = *v >= '0' && *v <= '9' && end && !*end;
                                if (!strcmp(k, "uuid") && strlen(v) < sizeof(x->uuid))
                                        snprintf(x->uuid, sizeof(x->uuid), "%s", v);
                                else if (!strcmp(k, "image") && hv_name_valid(v))
                                        snprintf(x->image, sizeof(x->image), "%s", v);
                                else if (!strcmp(k, "cores") && num && u <= UINT_MAX)
                                        x->cores = (unsigned)u;
                                else if (!strcmp(k, "memory_mib") && num)
                                        x->memory_mib = u;
                                else if (!strcmp(k, "scratch_bytes") && num)
                                        x->scratch_bytes = u;
                                else if (!strcmp(k, "scratch_path") && strlen(v) < sizeof(x->scratch_path))
                                        snprintf(x->scratch_path, sizeof(x->scratch_path), "%s", v);
                                else if (!strcmp(k, "scratch_uuid") && strlen(v) < sizeof(x->scratch_uuid))
                                        snprintf(x->scratch_uuid, sizeof(x->scratch_uuid), "%s", v);
                                else if (!strcmp(k, "hypervisor") && strlen(v) < sizeof(x->hypervisor))
                                        snprintf(x->hypervisor, sizeof(x->hypervisor), "%s", v);
                                else if (!strcmp(k, "network") && strlen(v) < sizeof(x->network))
                                        snprintf(x->network, sizeof(x->network), "%s", v);
                                else if (!strcmp(k, "owner") && num && u <= UINT_MAX)
                                        x->owner = (unsigned)u;
                                else if (!strcmp(k, "transient") && num)
                                        x->transient = u != 0;
                                else if (!strcmp(k, "created_usec") && num)
                                        x->created_usec = u;
                        }
                }
                line = eol ? eol + 1 : NULL;
        }
}

/* A machine directory holds only these files of ours, and what a crash can leave behind: the
 * temp files of hv_write_file_atomic ("machine.meta.tmp.PID") and the O_DIRECT probe. */
static bool our_file(const char *name) {
        static const char *const files[] = { "root.raw", "scratch.img", "root.raw.tmp", "console.log", "machine.meta",
                                             ".odirect-probe", "context.iso", "context.iso.tmp" };
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

