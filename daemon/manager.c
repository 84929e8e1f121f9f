/* manager.c: the daemon's parts put together, the loop run, stop and reload. */
#define _GNU_SOURCE
#include "manager.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "bus.h"
#include "subscriptions.h"
#include "fetch.h"
#include "log.h"

#define STOP_TIMEOUT_USEC (5 * 1000000ULL)

struct manager *manager_new(const struct hv_conf *conf, const char *config_path) {
        struct manager *m = calloc(1, sizeof(*m));
        if (!m)
                return NULL;
        m->conf = *conf;
        m->config_required = config_path != NULL;
        if ((config_path && !(m->config_path = strdup(config_path))) || !(m->snap = hv_conf_snap_new(&m->conf))) {
                free(m->config_path);
                free(m);
                return NULL;
        }
        m->hvwg_gid = (gid_t)-1;
        return m;
}

static struct job_limits limits_of(const struct hv_conf *c) {
        return (struct job_limits){ .max_concurrent = c->max_concurrent, .running_per_user = hv_conf_running_per_user(c) };
}

static void notify_ready(void) {
        (void)sd_notifyf(0, "READY=1\nSTATUS=Serving %s", HV_BUS_NAME);
}

static void check_stop(struct manager *m) {
        if (m->stopping && jobs_count(m->jobs) == 0)
                sd_event_exit(m->event, 0);
}

static void on_job_event(void *ud, enum job_event ev, struct job *j) {
        (void)j;
        if (ev == JOB_REMOVED)
                check_stop(ud);
}

static int on_stop_timeout(sd_event_source *s, uint64_t usec, void *ud) {
        (void)s; (void)usec;
        struct manager *m = ud;
        log_warning("jobs did not end within 5 s of the stop request; exiting anyway (leftovers are removed at the next start)");
        sd_event_exit(m->event, 0);
        return 0;
}

void manager_stop(struct manager *m) {
        if (m->stopping)
                return;
        m->stopping = true;
        (void)sd_notify(0, "STOPPING=1\nSTATUS=Stopping: canceling jobs");
        jobs_stop(m->jobs);
        (void)sd_event_add_time_relative(m->event, NULL, CLOCK_MONOTONIC, STOP_TIMEOUT_USEC, 0, on_stop_timeout, m);
        check_stop(m);
}

void manager_thread_started(struct manager *m) {
        m->n_threads++;
}

void manager_thread_done(struct manager *m) {
        m->n_threads--;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ud) {
        (void)s;
        log_info("received %s, stopping", strsignal((int)si->ssi_signo));
        manager_stop(ud);
        return 0;
}

/* One hvwgd per store: an exclusive lock on STORE/.hvwgd.lock, taken before anything in the
 * store is touched (the start-up cleanup of .tmp and of half-created machines would otherwise
 * delete a running daemon's work). The fd stays open for the life of the process. */
static int lock_store(const char *dir, const char *what) {
        int r = hv_mkdir_p(dir, 0755);
        if (r < 0) {
                log_error("cannot create %s %s: %s", what, dir, strerror(-r));
                return r;
        }
        char path[PATH_MAX], pid[32] = "";
        snprintf(path, sizeof(path), "%s/.hvwgd.lock", dir);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
                log_error("cannot open the lock file %s: %m", path);
                return -errno;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int err = errno;
                ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
                pid[n > 0 ? n : 0] = 0;
                pid[strcspn(pid, "\n")] = 0;
                if (err == EWOULDBLOCK)
                        log_error("%s %s is in use by another hvwgd%s%s%s: not starting (nothing was touched)", what, dir,
                                  pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
                else
                        log_error("cannot lock %s: %s", path, strerror(err));
                close(fd);
                return -err;
        }
        int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len)
                log_warning("cannot write the pid into %s: %m", path);
        return fd; /* kept open: the lock lives as long as the process */
}

void manager_conf_warn(const char *file, unsigned line, const char *msg, void *ud) {
        (void)ud;
        log_warning("%s:%u: %s", file, line, msg);
}

/* SIGHUP (systemctl reload): the configuration is read again on a thread (reading a file may
 * wait; the loop never does) and applied on the loop. New values apply to jobs started from
 * then on, running jobs keep the snapshot they started with, machines are not touched. A file
 * with an error leaves the running configuration as it was. A SIGHUP during a reload starts
 * another one after it. */
struct reload_req {
        struct manager *m;
        char *path;
        bool required;
        struct hv_conf next;
        struct hv_error err;
        int r;
};

