/* mbr.h: the MBR + EBR partition-table parser. Pure: it reads sectors through a callback. */
#pragma once
#include "util.h"

#define MBR_MAX_LOGICAL 128
#define MBR_MAX_PARTS (4 + MBR_MAX_LOGICAL)

struct mbr_part {
        unsigned number; /* 1-4 primary, 5+ logical */
        uint8_t type;
        bool bootable;
        bool extended;   /* the container of logical partitions */
        uint64_t offset; /* bytes */
        uint64_t size;   /* bytes */
        char fs[32];     /* filled by the prober, not the parser */
};

struct mbr_table {
        struct mbr_part parts[MBR_MAX_PARTS];
        unsigned n;
        unsigned n_bootable;
        bool no_table; /* set with the error when all four entries are empty */
};

/* Reads len bytes at off into buf; returns 0 or -errno. */
typedef int (*mbr_read_fn)(void *userdata, uint64_t off, void *buf, size_t len);

/* Parses and checks the table against the HEPiX V1 rules. On refusal returns -EBADMSG with
 * e->kind BadPartitionTable or LvmNotAllowed and a message naming what was found. */
int mbr_parse(uint64_t image_size, mbr_read_fn rd, void *userdata, struct mbr_table *t, struct hv_error *e);

/* Summary line of a partition for logs and metadata: "2 0x83 boot 1048576+104857600 ext4". */
bool mbr_is_extended_type(uint8_t type);
