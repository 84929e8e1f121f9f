/* domxml.c: building domain XML with libxml2's xmlTextWriter: every name and path is escaped by
 * the library, never by hand. */
#include "domxml.h"

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>
#include <string.h>

const char *dom_hv_name(enum dom_hv hv) {
        switch (hv) {
        case DOM_KVM: return "kvm";
        case DOM_QEMU: return "qemu";
        case DOM_XEN_HVM: return "xen";
        case DOM_XEN_PV: return "xen-pv";
        }
        return "?";
}

int dom_hv_parse(const char *s, enum dom_hv *ret) {
        static const struct { const char *n; enum dom_hv v; } t[] = {
                { "kvm", DOM_KVM }, { "qemu", DOM_QEMU }, { "xen", DOM_XEN_HVM }, { "xen-pv", DOM_XEN_PV },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                if (strcmp(s, t[i].n) == 0) {
                        *ret = t[i].v;
                        return 0;
                }
        return -EINVAL;
}

/* Small wrappers: any writer failure sticks in *ok. */
struct xw {
        xmlTextWriterPtr w;
        bool ok;
};

static void el(struct xw *x, const char *name) {
        x->ok &= xmlTextWriterStartElement(x->w, BAD_CAST name) >= 0;
}
static void end(struct xw *x) {
        x->ok &= xmlTextWriterEndElement(x->w) >= 0;
}
static void at(struct xw *x, const char *name, const char *value) {
        x->ok &= xmlTextWriterWriteAttribute(x->w, BAD_CAST name, BAD_CAST value) >= 0;
}
static void text_el(struct xw *x, const char *name, const char *value) {
        x->ok &= xmlTextWriterWriteElement(x->w, BAD_CAST name, BAD_CAST value) >= 0;
}
static void textf_el(struct xw *x, const char *name, const char *fmt, unsigned long long v) {
        char buf[32];
        snprintf(buf, sizeof(buf), fmt, v);
        text_el(x, name, buf);
}

static void disk(struct xw *x, const struct dom_spec *s, const char *path, bool block, const char *dev, bool boot) {
        bool xen = s->hv == DOM_XEN_HVM || s->hv == DOM_XEN_PV;
        el(x, "disk");
        at(x, "type", block ? "block" : "file");
        at(x, "device", "disk");
        el(x, "driver");
        at(x, "name", xen ? (block ? "phy" : "qemu") : "qemu");
        if (!(xen && block))
                at(x, "type", "raw");
        if (!xen) {
                at(x, "cache", s->direct_io ? "none" : "writeback");
                if (s->direct_io)
                        at(x, "io", "native");
                at(x, "discard", "unmap");
        }
        end(x);
        el(x, "source");
        at(x, block ? "dev" : "file", path);
        end(x);
        el(x, "target");
        at(x, "dev", dev);
        at(x, "bus", xen ? "xen" : "virtio");
        end(x);
        if (boot && s->hv != DOM_XEN_PV) {
                el(x, "boot");
                at(x, "order", "1");
                end(x);
        }
        end(x);
}

/* The context disk: a CD-ROM on IDE (machine type pc, or Xen HVM's emulated IDE: ata_piix in
 * every distribution kernel, where a SATA CD-ROM needs ahci, which Debian's cloud kernel
 * lacks); Xen PV has no CD-ROM and gets a read-only xen disk. Read-only either way. */
static void cdrom(struct xw *x, const struct dom_spec *s) {
        bool pv = s->hv == DOM_XEN_PV;
        el(x, "disk");
        at(x, "type", "file");
        at(x, "device", pv ? "disk" : "cdrom");
        el(x, "driver");
        at(x, "name", "qemu");
        at(x, "type", "raw");
        end(x);
        el(x, "source");
        at(x, "file", s->context_iso);
        end(x);
        el(x, "target");
        at(x, "dev", pv ? "xvdc" : "hdc");
        at(x, "bus", pv ? "xen" : "ide");
        end(x);
        el(x, "readonly");
        end(x);
        end(x);
}

int domxml_build(const struct dom_spec *s, char **ret, struct hv_error *e) {
        if (!s->name || !s->uuid || strlen(s->uuid) != 36 || !s->root_path || !s->vcpus || !s->memory_mib)
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "incomplete machine description");
        xmlBufferPtr buf = xmlBufferCreate();
        if (!buf)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        struct xw x = { xmlNewTextWriterMemory(buf, 0), true };
        if (!x.w) {
                xmlBufferFree(buf);
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        }
        xmlTextWriterSetIndent(x.w, 1);
        xmlTextWriterSetIndentString(x.w, BAD_CAST "  ");
        bool xen = s->hv == DOM_XEN_HVM || s->hv == DOM_XEN_PV;
        el(&x, "domain");
        at(&x, "type", s->hv == DOM_KVM ? "kvm" : s->hv == DOM_QEMU ? "qemu" : "xen");
        text_el(&x, "name", s->name);
        text_el(&x, "uuid", s->uuid);

        el(&x, "metadata");
        x.ok &= xmlTextWriterStartElementNS(x.w, BAD_CAST "hvwg", BAD_CAST "machine", BAD_CAST HVWG_XML_NS) >= 0;
        x.ok &= xmlTextWriterWriteElementNS(x.w, BAD_CAST "hvwg", BAD_CAST "image", NULL, BAD_CAST(s->image ? s->image : "")) >= 0;
        char num[32];
        snprintf(num, sizeof(num), "%u", s->vcpus);
        x.ok &= xmlTextWriterWriteElementNS(x.w, BAD_CAST "hvwg", BAD_CAST "cores", NULL, BAD_CAST num) >= 0;
        snprintf(num, sizeof(num), "%llu", (unsigned long long)s->memory_mib);
        x.ok &= xmlTextWriterWriteElementNS(x.w, BAD_CAST "hvwg", BAD_CAST "memory_mib", NULL, BAD_CAST num) >= 0;
        x.ok &= xmlTextWriterStartElementNS(x.w, BAD_CAST "hvwg", BAD_CAST "scratch", NULL) >= 0;
        snprintf(num, sizeof(num), "%llu", (unsigned long long)s->scratch_bytes);
        at(&x, "bytes", num);
        at(&x, "path", s->scratch_path ? s->scratch_path : "");
        at(&x, "uuid", s->scratch_uuid ? s->scratch_uuid : "");
        end(&x);
        snprintf(num, sizeof(num), "%llu", (unsigned long long)s->created_usec);
        x.ok &= xmlTextWriterWriteElementNS(x.w, BAD_CAST "hvwg", BAD_CAST "created_usec", NULL, BAD_CAST num) >= 0;
        if (s->machine_root)
                x.ok &= xmlTextWriterWriteElementNS(x.w, BAD_CAST "hvwg", BAD_CAST "machine_root", NULL, BAD_CAST s->machine_root) >= 0;
        snprintf(num, sizeof(num), "%u", s->owner);
        x.ok &= xmlTextWriterWriteElementNS(x.w, BAD_CAST "hvwg", BAD_CAST "owner", NULL, BAD_CAST num) >= 0;
        x.ok &= xmlTextWriterWriteElementNS(x.w, BAD_CAST "hvwg", BAD_CAST "transient", NULL,
                                            BAD_CAST(s->transient ? "true" : "false")) >= 0;
        x.ok &= xmlTextWriterWriteElementNS(x.w, BAD_CAST "hvwg", BAD_CAST "hypervisor", NULL, BAD_CAST dom_hv_name(s->hv)) >= 0;
        x.ok &= xmlTextWriterWriteElementNS(x.w, BAD_CAST "hvwg", BAD_CAST "network", NULL, BAD_CAST(s->network ? s->network : "")) >= 0;
        end(&x); /* hvwg:machine */
        end(&x); /* metadata */

        el(&x, "memory");
        at(&x, "unit", "MiB");
        x.ok &= xmlTextWriterWriteFormatString(x.w, "%llu", (unsigned long long)s->memory_mib) >= 0;
        end(&x);
        textf_el(&x, "vcpu", "%llu", s->vcpus);
        if (s->hv == DOM_XEN_PV) /* the schema wants it before <os> */
                text_el(&x, "bootloader", s->bootloader ? s->bootloader : "pygrub");
        el(&x, "os");
        el(&x, "type");
        at(&x, "arch", "x86_64");
        if (s->hv == DOM_XEN_PV) {
                at(&x, "machine", "xenpv");
                x.ok &= xmlTextWriterWriteString(x.w, BAD_CAST "xen") >= 0;
        } else {
                at(&x, "machine", xen ? "xenfv" : "pc");
                x.ok &= xmlTextWriterWriteString(x.w, BAD_CAST "hvm") >= 0;
        }
        end(&x);
        end(&x); /* os */
        if (s->hv != DOM_XEN_PV) {
                el(&x, "features");
                el(&x, "acpi");
                end(&x);
                el(&x, "apic");
                end(&x);
                end(&x);
        }
        if (s->hv == DOM_KVM) {
                el(&x, "cpu");
                at(&x, "mode", "host-passthrough");
                end(&x);
        }
        text_el(&x, "on_poweroff", "destroy");
        text_el(&x, "on_reboot", "restart");
        text_el(&x, "on_crash", "destroy");

        el(&x, "devices");
        disk(&x, s, s->root_path, false, xen ? "xvda" : "vda", true);
        if (s->scratch_path)
                disk(&x, s, s->scratch_path, s->scratch_is_block, xen ? "xvdb" : "vdb", false);
        if (s->context_iso)
                cdrom(&x, s);
        if (s->network && s->network[0]) {
                el(&x, "interface");
                at(&x, "type", "network");
                el(&x, "source");
                at(&x, "network", s->network);
                end(&x);
                if (!xen) {
                        el(&x, "model");
                        at(&x, "type", "virtio");
                        end(&x);
                }
                end(&x);
        }
        if (!xen && s->console_log) {
                el(&x, "serial");
                at(&x, "type", "file");
                el(&x, "source");
                at(&x, "path", s->console_log);
                end(&x);
                el(&x, "target");
                at(&x, "port", "0");
                end(&x);
                end(&x);
                el(&x, "console");
                at(&x, "type", "file");
                el(&x, "source");
                at(&x, "path", s->console_log);
                end(&x);
                el(&x, "target");
                at(&x, "type", "serial");
                at(&x, "port", "0");
                end(&x);
                end(&x);
        } else {
                /* libxl has no file-backed serial device: a pty, logged by xenconsoled */
                el(&x, "console");
                at(&x, "type", "pty");
                el(&x, "target");
                at(&x, "type", s->hv == DOM_XEN_PV ? "xen" : "serial");
                at(&x, "port", "0");
                end(&x);
                end(&x);
        }
        if (!xen) {
                el(&x, "rng");
                at(&x, "model", "virtio");
                el(&x, "backend");
                at(&x, "model", "random");
                x.ok &= xmlTextWriterWriteString(x.w, BAD_CAST "/dev/urandom") >= 0;
                end(&x);
                end(&x);
                el(&x, "memballoon");
                at(&x, "model", "virtio");
                end(&x);
        }
        end(&x); /* devices */
        end(&x); /* domain */
        x.ok &= xmlTextWriterEndDocument(x.w) >= 0;
        xmlFreeTextWriter(x.w);
        int r = 0;
        if (!x.ok)
                r = hv_fail(e, HV_E_ERRNO, EIO, "cannot build the domain XML");
        else if (!(*ret = strdup((const char *)xmlBufferContent(buf))))
                r = hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        xmlBufferFree(buf);
        return r;
}

