/* virt.c: the libvirt connection thread and its state. */
#include "virt.h"

#include <dirent.h>
#include <errno.h>
#include <libvirt/virterror.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct virt {
        char *uri;          /* NULL: libvirt's default */
        char *machine_root;
        struct machines *ms;
        pthread_t thread;
        bool running;
        atomic_bool stop;
        pthread_mutex_t mtx; /* conn and conn_error */
        virConnectPtr conn;
        char conn_error[512];
        int lifecycle_cb;
        /* virt_new() waits (bounded) for the first connection attempt */
        pthread_cond_t first_cond;
        bool first_done;
};

static void first_attempt_done(struct virt *v) {
        pthread_mutex_lock(&v->mtx);
        v->first_done = true;
        pthread_cond_broadcast(&v->first_cond);
        pthread_mutex_unlock(&v->mtx);
}

const char *virt_state_name(int st) {
        switch (st) {
        case VIR_DOMAIN_RUNNING: return "running";
        case VIR_DOMAIN_BLOCKED: return "blocked";
        case VIR_DOMAIN_PAUSED: return "paused";
        case VIR_DOMAIN_SHUTDOWN: return "shutting-down";
        case VIR_DOMAIN_SHUTOFF: return "shut-off";
        case VIR_DOMAIN_CRASHED: return "crashed";
        case VIR_DOMAIN_PMSUSPENDED: return "suspended";
        default: return "unknown";
        }
}

static const char *event_state(int event) {
        switch (event) {
        case VIR_DOMAIN_EVENT_STARTED:
        case VIR_DOMAIN_EVENT_RESUMED: return "running";
        case VIR_DOMAIN_EVENT_SUSPENDED: return "paused";
        case VIR_DOMAIN_EVENT_STOPPED: return "shut-off";
        case VIR_DOMAIN_EVENT_SHUTDOWN: return "shutting-down";
        case VIR_DOMAIN_EVENT_CRASHED: return "crashed";
        case VIR_DOMAIN_EVENT_PMSUSPENDED: return "suspended";
        case VIR_DOMAIN_EVENT_UNDEFINED: return "undefined";
        default: return NULL;
        }
}

/* Why: the words MachineRemoved and GetMachine use ("poweroff", "crash", "destroyed", …). */
static const char *event_reason(int event, int detail) {
        switch (event) {
        case VIR_DOMAIN_EVENT_STARTED: return detail == VIR_DOMAIN_EVENT_STARTED_BOOTED ? "booted" : "started";
        case VIR_DOMAIN_EVENT_RESUMED: return "resumed";
        case VIR_DOMAIN_EVENT_SUSPENDED: return "suspended";
        case VIR_DOMAIN_EVENT_SHUTDOWN: return "shutdown";
        case VIR_DOMAIN_EVENT_CRASHED: return "crash";
        case VIR_DOMAIN_EVENT_PMSUSPENDED: return "suspended";
        case VIR_DOMAIN_EVENT_UNDEFINED: return "undefined";
        case VIR_DOMAIN_EVENT_STOPPED:
                switch (detail) {
                case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN: return "poweroff";
                case VIR_DOMAIN_EVENT_STOPPED_DESTROYED: return "destroyed";
                case VIR_DOMAIN_EVENT_STOPPED_CRASHED:
                case VIR_DOMAIN_EVENT_STOPPED_FAILED: return "crash";
                case VIR_DOMAIN_EVENT_STOPPED_MIGRATED: return "migrated";
                case VIR_DOMAIN_EVENT_STOPPED_SAVED: return "saved";
                default: return "stopped";
                }
        default: return "";
        }
}

/* The same words for a domain's present state (start-up). */
const char *virt_state_reason(int state, int reason) {
        if (state == VIR_DOMAIN_SHUTOFF)
                switch (reason) {
                case VIR_DOMAIN_SHUTOFF_SHUTDOWN: return "poweroff";
                case VIR_DOMAIN_SHUTOFF_DESTROYED: return "destroyed";
                case VIR_DOMAIN_SHUTOFF_CRASHED:
                case VIR_DOMAIN_SHUTOFF_FAILED: return "crash";
                default: return "host-shutdown";
                }
        if (state == VIR_DOMAIN_CRASHED)
                return "crash";
        return state == VIR_DOMAIN_RUNNING ? "running" : "";
}

