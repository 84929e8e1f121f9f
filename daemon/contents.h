/* contents.h: what an image holds, read without mounting it (contents_ext.c reads the ext2/3/4
 * partitions with libext2fs), and the lint for image producers. The parsers, the findings and
 * the stored form are pure: unit tests and fuzz_contents reach them directly. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mbr.h"
#include "util.h"

#define CT_MAX_KERNELS 16
#define CT_MAX_FSTAB 32
#define CT_MAX_UNITS 16
#define CT_MAX_FINDINGS 48
#define CT_MAX_PARTS 16
#define CT_FILE_MAX (64 * 1024) /* at most this much of any file is read */

struct ct_fstab {
        char spec[128], file[128], vfstype[32], options[128];
};

struct ct_kernel {
        char version[64];   /* vmlinuz-VERSION */
        bool initramfs;     /* initrd.img-VERSION or initramfs-VERSION.img next to it */
};

enum ct_level { CT_ERROR, CT_WARNING, CT_NOTE };

struct ct_finding {
        enum ct_level level;
        char code[32];      /* stable: no-kernel, fstab-device-name, … (README "Making an image") */
        char message[256];
};

/* Per partition, what was read. */
struct ct_part {
        unsigned number;
        char fs[32];
        bool read;          /* an ext2/3/4 filesystem opened and read */
        char note[160];     /* why not (XFS, corrupt superblock, unsupported features, …) */
};

struct contents {
        bool scanned;
        unsigned root;                  /* the partition holding /etc (0: none found) */
        unsigned boot;                  /* a separate /boot partition (0: none) */
        char os_id[64], os_version_id[64], os_pretty_name[128];
        char hostname[64];
        char bootloader[32];            /* grub, syslinux, extlinux, "" */
        bool console_serial;            /* console=ttyS… on a kernel command line we found */
        bool cmdline_found;             /* a kernel command line was found at all */
        struct ct_kernel kernels[CT_MAX_KERNELS];
        unsigned n_kernels;
        struct ct_fstab fstab[CT_MAX_FSTAB];
        unsigned n_fstab;
        bool fstab_found;
        char units[CT_MAX_UNITS][128];  /* wanted units that need /scratch */
        bool unit_ordered[CT_MAX_UNITS];/* … and are ordered after it (After=scratch.mount or RequiresMountsFor) */
        unsigned n_units;
        struct ct_part parts[CT_MAX_PARTS];
        unsigned n_parts;
        bool has_swap_partition;
};

/* /etc/os-release: ID, VERSION_ID, PRETTY_NAME (shell-style quoting undone). */
void contents_parse_os_release(struct contents *c, const char *text, size_t len);
/* /etc/fstab: whitespace-separated fields, comments; \040-style escapes kept as written. */
void contents_parse_fstab(struct contents *c, const char *text, size_t len);
/* A kernel command line (grub.cfg "linux" lines, syslinux APPEND, /etc/default/grub):
 * records that one was seen and whether it has console=ttyS. */
void contents_scan_cmdline(struct contents *c, const char *text, size_t len);
/* A unit file wanted by a target: does it need /scratch, and is it ordered after its mount? */
void contents_scan_unit(struct contents *c, const char *name, const char *text, size_t len);
/* Every string made fit for a D-Bus reply and the metadata: an invalid UTF-8 byte becomes '?',
 * a control character (DEL too) a space. contents_scan calls it at the end. */
void contents_sanitize(struct contents *c);
/* The findings, errors first. Returns how many (≤ CT_MAX_FINDINGS). */
unsigned contents_lint(const struct contents *c, struct ct_finding *f);
/* How the image mounts LABEL=scratch, or why it will not (the API's "scratch"). */
void contents_scratch(const struct contents *c, char *buf, size_t len);
const char *contents_level_name(enum ct_level l);

/* Stored form (NAME.contents beside NAME.meta): JSON. NULL: out of memory. */
char *contents_to_json(const struct contents *c);
/* -EINVAL on anything not as written by contents_to_json (types, sizes, counts). */
int contents_from_json(struct contents *c, const char *text, size_t len);
