/* machine.c: libvirt connection thread, machine registry, CreateMachine and DestroyMachine. */
#define _GNU_SOURCE
#include "machine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "copy.h"
#include "job.h"
#include "log.h"
#include "manager.h"
#include "scratch.h"

static pthread_mutex_t reg_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t conn_mtx = PTHREAD_MUTEX_INITIALIZER;
static virConnectPtr conn;
static char conn_error[512] = "not connected yet";
static pthread_t virt_thread;
static atomic_bool virt_stop_flag;
static bool virt_running;
static int lifecycle_cb = -1;
/* machine_start() waits (bounded) for the first connection attempt, so that the registry is
 * reconciled before hvwgd takes its bus name and ListMachines is right from the first call */
static pthread_mutex_t first_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t first_cond = PTHREAD_COND_INITIALIZER;
static bool first_done;

static void first_attempt_done(void) {
        pthread_mutex_lock(&first_mtx);
        first_done = true;
        pthread_cond_broadcast(&first_cond);
        pthread_mutex_unlock(&first_mtx);
}

/* ---- registry ---- */

bool machine_exists(struct manager *m, const char *name) {
        pthread_mutex_lock(&reg_mtx);
        bool found = false;
        for (struct machine *x = m->machines; x && !found; x = x->next)
                found = strcmp(x->name, name) == 0;
        pthread_mutex_unlock(&reg_mtx);
        return found;
}

bool machine_image_in_use(struct manager *m, const char *image) {
        pthread_mutex_lock(&reg_mtx);
        bool found = false;
        for (struct machine *x = m->machines; x && !found; x = x->next)
                found = strcmp(x->image, image) == 0;
        pthread_mutex_unlock(&reg_mtx);
        return found;
}

static void reg_put(struct manager *m, const struct machine *src) {
        pthread_mutex_lock(&reg_mtx);
        struct machine *x;
        for (x = m->machines; x; x = x->next)
                if (strcmp(x->name, src->name) == 0)
                        break;
        if (!x && (x = calloc(1, sizeof(*x)))) {
                struct machine **pp = &m->machines;
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
        }
        pthread_mutex_unlock(&reg_mtx);
}

static void reg_remove(struct manager *m, const char *name) {
        pthread_mutex_lock(&reg_mtx);
        for (struct machine **pp = &m->machines; *pp; pp = &(*pp)->next)
                if (strcmp((*pp)->name, name) == 0) {
                        struct machine *x = *pp;
                        *pp = x->next;
                        free(x);
                        break;
                }
        pthread_mutex_unlock(&reg_mtx);
}

