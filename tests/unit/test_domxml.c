/* Unit tests of the domain XML builder: KVM, QEMU, Xen HVM and PV outputs validate with
 * virt-xml-validate; names and paths with XML metacharacters survive escaping; sizes follow
 * the spec; our metadata reads back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domxml.h"

static void validate(const char *xml, const char *what) {
        char path[] = "/tmp/hvwg-domxml-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, xml, strlen(xml)), (ssize_t)strlen(xml));
        close(fd);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "virt-xml-validate %s domain >/dev/null 2>&1", path);
        int r = system(cmd);
        if (r != 0) {
                snprintf(cmd, sizeof(cmd), "virt-xml-validate %s domain; cat %s", path, path);
                (void)!system(cmd);
                fail_msg("%s: virt-xml-validate failed", what);
        }
        unlink(path);
}

static struct dom_spec base(enum dom_hv hv) {
        return (struct dom_spec){
                .name = "vm-1", .uuid = "2f1c3d2e-0000-4000-8000-000000000001", .hv = hv, .vcpus = 4, .memory_mib = 8192,
                .root_path = "/var/lib/hvwgd/machines/vm-1/root.raw", .scratch_path = "/var/lib/hvwgd/machines/vm-1/scratch.img",
                .direct_io = true, .console_log = "/var/lib/hvwgd/machines/vm-1/console.log", .image = "sl7",
                .scratch_uuid = "5515bc95-8de2-4b84-a82d-9d3803ebf12e", .scratch_bytes = 80ULL << 30, .created_usec = 1234,
        };
}

static void test_kvm(void **s) {
        (void)s;
        struct dom_spec d = base(DOM_KVM);
        d.network = "default";
        char *xml = NULL;
        struct hv_error e = { 0 };
        assert_int_equal(domxml_build(&d, &xml, &e), 0);
        validate(xml, "kvm");
        assert_non_null(strstr(xml, "<domain type=\"kvm\">"));
        assert_non_null(strstr(xml, "<uuid>2f1c3d2e-0000-4000-8000-000000000001</uuid>"));
        assert_non_null(strstr(xml, "<memory unit=\"MiB\">8192</memory>"));
        assert_non_null(strstr(xml, "<vcpu>4</vcpu>"));
        assert_non_null(strstr(xml, "<cpu mode=\"host-passthrough\"/>"));
        assert_non_null(strstr(xml, "<driver name=\"qemu\" type=\"raw\" cache=\"none\" io=\"native\" discard=\"unmap\"/>"));
        assert_non_null(strstr(xml, "<target dev=\"vda\" bus=\"virtio\"/>"));
        assert_non_null(strstr(xml, "<target dev=\"vdb\" bus=\"virtio\"/>"));
        assert_non_null(strstr(xml, "<source network=\"default\"/>"));
        assert_non_null(strstr(xml, "<serial type=\"file\">"));
        assert_non_null(strstr(xml, "<rng model=\"virtio\">"));
        assert_non_null(strstr(xml, "<memballoon model=\"virtio\"/>"));
        assert_non_null(strstr(xml, "xmlns:hvwg=\"https://hepix.org/hvwg/1\""));
        struct dom_meta m;
        assert_int_equal(domxml_read_meta(xml, &m), 0);
        assert_string_equal(m.image, "sl7");
        assert_int_equal(m.cores, 4);
        assert_int_equal(m.memory_mib, 8192);
        assert_int_equal(m.scratch_bytes, 80ULL << 30);
        assert_string_equal(m.scratch_path, "/var/lib/hvwgd/machines/vm-1/scratch.img");
        assert_string_equal(m.scratch_uuid, "5515bc95-8de2-4b84-a82d-9d3803ebf12e");
        assert_int_equal(m.created_usec, 1234);
        free(xml);
}

static void test_qemu_writeback_no_scratch(void **s) {
        (void)s;
        struct dom_spec d = base(DOM_QEMU);
        d.scratch_path = NULL;
        d.scratch_bytes = 0;
        d.direct_io = false;
        char *xml = NULL;
        struct hv_error e = { 0 };
        assert_int_equal(domxml_build(&d, &xml, &e), 0);
        validate(xml, "qemu");
        assert_non_null(strstr(xml, "<domain type=\"qemu\">"));
        assert_null(strstr(xml, "host-passthrough"));
        assert_null(strstr(xml, "vdb"));
        assert_null(strstr(xml, "<interface"));
        assert_non_null(strstr(xml, "cache=\"writeback\""));
        assert_null(strstr(xml, "io=\"native\""));
        free(xml);
}

static void test_xen(void **s) {
        (void)s;
        struct dom_spec d = base(DOM_XEN_HVM);
        d.scratch_path = "/dev/disk/by-partlabel/hvwg-scratch-1";
        d.scratch_is_block = true;
        d.network = "xenbr0";
        char *xml = NULL;
        struct hv_error e = { 0 };
        assert_int_equal(domxml_build(&d, &xml, &e), 0);
        validate(xml, "xen hvm");
        assert_non_null(strstr(xml, "<domain type=\"xen\">"));
        assert_non_null(strstr(xml, "machine=\"xenfv\">hvm</type>"));
        assert_non_null(strstr(xml, "<target dev=\"xvda\" bus=\"xen\"/>"));
        assert_non_null(strstr(xml, "<driver name=\"phy\"/>"));
        assert_non_null(strstr(xml, "<source dev=\"/dev/disk/by-partlabel/hvwg-scratch-1\"/>"));
        free(xml);
        d = base(DOM_XEN_PV);
        assert_int_equal(domxml_build(&d, &xml, &e), 0);
        validate(xml, "xen pv");
        assert_non_null(strstr(xml, "<bootloader>pygrub</bootloader>"));
        assert_non_null(strstr(xml, "machine=\"xenpv\">xen</type>"));
        assert_non_null(strstr(xml, "<target type=\"xen\" port=\"0\"/>"));
        free(xml);
}

/* The context disk: an IDE CD-ROM on kvm/qemu (machine type pc) and Xen HVM, read-only; a
 * read-only xen disk on Xen PV; the scratch disk stays the second disk. */
