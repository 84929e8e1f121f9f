/* scratch.c: formatting scratch disks with libext2fs in-process, in the order mke2fs uses
 * (misc/mke2fs.c): initialise, UUID + csum seed, tables, root, lost+found, reserved inodes,
 * bad-block inode, resize inode, journal, close. Lazy where the target reads as zeros. */
#define _GNU_SOURCE
#include "scratch.h"

#include "ext2.h"

#include <errno.h>
#include <et/com_err.h>
#include <ext2fs/ext2_err.h>
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define BLOCK_SIZE 4096
#define INODE_SIZE 256


/* 64bit only where the block count needs it: a filesystem without it is limited to 2^32 blocks
 * (16 TiB of 4 KiB blocks), and EL6/EL7-era kernels and tools handle 64bit worst; every guest
 * we target mounts ext4 without it. metadata_csum is left out because EL6/EL7's e2fsprogs and
 * kernels predate it (uninit_bg gives the lazy inode tables instead). */
static bool needs_64bit(uint64_t size) {
        return size / BLOCK_SIZE > 0xffffffffULL;
}

static int ext2_fail(struct hv_error *e, errcode_t err, const char *what, const char *path) {
        int errnum = (err > 0 && err < 4096) ? (int)err : EIO; /* small codes are errno values */
        return hv_fail(e, HV_E_ERRNO, errnum, "formatting %s: %s: %s", path, what, error_message(err));
}

static void set_features(struct ext2_super_block *s, const char *fs, uint64_t size) {
        s->s_feature_compat = EXT2_FEATURE_COMPAT_EXT_ATTR | EXT2_FEATURE_COMPAT_RESIZE_INODE | EXT2_FEATURE_COMPAT_DIR_INDEX;
        s->s_feature_incompat = EXT2_FEATURE_INCOMPAT_FILETYPE;
        s->s_feature_ro_compat = EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER | EXT2_FEATURE_RO_COMPAT_LARGE_FILE;
        if (strcmp(fs, "ext2") != 0)
                s->s_feature_compat |= EXT3_FEATURE_COMPAT_HAS_JOURNAL;
        if (strcmp(fs, "ext4") == 0) {
                s->s_feature_incompat |= EXT3_FEATURE_INCOMPAT_EXTENTS | EXT4_FEATURE_INCOMPAT_FLEX_BG;
                s->s_feature_ro_compat |= EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_GDT_CSUM |
                                          EXT4_FEATURE_RO_COMPAT_DIR_NLINK | EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE;
                if (needs_64bit(size)) {
                        /* 2^32 blocks and more: 64bit, and no resize inode (it holds only 32-bit
                         * block numbers; mke2fs drops it there too) */
                        s->s_feature_incompat |= EXT4_FEATURE_INCOMPAT_64BIT;
                        s->s_feature_compat &= ~(uint32_t)EXT2_FEATURE_COMPAT_RESIZE_INODE;
                }
        }
}

/* Everything after ext2fs_initialize(): group tables, root, lost+found, the reserved inodes,
 * the resize inode and the journal. On error the caller frees fs unwritten. */
