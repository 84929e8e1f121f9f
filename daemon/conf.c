/* conf.c: the INI parser for hvwgd.conf and its drop-ins. */
#define _GNU_SOURCE
#include "conf.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

void hv_conf_defaults(struct hv_conf *c) {
        memset(c, 0, sizeof(*c));
        strcpy(c->image_root, "/var/lib/hvwgd/images");
        strcpy(c->machine_root, "/var/lib/hvwgd/machines");
        c->max_image_size = 64ULL << 30;
        c->scratch_per_core_gib = 20;
        c->memory_per_core_mib = 2048;
        strcpy(c->scratch_filesystem, "ext4");
        strcpy(c->hypervisor, "auto");
        c->max_scratch_size = 64ULL << 40;
        c->cpu_overcommit = 1;
        c->reserved_memory_mib = 1024;
        c->keep_console_logs = 200;
        c->keep_console_logs_days = 30;
        c->stop_timeout_sec = 60;
        c->max_context_size = 16ULL << 20;
        c->scratch_bytes_per_inode = 65536;
        strcpy(c->scratch_allocation, "sparse");
        c->max_concurrent = 2;
        c->connect_timeout_sec = 30;
        c->stall_timeout_sec = 60;
        c->retries = 5;
        c->retry_max_delay_sec = 60;
        c->max_redirects = 10;
        strcpy(c->inflate, "isal");
        strcpy(c->inflate_speculate, "auto");
        c->jobs_per_user = 8;
        c->max_queued_jobs = 256;
        c->low_speed_limit = 10 * 1024;
        c->low_speed_time_sec = 60;
        strcpy(c->lists_ca_path, "/etc/grid-security/certificates");
        c->max_list_size = 4ULL << 20;
        c->refresh_sec = 3600;
}

unsigned hv_conf_inflate_threads(const struct hv_conf *c, long online_cpus) {
        long n = c->inflate_threads ? (long)c->inflate_threads : online_cpus;
        return n < 1 ? 1 : n > 8 ? 8 : (unsigned)n;
}

bool hv_conf_inflate_speculate(const struct hv_conf *c, unsigned threads) {
        if (threads < 2 || strcmp(c->inflate_speculate, "no") == 0)
                return false;
        return strcmp(c->inflate_speculate, "yes") == 0 || threads >= 4;
}

/* A gzip stream of a raw image is at most a little larger than the image (stored blocks cost
 * 5 bytes per 64 KiB); 1/64 plus 1 MiB covers that with room to spare. */
uint64_t hv_conf_max_download(const struct hv_conf *c) {
        if (c->max_download_size)
                return c->max_download_size;
        return c->max_image_size + c->max_image_size / 64 + (1ULL << 20);
}

unsigned hv_conf_running_per_user(const struct hv_conf *c) {
        if (c->running_per_user)
                return c->running_per_user;
        return c->max_concurrent > 1 ? c->max_concurrent - 1 : 1;
}

struct hv_conf_snap *hv_conf_snap_new(const struct hv_conf *c) {
        struct hv_conf_snap *s = malloc(sizeof(*s));
        if (!s)
                return NULL;
        atomic_init(&s->refs, 1);
        s->c = *c;
        return s;
}

struct hv_conf_snap *hv_conf_snap_ref(struct hv_conf_snap *s) {
        if (s)
                atomic_fetch_add(&s->refs, 1);
        return s;
}

void hv_conf_snap_unref(struct hv_conf_snap *s) {
        if (s && atomic_fetch_sub(&s->refs, 1) == 1)
                free(s);
}