static void test_context_cdrom(void **s) {
        (void)s;
        static const struct { enum dom_hv hv; const char *what, *target, *device; } t[] = {
                { DOM_KVM, "kvm", "<target dev=\"hdc\" bus=\"ide\"/>", "device=\"cdrom\"" },
                { DOM_QEMU, "qemu", "<target dev=\"hdc\" bus=\"ide\"/>", "device=\"cdrom\"" },
                { DOM_XEN_HVM, "xen hvm", "<target dev=\"hdc\" bus=\"ide\"/>", "device=\"cdrom\"" },
                { DOM_XEN_PV, "xen pv", "<target dev=\"xvdc\" bus=\"xen\"/>", "device=\"disk\"" },
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                struct dom_spec d = base(t[i].hv);
                d.context_iso = "/var/lib/hvwgd/machines/vm-1/context.iso";
                char *xml = NULL;
                struct hv_error e = { 0 };
                assert_int_equal(domxml_build(&d, &xml, &e), 0);
                validate(xml, t[i].what);
                const char *iso = strstr(xml, "<source file=\"/var/lib/hvwgd/machines/vm-1/context.iso\"/>");
                assert_non_null(iso);
                const char *disk = iso;
                while (disk > xml && strncmp(disk, "<disk ", 6) != 0)
                        disk--;
                const char *end = strstr(iso, "</disk>");
                assert_non_null(end);
                char block[512];
                snprintf(block, sizeof(block), "%.*s", (int)(end - disk), disk);
                assert_non_null(strstr(block, t[i].device));
                assert_non_null(strstr(block, t[i].target));
                assert_non_null(strstr(block, "<readonly/>"));
                /* order: root, scratch, then the context disk */
                const char *scratch = strstr(xml, "scratch.img");
                assert_true(scratch && scratch < iso);
                free(xml);
        }
}

static void test_escaping(void **s) {
        (void)s;
        struct dom_spec d = base(DOM_KVM);
        d.root_path = "/srv/a&b/<x>/'q'/\"d\"/root.raw";
        d.console_log = "/srv/a&b/console.log";
        d.image = "img&<>";
        char *xml = NULL;
        struct hv_error e = { 0 };
        assert_int_equal(domxml_build(&d, &xml, &e), 0);
        validate(xml, "escaping");
        assert_non_null(strstr(xml, "/srv/a&amp;b/&lt;x&gt;/"));
        assert_null(strstr(xml, "a&b"));
        struct dom_meta m;
        assert_int_equal(domxml_read_meta(xml, &m), 0);
        assert_string_equal(m.image, "img&<>");
        free(xml);
}

static void test_refusals(void **s) {
        (void)s;
        struct dom_spec d = base(DOM_KVM);
        d.uuid = "short";
        char *xml = NULL;
        struct hv_error e = { 0 };
        assert_true(domxml_build(&d, &xml, &e) < 0);
        d = base(DOM_KVM);
        d.vcpus = 0;
        assert_true(domxml_build(&d, &xml, &e) < 0);
        struct dom_meta m;
        assert_true(domxml_read_meta("<domain><name>x</name></domain>", &m) < 0);
        /* the form virDomainGetMetadata returns */
        assert_int_equal(domxml_read_meta("<machine><image>sl7</image><cores>2</cores></machine>", &m), 0);
        assert_string_equal(m.image, "sl7");
        assert_int_equal(m.cores, 2);
        assert_true(domxml_read_meta("not xml <<", &m) < 0);
        enum dom_hv hv;
        assert_int_equal(dom_hv_parse("xen-pv", &hv), 0);
        assert_int_equal(hv, DOM_XEN_PV);
        assert_true(dom_hv_parse("vmware", &hv) < 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kvm), cmocka_unit_test(test_qemu_writeback_no_scratch), cmocka_unit_test(test_xen),
                cmocka_unit_test(test_context_cdrom), cmocka_unit_test(test_escaping), cmocka_unit_test(test_refusals),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
