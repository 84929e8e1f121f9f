/* run.c: hvwg-run's pure logic: the allocation, the name, durations, the guest's script. */
#define _GNU_SOURCE
#include "run.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static bool parse_u64(const char *s, uint64_t *ret) {
        if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 15)
                return false;
        *ret = strtoull(s, NULL, 10);
        return true;
}

bool run_classad_value(const char *ad, const char *key, char *out, size_t len) {
        size_t klen = strlen(key);
        for (const char *line = ad; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                while (*line == ' ' || *line == '\t')
                        line++;
                if (strncasecmp(line, key, klen) != 0)
                        continue;
                const char *p = line + klen;
                while (*p == ' ' || *p == '\t')
                        p++;
                if (*p != '=')
                        continue;
                p++;
                while (*p == ' ' || *p == '\t')
                        p++;
                size_t n = strcspn(p, "\r\n");
                if (n && *p == '"') {
                        p++;
                        n = strcspn(p, "\"\r\n");
                }
                if (n >= len)
                        return false;
                memcpy(out, p, n);
                out[n] = 0;
                return true;
        }
        return false;
}

void run_alloc_from_env(run_getenv_fn get, void *ud, const char *machine_ad, const char *job_ad, struct run_alloc *a) {
        *a = (struct run_alloc){ .cores = 1, .cores_from = "default", .memory_from = "default", .system = "" };
        uint64_t v;
        char buf[64];
        static const char *const core_vars[] = { "SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE" };
        bool found = false;
        for (size_t i = 0; i < ELEMENTSOF(core_vars) && !found; i++)
                if (parse_u64(get(core_vars[i], ud), &v) && v > 0 && v <= 4096) {
                        a->cores = (unsigned)v;
                        a->cores_from = core_vars[i];
                        found = true;
                }
        if (!found && machine_ad && run_classad_value(machine_ad, "Cpus", buf, sizeof(buf)) && parse_u64(buf, &v) && v > 0 && v <= 4096) {
                a->cores = (unsigned)v;
                a->cores_from = "the HTCondor machine ad (Cpus)";
                found = true;
        }
        if (!found && parse_u64(get("OMP_NUM_THREADS", ud), &v) && v > 0 && v <= 4096) {
                a->cores = (unsigned)v;
                a->cores_from = "OMP_NUM_THREADS";
        }
        /* memory in MiB; Slurm may add a unit suffix in some versions: only plain numbers count */
        if (parse_u64(get("SLURM_MEM_PER_NODE", ud), &v) && v > 0) {
                a->memory_mib = v;
                a->memory_from = "SLURM_MEM_PER_NODE";
        } else if (parse_u64(get("SLURM_MEM_PER_CPU", ud), &v) && v > 0) {
                a->memory_mib = v * a->cores;
                a->memory_from = "SLURM_MEM_PER_CPU × cores";
        } else if (machine_ad && run_classad_value(machine_ad, "Memory", buf, sizeof(buf)) && parse_u64(buf, &v) && v > 0) {
                a->memory_mib = v;
                a->memory_from = "the HTCondor machine ad (Memory)";
        }
        /* SLURM_JOB_ID is unique per array task too, and what Prolog and Epilog see */
        const char *job = get("SLURM_JOB_ID", ud);
        if (parse_u64(job, &v)) {
                a->system = "slurm";
                snprintf(a->job_id, sizeof(a->job_id), "%llu", (unsigned long long)v);
                return;
        }
        char cl[32], pr[32];
        uint64_t c, p;
        if (job_ad && run_classad_value(job_ad, "ClusterId", cl, sizeof(cl)) && run_classad_value(job_ad, "ProcId", pr, sizeof(pr)) &&
            parse_u64(cl, &c) && parse_u64(pr, &p)) {
                a->system = "htcondor";
                snprintf(a->job_id, sizeof(a->job_id), "%llu.%llu", (unsigned long long)c, (unsigned long long)p);
        }
}

void run_machine_name(const struct run_alloc *a, const char *host, uint32_t unique, char *out, size_t len) {
        char h[24] = "";
        /* the host's first label, in the allowed characters */
        for (size_t i = 0, n = 0; host && host[i] && host[i] != '.' && n < sizeof(h) - 1; i++)
                if (isalnum((unsigned char)host[i]) || host[i] == '-' || host[i] == '_')
                        h[n++] = host[i], h[n] = 0;
        char job[48] = "";
        for (size_t i = 0, n = 0; a->job_id[i] && n < sizeof(job) - 1; i++)
                job[n++] = isalnum((unsigned char)a->job_id[i]) ? a->job_id[i] : '.', job[n] = 0;
        snprintf(out, len, "%.8s%s%.24s%s%.20s%s%08x", *a->system ? a->system : "run", "-", *job ? job : "nojob", *h ? "-" : "", h, "-",
                 unique);
}

