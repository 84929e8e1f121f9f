/* hvwgctl: the operators' client of hvwgd, and the example client for batch-system authors.
 * This file: options, the commands and their help; the commands are in images.c, machines.c
 * and jobs.c. Exit codes: 0 success, 1 the operation failed, 2 usage error (also when hvwgd
 * says InvalidArgs), 3 canceled, 4 daemon not reachable or access denied. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

struct command {
        const char *name, *args;
        int min, max;
        const char *summary;
        const char *options; /* per-command options, one per line */
};

static const struct command commands[] = {
        { "status", "", 0, 0, "daemon properties: stores, hypervisor, jobs, capacity", NULL },
        { "fetch", "URI [NAME]", 1, 2, "import an image (waits with progress; Ctrl-C cancels)",
          "  --sha512=HEX      expected SHA-512 of the download\n"
          "  --size=BYTES      expected size of the download\n"
          "  --max-size=SIZE   refuse a larger image (e.g. 20G)\n"
          "  --replace         replace an image of that name\n"
          "  --raw             the source is not gzip-compressed\n" },
        { "images", "", 0, 0, "list images", NULL },
        { "inspect", "NAME", 1, 1, "an image: SHA-512, OS, kernels, the machines using it, its partition table",
          "  --lint              the findings for image producers (exit 1 on an error)\n" },
        { "rm", "NAME", 1, 1, "remove an image", NULL },
        { "create", "IMAGE NAME --cores=N", 2, 2, "create a machine (waits; Ctrl-C cancels)",
          "  --cores=N         virtual CPUs (required)\n"
          "  --memory=SIZE     memory, whole MiB (default cores × MemoryPerCoreMiB)\n"
          "  --scratch=SIZE    scratch disk, whole GiB; 0 for none (default cores × ScratchPerCoreGiB)\n"
          "  --scratch-fs=FS   ext4, ext3 or ext2\n"
          "  --hypervisor=H    kvm, qemu, xen or xen-pv\n"
          "  --network=NET     libvirt network for a NIC\n"
          "  --transient       removed with its disks when its guest stops (the console log is kept)\n"
          "  --no-start        define it without starting it\n"
          "  the context disk (ISO 9660, label cidata; see hvwgctl(1)):\n"
          "  --user-data=FILE  cloud-init user-data\n"
          "  --meta-data=KEY=VALUE       a meta-data key (repeatable; instance-id and local-hostname are set)\n"
          "  --network-config=FILE       cloud-init network-config\n"
          "  --context-file=NAME=FILE    a file of the HEPiX context: prolog.sh, epilog.sh, … (repeatable)\n"
          "  --context-var=KEY=VALUE     a variable in context.sh, shell-quoted (repeatable)\n" },
        { "machines", "", 0, 0, "list machines", NULL },
        { "show", "NAME", 1, 1, "a machine: state and why, owner, image, disks, console log", NULL },
        { "start", "NAME", 1, 1, "start a machine", NULL },
        { "stop", "NAME", 1, 1, "stop a machine: ACPI shutdown, forced off after a timeout",
          "  --timeout=SEC     force it off after SEC seconds (default StopTimeoutSec; 0: ask and return)\n"
          "  --force           force it off at once\n" },
        { "reboot", "NAME", 1, 1, "reboot a running machine", NULL },
        { "destroy", "NAME", 1, 1, "stop, undefine and delete a machine (or what is left of one)",
          "  --keep-disks      keep its disks (it stays listed as undefined until destroyed again)\n" },
        { "console", "NAME", 1, 1, "print a machine's console log",
          "  -f, --follow      keep printing what the guest writes, until it stops\n" },
        { "wait", "JOB|MACHINE", 1, 1, "wait until a job ends, or a machine stops (or reaches --state)",
          "  --state=STATE     a machine state to wait for (running, shut-off, …, removed)\n"
          "  --timeout=SEC     give up after SEC seconds (exit 1)\n" },
        { "jobs", "", 0, 0, "list jobs", NULL },
        { "cancel", "ID", 1, 1, "cancel a job", NULL },
        { "watch", "", 0, 0, "live view of jobs and machines until interrupted (--json: one event per line)", NULL },
        { "subscribe", "URI", 1, 1, "subscribe to a signed HEPiX image list (waits for its first refresh)",
          "  --endorser-dn=DN    the signer's certificate subject, OpenSSL one-line form (required)\n"
          "  --ca-dn=DN          its issuer (required)\n"
          "  --auto-fetch        fetch the list's images, and each new version\n"
          "  --refresh=SEC       refresh interval (default [Lists] RefreshSec)\n"
          "  --name-prefix=P     prefix of the images' names\n" },
        { "subscriptions", "", 0, 0, "list subscriptions: last refresh and its result, images", NULL },
        { "unsubscribe", "ID", 1, 1, "remove a subscription",
          "  --remove-images     also remove its images no machine uses\n" },
        { "refresh", "ID", 1, 1, "refresh a subscription now (waits)", NULL },
        { "list-images", "ID", 1, 1, "a subscription's images: state, local name, version", NULL },
};

