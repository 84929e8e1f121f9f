/* opts.c: FetchImage and CreateMachine options, validated without any I/O. */
#include "opts.h"

#include <ctype.h>

#include <errno.h>
#include <string.h>


struct opt_spec {
        const char *key;
        char type;
};

/* The D-Bus signature an opt_value type stands for. */
static const char *type_name(char t) {
        switch (t) {
        case OPT_BYTES: return "ay";
        case OPT_STRING_MAP: return "a{ss}";
        case OPT_BYTES_MAP: return "a{say}";
        case 's': return "s";
        case 't': return "t";
        case 'b': return "b";
        default: return "another type";
        }
}

/* Every key known with the right type, none twice; the index of each entry's spec in idx. */
static int check_keys(const struct opt_value *v, size_t n, const struct opt_spec *specs, size_t n_specs, size_t *idx,
                      struct hv_error *e) {
        if (n > OPTS_MAX)
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "more than %d options", OPTS_MAX);
        for (size_t i = 0; i < n; i++) {
                size_t k = 0;
                while (k < n_specs && strcmp(v[i].key, specs[k].key) != 0)
                        k++;
                if (k == n_specs) {
                        char known[256] = "";
                        for (size_t s = 0; s < n_specs; s++)
                                snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", s ? ", " : "", specs[s].key);
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "unknown option \"%.64s\" (known: %s)", v[i].key, known);
                }
                if (v[i].type != specs[k].type)
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "option %s must have type '%s', got '%s'", specs[k].key,
                                       type_name(specs[k].type), type_name(v[i].type));
                for (size_t j = 0; j < i; j++)
                        if (idx[j] == k)
                                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "option %s given twice", specs[k].key);
                idx[i] = k;
        }
        return 0;
}

enum { F_SHA512, F_SIZE, F_MAX_SIZE, F_COMPRESSION, F_REPLACE };
static const struct opt_spec fetch_specs[] = {
        [F_SHA512] = { "sha512", 's' },           [F_SIZE] = { "size", 't' },       [F_MAX_SIZE] = { "max_size", 't' },
        [F_COMPRESSION] = { "compression", 's' }, [F_REPLACE] = { "replace", 'b' },
};

int opts_fetch(const struct opt_value *v, size_t n, uint64_t max_image_size, enum gunzip_engine engine,
               struct fetch_params *fp, struct hv_error *e) {
        size_t idx[OPTS_MAX];
        *fp = (struct fetch_params){ .compressed = true, .max_size = max_image_size, .engine = engine };
        int r = check_keys(v, n, fetch_specs, ELEMENTSOF(fetch_specs), idx, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                const struct opt_value *o = &v[i];
                switch (idx[i]) {
                case F_SHA512: {
                        size_t len = strlen(o->s);
                        if (len != HV_SHA512_HEX || strspn(o->s, "0123456789abcdefABCDEF") != HV_SHA512_HEX)
                                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL,
                                               "option sha512 must be %d hexadecimal digits, got %zu characters", HV_SHA512_HEX, len);
                        for (int k = 0; k < HV_SHA512_HEX; k++)
                                fp->sha512[k] = (char)(o->s[k] >= 'A' && o->s[k] <= 'F' ? o->s[k] - 'A' + 'a' : o->s[k]);
                        fp->sha512[HV_SHA512_HEX] = 0;
                        break;
                }
                case F_COMPRESSION:
                        if (strcmp(o->s, "gzip") == 0)
                                fp->compressed = true;
                        else if (strcmp(o->s, "none") == 0)
                                fp->compressed = false;
                        else
                                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "option compression must be \"gzip\" or \"none\", got \"%.32s\"",
                                               o->s);
                        break;
                case F_SIZE:
                        fp->size = o->t;
                        fp->have_size = true;
                        break;
                case F_MAX_SIZE:
                        if (o->t == 0)
                                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "option max_size must be greater than 0");
                        if (o->t < fp->max_size)
                                fp->max_size = o->t;
                        break;
                default:
                        fp->replace = o->b;
                }
        }
        return 0;
}

int scratch_size(uint32_t cores, uint64_t per_core_gib, bool have_opt, uint64_t opt_gib, uint64_t max_size,
                 uint64_t *ret, struct hv_error *e) {
        uint64_t gib = have_opt ? opt_gib : (uint64_t)cores * per_core_gib;
        if (have_opt && opt_gib == 0) {
                *ret = 0;
                return 0;
        }
        if (!have_opt && cores == 0)
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "cores must be at least 1");
        if (gib > (UINT64_MAX >> 30) || (gib << 30) > max_size) {
                char a[32];
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "scratch disk of %llu GiB is larger than MaxScratchSize (%s)",
                               (unsigned long long)gib, hv_format_size(max_size, a, sizeof(a)));
        }
        if (gib == 0)
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL,
                               "scratch size is 0 GiB (ScratchPerCoreGiB=0 and no scratch_gib); pass scratch_gib=0 for no scratch disk");
        *ret = gib << 30;
        return 0;
}