int machine_append_list(struct manager *m, sd_bus_message *reply) {
        int r = sd_bus_message_open_container(reply, 'a', "(ssuttss)");
        pthread_mutex_lock(&reg_mtx);
        for (struct machine *x = m->machines; x && r >= 0; x = x->next)
                r = sd_bus_message_append(reply, "(ssuttss)", x->name, x->uuid, x->cores, x->memory_mib, x->scratch_bytes, x->image,
                                          x->state);
        pthread_mutex_unlock(&reg_mtx);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

/* ---- state changes to the loop ---- */

struct state_note {
        char name[65];
        char state[16];
};

static void emit_state(struct manager *m, void *data) {
        struct state_note *n = data;
        int r = sd_bus_emit_signal(m->bus, HV_OBJ_PATH, HV_MANAGER_IFACE, "MachineStateChanged", "ss", n->name, n->state);
        if (r < 0)
                log_warning("cannot emit MachineStateChanged: %s", strerror(-r));
        free(n);
}

static void set_state(struct manager *m, const char *name, const char *state) {
        bool changed = false;
        pthread_mutex_lock(&reg_mtx);
        for (struct machine *x = m->machines; x; x = x->next)
                if (strcmp(x->name, name) == 0 && strcmp(x->state, state) != 0) {
                        snprintf(x->state, sizeof(x->state), "%s", state);
                        changed = true;
                }
        pthread_mutex_unlock(&reg_mtx);
        if (!changed)
                return;
        struct state_note *n = calloc(1, sizeof(*n));
        if (!n)
                return;
        snprintf(n->name, sizeof(n->name), "%s", name);
        snprintf(n->state, sizeof(n->state), "%s", state);
        manager_post(m, emit_state, n);
}

static const char *state_name(int st) {
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

/* Removes what hvwgd puts in a machine directory, then the directory; with keep_disks only
 * the record (the root and scratch disks and the directory stay). */
/* A machine directory holds only these files of ours, and the temp files of hv_write_file_atomic
 * ("machine.meta.tmp.PID") a crash can leave behind. */
static bool our_file(const char *name) {
        static const char *const files[] = { "root.raw", "scratch.img", "root.raw.tmp", "console.log", "machine.meta" };
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                if (strcmp(name, files[i]) == 0)
                        return true;
        const char *tmp = "machine.meta.tmp.";
        return strncmp(name, tmp, strlen(tmp)) == 0 && name[strlen(tmp)] && strspn(name + strlen(tmp), "0123456789") == strlen(name + strlen(tmp));
}

/* Removes our files (all but the disks with keep_disks) and, without keep_disks, the directory.
 * The .creating marker goes last, only once nothing else is left: a directory that cannot be
 * emptied keeps it, so the next start-up still knows it for a half-made machine. */
static bool remove_machine_dir(const char *dir, bool keep_disks) {
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
                char dir[600];
                if (!hv_name_valid(de->d_name))
                        continue;
                snprintf(dir, sizeof(dir), "%.511s/%.64s", machine_root, de->d_name);
                bool marked = exists_in(dir, ".creating");
                bool empty = !exists_in(dir, "machine.meta") && !exists_in(dir, "root.raw") && !exists_in(dir, "scratch.img") &&
                             !exists_in(dir, "root.raw.tmp");
                if (!marked && !empty)
                        continue;
                if (remove_machine_dir(dir, false))
                        log_info("removed %s: a machine creation interrupted by a crash", dir);
        }
        closedir(d);
        return 0;
}

/* ---- the libvirt connection ---- */

static const char *virt_error(void) {
        const char *msg = virGetLastErrorMessage();
        return msg && *msg ? msg : "unknown libvirt error";
}

static virConnectPtr conn_get(void) {
        pthread_mutex_lock(&conn_mtx);
        virConnectPtr c = conn;
        if (c)
                virConnectRef(c);
        pthread_mutex_unlock(&conn_mtx);
        return c;
}

static int lifecycle(virConnectPtr c, virDomainPtr dom, int event, int detail, void *opaque) {
        (void)c;
        (void)detail;
        const char *st = event_state(event);
        const char *name = virDomainGetName(dom);
        if (st && name)
                set_state(opaque, name, st);
        return 0;
}

static void on_close(virConnectPtr c, int reason, void *opaque) {
        (void)opaque;
        log_warning("libvirt connection closed (reason %d); reconnecting", reason);
        pthread_mutex_lock(&conn_mtx);
        if (conn == c) {
                snprintf(conn_error, sizeof(conn_error), "the libvirt connection was lost");
                conn = NULL;
                virConnectClose(c);
        }
        pthread_mutex_unlock(&conn_mtx);
}

static bool read_meta(virDomainPtr dom, struct dom_meta *meta) {
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
static bool ours(struct manager *m, const char *name, const struct dom_meta *meta) {
        if (meta->machine_root[0])
                return strcmp(meta->machine_root, m->conf.machine_root) == 0;
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/%s", m->conf.machine_root, name);
        return access(dir, F_OK) == 0;
}

/* Start-up: our domains into the registry; disks missing → "broken"; machine directories
 * without a domain are listed as "undefined". Nothing is deleted. */
static void reconcile(struct manager *m, virConnectPtr c) {
        virDomainPtr *doms = NULL;
        int n = virConnectListAllDomains(c, &doms, 0);
        if (n < 0) {
                log_warning("cannot list libvirt domains: %s", virt_error());
                n = 0;
        }
        for (int i = 0; i < n; i++) {
                struct dom_meta meta = { 0 };
                const char *name = virDomainGetName(doms[i]);
                bool mine = name && read_meta(doms[i], &meta);
                if (mine && !ours(m, name, &meta)) {
                        log_info("domain %s belongs to the hvwgd of MachineRoot %s: not adopted", name,
                                 meta.machine_root[0] ? meta.machine_root : "(another)");
                        mine = false;
                }
                if (mine) {
                        struct machine x = { .cores = meta.cores, .memory_mib = meta.memory_mib, .scratch_bytes = meta.scratch_bytes };
                        snprintf(x.name, sizeof(x.name), "%s", name);
                        snprintf(x.image, sizeof(x.image), "%s", meta.image);
                        virDomainGetUUIDString(doms[i], x.uuid);
                        int st = 0, reason = 0;
                        snprintf(x.state, sizeof(x.state), "%s",
                                 virDomainGetState(doms[i], &st, &reason, 0) == 0 ? state_name(st) : "unknown");
                        char root[PATH_MAX];
                        snprintf(root, sizeof(root), "%s/%s/root.raw", m->conf.machine_root, name);
                        if (access(root, F_OK) < 0 || (meta.scratch_path[0] && access(meta.scratch_path, F_OK) < 0)) {
                                log_warning("machine %s: its root or scratch disk is missing; reported as broken", name);
                                snprintf(x.state, sizeof(x.state), "broken");
                        }
                        reg_put(m, &x);
                }
                virDomainFree(doms[i]);
        }
        free(doms);
        DIR *d = opendir(m->conf.machine_root);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (!hv_name_valid(de->d_name) || machine_exists(m, de->d_name))
                        continue;
                char p[PATH_MAX];
                snprintf(p, sizeof(p), "%s/%s/machine.meta", m->conf.machine_root, de->d_name);
                _cleanup_free_ char *text = NULL;
                if (hv_read_file(p, 1 << 16, &text, NULL) < 0)
                        continue;
                struct machine x = { 0 };
                snprintf(x.name, sizeof(x.name), "%.64s", de->d_name);
                snprintf(x.state, sizeof(x.state), "undefined");
                for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                        unsigned long long v;
                        if (sscanf(line, "uuid=%36s", x.uuid) == 1 || sscanf(line, "image=%64s", x.image) == 1)
                                continue;
                        if (sscanf(line, "cores=%llu", &v) == 1)
                                x.cores = (unsigned)v;
                        else if (sscanf(line, "memory_mib=%llu", &v) == 1)
                                x.memory_mib = v;
                        else if (sscanf(line, "scratch_bytes=%llu", &v) == 1)
                                x.scratch_bytes = v;
                }
                log_warning("machine directory %s/%s has no libvirt domain; listed as undefined (DestroyMachine removes it)",
                            m->conf.machine_root, de->d_name);
                reg_put(m, &x);
        }
        if (d)
                closedir(d);
}

