/* libFuzzer target: CreateMachine's context (context.c) as the bus edge hands it over. Input:
 * entries of (kind byte, key: NUL-terminated, value: 2-byte length + bytes); kinds: user_data,
 * network_config, a meta_data key, a context file, a context variable. Invariants: a refusal is
 * InvalidArgs with a message; an accepted context builds, with user-data and meta-data first,
 * valid file names, meta-data lines "key: \"…\"" without a raw control byte, and context.sh
 * lines that are comments or KEY='…' assignments. */
#include <stdlib.h>
#include <string.h>

#include "context.h"

static void check_built(const struct context_files *cf) {
        if (cf->n < 2 || strcmp(cf->f[0].name, "user-data") || strcmp(cf->f[1].name, "meta-data"))
                __builtin_trap();
        const struct context_file *meta = &cf->f[1];
        for (size_t i = 0; i < meta->len; i++)
                if ((meta->data[i] < 0x20 && meta->data[i] != '\n') || meta->data[i] == 0x7f)
                        __builtin_trap(); /* a raw control byte: a value broke out of its quotes */
        for (size_t i = 2; i < cf->n; i++) {
                if (strcmp(cf->f[i].name, "network-config") && strcmp(cf->f[i].name, "context.sh") &&
                    !context_file_name_valid(cf->f[i].name))
                        __builtin_trap();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct context_input *in = calloc(1, sizeof(*in));
        /* keys and string values need NUL-terminated copies */
        char *store = malloc(size * 2 + 16);
        if (!in || !store) {
                free(in);
                free(store);
                return 0;
        }
        size_t used = 0, i = 0;
        while (i < size) {
                unsigned kind = data[i++] % 5;
                char *key = store + used;
                while (i < size && data[i])
                        store[used++] = (char)data[i++];
                store[used++] = 0;
                i++;
                if (i + 2 > size)
                        break;
                size_t len = (size_t)data[i] | (size_t)data[i + 1] << 8;
                i += 2;
                if (len > size - i)
                        len = size - i;
                char *val = store + used; /* a string value stops at its first NUL, as D-Bus strings do */
                memcpy(val, data + i, len);
                val[len] = 0;
                used += len + 1;
                struct context_blob blob = { (const uint8_t *)val, len };
                struct context_blob text = { (const uint8_t *)val, strlen(val) };
                i += len;
                if (kind == 0) {
                        in->have_user_data = true;
                        in->user_data = blob;
                } else if (kind == 1) {
                        in->have_network_config = true;
                        in->network_config = blob;
                } else if (kind == 2 && in->n_meta < CONTEXT_MAX_ENTRIES)
                        in->meta[in->n_meta++] = (struct context_pair){ key, text };
                else if (kind == 3 && in->n_files < CONTEXT_MAX_ENTRIES)
                        in->files[in->n_files++] = (struct context_pair){ key, blob };
                else if (kind == 4 && in->n_vars < CONTEXT_MAX_ENTRIES)
                        in->vars[in->n_vars++] = (struct context_pair){ key, text };
        }
        struct hv_error e = { 0 };
        int r = context_check(in, 1 << 16, &e);
        if (r < 0 && (e.kind != HV_E_INVALID_ARGS || !e.msg[0]))
                __builtin_trap();
        if (r == 0) {
                struct context_files cf;
                if (context_build(in, "11111111-2222-4333-8444-555555555555", "vm", &cf) == 0) {
                        check_built(&cf);
                        context_files_free(&cf);
                }
        }
        free(store);
        free(in);
        return 0;
}
