/* images.c: status, fetch, images, inspect, rm. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* ---- status ---- */

int cmd_status(sd_bus *bus) {
        static const struct {
                const char *prop, *key;
                char type;
        } props[] = {
                { "Version", "version", 's' },
                { "ImageRoot", "image_root", 's' },
                { "MachineRoot", "machine_root", 's' },
                { "LibvirtURI", "libvirt_uri", 's' },
                { "Hypervisor", "hypervisor", 's' },
                { "ScratchPerCoreGiB", "scratch_per_core_gib", 't' },
                { "MemoryPerCoreMiB", "memory_per_core_mib", 't' },
                { "MaxImageSize", "max_image_size", 't' },
                { "ActiveJobs", "active_jobs", 'u' },
                { "CommittedCores", "committed_cores", 'u' },
                { "CapacityCores", "capacity_cores", 'u' },
                { "CommittedMemoryMiB", "committed_memory_mib", 't' },
                { "CapacityMemoryMiB", "capacity_memory_mib", 't' },
                { "CommittedScratchBytes", "committed_scratch_bytes", 't' },
        };
        json_object *o = json_object_new_object();
        for (size_t i = 0; i < ELEMENTSOF(props); i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                int r;
                if (props[i].type == 's') {
                        char *v = NULL;
                        if ((r = sd_bus_get_property_string(bus, BUS_NAME, OBJ, MGR, props[i].prop, &e, &v)) >= 0)
                                json_object_object_add(o, props[i].key, json_object_new_string(v));
                        free(v);
                } else if (props[i].type == 'u') {
                        uint32_t v = 0;
                        if ((r = sd_bus_get_property_trivial(bus, BUS_NAME, OBJ, MGR, props[i].prop, &e, 'u', &v)) >= 0)
                                json_object_object_add(o, props[i].key, json_object_new_int64(v));
                } else {
                        uint64_t v = 0;
                        if ((r = sd_bus_get_property_trivial(bus, BUS_NAME, OBJ, MGR, props[i].prop, &e, 't', &v)) >= 0)
                                json_object_object_add(o, props[i].key, json_object_new_uint64(v));
                }
                if (r < 0) {
                        json_object_put(o);
                        r = ctl_fail_bus("reading properties", &e, r);
                        sd_bus_error_free(&e);
                        return r;
                }
        }
        if (arg.json) {
                ctl_print_json(o);
                return EXIT_OK;
        }
        json_object_object_foreach(o, key, val) {
                char b[32];
                if (json_object_get_type(val) == json_type_string)
                        printf("%-24s %s\n", key, json_object_get_string(val));
                else if (strcmp(key, "max_image_size") == 0 || strcmp(key, "committed_scratch_bytes") == 0)
                        printf("%-24s %s\n", key, ctl_size(json_object_get_uint64(val), b, sizeof(b)));
                else
                        printf("%-24s %llu\n", key, (unsigned long long)json_object_get_uint64(val));
        }
        json_object_put(o);
        return EXIT_OK;
}

/* ---- fetch ---- */

int cmd_fetch(sd_bus *bus, const char *uri, const char *name) {
        uint64_t size = 0, max_size = 0;
        if (arg.size && hv_parse_size(arg.size, &size) < 0)
                return ctl_usage("invalid --size %s", arg.size);
        if (arg.max_size && (hv_parse_size(arg.max_size, &max_size) < 0 || max_size == 0))
                return ctl_usage("invalid --max-size %s (e.g. 20G)", arg.max_size);
        sd_bus_message *m = NULL;
        int r = ctl_new_call(bus, &m, "FetchImage");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", uri, name ? name : "");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg.sha512)
                r = sd_bus_message_append(m, "{sv}", "sha512", "s", arg.sha512);
        if (r >= 0 && arg.size)
                r = sd_bus_message_append(m, "{sv}", "size", "t", size);
        if (r >= 0 && arg.max_size)
                r = sd_bus_message_append(m, "{sv}", "max_size", "t", max_size);
        if (r >= 0 && arg.replace)
                r = sd_bus_message_append(m, "{sv}", "replace", "b", 1);
        if (r >= 0 && arg.raw)
                r = sd_bus_message_append(m, "{sv}", "compression", "s", "none");
        return ctl_run_job(bus, m, r, "FetchImage");
}

/* ---- images ---- */

/* InspectImageContents as JSON; NULL when the call failed (reported unless quiet). */
static json_object *image_contents(sd_bus *bus, const char *name, int *rc, bool quiet) {
        sd_bus_message *reply = NULL;
        json_object *o = NULL;
        int r;
        if (quiet) {
                r = sd_bus_call_method(bus, BUS_NAME, OBJ, MGR, "InspectImageContents", NULL, &reply, "s", name);
                if (r < 0)
                        return NULL;
        } else if ((r = ctl_call(bus, "InspectImageContents", &reply, "s", name)) < 0) {
                *rc = -r;
                return NULL;
        }
        r = ctl_read_dict(reply, &o);
        sd_bus_message_unref(reply);
        if (r < 0) {
                *rc = quiet ? EXIT_FAILED : ctl_bad_reply(r);
                return NULL;
        }
        return o;
}

