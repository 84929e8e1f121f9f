/* main.c: hvwgd start-up, the sd-event loop, signals and sd_notify. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "fetch.h"
#include "log.h"
#include "manager.h"
#include "scratch.h"

#ifndef HVWG_SYSCONFDIR
#define HVWG_SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG HVWG_SYSCONFDIR "/hvwgd/hvwgd.conf"
#define STOP_TIMEOUT_USEC (5 * 1000000ULL)

void manager_post(struct manager *m, loop_task_fn fn, void *data) {
        struct loop_task *t = malloc(sizeof(*t));
        if (!t) {
                log_error("out of memory posting to the loop");
                return;
        }
        t->fn = fn;
        t->data = data;
        t->next = NULL;
        pthread_mutex_lock(&m->tasks_mtx);
        struct loop_task **pp = &m->tasks;
        while (*pp)
                pp = &(*pp)->next;
        *pp = t;
        pthread_mutex_unlock(&m->tasks_mtx);
        manager_poke(m);
}

static void run_tasks(struct manager *m) {
        pthread_mutex_lock(&m->tasks_mtx);
        struct loop_task *t = m->tasks;
        m->tasks = NULL;
        pthread_mutex_unlock(&m->tasks_mtx);
        while (t) {
                struct loop_task *next = t->next;
                t->fn(m, t->data);
                free(t);
                t = next;
        }
}

void manager_poke(struct manager *m) {
        uint64_t one = 1;
        /* EAGAIN means the counter is already non-zero: the loop will wake anyway */
        if (write(m->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                log_error("cannot wake the event loop: %m");
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *ud) {
        (void)s; (void)revents;
        uint64_t v;
        if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                log_warning("eventfd read: %m");
        run_tasks(ud);
        job_dispatch(ud);
        return 0;
}

void manager_check_stop(struct manager *m) {
        if (m->stopping && !m->jobs)
                sd_event_exit(m->event, 0);
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
        for (struct job *j = m->jobs; j; j = j->next)
                job_cancel(j);
        (void)sd_event_add_time_relative(m->event, NULL, CLOCK_MONOTONIC, STOP_TIMEOUT_USEC, 0, on_stop_timeout, m);
        manager_check_stop(m);
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

static void conf_warn(const char *file, unsigned line, const char *msg, void *ud) {
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

static void reload_done(struct manager *m, void *data) {
        struct reload_req *q = data;
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
                        log_info("reload: configuration re-read from %s; it applies to new jobs", q->path);
                }
        }
        free(q->path);
        free(q);
        m->reloading = false;
        (void)sd_notifyf(0, "READY=1\nSTATUS=Serving %s", HV_BUS_NAME);
        job_schedule(m); /* more slots may have opened */
        if (m->reload_again) {
                m->reload_again = false;
                start_reload(m);
        }
}

static void *reload_thread(void *arg) {
        struct reload_req *q = arg;
        hv_conf_defaults(&q->next);
        q->r = hv_conf_load(&q->next, q->path, q->required, conf_warn, NULL, &q->err);
        manager_post(q->m, reload_done, q);
        return NULL;
}

static void start_reload(struct manager *m) {
        if (m->reloading) {
                m->reload_again = true;
                return;
        }
        struct reload_req *q = calloc(1, sizeof(*q));
        if (!q || !(q->path = strdup(m->config_path ? m->config_path : DEFAULT_CONFIG))) {
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
                (void)sd_notifyf(0, "READY=1\nSTATUS=Serving %s", HV_BUS_NAME);
                return;
        }
        pthread_detach(t);
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

static void help(void) {
        printf("Usage: hvwgd [OPTIONS]\n\n"
               "HEPiX virtualisation working group image daemon.\n\n"
               "  --config=PATH        configuration file (default " DEFAULT_CONFIG ", plus PATH.d/*.conf)\n"
               "  --bus-address=ADDR   connect to this D-Bus address instead of the system bus\n"
               "  --log-level=N        syslog level 0-7 (default 6, info)\n"
               "  --check-config       load the configuration, print the effective values and exit\n"
               "  --format-scratch PATH [SIZE] [--scratch-fs=FS] [--scratch-alloc=sparse|fallocate]\n"
               "                       create and format a scratch disk file (or a blank block device) as\n"
               "                       CreateMachine does, print its UUID and exit\n"
               "  -h, --help           this text\n"
               "  --version            print the version\n");
}

static void print_conf(const struct hv_conf *c) {
        printf("[Storage]\nImageRoot=%s\nMachineRoot=%s\nMaxImageSize=%llu\nAllowedSourceDirs=", c->image_root, c->machine_root,
               (unsigned long long)c->max_image_size);
        for (unsigned i = 0; i < c->n_allowed_source_dirs; i++)
                printf("%s%s", i ? " " : "", c->allowed_source_dirs[i]);
        printf("\n[Machine]\nScratchPerCoreGiB=%llu\nMemoryPerCoreMiB=%llu\nScratchFilesystem=%s\nScratchAllocation=%s\n"
               "ScratchBytesPerInode=%llu\nMaxScratchSize=%llu\nHypervisor=%s\nLibvirtURI=%s\nNetwork=%s\n",
               (unsigned long long)c->scratch_per_core_gib, (unsigned long long)c->memory_per_core_mib, c->scratch_filesystem,
               c->scratch_allocation, (unsigned long long)c->scratch_bytes_per_inode, (unsigned long long)c->max_scratch_size,
               c->hypervisor, c->libvirt_uri, c->network);
        printf("ScratchDevices=");
        for (unsigned i = 0; i < c->n_scratch_devices; i++)
                printf("%s%s", i ? " " : "", c->scratch_devices[i]);
        printf("\n");
        printf("[Fetch]\nMaxConcurrent=%u\nConnectTimeoutSec=%u\nStallTimeoutSec=%u\nMaxRedirects=%u\nInflate=%s\nCAPath=%s\nProxy=%s\nJobsPerUser=%u\n",
               c->max_concurrent, c->connect_timeout_sec, c->stall_timeout_sec, c->max_redirects, c->inflate, c->ca_path, c->proxy,
               c->jobs_per_user);
        printf("RunningJobsPerUser=%u\nMaxQueuedJobs=%u\nLowSpeedLimit=%llu\nLowSpeedTimeSec=%u\nMaxDownloadTimeSec=%u\n"
               "MaxDownloadSize=%llu\nAllowLoopbackRedirects=%s\n",
               hv_conf_running_per_user(c), c->max_queued_jobs, (unsigned long long)c->low_speed_limit, c->low_speed_time_sec,
               c->max_download_time_sec, (unsigned long long)hv_conf_max_download(c), c->allow_loopback_redirects ? "yes" : "no");
}

/* The scratch formatter on its own, for benchmarks and debugging: the same code CreateMachine uses. */
static int run_format_scratch(const char *config, const char *path, const char *size_s, const char *fs, const char *alloc) {
        struct hv_conf c;
        struct hv_error e = { 0 };
        hv_conf_defaults(&c);
        if (config && hv_conf_load(&c, config, true, conf_warn, NULL, &e) < 0) {
                log_error("configuration error: %s", e.msg);
                return 1;
        }
        uint64_t size = 0;
        struct stat st;
        if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
                /* a device: only a blank one (no UUIDs are on record here) */
                uint64_t dev_size;
                if (scratch_check_device(path, NULL, 0, &dev_size, &e) < 0) {
                        fprintf(stderr, "hvwgd: %s\n", e.msg);
                        return 1;
                }
                if (size_s && hv_parse_size(size_s, &size) < 0) {
                        fprintf(stderr, "hvwgd: invalid size %s (e.g. 200G)\n", size_s);
                        return 2;
                }
                if (!size_s || size == 0 || size > dev_size)
                        size = dev_size;
                struct scratch_opts o = { .fs = fs ? fs : c.scratch_filesystem, .bytes_per_inode = c.scratch_bytes_per_inode };
                char uuid[37];
                if (scratch_format(path, size, &o, false, uuid, &e) < 0) {
                        fprintf(stderr, "hvwgd: %s\n", e.msg);
                        return 1;
                }
                printf("%s\n", uuid);
                return 0;
        }
        if (!size_s) {
                fprintf(stderr, "hvwgd: --format-scratch needs a SIZE for a file\n");
                return 2;
        }
        if (hv_parse_size(size_s, &size) < 0) {
                fprintf(stderr, "hvwgd: invalid size %s (e.g. 200G)\n", size_s);
                return 2;
        }
        if (size > c.max_scratch_size) {
                fprintf(stderr, "hvwgd: %s is larger than MaxScratchSize\n", size_s);
                return 1;
        }
        struct scratch_opts o = { .fs = fs ? fs : c.scratch_filesystem, .bytes_per_inode = c.scratch_bytes_per_inode };
        if (strcmp(alloc, "fallocate") == 0)
                o.alloc = SCRATCH_FALLOCATE;
        else if (strcmp(alloc, "sparse") != 0) {
                fprintf(stderr, "hvwgd: --scratch-alloc must be sparse or fallocate\n");
                return 2;
        }
        char uuid[37];
        uint64_t t0 = hv_mono_usec();
        if (scratch_create(path, size, &o, uuid, &e) < 0) {
                fprintf(stderr, "hvwgd: %s\n", e.msg);
                return 1;
        }
        uint64_t t1 = hv_mono_usec();
        char a[32], b[32];
        if (stat(path, &st) == 0)
                fprintf(stderr, "hvwgd: created %s %s scratch disk %s in %.1f ms, %s allocated\n", hv_format_size(size, a, sizeof(a)),
                        o.fs, path, (double)(t1 - t0) / 1000.0, hv_format_size((uint64_t)st.st_blocks * 512, b, sizeof(b)));
        printf("%s\n", uuid);
        return 0;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "bus-address", required_argument, NULL, 'b' },
                { "log-level", required_argument, NULL, 'l' },
                { "check-config", no_argument, NULL, 'k' },
                { "format-scratch", no_argument, NULL, 'f' },
                { "scratch-fs", required_argument, NULL, 'F' },
                { "scratch-alloc", required_argument, NULL, 'A' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {}
        };
        const char *config = NULL, *address = NULL, *scratch_fs = NULL, *scratch_alloc = "sparse";
        bool check_only = false, format_scratch = false;
        int c;
        /* Signals are blocked first: a SIGTERM during start-up waits for the loop and ends it cleanly. */
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        signal(SIGPIPE, SIG_IGN);
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'c': config = optarg; break;
                case 'b': address = optarg; break;
                case 'l': {
                        unsigned lv;
                        if (hv_parse_uint(optarg, 0, 7, &lv) < 0) {
                                fprintf(stderr, "hvwgd: --log-level must be 0-7\n");
                                return 2;
                        }
                        hv_log_level = (int)lv;
                        break;
                }
                case 'k': check_only = true; break;
                case 'f': format_scratch = true; break;
                case 'F': scratch_fs = optarg; break;
                case 'A': scratch_alloc = optarg; break;
                case 'h': help(); return 0;
                case 'V': printf("hvwgd %s\n", HVWGD_VERSION); return 0;
                default: return 2;
                }
        }
        if (format_scratch) {
                if (argc - optind != 2 && argc - optind != 1) {
                        fprintf(stderr, "hvwgd: --format-scratch takes PATH [SIZE]\n");
                        return 2;
                }
                return run_format_scratch(config, argv[optind], argc - optind == 2 ? argv[optind + 1] : NULL, scratch_fs,
                                          scratch_alloc);
        }
        if (optind < argc) {
                fprintf(stderr, "hvwgd: unexpected argument %s\n", argv[optind]);
                return 2;
        }
        static struct manager mgr;
        struct manager *m = &mgr;
        m->wake_fd = -1;
        pthread_mutex_init(&m->tasks_mtx, NULL);
        /* job ids start at a random point below 2^30: a client waiting across a restart never
         * takes another job's JobRemoved for its own */
        uint8_t rnd[16];
        hv_uuid_random(rnd);
        m->next_job_id = ((uint32_t)rnd[0] | (uint32_t)rnd[1] << 8 | (uint32_t)rnd[2] << 16 | (uint32_t)(rnd[3] & 0x3f) << 24);
        struct hv_error e = { 0 };
        hv_conf_defaults(&m->conf);
        int r = hv_conf_load(&m->conf, config ? config : DEFAULT_CONFIG, config != NULL, conf_warn, NULL, &e);
        if (r < 0) {
                log_error("configuration error: %s", e.msg);
                return 1;
        }
        if (check_only) {
                print_conf(&m->conf);
                return 0;
        }
        m->config_path = config ? strdup(config) : NULL;
        m->config_required = config != NULL;
        m->snap = hv_conf_snap_new(&m->conf);
        if (!m->snap) {
                log_error("out of memory");
                return 1;
        }
        (void)sd_notify(0, "STATUS=Starting");
        umask(022);
        r = fetch_global_init();
        if (r < 0) {
                log_error("cannot initialise libcurl");
                return 1;
        }
        if (lock_store(m->conf.image_root, "ImageRoot") < 0 ||
            (strcmp(m->conf.image_root, m->conf.machine_root) != 0 && lock_store(m->conf.machine_root, "MachineRoot") < 0))
                return 1;
        r = machine_clean_interrupted(m->conf.machine_root);
        if (r < 0)
                log_warning("cannot scan %s: %s", m->conf.machine_root, strerror(-r));
        r = store_open(&m->store, m->conf.image_root, &e);
        if (r < 0) {
                log_error("%s", e.msg);
                return 1;
        }
        resolve_hypervisor(m);
        r = sd_event_default(&m->event);
        if (r < 0)
                goto fail;
        if ((r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGHUP, on_reload, m)) < 0)
                goto fail;
        m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->wake_fd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(m->event, &m->wake_source, m->wake_fd, EPOLLIN, on_wake, m);
        if (r < 0)
                goto fail;
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
        if (r < 0) {
                log_error("cannot connect to the bus %s: %s", address ? address : "(system)", strerror(-r));
                goto out;
        }
        r = bus_setup(m);
        if (r < 0) {
                log_error("cannot export the bus objects: %s", strerror(-r));
                goto out;
        }
        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                goto fail;
        /* machines are reconciled with libvirt before the name is taken (bounded wait) */
        r = machine_start(m);
        if (r < 0) {
                log_error("cannot start the libvirt thread: %s", strerror(-r));
                goto out;
        }
        r = sd_bus_request_name(m->bus, HV_BUS_NAME, 0);
        if (r < 0) {
                log_error("cannot own the bus name %s: %s (another hvwgd running, or the bus policy does not allow it)",
                          HV_BUS_NAME, strerror(-r));
                goto out;
        }
        log_info("hvwgd %s ready: images in %s, machines in %s", HVWGD_VERSION, m->conf.image_root, m->conf.machine_root);
        (void)sd_notifyf(0, "READY=1\nSTATUS=Serving %s", HV_BUS_NAME);
        r = sd_event_loop(m->event);
        if (r < 0)
                goto fail;
        log_info("stopped");
        goto out;
fail:
        log_error("event loop failure: %s", strerror(-r));
out:
        machine_stop(m);
        run_tasks(m); /* free what the libvirt thread posted last (replies go nowhere now) */
        if (m->bus) {
                sd_bus_flush(m->bus);
                sd_bus_flush_close_unref(m->bus);
        }
        sd_event_source_unref(m->wake_source);
        sd_event_source_unref(m->rate_timer);
        sd_event_unref(m->event);
        if (m->wake_fd >= 0)
                close(m->wake_fd);
        if (!m->jobs) {
                store_close(&m->store);
                hv_conf_snap_unref(m->snap);
        }
        free(m->config_path);
        return r < 0 ? 1 : 0;
}
