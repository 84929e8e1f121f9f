/* contents.c: the parsers of what an image holds (os-release, fstab, kernel command lines,
 * units), the producers' lint, and the stored form. Pure; every byte is hostile (the image came
 * from the network): fields are bounded, truncated, never trusted for more than they say. */
#define _GNU_SOURCE
#include "contents.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

/* Each line of text (without its newline) into fn, at most 4096 bytes of a line. */
static void each_line(const char *text, size_t len, void (*fn)(void *ud, char *line), void *ud) {
        size_t pos = 0;
        while (pos < len) {
                size_t end = pos;
                while (end < len && text[end] != '\n')
                        end++;
                char line[4096];
                size_t l = end - pos < sizeof(line) - 1 ? end - pos : sizeof(line) - 1;
                memcpy(line, text + pos, l);
                line[l] = 0;
                for (size_t i = 0; i < l; i++) /* a NUL or control byte is not text */
                        if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
                                line[i] = ' ';
                fn(ud, line);
                pos = end + 1;
        }
}

static char *skip_blank(char *s) {
        while (*s == ' ' || *s == '\t')
                s++;
        return s;
}

/* A shell-style value: "…" (backslash escapes), '…', or bare; into buf, truncated. */
static void unquote(const char *v, char *buf, size_t len) {
        size_t o = 0;
        char q = (*v == '"' || *v == '\'') ? *v++ : 0;
        for (; *v && o + 1 < len; v++) {
                if (q && *v == q)
                        break;
                if (q == '"' && *v == '\\' && v[1])
                        v++;
                if (!q && (*v == ' ' || *v == '\t' || *v == '#'))
                        break;
                buf[o++] = *v;
        }
        buf[o] = 0;
}

static void os_line(void *ud, char *line) {
        struct contents *c = ud;
        char *s = skip_blank(line), *eq = strchr(s, '=');
        if (*s == '#' || !eq)
                return;
        *eq = 0;
        const char *v = eq + 1;
        if (strcmp(s, "ID") == 0)
                unquote(v, c->os_id, sizeof(c->os_id));
        else if (strcmp(s, "VERSION_ID") == 0)
                unquote(v, c->os_version_id, sizeof(c->os_version_id));
        else if (strcmp(s, "PRETTY_NAME") == 0)
                unquote(v, c->os_pretty_name, sizeof(c->os_pretty_name));
}

void contents_parse_os_release(struct contents *c, const char *text, size_t len) {
        each_line(text, len, os_line, c);
}

static void fstab_line(void *ud, char *line) {
        struct contents *c = ud;
        char *s = skip_blank(line);
        if (*s == '#' || !*s || c->n_fstab >= CT_MAX_FSTAB)
                return;
        char *f[4] = { 0 }, *save = NULL;
        unsigned n = 0;
        for (char *t = strtok_r(s, " \t", &save); t && n < 4; t = strtok_r(NULL, " \t", &save))
                f[n++] = t;
        if (n < 2)
                return;
        struct ct_fstab *e = &c->fstab[c->n_fstab++];
        snprintf(e->spec, sizeof(e->spec), "%s", f[0]);
        snprintf(e->file, sizeof(e->file), "%s", f[1]);
        snprintf(e->vfstype, sizeof(e->vfstype), "%s", f[2] ? f[2] : "");
        snprintf(e->options, sizeof(e->options), "%s", f[3] ? f[3] : "defaults");
}

void contents_parse_fstab(struct contents *c, const char *text, size_t len) {
        c->fstab_found = true;
        each_line(text, len, fstab_line, c);
}

static void cmdline_line(void *ud, char *line) {
        struct contents *c = ud;
        char *s = skip_blank(line);
        if (*s == '#')
                return;
        static const char *const marks[] = { "linux ", "linux\t", "linux16 ", "linuxefi ", "APPEND ", "append ", "APPEND\t",
                                             "append\t", "GRUB_CMDLINE_LINUX" };
        for (size_t i = 0; i < ELEMENTSOF(marks); i++)
                if (strncmp(s, marks[i], strlen(marks[i])) == 0) {
                        c->cmdline_found = true;
                        if (strstr(s, "console=ttyS"))
                                c->console_serial = true;
                }
}

void contents_scan_cmdline(struct contents *c, const char *text, size_t len) {
        each_line(text, len, cmdline_line, c);
}

