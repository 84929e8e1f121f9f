/* machines.h: the machine registry (what ListMachines answers from; any thread, its own lock)
 * and the machine directories under MachineRoot. State changes reach subscribers on the loop. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "names.h"

#define HV_STATE_MAX 16

struct machine {
        char name[HV_NAME_MAX + 1];
        char uuid[HV_UUID_STR];
        unsigned cores;
        uint64_t memory_mib;
        uint64_t scratch_bytes;
        char image[HV_NAME_MAX + 1];
        char state[HV_STATE_MAX];
        bool destroying;
        struct machine *next;
};

struct machines;
typedef void (*machine_state_fn)(void *ud, const char *name, const char *state);

int machines_new(struct loop *loop, struct machines **ret);
struct machines *machines_free(struct machines *ms);
/* fn(ud, name, state) on the loop for every state change (set_state, remove: "undefined"). */
void machines_subscribe(struct machines *ms, machine_state_fn fn, void *ud);

bool machines_exists(struct machines *ms, const char *name);
bool machines_image_in_use(struct machines *ms, const char *image);
/* Adds or replaces (keeping a running destroy's mark). */
void machines_put(struct machines *ms, const struct machine *x);
void machines_set_state(struct machines *ms, const char *name, const char *state);
void machines_remove(struct machines *ms, const char *name);
/* Marks name as being destroyed: 0, -ENOENT (no such machine) or -EBUSY (already). */
int machines_begin_destroy(struct machines *ms, const char *name);
void machines_end_destroy(struct machines *ms, const char *name);
/* A copy of the registry, in name order (free the array). -ENOMEM or the count. */
int machines_snapshot(struct machines *ms, struct machine **ret);

/* Removes what hvwgd puts in a machine directory, then the directory; with keep_disks only the
 * record (disks and directory stay). false when something is left (logged). */
bool machine_dir_remove(const char *dir, bool keep_disks);
/* Start-up: removes machine directories a crash left mid-create (marked .creating, or empty). */
int machine_clean_interrupted(const char *machine_root);
