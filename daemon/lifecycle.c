/* lifecycle.c: start, stop, reboot, console, details and the end of a machine, each on a
 * thread; transient machines torn down when their guest stops. */
#define _GNU_SOURCE
#include "lifecycle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libvirt/virterror.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "scratch.h"

#define MAX_BUSY 64 /* operations in flight at once; more are refused (LimitsExceeded) */

struct life_call;

struct lifecycle {
        struct loop *loop;
        struct virt *virt;
        struct machines *ms;
        struct hv_conf_snap *conf;
        unsigned busy;
        struct life_call *destroys; /* in flight: a second DestroyMachine joins one */
};

/* A destroy's other callers, answered with its result. */
struct waiter {
        life_done_fn done;
        void *ud;
        struct waiter *next;
};

struct life_call {
        struct lifecycle *lc;
        struct hv_conf_snap *conf;
        enum life_op op;
        char name[HV_NAME_MAX + 1];
        struct life_args a;
        char reason[HV_REASON_MAX];
        struct machine m; /* the record when the call began */
        life_done_fn done;
        void *ud;
        struct waiter *waiters;
        int r;
        struct hv_error e;
        struct life_result res;
        struct life_call *next;
};

HV_DEFINE_CLEANUP(virConnectPtr, virConnectClose)
HV_DEFINE_CLEANUP(virDomainPtr, virDomainFree)

/* Forces a domain off. A guest that powered off by itself meanwhile is what we wanted: the
 * call failing then is no error (DestroyMachine racing the guest's own power-off). */
static int force_off(virDomainPtr dom, struct hv_error *e, const char *name) {
        if (virDomainIsActive(dom) != 1)
                return 0;
        if (hv_fault("poweroff-race"))
                (void)virDomainDestroy(dom); /* the guest powers off right here */
        if (virDomainDestroy(dom) == 0 || virDomainIsActive(dom) == 0)
                return 0;
        return virt_fail(e, "stopping", name);
}

/* ---- console logs of removed machines: MachineRoot/.logs/NAME-UUID.log ---- */

struct kept_log {
        char name[NAME_MAX + 1];
        time_t mtime;
};

static int by_mtime(const void *a, const void *b) {
        const struct kept_log *x = a, *y = b;
        return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Keeps at most keep logs, none older than days. */
static void prune_logs(const char *dir, unsigned keep, unsigned days) {
        DIR *d = opendir(dir);
        if (!d)
                return;
        size_t n = 0, cap = 0;
        struct kept_log *a = NULL;
        struct dirent *de;
        time_t oldest = time(NULL) - (time_t)days * 86400;
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                struct stat st;
                if (l < 5 || strcmp(de->d_name + l - 4, ".log") != 0 || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(st.st_mode))
                        continue;
                if (st.st_mtime < oldest) {
                        (void)unlinkat(dirfd(d), de->d_name, 0);
                        continue;
                }
                if (n == cap) {
                        struct kept_log *b = realloc(a, (cap = cap ? cap * 2 : 64) * sizeof(*a));
                        if (!b)
                                break;
                        a = b;
                }
                snprintf(a[n].name, sizeof(a[n].name), "%s", de->d_name);
                a[n++].mtime = st.st_mtime;
        }
        if (n > keep) {
                qsort(a, n, sizeof(*a), by_mtime);
                for (size_t i = 0; i < n - keep; i++)
                        (void)unlinkat(dirfd(d), a[i].name, 0);
        }
        free(a);
        closedir(d);
}

/* Moves the machine's console log to .logs (mode 0600: guests print secrets). out: its new
 * path, "" when it is not kept (KeepConsoleLogs=0, no log, or it could not be moved: logged). */
static void keep_console_log(const struct hv_conf *cf, const struct machine *x, char *out, size_t len) {
        out[0] = 0;
        if (!cf->keep_console_logs)
                return;
        char from[PATH_MAX], dir[HV_STORE_DIR_MAX];
        snprintf(from, sizeof(from), "%s/%s/console.log", cf->machine_root, x->name);
        snprintf(dir, sizeof(dir), "%.511s/.logs", cf->machine_root);
        struct stat st;
        if (lstat(from, &st) < 0 || !S_ISREG(st.st_mode))
                return;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                log_warning("cannot create %s: %m; the console log of %s is not kept", dir, x->name);
                return;
        }
        snprintf(out, len, "%s/%s-%s.log", dir, x->name, x->uuid[0] ? x->uuid : "unknown");
        if (chmod(from, 0600) < 0 || rename(from, out) < 0 || hv_fsync_dir(dir) < 0) {
                log_warning("cannot keep the console log of %s as %s: %m", x->name, out);
                out[0] = 0;
                return;
        }
        prune_logs(dir, cf->keep_console_logs, cf->keep_console_logs_days);
}