const char *virt_last_error(void) {
        const char *msg = virGetLastErrorMessage();
        return msg && *msg ? msg : "unknown libvirt error";
}

virConnectPtr virt_conn(struct virt *v, struct hv_error *e) {
        pthread_mutex_lock(&v->mtx);
        virConnectPtr c = v->conn;
        if (c)
                virConnectRef(c);
        else
                hv_fail(e, HV_E_LIBVIRT, ENOTCONN, "%s", v->conn_error);
        pthread_mutex_unlock(&v->mtx);
        return c;
}

int virt_fail(struct hv_error *e, const char *what, const char *name) {
        virErrorPtr err = virGetLastError();
        if (err && (err->code == VIR_ERR_OPERATION_FAILED || err->code == VIR_ERR_DOM_EXIST) && strstr(virt_last_error(), "already"))
                return hv_fail(e, HV_E_MACHINE_EXISTS, EEXIST, "machine %s: %s: %s", name, what, virt_last_error());
        return hv_fail(e, HV_E_LIBVIRT, EIO, "machine %s: %s: %s", name, what, virt_last_error());
}

static int lifecycle(virConnectPtr c, virDomainPtr dom, int event, int detail, void *opaque) {
        (void)c;
        const char *st = event_state(event);
        const char *name = virDomainGetName(dom);
        if (hv_fault("late-events"))
                usleep(300000); /* tests: libvirt's events come after the replies */
        if (st && name)
                machines_set_state(((struct virt *)opaque)->ms, name, st, event_reason(event, detail));
        return 0;
}

static void on_close(virConnectPtr c, int reason, void *opaque) {
        struct virt *v = opaque;
        log_warning("libvirt connection closed (reason %d); reconnecting", reason);
        pthread_mutex_lock(&v->mtx);
        if (v->conn == c) {
                snprintf(v->conn_error, sizeof(v->conn_error), "the libvirt connection was lost");
                v->conn = NULL;
                virConnectClose(c);
        }
        pthread_mutex_unlock(&v->mtx);
}

/* Undefines a domain with everything libvirt keeps beside it (managed save, snapshot and
 * checkpoint metadata, NVRAM); drivers that know no flags get the plain call. 0 or -1. */
int virt_undefine(virDomainPtr dom) {
        unsigned flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM |
                         VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
        return virDomainUndefineFlags(dom, flags) < 0 && virDomainUndefine(dom) < 0 ? -1 : 0;
}

bool virt_read_meta(virDomainPtr dom, struct dom_meta *meta) {
        char *xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, HVWG_XML_NS, 0);
        if (!xml)
                return false;
        bool ok = domxml_read_meta(xml, meta) == 0;
        free(xml);
        return ok;
}

/* A domain is ours when its metadata names our MachineRoot; one made before that was recorded,
 * when its directory is in our MachineRoot. Two daemons with their own stores may share a
 * libvirt: each adopts only its own machines. */
static bool ours(struct virt *v, const char *name, const struct dom_meta *meta) {
        if (meta->machine_root[0])
                return strcmp(meta->machine_root, v->machine_root) == 0;
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/%s", v->machine_root, name);
        return access(dir, F_OK) == 0;
}

/* Start-up: our domains into the registry; disks missing → "broken"; machine directories
 * without a domain are listed as "undefined". Nothing is deleted. */
