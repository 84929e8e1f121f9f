/* hvwg-run: runs one command in a fresh transient VM from a HEPiX image and behaves like the
 * command itself: its output on stdout, its exit status. Made for batch jobs (Slurm,
 * HTCondor): the cores (and memory) come from the job's allocation, the VM is bound to this
 * process's bus connection, and it is gone afterwards whatever happens (SIGTERM, SIGKILL,
 * timeout). Exit codes: the command's (128+N for signal N), 123 the VM ended without the
 * command's status, 124 --timeout, 125 hvwg-run could not run it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "run.h"

#define MAX_LIST 256
#define FILE_MAX (256u << 20)

static struct {
        const char *image, *cores, *memory, *scratch_per_core, *timeout, *name;
        const char *env[MAX_LIST], *files[MAX_LIST];
        unsigned n_env, n_files;
        bool console, verbose;
} opt;

static void usage(FILE *f) {
        fprintf(f, "Usage: hvwg-run --image=NAME [OPTIONS] -- COMMAND [ARG...]\n\n"
                   "Runs COMMAND in a fresh transient VM made from the image NAME, on its scratch disk, and\n"
                   "exits with its status. The VM is removed afterwards, whatever happens.\n\n"
                   "  --image=NAME            the image (hvwgctl images)\n"
                   "  --cores=N               default: the batch allocation (SLURM_CPUS_PER_TASK,\n"
                   "                          SLURM_CPUS_ON_NODE, HTCondor's Cpus, OMP_NUM_THREADS), else 1\n"
                   "  --memory=SIZE           default: SLURM_MEM_PER_NODE, SLURM_MEM_PER_CPU × cores,\n"
                   "                          HTCondor's Memory, else cores × hvwgd's MemoryPerCoreMiB\n"
                   "  --scratch-per-core=SIZE scratch disk per core, whole GiB (default hvwgd's ScratchPerCoreGiB)\n"
                   "  --env KEY=VALUE         an environment variable of the command (repeatable)\n"
                   "  --file NAME=PATH        a file put in the command's working directory (repeatable)\n"
                   "  --timeout=DURATION      destroy the VM after DURATION (90s, 15m, 2h, 1d): exit 124\n"
                   "  --name=NAME             the machine's name (default: from the batch job id)\n"
                   "  --console               the whole console (the boot too) on stderr\n"
                   "  --bus-address=ADDR      hvwgd on another bus\n"
                   "  --verbose, -h, --help, --version\n\n"
                   "Exit status: the command's (128+N if a signal N ended it); 123 the VM ended without the\n"
                   "command's status (crash, power-off); 124 the timeout passed; 125 hvwg-run could not run it\n"
                   "(usage, hvwgd unreachable, image missing, no capacity); 130/143 interrupted (SIGINT/SIGTERM).\n");
}

static const char *env_get(const char *name, void *ud) {
        (void)ud;
        return getenv(name);
}

/* An HTCondor ad file named by an environment variable, or NULL. */
static char *read_ad(const char *var) {
        const char *p = getenv(var);
        char *text = NULL;
        return p && hv_read_file(p, 1 << 20, &text, NULL) >= 0 ? text : NULL;
}

/* ---- the call ---- */

static int append_env_and_files(sd_bus_message *m, const char *script, const char *job) {
        /* context_files: the script (as prolog.sh for the HEPiX context service) and --file */
        int r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "context_files");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "a{say}");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{say}");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'e', "say");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "prolog.sh");
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', script, strlen(script));
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        char names[4096] = "";
        for (unsigned i = 0; i < opt.n_files && r >= 0; i++) {
                const char *eq = strchr(opt.files[i], '=');
                _cleanup_free_ char *n = strndup(opt.files[i], (size_t)(eq - opt.files[i]));
                _cleanup_free_ char *data = NULL;
                size_t len = 0;
                if (!n)
                        return -ENOMEM;
                if ((r = hv_read_file(eq + 1, FILE_MAX, &data, &len)) < 0) {
                        fprintf(stderr, "hvwg-run: cannot read %s for --file %s: %s\n", eq + 1, n, strerror(-r));
                        return -EINVAL;
                }
                snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", *names ? " " : "", n);
                r = sd_bus_message_open_container(m, 'e', "say");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", n);
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 'y', data, len);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        for (int k = 0; k < 3 && r >= 0; k++)
                r = sd_bus_message_close_container(m);
        /* context_vars: the command's environment, and what the script needs */
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "context_vars");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "a{ss}");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{ss}");
        if (r >= 0)
                r = sd_bus_message_append(m, "{ss}", "HVWG_RUN_JOB", job);
        if (r >= 0)
                r = sd_bus_message_append(m, "{ss}", "HVWG_RUN_FILES", names);
        for (unsigned i = 0; i < opt.n_env && r >= 0; i++) {
                const char *eq = strchr(opt.env[i], '=');
                _cleanup_free_ char *k = strndup(opt.env[i], (size_t)(eq - opt.env[i]));
                if (!k)
                        return -ENOMEM;
                r = sd_bus_message_append(m, "{ss}", k, eq + 1);
        }
        for (int k = 0; k < 3 && r >= 0; k++)
                r = sd_bus_message_close_container(m);
        /* user_data: the same script, for cloud-init images (it runs once, whoever starts it) */
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "user_data");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "ay");
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', script, strlen(script));
        for (int k = 0; k < 2 && r >= 0; k++)
                r = sd_bus_message_close_container(m);
        return r;
}