static void tick(int timer, void *opaque) {
        (void)timer;
        (void)opaque;
}

static void *virt_main(void *arg) {
        struct manager *m = arg;
        unsigned backoff = 1;
        uint64_t next_try = 0;
        bool reconciled = false;
        virEventAddTimeout(500, tick, NULL, NULL); /* wakes the loop to see stop and reconnect */
        while (!atomic_load(&virt_stop_flag)) {
                pthread_mutex_lock(&conn_mtx);
                bool have = conn != NULL;
                pthread_mutex_unlock(&conn_mtx);
                if (!have && hv_mono_usec() >= next_try) {
                        const char *uri = m->conf.libvirt_uri[0] ? m->conf.libvirt_uri : NULL;
                        virConnectPtr c = virConnectOpen(uri);
                        if (!c) {
                                pthread_mutex_lock(&conn_mtx);
                                snprintf(conn_error, sizeof(conn_error), "cannot connect to libvirt at %.200s: %.250s", uri ? uri : "(default)",
                                         virt_error());
                                log_warning("%s (retry in %u s)", conn_error, backoff);
                                pthread_mutex_unlock(&conn_mtx);
                                next_try = hv_mono_usec() + backoff * 1000000ULL;
                                backoff = backoff < 30 ? backoff * 2 : 30;
                                first_attempt_done();
                        } else {
                                backoff = 1;
                                (void)virConnectSetKeepAlive(c, 5, 3); /* not every driver has keepalive */
                                virConnectRegisterCloseCallback(c, on_close, NULL, NULL);
                                lifecycle_cb = virConnectDomainEventRegisterAny(c, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                                                VIR_DOMAIN_EVENT_CALLBACK(lifecycle), m, NULL);
                                char *u = virConnectGetURI(c);
                                log_info("connected to libvirt at %s", u ? u : "?");
                                free(u);
                                if (!reconciled) {
                                        reconcile(m, c);
                                        reconciled = true;
                                }
                                pthread_mutex_lock(&conn_mtx);
                                conn = c;
                                pthread_mutex_unlock(&conn_mtx);
                                first_attempt_done();
                        }
                }
                if (virEventRunDefaultImpl() < 0)
                        log_warning("libvirt event loop: %s", virt_error());
        }
        pthread_mutex_lock(&conn_mtx);
        if (conn) {
                if (lifecycle_cb >= 0)
                        virConnectDomainEventDeregisterAny(conn, lifecycle_cb);
                virConnectUnregisterCloseCallback(conn, on_close);
                virConnectClose(conn);
                conn = NULL;
        }
        pthread_mutex_unlock(&conn_mtx);
        return NULL;
}

