/* scratch_dev.c: block devices as scratch disks ([Machine] ScratchDevices=). Before a device is
 * touched, libudev and libblkid must agree it is free: a disk or partition, not mounted, not
 * swap, no holders (device-mapper, md), no partitions of its own, and no signature other than a
 * scratch filesystem of ours (label "scratch" and a UUID we recorded). */
#define _GNU_SOURCE
#include <blkid/blkid.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libudev.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <linux/fs.h>

#include "names.h"
#include "scratch.h"

static int mounted_at(dev_t dev, char *where, size_t len) {
        FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return -errno;
        char line[4096];
        int found = 0;
        while (fgets(line, sizeof(line), f)) {
                unsigned maj, min;
                char mp[2048];
                /* id parent major:minor root mount-point ... */
                if (sscanf(line, "%*u %*u %u:%u %*s %2047s", &maj, &min, mp) == 3 && makedev(maj, min) == dev) {
                        snprintf(where, len, "%s", mp);
                        found = 1;
                        break;
                }
        }
        fclose(f);
        return found;
}

static bool is_swap(const char *devnode) {
        FILE *f = fopen("/proc/swaps", "re");
        if (!f)
                return false;
        char line[1024];
        bool found = false;
        size_t n = strlen(devnode);
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, devnode, n) == 0 && (line[n] == ' ' || line[n] == '\t'))
                        found = true;
        fclose(f);
        return found;
}

static int first_entry(const char *dir, char *name, size_t len) {
        DIR *d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        struct dirent *de;
        int found = 0;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.') {
                        snprintf(name, len, "%s", de->d_name);
                        found = 1;
                        break;
                }
        closedir(d);
        return found;
}

HV_DEFINE_CLEANUP(struct udev *, udev_unref)
HV_DEFINE_CLEANUP(struct udev_device *, udev_device_unref)
HV_DEFINE_CLEANUP(struct udev_enumerate *, udev_enumerate_unref)
HV_DEFINE_CLEANUP(blkid_probe, blkid_free_probe)

int scratch_check_device(const char *devnode, const char *const *our_uuids, size_t n_uuids, uint64_t *ret_size,
                         struct hv_error *e) {
        struct stat st;
        if (stat(devnode, &st) < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "scratch device %s", devnode);
        if (!S_ISBLK(st.st_mode))
                return hv_fail(e, HV_E_INVALID_ARGS, ENOTBLK, "scratch device %s is not a block device", devnode);
        _cleanup_(udev_unrefp) struct udev *u = udev_new();
        if (!u)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "cannot initialise libudev");
        int r = 0;
        _cleanup_(udev_device_unrefp) struct udev_device *d = udev_device_new_from_devnum(u, 'b', st.st_rdev);
        if (!d)
                return hv_fail(e, HV_E_ERRNO, ENODEV, "scratch device %s: not known to udev/sysfs", devnode);
        const char *devtype = udev_device_get_devtype(d);
        if (!devtype || (strcmp(devtype, "disk") != 0 && strcmp(devtype, "partition") != 0))
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "scratch device %s is a %s, not a disk or partition", devnode,
                               devtype ? devtype : "device of unknown type");
        char where[2048], holder[256], path[PATH_MAX];
        if (mounted_at(st.st_rdev, where, sizeof(where)) > 0)
                return hv_fail(e, HV_E_IMAGE_BUSY, EBUSY, "scratch device %s is mounted on %s", devnode, where);
        if (is_swap(devnode))
                return hv_fail(e, HV_E_IMAGE_BUSY, EBUSY, "scratch device %s is in use as swap", devnode);
        snprintf(path, sizeof(path), "%s/holders", udev_device_get_syspath(d));
        if (first_entry(path, holder, sizeof(holder)) > 0)
                return hv_fail(e, HV_E_IMAGE_BUSY, EBUSY, "scratch device %s is held by %s (device-mapper, md or similar)", devnode,
                               holder);
        _cleanup_(udev_enumerate_unrefp) struct udev_enumerate *en = udev_enumerate_new(u);
        if (!en || udev_enumerate_add_match_parent(en, d) < 0 || udev_enumerate_add_match_subsystem(en, "block") < 0 ||
            udev_enumerate_scan_devices(en) < 0)
                return hv_fail(e, HV_E_ERRNO, EIO, "scratch device %s: cannot list its partitions", devnode);
        struct udev_list_entry *le;
        udev_list_entry_foreach(le, udev_enumerate_get_list_entry(en)) {
                struct udev_device *c = udev_device_new_from_syspath(u, udev_list_entry_get_name(le));
                bool part = c && udev_device_get_devtype(c) && strcmp(udev_device_get_devtype(c), "partition") == 0 &&
                            strcmp(udev_device_get_syspath(c), udev_device_get_syspath(d)) != 0;
                if (part)
                        r = hv_fail(e, HV_E_INVALID_ARGS, EBUSY, "scratch device %s has partitions (%s)", devnode,
                                    udev_device_get_sysname(c));
                udev_device_unref(c);
                if (r < 0)
                        return r;
        }
        /* signatures: the whole device, superblocks and partition tables */
        _cleanup_close_ int fd = open(devnode, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot open scratch device %s", devnode);
        uint64_t size = 0;
        if (ioctl(fd, BLKGETSIZE64, &size) < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot read the size of %s", devnode);
        _cleanup_(blkid_free_probep) blkid_probe pr = blkid_new_probe();
        if (!pr || blkid_probe_set_device(pr, fd, 0, 0) < 0)
                return hv_fail(e, HV_E_ERRNO, EIO, "cannot probe %s", devnode);
        blkid_probe_enable_superblocks(pr, 1);
        blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID);
        blkid_probe_enable_partitions(pr, 1);
        int pr_r = blkid_do_safeprobe(pr);
        const char *type = NULL, *label = NULL, *uuid = NULL, *pttype = NULL;
        if (pr_r == 0) {
                blkid_probe_lookup_value(pr, "TYPE", &type, NULL);
                blkid_probe_lookup_value(pr, "LABEL", &label, NULL);
                blkid_probe_lookup_value(pr, "UUID", &uuid, NULL);
                blkid_probe_lookup_value(pr, "PTTYPE", &pttype, NULL);
        }
        if (pr_r == -2)
                r = hv_fail(e, HV_E_INVALID_ARGS, EBUSY, "scratch device %s carries several conflicting signatures", devnode);
        else if (pttype)
                r = hv_fail(e, HV_E_INVALID_ARGS, EBUSY, "scratch device %s carries a %s partition table", devnode, pttype);
        else if (type) {
                bool ours = label && strcmp(label, SCRATCH_LABEL) == 0 && uuid &&
                            (!strcmp(type, "ext4") || !strcmp(type, "ext3") || !strcmp(type, "ext2"));
                bool recorded = false;
                for (size_t i = 0; ours && i < n_uuids; i++)
                        recorded |= strcmp(our_uuids[i], uuid) == 0;
                if (!ours || !recorded)
                        r = hv_fail(e, HV_E_INVALID_ARGS, EBUSY,
                                    "scratch device %s carries a filesystem of type %s (label \"%s\", UUID %s)%s", devnode, type,
                                    label ? label : "", uuid ? uuid : "none",
                                    ours ? " that hvwgd has no record of" : " that is not an hvwgd scratch disk");
        }
        if (r >= 0 && ret_size)
                *ret_size = size;
        return r;
}