static void reconcile(struct virt *v, virConnectPtr c) {
        virDomainPtr *doms = NULL;
        int n = virConnectListAllDomains(c, &doms, 0);
        if (n < 0) {
                log_warning("cannot list libvirt domains: %s", virt_last_error());
                n = 0;
        }
        for (int i = 0; i < n; i++) {
                struct dom_meta meta = { 0 };
                const char *name = virDomainGetName(doms[i]);
                bool mine = name && virt_read_meta(doms[i], &meta);
                if (mine && !ours(v, name, &meta)) {
                        log_info("domain %s belongs to the hvwgd of MachineRoot %s: not adopted", name,
                                 meta.machine_root[0] ? meta.machine_root : "(another)");
                        mine = false;
                }
                if (mine) {
                        struct machine x = { .cores = meta.cores, .memory_mib = meta.memory_mib, .scratch_bytes = meta.scratch_bytes,
                                             .owner = meta.owner, .created_usec = meta.created_usec, .transient = meta.transient };
                        snprintf(x.name, sizeof(x.name), "%s", name);
                        snprintf(x.image, sizeof(x.image), "%s", meta.image);
                        snprintf(x.hypervisor, sizeof(x.hypervisor), "%s", meta.hypervisor);
                        snprintf(x.network, sizeof(x.network), "%s", meta.network);
                        snprintf(x.scratch_path, sizeof(x.scratch_path), "%s", meta.scratch_path);
                        snprintf(x.scratch_uuid, sizeof(x.scratch_uuid), "%.36s", meta.scratch_uuid);
                        virDomainGetUUIDString(doms[i], x.uuid);
                        int st = 0, reason = 0;
                        bool known = virDomainGetState(doms[i], &st, &reason, 0) == 0;
                        snprintf(x.state, sizeof(x.state), "%s", known ? virt_state_name(st) : "unknown");
                        snprintf(x.reason, sizeof(x.reason), "%s", known ? virt_state_reason(st, reason) : "");
                        char root[PATH_MAX];
                        snprintf(root, sizeof(root), "%s/%s/root.raw", v->machine_root, name);
                        if (access(root, F_OK) < 0 || (meta.scratch_path[0] && access(meta.scratch_path, F_OK) < 0)) {
                                log_warning("machine %s: its root or scratch disk is missing; reported as broken", name);
                                snprintf(x.state, sizeof(x.state), "broken");
                                snprintf(x.reason, sizeof(x.reason), "disk-missing");
                        }
                        machines_put(v->ms, &x);
                }
                virDomainFree(doms[i]);
        }
        free(doms);
        DIR *d = opendir(v->machine_root);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (!hv_name_valid(de->d_name) || machines_exists(v->ms, de->d_name))
                        continue;
                char p[PATH_MAX];
                snprintf(p, sizeof(p), "%s/%s/machine.meta", v->machine_root, de->d_name);
                _cleanup_free_ char *text = NULL;
                if (hv_read_file(p, 1 << 16, &text, NULL) < 0)
                        continue;
                struct machine x = { 0 };
                snprintf(x.name, sizeof(x.name), "%.64s", de->d_name);
                snprintf(x.state, sizeof(x.state), "undefined");
                machine_record_parse(text, &x);
                /* a transient machine without its domain ended while hvwgd was not looking */
                snprintf(x.reason, sizeof(x.reason), "%s", x.transient ? "host-shutdown" : "no-domain");
                log_warning("machine directory %s/%s has no libvirt domain; listed as undefined (DestroyMachine removes it)",
                            v->machine_root, de->d_name);
                machines_put(v->ms, &x);
        }
        if (d)
                closedir(d);
}

static void tick(int timer, void *opaque) {
        (void)timer;
        (void)opaque;
}

