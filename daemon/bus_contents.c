/* bus_contents.c: InspectImageContents (an addition to API.md): what an image's filesystems
 * hold and the producers' findings, answered from memory (scanned once, at import). */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "bus.h"
#include "contents.h"

int bus_method_inspect_image_contents(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        const char *name;
        struct image *img;
        int r = bus_read_image(m, msg, &name, &img, ret);
        if (r < 0)
                return r;
        static const struct contents none = { 0 };
        const struct contents *c = img->contents ? img->contents : &none;
        _cleanup_free_ struct ct_finding *f = calloc(CT_MAX_FINDINGS, sizeof(*f));
        if (!f)
                return -ENOMEM;
        unsigned nf = contents_lint(c, f);
        char scratch[256];
        contents_scratch(c, scratch, sizeof(scratch));
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sv}");
        BUS_DICT_ENTRY(reply, "scanned", "b", (int)c->scanned);
        BUS_DICT_ENTRY(reply, "os_id", "s", c->os_id);
        BUS_DICT_ENTRY(reply, "os_version_id", "s", c->os_version_id);
        BUS_DICT_ENTRY(reply, "os_pretty_name", "s", c->os_pretty_name);
        BUS_DICT_ENTRY(reply, "hostname", "s", c->hostname);
        BUS_DICT_ENTRY(reply, "root", "u", c->root);
        BUS_DICT_ENTRY(reply, "boot", "u", c->boot);
        BUS_DICT_ENTRY(reply, "bootloader", "s", c->bootloader);
        BUS_DICT_ENTRY(reply, "scratch", "s", scratch);
        if (r >= 0)
                r = bus_open_dict_array(reply, "kernels", "s");
        for (unsigned i = 0; i < c->n_kernels && r >= 0; i++)
                r = sd_bus_message_append(reply, "s", c->kernels[i].version);
        if (r >= 0)
                r = bus_close_dict_array(reply);
        if (r >= 0)
                r = bus_open_dict_array(reply, "fstab", "(ssss)");
        for (unsigned i = 0; i < c->n_fstab && r >= 0; i++)
                r = sd_bus_message_append(reply, "(ssss)", c->fstab[i].spec, c->fstab[i].file, c->fstab[i].vfstype, c->fstab[i].options);
        if (r >= 0)
                r = bus_close_dict_array(reply);
        if (r >= 0)
                r = bus_open_dict_array(reply, "warnings", "s");
        for (unsigned i = 0; i < nf && r >= 0; i++)
                if (f[i].level != CT_NOTE)
                        r = sd_bus_message_append(reply, "s", f[i].message);
        if (r >= 0)
                r = bus_close_dict_array(reply);
        if (r >= 0)
                r = bus_open_dict_array(reply, "findings", "(sss)");
        for (unsigned i = 0; i < nf && r >= 0; i++)
                r = sd_bus_message_append(reply, "(sss)", contents_level_name(f[i].level), f[i].code, f[i].message);
        if (r >= 0)
                r = bus_close_dict_array(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}