struct unit_scan {
        bool needs, ordered;
};

static void unit_line(void *ud, char *line) {
        struct unit_scan *u = ud;
        char *s = skip_blank(line);
        if (*s == '#' || *s == ';' || !strchr(s, '='))
                return;
        bool mentions = strstr(s, "/scratch") || strstr(s, "scratch.mount");
        u->needs |= mentions;
        if ((strncmp(s, "RequiresMountsFor=", 18) == 0 && strstr(s, "/scratch")) || (strncmp(s, "After=", 6) == 0 && strstr(s, "scratch.mount")))
                u->ordered = true;
}

void contents_scan_unit(struct contents *c, const char *name, const char *text, size_t len) {
        struct unit_scan u = { 0 };
        each_line(text, len, unit_line, &u);
        if (!u.needs || c->n_units >= CT_MAX_UNITS)
                return;
        snprintf(c->units[c->n_units], sizeof(c->units[0]), "%s", name);
        c->unit_ordered[c->n_units++] = u.ordered;
}

/* The length of the valid UTF-8 sequence at s (1–4), or 0. */
static size_t utf8_len(const unsigned char *s) {
        if (s[0] < 0x80)
                return 1;
        size_t n = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
        for (size_t i = 1; i < n; i++)
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
        uint32_t cp = n == 2 ? (s[0] & 0x1fu) : n == 3 ? (s[0] & 0x0fu) : (s[0] & 0x07u);
        for (size_t i = 1; i < n; i++)
                cp = cp << 6 | (s[i] & 0x3fu);
        /* no overlong forms, no surrogates, nothing past U+10FFFF */
        if ((n == 2 && cp < 0x80) || (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
                return 0;
        return n;
}

static void sanitize(char *s) {
        for (unsigned char *p = (unsigned char *)s; *p;) {
                size_t n = utf8_len(p);
                if (n == 0) {
                        *p++ = '?';
                        continue;
                }
                if (n == 1 && (*p < 0x20 || *p == 0x7f))
                        *p = ' ';
                p += n;
        }
}

void contents_sanitize(struct contents *c) {
        char *strs[] = { c->os_id, c->os_version_id, c->os_pretty_name, c->hostname, c->bootloader };
        for (size_t i = 0; i < ELEMENTSOF(strs); i++)
                sanitize(strs[i]);
        for (unsigned i = 0; i < c->n_kernels; i++)
                sanitize(c->kernels[i].version);
        for (unsigned i = 0; i < c->n_fstab; i++) {
                sanitize(c->fstab[i].spec);
                sanitize(c->fstab[i].file);
                sanitize(c->fstab[i].vfstype);
                sanitize(c->fstab[i].options);
        }
        for (unsigned i = 0; i < c->n_units; i++)
                sanitize(c->units[i]);
        for (unsigned i = 0; i < c->n_parts; i++) {
                sanitize(c->parts[i].fs);
                sanitize(c->parts[i].note);
        }
}

const char *contents_level_name(enum ct_level l) {
        return l == CT_ERROR ? "error" : l == CT_WARNING ? "warning" : "note";
}

static const struct ct_fstab *scratch_entry(const struct contents *c) {
        for (unsigned i = 0; i < c->n_fstab; i++)
                if (strcmp(c->fstab[i].spec, "LABEL=scratch") == 0)
                        return &c->fstab[i];
        return NULL;
}

static bool has_option(const char *options, const char *opt) {
        size_t l = strlen(opt);
        for (const char *p = options; (p = strstr(p, opt)); p += l)
                if ((p == options || p[-1] == ',') && (p[l] == 0 || p[l] == ','))
                        return true;
        return false;
}

void contents_scratch(const struct contents *c, char *buf, size_t len) {
        const struct ct_fstab *e = scratch_entry(c);
        if (!c->scanned)
                snprintf(buf, len, "unknown: the image's contents were not scanned");
        else if (!c->root)
                snprintf(buf, len, "unknown: no root filesystem was found");
        else if (!c->fstab_found)
                snprintf(buf, len, "not mounted: the image has no /etc/fstab");
        else if (!e)
                snprintf(buf, len, "not mounted: /etc/fstab has no LABEL=scratch entry (the scratch disk will go unused)");
        else
                snprintf(buf, len, "LABEL=scratch on %.100s (%.32s, %.100s)%s", e->file, e->vfstype, e->options,
                         has_option(e->options, "nofail") ? "" : "; without nofail the boot waits for it");
}

struct lint {
        struct ct_finding *f;
        unsigned n;
};

static void add(struct lint *l, enum ct_level level, const char *code, const char *fmt, ...) HV_PRINTF(4, 5);
static void add(struct lint *l, enum ct_level level, const char *code, const char *fmt, ...) {
        if (l->n >= CT_MAX_FINDINGS)
                return;
        struct ct_finding *f = &l->f[l->n++];
        f->level = level;
        snprintf(f->code, sizeof(f->code), "%s", code);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->message, sizeof(f->message), fmt, ap);
        va_end(ap);
}

static int by_level(const void *a, const void *b) {
        const struct ct_finding *x = a, *y = b;
        return (int)x->level - (int)y->level;
}

unsigned contents_lint(const struct contents *c, struct ct_finding *out) {
        struct lint l = { .f = out };
        if (!c->scanned) {
                add(&l, CT_NOTE, "not-scanned", "the image's contents were not scanned");
                return l.n;
        }
        if (!c->root)
                add(&l, CT_ERROR, "root-not-found", "no ext2/3/4 partition holds /etc: the root filesystem was not found");
        if (!c->n_kernels)
                add(&l, CT_ERROR, "no-kernel", "no kernel (vmlinuz-*) in /boot or on a /boot partition");
        if (!c->bootloader[0])
                add(&l, CT_ERROR, "no-bootloader", "no bootloader configuration (grub.cfg, syslinux.cfg, extlinux.conf) was found");
        for (unsigned i = 0; i < c->n_fstab; i++) {
                const struct ct_fstab *e = &c->fstab[i];
                if (strncmp(e->spec, "/dev/sd", 7) == 0 || strncmp(e->spec, "/dev/hd", 7) == 0)
                        add(&l, CT_ERROR, "fstab-device-name", "/etc/fstab mounts %.60s by device name %.60s: under virtio the disks "
                            "are /dev/vdX; use LABEL= or UUID=", e->file, e->spec);
        }
        const struct ct_fstab *s = scratch_entry(c);
        if (c->root && c->fstab_found && !s)
                add(&l, CT_WARNING, "no-scratch-entry", "/etc/fstab has no LABEL=scratch entry: the scratch disk will go unused");
        if (s && !has_option(s->options, "nofail"))
                add(&l, CT_WARNING, "scratch-without-nofail", "the LABEL=scratch entry has no nofail: the boot hangs where there is no "
                    "scratch disk");
        for (unsigned i = 0; i < c->n_units; i++)
                if (!c->unit_ordered[i])
                        add(&l, CT_WARNING, "unit-scratch-order", "%.100s uses /scratch without After=scratch.mount (or "
                            "RequiresMountsFor=/scratch): with nofail it may start before the scratch disk is mounted", c->units[i]);
        if (c->cmdline_found && !c->console_serial)
                add(&l, CT_WARNING, "no-serial-console", "no console=ttyS0 on the kernel command line: console.log stays empty");
        if (c->root && !c->cmdline_found)
                add(&l, CT_WARNING, "no-cmdline", "no kernel command line was found (grub.cfg, syslinux APPEND, /etc/default/grub): "
                    "cannot tell whether the console goes to the serial port");
        bool swap_in_fstab = false;
        for (unsigned i = 0; i < c->n_fstab; i++)
                swap_in_fstab |= strcmp(c->fstab[i].vfstype, "swap") == 0;
        if (c->has_swap_partition && c->fstab_found && !swap_in_fstab)
                add(&l, CT_WARNING, "swap-not-in-fstab", "the image has a swap partition that /etc/fstab does not use");
        for (unsigned i = 0; i < c->n_kernels; i++)
                if (!c->kernels[i].initramfs)
                        add(&l, CT_WARNING, "no-initramfs", "kernel %.60s has no initramfs next to it", c->kernels[i].version);
        for (unsigned i = 0; i < c->n_parts; i++)
                if (!c->parts[i].read && strcmp(c->parts[i].note, "swap") != 0)
                        add(&l, CT_NOTE, "partition-not-read", "partition %u (%.30s): %.150s", c->parts[i].number,
                            c->parts[i].fs[0] ? c->parts[i].fs : "no filesystem", c->parts[i].note);
        if (c->os_id[0])
                add(&l, CT_NOTE, "os", "%.120s (ID=%.60s, VERSION_ID=%.60s) on partition %u",
                    c->os_pretty_name[0] ? c->os_pretty_name : c->os_id, c->os_id, c->os_version_id, c->root);
        else if (c->root)
                add(&l, CT_NOTE, "no-os-release", "partition %u has /etc but no os-release: the OS is not known", c->root);
        for (unsigned i = 0; i < c->n_kernels; i++)
                add(&l, CT_NOTE, "kernel", "kernel %.60s%s", c->kernels[i].version, c->kernels[i].initramfs ? " with initramfs" : "");
        qsort(out, l.n, sizeof(*out), by_level);
        return l.n;
}

/* ---- stored form ---- */

static void put_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, json_object_new_string(v));
}

