/* inspect.c: runs the pure MBR parser over an image file and names each partition's
 * filesystem with libblkid (util-linux's prober: it knows far more filesystems than we could). */
#include "inspect.h"

#include <blkid/blkid.h>
#include <errno.h>
#include <string.h>

static int read_fd(void *ud, uint64_t off, void *buf, size_t len) {
        int fd = *(int *)ud;
        size_t done = 0;
        while (done < len) {
                ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO; /* short image: the parser checks sizes before reading */
                done += (size_t)n;
        }
        return 0;
}

int inspect_probe_fs(int fd, uint64_t off, uint64_t size, char *buf, size_t len) {
        buf[0] = 0;
        blkid_probe pr = blkid_new_probe();
        if (!pr)
                return -ENOMEM;
        int r = 0;
        if (blkid_probe_set_device(pr, fd, (blkid_loff_t)off, (blkid_loff_t)size) < 0) {
                r = -EIO;
                goto out;
        }
        blkid_probe_enable_superblocks(pr, 1);
        blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
        blkid_probe_enable_partitions(pr, 0);
        /* safeprobe: ambiguous results (two signatures) count as nothing found */
        if (blkid_do_safeprobe(pr) == 0) {
                const char *type = NULL;
                if (blkid_probe_lookup_value(pr, "TYPE", &type, NULL) == 0 && type)
                        snprintf(buf, len, "%s", type);
        }
out:
        blkid_free_probe(pr);
        return r;
}

int inspect_fd(int fd, uint64_t size, struct mbr_table *t, struct hv_error *e) {
        int r = mbr_parse(size, read_fd, &fd, t, e);
        if (r < 0) {
                if (t->no_table) {
                        char fs[32];
                        if (inspect_probe_fs(fd, 0, size, fs, sizeof(fs)) >= 0 && fs[0]) {
                                size_t l = strlen(e->msg);
                                snprintf(e->msg + l, sizeof(e->msg) - l,
                                         "; found a whole-disk %s filesystem instead (the image must be a partitioned disk)", fs);
                        }
                }
                return r;
        }
        for (unsigned i = 0; i < t->n; i++) {
                struct mbr_part *p = &t->parts[i];
                if (p->extended)
                        continue;
                r = inspect_probe_fs(fd, p->offset, p->size, p->fs, sizeof(p->fs));
                if (r < 0)
                        return hv_fail_errno(e, HV_E_ERRNO, -r, "probing partition %u", p->number);
                /* the rule is "no LVM in the guest", whatever the type byte says */
                if (strcmp(p->fs, "LVM2_member") == 0)
                        return hv_fail(e, HV_E_LVM, EBADMSG,
                                       "partition %u (type 0x%02x, LBA %llu+%llu) holds an LVM2 physical volume: the HEPiX image "
                                       "format does not allow LVM", p->number, p->type, (unsigned long long)(p->offset / 512),
                                       (unsigned long long)(p->size / 512));
        }
        return 0;
}
