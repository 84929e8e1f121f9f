/* mbr.c: MBR and EBR-chain parsing with the HEPiX V1 image rules (shared/API.md). */
#include "mbr.h"

#include <errno.h>
#include <string.h>

#define SECTOR 512ULL

bool mbr_is_extended_type(uint8_t type) {
        return type == 0x05 || type == 0x0f || type == 0x85;
}

struct entry {
        uint8_t boot, type;
        uint32_t lba, count;
};

static uint32_t le32(const uint8_t *p) {
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void read_entry(const uint8_t *sec, unsigned i, struct entry *en) {
        const uint8_t *p = sec + 446 + 16 * i;
        en->boot = p[0];
        en->type = p[4];
        en->lba = le32(p + 8);
        en->count = le32(p + 12);
}

static bool entry_empty(const struct entry *en) {
        return en->type == 0 && en->lba == 0 && en->count == 0;
}

static int refuse(struct hv_error *e, const char *fmt, ...) HV_PRINTF(2, 3);
static int refuse(struct hv_error *e, const char *fmt, ...) {
        char msg[sizeof(e->msg)];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return hv_fail(e, HV_E_BAD_TABLE, EBADMSG, "%s", msg);
}

/* Adds a data partition after the per-partition checks. start/count are absolute LBAs. */
static int add_part(struct mbr_table *t, uint64_t image_size, unsigned number, const struct entry *en,
                    uint64_t start, bool extended, struct hv_error *e) {
        uint64_t sectors = image_size / SECTOR;
        if (en->boot != 0x00 && en->boot != 0x80)
                return refuse(e, "partition %u (type 0x%02x): invalid boot flag 0x%02x (must be 0x00 or 0x80)",
                              number, en->type, en->boot);
        if (en->count == 0)
                return refuse(e, "partition %u (type 0x%02x, LBA %llu): size is zero", number, en->type,
                              (unsigned long long)start);
        if (start == 0)
                return refuse(e, "partition %u (type 0x%02x): starts at LBA 0, over the partition table itself",
                              number, en->type);
        if (start + en->count > sectors)
                return refuse(e, "partition %u (type 0x%02x, LBA %llu+%u) ends past the end of the image (%llu bytes, %llu sectors)",
                              number, en->type, (unsigned long long)start, en->count,
                              (unsigned long long)image_size, (unsigned long long)sectors);
        if (en->type == 0x8e)
                return hv_fail(e, HV_E_LVM, EBADMSG,
                               "partition %u (type 0x8e, LBA %llu+%u) is Linux LVM: the HEPiX image format does not allow LVM",
                               number, (unsigned long long)start, en->count);
        if (t->n >= MBR_MAX_PARTS)
                return refuse(e, "more than %d partitions", MBR_MAX_PARTS);
        struct mbr_part *p = &t->parts[t->n++];
        memset(p, 0, sizeof(*p));
        p->number = number;
        p->type = en->type;
        p->bootable = en->boot == 0x80;
        p->extended = extended;
        p->offset = start * SECTOR;
        p->size = (uint64_t)en->count * SECTOR;
        if (p->bootable)
                t->n_bootable++;
        return 0;
}

static int check_overlaps(const struct mbr_table *t, struct hv_error *e) {
        for (unsigned i = 0; i < t->n; i++)
                for (unsigned j = i + 1; j < t->n; j++) {
                        const struct mbr_part *a = &t->parts[i], *b = &t->parts[j];
                        /* The extended container holds its logicals by design. */
                        if ((a->extended && b->number >= 5) || (b->extended && a->number >= 5))
                                continue;
                        if (a->offset < b->offset + b->size && b->offset < a->offset + a->size)
                                return refuse(e, "partition %u (type 0x%02x, LBA %llu+%llu) overlaps partition %u (type 0x%02x, LBA %llu+%llu)",
                                              a->number, a->type, (unsigned long long)(a->offset / SECTOR),
                                              (unsigned long long)(a->size / SECTOR), b->number, b->type,
                                              (unsigned long long)(b->offset / SECTOR), (unsigned long long)(b->size / SECTOR));
                }
        return 0;
}

/* A logical partition must not hold an extended boot record: a guest writing to it would
 * rewrite the table that describes the partitions after it. */
static int check_ebrs_free(const struct mbr_table *t, const uint64_t *ebrs, const unsigned *described, unsigned n_ebrs,
                           struct hv_error *e) {
        for (unsigned i = 0; i < t->n; i++) {
                const struct mbr_part *p = &t->parts[i];
                if (p->number < 5)
                        continue;
                uint64_t start = p->offset / SECTOR, end = start + p->size / SECTOR;
                for (unsigned k = 0; k < n_ebrs; k++) {
                        if (ebrs[k] < start || ebrs[k] >= end)
                                continue;
                        char what[64] = "";
                        if (described[k])
                                snprintf(what, sizeof(what), " (the one describing logical partition %u)", described[k]);
                        return refuse(e, "logical partition %u (type 0x%02x, LBA %llu+%llu) covers the extended boot record at LBA %llu%s",
                                      p->number, p->type, (unsigned long long)start, (unsigned long long)(end - start),
                                      (unsigned long long)ebrs[k], what);
                }
        }
        return 0;
}

static int walk_ebr_chain(const struct mbr_part *ext, uint64_t image_size, mbr_read_fn rd, void *ud,
                          struct mbr_table *t, struct hv_error *e) {
        uint64_t ext_start = ext->offset / SECTOR, ext_end = ext_start + ext->size / SECTOR;
        uint64_t seen[MBR_MAX_LOGICAL + 1];
        unsigned described[MBR_MAX_LOGICAL + 1];
        unsigned n_seen = 0, number = 5;
        uint64_t ebr = ext_start;
        uint8_t sec[SECTOR];
        for (;;) {
                if (ebr < ext_start || ebr >= ext_end)
                        return refuse(e, "extended boot record at LBA %llu lies outside extended partition %u (LBA %llu+%llu)",
                                      (unsigned long long)ebr, ext->number, (unsigned long long)ext_start,
                                      (unsigned long long)(ext_end - ext_start));
                for (unsigned i = 0; i < n_seen; i++)
                        if (seen[i] == ebr)
                                return refuse(e, "extended boot record chain loops back to LBA %llu (after logical partition %u)",
                                              (unsigned long long)ebr, number - 1);
                if (n_seen > MBR_MAX_LOGICAL)
                        return refuse(e, "extended partition %u chains more than %d logical partitions", ext->number, MBR_MAX_LOGICAL);
                described[n_seen] = 0;
                seen[n_seen++] = ebr;
                int r = rd(ud, ebr * SECTOR, sec, SECTOR);
                if (r < 0)
                        return hv_fail(e, HV_E_ERRNO, -r, "cannot read extended boot record at LBA %llu", (unsigned long long)ebr);
                if (sec[510] != 0x55 || sec[511] != 0xaa)
                        return refuse(e, "extended boot record at LBA %llu has no 0x55AA signature", (unsigned long long)ebr);
                struct entry lg, nx;
                read_entry(sec, 0, &lg);
                read_entry(sec, 1, &nx);
                for (unsigned i = 2; i < 4; i++) {
                        struct entry x;
                        read_entry(sec, i, &x);
                        if (!entry_empty(&x))
                                return refuse(e, "extended boot record at LBA %llu has a non-empty entry %u (only 2 are allowed)",
                                              (unsigned long long)ebr, i + 1);
                }
                if (lg.type != 0) {
                        if (number - 4 > MBR_MAX_LOGICAL)
                                return refuse(e, "extended partition %u chains more than %d logical partitions", ext->number, MBR_MAX_LOGICAL);
                        if (mbr_is_extended_type(lg.type))
                                return refuse(e, "logical partition %u is itself an extended partition (type 0x%02x)", number, lg.type);
                        if (lg.type == 0xee)
                                return refuse(e, "logical partition %u has type 0xEE (GPT protective): the image format requires a plain MBR table",
                                              number);
                        uint64_t start = ebr + lg.lba;
                        if (lg.lba == 0)
                                return refuse(e, "logical partition %u (type 0x%02x) starts on its own extended boot record (LBA %llu)",
                                              number, lg.type, (unsigned long long)ebr);
                        r = add_part(t, image_size, number, &lg, start, false, e);
                        if (r < 0)
                                return r;
                        described[n_seen - 1] = number;
                        if (start + lg.count > ext_end)
                                return refuse(e, "logical partition %u (type 0x%02x, LBA %llu+%u) ends past its extended partition %u (LBA %llu+%llu)",
                                              number, lg.type, (unsigned long long)start, lg.count, ext->number,
                                              (unsigned long long)ext_start, (unsigned long long)(ext_end - ext_start));
                        number++;
                } else if (!entry_empty(&lg) && lg.count != 0)
                        return refuse(e, "extended boot record at LBA %llu has an entry of type 0 with a size", (unsigned long long)ebr);
                if (nx.type == 0 && nx.lba == 0 && nx.count == 0)
                        return check_overlaps(t, e) ?: check_ebrs_free(t, seen, described, n_seen, e);
                if (!mbr_is_extended_type(nx.type))
                        return refuse(e, "extended boot record at LBA %llu links to type 0x%02x (expected an extended type)",
                                      (unsigned long long)ebr, nx.type);
                if (nx.lba == 0)
                        return refuse(e, "extended boot record chain loops back to LBA %llu (after logical partition %u)",
                                      (unsigned long long)ext_start, number - 1);
                ebr = ext_start + nx.lba;
        }
}

int mbr_parse(uint64_t image_size, mbr_read_fn rd, void *ud, struct mbr_table *t, struct hv_error *e) {
        memset(t, 0, sizeof(*t));
        if (image_size < SECTOR)
                return refuse(e, "image is %llu bytes, smaller than one 512-byte sector: no partition table",
                              (unsigned long long)image_size);
        if (image_size % SECTOR)
                return refuse(e, "image size %llu bytes is not a multiple of 512", (unsigned long long)image_size);
        uint8_t sec[SECTOR];
        int r = rd(ud, 0, sec, SECTOR);
        if (r < 0)
                return hv_fail(e, HV_E_ERRNO, -r, "cannot read the first sector");
        if (sec[510] != 0x55 || sec[511] != 0xaa) {
                t->no_table = true;
                return refuse(e, "no partition table: sector 0 has no 0x55AA MBR signature (found 0x%02X%02X)", sec[510], sec[511]);
        }
        struct entry en[4];
        bool all_empty = true;
        for (unsigned i = 0; i < 4; i++) {
                read_entry(sec, i, &en[i]);
                if (en[i].type == 0xee)
                        return refuse(e, "partition %u has type 0xEE: this is a GPT disk (protective or hybrid MBR); the image format requires a plain MBR table",
                                      i + 1);
                if (!entry_empty(&en[i]))
                        all_empty = false;
        }
        if (all_empty) {
                t->no_table = true;
                return refuse(e, "no partition table: the MBR signature is present but all four entries are empty");
        }
        unsigned n_ext = 0;
        for (unsigned i = 0; i < 4; i++) {
                if (en[i].type == 0) {
                        if (en[i].count != 0 || en[i].lba != 0)
                                return refuse(e, "partition %u has type 0x00 (empty) but LBA %u+%u", i + 1, en[i].lba, en[i].count);
                        continue;
                }
                bool ext = mbr_is_extended_type(en[i].type);
                if (ext && ++n_ext > 1)
                        return refuse(e, "partition %u (type 0x%02x) is a second extended partition; only one is allowed", i + 1, en[i].type);
                r = add_part(t, image_size, i + 1, &en[i], en[i].lba, ext, e);
                if (r < 0)
                        return r;
        }
        unsigned n_primary = t->n;
        for (unsigned i = 0; i < n_primary; i++)
                if (t->parts[i].extended) {
                        struct mbr_part ext = t->parts[i];
                        r = walk_ebr_chain(&ext, image_size, rd, ud, t, e);
                        if (r < 0)
                                return r;
                }
        return check_overlaps(t, e);
}