enum { C_MEMORY, C_SCRATCH, C_FS, C_HV, C_NET, C_TRANSIENT, C_START, C_BIND, C_USER_DATA, C_META, C_NETCONF, C_FILES, C_VARS };
static const struct opt_spec create_specs[] = {
        [C_MEMORY] = { "memory_mib", 't' }, [C_SCRATCH] = { "scratch_gib", 't' }, [C_FS] = { "scratch_fs", 's' },
        [C_HV] = { "hypervisor", 's' },     [C_NET] = { "network", 's' },          [C_TRANSIENT] = { "transient", 'b' },
        [C_START] = { "start", 'b' },       [C_BIND] = { "bind_to_caller", 'b' },
        /* the context: its values were read into a context_input by the bus edge (context.c checks them) */
        [C_USER_DATA] = { "user_data", OPT_BYTES },  [C_META] = { "meta_data", OPT_STRING_MAP },
        [C_NETCONF] = { "network_config", OPT_BYTES }, [C_FILES] = { "context_files", OPT_BYTES_MAP },
        [C_VARS] = { "context_vars", OPT_STRING_MAP },
};
#define MAX_MEMORY_MIB (16ULL << 20) /* 16 TiB */

int opts_create(const struct opt_value *v, size_t n, uint32_t cores, const struct create_defaults *d,
                struct create_params *cp, struct hv_error *e) {
        size_t idx[OPTS_MAX];
        *cp = (struct create_params){ .start = true };
        int r = check_keys(v, n, create_specs, ELEMENTSOF(create_specs), idx, e);
        if (r < 0)
                return r;
        bool have_memory = false, have_scratch = false;
        uint64_t scratch_gib = 0;
        const char *hv = d->hypervisor, *fs = d->scratch_fs, *net = d->network;
        for (size_t i = 0; i < n; i++) {
                const struct opt_value *o = &v[i];
                switch (idx[i]) {
                case C_MEMORY:
                        cp->memory_mib = o->t;
                        have_memory = true;
                        break;
                case C_SCRATCH:
                        scratch_gib = o->t;
                        have_scratch = true;
                        break;
                case C_FS:
                        fs = o->s;
                        break;
                case C_HV:
                        hv = o->s;
                        break;
                case C_NET:
                        net = o->s;
                        break;
                case C_TRANSIENT:
                        cp->transient = o->b;
                        break;
                case C_START:
                        cp->start = o->b;
                        break;
                case C_BIND:
                        cp->bind_to_caller = o->b;
                        break;
                default: /* the context */
                        break;
                }
        }
        if (cp->transient && !cp->start)
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL,
                               "a transient machine starts at once and is removed when its guest stops: start=false cannot go with transient=true");
        long cpus = d->online_cpus > 0 ? d->online_cpus : 1;
        unsigned max_cores = (unsigned)cpus * d->cpu_overcommit;
        if (cores == 0 || cores > max_cores)
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "cores must be between 1 and %u (%ld online CPUs × CpuOvercommit=%u), got %u",
                               max_cores, cpus, d->cpu_overcommit, cores);
        if (have_memory && (cp->memory_mib == 0 || cp->memory_mib > MAX_MEMORY_MIB))
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "memory_mib must be between 1 and %llu", MAX_MEMORY_MIB);
        if (!have_memory)
                cp->memory_mib = (uint64_t)cores * d->memory_per_core_mib;
        if (dom_hv_parse(hv, &cp->hv) < 0)
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "unknown hypervisor \"%.32s\" (kvm, qemu, xen, xen-pv)", hv);
        if (strcmp(fs, "ext4") && strcmp(fs, "ext3") && strcmp(fs, "ext2"))
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "unknown scratch_fs \"%.32s\" (ext4, ext3, ext2)", fs);
        if (*net && !hv_name_valid(net))
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "invalid network name \"%.64s\"", net);
        r = scratch_size(cores, d->scratch_per_core_gib, have_scratch, scratch_gib, d->max_scratch_size, &cp->scratch_bytes, e);
        if (r < 0)
                return r;
        cp->cores = cores;
        snprintf(cp->scratch_fs, sizeof(cp->scratch_fs), "%s", fs);
        snprintf(cp->network, sizeof(cp->network), "%s", net);
        return 0;
}

static const struct opt_spec destroy_specs[] = { { "keep_disks", 'b' } };

