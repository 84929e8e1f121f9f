/* contents_ext.c: reads an image's ext2/3/4 partitions read-only with libext2fs, in-process,
 * without mounting: the image file opened at the partition's offset (unix I/O manager,
 * "offset="), paths resolved inside the filesystem (a symlink cannot leave it: "/" and ".."
 * stop at its root; libext2fs bounds nested links), every file read at most CT_FILE_MAX,
 * directories at most DIR_MAX entries. What cannot be read becomes a note, never a failure. */
#define _GNU_SOURCE
#include "contents_ext.h"

#include "ext2.h"

#include <errno.h>
#include <et/com_err.h>
#include <ext2fs/ext2fs.h>
#include <string.h>

#define DIR_MAX 4096


static bool is_ext(const char *fs) {
        return strcmp(fs, "ext2") == 0 || strcmp(fs, "ext3") == 0 || strcmp(fs, "ext4") == 0;
}

static errcode_t lookup(ext2_filsys fs, const char *path, ext2_ino_t *ino, struct ext2_inode *inode) {
        errcode_t err = ext2fs_namei_follow(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, ino);
        return err ? err : ext2fs_read_inode(fs, *ino, inode);
}

/* A regular file's first CT_FILE_MAX bytes (NUL-terminated); 0 or an error. */
static errcode_t read_file(ext2_filsys fs, const char *path, char **buf, size_t *len) {
        ext2_ino_t ino;
        struct ext2_inode inode;
        *buf = NULL;
        *len = 0;
        errcode_t err = lookup(fs, path, &ino, &inode);
        if (err)
                return err;
        if (!LINUX_S_ISREG(inode.i_mode))
                return EXT2_ET_FILE_NOT_FOUND;
        ext2_file_t f;
        if ((err = ext2fs_file_open(fs, ino, 0, &f)))
                return err;
        char *b = malloc(CT_FILE_MAX + 1);
        unsigned got = 0;
        while (b && got < CT_FILE_MAX && !err) {
                unsigned n = 0;
                err = ext2fs_file_read(f, b + got, CT_FILE_MAX - got, &n);
                if (!n)
                        break;
                got += n;
        }
        ext2fs_file_close(f);
        if (!b)
                return EXT2_ET_NO_MEMORY;
        if (err) {
                free(b);
                return err;
        }
        b[got] = 0;
        *buf = b;
        *len = got;
        return 0;
}

static bool exists(ext2_filsys fs, const char *path, bool dir) {
        ext2_ino_t ino;
        struct ext2_inode inode;
        return lookup(fs, path, &ino, &inode) == 0 && (dir ? LINUX_S_ISDIR(inode.i_mode) : LINUX_S_ISREG(inode.i_mode));
}

struct names {
        char (*v)[256];
        unsigned n, seen;
};

static int collect(struct ext2_dir_entry *d, int offset, int blocksize, char *buf, void *ud) {
        (void)offset; (void)blocksize; (void)buf;
        struct names *ns = ud;
        if (++ns->seen > DIR_MAX || ns->n >= DIR_MAX)
                return DIRENT_ABORT;
        unsigned l = ext2fs_dirent_name_len(d);
        if (l == 0 || l >= 256 || (l <= 2 && d->name[0] == '.' && (l == 1 || d->name[1] == '.')))
                return 0;
        memcpy(ns->v[ns->n], d->name, l);
        ns->v[ns->n][l] = 0;
        ns->n++;
        return 0;
}

/* The names in a directory (at most DIR_MAX); ns->v malloc'd. */
static void list_dir(ext2_filsys fs, const char *path, struct names *ns) {
        *ns = (struct names){ 0 };
        ext2_ino_t ino;
        struct ext2_inode inode;
        if (lookup(fs, path, &ino, &inode) || !LINUX_S_ISDIR(inode.i_mode) || !(ns->v = calloc(DIR_MAX, 256)))
                return;
        (void)ext2fs_dir_iterate(fs, ino, 0, NULL, collect, ns);
}

static bool has_name(const struct names *ns, const char *name) {
        for (unsigned i = 0; i < ns->n; i++)
                if (strcmp(ns->v[i], name) == 0)
                        return true;
        return false;
}

/* Kernels in dir (vmlinuz-VERSION) and their initramfs. */
static void kernels(ext2_filsys fs, const char *dir, struct contents *c) {
        struct names ns;
        list_dir(fs, dir, &ns);
        for (unsigned i = 0; i < ns.n && c->n_kernels < CT_MAX_KERNELS; i++) {
                if (strncmp(ns.v[i], "vmlinuz-", 8) != 0 || !ns.v[i][8])
                        continue;
                struct ct_kernel *k = &c->kernels[c->n_kernels++];
                const char *ver = ns.v[i] + 8;
                snprintf(k->version, sizeof(k->version), "%s", ver);
                char a[300], b[300];
                snprintf(a, sizeof(a), "initrd.img-%s", ver);
                snprintf(b, sizeof(b), "initramfs-%s.img", ver);
                k->initramfs = has_name(&ns, a) || has_name(&ns, b);
        }
        free(ns.v);
}

