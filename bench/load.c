/* hvwg-load: bus-call load on hvwgd. N client processes call ListImages, ListJobs and a property
 * read in turn, as fast as they can, for S seconds; prints calls, errors and p50/p99/max latency.
 * Benchmark: bench/load.sh runs it for 30 s from 8 clients while two imports run; the test
 * tests/integration/test_load.py runs it briefly and asserts zero errors.
 * usage: hvwg-load --bus-address=ADDR [--clients=N] [--seconds=S] */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* One client: writes "errors n" then n latencies (doubles) to fd. */
static int client(const char *address, double seconds, int fd) {
        sd_bus *bus = NULL;
        if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address) < 0 || sd_bus_set_bus_client(bus, 1) < 0 ||
            sd_bus_start(bus) < 0)
                return 1;
        size_t cap = 1 << 16, n = 0;
        double *lat = malloc(cap * sizeof(double));
        unsigned long errors = 0;
        double end = now() + seconds;
        for (unsigned i = 0; now() < end; i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                sd_bus_message *reply = NULL;
                double t = now();
                int r;
                if (i % 3 == 0)
                        r = sd_bus_call_method(bus, "org.hepix.hvwg1", "/org/hepix/hvwg1", "org.hepix.hvwg1.Manager", "ListImages", &e,
                                               &reply, "");
                else if (i % 3 == 1)
                        r = sd_bus_call_method(bus, "org.hepix.hvwg1", "/org/hepix/hvwg1", "org.hepix.hvwg1.Manager", "ListJobs", &e,
                                               &reply, "");
                else
                        r = sd_bus_get_property(bus, "org.hepix.hvwg1", "/org/hepix/hvwg1", "org.hepix.hvwg1.Manager", "ActiveJobs", &e,
                                                &reply, "u");
                double d = now() - t;
                if (r < 0) {
                        if (errors++ < 3)
                                fprintf(stderr, "hvwg-load: call failed: %s\n", e.message ? e.message : strerror(-r));
                }
                sd_bus_error_free(&e);
                sd_bus_message_unref(reply);
                if (n == cap) {
                        cap *= 2;
                        lat = realloc(lat, cap * sizeof(double));
                }
                lat[n++] = d;
        }
        if (write(fd, &errors, sizeof(errors)) != sizeof(errors) || write(fd, &n, sizeof(n)) != sizeof(n))
                return 1;
        for (size_t off = 0; off < n * sizeof(double);) {
                ssize_t w = write(fd, (char *)lat + off, n * sizeof(double) - off);
                if (w <= 0)
                        return 1;
                off += (size_t)w;
        }
        free(lat);
        sd_bus_flush_close_unref(bus);
        return 0;
}

static int read_all(int fd, void *buf, size_t len) {
        for (size_t off = 0; off < len;) {
                ssize_t r = read(fd, (char *)buf + off, len - off);
                if (r <= 0)
                        return -1;
                off += (size_t)r;
        }
        return 0;
}

int main(int argc, char **argv) {
        const char *address = NULL;
        int clients = 8;
        double seconds = 30;
        static const struct option opts[] = {
                { "bus-address", required_argument, NULL, 'a' }, { "clients", required_argument, NULL, 'c' },
                { "seconds", required_argument, NULL, 's' },     {}
        };
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                if (c == 'a')
                        address = optarg;
                else if (c == 'c')
                        clients = atoi(optarg);
                else if (c == 's')
                        seconds = atof(optarg);
                else
                        return 2;
        }
        if (!address || clients < 1 || clients > 256 || seconds <= 0) {
                fprintf(stderr, "usage: hvwg-load --bus-address=ADDR [--clients=N] [--seconds=S]\n");
                return 2;
        }
        int fds[256];
        pid_t pids[256];
        for (int i = 0; i < clients; i++) {
                int p[2];
                if (pipe(p) < 0)
                        return 1;
                pids[i] = fork();
                if (pids[i] == 0) {
                        close(p[0]);
                        _exit(client(address, seconds, p[1]));
                }
                close(p[1]);
                fds[i] = p[0];
        }
        size_t total = 0, cap = 1 << 20;
        double *all = malloc(cap * sizeof(double));
        unsigned long errors = 0;
        int failed_clients = 0;
        for (int i = 0; i < clients; i++) {
                unsigned long e;
                size_t n;
                if (read_all(fds[i], &e, sizeof(e)) < 0 || read_all(fds[i], &n, sizeof(n)) < 0) {
                        failed_clients++;
                        continue;
                }
                if (total + n > cap) {
                        cap = (total + n) * 2;
                        all = realloc(all, cap * sizeof(double));
                }
                if (read_all(fds[i], all + total, n * sizeof(double)) < 0) {
                        failed_clients++;
                        continue;
                }
                total += n;
                errors += e;
                close(fds[i]);
        }
        for (int i = 0; i < clients; i++)
                waitpid(pids[i], NULL, 0);
        if (total == 0) {
                fprintf(stderr, "hvwg-load: no calls completed\n");
                return 1;
        }
        qsort(all, total, sizeof(double), cmp_double);
        printf("clients %d, seconds %.0f, calls %zu (%.0f/s), errors %lu, failed clients %d\n", clients, seconds, total,
               (double)total / seconds, errors, failed_clients);
        printf("latency ms: p50 %.3f  p99 %.3f  max %.3f\n", all[total / 2] * 1e3, all[(size_t)((double)total * 0.99)] * 1e3,
               all[total - 1] * 1e3);
        free(all);
        return errors || failed_clients ? 1 : 0;
}
