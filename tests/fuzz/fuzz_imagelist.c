/* libFuzzer target: an image list's verified body (imagelist.c) and a subscription record
 * (subscriptions.c's format, pure). Invariants: a refusal is ListInvalid with a message; an
 * accepted list has its required fields, digests of 128 lower-case hex digits, http(s) URIs,
 * sizes > 0, identifiers of [A-Za-z0-9._-] and unique; the names derived from it are valid
 * image names or refused; the update rules answer without crashing; a record that parses
 * formats back to the same record. */
#include <stdlib.h>
#include <string.h>

#include "imagelist.h"
#include "subrec.h"

static void check_list(const struct imagelist *l) {
        if (!l->identifier[0] || !l->version[0] || !l->endorser.dn[0] || !l->endorser.ca[0] || l->n_images > IL_MAX_IMAGES)
                __builtin_trap();
        for (unsigned i = 0; i < l->n_images; i++) {
                const struct il_image *m = &l->images[i];
                if (strlen(m->sha512) != 128 || strspn(m->sha512, "0123456789abcdef") != 128 || !m->size ||
                    (strncmp(m->uri, "http://", 7) && strncmp(m->uri, "https://", 8)) || !m->identifier[0] || !m->version[0])
                        __builtin_trap();
                for (unsigned k = 0; k < i; k++)
                        if (!strcmp(l->images[k].identifier, m->identifier))
                                __builtin_trap();
                char name[HV_NAME_MAX + 8];
                if (imagelist_image_name("p-", m, name, sizeof(name)) == 0 && (!hv_name_valid(name) || strlen(name) > HV_NAME_MAX))
                        __builtin_trap();
                if (imagelist_alias("", m, name, sizeof(name)) == 0 && !hv_name_valid(name))
                        __builtin_trap();
        }
        struct hv_error e = { 0 };
        (void)imagelist_check_update(l, l, 1800000000, &e);
        (void)imagelist_check_claim(l, l->endorser.dn, l->endorser.ca, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct imagelist l;
        struct hv_error e = { 0 };
        int r = imagelist_parse((const char *)data, size, &l, &e);
        if (r < 0 && (e.kind != HV_E_LIST_INVALID && e.kind != HV_E_ERRNO))
                __builtin_trap();
        if (r < 0 && !e.msg[0])
                __builtin_trap();
        if (r == 0)
                check_list(&l);
        imagelist_free(&l);
        /* the same bytes as a subscription record */
        char *text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;
        struct sub_state st, again;
        if (sub_state_parse(&st, text) == 0) {
                char *out = sub_state_format(&st), *out2 = NULL;
                if (out && (sub_state_parse(&again, out) != 0 || !(out2 = sub_state_format(&again)) || strcmp(out, out2) != 0))
                        __builtin_trap();
                free(out);
                free(out2);
        }
        free(text);
        return 0;
}