static int build_fs(ext2_filsys fs, bool zeroed, const char *path, struct hv_error *e) {
        errcode_t err;
        if ((err = ext2fs_allocate_tables(fs)))
                return ext2_fail(e, err, "allocating group tables", path);
        if ((err = ext2fs_convert_subcluster_bitmap(fs, &fs->block_map)))
                return ext2_fail(e, err, "converting the block bitmap", path);
        /* Inode tables: nothing to write when the target reads as zeros; with uninit_bg the
         * groups say so (INODE_ZEROED) and the kernel skips its own lazy zeroing. */
        for (dgrp_t g = 0; g < fs->group_desc_count; g++) {
                if (zeroed) {
                        if (ext2fs_has_group_desc_csum(fs))
                                ext2fs_bg_flags_set(fs, g, EXT2_BG_INODE_ZEROED);
                } else if (ext2fs_has_group_desc_csum(fs)) {
                        /* not known to be zero, flag left clear: the kernel's ext4lazyinit zeroes
                         * the tables after the first mount (mke2fs -E lazy_itable_init=1) */
                } else {
                        blk64_t start = ext2fs_inode_table_loc(fs, g);
                        int num = (int)fs->inode_blocks_per_group;
                        if ((err = ext2fs_zero_blocks2(fs, start, num, NULL, NULL)))
                                return ext2_fail(e, err, "zeroing inode tables", path);
                }
                ext2fs_group_desc_csum_set(fs, g);
        }
        if ((err = ext2fs_mkdir(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, 0)))
                return ext2_fail(e, err, "creating the root directory", path);
        if ((err = ext2fs_mkdir(fs, EXT2_ROOT_INO, 0, "lost+found")))
                return ext2_fail(e, err, "creating lost+found", path);
        ext2_ino_t lpf;
        if ((err = ext2fs_lookup(fs, EXT2_ROOT_INO, "lost+found", 10, NULL, &lpf)))
                return ext2_fail(e, err, "looking up lost+found", path);
        /* lost+found gets 16 KiB of directory blocks, as mke2fs does, so e2fsck can use it */
        for (unsigned i = 1; i < 16384 / BLOCK_SIZE; i++)
                if ((err = ext2fs_expand_dir(fs, lpf)))
                        return ext2_fail(e, err, "expanding lost+found", path);
        for (ext2_ino_t i = EXT2_ROOT_INO + 1; i < EXT2_FIRST_INODE(fs->super); i++)
                ext2fs_inode_alloc_stats2(fs, i, +1, 0);
        ext2fs_mark_ib_dirty(fs);
        ext2fs_mark_inode_bitmap2(fs->inode_map, EXT2_BAD_INO);
        ext2fs_inode_alloc_stats2(fs, EXT2_BAD_INO, +1, 0);
        if ((err = ext2fs_update_bb_inode(fs, NULL)))
                return ext2_fail(e, err, "writing the bad-block inode", path);
        if (ext2fs_has_feature_resize_inode(fs->super) && (err = ext2fs_create_resize_inode(fs)))
                return ext2_fail(e, err, "creating the resize inode", path);
        if (ext2fs_has_feature_journal(fs->super)) {
                struct ext2fs_journal_params jp;
                if ((err = ext2fs_get_journal_params(&jp, fs)))
                        return ext2_fail(e, err, "sizing the journal", path);
                int flags = EXT2_MKJOURNAL_NO_MNT_CHECK | (zeroed ? EXT2_MKJOURNAL_LAZYINIT : 0);
                if ((err = ext2fs_add_journal_inode3(fs, &jp, ~0ULL, flags)))
                        return ext2_fail(e, err, "creating the journal", path);
        }
        return 0;
}