/* ---- the work, on the call's thread ---- */

static virDomainPtr lookup(struct life_call *k, virConnectPtr *c) {
        if (!(*c = virt_conn(k->lc->virt, &k->e)))
                return NULL;
        virDomainPtr dom = virDomainLookupByName(*c, k->name);
        if (!dom)
                hv_fail(&k->e, HV_E_NO_SUCH_MACHINE, ENOENT, "machine %s has no libvirt domain (state %s): DestroyMachine clears what is left",
                        k->name, k->m.state);
        return dom;
}

/* The reply must not run ahead of the state: libvirt's lifecycle events come on its own
 * thread, maybe after the reply. When libvirt now reports the state an operation led to, it is
 * recorded — unless an event came first (it knows better). */
static void note_state(struct life_call *k, virDomainPtr dom, int want, const char *state, const char *reason) {
        int st = 0, why = 0;
        if (virDomainGetState(dom, &st, &why, 0) == 0 && st == want)
                machines_set_state_since(k->lc->ms, k->name, k->m.state_gen, state, reason ? reason : virt_state_reason(st, why));
}

static int do_start(struct life_call *k) {
        _cleanup_(virConnectClosep) virConnectPtr c = NULL;
        _cleanup_(virDomainFreep) virDomainPtr dom = lookup(k, &c);
        if (!dom)
                return -ENOENT;
        if (virDomainIsActive(dom) == 1)
                return 0;
        if (virDomainCreate(dom) < 0)
                return virt_fail(&k->e, "starting", k->name);
        note_state(k, dom, VIR_DOMAIN_RUNNING, "running", "booted");
        return 0;
}

static int do_stop(struct life_call *k) {
        _cleanup_(virConnectClosep) virConnectPtr c = NULL;
        _cleanup_(virDomainFreep) virDomainPtr dom = lookup(k, &c);
        if (!dom)
                return -ENOENT;
        if (virDomainIsActive(dom) != 1)
                return 0;
        if (k->a.force) {
                int r = force_off(dom, &k->e, k->name);
                if (r == 0)
                        note_state(k, dom, VIR_DOMAIN_SHUTOFF, "shut-off", NULL);
                return r;
        }
        if (virDomainShutdown(dom) < 0 && virDomainIsActive(dom) == 1)
                return virt_fail(&k->e, "asking the guest to shut down", k->name);
        uint64_t timeout = k->a.have_timeout ? k->a.timeout_sec : k->conf->c.stop_timeout_sec;
        if (timeout == 0)
                return 0;
        uint64_t until = hv_mono_usec() + timeout * 1000000ULL;
        while (virDomainIsActive(dom) == 1) {
                if (hv_mono_usec() >= until) {
                        log_info("machine %s did not shut down within %llu s: forcing it off", k->name, (unsigned long long)timeout);
                        return force_off(dom, &k->e, k->name);
                }
                usleep(200000);
        }
        return 0;
}

static int do_reboot(struct life_call *k) {
        _cleanup_(virConnectClosep) virConnectPtr c = NULL;
        _cleanup_(virDomainFreep) virDomainPtr dom = lookup(k, &c);
        if (!dom)
                return -ENOENT;
        if (virDomainIsActive(dom) != 1)
                return hv_fail(&k->e, HV_E_FAILED, EINVAL, "machine %s is not running (%s): start it instead", k->name, k->m.state);
        return virDomainReboot(dom, 0) < 0 ? virt_fail(&k->e, "rebooting", k->name) : 0;
}

static int do_console(struct life_call *k) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s/console.log", k->conf->c.machine_root, k->name);
        int fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                int err = fd < 0 ? errno : EINVAL;
                if (fd >= 0)
                        close(fd);
                if (err == ENOENT)
                        return hv_fail(&k->e, HV_E_FAILED, ENOENT, "machine %s has no console log yet (it has not run)", k->name);
                return hv_fail_errno(&k->e, HV_E_ERRNO, err, "cannot open the console log %s", p);
        }
        k->res.fd = fd;
        return 0;
}