static void start_reload(struct manager *m);

static void reload_done(void *data) {
        struct reload_req *q = data;
        struct manager *m = q->m;
        if (q->r < 0)
                log_error("reload: configuration error, keeping the running configuration: %s", q->err.msg);
        else {
                char kept[256];
                hv_conf_apply_reload(&m->conf, &q->next, kept, sizeof(kept));
                if (kept[0])
                        log_warning("reload: %s cannot change while hvwgd runs: kept as they were (restart hvwgd to apply)", kept);
                struct hv_conf_snap *snap = hv_conf_snap_new(&m->conf);
                if (!snap)
                        log_error("reload: out of memory; new jobs keep the previous configuration");
                else {
                        hv_conf_snap_unref(m->snap);
                        m->snap = snap;
                        lifecycle_set_conf(m->life, snap);
                        log_info("reload: configuration re-read from %s; it applies to new jobs", q->path);
                }
        }
        free(q->path);
        free(q);
        manager_thread_done(m);
        m->reloading = false;
        notify_ready();
        struct job_limits limits = limits_of(&m->conf);
        jobs_set_limits(m->jobs, &limits); /* more slots may have opened */
        if (m->reload_again) {
                m->reload_again = false;
                start_reload(m);
        }
}

static void *reload_thread(void *arg) {
        struct reload_req *q = arg;
        hv_conf_defaults(&q->next);
        q->r = hv_conf_load(&q->next, q->path, q->required, manager_conf_warn, NULL, &q->err);
        if (loop_post(q->m->loop, reload_done, q) < 0)
                log_error("reload: lost (out of memory)");
        return NULL;
}

static void start_reload(struct manager *m) {
        if (m->reloading) {
                m->reload_again = true;
                return;
        }
        struct reload_req *q = calloc(1, sizeof(*q));
        if (!q || !(q->path = strdup(m->config_path ? m->config_path : HV_DEFAULT_CONFIG))) {
                free(q);
                log_error("reload: out of memory");
                return;
        }
        q->m = m;
        q->required = m->config_required;
        (void)sd_notifyf(0, "RELOADING=1\nSTATUS=Reloading the configuration\nMONOTONIC_USEC=%llu",
                         (unsigned long long)hv_mono_usec());
        pthread_t t;
        if (pthread_create(&t, NULL, reload_thread, q) != 0) {
                log_error("reload: cannot start a thread: %m");
                free(q->path);
                free(q);
                notify_ready();
                return;
        }
        pthread_detach(t);
        manager_thread_started(m);
        m->reloading = true;
}

static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *ud) {
        (void)s; (void)si;
        start_reload(ud);
        return 0;
}

static void resolve_hypervisor(struct manager *m) {
        const char *h = m->conf.hypervisor;
        const char *why = "configured";
        if (strcmp(h, "auto") == 0) {
                _cleanup_free_ char *caps = NULL;
                if (hv_read_file("/proc/xen/capabilities", 4096, &caps, NULL) >= 0 && strstr(caps, "control_d")) {
                        h = "xen";
                        why = "auto: running in Xen dom0";
                } else if (access("/dev/kvm", R_OK | W_OK) == 0) {
                        h = "kvm";
                        why = "auto: /dev/kvm is usable";
                } else {
                        h = "qemu";
                        why = "auto: no Xen dom0 and no usable /dev/kvm, software emulation";
                }
        }
        snprintf(m->hypervisor, sizeof(m->hypervisor), "%s", h);
        log_info("hypervisor %s (%s)", m->hypervisor, why);
}