static int create(sd_bus *bus, const struct run_alloc *a, const char *name, const char *script, unsigned cores, uint64_t memory_mib,
                  uint64_t scratch_gib) {
        sd_bus_message *m = NULL;
        int r = ctl_new_call(bus, &m, "CreateMachine");
        if (r < 0)
                return RUN_EXIT_FAILED;
        r = sd_bus_message_append(m, "ssu", opt.image, name, cores);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}", "transient", "b", 1);
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}", "bind_to_caller", "b", 1);
        if (r >= 0 && memory_mib)
                r = sd_bus_message_append(m, "{sv}", "memory_mib", "t", memory_mib);
        if (r >= 0 && opt.scratch_per_core)
                r = sd_bus_message_append(m, "{sv}", "scratch_gib", "t", scratch_gib);
        if (r >= 0)
                r = append_env_and_files(m, script, *a->job_id ? a->job_id : "none");
        if (r == -EINVAL) {
                sd_bus_message_unref(m);
                return RUN_EXIT_FAILED;
        }
        int code = ctl_run_job(bus, m, r, "CreateMachine");
        if (code == EXIT_OK)
                return 0;
        return code == EXIT_CANCELED ? 128 + (interrupted ? interrupted : SIGTERM) : RUN_EXIT_FAILED;
}

static void destroy(sd_bus *bus, const char *name) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(bus, BUS_NAME, OBJ, MGR, "DestroyMachine", &e, NULL, "sa{sv}", name, 0);
        if (r < 0 && !sd_bus_error_has_name(&e, HV_ERROR_NO_SUCH_MACHINE))
                fprintf(stderr, "hvwg-run: cannot destroy %s: %s\n", name, e.message ? e.message : strerror(-r));
        sd_bus_error_free(&e);
}

/* Follows the console: the command's output (between the markers) to stdout, all of it to
 * stderr with --console. The status once the end marker is seen, else -1. */
struct follow {
        int fd;
        off_t pos;
        char line[8192];
        size_t len;
        const char *nonce;
        bool inside;
        bool newline_due; /* the end of the last output line: written once another line follows */
        int status;
        uint64_t begin_usec, end_usec; /* when the markers were seen */
};

/* --verbose: where the time went. */
static uint64_t t_start, t_created;

static void take_line(struct follow *f) {
        f->line[f->len] = 0;
        if (f->len && f->line[f->len - 1] == '\r')
                f->line[--f->len] = 0;
        int st = 0, k = run_marker(f->line, f->nonce, &st);
        if (opt.console)
                fprintf(stderr, "%s\n", f->line);
        if (k == 1) {
                f->inside = true;
                f->newline_due = false;
                f->begin_usec = hv_mono_usec();
        } else if (k == 2) {
                f->end_usec = hv_mono_usec();
                /* the newline before the marker is the script's: output without a final newline
                 * stays without */
                f->inside = false;
                f->status = st;
        } else if (f->inside) {
                if (f->newline_due)
                        fputc('\n', stdout);
                fwrite(f->line, 1, f->len, stdout);
                f->newline_due = true;
                fflush(stdout);
        }
        f->len = 0;
}

static void drain(struct follow *f) {
        char buf[65536];
        for (;;) {
                ssize_t n = pread(f->fd, buf, sizeof(buf), f->pos);
                if (n <= 0)
                        return;
                f->pos += n;
                for (ssize_t i = 0; i < n; i++) {
                        if (buf[i] == '\n' || f->len == sizeof(f->line) - 1)
                                take_line(f);
                        if (buf[i] != '\n')
                                f->line[f->len++] = buf[i];
                }
        }
}