/* Bootloader configurations under prefix ("/boot" on the root, "" on a /boot partition). */
static void bootloader(ext2_filsys fs, const char *prefix, struct contents *c) {
        static const struct { const char *path, *name; } cfgs[] = {
                { "/grub/grub.cfg", "grub" }, { "/grub2/grub.cfg", "grub" }, { "/syslinux/syslinux.cfg", "syslinux" },
                { "/syslinux.cfg", "syslinux" }, { "/extlinux/extlinux.conf", "extlinux" }, { "/extlinux.conf", "extlinux" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cfgs); i++) {
                char path[64], *buf;
                size_t len;
                snprintf(path, sizeof(path), "%s%s", prefix, cfgs[i].path);
                if (read_file(fs, path, &buf, &len))
                        continue;
                if (!c->bootloader[0])
                        snprintf(c->bootloader, sizeof(c->bootloader), "%s", cfgs[i].name);
                contents_scan_cmdline(c, buf, len);
                free(buf);
        }
}

/* Units wanted by targets (/etc/systemd/system/NAME.wants/UNIT) that need /scratch. */
static void units(ext2_filsys fs, struct contents *c) {
        struct names wants;
        list_dir(fs, "/etc/systemd/system", &wants);
        for (unsigned i = 0; i < wants.n; i++) {
                size_t l = strlen(wants.v[i]);
                if (l < 7 || strcmp(wants.v[i] + l - 6, ".wants") != 0)
                        continue;
                char dir[300];
                snprintf(dir, sizeof(dir), "/etc/systemd/system/%s", wants.v[i]);
                struct names us;
                list_dir(fs, dir, &us);
                for (unsigned k = 0; k < us.n && k < 256; k++) {
                        char path[600], *buf;
                        size_t len;
                        snprintf(path, sizeof(path), "%s/%s", dir, us.v[k]);
                        if (read_file(fs, path, &buf, &len))
                                continue;
                        contents_scan_unit(c, us.v[k], buf, len);
                        free(buf);
                }
                free(us.v);
        }
        free(wants.v);
}

static void scan_root(ext2_filsys fs, unsigned number, struct contents *c) {
        char *buf;
        size_t len;
        c->root = number;
        if (!read_file(fs, "/etc/os-release", &buf, &len) || !read_file(fs, "/usr/lib/os-release", &buf, &len)) {
                contents_parse_os_release(c, buf, len);
                free(buf);
        }
        if (!read_file(fs, "/etc/fstab", &buf, &len)) {
                contents_parse_fstab(c, buf, len);
                free(buf);
        }
        if (!read_file(fs, "/etc/hostname", &buf, &len)) {
                char line[64];
                if (sscanf(buf, "%63s", line) == 1)
                        snprintf(c->hostname, sizeof(c->hostname), "%s", line);
                free(buf);
        }
        if (!read_file(fs, "/etc/default/grub", &buf, &len)) {
                contents_scan_cmdline(c, buf, len);
                free(buf);
        }
        kernels(fs, "/boot", c);
        bootloader(fs, "/boot", c);
        bootloader(fs, "", c);
        units(fs, c);
}

void contents_scan(const char *path, const struct mbr_table *t, struct contents *c) {
        *c = (struct contents){ .scanned = true };
        for (unsigned i = 0; i < t->n && c->n_parts < CT_MAX_PARTS; i++) {
                const struct mbr_part *p = &t->parts[i];
                if (p->extended)
                        continue;
                struct ct_part *cp = &c->parts[c->n_parts++];
                cp->number = p->number;
                snprintf(cp->fs, sizeof(cp->fs), "%s", p->fs);
                if (p->type == 0x82 || strcmp(p->fs, "swap") == 0) {
                        c->has_swap_partition = true;
                        snprintf(cp->note, sizeof(cp->note), "swap");
                        continue;
                }
                if (!is_ext(p->fs)) {
                        snprintf(cp->note, sizeof(cp->note), "%s", p->fs[0] ? "contents not read: only ext2/3/4 are read"
                                                                           : "no filesystem found");
                        continue;
                }
                char opts[64];
                snprintf(opts, sizeof(opts), "offset=%llu", (unsigned long long)p->offset);
                ext2_filsys fs = NULL;
                hv_ext2_lock();
                errcode_t err = ext2fs_open2(path, opts, EXT2_FLAG_64BITS | EXT2_FLAG_IGNORE_CSUM_ERRORS, 0, 0, unix_io_manager, &fs);
                if (err) {
                        snprintf(cp->note, sizeof(cp->note), "cannot be read: %s", error_message(err));
                        hv_ext2_unlock();
                        continue;
                }
                if ((uint64_t)ext2fs_blocks_count(fs->super) * fs->blocksize > p->size)
                        snprintf(cp->note, sizeof(cp->note), "the filesystem is larger than its partition");
                cp->read = true;
                if (!c->root && exists(fs, "/etc", true))
                        scan_root(fs, p->number, c);
                else if (!c->boot) {
                        unsigned before = c->n_kernels;
                        kernels(fs, "/", c);
                        bootloader(fs, "", c);
                        if (c->n_kernels > before || exists(fs, "/grub", true) || exists(fs, "/syslinux", true))
                                c->boot = p->number;
                }
                ext2fs_close_free(&fs);
                hv_ext2_unlock();
        }
        contents_sanitize(c);
}