static void silence(void *ud, virErrorPtr err) {
        (void)ud;
        (void)err; /* errors are read with virGetLastErrorMessage where they matter */
}

int machine_start(struct manager *m) {
        virSetErrorFunc(NULL, silence);
        if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0)
                return -EIO;
        if (pthread_create(&virt_thread, NULL, virt_main, m) != 0)
                return -EAGAIN;
        virt_running = true;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        pthread_mutex_lock(&first_mtx);
        while (!first_done)
                if (pthread_cond_timedwait(&first_cond, &first_mtx, &until) == ETIMEDOUT) {
                        log_warning("libvirt did not answer within 10 s; machines are listed once it does");
                        break;
                }
        pthread_mutex_unlock(&first_mtx);
        return 0;
}

void machine_stop(struct manager *m) {
        if (!virt_running)
                return;
        atomic_store(&virt_stop_flag, true);
        pthread_join(virt_thread, NULL);
        virt_running = false;
        pthread_mutex_lock(&reg_mtx);
        while (m->machines) {
                struct machine *n = m->machines->next;
                free(m->machines);
                m->machines = n;
        }
        pthread_mutex_unlock(&reg_mtx);
}

/* ---- CreateMachine ---- */

static void copy_progress(void *ud, uint64_t done, uint64_t total) {
        job_set_bytes(ud, done, total);
}

static bool has_odirect(const char *dir) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/.odirect-probe", dir);
        int fd = open(p, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
        if (fd >= 0) {
                close(fd);
                unlink(p);
                return true;
        }
        return false;
}

static int libvirt_fail(struct hv_error *e, const char *what, const char *name) {
        virErrorPtr err = virGetLastError();
        if (err && (err->code == VIR_ERR_OPERATION_FAILED || err->code == VIR_ERR_DOM_EXIST) && strstr(virt_error(), "already"))
                return hv_fail(e, HV_E_MACHINE_EXISTS, EEXIST, "machine %s: %s: %s", name, what, virt_error());
        return hv_fail(e, HV_E_LIBVIRT, EIO, "machine %s: %s: %s", name, what, virt_error());
}