static xmlNodePtr find_machine(xmlNodePtr n) {
        for (; n; n = n->next) {
                if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, "machine") == 0 && n->ns &&
                    strcmp((const char *)n->ns->href, HVWG_XML_NS) == 0)
                        return n;
                xmlNodePtr c = find_machine(n->children);
                if (c)
                        return c;
        }
        return NULL;
}

int domxml_read_meta(const char *xml, struct dom_meta *m) {
        memset(m, 0, sizeof(*m));
        xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "metadata.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (!doc)
                return -EBADMSG;
        xmlNodePtr root = xmlDocGetRootElement(doc);
        /* virDomainGetMetadata returns our element alone, with its namespace stripped */
        xmlNodePtr mach = root && !root->ns && strcmp((const char *)root->name, "machine") == 0 ? root : find_machine(root);
        int r = mach ? 0 : -ENOENT;
        for (xmlNodePtr c = mach ? mach->children : NULL; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE)
                        continue;
                const char *n = (const char *)c->name;
                xmlChar *v = xmlNodeGetContent(c);
                const char *s = v ? (const char *)v : "";
                if (strcmp(n, "image") == 0)
                        snprintf(m->image, sizeof(m->image), "%s", s);
                else if (strcmp(n, "cores") == 0)
                        m->cores = (unsigned)strtoul(s, NULL, 10);
                else if (strcmp(n, "memory_mib") == 0)
                        m->memory_mib = strtoull(s, NULL, 10);
                else if (strcmp(n, "created_usec") == 0)
                        m->created_usec = strtoull(s, NULL, 10);
                else if (strcmp(n, "machine_root") == 0)
                        snprintf(m->machine_root, sizeof(m->machine_root), "%s", s);
                else if (strcmp(n, "owner") == 0)
                        m->owner = (unsigned)strtoul(s, NULL, 10);
                else if (strcmp(n, "transient") == 0)
                        m->transient = strcmp(s, "true") == 0;
                else if (strcmp(n, "hypervisor") == 0)
                        snprintf(m->hypervisor, sizeof(m->hypervisor), "%s", s);
                else if (strcmp(n, "network") == 0)
                        snprintf(m->network, sizeof(m->network), "%s", s);
                else if (strcmp(n, "scratch") == 0) {
                        xmlChar *b = xmlGetProp(c, BAD_CAST "bytes"), *p = xmlGetProp(c, BAD_CAST "path"),
                                *u = xmlGetProp(c, BAD_CAST "uuid");
                        m->scratch_bytes = b ? strtoull((const char *)b, NULL, 10) : 0;
                        snprintf(m->scratch_path, sizeof(m->scratch_path), "%s", p ? (const char *)p : "");
                        snprintf(m->scratch_uuid, sizeof(m->scratch_uuid), "%s", u ? (const char *)u : "");
                        xmlFree(b);
                        xmlFree(p);
                        xmlFree(u);
                }
                xmlFree(v);
        }
        xmlFreeDoc(doc);
        return r;
}
