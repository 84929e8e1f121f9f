/* libFuzzer target: the configuration parser, size and name validators, image metadata parser. */
#include <string.h>

#include "conf.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct hv_conf c;
        struct hv_error e = { 0 };
        hv_conf_defaults(&c);
        int r = hv_conf_parse(&c, (const char *)data, size, "fuzz.conf", NULL, NULL, &e);
        if (r < 0 && strncmp(e.msg, "fuzz.conf:", 10) != 0)
                __builtin_trap(); /* every config error names file:line */
        if (r >= 0 && (c.max_concurrent == 0 || c.memory_per_core_mib == 0 || c.image_root[0] != '/'))
                __builtin_trap();
        char *s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        uint64_t v;
        (void)hv_parse_size(s, &v);
        if (hv_name_valid(s) && (strchr(s, '/') || strlen(s) > 64 || s[0] == '.'))
                __builtin_trap();
        struct image img = { 0 };
        (void)image_meta_parse(&img, s);
        free(img.source);
        free(img.table);
        free(img.contents);
        free(s);
        return 0;
}