int machine_create_run(struct job *j, struct hv_error *e) {
        struct manager *m = j->mgr;
        const struct create_params *p = &j->create;
        /* MachineRoot is at most 511 bytes and a name 64: dir fits 600, the files PATH_MAX */
        char dir[600], root[PATH_MAX], root_tmp[PATH_MAX], scratch[PATH_MAX], console[PATH_MAX], meta[PATH_MAX];
        const struct hv_conf *cf = &j->conf->c;
        snprintf(dir, sizeof(dir), "%s/%s", cf->machine_root, j->target);
        snprintf(root, sizeof(root), "%s/root.raw", dir);
        snprintf(root_tmp, sizeof(root_tmp), "%s/root.raw.tmp", dir);
        snprintf(scratch, sizeof(scratch), "%s/scratch.img", dir);
        snprintf(console, sizeof(console), "%s/console.log", dir);
        snprintf(meta, sizeof(meta), "%s/machine.meta", dir);
        virConnectPtr c = NULL;
        virDomainPtr dom = NULL;
        char *xml = NULL;
        char uuid[37], scratch_uuid[37] = "", device[PATH_MAX] = "";
        const char *scratch_path = NULL;
        bool made_dir = false, started = false;
        uint64_t scratch_bytes = p->scratch_bytes;
        int r;

        job_set_phase(j, "copy");
        if (mkdir(dir, 0755) < 0) {
                r = errno == EEXIST ? hv_fail(e, HV_E_MACHINE_EXISTS, EEXIST, "machine directory %s already exists", dir)
                                    : hv_fail_errno(e, HV_E_ERRNO, errno, "cannot create %s", dir);
                goto fail;
        }
        made_dir = true;
        /* marks an unfinished creation: start-up removes such directories (a crash mid-create),
         * never one without it (a machine's kept disks, say) */
        char marker[PATH_MAX];
        snprintf(marker, sizeof(marker), "%s/.creating", dir);
        int mfd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (mfd < 0 || close(mfd) < 0) {
                r = hv_fail_errno(e, HV_E_ERRNO, errno, "cannot create %s", marker);
                goto fail;
        }
        r = hv_fsync_dir(dir);
        if (r < 0) {
                r = hv_fail_errno(e, HV_E_ERRNO, -r, "cannot flush %s", dir);
                goto fail;
        }
        bool reflinked = false;
        uint64_t t0 = hv_mono_usec();
        r = copy_sparse(p->image_path, root_tmp, copy_progress, j, &j->cancel, &reflinked, e);
        if (r < 0)
                goto fail;
        if (rename(root_tmp, root) < 0) {
                r = hv_fail_errno(e, HV_E_ERRNO, errno, "cannot rename %s", root_tmp);
                goto fail;
        }
        log_info("job %u: root disk %s %s in %.2f s", j->id, root, reflinked ? "reflinked" : "copied sparsely",
                 (double)(hv_mono_usec() - t0) / 1e6);
        if (atomic_load(&j->cancel)) {
                r = hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
                goto fail;
        }

        job_set_phase(j, "scratch");
        if (scratch_bytes > 0) {
                struct scratch_opts so = { .fs = p->scratch_fs, .bytes_per_inode = cf->scratch_bytes_per_inode,
                                           .alloc = strcmp(cf->scratch_allocation, "fallocate") == 0 ? SCRATCH_FALLOCATE : SCRATCH_SPARSE };
                if (cf->n_scratch_devices) {
                        const char *pats[HV_CONF_MAX_DIRS];
                        for (unsigned i = 0; i < cf->n_scratch_devices; i++)
                                pats[i] = cf->scratch_devices[i];
                        r = scratch_claim_device(pats, cf->n_scratch_devices, scratch_bytes, NULL, 0, device, sizeof(device), e);
                        if (r < 0)
                                goto fail;
                        r = scratch_format(device, scratch_bytes, &so, false, scratch_uuid, e);
                        scratch_path = device;
                } else {
                        r = scratch_create(scratch, scratch_bytes, &so, scratch_uuid, e);
                        scratch_path = scratch;
                }
                if (r < 0)
                        goto fail;
        }
        if (atomic_load(&j->cancel)) {
                r = hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
                goto fail;
        }

        job_set_phase(j, "define");
        c = conn_get();
        if (!c) {
                pthread_mutex_lock(&conn_mtx);
                r = hv_fail(e, HV_E_LIBVIRT, ENOTCONN, "%s", conn_error);
                pthread_mutex_unlock(&conn_mtx);
                goto fail;
        }
        virDomainPtr other = virDomainLookupByName(c, j->target);
        if (other) {
                virDomainFree(other);
                r = hv_fail(e, HV_E_MACHINE_EXISTS, EEXIST, "libvirt already has a domain named %s", j->target);
                goto fail;
        }
        uint8_t ub[16];
        hv_uuid_random(ub);
        hv_uuid_format(ub, uuid);
        struct dom_spec spec = {
                .name = j->target, .uuid = uuid, .hv = p->hv, .vcpus = p->cores, .memory_mib = p->memory_mib,
                .root_path = root, .scratch_path = scratch_path, .scratch_is_block = device[0] != 0,
                .direct_io = has_odirect(dir), .console_log = console, .network = p->network, .image = p->image,
                .scratch_uuid = scratch_uuid, .scratch_bytes = scratch_bytes, .created_usec = hv_now_usec(),
                .machine_root = cf->machine_root,
        };
        r = domxml_build(&spec, &xml, e);
        if (r < 0)
                goto fail;
        dom = virDomainDefineXML(c, xml);
        if (!dom) {
                r = libvirt_fail(e, "defining the domain", j->target);
                goto fail;
        }
        char text[2048];
        int n = snprintf(text, sizeof(text),
                         "# hvwgd machine record\nname=%s\nuuid=%s\nimage=%s\ncores=%u\nmemory_mib=%llu\nscratch_bytes=%llu\n"
                         "scratch_path=%s\nscratch_uuid=%s\nhypervisor=%s\ncreated_usec=%llu\n",
                         j->target, uuid, p->image, p->cores, (unsigned long long)p->memory_mib, (unsigned long long)scratch_bytes,
                         scratch_path ? scratch_path : "", scratch_uuid, dom_hv_name(p->hv), (unsigned long long)spec.created_usec);
        r = hv_write_file_atomic(meta, text, (size_t)n, 0644);
        if (r < 0) {
                r = hv_fail_errno(e, HV_E_ERRNO, -r, "cannot write %s", meta);
                goto fail;
        }
        if (unlink(marker) < 0 || hv_fsync_dir(dir) < 0) {
                r = hv_fail_errno(e, HV_E_ERRNO, errno, "cannot remove %s", marker);
                goto fail;
        }
        if (atomic_load(&j->cancel)) {
                r = hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
                goto fail;
        }
        if (p->start) {
                job_set_phase(j, "start");
                if (virDomainCreate(dom) < 0) {
                        r = libvirt_fail(e, "starting the domain", j->target);
                        goto fail;
                }
                started = true;
        }
        struct machine x = { .cores = p->cores, .memory_mib = p->memory_mib, .scratch_bytes = scratch_bytes };
        snprintf(x.name, sizeof(x.name), "%s", j->target);
        snprintf(x.uuid, sizeof(x.uuid), "%s", uuid);
        snprintf(x.image, sizeof(x.image), "%s", p->image);
        int st = 0, reason = 0;
        snprintf(x.state, sizeof(x.state), "%s", virDomainGetState(dom, &st, &reason, 0) == 0 ? state_name(st) : (started ? "running" : "shut-off"));
        reg_put(m, &x);
        log_info("machine %s (%s) created: %u cores, %llu MiB, scratch %llu bytes%s%s, %s", j->target, uuid, p->cores,
                 (unsigned long long)p->memory_mib, (unsigned long long)scratch_bytes, device[0] ? " on " : "", device, x.state);
        virDomainFree(dom);
        virConnectClose(c);
        free(xml);
        return 0;

fail:
        /* roll back everything this job made */
        if (dom) {
                if (started || virDomainIsActive(dom) == 1)
                        virDomainDestroy(dom);
                if (virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                                        VIR_DOMAIN_UNDEFINE_NVRAM) < 0)
                        virDomainUndefine(dom);
                virDomainFree(dom);
        }
        if (c)
                virConnectClose(c);
        free(xml);
        if (device[0])
                scratch_release_device(device);
        if (made_dir)
                remove_machine_dir(dir, false);
        return r;
}

