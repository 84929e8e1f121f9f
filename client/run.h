/* run.h: hvwg-run's pure logic (no I/O): what the batch system allocated, the machine's name,
 * durations, and the script that runs the command in the guest. Unit-tested directly. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The exit codes of hvwg-run besides the command's own (0-255; 128+N for signal N). */
enum {
        RUN_EXIT_NO_STATUS = 123, /* the VM ended (crash, power-off) without the command's status */
        RUN_EXIT_TIMEOUT = 124,   /* --timeout passed: the VM was destroyed */
        RUN_EXIT_FAILED = 125,    /* hvwg-run could not run it: usage, hvwgd unreachable, the VM not created */
};

/* Reads an environment variable (getenv in hvwg-run, a table in tests). */
typedef const char *(*run_getenv_fn)(const char *name, void *ud);

struct run_alloc {
        unsigned cores;
        const char *cores_from;  /* the variable it came from, or "default" */
        uint64_t memory_mib;     /* 0: not allocated (hvwgd's MemoryPerCoreMiB then) */
        const char *memory_from;
        char job_id[48];         /* the batch job, "" outside one */
        const char *system;      /* "slurm", "htcondor" or "" */
};

/* Cores: SLURM_CPUS_PER_TASK, SLURM_CPUS_ON_NODE, HTCondor's machine ad Cpus (ad: its text, may
 * be NULL), OMP_NUM_THREADS, else 1. Memory: SLURM_MEM_PER_NODE, SLURM_MEM_PER_CPU × cores, the
 * ad's Memory (MiB), else 0. The job: SLURM_JOB_ID (an array task's own), the job ad's
 * ClusterId.ProcId (job_ad: its text). Malformed values are skipped. */
void run_alloc_from_env(run_getenv_fn get, void *ud, const char *machine_ad, const char *job_ad, struct run_alloc *a);
/* The value of "Key = value" in a ClassAd text (numbers or quoted strings, quotes dropped). */
bool run_classad_value(const char *ad, const char *key, char *out, size_t len);
/* A machine name from the job and what makes it unique on this host and start:
 * "slurm-4711-node12-5f3a9c1e" (≤ 64 characters, [A-Za-z0-9._-]). */
void run_machine_name(const struct run_alloc *a, const char *host, uint32_t unique, char *out, size_t len);
/* "90", "90s", "15m", "2h", "1d" → seconds (> 0). -EINVAL. */
int run_parse_duration(const char *s, uint64_t *ret);
/* The script that runs argv in the guest: mounts LABEL=scratch as the working directory,
 * exports context.sh, writes "HVWG-RUN-BEGIN nonce", the command's output, then a newline and
 * "HVWG-RUN-END nonce STATUS" to the console, and powers the VM off. malloc'ed; NULL: no memory. */
char *run_build_script(char *const *argv, int argc, const char *nonce);
/* A console line: 1 begin marker, 2 end marker (status in *status), 0 other. */
int run_marker(const char *line, const char *nonce, int *status);