static pthread_mutex_t claim_lock = PTHREAD_MUTEX_INITIALIZER;
static dev_t claimed[256];
static size_t n_claimed;

int scratch_claim_device(const char *const *patterns, size_t n_patterns, uint64_t min_size, const char *const *our_uuids,
                         size_t n_uuids, char *ret_path, size_t len, struct hv_error *e) {
        pthread_mutex_lock(&claim_lock);
        char best[PATH_MAX] = "";
        uint64_t best_size = UINT64_MAX;
        dev_t best_dev = 0;
        unsigned seen = 0;
        for (size_t i = 0; i < n_patterns; i++) {
                glob_t g;
                if (glob(patterns[i], 0, NULL, &g) != 0)
                        continue;
                for (size_t k = 0; k < g.gl_pathc; k++) {
                        struct stat st;
                        if (stat(g.gl_pathv[k], &st) < 0 || !S_ISBLK(st.st_mode))
                                continue;
                        bool taken = false;
                        for (size_t c = 0; c < n_claimed; c++)
                                taken |= claimed[c] == st.st_rdev;
                        seen++;
                        struct hv_error ignore = { 0 };
                        uint64_t size;
                        if (taken || scratch_check_device(g.gl_pathv[k], our_uuids, n_uuids, &size, &ignore) < 0)
                                continue;
                        if (size >= min_size && size < best_size) {
                                best_size = size;
                                best_dev = st.st_rdev;
                                snprintf(best, sizeof(best), "%s", g.gl_pathv[k]);
                        }
                }
                globfree(&g);
        }
        int r = 0;
        if (!best[0]) {
                char a[32];
                r = hv_fail(e, HV_E_NO_SPACE, ENOSPC, "no free scratch device of at least %s among %u matching ScratchDevices",
                            hv_format_size(min_size, a, sizeof(a)), seen);
        } else if (n_claimed == ELEMENTSOF(claimed)) {
                r = hv_fail(e, HV_E_ERRNO, EMFILE, "too many scratch devices in use");
        } else {
                claimed[n_claimed++] = best_dev;
                snprintf(ret_path, len, "%s", best);
        }
        pthread_mutex_unlock(&claim_lock);
        return r;
}

void scratch_release_device(const char *path) {
        struct stat st;
        if (stat(path, &st) < 0)
                return;
        pthread_mutex_lock(&claim_lock);
        for (size_t c = 0; c < n_claimed; c++)
                if (claimed[c] == st.st_rdev) {
                        claimed[c] = claimed[--n_claimed];
                        break;
                }
        pthread_mutex_unlock(&claim_lock);
}

/* The scratch formatter on its own, for benchmarks and debugging: the same code CreateMachine uses. */
int scratch_format_cli(const struct hv_conf *c, const char *path, const char *size_s, const char *fs, const char *alloc) {
        struct hv_error e = { 0 };
        uint64_t size = 0;
        struct scratch_opts o = { .fs = fs ? fs : c->scratch_filesystem, .bytes_per_inode = c->scratch_bytes_per_inode };
        char uuid[HV_UUID_STR];
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
        if (size > c->max_scratch_size) {
                fprintf(stderr, "hvwgd: %s is larger than MaxScratchSize\n", size_s);
                return 1;
        }
        if (strcmp(alloc, "fallocate") == 0)
                o.alloc = SCRATCH_FALLOCATE;
        else if (strcmp(alloc, "sparse") != 0) {
                fprintf(stderr, "hvwgd: --scratch-alloc must be sparse or fallocate\n");
                return 2;
        }
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
