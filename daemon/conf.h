/* conf.h: hvwgd.conf, an INI file plus drop-ins; the parser is pure (text in, struct out). */
#pragma once
#include <stdio.h>
#include "util.h"

#define HV_CONF_MAX_DIRS 32

struct hv_conf {
        /* [Storage] */
        char image_root[512];
        char machine_root[512];
        uint64_t max_image_size;
        char allowed_source_dirs[HV_CONF_MAX_DIRS][512];
        unsigned n_allowed_source_dirs;
        /* [Machine] */
        uint64_t scratch_per_core_gib;
        uint64_t memory_per_core_mib;
        char scratch_filesystem[16];
        char hypervisor[16];
        char libvirt_uri[512];
        char network[128];
        uint64_t max_scratch_size;
        uint64_t scratch_bytes_per_inode;
        char scratch_allocation[16]; /* sparse | fallocate */
        char scratch_devices[HV_CONF_MAX_DIRS][512]; /* block devices or globs */
        unsigned n_scratch_devices;
        unsigned cpu_overcommit;    /* all machines together may have at most online CPUs × this cores */
        uint64_t reserved_memory_mib; /* RAM kept for the host: machines get at most RAM minus this */
        unsigned keep_console_logs;      /* console logs of removed machines kept in MachineRoot/.logs */
        unsigned keep_console_logs_days; /* … and for at most this many days */
        unsigned stop_timeout_sec;  /* StopMachine: ACPI shutdown, then forced off after this */
        uint64_t max_context_size;  /* CreateMachine's context (user-data, files, …) in bytes */
        /* [Fetch] */
        unsigned max_concurrent;
        unsigned connect_timeout_sec;
        unsigned stall_timeout_sec;
        unsigned retries;          /* a dropped, stalled or 5xx download is tried again this often */
        unsigned retry_max_delay_sec; /* the backoff between tries grows to this at most */
        unsigned max_redirects;
        char inflate[16];          /* isal | zlib */
        unsigned inflate_threads;  /* threads decoding one gzip stream; 0 = the online CPUs, at most 8 */
        char inflate_speculate[8]; /* auto | yes | no: single-member gzip decoded from blocks found by trial */
        char ca_path[512];         /* empty: the system default */
        char proxy[512];           /* empty: libcurl's standard environment variables */
        unsigned jobs_per_user;    /* non-root callers: jobs queued or running */
        unsigned running_per_user; /* non-root callers: running jobs; 0 = MaxConcurrent - 1 (at least 1) */
        unsigned max_queued_jobs;  /* all callers, root included */
        uint64_t max_download_size;    /* compressed bytes; 0 = derived from MaxImageSize */
        uint64_t low_speed_limit;      /* bytes/s averaged over low_speed_time_sec; 0 = off */
        unsigned low_speed_time_sec;
        unsigned max_download_time_sec; /* 0 = no overall deadline */
        uint64_t max_bandwidth;         /* bytes/s of all downloads together; 0 = no limit */
        bool allow_loopback_redirects;
        /* [Lists] */
        char lists_ca_path[512];        /* CA certificates and CRLs for image list signatures (c_rehash layout) */
        uint64_t max_list_size;         /* bytes of one signed image list */
        unsigned refresh_sec;           /* a subscription's default refresh interval */
};

/* The effective bounds the derived defaults stand for. */
uint64_t hv_conf_max_download(const struct hv_conf *c);
/* Threads decoding one gzip stream: InflateThreads, or (0) the online CPUs; 1 to 8. */
unsigned hv_conf_inflate_threads(const struct hv_conf *c, long online_cpus);
/* Whether decoding on `threads` threads also starts chunks at blocks found by trial (InflateSpeculate:
 * yes, no, or auto: with 4 threads or more — on fewer the extra work costs more than it gains). */
bool hv_conf_inflate_speculate(const struct hv_conf *c, unsigned threads);
unsigned hv_conf_running_per_user(const struct hv_conf *c);

/* A read-only snapshot shared by the jobs started under it: a reload makes a new one and the
 * running jobs keep theirs. */
struct hv_conf_snap {
        _Atomic unsigned refs;
        struct hv_conf c;
};
struct hv_conf_snap *hv_conf_snap_new(const struct hv_conf *c);
struct hv_conf_snap *hv_conf_snap_ref(struct hv_conf_snap *s);
void hv_conf_snap_unref(struct hv_conf_snap *s);

/* Reload: copies what may change while hvwgd runs from `next` into `live`; keys that cannot
 * (the stores, the libvirt URI, the hypervisor) keep their values and are named in `kept`
 * ("" when none). Pure. */
void hv_conf_apply_reload(struct hv_conf *live, const struct hv_conf *next, char *kept, size_t kept_len);

typedef void (*hv_conf_warn_fn)(const char *file, unsigned line, const char *msg, void *userdata);

void hv_conf_defaults(struct hv_conf *c);
/* Applies one file's text over *c. Unknown keys call warn; malformed lines, unknown sections and
 * bad values fail with "FILE:LINE: ..." in e. */
int hv_conf_parse(struct hv_conf *c, const char *text, size_t len, const char *file,
                  hv_conf_warn_fn warn, void *userdata, struct hv_error *e);
/* Loads `path` (must exist when `required`), then PATH.d/ *.conf in lexical order. */
int hv_conf_load(struct hv_conf *c, const char *path, bool required,
                 hv_conf_warn_fn warn, void *userdata, struct hv_error *e);
/* The effective configuration in the file's syntax (hvwgd --check-config). */
void hv_conf_print(FILE *f, const struct hv_conf *c);
