/* machine_ops.c: CreateMachine's job and DestroyMachine's work. */
#define _GNU_SOURCE
#include "machine_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <libvirt/virterror.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static int create_run(struct job_ctl *ctl, void *payload, struct hv_error *e) {
        struct create_job *j = payload;
        const struct create_params *p = &j->p;
        atomic_bool *abort = job_ctl_abort(ctl);
        /* MachineRoot is at most 511 bytes and a name 64: dir fits 600, the files PATH_MAX */
        char dir[HV_STORE_DIR_MAX], root[PATH_MAX], root_tmp[PATH_MAX], scratch[PATH_MAX], console[PATH_MAX], meta[PATH_MAX];
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
        char uuid[HV_UUID_STR], scratch_uuid[HV_UUID_STR] = "", device[PATH_MAX] = "";
        const char *scratch_path = NULL;
        bool made_dir = false, started = false;
        uint64_t scratch_bytes = p->scratch_bytes;
        int r;

        job_ctl_phase(ctl, "copy");
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
        r = copy_sparse(p->image_path, root_tmp, copy_progress, ctl, abort, &reflinked, e);
        if (r < 0)
                goto fail;
        if (rename(root_tmp, root) < 0) {
                r = hv_fail_errno(e, HV_E_ERRNO, errno, "cannot rename %s", root_tmp);
                goto fail;
        }
        log_info("job %u: root disk %s %s in %.2f s", job_ctl_id(ctl), root, reflinked ? "reflinked" : "copied sparsely",
                 (double)(hv_mono_usec() - t0) / 1e6);
        if (atomic_load(abort)) {
                r = hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
                goto fail;
        }

        job_ctl_phase(ctl, "scratch");
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
        if (atomic_load(abort)) {
                r = hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
                goto fail;
        }

        job_ctl_phase(ctl, "define");
        c = virt_conn(j->virt, e);
        if (!c) {
                r = -ENOTCONN;
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
                r = virt_fail(e, "defining the domain", j->target);
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
        if (atomic_load(abort)) {
                r = hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
                goto fail;
        }
        if (p->start) {
                job_ctl_phase(ctl, "start");
                if (virDomainCreate(dom) < 0) {
                        r = virt_fail(e, "starting the domain", j->target);
                        goto fail;
                }
                started = true;
        }
        struct machine x = { .cores = p->cores, .memory_mib = p->memory_mib, .scratch_bytes = scratch_bytes };
        snprintf(x.name, sizeof(x.name), "%s", j->target);
        snprintf(x.uuid, sizeof(x.uuid), "%s", uuid);
        snprintf(x.image, sizeof(x.image), "%s", p->image);
        int st = 0, reason = 0;
        snprintf(x.state, sizeof(x.state), "%s", virDomainGetState(dom, &st, &reason, 0) == 0 ? virt_state_name(st) : (started ? "running" : "shut-off"));
        machines_put(j->machines, &x);
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
                machine_dir_remove(dir, false);
        return r;
}

static void create_job_free(void *payload) {
        struct create_job *j = payload;
        if (!j)
                return;
        hv_conf_snap_unref(j->conf);
        free(j);
}

const struct job_kind create_kind = {
        .name = "create",
        .run = create_run,
        .free = create_job_free,
};

struct create_job *create_job_new(const char *target, const struct create_params *p, struct hv_conf_snap *conf, struct virt *virt,
                                  struct machines *machines) {
        struct create_job *j = calloc(1, sizeof(*j));
        if (!j)
                return NULL;
        snprintf(j->target, sizeof(j->target), "%s", target);
        j->p = *p;
        j->conf = hv_conf_snap_ref(conf);
        j->virt = virt;
        j->machines = machines;
        return j;
}

/* ---- DestroyMachine ---- */

struct destroy_req {
        struct loop *loop;
        struct virt *virt;
        struct machines *ms;
        char dir[PATH_MAX];
        destroy_done_fn done;
        void *ud;
        char name[HV_NAME_MAX + 1];
        bool keep_disks;
        struct hv_error err;
        int r;
};

static void destroy_done(void *data) {
        struct destroy_req *d = data;
        if (d->r < 0) {
                machines_end_destroy(d->ms, d->name);
                log_warning("destroying machine %s failed: %s", d->name, d->err.msg);
        } else {
                machines_remove(d->ms, d->name);
                log_info("machine %s destroyed%s", d->name, d->keep_disks ? " (disks kept)" : "");
        }
        d->done(d->ud, d->name, d->r, &d->err);
        free(d);
}

static void *destroy_thread(void *arg) {
        struct destroy_req *d = arg;
        virConnectPtr c = virt_conn(d->virt, &d->err);
        char scratch_path[1024] = "";
        virDomainPtr dom = c ? virDomainLookupByName(c, d->name) : NULL;
        if (!c) {
                d->r = -ENOTCONN;
                goto out;
        }
        if (dom) {
                struct dom_meta meta;
                if (!virt_read_meta(dom, &meta)) {
                        d->r = hv_fail(&d->err, HV_E_NO_SUCH_MACHINE, ENOENT, "domain %s is not an hvwgd machine", d->name);
                        goto out;
                }
                snprintf(scratch_path, sizeof(scratch_path), "%s", meta.scratch_path);
                if (virDomainIsActive(dom) == 1 && virDomainDestroy(dom) < 0) {
                        d->r = virt_fail(&d->err, "stopping", d->name);
                        goto out;
                }
                if (virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                                        VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA) < 0 &&
                    virDomainUndefine(dom) < 0) {
                        d->r = virt_fail(&d->err, "undefining", d->name);
                        goto out;
                }
        }
        struct stat st;
        if (scratch_path[0] && stat(scratch_path, &st) == 0 && S_ISBLK(st.st_mode))
                scratch_release_device(scratch_path);
        machine_dir_remove(d->dir, d->keep_disks);
        d->r = 0;
out:
        if (dom)
                virDomainFree(dom);
        if (c)
                virConnectClose(c);
        if (loop_post(d->loop, destroy_done, d) < 0)
                log_error("machine %s: the end of its destroy is lost (out of memory)", d->name);
        return NULL;
}

int machine_destroy(struct loop *loop, struct virt *virt, struct machines *ms, const char *machine_root, const char *name,
                    bool keep_disks, destroy_done_fn done, void *ud) {
        struct destroy_req *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        *d = (struct destroy_req){ .loop = loop, .virt = virt, .ms = ms, .done = done, .ud = ud, .keep_disks = keep_disks };
        snprintf(d->name, sizeof(d->name), "%s", name);
        snprintf(d->dir, sizeof(d->dir), "%s/%s", machine_root, name);
        pthread_t t;
        if (pthread_create(&t, NULL, destroy_thread, d) != 0) {
                free(d);
                return -EAGAIN;
        }
        pthread_detach(t);
        return 0;
}
