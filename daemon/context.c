/* context.c: a machine's context files, checked and built without I/O. */
#include "context.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reserved[] = { "user-data", "meta-data", "network-config", "vendor-data" };

bool context_given(const struct context_input *in) {
        return in->have_user_data || in->have_network_config || in->n_meta || in->n_files || in->n_vars;
}

bool context_file_name_valid(const char *name) {
        size_t n = strlen(name);
        if (n == 0 || n > CONTEXT_NAME_MAX || name[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)name[i] <= 0x20 || (unsigned char)name[i] >= 0x7f || name[i] == '/' || name[i] == '\\')
                        return false;
        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                if (strcmp(name, reserved[i]) == 0)
                        return false;
        return true;
}

/* A context variable: a shell name in capitals, [A-Z_][A-Z0-9_]*. */
static bool var_key_valid(const char *k) {
        size_t n = strlen(k);
        if (n == 0 || n > CONTEXT_KEY_MAX || (k[0] >= '0' && k[0] <= '9'))
                return false;
        return strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n;
}

/* A meta-data key: a plain YAML key, [A-Za-z0-9_-] not starting with '-'. */
static bool meta_key_valid(const char *k) {
        size_t n = strlen(k);
        return n > 0 && n <= CONTEXT_KEY_MAX && k[0] != '-' &&
               strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static int dup_key(const struct context_pair *p, size_t n, const char *what, struct hv_error *e) {
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                        if (strcmp(p[i].key, p[j].key) == 0)
                                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "%s \"%s\" is given twice", what, p[i].key);
        return 0;
}

int context_check(const struct context_input *in, uint64_t max_size, struct hv_error *e) {
        uint64_t total = in->user_data.len + in->network_config.len;
        for (size_t i = 0; i < in->n_files; i++) {
                const char *k = in->files[i].key;
                if (!context_file_name_valid(k))
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL,
                                       "invalid context file name \"%.80s\": a plain name of 1-%d printable characters, no '/', no "
                                       "leading dot, not user-data, meta-data, network-config or vendor-data",
                                       k, CONTEXT_NAME_MAX);
                if (in->n_vars && strcmp(k, "context.sh") == 0)
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL,
                                       "context.sh is given both in context_files and as context_vars: use one of them");
                total += in->files[i].value.len + strlen(k);
        }
        for (size_t i = 0; i < in->n_meta; i++) {
                if (!meta_key_valid(in->meta[i].key))
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL,
                                       "invalid meta_data key \"%.80s\": 1-%d characters A-Z a-z 0-9 _ -, not starting with -",
                                       in->meta[i].key, CONTEXT_KEY_MAX);
                total += in->meta[i].value.len + strlen(in->meta[i].key);
        }
        for (size_t i = 0; i < in->n_vars; i++) {
                if (!var_key_valid(in->vars[i].key))
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL,
                                       "invalid context_vars key \"%.80s\": 1-%d characters A-Z 0-9 _, not starting with a digit",
                                       in->vars[i].key, CONTEXT_KEY_MAX);
                /* quoting may grow a value fourfold (every ' becomes '\'') */
                total += 4 * in->vars[i].value.len + strlen(in->vars[i].key) + 4;
        }
        int r;
        if ((r = dup_key(in->files, in->n_files, "context file", e)) < 0 || (r = dup_key(in->meta, in->n_meta, "meta_data key", e)) < 0 ||
            (r = dup_key(in->vars, in->n_vars, "context_vars key", e)) < 0)
                return r;
        if (total > max_size)
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL,
                               "the context is too large: %llu bytes (user_data %zu, network_config %zu, %zu files, %zu meta_data keys, "
                               "%zu variables), more than MaxContextSize=%llu",
                               (unsigned long long)total, in->user_data.len, in->network_config.len, in->n_files, in->n_meta,
                               in->n_vars, (unsigned long long)max_size);
        return 0;
}

/* ---- a growing buffer ---- */

static int grow(char **buf, size_t *cap, size_t need) {
        if (need <= *cap)
                return 0;
        size_t n = *cap ? *cap : 256;
        while (n < need)
                n *= 2;
        char *b = realloc(*buf, n);
        if (!b)
                return -ENOMEM;
        *buf = b;
        *cap = n;
        return 0;
}

static int put(char **buf, size_t *used, size_t *cap, const char *s, size_t n) {
        if (grow(buf, cap, *used + n + 1) < 0)
                return -ENOMEM;
        memcpy(*buf + *used, s, n);
        *used += n;
        (*buf)[*used] = 0;
        return 0;
}

int context_shell_assign(char **buf, size_t *used, size_t *cap, const char *key, const char *value) {
        int r = put(buf, used, cap, key, strlen(key));
        r = r < 0 ? r : put(buf, used, cap, "=", 1);
        if (r >= 0 && (r = grow(buf, cap, *used + 4 * strlen(value) + 3)) >= 0)
                r = hv_shell_quote(value, *buf, *cap, used);
        return r < 0 ? r : put(buf, used, cap, "\n", 1);
}

