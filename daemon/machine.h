/* machine.h: machines on libvirt: the connection thread, the registry the loop answers from,
 * the CreateMachine job and DestroyMachine. libvirt is never called on the bus loop. */
#pragma once
#include <systemd/sd-bus.h>

#include "domxml.h"
#include "opts.h"
#include "util.h"

struct manager;
struct job;

struct machine {
        char name[65];
        char uuid[37];
        unsigned cores;
        uint64_t memory_mib;
        uint64_t scratch_bytes;
        char image[65];
        char state[16];
        bool destroying;
        struct machine *next;
};

/* Removes machine directories a crash left mid-create (marked .creating). */
int machine_clean_interrupted(const char *machine_root);
/* Starts the libvirt thread: connect (with retry and backoff), events, start-up reconciliation. */
int machine_start(struct manager *m);
void machine_stop(struct manager *m);

/* Registry (any thread; takes its own lock). */
bool machine_exists(struct manager *m, const char *name);
bool machine_image_in_use(struct manager *m, const char *image);
/* Appends the ListMachines array to reply. */
int machine_append_list(struct manager *m, sd_bus_message *reply);

/* The CreateMachine job body (worker thread). */
int machine_create_run(struct job *j, struct hv_error *e);
/* DestroyMachine: checks on the loop, does the libvirt work on a thread, replies to msg later. */
int machine_destroy(struct manager *m, sd_bus_message *msg, const char *name, bool keep_disks, sd_bus_error *ret);
