/* subrec.c: a subscription's record as text (pure). */
#define _GNU_SOURCE
#include "subrec.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool clean(const char *v) {
        for (; *v; v++)
                if ((unsigned char)*v < 0x20 || *v == 0x7f)
                        return false;
        return true;
}

#define STR_FIELD(key, member) { key, offsetof(struct sub_state, member), sizeof(((struct sub_state *)0)->member), 's' }
#define U64_FIELD(key, member) { key, offsetof(struct sub_state, member), sizeof(uint64_t), 'u' }
static const struct field {
        const char *key;
        size_t off, size;
        char type; /* s: string, u: uint64, b: bool */
} fields[] = {
        STR_FIELD("id", id),
        STR_FIELD("uri", uri),
        STR_FIELD("endorser_dn", endorser_dn),
        STR_FIELD("ca_dn", ca_dn),
        STR_FIELD("name_prefix", prefix),
        { "auto_fetch", offsetof(struct sub_state, auto_fetch), sizeof(bool), 'b' },
        U64_FIELD("refresh_sec", refresh_sec),
        U64_FIELD("created_usec", created_usec),
        STR_FIELD("etag", etag),
        STR_FIELD("last_modified", last_modified),
        U64_FIELD("last_refresh_usec", last_refresh_usec),
        STR_FIELD("last_result", last_result),
        STR_FIELD("last_error_name", last_error_name),
        STR_FIELD("last_error", last_error),
};

char *sub_state_format(const struct sub_state *st) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        fprintf(f, "# hvwgd image list subscription\n");
        bool ok = true;
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                const char *p = (const char *)st + fields[i].off;
                if (fields[i].type == 's') {
                        ok &= clean(p);
                        fprintf(f, "%s=%s\n", fields[i].key, p);
                } else if (fields[i].type == 'u')
                        fprintf(f, "%s=%llu\n", fields[i].key, (unsigned long long)*(const uint64_t *)(const void *)p);
                else
                        fprintf(f, "%s=%s\n", fields[i].key, *(const bool *)(const void *)p ? "yes" : "no");
        }
        if (fclose(f) != 0 || !ok) {
                free(buf);
                errno = EINVAL;
                return NULL;
        }
        return buf;
}

int sub_state_parse(struct sub_state *st, const char *text) {
        *st = (struct sub_state){ 0 };
        bool seen[ELEMENTSOF(fields)] = { false };
        for (const char *p = text; *p;) {
                const char *nl = strchrnul(p, '\n');
                char line[HV_URI_MAX + 64];
                size_t l = (size_t)(nl - p);
                if (l >= sizeof(line))
                        return -EINVAL;
                memcpy(line, p, l);
                line[l] = 0;
                p = *nl ? nl + 1 : nl;
                if (!line[0] || line[0] == '#')
                        continue;
                char *eq = strchr(line, '=');
                if (!eq || !clean(line))
                        return -EINVAL;
                *eq = 0;
                const char *v = eq + 1;
                size_t i = 0;
                while (i < ELEMENTSOF(fields) && strcmp(fields[i].key, line) != 0)
                        i++;
                if (i == ELEMENTSOF(fields) || seen[i])
                        return -EINVAL;
                seen[i] = true;
                char *dst = (char *)st + fields[i].off;
                if (fields[i].type == 's') {
                        if (strlen(v) >= fields[i].size)
                                return -EINVAL;
                        memcpy(dst, v, strlen(v) + 1);
                } else if (fields[i].type == 'u') {
                        if (*v < '0' || *v > '9' || strlen(v) > 19 || strspn(v, "0123456789") != strlen(v))
                                return -EINVAL;
                        *(uint64_t *)(void *)dst = strtoull(v, NULL, 10);
                } else if (strcmp(v, "yes") == 0 || strcmp(v, "no") == 0)
                        *(bool *)(void *)dst = v[0] == 'y';
                else
                        return -EINVAL;
        }
        /* the id names the files: exactly SUB_ID_LEN hex digits */
        if (strlen(st->id) != SUB_ID_LEN || strspn(st->id, "0123456789abcdef") != SUB_ID_LEN || !st->uri[0] || !st->refresh_sec)
                return -EINVAL;
        return 0;
}