static const char *const global_options =
        "  --system              the system bus (default)\n"
        "  --bus-address=ADDR    another bus (e.g. unix:path=/run/hvwg/bus)\n"
        "  --json[=short|pretty] machine-readable output; errors as JSON on stderr\n"
        "  --bytes               exact sizes in tables\n"
        "  --no-legend           no table headers, nothing for an empty list\n"
        "  -q, --quiet           less output\n"
        "  --no-wait             print a job's id and path instead of waiting\n"
        "  --verbose             D-Bus error names too\n"
        "  -h, --help, --version\n";

static void usage(FILE *f) {
        fprintf(f, "Usage: hvwgctl [OPTIONS] COMMAND ...\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                char head[64];
                snprintf(head, sizeof(head), "%s %s", commands[i].name, commands[i].args);
                fprintf(f, "  %-27s %s\n", head, commands[i].summary);
        }
        fprintf(f, "\nOptions:\n%s\n'hvwgctl COMMAND --help' shows a command's options.\n"
                   "Exit codes: 0 ok, 1 failed, 2 usage, 3 canceled, 4 daemon unreachable or access denied.\n",
                global_options);
}

static void command_help(const struct command *c) {
        printf("Usage: hvwgctl [OPTIONS] %s %s\n\n%s.\n", c->name, c->args, c->summary);
        if (c->options)
                printf("\n%s options:\n%s", c->name, c->options);
        printf("\nOptions:\n%s", global_options);
}