static uint64_t allocated(const char *path) {
        struct stat st;
        return path[0] && stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static int do_details(struct life_call *k) {
        k->res.m = k->m;
        snprintf(k->res.root_path, sizeof(k->res.root_path), "%s/%s/root.raw", k->conf->c.machine_root, k->name);
        snprintf(k->res.console_path, sizeof(k->res.console_path), "%s/%s/console.log", k->conf->c.machine_root, k->name);
        k->res.root_allocated = allocated(k->res.root_path);
        k->res.scratch_allocated = allocated(k->m.scratch_path);
        char iso[PATH_MAX];
        struct stat st;
        snprintf(iso, sizeof(iso), "%s/%s/context.iso", k->conf->c.machine_root, k->name);
        k->res.context_bytes = stat(iso, &st) == 0 ? (uint64_t)st.st_size : 0;
        return 0;
}

/* Stops and undefines the domain (if libvirt has it), keeps the console log, then removes the
 * disks and the directory (with keep_disks: the disks and the directory stay). */
static int do_destroy(struct life_call *k) {
        _cleanup_(virConnectClosep) virConnectPtr c = virt_conn(k->lc->virt, &k->e);
        if (!c)
                return -ENOTCONN;
        char scratch_path[PATH_MAX] = "";
        _cleanup_(virDomainFreep) virDomainPtr dom = virDomainLookupByName(c, k->name);
        if (dom) {
                struct dom_meta meta;
                if (!virt_read_meta(dom, &meta))
                        return hv_fail(&k->e, HV_E_NO_SUCH_MACHINE, ENOENT, "domain %s is not an hvwgd machine", k->name);
                snprintf(scratch_path, sizeof(scratch_path), "%s", meta.scratch_path);
                int r = force_off(dom, &k->e, k->name);
                if (r < 0)
                        return r;
                if (virt_undefine(dom) < 0)
                        return virt_fail(&k->e, "undefining", k->name);
        }
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/%s", k->conf->c.machine_root, k->name);
        if (k->a.keep_disks)
                return 0; /* the directory stays as it is: DestroyMachine again removes it */
        struct stat st;
        if (scratch_path[0] && stat(scratch_path, &st) == 0 && S_ISBLK(st.st_mode))
                scratch_release_device(scratch_path);
        keep_console_log(&k->conf->c, &k->m, k->res.console_log, sizeof(k->res.console_log));
        machine_dir_remove(dir, false);
        return 0;
}

static void call_free(struct life_call *k) {
        for (struct waiter *w = k->waiters, *n; w; w = n) {
                n = w->next;
                free(w);
        }
        hv_conf_snap_unref(k->conf);
        free(k);
}

/* On the loop: the registry first, then the callers. */
static void call_done(void *data) {
        struct life_call *k = data;
        struct lifecycle *lc = k->lc;
        lc->busy--;
        if (k->op == LIFE_DESTROY) {
                for (struct life_call **pp = &lc->destroys; *pp; pp = &(*pp)->next)
                        if (*pp == k) {
                                *pp = k->next;
                                break;
                        }
                if (k->r < 0) {
                        machines_end_destroy(lc->ms, k->name);
                        log_warning("destroying machine %s failed: %s", k->name, k->e.msg);
                } else if (k->a.keep_disks) {
                        machines_end_destroy(lc->ms, k->name);
                        machines_set_state(lc->ms, k->name, "undefined", "disks-kept");
                        log_info("machine %s destroyed, its disks kept in its directory (DestroyMachine again removes them)", k->name);
                } else {
                        machines_remove(lc->ms, k->name, k->reason, k->res.console_log);
                        log_info("machine %s removed (%s)%s%s", k->name, k->reason, k->res.console_log[0] ? "; console log kept as " : "",
                                 k->res.console_log);
                }
        }
        if (k->done)
                k->done(k->ud, k->r, &k->e, &k->res);
        else if (k->res.fd >= 0)
                close(k->res.fd);
        for (struct waiter *w = k->waiters; w; w = w->next)
                w->done(w->ud, k->r, &k->e, &k->res);
        call_free(k);
}

static void *call_thread(void *arg) {
        struct life_call *k = arg;
        switch (k->op) {
        case LIFE_START: k->r = do_start(k); break;
        case LIFE_STOP: k->r = do_stop(k); break;
        case LIFE_REBOOT: k->r = do_reboot(k); break;
        case LIFE_CONSOLE: k->r = do_console(k); break;
        case LIFE_DETAILS: k->r = do_details(k); break;
        case LIFE_DESTROY: k->r = do_destroy(k); break;
        }
        if (loop_post(k->lc->loop, call_done, k) < 0)
                log_error("machine %s: the result of an operation is lost (out of memory)", k->name);
        return NULL;
}

static struct life_call *destroy_in_flight(struct lifecycle *lc, const char *name) {
        for (struct life_call *k = lc->destroys; k; k = k->next)
                if (strcmp(k->name, name) == 0)
                        return k;
        return NULL;
}

int lifecycle_run(struct lifecycle *lc, enum life_op op, const char *name, const struct life_args *a, life_done_fn done,
                  void *ud, struct hv_error *e) {
        struct machine m;
        if (!machines_get(lc->ms, name, &m))
                return hv_fail(e, HV_E_NO_SUCH_MACHINE, ENOENT, "no machine named %s", name);
        if (m.destroying && op == LIFE_DESTROY) {
                struct life_call *k = destroy_in_flight(lc, name);
                struct waiter *w = k && done ? calloc(1, sizeof(*w)) : NULL;
                if (!k || !done)
                        return hv_fail(e, HV_E_FAILED, EBUSY, "machine %s is already being destroyed", name);
                if (!w)
                        return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
                *w = (struct waiter){ .done = done, .ud = ud, .next = k->waiters };
                k->waiters = w;
                return 0;
        }
        if (m.destroying && op != LIFE_DETAILS && op != LIFE_CONSOLE)
                return hv_fail(e, HV_E_FAILED, EBUSY, "machine %s is being destroyed", name);
        if (lc->busy >= MAX_BUSY)
                return hv_fail(e, HV_E_LIMITS, EAGAIN, "%u machine operations are in progress; try again when some have ended", lc->busy);
        struct life_call *k = calloc(1, sizeof(*k));
        if (!k)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        *k = (struct life_call){ .lc = lc, .conf = hv_conf_snap_ref(lc->conf), .op = op, .m = m, .done = done, .ud = ud,
                                 .res.fd = -1 };
        if (a)
                k->a = *a;
        k->a.reason = NULL;
        snprintf(k->name, sizeof(k->name), "%s", name);
        snprintf(k->reason, sizeof(k->reason), "%s", a && a->reason ? a->reason : "destroyed");
        if (op == LIFE_DESTROY && machines_begin_destroy(lc->ms, name) < 0) {
                call_free(k);
                return hv_fail(e, HV_E_FAILED, EBUSY, "machine %s is already being destroyed", name);
        }
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&t, &attr, call_thread, k);
        pthread_attr_destroy(&attr);
        if (r != 0) {
                if (op == LIFE_DESTROY)
                        machines_end_destroy(lc->ms, name);
                call_free(k);
                return hv_fail(e, HV_E_FAILED, r, "cannot start a thread for machine %s", name);
        }
        lc->busy++;
        if (op == LIFE_DESTROY) {
                k->next = lc->destroys;
                lc->destroys = k;
        }
        return 0;
}