void hv_conf_apply_reload(struct hv_conf *live, const struct hv_conf *next, char *kept, size_t kept_len) {
        struct hv_conf n = *next;
        kept[0] = 0;
        static const struct { const char *key; size_t off, len; } fixed[] = {
                { "ImageRoot", offsetof(struct hv_conf, image_root), sizeof(n.image_root) },
                { "MachineRoot", offsetof(struct hv_conf, machine_root), sizeof(n.machine_root) },
                { "LibvirtURI", offsetof(struct hv_conf, libvirt_uri), sizeof(n.libvirt_uri) },
                { "Hypervisor", offsetof(struct hv_conf, hypervisor), sizeof(n.hypervisor) },
        };
        for (size_t i = 0; i < ELEMENTSOF(fixed); i++) {
                char *a = (char *)live + fixed[i].off, *b = (char *)&n + fixed[i].off;
                if (strncmp(a, b, fixed[i].len) == 0)
                        continue;
                size_t l = strlen(kept);
                snprintf(kept + l, kept_len - l, "%s%s", l ? ", " : "", fixed[i].key);
                memcpy(b, a, fixed[i].len);
        }
        *live = n;
}

static int parse_bool(const char *v, bool *ret) {
        static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no", "false", "off", "0" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcmp(v, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcmp(v, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

enum section { SEC_NONE, SEC_STORAGE, SEC_MACHINE, SEC_FETCH, SEC_LISTS };

static char *strip(char *s) {
        while (*s == ' ' || *s == '\t')
                s++;
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
                s[--n] = 0;
        return s;
}

static int set_str(char *dst, size_t dstlen, const char *v) {
        if (strlen(v) >= dstlen)
                return -ENAMETOOLONG;
        strcpy(dst, v);
        return 0;
}

static int set_path(char *dst, size_t dstlen, const char *v) {
        if (v[0] != '/')
                return -EINVAL;
        return set_str(dst, dstlen, v);
}

static int set_choice(char *dst, size_t dstlen, const char *v, const char *const *choices) {
        for (; *choices; choices++)
                if (strcmp(v, *choices) == 0)
                        return set_str(dst, dstlen, v);
        return -EINVAL;
}

/* Space-separated absolute paths (or globs) into a fixed list. */
static int set_path_list(char (*dst)[512], unsigned *count, const char *v) {
        char buf[HV_CONF_MAX_DIRS * 512];
        if (strlen(v) >= sizeof(buf))
                return -ENAMETOOLONG;
        strcpy(buf, v);
        unsigned n = 0;
        char *save = NULL;
        for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
                if (n >= HV_CONF_MAX_DIRS)
                        return -E2BIG;
                if (t[0] != '/')
                        return -EINVAL;
                if (set_str(dst[n], 512, t) < 0)
                        return -ENAMETOOLONG;
                n++;
        }
        *count = n;
        return 0;
}