char *contents_to_json(const struct contents *c) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "scanned", json_object_new_boolean(c->scanned));
        json_object_object_add(o, "root", json_object_new_int(c->root));
        json_object_object_add(o, "boot", json_object_new_int(c->boot));
        put_str(o, "os_id", c->os_id);
        put_str(o, "os_version_id", c->os_version_id);
        put_str(o, "os_pretty_name", c->os_pretty_name);
        put_str(o, "hostname", c->hostname);
        put_str(o, "bootloader", c->bootloader);
        json_object_object_add(o, "console_serial", json_object_new_boolean(c->console_serial));
        json_object_object_add(o, "cmdline_found", json_object_new_boolean(c->cmdline_found));
        json_object_object_add(o, "fstab_found", json_object_new_boolean(c->fstab_found));
        json_object_object_add(o, "has_swap_partition", json_object_new_boolean(c->has_swap_partition));
        json_object *k = json_object_new_array(), *f = json_object_new_array(), *u = json_object_new_array(), *p = json_object_new_array();
        for (unsigned i = 0; i < c->n_kernels; i++) {
                json_object *e = json_object_new_object();
                put_str(e, "version", c->kernels[i].version);
                json_object_object_add(e, "initramfs", json_object_new_boolean(c->kernels[i].initramfs));
                json_object_array_add(k, e);
        }
        for (unsigned i = 0; i < c->n_fstab; i++) {
                json_object *e = json_object_new_array();
                json_object_array_add(e, json_object_new_string(c->fstab[i].spec));
                json_object_array_add(e, json_object_new_string(c->fstab[i].file));
                json_object_array_add(e, json_object_new_string(c->fstab[i].vfstype));
                json_object_array_add(e, json_object_new_string(c->fstab[i].options));
                json_object_array_add(f, e);
        }
        for (unsigned i = 0; i < c->n_units; i++) {
                json_object *e = json_object_new_object();
                put_str(e, "name", c->units[i]);
                json_object_object_add(e, "ordered", json_object_new_boolean(c->unit_ordered[i]));
                json_object_array_add(u, e);
        }
        for (unsigned i = 0; i < c->n_parts; i++) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "number", json_object_new_int((int)c->parts[i].number));
                put_str(e, "fs", c->parts[i].fs);
                json_object_object_add(e, "read", json_object_new_boolean(c->parts[i].read));
                put_str(e, "note", c->parts[i].note);
                json_object_array_add(p, e);
        }
        json_object_object_add(o, "kernels", k);
        json_object_object_add(o, "fstab", f);
        json_object_object_add(o, "units", u);
        json_object_object_add(o, "partitions", p);
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        char *ret = s ? strdup(s) : NULL;
        json_object_put(o);
        return ret;
}