/* A transient machine whose guest stopped is torn down. */
static void on_machine_event(void *ud, const struct machine_event *ev) {
        struct lifecycle *lc = ud;
        if (ev->kind != MACHINE_STATE || !ev->m.transient || ev->m.destroying)
                return;
        const char *why = machine_end_reason(ev->m.state, ev->m.reason);
        if (!why)
                return;
        log_info("transient machine %s stopped (%s): removing it", ev->m.name, why);
        struct life_args a = { .reason = why };
        struct hv_error e = { 0 };
        if (lifecycle_run(lc, LIFE_DESTROY, ev->m.name, &a, NULL, NULL, &e) < 0 && e.err != EBUSY)
                log_warning("transient machine %s: %s (DestroyMachine removes it)", ev->m.name, e.msg);
}

int lifecycle_new(struct loop *loop, struct virt *virt, struct machines *ms, struct hv_conf_snap *conf, struct lifecycle **ret) {
        struct lifecycle *lc = calloc(1, sizeof(*lc));
        if (!lc)
                return -ENOMEM;
        *lc = (struct lifecycle){ .loop = loop, .virt = virt, .ms = ms, .conf = hv_conf_snap_ref(conf) };
        int r = machines_subscribe(ms, on_machine_event, lc);
        if (r < 0) {
                lifecycle_free(lc);
                return r;
        }
        *ret = lc;
        return 0;
}

struct lifecycle *lifecycle_free(struct lifecycle *lc) {
        if (!lc)
                return NULL;
        hv_conf_snap_unref(lc->conf);
        free(lc);
        return NULL;
}

void lifecycle_set_conf(struct lifecycle *lc, struct hv_conf_snap *conf) {
        hv_conf_snap_unref(lc->conf);
        lc->conf = hv_conf_snap_ref(conf);
}

unsigned lifecycle_busy(struct lifecycle *lc) {
        return lc ? lc->busy : 0;
}