int cmd_images(sd_bus *bus) {
        sd_bus_message *reply = NULL;
        int r = ctl_call(bus, "ListImages", &reply, "");
        if (r < 0)
                return -r;
        json_object *arr = json_object_new_array();
        r = sd_bus_message_enter_container(reply, 'a', "(sttts)");
        const char *name, *source;
        uint64_t size, alloc, created;
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sttts)", &name, &size, &alloc, &created, &source)) > 0) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "size", json_object_new_uint64(size));
                json_object_object_add(o, "allocated", json_object_new_uint64(alloc));
                json_object_object_add(o, "created_usec", json_object_new_uint64(created));
                json_object_object_add(o, "source", json_object_new_string(source));
                json_object_array_add(arr, o);
        }
        sd_bus_message_unref(reply);
        if (r < 0) {
                json_object_put(arr);
                return ctl_bad_reply(r);
        }
        size_t n = json_object_array_length(arr);
        for (size_t i = 0; i < n; i++) { /* the OS each holds (scanned at import) */
                json_object *o = json_object_array_get_idx(arr, i);
                int rc;
                json_object *ct = image_contents(bus, ctl_json_str(o, "name"), &rc, true);
                const char *os = ct ? ctl_json_str(ct, "os_pretty_name") : "";
                json_object_object_add(o, "os", json_object_new_string(*os ? os : ct ? ctl_json_str(ct, "os_id") : ""));
                json_object_put(ct);
        }
        if (arg.json) {
                ctl_print_json(arr);
                return EXIT_OK;
        }
        if (n && ctl_legend())
                printf("%-24s %12s %12s %-19s %-28s %s\n", "NAME", "SIZE", "ALLOCATED", "CREATED", "OS", "SOURCE");
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(arr, i), *v;
                char a[32], b[32], c[32];
                json_object_object_get_ex(o, "name", &v);
                const char *nm = json_object_get_string(v);
                json_object_object_get_ex(o, "size", &v);
                uint64_t s = json_object_get_uint64(v);
                json_object_object_get_ex(o, "allocated", &v);
                uint64_t al = json_object_get_uint64(v);
                json_object_object_get_ex(o, "created_usec", &v);
                uint64_t cr = json_object_get_uint64(v);
                json_object_object_get_ex(o, "source", &v);
                const char *os = ctl_json_str(o, "os");
                printf("%-24s %12s %12s %-19s %-28.28s %s\n", nm, ctl_size(s, a, sizeof(a)), ctl_size(al, b, sizeof(b)),
                       ctl_time(cr, c, sizeof(c)), *os ? os : "-", json_object_get_string(v));
        }
        if (!n)
                ctl_none("images");
        json_object_put(arr);
        return EXIT_OK;
}

/* ---- inspect: GetImage (sha512, the machines using it) and the partition table ---- */

static int read_partitions(sd_bus_message *reply, json_object *o) {
        const char *table;
        uint64_t size;
        int r = sd_bus_message_read(reply, "st", &table, &size);
        if (r < 0)
                return r;
        json_object_object_add(o, "table", json_object_new_string(table));
        json_object *arr = json_object_new_array();
        json_object_object_add(o, "partitions", arr);
        r = sd_bus_message_enter_container(reply, 'a', "(uybtts)");
        uint32_t num;
        uint8_t type;
        int boot;
        uint64_t off, psize;
        const char *fs;
        while (r >= 0 && (r = sd_bus_message_read(reply, "(uybtts)", &num, &type, &boot, &off, &psize, &fs)) > 0) {
                json_object *p = json_object_new_object();
                json_object_object_add(p, "number", json_object_new_int64(num));
                json_object_object_add(p, "type", json_object_new_int64(type));
                json_object_object_add(p, "bootable", json_object_new_boolean(boot));
                json_object_object_add(p, "offset", json_object_new_uint64(off));
                json_object_object_add(p, "size", json_object_new_uint64(psize));
                json_object_object_add(p, "filesystem", json_object_new_string(fs));
                json_object_array_add(arr, p);
        }
        return r;
}

