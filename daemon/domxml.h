/* domxml.h: libvirt domain XML for a machine, built by a pure function (libxml2 xmlwriter), and
 * our metadata read back from it. */
#pragma once
#include "names.h"
#include "util.h"

#define HVWG_XML_NS "https://hepix.org/hvwg/1"

enum dom_hv { DOM_KVM, DOM_QEMU, DOM_XEN_HVM, DOM_XEN_PV };

struct dom_spec {
        const char *name;
        const char *uuid;          /* always set: 36 characters */
        enum dom_hv hv;
        unsigned vcpus;
        uint64_t memory_mib;
        const char *root_path;
        const char *scratch_path;  /* NULL: no scratch disk */
        bool scratch_is_block;
        bool direct_io;            /* cache='none' io='native'; else cache='writeback' */
        const char *console_log;   /* serial console log file */
        const char *network;       /* NULL or "": no NIC */
        const char *bootloader;    /* Xen PV: e.g. pygrub */
        const char *context_iso;   /* NULL: no context disk; else a read-only CD-ROM (Xen PV: a read-only disk) */
        /* our metadata */
        const char *image;
        const char *machine_root;  /* the MachineRoot of the hvwgd that made it */
        const char *scratch_uuid;
        uint64_t scratch_bytes;
        uint64_t created_usec;
        unsigned owner;            /* the caller's uid */
        bool transient;            /* torn down when the guest powers off */
};

struct dom_meta {
        char image[HV_NAME_MAX + 1];
        unsigned cores;
        uint64_t memory_mib;
        uint64_t scratch_bytes;
        char scratch_path[1024];
        char scratch_uuid[40];
        uint64_t created_usec;
        char machine_root[512];    /* "" in domains made before it was recorded */
        unsigned owner;            /* 0 (root) in domains made before owners were recorded */
        bool transient;
        char hypervisor[8];        /* "kvm", "qemu", "xen", "xen-pv"; "" before it was recorded */
        char network[HV_NAME_MAX + 1];
};

const char *dom_hv_name(enum dom_hv hv);
int dom_hv_parse(const char *s, enum dom_hv *ret);
/* Returns a malloc'ed XML document in *ret. */
int domxml_build(const struct dom_spec *s, char **ret, struct hv_error *e);
/* Parses our <hvwg:machine> element: in a whole domain XML, or alone as virDomainGetMetadata
 * returns it (<machine> without the namespace). */
int domxml_read_meta(const char *xml, struct dom_meta *m);