/* Returns 1 when the key is known and set, 0 when unknown, <0 on a bad value (*why says what). */
static int apply(struct hv_conf *c, enum section sec, const char *k, const char *v, const char **why) {
        static const char *const fs[] = { "ext4", "ext3", "ext2", NULL };
        static const char *const hv[] = { "auto", "kvm", "qemu", "xen", NULL };
        static const char *const infl[] = { "isal", "zlib", NULL };
        static const char *const spec[] = { "auto", "yes", "no", NULL };
        int r;
        *why = "invalid value";
        if (sec == SEC_STORAGE) {
                *why = "expected an absolute path";
                if (strcmp(k, "ImageRoot") == 0)
                        return set_path(c->image_root, sizeof(c->image_root), v) ?: 1;
                if (strcmp(k, "MachineRoot") == 0)
                        return set_path(c->machine_root, sizeof(c->machine_root), v) ?: 1;
                if (strcmp(k, "AllowedSourceDirs") == 0) {
                        *why = "expected space-separated absolute directories";
                        return set_path_list(c->allowed_source_dirs, &c->n_allowed_source_dirs, v) ?: 1;
                }
                *why = "expected a size such as 64G (suffixes K, M, G, T)";
                if (strcmp(k, "MaxImageSize") == 0) {
                        r = hv_parse_size(v, &c->max_image_size);
                        return r < 0 ? r : (c->max_image_size == 0 ? -EINVAL : 1);
                }
                return 0;
        }
        if (sec == SEC_MACHINE) {
                if (strcmp(k, "ScratchPerCoreGiB") == 0 || strcmp(k, "MemoryPerCoreMiB") == 0) {
                        unsigned u;
                        *why = "expected a whole number";
                        r = hv_parse_uint(v, 0, 1u << 24, &u);
                        if (r < 0)
                                return r;
                        if (k[0] == 'S')
                                c->scratch_per_core_gib = u;
                        else if (u == 0) {
                                *why = "must be at least 1";
                                return -EINVAL;
                        } else
                                c->memory_per_core_mib = u;
                        return 1;
                }
                if (strcmp(k, "ScratchFilesystem") == 0) {
                        *why = "expected ext4, ext3 or ext2";
                        return set_choice(c->scratch_filesystem, sizeof(c->scratch_filesystem), v, fs) ?: 1;
                }
                if (strcmp(k, "MaxScratchSize") == 0) {
                        *why = "expected a size such as 64T (suffixes K, M, G, T)";
                        r = hv_parse_size(v, &c->max_scratch_size);
                        return r < 0 ? r : (c->max_scratch_size == 0 ? -EINVAL : 1);
                }
                if (strcmp(k, "ScratchBytesPerInode") == 0) {
                        *why = "expected a size between 4K and 64M";
                        r = hv_parse_size(v, &c->scratch_bytes_per_inode);
                        return r < 0 ? r : (c->scratch_bytes_per_inode < 4096 || c->scratch_bytes_per_inode > (64u << 20) ? -EINVAL : 1);
                }
                if (strcmp(k, "CpuOvercommit") == 0) {
                        *why = "expected a whole number 1-64";
                        return hv_parse_uint(v, 1, 64, &c->cpu_overcommit) ?: 1;
                }
                if (strcmp(k, "ReservedMemoryMiB") == 0) {
                        unsigned u;
                        *why = "expected a whole number of MiB (0-1048576)";
                        r = hv_parse_uint(v, 0, 1u << 20, &u);
                        c->reserved_memory_mib = u;
                        return r ?: 1;
                }
                if (strcmp(k, "KeepConsoleLogs") == 0) {
                        *why = "expected a whole number 0-100000 (0: console logs are not kept)";
                        return hv_parse_uint(v, 0, 100000, &c->keep_console_logs) ?: 1;
                }
                if (strcmp(k, "KeepConsoleLogsDays") == 0) {
                        *why = "expected a whole number of days 1-3650";
                        return hv_parse_uint(v, 1, 3650, &c->keep_console_logs_days) ?: 1;
                }
                if (strcmp(k, "MaxContextSize") == 0) {
                        *why = "expected a size between 4K and 1G (suffixes K, M, G)";
                        r = hv_parse_size(v, &c->max_context_size);
                        return r < 0 ? r : (c->max_context_size < 4096 || c->max_context_size > (1ULL << 30) ? -EINVAL : 1);
                }
                if (strcmp(k, "StopTimeoutSec") == 0) {
                        *why = "expected a whole number of seconds 1-86400";
                        return hv_parse_uint(v, 1, 86400, &c->stop_timeout_sec) ?: 1;
                }
                if (strcmp(k, "ScratchDevices") == 0) {
                        *why = "expected space-separated absolute device paths or globs";
                        return set_path_list(c->scratch_devices, &c->n_scratch_devices, v) ?: 1;
                }
                if (strcmp(k, "ScratchAllocation") == 0) {
                        static const char *const al[] = { "sparse", "fallocate", NULL };
                        *why = "expected sparse or fallocate";
                        return set_choice(c->scratch_allocation, sizeof(c->scratch_allocation), v, al) ?: 1;
                }
                if (strcmp(k, "Hypervisor") == 0) {
                        *why = "expected auto, kvm, qemu or xen";
                        return set_choice(c->hypervisor, sizeof(c->hypervisor), v, hv) ?: 1;
                }
                *why = "value too long";
                if (strcmp(k, "LibvirtURI") == 0)
                        return set_str(c->libvirt_uri, sizeof(c->libvirt_uri), v) ?: 1;
                if (strcmp(k, "Network") == 0) {
                        *why = "expected a libvirt network name";
                        if (*v && !hv_name_valid(v))
                                return -EINVAL;
                        return set_str(c->network, sizeof(c->network), v) ?: 1;
                }
                return 0;
        }
        if (sec == SEC_FETCH) {
                struct { const char *key; unsigned *dst; unsigned min, max; } nums[] = {
                        { "MaxConcurrent", &c->max_concurrent, 1, 64 },
                        { "ConnectTimeoutSec", &c->connect_timeout_sec, 1, 3600 },
                        { "StallTimeoutSec", &c->stall_timeout_sec, 1, 86400 },
                        { "Retries", &c->retries, 0, 100 },
                        { "RetryMaxDelaySec", &c->retry_max_delay_sec, 1, 3600 },
                        { "MaxRedirects", &c->max_redirects, 0, 50 },
                        { "JobsPerUser", &c->jobs_per_user, 1, 1024 },
                        { "RunningJobsPerUser", &c->running_per_user, 0, 64 },
                        { "MaxQueuedJobs", &c->max_queued_jobs, 1, 65536 },
                        { "LowSpeedTimeSec", &c->low_speed_time_sec, 1, 86400 },
                        { "MaxDownloadTimeSec", &c->max_download_time_sec, 0, 30 * 86400 },
                };
                for (size_t i = 0; i < ELEMENTSOF(nums); i++)
                        if (strcmp(k, nums[i].key) == 0) {
                                *why = "expected a whole number in range";
                                return hv_parse_uint(v, nums[i].min, nums[i].max, nums[i].dst) ?: 1;
                        }
                *why = "expected a size such as 80G (suffixes K, M, G, T; 0 = derived from MaxImageSize)";
                if (strcmp(k, "MaxDownloadSize") == 0)
                        return hv_parse_size(v, &c->max_download_size) ?: 1;
                *why = "expected bytes per second such as 10K (0 = off)";
                if (strcmp(k, "LowSpeedLimit") == 0)
                        return hv_parse_size(v, &c->low_speed_limit) ?: 1;
                if (strcmp(k, "MaxBandwidth") == 0)
                        return hv_parse_size(v, &c->max_bandwidth) ?: 1;
                *why = "expected yes or no";
                if (strcmp(k, "AllowLoopbackRedirects") == 0)
                        return parse_bool(v, &c->allow_loopback_redirects) ?: 1;
                if (strcmp(k, "InflateThreads") == 0) {
                        *why = "expected 0 (the online CPUs, at most 8) to 8";
                        return hv_parse_uint(v, 0, 8, &c->inflate_threads) ?: 1;
                }
                if (strcmp(k, "InflateSpeculate") == 0) {
                        *why = "expected auto, yes or no";
                        return set_choice(c->inflate_speculate, sizeof(c->inflate_speculate), v, spec) ?: 1;
                }
                if (strcmp(k, "Inflate") == 0) {
                        *why = "expected isal or zlib";
                        return set_choice(c->inflate, sizeof(c->inflate), v, infl) ?: 1;
                }
                *why = "expected an absolute path";
                if (strcmp(k, "CAPath") == 0)
                        return (*v ? set_path(c->ca_path, sizeof(c->ca_path), v) : set_str(c->ca_path, 1, "")) ?: 1;
                *why = "value too long";
                if (strcmp(k, "Proxy") == 0)
                        return set_str(c->proxy, sizeof(c->proxy), v) ?: 1;
                return 0;
        }
        if (sec == SEC_LISTS) {
                *why = "expected an absolute path";
                if (strcmp(k, "CAPath") == 0)
                        return set_path(c->lists_ca_path, sizeof(c->lists_ca_path), v) ?: 1;
                if (strcmp(k, "MaxListSize") == 0) {
                        *why = "expected a size between 4K and 256M (suffixes K, M)";
                        r = hv_parse_size(v, &c->max_list_size);
                        return r < 0 ? r : (c->max_list_size < 4096 || c->max_list_size > (256ULL << 20) ? -EINVAL : 1);
                }
                if (strcmp(k, "RefreshSec") == 0) {
                        *why = "expected a whole number of seconds 60-604800";
                        return hv_parse_uint(v, 60, 604800, &c->refresh_sec) ?: 1;
                }
                return 0;
        }
        return 0;
}