int main(int argc, char **argv) {
        enum { O_SYSTEM = 256, O_ADDR, O_JSON, O_QUIET, O_NOWAIT, O_VERBOSE, O_VERSION, O_SHA, O_SIZE, O_MAXSIZE, O_REPLACE, O_RAW, O_BYTES,
               O_CORES, O_MEMORY, O_SCRATCH, O_SCRATCHFS, O_HYPERVISOR, O_NETWORK, O_NOSTART, O_KEEPDISKS, O_NOLEGEND, O_TRANSIENT,
               O_FORCE, O_TIMEOUT, O_STATE, O_USERDATA, O_METADATA, O_NETCONF, O_CTXFILE, O_CTXVAR, O_ENDORSER, O_CADN, O_AUTOFETCH,
               O_REFRESH, O_PREFIX, O_RMIMAGES, O_LINT };
        static const struct option opts[] = {
                { "system", no_argument, NULL, O_SYSTEM },   { "bus-address", required_argument, NULL, O_ADDR },
                { "json", optional_argument, NULL, O_JSON }, { "quiet", no_argument, NULL, O_QUIET },
                { "no-wait", no_argument, NULL, O_NOWAIT },  { "verbose", no_argument, NULL, O_VERBOSE },
                { "version", no_argument, NULL, O_VERSION }, { "help", no_argument, NULL, 'h' },
                { "sha512", required_argument, NULL, O_SHA }, { "size", required_argument, NULL, O_SIZE },
                { "max-size", required_argument, NULL, O_MAXSIZE }, { "replace", no_argument, NULL, O_REPLACE },
                { "raw", no_argument, NULL, O_RAW },         { "bytes", no_argument, NULL, O_BYTES },
                { "cores", required_argument, NULL, O_CORES }, { "memory", required_argument, NULL, O_MEMORY },
                { "scratch", required_argument, NULL, O_SCRATCH }, { "scratch-fs", required_argument, NULL, O_SCRATCHFS },
                { "hypervisor", required_argument, NULL, O_HYPERVISOR }, { "network", required_argument, NULL, O_NETWORK },
                { "no-start", no_argument, NULL, O_NOSTART }, { "keep-disks", no_argument, NULL, O_KEEPDISKS },
                { "no-legend", no_argument, NULL, O_NOLEGEND }, { "transient", no_argument, NULL, O_TRANSIENT },
                { "force", no_argument, NULL, O_FORCE },     { "timeout", required_argument, NULL, O_TIMEOUT },
                { "state", required_argument, NULL, O_STATE }, { "follow", no_argument, NULL, 'f' },
                { "user-data", required_argument, NULL, O_USERDATA }, { "meta-data", required_argument, NULL, O_METADATA },
                { "network-config", required_argument, NULL, O_NETCONF }, { "context-file", required_argument, NULL, O_CTXFILE },
                { "context-var", required_argument, NULL, O_CTXVAR },
                { "endorser-dn", required_argument, NULL, O_ENDORSER }, { "ca-dn", required_argument, NULL, O_CADN },
                { "auto-fetch", no_argument, NULL, O_AUTOFETCH }, { "refresh", required_argument, NULL, O_REFRESH },
                { "name-prefix", required_argument, NULL, O_PREFIX }, { "remove-images", no_argument, NULL, O_RMIMAGES },
                { "lint", no_argument, NULL, O_LINT },
                {}
        };
        bool help = false;
        int c;
        opterr = 0; /* our own message, in JSON when asked */
        while ((c = getopt_long(argc, argv, "hqf", opts, NULL)) >= 0) {
                switch (c) {
                case O_SYSTEM: arg.address = NULL; break;
                case O_ADDR: arg.address = optarg; break;
                case O_JSON:
                        if (!optarg || strcmp(optarg, "short") == 0)
                                arg.json = JSON_SHORT;
                        else if (strcmp(optarg, "pretty") == 0)
                                arg.json = JSON_PRETTY;
                        else {
                                arg.json = JSON_SHORT; /* JSON was asked for: the error is JSON too */
                                return ctl_usage("invalid --json=%s (short or pretty)", optarg);
                        }
                        break;
                case 'q':
                case O_QUIET: arg.quiet = true; break;
                case O_NOWAIT: arg.no_wait = true; break;
                case O_VERBOSE: arg.verbose = true; break;
                case O_VERSION: printf("hvwgctl %s\n", HVWGD_VERSION); return EXIT_OK;
                case 'h': help = true; break;
                case O_SHA: arg.sha512 = optarg; break;
                case O_SIZE: arg.size = optarg; break;
                case O_MAXSIZE: arg.max_size = optarg; break;
                case O_REPLACE: arg.replace = true; break;
                case O_RAW: arg.raw = true; break;
                case O_BYTES: arg.bytes = true; break;
                case O_CORES: arg.cores = optarg; break;
                case O_MEMORY: arg.memory = optarg; break;
                case O_SCRATCH: arg.scratch = optarg; break;
                case O_SCRATCHFS: arg.scratch_fs = optarg; break;
                case O_HYPERVISOR: arg.hypervisor = optarg; break;
                case O_NETWORK: arg.network = optarg; break;
                case O_NOSTART: arg.no_start = true; break;
                case O_KEEPDISKS: arg.keep_disks = true; break;
                case O_NOLEGEND: arg.no_legend = true; break;
                case O_TRANSIENT: arg.transient = true; break;
                case O_FORCE: arg.force = true; break;
                case O_TIMEOUT: arg.timeout = optarg; break;
                case O_STATE: arg.state = optarg; break;
                case 'f': arg.follow = true; break;
                case O_USERDATA: arg.user_data = optarg; break;
                case O_NETCONF: arg.network_config = optarg; break;
                case O_ENDORSER: arg.endorser_dn = optarg; break;
                case O_CADN: arg.ca_dn = optarg; break;
                case O_AUTOFETCH: arg.auto_fetch = true; break;
                case O_REFRESH: arg.refresh = optarg; break;
                case O_PREFIX: arg.name_prefix = optarg; break;
                case O_RMIMAGES: arg.remove_images = true; break;
                case O_LINT: arg.lint = true; break;
                case O_METADATA:
                case O_CTXFILE:
                case O_CTXVAR: {
                        const char **list = c == O_METADATA ? arg.meta_data : c == O_CTXFILE ? arg.context_files : arg.context_vars;
                        unsigned *n = c == O_METADATA ? &arg.n_meta_data : c == O_CTXFILE ? &arg.n_context_files : &arg.n_context_vars;
                        if (*n == ELEMENTSOF(arg.meta_data))
                                return ctl_usage("at most %zu of --%s", ELEMENTSOF(arg.meta_data), argv[optind - 1] + 2);
                        list[(*n)++] = optarg;
                        break;
                }
                default:
                        if (!arg.json)
                                usage(stderr);
                        return ctl_usage("unknown or incomplete option %s", argv[optind - 1]);
                }
        }
        const struct command *cmd = NULL;
        if (optind < argc)
                for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                        if (strcmp(argv[optind], commands[i].name) == 0)
                                cmd = &commands[i];
        if (help) {
                if (cmd)
                        command_help(cmd);
                else
                        usage(stdout);
                return EXIT_OK;
        }
        if (optind >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        if (!cmd)
                return ctl_usage("unknown command %s (see --help)", argv[optind]);
        int nargs = argc - optind - 1;
        char **args = argv + optind + 1;
        if (nargs < cmd->min || nargs > cmd->max)
                return ctl_usage("%s takes %s (see hvwgctl %s --help)", cmd->name, *cmd->args ? cmd->args : "no arguments", cmd->name);
        unsigned job_id = 0;
        bool is_job = nargs && strspn(args[0], "0123456789") == strlen(args[0]);
        if ((strcmp(cmd->name, "cancel") == 0 || (strcmp(cmd->name, "wait") == 0 && is_job)) &&
            hv_parse_uint(args[0], 1, UINT32_MAX, &job_id) < 0)
                return ctl_usage("invalid job id %s", args[0]);
        ctl_catch_signals();
        sd_bus *bus = NULL;
        int r = ctl_connect(&bus);
        if (r != 0)
                return r;
        const char *n = cmd->name, *a0 = nargs ? args[0] : NULL;
        if (!strcmp(n, "status"))
                r = cmd_status(bus);
        else if (!strcmp(n, "fetch"))
                r = cmd_fetch(bus, a0, nargs > 1 ? args[1] : NULL);
        else if (!strcmp(n, "images"))
                r = cmd_images(bus);
        else if (!strcmp(n, "inspect"))
                r = cmd_inspect(bus, a0);
        else if (!strcmp(n, "rm"))
                r = cmd_rm(bus, a0);
        else if (!strcmp(n, "create"))
                r = cmd_create(bus, a0, args[1]);
        else if (!strcmp(n, "machines"))
                r = cmd_machines(bus);
        else if (!strcmp(n, "show"))
                r = cmd_show(bus, a0);
        else if (!strcmp(n, "start"))
                r = cmd_start(bus, a0);
        else if (!strcmp(n, "stop"))
                r = cmd_stop(bus, a0);
        else if (!strcmp(n, "reboot"))
                r = cmd_reboot(bus, a0);
        else if (!strcmp(n, "destroy"))
                r = cmd_destroy(bus, a0);
        else if (!strcmp(n, "console"))
                r = cmd_console(bus, a0);
        else if (!strcmp(n, "wait"))
                r = is_job ? ctl_wait_job(bus, job_id) : cmd_wait_machine(bus, a0);
        else if (!strcmp(n, "jobs"))
                r = cmd_jobs(bus);
        else if (!strcmp(n, "cancel"))
                r = cmd_cancel(bus, job_id);
        else if (!strcmp(n, "subscribe"))
                r = cmd_subscribe(bus, a0);
        else if (!strcmp(n, "subscriptions"))
                r = cmd_subscriptions(bus);
        else if (!strcmp(n, "unsubscribe"))
                r = cmd_unsubscribe(bus, a0);
        else if (!strcmp(n, "refresh"))
                r = cmd_refresh(bus, a0);
        else if (!strcmp(n, "list-images"))
                r = cmd_list_images(bus, a0);
        else
                r = cmd_watch(bus);
        sd_bus_flush_close_unref(bus);
        return r;
}