static int connect_bus(struct manager *m, const char *address) {
        int r;
        if (address) {
                r = sd_bus_new(&m->bus);
                if (r >= 0)
                        r = sd_bus_set_address(m->bus, address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(m->bus, 1);
                if (r >= 0)
                        r = sd_bus_start(m->bus);
        } else
                r = sd_bus_open_system(&m->bus);
        if (r < 0)
                log_error("cannot connect to the bus %s: %s", address ? address : "(system)", strerror(-r));
        return r;
}

/* The stores: locked first (one hvwgd each), then cleaned of a crash's leftovers, then opened. */
static int open_stores(struct manager *m) {
        if (lock_store(m->conf.image_root, "ImageRoot") < 0 ||
            (strcmp(m->conf.image_root, m->conf.machine_root) != 0 && lock_store(m->conf.machine_root, "MachineRoot") < 0))
                return -EBUSY;
        int r = machine_clean_interrupted(m->conf.machine_root);
        if (r < 0)
                log_warning("cannot scan %s: %s", m->conf.machine_root, strerror(-r));
        struct hv_error e = { 0 };
        r = store_open(&m->store, m->conf.image_root, &e);
        if (r >= 0)
                r = subscriptions_open(&m->subs, m->conf.image_root, m->event, &e);
        if (r < 0)
                log_error("%s", e.msg);
        return r;
}

int manager_run(struct manager *m, const char *bus_address) {
        (void)sd_notify(0, "STATUS=Starting");
        umask(022);
        if (fetch_global_init() < 0) {
                log_error("cannot initialise libcurl");
                return -EIO;
        }
        int r = open_stores(m);
        if (r < 0)
                return r;
        resolve_hypervisor(m);
        struct group *g = getgrnam("hvwg");
        m->hvwg_gid = g ? g->gr_gid : (gid_t)-1;
        if (!g)
                log_info("group hvwg does not exist: only root may change state");
        /* job ids start at a random point below 2^30: a client waiting across a restart never
         * takes another job's JobRemoved for its own */
        uint8_t rnd[16];
        hv_uuid_random(rnd);
        uint32_t first_id = (uint32_t)rnd[0] | (uint32_t)rnd[1] << 8 | (uint32_t)rnd[2] << 16 | (uint32_t)(rnd[3] & 0x3f) << 24;
        if ((r = sd_event_default(&m->event)) < 0 || (r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGHUP, on_reload, m)) < 0 || (r = loop_new(m->event, &m->loop)) < 0 ||
            (r = jobs_new(m->loop, first_id, &m->jobs)) < 0 || (r = machines_new(m->loop, &m->machines)) < 0) {
                log_error("cannot set up the event loop: %s", strerror(-r));
                return r;
        }
        struct job_limits limits = limits_of(&m->conf);
        jobs_set_limits(m->jobs, &limits);
        if ((r = connect_bus(m, bus_address)) < 0)
                return r;
        /* the bus hears of jobs first (JobRemoved), then the stop check */
        if ((r = bus_setup(m)) < 0 || (r = jobs_subscribe(m->jobs, on_job_event, m)) < 0 || (r = bus_subscriptions_setup(m)) < 0) {
                log_error("cannot export the bus objects: %s", strerror(-r));
                return r;
        }
        if ((r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL)) < 0) {
                log_error("cannot attach the bus to the event loop: %s", strerror(-r));
                return r;
        }
        /* machines are reconciled with libvirt before the name is taken (bounded wait); what
         * reconciliation finds reaches the subscribers once the loop runs */
        if ((r = virt_new(m->conf.libvirt_uri, m->conf.machine_root, m->machines, &m->virt)) < 0 ||
            (r = lifecycle_new(m->loop, m->virt, m->machines, m->snap, &m->life)) < 0) {
                log_error("cannot start the libvirt thread: %s", strerror(-r));
                return r;
        }
        r = sd_bus_request_name(m->bus, HV_BUS_NAME, 0);
        if (r < 0) {
                log_error("cannot own the bus name %s: %s (another hvwgd running, or the bus policy does not allow it)", HV_BUS_NAME,
                          strerror(-r));
                return r;
        }
        log_info("hvwgd %s ready: images in %s, machines in %s", HVWGD_VERSION, m->conf.image_root, m->conf.machine_root);
        notify_ready();
        r = sd_event_loop(m->event);
        if (r < 0) {
                log_error("event loop failure: %s", strerror(-r));
                return r;
        }
        log_info("stopped");
        return 0;
}

void manager_free(struct manager *m) {
        if (!m)
                return;
        m->virt = virt_free(m->virt);
        if (m->loop)
                loop_run_pending(m->loop); /* what the libvirt thread posted last */
        bus_machine_free(m);
        if (m->bus) {
                sd_bus_flush(m->bus);
                m->bus = sd_bus_flush_close_unref(m->bus);
        }
        /* threads still at work (jobs past the stop timeout, source checks, destroys) hold
         * pointers into these: the process ends instead */
        if ((m->jobs && jobs_count(m->jobs) > 0) || m->n_threads > 0 || lifecycle_busy(m->life) > 0)
                return;
        m->life = lifecycle_free(m->life);
        m->jobs = jobs_free(m->jobs);
        m->machines = machines_free(m->machines);
        m->loop = loop_free(m->loop);
        m->subs = subscriptions_free(m->subs);
        store_close(&m->store);
        hv_conf_snap_unref(m->snap);
        sd_event_unref(m->event);
        free(m->config_path);
        free(m);
}