/* inspect --lint: the findings for producers; exit 1 when there is an error. */
static int lint(sd_bus *bus, const char *name) {
        int rc = EXIT_OK;
        json_object *o = image_contents(bus, name, &rc, false), *fs;
        if (!o)
                return rc;
        unsigned errors = 0;
        json_object_object_get_ex(o, "findings", &fs);
        for (size_t i = 0; fs && i < json_object_array_length(fs); i++)
                errors += strcmp(json_object_get_string(json_object_array_get_idx(json_object_array_get_idx(fs, i), 0)), "error") == 0;
        if (arg.json) {
                ctl_print_json(o);
                return errors ? EXIT_FAILED : EXIT_OK;
        }
        printf("image %s: root partition %s; bootloader %s\nscratch: %s\n", name, ctl_json_str(o, "root"),
               *ctl_json_str(o, "bootloader") ? ctl_json_str(o, "bootloader") : "none", ctl_json_str(o, "scratch"));
        for (size_t i = 0; fs && i < json_object_array_length(fs); i++) {
                json_object *f = json_object_array_get_idx(fs, i);
                printf("%-7s %-22s %s\n", json_object_get_string(json_object_array_get_idx(f, 0)),
                       json_object_get_string(json_object_array_get_idx(f, 1)), json_object_get_string(json_object_array_get_idx(f, 2)));
        }
        json_object_put(o);
        return errors ? EXIT_FAILED : EXIT_OK;
}

int cmd_inspect(sd_bus *bus, const char *name) {
        if (arg.lint)
                return lint(bus, name);
        sd_bus_message *reply = NULL;
        json_object *o = NULL;
        int r = ctl_call(bus, "GetImage", &reply, "s", name);
        if (r < 0)
                return -r;
        r = ctl_read_dict(reply, &o);
        sd_bus_message_unref(reply);
        if (r < 0)
                return ctl_bad_reply(r);
        reply = NULL;
        if ((r = ctl_call(bus, "InspectImage", &reply, "s", name)) < 0) {
                json_object_put(o);
                return -r;
        }
        r = read_partitions(reply, o);
        sd_bus_message_unref(reply);
        if (r < 0) {
                json_object_put(o);
                return ctl_bad_reply(r);
        }
        int rc;
        json_object *contents = image_contents(bus, name, &rc, true);
        if (contents)
                json_object_object_add(o, "contents", contents);
        if (arg.json) {
                ctl_print_json(o);
                return EXIT_OK;
        }
        char b[32], c[32];
        printf("Image %s: %s table, %s (%s allocated), created %s\n", name, ctl_json_str(o, "table"), ctl_size(ctl_json_u64(o, "size"), b, sizeof(b)),
               ctl_size(ctl_json_u64(o, "allocated"), c, sizeof(c)), ctl_time(ctl_json_u64(o, "created_usec"), c, sizeof(c)));
        printf("Source:   %s\nSHA-512:  %s\n", ctl_json_str(o, "source"), *ctl_json_str(o, "sha512") ? ctl_json_str(o, "sha512") : "-");
        json_object *ct;
        if (json_object_object_get_ex(o, "contents", &ct)) {
                const char *os = ctl_json_str(ct, "os_pretty_name");
                printf("OS:       %s\nKernels: ", *os ? os : *ctl_json_str(ct, "os_id") ? ctl_json_str(ct, "os_id") : "unknown");
                json_object *ks;
                json_object_object_get_ex(ct, "kernels", &ks);
                for (size_t i = 0; ks && i < json_object_array_length(ks); i++)
                        printf(" %s", json_object_get_string(json_object_array_get_idx(ks, i)));
                printf("%s\nScratch:  %s\n", ks && json_object_array_length(ks) ? "" : " none", ctl_json_str(ct, "scratch"));
        }
        json_object *ms;
        json_object_object_get_ex(o, "machines", &ms);
        printf("Machines:");
        for (size_t i = 0; ms && i < json_object_array_length(ms); i++)
                printf("%s%s", i ? ", " : " ", json_object_get_string(json_object_array_get_idx(ms, i)));
        printf("%s\n\n", ms && json_object_array_length(ms) ? "" : " none");
        json_object *arr;
        json_object_object_get_ex(o, "partitions", &arr);
        if (ctl_legend())
                printf("%-4s %-6s %-4s %14s %14s %s\n", "NR", "TYPE", "BOOT", "OFFSET", "SIZE", "FILESYSTEM");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *p = json_object_array_get_idx(arr, i), *v;
                char s1[32], s2[32];
                json_object_object_get_ex(p, "bootable", &v);
                printf("%-4d 0x%02x   %-4s %14s %14s %s\n", (int)ctl_json_u64(p, "number"), (int)ctl_json_u64(p, "type"), json_object_get_boolean(v) ? "*" : "",
                       ctl_size(ctl_json_u64(p, "offset"), s1, sizeof(s1)), ctl_size(ctl_json_u64(p, "size"), s2, sizeof(s2)), ctl_json_str(p, "filesystem"));
        }
        json_object_put(o);
        return EXIT_OK;
}

int cmd_rm(sd_bus *bus, const char *name) {
        int r = ctl_call(bus, "RemoveImage", NULL, "s", name);
        return r < 0 ? -r : EXIT_OK;
}