static int run(sd_bus *bus, const char *name, const char *nonce, uint64_t timeout_sec, struct ctl_machine_watch *st) {
        struct follow f = { .nonce = nonce, .status = -1, .fd = -1 };
        uint64_t until = timeout_sec ? hv_mono_usec() + timeout_sec * 1000000ULL : 0, ended_at = 0, next_open = 0;
        int code = -1;
        while (code < 0) {
                if (f.fd < 0 && !st->removed && hv_mono_usec() >= next_open) {
                        f.fd = ctl_open_console(bus, name, false); /* none until the guest starts writing */
                        next_open = hv_mono_usec() + 1000000ULL;
                }
                if (f.fd >= 0)
                        drain(&f);
                if (st->removed) {
                        if (f.fd >= 0)
                                drain(&f);
                        if (f.status >= 0)
                                code = f.status;
                        else {
                                fprintf(stderr, "hvwg-run: the VM %s ended (%s) before the command reported its status%s\n", name,
                                        st->reason, strcmp(st->reason, "crash") == 0 ? ": it crashed" : "");
                                code = RUN_EXIT_NO_STATUS;
                        }
                        break;
                }
                if (interrupted) {
                        fprintf(stderr, "hvwg-run: %s: destroying the VM %s\n", strsignal(interrupted), name);
                        destroy(bus, name);
                        code = 128 + interrupted;
                        break;
                }
                if (until && hv_mono_usec() >= until) {
                        fprintf(stderr, "hvwg-run: the timeout (%llu s) passed: destroying the VM %s\n", (unsigned long long)timeout_sec, name);
                        destroy(bus, name);
                        code = RUN_EXIT_TIMEOUT;
                        break;
                }
                /* the command has ended and the guest stopped: hvwgd removes the machine; should
                 * that not come, destroy it ourselves after a while */
                if ((f.status >= 0 || ctl_machine_stopped(st->state)) && !ended_at)
                        ended_at = hv_mono_usec();
                if (ended_at && hv_mono_usec() - ended_at > 60 * 1000000ULL) {
                        destroy(bus, name);
                        code = f.status >= 0 ? f.status : RUN_EXIT_NO_STATUS;
                        break;
                }
                int r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        fprintf(stderr, "hvwg-run: lost the bus (%s): hvwgd removes the VM %s\n", strerror(-r), name);
                        code = RUN_EXIT_FAILED;
                        break;
                }
                if (r == 0)
                        sd_bus_wait(bus, 100000);
        }
        if (f.len)
                take_line(&f);
        if (f.fd >= 0)
                close(f.fd);
        if (opt.verbose && f.begin_usec && f.end_usec) {
                uint64_t t_gone = hv_mono_usec();
                fprintf(stderr, "hvwg-run: timing: create %.2f s, boot %.2f s, command %.2f s, power-off and removal %.2f s, total %.2f s\n",
                        (double)(t_created - t_start) / 1e6, (double)(f.begin_usec - t_created) / 1e6,
                        (double)(f.end_usec - f.begin_usec) / 1e6, (double)(t_gone - f.end_usec) / 1e6, (double)(t_gone - t_start) / 1e6);
        }
        return code;
}

