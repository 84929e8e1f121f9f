/* machine_ops.c: CreateMachine's job. */
#define _GNU_SOURCE
#include "machine_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <libvirt/virterror.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "context_iso.h"
#include "copy.h"
#include "log.h"
#include "scratch.h"

static void copy_progress(void *ud, uint64_t done, uint64_t total) {
        job_ctl_bytes(ud, done, total);
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

/* One creation's state; creation_end() rolls back everything it made unless it is done. */
struct creation {
        struct create_job *j;
        struct job_ctl *ctl;
        const struct hv_conf *cf;
        /* MachineRoot is at most 511 bytes and a name 64: dir fits, the files PATH_MAX */
        char dir[HV_STORE_DIR_MAX], root[PATH_MAX], root_tmp[PATH_MAX], scratch[PATH_MAX], console[PATH_MAX], meta[PATH_MAX], iso[PATH_MAX],
                marker[PATH_MAX];
        char uuid[HV_UUID_STR], scratch_uuid[HV_UUID_STR], device[PATH_MAX];
        const char *scratch_path;
        uint64_t created_usec;
        virConnectPtr c;
        virDomainPtr dom;
        char *xml;
        bool made_dir, started, done;
};

static void creation_end(struct creation *k) {
        if (!k->done && k->dom) {
                if (k->started || virDomainIsActive(k->dom) == 1)
                        virDomainDestroy(k->dom);
                (void)virt_undefine(k->dom);
        }
        if (k->dom)
                virDomainFree(k->dom);
        if (k->c)
                virConnectClose(k->c);
        free(k->xml);
        if (!k->done && k->device[0])
                scratch_release_device(k->device);
        if (!k->done && k->made_dir)
                machine_dir_remove(k->dir, false);
}

/* The directory, marked .creating: start-up removes such directories (a crash mid-create),
 * never one without it (a machine's kept disks, say). */
static int make_dir(struct creation *k, struct hv_error *e) {
        if (mkdir(k->dir, 0755) < 0)
                return errno == EEXIST ? hv_fail(e, HV_E_MACHINE_EXISTS, EEXIST, "machine directory %s already exists", k->dir)
                                       : hv_fail_errno(e, HV_E_ERRNO, errno, "cannot create %s", k->dir);
        k->made_dir = true;
        int mfd = open(k->marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (mfd < 0 || close(mfd) < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot create %s", k->marker);
        int r = hv_fsync_dir(k->dir);
        return r < 0 ? hv_fail_errno(e, HV_E_ERRNO, -r, "cannot flush %s", k->dir) : 0;
}

static int copy_root(struct creation *k, struct hv_error *e) {
        bool reflinked = false;
        uint64_t t0 = hv_mono_usec();
        int r = copy_sparse(k->j->p.image_path, k->root_tmp, copy_progress, k->ctl, job_ctl_abort(k->ctl), &reflinked, e);
        if (r < 0)
                return r;
        if (rename(k->root_tmp, k->root) < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot rename %s", k->root_tmp);
        log_info("job %u: root disk %s %s in %.2f s", job_ctl_id(k->ctl), k->root, reflinked ? "reflinked" : "copied sparsely",
                 (double)(hv_mono_usec() - t0) / 1e6);
        return 0;
}

/* A file in the machine's directory, or one of ScratchDevices; formatted, its UUID noted. */
static int make_scratch(struct creation *k, struct hv_error *e) {
        const struct create_params *p = &k->j->p;
        const struct hv_conf *cf = k->cf;
        if (p->scratch_bytes == 0)
                return 0;
        struct scratch_opts so = { .fs = p->scratch_fs, .bytes_per_inode = cf->scratch_bytes_per_inode,
                                   .alloc = strcmp(cf->scratch_allocation, "fallocate") == 0 ? SCRATCH_FALLOCATE : SCRATCH_SPARSE };
        if (!cf->n_scratch_devices) {
                /* sparse scratch files fill as guests write: what all of them may still take
                 * must fit in what the filesystem has free */
                struct statvfs sv;
                if (statvfs(k->dir, &sv) == 0) {
                        uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
                        if (p->scratch_bytes > avail) {
                                char a[32], b[32];
                                return hv_fail(e, HV_E_NO_SPACE, ENOSPC,
                                               "not enough space for a scratch disk of %s in %s: %s free (use a smaller scratch_gib or free space)",
                                               hv_format_size(p->scratch_bytes, a, sizeof(a)), cf->machine_root,
                                               hv_format_size(avail, b, sizeof(b)));
                        }
                }
                k->scratch_path = k->scratch;
                return scratch_create(k->scratch, p->scratch_bytes, &so, k->scratch_uuid, e);
        }
        const char *pats[HV_CONF_MAX_DIRS];
        for (unsigned i = 0; i < cf->n_scratch_devices; i++)
                pats[i] = cf->scratch_devices[i];
        int r = scratch_claim_device(pats, cf->n_scratch_devices, p->scratch_bytes, NULL, 0, k->device, sizeof(k->device), e);
        if (r < 0)
                return r;
        k->scratch_path = k->device;
        return scratch_format(k->device, p->scratch_bytes, &so, false, k->scratch_uuid, e);
}

/* The context disk (context.iso, 0600), when the caller gave a context. */
static int make_context(struct creation *k, struct hv_error *e) {
        if (!k->j->context.n)
                return 0;
        uint64_t t0 = hv_mono_usec();
        int r = context_iso_write(k->iso, &k->j->context, job_ctl_abort(k->ctl), e);
        if (r >= 0)
                log_info("job %u: context disk %s: %zu files, %llu bytes, in %.3f s", job_ctl_id(k->ctl), k->iso, k->j->context.n,
                         (unsigned long long)context_files_size(&k->j->context), (double)(hv_mono_usec() - t0) / 1e6);
        return r;
}

static int define(struct creation *k, struct hv_error *e) {
        const struct create_params *p = &k->j->p;
        const char *name = k->j->target;
        if (!(k->c = virt_conn(k->j->virt, e)))
                return -ENOTCONN;
        virDomainPtr other = virDomainLookupByName(k->c, name);
        if (other) {
                virDomainFree(other);
                return hv_fail(e, HV_E_MACHINE_EXISTS, EEXIST, "libvirt already has a domain named %s", name);
        }
        if (p->uuid[0])
                snprintf(k->uuid, sizeof(k->uuid), "%s", p->uuid);
        else {
                uint8_t ub[16];
                hv_uuid_random(ub);
                hv_uuid_format(ub, k->uuid);
        }
        k->created_usec = hv_now_usec();
        struct dom_spec spec = {
                .name = name, .uuid = k->uuid, .hv = p->hv, .vcpus = p->cores, .memory_mib = p->memory_mib,
                .root_path = k->root, .scratch_path = k->scratch_path, .scratch_is_block = k->device[0] != 0,
                .direct_io = has_odirect(k->dir), .console_log = k->console, .network = p->network, .image = p->image,
                .scratch_uuid = k->scratch_uuid, .scratch_bytes = p->scratch_bytes, .created_usec = k->created_usec,
                .machine_root = k->cf->machine_root, .owner = k->j->owner, .transient = p->transient,
                .context_iso = k->j->context.n ? k->iso : NULL,
        };
        int r = domxml_build(&spec, &k->xml, e);
        if (r < 0)
                return r;
        if (!(k->dom = virDomainDefineXML(k->c, k->xml)))
                return virt_fail(e, "defining the domain", name);
        return 0;
}

/* The registry's record of the new machine (its state is filled in at the end). */
static void make_record(struct creation *k, struct machine *x) {
        const struct create_params *p = &k->j->p;
        *x = (struct machine){ .cores = p->cores, .memory_mib = p->memory_mib, .scratch_bytes = p->scratch_bytes,
                               .owner = k->j->owner, .created_usec = k->created_usec, .transient = p->transient };
        snprintf(x->name, sizeof(x->name), "%s", k->j->target);
        snprintf(x->uuid, sizeof(x->uuid), "%s", k->uuid);
        snprintf(x->image, sizeof(x->image), "%s", p->image);
        snprintf(x->hypervisor, sizeof(x->hypervisor), "%s", dom_hv_name(p->hv));
        snprintf(x->network, sizeof(x->network), "%s", p->network);
        snprintf(x->scratch_path, sizeof(x->scratch_path), "%s", k->scratch_path ? k->scratch_path : "");
        snprintf(x->scratch_uuid, sizeof(x->scratch_uuid), "%s", k->scratch_uuid);
}

/* machine.meta, then the marker goes: from here on the directory is a complete machine. */
static int write_record(struct creation *k, struct hv_error *e) {
        struct machine x;
        make_record(k, &x);
        char text[4096];
        int n = machine_record_format(&x, text, sizeof(text));
        if (n < 0)
                return hv_fail(e, HV_E_ERRNO, ENAMETOOLONG, "the record of machine %s does not fit", x.name);
        int r = hv_write_file_atomic(k->meta, text, (size_t)n, 0644);
        if (r < 0)
                return hv_fail_errno(e, HV_E_ERRNO, -r, "cannot write %s", k->meta);
        if (unlink(k->marker) < 0 || hv_fsync_dir(k->dir) < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot remove %s", k->marker);
        return 0;
}

static int create_run(struct job_ctl *ctl, void *payload, struct hv_error *e) {
        struct create_job *j = payload;
        const struct create_params *p = &j->p;
        _cleanup_(creation_end) struct creation k = { .j = j, .ctl = ctl, .cf = &j->conf->c };
        snprintf(k.dir, sizeof(k.dir), "%s/%s", k.cf->machine_root, j->target);
        snprintf(k.root, sizeof(k.root), "%s/root.raw", k.dir);
        snprintf(k.root_tmp, sizeof(k.root_tmp), "%s/root.raw.tmp", k.dir);
        snprintf(k.scratch, sizeof(k.scratch), "%s/scratch.img", k.dir);
        snprintf(k.console, sizeof(k.console), "%s/console.log", k.dir);
        snprintf(k.meta, sizeof(k.meta), "%s/machine.meta", k.dir);
        snprintf(k.marker, sizeof(k.marker), "%s/.creating", k.dir);
        snprintf(k.iso, sizeof(k.iso), "%s/context.iso", k.dir);
        int r;
        job_ctl_phase(ctl, "copy");
        if ((r = make_dir(&k, e)) < 0 || (r = copy_root(&k, e)) < 0 || (r = job_ctl_canceled(ctl, e)) < 0)
                return r;
        job_ctl_phase(ctl, "scratch");
        if ((r = make_scratch(&k, e)) < 0 || (r = job_ctl_canceled(ctl, e)) < 0)
                return r;
        if (j->context.n) {
                job_ctl_phase(ctl, "context");
                if ((r = make_context(&k, e)) < 0 || (r = job_ctl_canceled(ctl, e)) < 0)
                        return r;
        }
        job_ctl_phase(ctl, "define");
        if ((r = define(&k, e)) < 0 || (r = write_record(&k, e)) < 0 || (r = job_ctl_canceled(ctl, e)) < 0)
                return r;
        if (p->start) {
                job_ctl_phase(ctl, "start");
                if (virDomainCreate(k.dom) < 0)
                        return virt_fail(e, "starting the domain", j->target);
                k.started = true;
        }
        struct machine x;
        make_record(&k, &x);
        int st = 0, reason = 0;
        snprintf(x.state, sizeof(x.state), "%s",
                 virDomainGetState(k.dom, &st, &reason, 0) == 0 ? virt_state_name(st) : (k.started ? "running" : "shut-off"));
        /* a transient guest that is already gone ends as soon as the registry hears of it */
        snprintf(x.reason, sizeof(x.reason), "%s", k.started ? (strcmp(x.state, "shut-off") == 0 ? "poweroff" : "booted") : "created");
        machines_put(j->machines, &x);
        log_info("machine %s (%s) created%s: %u cores, %llu MiB, scratch %llu bytes%s%s, %s, owner uid %u", j->target, k.uuid,
                 p->transient ? " (transient)" : "", p->cores, (unsigned long long)p->memory_mib, (unsigned long long)p->scratch_bytes,
                 k.device[0] ? " on " : "", k.device, x.state, j->owner);
        k.done = true;
        return 0;
}

static void create_job_free(void *payload) {
        struct create_job *j = payload;
        if (j) {
                hv_conf_snap_unref(j->conf);
                context_files_free(&j->context);
        }
        free(j);
}


struct create_job *create_job_new(const char *target, const struct create_params *p, unsigned owner, struct context_files *context,
                                  struct hv_conf_snap *conf, struct virt *virt, struct machines *machines) {
        struct create_job *j = calloc(1, sizeof(*j));
        if (!j) {
                context_files_free(context);
                return NULL;
        }
        *j = (struct create_job){ .p = *p, .owner = owner, .context = *context, .conf = hv_conf_snap_ref(conf), .virt = virt, .machines = machines };
        *context = (struct context_files){ 0 };
        snprintf(j->target, sizeof(j->target), "%s", target);
        return j;
}

const struct job_kind create_kind = {
        .name = "create",
        .run = create_run,
        .free = create_job_free,
};
