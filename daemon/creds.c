/* creds.c: see creds.h. */
#define _GNU_SOURCE
#include "creds.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The line of text that starts with key ("Uid:"), or NULL. */
static const char *line_of(const char *text, const char *key) {
        size_t kl = strlen(key);
        for (const char *p = text; p && *p;) {
                if (strncmp(p, key, kl) == 0)
                        return p + kl;
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        return NULL;
}

/* The next decimal number on the line (tabs and spaces before it); false at the line's end. */
static bool next_id(const char **p, unsigned long *v, bool *bad) {
        const char *s = *p;
        while (*s == ' ' || *s == '\t')
                s++;
        if (*s == '\n' || *s == 0) {
                *p = s;
                return false;
        }
        if (*s < '0' || *s > '9') {
                *bad = true;
                return false;
        }
        char *end;
        errno = 0;
        unsigned long x = strtoul(s, &end, 10);
        if (errno || x >= (unsigned long)(uid_t)-1 || (*end != ' ' && *end != '\t' && *end != '\n' && *end != 0)) {
                *bad = true;
                return false;
        }
        *v = x;
        *p = end;
        return true;
}

/* The second of a "real effective saved fs" line. */
static int effective(const char *text, const char *key, unsigned long *v) {
        const char *p = line_of(text, key);
        unsigned long ids[4];
        bool bad = false;
        unsigned n = 0;
        while (p && n < 4 && next_id(&p, &ids[n], &bad))
                n++;
        if (!p || bad || n != 4)
                return -EINVAL;
        *v = ids[1];
        return 0;
}

int creds_parse_status(const char *text, uid_t *euid, gid_t *egid, gid_t *gids, unsigned max, unsigned *n) {
        unsigned long u, g;
        *n = 0;
        if (effective(text, "Uid:", &u) < 0 || effective(text, "Gid:", &g) < 0)
                return -EINVAL;
        const char *p = line_of(text, "Groups:");
        if (!p)
                return -EINVAL;
        unsigned long v;
        bool bad = false;
        while (next_id(&p, &v, &bad)) {
                if (*n == max) {
                        *n = 0;
                        return -E2BIG;
                }
                gids[(*n)++] = (gid_t)v;
        }
        if (bad) {
                *n = 0;
                return -EINVAL;
        }
        *euid = (uid_t)u;
        *egid = (gid_t)g;
        return 0;
}
