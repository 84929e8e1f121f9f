/* refresh.c: the refresh job of an image list subscription, on its worker: download the signed
 * list (conditional on the validators of the last one: an unchanged list costs a 304), verify
 * its S/MIME signature against [Lists] CAPath, the signer against the pinned DNs and the list's
 * own endorser claim, parse it, check it may follow the list we have, and write the record.
 * Any refusal leaves the accepted list and its images as they were. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "errors.h"
#include "fetch.h"
#include "log.h"
#include "smime.h"
#include "subscriptions.h"

struct membuf {
        char *data;
        size_t len, cap, max;
        char etag[256], last_modified[64];
};

static int mem_total(void *ud, uint64_t total, struct hv_error *e) {
        struct membuf *b = ud;
        if (total > b->max)
                return hv_fail(e, HV_E_TOO_LARGE, EFBIG, "the image list is %llu bytes, more than [Lists] MaxListSize (%zu)",
                               (unsigned long long)total, b->max);
        return 0;
}

static int mem_data(void *ud, const uint8_t *p, size_t n, struct hv_error *e) {
        struct membuf *b = ud;
        if (b->len + n > b->max)
                return hv_fail(e, HV_E_TOO_LARGE, EFBIG, "the image list is more than [Lists] MaxListSize (%zu bytes)", b->max);
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 65536;
                while (cap < b->len + n + 1)
                        cap *= 2;
                char *d = realloc(b->data, cap);
                if (!d)
                        return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
        return 0;
}

static void mem_validators(void *ud, const char *etag, const char *last_modified) {
        struct membuf *b = ud;
        snprintf(b->etag, sizeof(b->etag), "%s", etag);
        snprintf(b->last_modified, sizeof(b->last_modified), "%s", last_modified);
}

/* The list at j->st.uri into b. -EALREADY: not modified (304). */
static int download(struct job_ctl *ctl, struct refresh_job *j, struct membuf *b, struct hv_error *e) {
        const struct hv_conf *c = &j->conf->c;
        enum uri_scheme scheme;
        int r = fetch_check_uri(j->st.uri, c, &scheme, e);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = -1;
        if (scheme == URI_FILE && (fd = fetch_open_file(j->st.uri, c, e)) < 0)
                return fd;
        bool conditional = j->prev && scheme != URI_FILE;
        for (unsigned restarts = 0;; restarts++) {
                b->len = 0;
                struct fetch_req req = {
                        .uri = j->st.uri,
                        .uri_shown = j->uri_shown,
                        .fd = fd,
                        .conf = c,
                        .cancel = job_ctl_abort(ctl),
                        .data = mem_data,
                        .total = mem_total,
                        .if_none_match = conditional ? j->st.etag : NULL,
                        .if_modified_since = conditional ? j->st.last_modified : NULL,
                        .validators = mem_validators,
                        .userdata = b,
                };
                r = fetch_run(&req, e);
                if (r != -ERESTART || restarts == 2)
                        return r;
                *e = (struct hv_error){ 0 };
        }
}

/* The signed list in b: verified, parsed, checked. 1: the same version again. */
static int accept(struct refresh_job *j, const struct membuf *b, char **body, size_t *body_len, struct hv_error *e) {
        const struct hv_conf *c = &j->conf->c;
        struct smime_signed sig;
        int r = smime_verify(b->data, b->len, c->lists_ca_path, &sig, e);
        if (r < 0)
                return r;
        if (strcmp(sig.signer_dn, j->st.endorser_dn) != 0 || strcmp(sig.issuer_dn, j->st.ca_dn) != 0) {
                r = hv_fail(e, HV_E_ENDORSER, EPERM, "the list is signed by \"%s\" (CA \"%s\"); this subscription trusts only \"%s\" "
                            "(CA \"%s\")", sig.signer_dn, sig.issuer_dn, j->st.endorser_dn, j->st.ca_dn);
                smime_signed_free(&sig);
                return r;
        }
        r = imagelist_parse(sig.body, sig.body_len, &j->next, e);
        if (r >= 0)
                r = imagelist_check_claim(&j->next, sig.signer_dn, sig.issuer_dn, e);
        if (r >= 0)
                r = imagelist_check_update(j->prev, &j->next, (int64_t)(hv_now_usec() / 1000000), e);
        if (r < 0) {
                imagelist_free(&j->next);
                smime_signed_free(&sig);
                return r;
        }
        *body = sig.body; /* handed over */
        *body_len = sig.body_len;
        return r;
}