/* ---- DestroyMachine ---- */

struct destroy_req {
        struct manager *m;
        sd_bus_message *msg;
        char name[65];
        bool keep_disks;
        struct hv_error err;
        int r;
};

static void destroy_done(struct manager *m, void *data) {
        struct destroy_req *d = data;
        if (d->r < 0) {
                pthread_mutex_lock(&reg_mtx);
                for (struct machine *x = m->machines; x; x = x->next)
                        if (strcmp(x->name, d->name) == 0)
                                x->destroying = false;
                pthread_mutex_unlock(&reg_mtx);
                sd_bus_reply_method_errorf(d->msg, hv_error_name(&d->err), "%s", d->err.msg);
                log_warning("destroying machine %s failed: %s", d->name, d->err.msg);
        } else {
                reg_remove(m, d->name);
                sd_bus_reply_method_return(d->msg, "");
                log_info("machine %s destroyed%s", d->name, d->keep_disks ? " (disks kept)" : "");
                sd_bus_emit_signal(m->bus, HV_OBJ_PATH, HV_MANAGER_IFACE, "MachineStateChanged", "ss", d->name, "undefined");
        }
        sd_bus_message_unref(d->msg);
        free(d);
}

static void *destroy_thread(void *arg) {
        struct destroy_req *d = arg;
        struct manager *m = d->m;
        virConnectPtr c = conn_get();
        char dir[600], scratch_path[1024] = "";
        snprintf(dir, sizeof(dir), "%s/%s", m->conf.machine_root, d->name);
        virDomainPtr dom = c ? virDomainLookupByName(c, d->name) : NULL;
        if (!c) {
                pthread_mutex_lock(&conn_mtx);
                d->r = hv_fail(&d->err, HV_E_LIBVIRT, ENOTCONN, "%s", conn_error);
                pthread_mutex_unlock(&conn_mtx);
                goto out;
        }
        if (dom) {
                struct dom_meta meta;
                if (!read_meta(dom, &meta)) {
                        d->r = hv_fail(&d->err, HV_E_NO_SUCH_MACHINE, ENOENT, "domain %s is not an hvwgd machine", d->name);
                        goto out;
                }
                snprintf(scratch_path, sizeof(scratch_path), "%s", meta.scratch_path);
                if (virDomainIsActive(dom) == 1 && virDomainDestroy(dom) < 0) {
                        d->r = libvirt_fail(&d->err, "stopping", d->name);
                        goto out;
                }
                if (virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                                        VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA) < 0 &&
                    virDomainUndefine(dom) < 0) {
                        d->r = libvirt_fail(&d->err, "undefining", d->name);
                        goto out;
                }
        }
        struct stat st;
        if (scratch_path[0] && stat(scratch_path, &st) == 0 && S_ISBLK(st.st_mode))
                scratch_release_device(scratch_path);
        remove_machine_dir(dir, d->keep_disks);
        d->r = 0;