int hv_conf_parse(struct hv_conf *c, const char *text, size_t len, const char *file,
                  hv_conf_warn_fn warn, void *userdata, struct hv_error *e) {
        enum section sec = SEC_NONE;
        unsigned lineno = 0;
        size_t pos = 0;
        while (pos < len) {
                size_t end = pos;
                while (end < len && text[end] != '\n')
                        end++;
                lineno++;
                char line[4096];
                if (end - pos >= sizeof(line))
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "%s:%u: line too long", file, lineno);
                memcpy(line, text + pos, end - pos);
                line[end - pos] = 0;
                pos = end + 1;
                char *s = strip(line);
                if (*s == 0 || *s == '#' || *s == ';')
                        continue;
                if (*s == '[') {
                        char *close = strchr(s, ']');
                        if (!close || *strip(close + 1) != 0)
                                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "%s:%u: malformed section header", file, lineno);
                        *close = 0;
                        const char *name = s + 1;
                        if (strcmp(name, "Storage") == 0)
                                sec = SEC_STORAGE;
                        else if (strcmp(name, "Machine") == 0)
                                sec = SEC_MACHINE;
                        else if (strcmp(name, "Fetch") == 0)
                                sec = SEC_FETCH;
                        else if (strcmp(name, "Lists") == 0)
                                sec = SEC_LISTS;
                        else
                                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL,
                                               "%s:%u: unknown section [%s] (known: Storage, Machine, Fetch, Lists)", file, lineno, name);
                        continue;
                }
                char *eq = strchr(s, '=');
                if (!eq)
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "%s:%u: expected KEY=VALUE, got \"%.64s\"", file, lineno, s);
                *eq = 0;
                char *k = strip(s), *v = strip(eq + 1);
                if (*k == 0)
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "%s:%u: empty key", file, lineno);
                if (sec == SEC_NONE)
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "%s:%u: key %s outside of any section", file, lineno, k);
                const char *why;
                int r = apply(c, sec, k, v, &why);
                if (r < 0)
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "%s:%u: %s=%.128s: %s", file, lineno, k, v, why);
                if (r == 0 && warn) {
                        char msg[256];
                        snprintf(msg, sizeof(msg), "unknown key %.64s, ignored", k);
                        warn(file, lineno, msg, userdata);
                }
        }
        return 0;
}