int opts_destroy(const struct opt_value *v, size_t n, bool *keep_disks, struct hv_error *e) {
        size_t idx[OPTS_MAX];
        *keep_disks = false;
        int r = check_keys(v, n, destroy_specs, ELEMENTSOF(destroy_specs), idx, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                *keep_disks = v[i].b;
        return 0;
}

static const struct opt_spec stop_specs[] = { { "force", 'b' }, { "timeout_sec", 't' } };

int opts_stop(const struct opt_value *v, size_t n, struct stop_params *sp, struct hv_error *e) {
        size_t idx[OPTS_MAX];
        *sp = (struct stop_params){ 0 };
        int r = check_keys(v, n, stop_specs, ELEMENTSOF(stop_specs), idx, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (idx[i] == 0)
                        sp->force = v[i].b;
                else {
                        sp->have_timeout = true;
                        sp->timeout_sec = v[i].t;
                }
        }
        if (sp->have_timeout && sp->timeout_sec > MAX_STOP_TIMEOUT_SEC)
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "timeout_sec must be at most %u (one day), got %llu", MAX_STOP_TIMEOUT_SEC,
                               (unsigned long long)sp->timeout_sec);
        return 0;
}

int capacity_check(const struct capacity *c, unsigned cores, uint64_t memory_mib, struct hv_error *e) {
        long cpus = c->online_cpus > 0 ? c->online_cpus : 1;
        uint64_t max_cores = (uint64_t)cpus * c->cpu_overcommit;
        if (c->committed_cores + cores > max_cores)
                return hv_fail(e, HV_E_LIMITS, EBUSY,
                               "not enough CPU: %llu cores committed to machines + %u asked = %llu, more than %llu (%ld online CPUs × CpuOvercommit=%u)",
                               (unsigned long long)c->committed_cores, cores, (unsigned long long)(c->committed_cores + cores),
                               (unsigned long long)max_cores, cpus, c->cpu_overcommit);
        uint64_t max_mib = c->ram_mib > c->reserved_memory_mib ? c->ram_mib - c->reserved_memory_mib : 0;
        if (c->committed_memory_mib + memory_mib > max_mib)
                return hv_fail(e, HV_E_LIMITS, EBUSY,
                               "not enough memory: %llu MiB committed to machines + %llu MiB asked = %llu MiB, more than %llu MiB "
                               "(%llu MiB of RAM − ReservedMemoryMiB=%llu)",
                               (unsigned long long)c->committed_memory_mib, (unsigned long long)memory_mib,
                               (unsigned long long)(c->committed_memory_mib + memory_mib), (unsigned long long)max_mib,
                               (unsigned long long)c->ram_mib, (unsigned long long)c->reserved_memory_mib);
        return 0;
}

static const struct opt_spec subscribe_specs[] = {
        { "endorser_dn", 's' }, { "ca_dn", 's' }, { "auto_fetch", 'b' }, { "refresh_sec", 't' }, { "name_prefix", 's' },
};

static int set_dn(char *dst, size_t len, const char *key, const char *v, struct hv_error *e) {
        if (v[0] != '/' || strlen(v) >= len || !strchr(v, '='))
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "option %s must be a DN in OpenSSL's one-line form "
                               "(\"/DC=org/DC=example/CN=…\", as `openssl x509 -noout -subject -nameopt compat` prints it)", key);
        snprintf(dst, len, "%s", v);
        return 0;
}

int opts_subscribe(const struct opt_value *v, size_t n, struct subscribe_params *sp, struct hv_error *e) {
        size_t idx[OPTS_MAX];
        *sp = (struct subscribe_params){ 0 };
        int r = check_keys(v, n, subscribe_specs, ELEMENTSOF(subscribe_specs), idx, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                const struct opt_value *o = &v[i];
                switch (idx[i]) {
                case 0:
                        r = set_dn(sp->endorser_dn, sizeof(sp->endorser_dn), o->key, o->s, e);
                        break;
                case 1:
                        r = set_dn(sp->ca_dn, sizeof(sp->ca_dn), o->key, o->s, e);
                        break;
                case 2:
                        sp->auto_fetch = o->b;
                        break;
                case 3:
                        if (o->t < 60 || o->t > 7 * 86400)
                                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "option refresh_sec must be between 60 and 604800 seconds");
                        sp->refresh_sec = o->t;
                        break;
                default: {
                        size_t l = strlen(o->s);
                        if (l > 32 || (l && !isalnum((unsigned char)o->s[0])) || strspn(o->s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != l)
                                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "option name_prefix must be at most 32 letters, digits, '.', '_' "
                                               "or '-', starting with a letter or digit");
                        snprintf(sp->prefix, sizeof(sp->prefix), "%s", o->s);
                }
                }
                if (r < 0)
                        return r;
        }
        if (!sp->endorser_dn[0] || !sp->ca_dn[0])
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "options endorser_dn and ca_dn are required: a subscription trusts one "
                               "endorser, pinned by its certificate's subject and issuer");
        return 0;
}

static const struct opt_spec unsubscribe_specs[] = { { "remove_images", 'b' } };

int opts_unsubscribe(const struct opt_value *v, size_t n, bool *remove_images, struct hv_error *e) {
        size_t idx[OPTS_MAX];
        *remove_images = false;
        int r = check_keys(v, n, unsubscribe_specs, ELEMENTSOF(unsubscribe_specs), idx, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                *remove_images = v[i].b;
        return 0;
}