static int refresh_run(struct job_ctl *ctl, void *payload, struct hv_error *e) {
        struct refresh_job *j = payload;
        uint32_t id = job_ctl_id(ctl);
        struct membuf b = { .max = j->conf->c.max_list_size };
        _cleanup_free_ char *body = NULL;
        size_t body_len = 0;
        job_ctl_phase(ctl, "download");
        int r = download(ctl, j, &b, e);
        const char *result = "failed";
        if (r == -EALREADY) {
                *e = (struct hv_error){ 0 };
                r = 0;
                result = "not-modified";
                job_ctl_phase(ctl, "not-modified");
        } else if (r >= 0) {
                job_ctl_phase(ctl, "verify");
                r = accept(j, &b, &body, &body_len, e);
                if (r >= 0) {
                        result = r == 1 ? "same-version" : "updated";
                        if (r == 1)
                                log_warning("job %u: subscription %s: the list %s came again with the same version %s", id, j->st.id,
                                            j->next.identifier, j->next.version);
                        snprintf(j->st.etag, sizeof(j->st.etag), "%s", b.etag);
                        snprintf(j->st.last_modified, sizeof(j->st.last_modified), "%s", b.last_modified);
                        j->have_next = true;
                        r = 0;
                }
        }
        free(b.data);
        if (r < 0 && job_ctl_user_canceled(ctl))
                result = "canceled";
        j->st.last_refresh_usec = hv_now_usec();
        snprintf(j->st.last_result, sizeof(j->st.last_result), "%s", result);
        snprintf(j->st.last_error_name, sizeof(j->st.last_error_name), "%s", r < 0 ? hv_error_name(e) : "");
        snprintf(j->st.last_error, sizeof(j->st.last_error), "%s", r < 0 ? e->msg : "");
        struct hv_error se = { 0 };
        if (sub_state_save(j->dir, &j->st, j->have_next ? body : NULL, body_len, r < 0 ? &se : e) < 0) {
                if (r >= 0) { /* the new list is not on disk: do not take it */
                        imagelist_free(&j->next);
                        j->have_next = false;
                        return -EIO;
                }
                log_warning("job %u: subscription %s: %s", id, j->st.id, se.msg);
        }
        if (r >= 0)
                log_info("job %u: subscription %s: %s%s%s (%u images)", id, j->st.id, result, j->have_next ? ", list version " : "",
                         j->have_next ? j->next.version : "", j->have_next ? j->next.n_images : 0);
        return r;
}

static void refresh_finished(void *payload, int result) {
        struct refresh_job *j = payload;
        subscriptions_refreshed(j->subs, j, result);
}

static void refresh_free(void *payload) {
        struct refresh_job *j = payload;
        if (!j)
                return;
        imagelist_free(&j->next);
        hv_conf_snap_unref(j->conf);
        free(j);
}

struct refresh_job *refresh_job_new(const struct subscription *s, struct hv_conf_snap *conf, struct subscriptions *subs) {
        struct refresh_job *j = calloc(1, sizeof(*j));
        if (!j)
                return NULL;
        j->st = s->st;
        j->prev = s->have_list ? &s->list : NULL;
        j->conf = hv_conf_snap_ref(conf);
        snprintf(j->dir, sizeof(j->dir), "%s", subscriptions_dir(subs));
        snprintf(j->uri_shown, sizeof(j->uri_shown), "%s", s->uri_shown);
        j->subs = subs;
        return j;
}

const struct job_kind refresh_kind = {
        .name = "refresh",
        .run = refresh_run,
        .finished = refresh_finished,
        .free = refresh_free,
};