static int load_one(struct hv_conf *c, const char *path, bool required, hv_conf_warn_fn warn, void *ud, struct hv_error *e) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = hv_read_file(path, 1 << 20, &text, &len);
        if (r == -ENOENT && !required)
                return 0;
        if (r < 0)
                return hv_fail(e, HV_E_INVALID_ARGS, -r, "%s: cannot read configuration: %s", path,
                               r == -EBADF ? "not a regular file" : strerror(-r));
        if (strlen(text) != len)
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "%s: contains a NUL byte", path);
        return hv_conf_parse(c, text, len, path, warn, ud, e);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int hv_conf_load(struct hv_conf *c, const char *path, bool required, hv_conf_warn_fn warn, void *ud, struct hv_error *e) {
        int r = load_one(c, path, required, warn, ud, e);
        if (r < 0)
                return r;
        char dir[PATH_MAX];
        if (snprintf(dir, sizeof(dir), "%s.d", path) >= (int)sizeof(dir))
                return hv_fail(e, HV_E_INVALID_ARGS, ENAMETOOLONG, "%s: path too long", path);
        DIR *d = opendir(dir);
        if (!d) {
                if (errno == ENOENT)
                        return 0;
                return hv_fail_errno(e, HV_E_INVALID_ARGS, errno, "%s: cannot open drop-in directory", dir);
        }
        char *names[256];
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".conf") != 0)
                        continue;
                if (n == ELEMENTSOF(names)) {
                        r = hv_fail(e, HV_E_INVALID_ARGS, E2BIG, "%s: more than %zu drop-ins", dir, ELEMENTSOF(names));
                        break;
                }
                if (!(names[n] = strdup(de->d_name))) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        if (r >= 0) {
                qsort(names, n, sizeof(names[0]), cmp_str);
                for (size_t i = 0; i < n && r >= 0; i++) {
                        char p[PATH_MAX];
                        if (snprintf(p, sizeof(p), "%s/%s", dir, names[i]) >= (int)sizeof(p)) {
                                r = hv_fail(e, HV_E_INVALID_ARGS, ENAMETOOLONG, "%s/%s: path too long", dir, names[i]);
                                break;
                        }
                        r = load_one(c, p, true, warn, ud, e);
                }
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        return r;
}