static bool get_bool(json_object *o, const char *k, bool *v) {
        json_object *x;
        if (!json_object_object_get_ex(o, k, &x) || !json_object_is_type(x, json_type_boolean))
                return false;
        *v = json_object_get_boolean(x);
        return true;
}

static bool get_uint(json_object *o, const char *k, unsigned max, unsigned *v) {
        json_object *x;
        if (!json_object_object_get_ex(o, k, &x) || !json_object_is_type(x, json_type_int))
                return false;
        int64_t n = json_object_get_int64(x);
        if (n < 0 || n > max)
                return false;
        *v = (unsigned)n;
        return true;
}

static bool get_text(json_object *o, const char *k, char *buf, size_t len) {
        json_object *x;
        if (!json_object_object_get_ex(o, k, &x) || !json_object_is_type(x, json_type_string) ||
            (size_t)json_object_get_string_len(x) >= len)
                return false;
        snprintf(buf, len, "%s", json_object_get_string(x));
        return true;
}

static bool get_array(json_object *o, const char *k, size_t max, json_object **arr) {
        return json_object_object_get_ex(o, k, arr) && json_object_is_type(*arr, json_type_array) &&
               json_object_array_length(*arr) <= max;
}

int contents_from_json(struct contents *c, const char *text, size_t len) {
        *c = (struct contents){ 0 };
        json_tokener *tok = json_tokener_new_ex(8);
        if (!tok)
                return -ENOMEM;
        json_object *o = len <= INT32_MAX ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
        bool ok = o && json_tokener_get_error(tok) == json_tokener_success && json_object_is_type(o, json_type_object);
        json_tokener_free(tok);
        json_object *k, *f, *u, *p;
        ok = ok && get_bool(o, "scanned", &c->scanned) && get_uint(o, "root", MBR_MAX_PARTS, &c->root) &&
             get_uint(o, "boot", MBR_MAX_PARTS, &c->boot) && get_text(o, "os_id", c->os_id, sizeof(c->os_id)) &&
             get_text(o, "os_version_id", c->os_version_id, sizeof(c->os_version_id)) &&
             get_text(o, "os_pretty_name", c->os_pretty_name, sizeof(c->os_pretty_name)) &&
             get_text(o, "hostname", c->hostname, sizeof(c->hostname)) && get_text(o, "bootloader", c->bootloader, sizeof(c->bootloader)) &&
             get_bool(o, "console_serial", &c->console_serial) && get_bool(o, "cmdline_found", &c->cmdline_found) &&
             get_bool(o, "fstab_found", &c->fstab_found) && get_bool(o, "has_swap_partition", &c->has_swap_partition) &&
             get_array(o, "kernels", CT_MAX_KERNELS, &k) && get_array(o, "fstab", CT_MAX_FSTAB, &f) &&
             get_array(o, "units", CT_MAX_UNITS, &u) && get_array(o, "partitions", CT_MAX_PARTS, &p);
        for (size_t i = 0; ok && i < json_object_array_length(k); i++) {
                json_object *e = json_object_array_get_idx(k, i);
                ok = get_text(e, "version", c->kernels[i].version, sizeof(c->kernels[i].version)) &&
                     get_bool(e, "initramfs", &c->kernels[i].initramfs);
                c->n_kernels = (unsigned)i + 1;
        }
        for (size_t i = 0; ok && i < json_object_array_length(f); i++) {
                json_object *e = json_object_array_get_idx(f, i);
                ok = json_object_is_type(e, json_type_array) && json_object_array_length(e) == 4;
                struct ct_fstab *x = &c->fstab[i];
                char *dst[4] = { x->spec, x->file, x->vfstype, x->options };
                size_t sz[4] = { sizeof(x->spec), sizeof(x->file), sizeof(x->vfstype), sizeof(x->options) };
                for (size_t j = 0; ok && j < 4; j++) {
                        json_object *s = json_object_array_get_idx(e, j);
                        ok = json_object_is_type(s, json_type_string) && (size_t)json_object_get_string_len(s) < sz[j];
                        if (ok)
                                snprintf(dst[j], sz[j], "%s", json_object_get_string(s));
                }
                c->n_fstab = (unsigned)i + 1;
        }
        for (size_t i = 0; ok && i < json_object_array_length(u); i++) {
                json_object *e = json_object_array_get_idx(u, i);
                ok = get_text(e, "name", c->units[i], sizeof(c->units[i])) && get_bool(e, "ordered", &c->unit_ordered[i]);
                c->n_units = (unsigned)i + 1;
        }
        for (size_t i = 0; ok && i < json_object_array_length(p); i++) {
                json_object *e = json_object_array_get_idx(p, i);
                ok = get_uint(e, "number", MBR_MAX_PARTS, &c->parts[i].number) && get_text(e, "fs", c->parts[i].fs, sizeof(c->parts[i].fs)) &&
                     get_bool(e, "read", &c->parts[i].read) && get_text(e, "note", c->parts[i].note, sizeof(c->parts[i].note));
                c->n_parts = (unsigned)i + 1;
        }
        json_object_put(o);
        if (!ok) {
                *c = (struct contents){ 0 };
                return -EINVAL;
        }
        contents_sanitize(c); /* as written, unless someone else wrote it */
        return 0;
}