out:
        if (dom)
                virDomainFree(dom);
        if (c)
                virConnectClose(c);
        manager_post(m, destroy_done, d);
        return NULL;
}

int machine_destroy(struct manager *m, sd_bus_message *msg, const char *name, bool keep_disks, sd_bus_error *ret) {
        pthread_mutex_lock(&reg_mtx);
        struct machine *x = m->machines;
        while (x && strcmp(x->name, name) != 0)
                x = x->next;
        bool busy = x && x->destroying;
        if (x)
                x->destroying = true;
        pthread_mutex_unlock(&reg_mtx);
        if (!x)
                return sd_bus_error_setf(ret, HV_ERROR_NO_SUCH_MACHINE, "no machine named %s", name);
        if (busy)
                return sd_bus_error_setf(ret, SD_BUS_ERROR_FAILED, "machine %s is already being destroyed", name);
        struct destroy_req *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->m = m;
        d->msg = sd_bus_message_ref(msg);
        d->keep_disks = keep_disks;
        snprintf(d->name, sizeof(d->name), "%s", name);
        pthread_t t;
        if (pthread_create(&t, NULL, destroy_thread, d) != 0) {
                sd_bus_message_unref(d->msg);
                free(d);
                return sd_bus_error_setf(ret, SD_BUS_ERROR_FAILED, "cannot start a thread");
        }
        pthread_detach(t);
        return 1; /* the reply comes from destroy_done */
}