void hv_conf_print(FILE *f, const struct hv_conf *c) {
        fprintf(f, "[Storage]\nImageRoot=%s\nMachineRoot=%s\nMaxImageSize=%llu\nAllowedSourceDirs=", c->image_root, c->machine_root,
               (unsigned long long)c->max_image_size);
        for (unsigned i = 0; i < c->n_allowed_source_dirs; i++)
                fprintf(f, "%s%s", i ? " " : "", c->allowed_source_dirs[i]);
        fprintf(f, "\n[Machine]\nScratchPerCoreGiB=%llu\nMemoryPerCoreMiB=%llu\nScratchFilesystem=%s\nScratchAllocation=%s\n"
               "ScratchBytesPerInode=%llu\nMaxScratchSize=%llu\nHypervisor=%s\nLibvirtURI=%s\nNetwork=%s\n",
               (unsigned long long)c->scratch_per_core_gib, (unsigned long long)c->memory_per_core_mib, c->scratch_filesystem,
               c->scratch_allocation, (unsigned long long)c->scratch_bytes_per_inode, (unsigned long long)c->max_scratch_size,
               c->hypervisor, c->libvirt_uri, c->network);
        fprintf(f, "CpuOvercommit=%u\nReservedMemoryMiB=%llu\nKeepConsoleLogs=%u\nKeepConsoleLogsDays=%u\nStopTimeoutSec=%u\n"
                   "MaxContextSize=%llu\n",
                c->cpu_overcommit, (unsigned long long)c->reserved_memory_mib, c->keep_console_logs, c->keep_console_logs_days,
                c->stop_timeout_sec, (unsigned long long)c->max_context_size);
        fprintf(f, "ScratchDevices=");
        for (unsigned i = 0; i < c->n_scratch_devices; i++)
                fprintf(f, "%s%s", i ? " " : "", c->scratch_devices[i]);
        fprintf(f, "\n");
        fprintf(f, "[Fetch]\nMaxConcurrent=%u\nConnectTimeoutSec=%u\nStallTimeoutSec=%u\nMaxRedirects=%u\nInflate=%s\nCAPath=%s\nProxy=%s\nJobsPerUser=%u\n",
               c->max_concurrent, c->connect_timeout_sec, c->stall_timeout_sec, c->max_redirects, c->inflate, c->ca_path, c->proxy,
               c->jobs_per_user);
        fprintf(f, "Retries=%u\nRetryMaxDelaySec=%u\nMaxBandwidth=%llu\nInflateThreads=%u\nInflateSpeculate=%s\n", c->retries,
                c->retry_max_delay_sec, (unsigned long long)c->max_bandwidth, c->inflate_threads, c->inflate_speculate);
        fprintf(f, "RunningJobsPerUser=%u\nMaxQueuedJobs=%u\nLowSpeedLimit=%llu\nLowSpeedTimeSec=%u\nMaxDownloadTimeSec=%u\n"
               "MaxDownloadSize=%llu\nAllowLoopbackRedirects=%s\n",
               hv_conf_running_per_user(c), c->max_queued_jobs, (unsigned long long)c->low_speed_limit, c->low_speed_time_sec,
               c->max_download_time_sec, (unsigned long long)hv_conf_max_download(c), c->allow_loopback_redirects ? "yes" : "no");
        fprintf(f, "[Lists]\nCAPath=%s\nMaxListSize=%llu\nRefreshSec=%u\n", c->lists_ca_path, (unsigned long long)c->max_list_size,
                c->refresh_sec);
}