int main(int argc, char **argv) {
        enum { O_IMAGE = 256, O_CORES, O_MEMORY, O_SCRATCH, O_ENV, O_FILE, O_TIMEOUT, O_NAME, O_CONSOLE, O_ADDR, O_VERBOSE, O_VERSION };
        static const struct option opts[] = {
                { "image", required_argument, NULL, O_IMAGE },   { "cores", required_argument, NULL, O_CORES },
                { "memory", required_argument, NULL, O_MEMORY }, { "scratch-per-core", required_argument, NULL, O_SCRATCH },
                { "env", required_argument, NULL, O_ENV },       { "file", required_argument, NULL, O_FILE },
                { "timeout", required_argument, NULL, O_TIMEOUT }, { "name", required_argument, NULL, O_NAME },
                { "console", no_argument, NULL, O_CONSOLE },     { "bus-address", required_argument, NULL, O_ADDR },
                { "verbose", no_argument, NULL, O_VERBOSE },     { "version", no_argument, NULL, O_VERSION },
                { "help", no_argument, NULL, 'h' },              {}
        };
        ctl_program = "hvwg-run";
        int c;
        /* '+': options end at the command (its own options are its own) */
        while ((c = getopt_long(argc, argv, "+h", opts, NULL)) >= 0) {
                switch (c) {
                case O_IMAGE: opt.image = optarg; break;
                case O_CORES: opt.cores = optarg; break;
                case O_MEMORY: opt.memory = optarg; break;
                case O_SCRATCH: opt.scratch_per_core = optarg; break;
                case O_ENV:
                case O_FILE: {
                        const char **list = c == O_ENV ? opt.env : opt.files;
                        unsigned *n = c == O_ENV ? &opt.n_env : &opt.n_files;
                        const char *eq = strchr(optarg, '=');
                        if (!eq || eq == optarg || *n == MAX_LIST) {
                                fprintf(stderr, "hvwg-run: --%s takes %s (at most %d)\n", c == O_ENV ? "env" : "file",
                                        c == O_ENV ? "KEY=VALUE" : "NAME=PATH", MAX_LIST);
                                return RUN_EXIT_FAILED;
                        }
                        list[(*n)++] = optarg;
                        break;
                }
                case O_TIMEOUT: opt.timeout = optarg; break;
                case O_NAME: opt.name = optarg; break;
                case O_CONSOLE: opt.console = true; break;
                case O_ADDR: arg.address = optarg; break;
                case O_VERBOSE: arg.verbose = opt.verbose = true; break;
                case O_VERSION: printf("hvwg-run %s\n", HVWGD_VERSION); return 0;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return RUN_EXIT_FAILED;
                }
        }
        if (!opt.image || optind >= argc) {
                fprintf(stderr, "hvwg-run: %s (see --help)\n", !opt.image ? "--image=NAME is needed" : "no command after --");
                return RUN_EXIT_FAILED;
        }
        _cleanup_free_ char *machine_ad = read_ad("_CONDOR_MACHINE_AD");
        _cleanup_free_ char *job_ad = read_ad("_CONDOR_JOB_AD");
        struct run_alloc a;
        run_alloc_from_env(env_get, NULL, machine_ad, job_ad, &a);
        unsigned cores = a.cores;
        uint64_t memory = a.memory_mib << 20, scratch = 0, timeout = 0;
        if (opt.cores && hv_parse_uint(opt.cores, 1, 4096, &cores) < 0) {
                fprintf(stderr, "hvwg-run: invalid --cores %s\n", opt.cores);
                return RUN_EXIT_FAILED;
        }
        if (opt.memory && (hv_parse_size(opt.memory, &memory) < 0 || memory < (1ULL << 20))) {
                fprintf(stderr, "hvwg-run: invalid --memory %s (e.g. 4G)\n", opt.memory);
                return RUN_EXIT_FAILED;
        }
        if (opt.scratch_per_core && (hv_parse_size(opt.scratch_per_core, &scratch) < 0 || scratch % (1ULL << 30))) {
                fprintf(stderr, "hvwg-run: invalid --scratch-per-core %s (whole GiB, e.g. 20G)\n", opt.scratch_per_core);
                return RUN_EXIT_FAILED;
        }
        if (opt.timeout && run_parse_duration(opt.timeout, &timeout) < 0) {
                fprintf(stderr, "hvwg-run: invalid --timeout %s (e.g. 90s, 15m, 2h, 1d)\n", opt.timeout);
                return RUN_EXIT_FAILED;
        }
        uint8_t rnd[8];
        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
                fprintf(stderr, "hvwg-run: no random bytes: %m\n");
                return RUN_EXIT_FAILED;
        }
        char host[256] = "", name[HV_NAME_MAX + 1], nonce[17];
        gethostname(host, sizeof(host) - 1);
        run_machine_name(&a, host, (uint32_t)rnd[0] << 24 | (uint32_t)rnd[1] << 16 | (uint32_t)rnd[2] << 8 | rnd[3], name, sizeof(name));
        if (opt.name)
                snprintf(name, sizeof(name), "%.64s", opt.name);
        hv_hex(rnd, sizeof(rnd), nonce);
        _cleanup_free_ char *script = run_build_script(argv + optind, argc - optind, nonce);
        if (!script) {
                fprintf(stderr, "hvwg-run: out of memory\n");
                return RUN_EXIT_FAILED;
        }
        if (opt.verbose)
                fprintf(stderr, "hvwg-run: machine %s: image %s, %u cores (%s), memory %s (%s)%s%s\n", name, opt.image, cores,
                        opt.cores ? "--cores" : a.cores_from, memory ? "set" : "hvwgd's default", opt.memory ? "--memory" : a.memory_from,
                        *a.job_id ? ", job " : "", a.job_id);
        ctl_catch_signals();
        arg.quiet = true;
        sd_bus *bus = NULL;
        if (ctl_connect(&bus) != 0)
                return RUN_EXIT_FAILED;
        struct ctl_machine_watch st = { .name = name };
        if (ctl_watch_machine(bus, &st) != 0) {
                sd_bus_flush_close_unref(bus);
                return RUN_EXIT_FAILED;
        }
        t_start = hv_mono_usec();
        int code = create(bus, &a, name, script, cores, memory >> 20, (scratch >> 30) * cores);
        t_created = hv_mono_usec();
        if (code == 0)
                code = run(bus, name, nonce, timeout, &st);
        sd_bus_flush_close_unref(bus);
        return code;
}