/* A YAML double-quoted scalar: \" \\ and every byte below 0x20 or 0x7f escaped. */
static int yaml_string(char **buf, size_t *used, size_t *cap, const uint8_t *s, size_t n) {
        int r = put(buf, used, cap, "\"", 1);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                char esc[8];
                if (s[i] == '"' || s[i] == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char)s[i];
                        r = put(buf, used, cap, esc, 2);
                } else if (s[i] < 0x20 || s[i] == 0x7f) {
                        snprintf(esc, sizeof(esc), "\\x%02x", s[i]);
                        r = put(buf, used, cap, esc, 4);
                } else
                        r = put(buf, used, cap, (const char *)&s[i], 1);
        }
        return r < 0 ? r : put(buf, used, cap, "\"", 1);
}

static const struct context_pair *find(const struct context_pair *p, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(p[i].key, key) == 0)
                        return &p[i];
        return NULL;
}

static int meta_line(char **buf, size_t *used, size_t *cap, const char *key, const uint8_t *v, size_t len) {
        int r = put(buf, used, cap, key, strlen(key));
        r = r < 0 ? r : put(buf, used, cap, ": ", 2);
        r = r < 0 ? r : yaml_string(buf, used, cap, v, len);
        return r < 0 ? r : put(buf, used, cap, "\n", 1);
}

static int add(struct context_files *cf, const char *name, const uint8_t *data, size_t len) {
        struct context_file *f = &cf->f[cf->n];
        snprintf(f->name, sizeof(f->name), "%s", name);
        /* libisofs frees what it is given: every file is its own allocation, never empty */
        if (!(f->data = malloc(len ? len : 1)))
                return -ENOMEM;
        if (len)
                memcpy(f->data, data, len);
        f->len = len;
        cf->n++;
        return 0;
}

/* Takes a text built with put() as a file. */
static int add_text(struct context_files *cf, const char *name, char *text, size_t len) {
        int r = add(cf, name, (const uint8_t *)text, len);
        free(text);
        return r;
}

int context_build(const struct context_input *in, const char *instance_id, const char *hostname, struct context_files *out) {
        *out = (struct context_files){ 0 };
        struct context_files cf = { .f = calloc(in->n_files + 4, sizeof(struct context_file)) };
        if (!cf.f)
                return -ENOMEM;
        static const char empty_cloud_config[] = "#cloud-config\n{}\n";
        int r = in->have_user_data ? add(&cf, "user-data", in->user_data.data, in->user_data.len)
                                   : add(&cf, "user-data", (const uint8_t *)empty_cloud_config, strlen(empty_cloud_config));
        char *text = NULL;
        size_t used = 0, cap = 0;
        if (r >= 0 && !find(in->meta, in->n_meta, "instance-id"))
                r = meta_line(&text, &used, &cap, "instance-id", (const uint8_t *)instance_id, strlen(instance_id));
        if (r >= 0 && !find(in->meta, in->n_meta, "local-hostname"))
                r = meta_line(&text, &used, &cap, "local-hostname", (const uint8_t *)hostname, strlen(hostname));
        for (size_t i = 0; r >= 0 && i < in->n_meta; i++)
                r = meta_line(&text, &used, &cap, in->meta[i].key, in->meta[i].value.data, in->meta[i].value.len);
        if (r >= 0)
                r = add_text(&cf, "meta-data", text, used);
        else
                free(text);
        if (r >= 0 && in->have_network_config)
                r = add(&cf, "network-config", in->network_config.data, in->network_config.len);
        if (r >= 0 && in->n_vars) {
                text = NULL;
                used = cap = 0;
                r = put(&text, &used, &cap, "# hvwgd context variables (sh: . ./context.sh)\n", 47);
                for (size_t i = 0; r >= 0 && i < in->n_vars; i++)
                        r = context_shell_assign(&text, &used, &cap, in->vars[i].key, (const char *)in->vars[i].value.data);
                if (r >= 0)
                        r = add_text(&cf, "context.sh", text, used);
                else
                        free(text);
        }
        for (size_t i = 0; r >= 0 && i < in->n_files; i++)
                r = add(&cf, in->files[i].key, in->files[i].value.data, in->files[i].value.len);
        if (r < 0) {
                context_files_free(&cf);
                return r;
        }
        *out = cf;
        return 0;
}

void context_files_free(struct context_files *cf) {
        for (size_t i = 0; cf->f && i < cf->n; i++)
                free(cf->f[i].data);
        free(cf->f);
        *cf = (struct context_files){ 0 };
}

uint64_t context_files_size(const struct context_files *cf) {
        uint64_t n = 0;
        for (size_t i = 0; i < cf->n; i++)
                n += cf->f[i].len;
        return n;
}
