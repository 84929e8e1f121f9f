/* machines.h: the machine registry (what ListMachines answers from; any thread, its own lock)
 * and the machine directories under MachineRoot. State changes reach subscribers on the loop. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "names.h"

#define HV_STATE_MAX 16
#define HV_REASON_MAX 24
#define HV_HV_NAME_MAX 8

struct machine {
        char name[HV_NAME_MAX + 1];
        char uuid[HV_UUID_STR];
        unsigned cores;
        uint64_t memory_mib;
        uint64_t scratch_bytes;
        char image[HV_NAME_MAX + 1];
        char state[HV_STATE_MAX];
        char reason[HV_REASON_MAX];     /* why it reached its state: "booted", "poweroff", "crash", … */
        uint64_t state_usec;            /* when (µs since the epoch) */
        uint64_t state_gen;             /* counts its state changes */
        unsigned owner;                 /* uid of its creator */
        uint64_t created_usec;
        bool transient;                 /* torn down when its guest stops */
        char hypervisor[HV_HV_NAME_MAX];
        char network[HV_NAME_MAX + 1];
        char scratch_path[1024];        /* "" without a scratch disk */
        char scratch_uuid[HV_UUID_STR];
        bool destroying;
        struct machine *next;
};

enum machine_event_kind { MACHINE_STATE, MACHINE_REMOVED };
/* What subscribers hear, on the loop: a state change (also when a machine appears), or a
 * removal with its reason and the kept console log ("" when none). */
struct machine_event {
        enum machine_event_kind kind;
        struct machine m;               /* the record as it was then */
        char reason[HV_REASON_MAX];
        char console_log[1024];
};

struct machines;
typedef void (*machine_event_fn)(void *ud, const struct machine_event *ev);

int machines_new(struct loop *loop, struct machines **ret);
struct machines *machines_free(struct machines *ms);
/* fn(ud, ev) on the loop for every state change and removal; up to 4 subscribers. */
int machines_subscribe(struct machines *ms, machine_event_fn fn, void *ud);

bool machines_exists(struct machines *ms, const char *name);
/* A copy of one record: false when there is none. */
bool machines_get(struct machines *ms, const char *name, struct machine *ret);
/* The names of the machines made from image, comma-separated into buf ("" when none). The count. */
unsigned machines_using_image(struct machines *ms, const char *image, char *buf, size_t len);
/* Sums over all machines (for the capacity properties and checks); cores and memory of
 * machines without a domain (undefined) do not count. */
struct machine_totals {
        uint64_t cores, memory_mib, scratch_bytes;
};
void machines_totals(struct machines *ms, struct machine_totals *t);
/* Adds or replaces (keeping a running destroy's mark); subscribers hear its state. */
void machines_put(struct machines *ms, const struct machine *x);
void machines_set_state(struct machines *ms, const char *name, const char *state, const char *reason);
/* The same, unless the state changed since the caller read generation gen (an event from
 * libvirt came first and knows better). */
void machines_set_state_since(struct machines *ms, const char *name, uint64_t gen, const char *state, const char *reason);
/* Drops the record; subscribers hear MACHINE_REMOVED with reason and the kept console log. */
void machines_remove(struct machines *ms, const char *name, const char *reason, const char *console_log);
/* Marks name as being destroyed: 0, -ENOENT (no such machine) or -EBUSY (already). */
int machines_begin_destroy(struct machines *ms, const char *name);
void machines_end_destroy(struct machines *ms, const char *name);
/* A copy of the registry, in name order (free the array). -ENOMEM or the count. */
int machines_snapshot(struct machines *ms, struct machine **ret);

/* Why a transient machine ended, from its state and the reason it reached it ("poweroff",
 * "crash", "destroyed", "host-shutdown"); NULL while it has not (running, or disks kept). */
const char *machine_end_reason(const char *state, const char *reason);

/* machine.meta, the record in a machine's directory: pure text <-> struct. Format writes
 * into buf (len ≥ 4096) and returns the length. */
int machine_record_format(const struct machine *x, char *buf, size_t len);
void machine_record_parse(const char *text, struct machine *x);

/* Removes what hvwgd puts in a machine directory, then the directory; with keep_disks only the
 * record (disks and directory stay). false when something is left (logged). */
bool machine_dir_remove(const char *dir, bool keep_disks);
/* Start-up: removes machine directories a crash left mid-create (marked .creating, or empty). */
int machine_clean_interrupted(const char *machine_root);