int run_parse_duration(const char *s, uint64_t *ret) {
        if (!s || !*s)
                return -EINVAL;
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || !isdigit((unsigned char)s[0]))
                return -EINVAL;
        uint64_t mul = 1;
        if (*end) {
                if (end[1])
                        return -EINVAL;
                switch (*end) {
                case 's': mul = 1; break;
                case 'm': mul = 60; break;
                case 'h': mul = 3600; break;
                case 'd': mul = 86400; break;
                default: return -EINVAL;
                }
        }
        if (v == 0 || v > 365ULL * 86400 / mul)
                return -EINVAL;
        *ret = v * mul;
        return 0;
}

/* The guest side. POSIX sh (busybox is enough). Run by the HEPiX context service as prolog.sh
 * (in its copy of the context disk, context.sh exported) or by cloud-init as user-data (then it
 * mounts the context disk itself); whichever comes first runs it, once. */
static const char script_head[] =
        "#!/bin/sh\n"
        "# written by hvwg-run: runs one command in this VM, on its scratch disk, then powers it off\n"
        "[ -e /run/hvwg-run.started ] && exit 0\n"
        "mkdir -p /run && : > /run/hvwg-run.started\n"
        "dmesg -n 1 2>/dev/null\n"
        "for c in /dev/ttyS0 /dev/hvc0 /dev/console; do [ -c \"$c\" ] && { exec >\"$c\" 2>&1; break; }; done\n"
        "ctx=$(cd \"$(dirname \"$0\")\" && pwd)\n"
        "if [ ! -f \"$ctx/context.sh\" ]; then\n"
        "  ctx=/run/hvwg-run-context; mkdir -p \"$ctx\"\n"
        "  d=$(blkid -L cidata 2>/dev/null || findfs LABEL=cidata 2>/dev/null)\n"
        "  mount -t iso9660 -o ro \"$d\" \"$ctx\" || echo \"hvwg-run: cannot mount the context disk\"\n"
        "fi\n"
        "if [ -f \"$ctx/context.sh\" ]; then set -a; . \"$ctx/context.sh\"; set +a; fi\n"
        "dev=\"\"\n"
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do\n"
        "  dev=$(blkid -L scratch 2>/dev/null || findfs LABEL=scratch 2>/dev/null) && [ -n \"$dev\" ] && break\n"
        "  sleep 1\n"
        "done\n"
        "work=/scratch\n"
        "mkdir -p \"$work\"\n"
        "if [ -n \"$dev\" ] && ! grep -q \" $work \" /proc/mounts; then\n"
        "  mount -t ext4 \"$dev\" \"$work\" 2>/dev/null || mount \"$dev\" \"$work\" || echo \"hvwg-run: cannot mount $dev\"\n"
        "fi\n"
        "cd \"$work\" || cd /\n"
        "for f in $HVWG_RUN_FILES; do cp \"$ctx/$f\" \"./$f\"; done\n";

char *run_build_script(char *const *argv, int argc, const char *nonce) {
        size_t len = sizeof(script_head) + 512 + strlen(nonce) * 2;
        for (int i = 0; i < argc; i++)
                len += strlen(argv[i]) * 4 + 3;
        char *s = malloc(len);
        if (!s)
                return NULL;
        size_t u = (size_t)snprintf(s, len, "%sHVWG_RUN_NONCE=%s\necho \"HVWG-RUN-BEGIN $HVWG_RUN_NONCE\"\n(\n  exec </dev/null\n  ", script_head,
                                    nonce);
        for (int i = 0; i < argc; i++) {
                if (i && u + 1 < len)
                        s[u++] = ' ';
                if (hv_shell_quote(argv[i], s, len, &u) < 0) {
                        free(s);
                        return NULL;
                }
        }
        int n = snprintf(s + u, len - u,
                         "\n)\nstatus=$?\n"
                         "# a line of its own even after output without a final newline (the reader drops this one)\n"
                         "printf '\\nHVWG-RUN-END %%s %%s\\n' \"$HVWG_RUN_NONCE\" \"$status\"\n"
                         "sync\n"
                         "poweroff -f 2>/dev/null || { echo o > /proc/sysrq-trigger; }\n");
        if (n < 0 || (size_t)n >= len - u) {
                free(s);
                return NULL;
        }
        return s;
}

int run_marker(const char *line, const char *nonce, int *status) {
        size_t nl = strlen(nonce);
        if (strncmp(line, "HVWG-RUN-BEGIN ", 15) == 0 && strncmp(line + 15, nonce, nl) == 0 && (line[15 + nl] == 0))
                return 1;
        if (strncmp(line, "HVWG-RUN-END ", 13) == 0 && strncmp(line + 13, nonce, nl) == 0 && line[13 + nl] == ' ') {
                const char *p = line + 14 + nl;
                if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 3)
                        return 0;
                *status = atoi(p);
                return *status <= 255 ? 2 : 0;
        }
        return 0;
}