static void *virt_main(void *arg) {
        struct virt *v = arg;
        unsigned backoff = 1;
        uint64_t next_try = 0;
        bool reconciled = false;
        while (!atomic_load(&v->stop)) {
                pthread_mutex_lock(&v->mtx);
                bool have = v->conn != NULL;
                pthread_mutex_unlock(&v->mtx);
                if (!have && hv_mono_usec() >= next_try) {
                        const char *uri = v->uri;
                        virConnectPtr c = virConnectOpen(uri);
                        if (!c) {
                                pthread_mutex_lock(&v->mtx);
                                snprintf(v->conn_error, sizeof(v->conn_error), "cannot connect to libvirt at %.200s: %.250s",
                                         uri ? uri : "(default)", virt_last_error());
                                log_warning("%s (retry in %u s)", v->conn_error, backoff);
                                pthread_mutex_unlock(&v->mtx);
                                next_try = hv_mono_usec() + backoff * 1000000ULL;
                                backoff = backoff < 30 ? backoff * 2 : 30;
                                first_attempt_done(v);
                        } else {
                                backoff = 1;
                                (void)virConnectSetKeepAlive(c, 5, 3); /* not every driver has keepalive */
                                virConnectRegisterCloseCallback(c, on_close, v, NULL);
                                v->lifecycle_cb = virConnectDomainEventRegisterAny(c, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                                                   VIR_DOMAIN_EVENT_CALLBACK(lifecycle), v, NULL);
                                char *u = virConnectGetURI(c);
                                log_info("connected to libvirt at %s", u ? u : "?");
                                free(u);
                                if (!reconciled) {
                                        reconcile(v, c);
                                        reconciled = true;
                                }
                                pthread_mutex_lock(&v->mtx);
                                v->conn = c;
                                pthread_mutex_unlock(&v->mtx);
                                first_attempt_done(v);
                        }
                }
                if (virEventRunDefaultImpl() < 0)
                        log_warning("libvirt event loop: %s", virt_last_error());
        }
        pthread_mutex_lock(&v->mtx);
        if (v->conn) {
                if (v->lifecycle_cb >= 0)
                        virConnectDomainEventDeregisterAny(v->conn, v->lifecycle_cb);
                virConnectUnregisterCloseCallback(v->conn, on_close);
                virConnectClose(v->conn);
                v->conn = NULL;
        }
        pthread_mutex_unlock(&v->mtx);
        return NULL;
}

static void silence(void *ud, virErrorPtr err) {
        (void)ud;
        (void)err; /* errors are read with virGetLastErrorMessage where they matter */
}


/* libvirt's error callback and event loop are per process: set up once. */
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_r;

static void global_init(void) {
        virSetErrorFunc(NULL, silence);
        if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0)
                global_r = -EIO;
        else
                virEventAddTimeout(500, tick, NULL, NULL); /* wakes the loop to see stop and reconnect */
}

int virt_new(const char *uri, const char *machine_root, struct machines *ms, struct virt **ret) {
        pthread_once(&global_once, global_init);
        if (global_r < 0)
                return global_r;
        struct virt *v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        pthread_mutex_init(&v->mtx, NULL);
        pthread_cond_init(&v->first_cond, NULL);
        v->ms = ms;
        v->lifecycle_cb = -1;
        snprintf(v->conn_error, sizeof(v->conn_error), "not connected to libvirt yet");
        v->uri = uri && *uri ? strdup(uri) : NULL;
        v->machine_root = strdup(machine_root);
        if ((uri && *uri && !v->uri) || !v->machine_root) {
                virt_free(v);
                return -ENOMEM;
        }
        if (pthread_create(&v->thread, NULL, virt_main, v) != 0) {
                virt_free(v);
                return -EAGAIN;
        }
        v->running = true;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        pthread_mutex_lock(&v->mtx);
        while (!v->first_done)
                if (pthread_cond_timedwait(&v->first_cond, &v->mtx, &until) == ETIMEDOUT) {
                        log_warning("libvirt did not answer within 10 s; machines are listed once it does");
                        break;
                }
        pthread_mutex_unlock(&v->mtx);
        *ret = v;
        return 0;
}

struct virt *virt_free(struct virt *v) {
        if (!v)
                return NULL;
        if (v->running) {
                atomic_store(&v->stop, true);
                pthread_join(v->thread, NULL);
        }
        pthread_cond_destroy(&v->first_cond);
        pthread_mutex_destroy(&v->mtx);
        free(v->uri);
        free(v->machine_root);
        free(v);
        return NULL;
}