/* Called with the libext2fs lock held (ext2.h). */
static int format_locked(const char *path, uint64_t size, const struct scratch_opts *o, bool zeroed, char *uuid,
                         struct hv_error *e) {
        struct ext2_super_block param;
        memset(&param, 0, sizeof(param));
        /* features first: ext2fs_blocks_count_set() keeps the high 32 bits only with 64bit set */
        set_features(&param, o->fs, size);
        ext2fs_blocks_count_set(&param, size / BLOCK_SIZE);
        param.s_log_block_size = 2; /* 1024 << 2 = 4096 */
        param.s_rev_level = EXT2_DYNAMIC_REV;
        param.s_inode_size = INODE_SIZE;
        uint64_t inodes = size / (o->bytes_per_inode ? o->bytes_per_inode : 65536);
        if (inodes < 64)
                inodes = 64;
        if (inodes > 0xffffffffULL - 1)
                inodes = 0xffffffffULL - 1; /* ext4's hard limit */
        param.s_inodes_count = (uint32_t)inodes;
        param.s_r_blocks_count = 0; /* no root reserve: a scratch disk is all job data */
        bool ext4 = strcmp(o->fs, "ext4") == 0;
        if (ext4) {
                param.s_log_groups_per_flex = 4; /* 16 groups per flex group, as mke2fs */
                param.s_desc_size = needs_64bit(size) ? EXT2_MIN_DESC_SIZE_64BIT : 0;
                param.s_min_extra_isize = param.s_want_extra_isize = sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
        }

        ext2_filsys fs = NULL;
        struct stat st;
        /* a block device is opened O_EXCL: it fails if anything (a mount, md, dm) holds it */
        int flags = EXT2_FLAG_64BITS | (stat(path, &st) == 0 && S_ISBLK(st.st_mode) ? EXT2_FLAG_EXCLUSIVE : 0);
        errcode_t err = ext2fs_initialize(path, flags, &param, unix_io_manager, &fs);
        if (err)
                return ext2_fail(e, err, "initialising", path);
        int r = 0;
        uint8_t u[16], hash[16];
        hv_uuid_random(u);
        hv_uuid_random(hash);
        memcpy(fs->super->s_uuid, u, 16);
        ext2fs_init_csum_seed(fs);
        memcpy(fs->super->s_hash_seed, hash, 16);
        fs->super->s_def_hash_version = EXT2_HASH_HALF_MD4;
        strncpy((char *)fs->super->s_volume_name, SCRATCH_LABEL, sizeof(fs->super->s_volume_name));
        fs->super->s_max_mnt_count = (__u16)-1;
        fs->super->s_checkinterval = 0;
        fs->super->s_mkfs_time = fs->super->s_lastcheck = (uint32_t)time(NULL);
        fs->super->s_kbytes_written = 1;

        if ((r = build_fs(fs, zeroed, path, e)) < 0) {
                ext2fs_free(fs);
                return r;
        }
        hv_uuid_format(u, uuid);
        if ((err = ext2fs_close_free(&fs)))
                return ext2_fail(e, err, "writing the superblocks", path);
        return 0;
}

int scratch_format(const char *path, uint64_t size, const struct scratch_opts *o, bool zeroed, char *uuid, struct hv_error *e) {
        if (strcmp(o->fs, "ext4") != 0 && strcmp(o->fs, "ext3") != 0 && strcmp(o->fs, "ext2") != 0)
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "unknown scratch filesystem \"%.32s\" (ext4, ext3 or ext2)", o->fs);
        if (size < SCRATCH_MIN_SIZE) {
                char a[32];
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "scratch size %llu bytes is below the minimum of %s",
                               (unsigned long long)size, hv_format_size(SCRATCH_MIN_SIZE, a, sizeof(a)));
        }
        if (strcmp(o->fs, "ext4") != 0 && needs_64bit(size))
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "%s cannot be larger than 16 TiB; use ext4", o->fs);
        hv_ext2_lock();
        int r = format_locked(path, size, o, zeroed, uuid, e);
        hv_ext2_unlock();
        return r;
}

int scratch_create(const char *path, uint64_t size, const struct scratch_opts *o, char *uuid, struct hv_error *e) {
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return hv_fail_errno(e, HV_E_ERRNO, errno, "cannot create scratch disk %s", path);
        int r = 0;
        if (o->alloc == SCRATCH_FALLOCATE) {
                struct statvfs sv;
                if (fstatvfs(fd, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < size) {
                        char a[32], b[32];
                        r = hv_fail(e, HV_E_NO_SPACE, ENOSPC, "not enough space for a fallocated scratch disk of %s at %s: %s free",
                                    hv_format_size(size, a, sizeof(a)), path, hv_format_size((uint64_t)sv.f_bavail * sv.f_frsize, b, sizeof(b)));
                } else if ((r = posix_fallocate(fd, 0, (off_t)size)) != 0)
                        r = hv_fail_errno(e, HV_E_ERRNO, r, "cannot reserve %llu bytes for scratch disk %s", (unsigned long long)size, path);
        } else if (ftruncate(fd, (off_t)size) < 0)
                r = hv_fail_errno(e, HV_E_ERRNO, errno, "cannot size scratch disk %s to %llu bytes", path, (unsigned long long)size);
        if (close(fd) < 0 && r >= 0)
                r = hv_fail_errno(e, HV_E_ERRNO, errno, "closing %s", path);
        if (r >= 0)
                r = scratch_format(path, size, o, true, uuid, e);
        if (r < 0)
                unlink(path);
        return r;
}
