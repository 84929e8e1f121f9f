/* main.c: hvwgd's command line: the daemon (manager.c), --check-config, --format-scratch. */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "lint_cli.h"
#include "log.h"
#include "manager.h"
#include "scratch.h"

static void help(void) {
        printf("Usage: hvwgd [OPTIONS]\n\n"
               "HEPiX virtualisation working group image daemon.\n\n"
               "  --config=PATH        configuration file (default " HV_DEFAULT_CONFIG ", plus PATH.d/*.conf)\n"
               "  --bus-address=ADDR   connect to this D-Bus address instead of the system bus\n"
               "  --log-level=N        syslog level 0-7 (default 6, info)\n"
               "  --check-config       load the configuration, print the effective values and exit\n"
               "  --format-scratch PATH [SIZE] [--scratch-fs=FS] [--scratch-alloc=sparse|fallocate]\n"
               "                       create and format a scratch disk file (or a blank block device) as\n"
               "                       CreateMachine does, print its UUID and exit\n"
               "  --lint FILE          an image file (raw or gzip) for producers: its partition table, what\n"
               "                       its filesystems hold, the findings (exit 1 on an error finding)\n"
               "  -h, --help           this text\n"
               "  --version            print the version\n");
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "bus-address", required_argument, NULL, 'b' },
                { "log-level", required_argument, NULL, 'l' },
                { "check-config", no_argument, NULL, 'k' },
                { "format-scratch", no_argument, NULL, 'f' },
                { "scratch-fs", required_argument, NULL, 'F' },
                { "scratch-alloc", required_argument, NULL, 'A' },
                { "lint", no_argument, NULL, 'L' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {}
        };
        const char *config = NULL, *address = NULL, *scratch_fs = NULL, *scratch_alloc = "sparse";
        bool check_only = false, format_scratch = false, lint = false;
        int c;
        /* Signals are blocked first: a SIGTERM during start-up waits for the loop and ends it cleanly. */
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        signal(SIGPIPE, SIG_IGN);
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'c': config = optarg; break;
                case 'b': address = optarg; break;
                case 'l': {
                        unsigned lv;
                        if (hv_parse_uint(optarg, 0, 7, &lv) < 0) {
                                fprintf(stderr, "hvwgd: --log-level must be 0-7\n");
                                return 2;
                        }
                        hv_log_level = (int)lv;
                        break;
                }
                case 'k': check_only = true; break;
                case 'f': format_scratch = true; break;
                case 'F': scratch_fs = optarg; break;
                case 'A': scratch_alloc = optarg; break;
                case 'L': lint = true; break;
                case 'h': help(); return 0;
                case 'V': printf("hvwgd %s\n", HVWGD_VERSION); return 0;
                default: return 2;
                }
        }
        struct hv_conf conf;
        struct hv_error e = { 0 };
        hv_conf_defaults(&conf);
        if (lint) {
                if (argc - optind != 1) {
                        fprintf(stderr, "hvwgd: --lint takes FILE\n");
                        return 2;
                }
                return lint_cli(argv[optind], conf.max_image_size);
        }
        if (format_scratch) {
                if (argc - optind != 2 && argc - optind != 1) {
                        fprintf(stderr, "hvwgd: --format-scratch takes PATH [SIZE]\n");
                        return 2;
                }
                if (config && hv_conf_load(&conf, config, true, manager_conf_warn, NULL, &e) < 0) {
                        log_error("configuration error: %s", e.msg);
                        return 1;
                }
                return scratch_format_cli(&conf, argv[optind], argc - optind == 2 ? argv[optind + 1] : NULL, scratch_fs, scratch_alloc);
        }
        if (optind < argc) {
                fprintf(stderr, "hvwgd: unexpected argument %s\n", argv[optind]);
                return 2;
        }
        if (hv_conf_load(&conf, config ? config : HV_DEFAULT_CONFIG, config != NULL, manager_conf_warn, NULL, &e) < 0) {
                log_error("configuration error: %s", e.msg);
                return 1;
        }
        if (check_only) {
                hv_conf_print(stdout, &conf);
                return 0;
        }
        struct manager *m = manager_new(&conf, config);
        if (!m) {
                log_error("out of memory");
                return 1;
        }
        int r = manager_run(m, address);
        manager_free(m);
        return r < 0 ? 1 : 0;
}
