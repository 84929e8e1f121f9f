/* smime.c: S/MIME signature of an image list, OpenSSL CMS against an IGTF-style CA directory. */
#include "smime.h"

#include <errno.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <string.h>

/* The first chain error the verification met (per thread: each refresh runs on its own). */
static _Thread_local int first_verify_error;

/* CRLs where present: an issuer without a CRL in the directory is not a failure; a revoked
 * certificate, an expired or badly signed CRL are. */
static int verify_cb(int ok, X509_STORE_CTX *ctx) {
        if (ok)
                return ok;
        int err = X509_STORE_CTX_get_error(ctx);
        if (err == X509_V_ERR_UNABLE_TO_GET_CRL)
                return 1;
        if (!first_verify_error)
                first_verify_error = err;
        return ok;
}

static void openssl_reason(char *buf, size_t len) {
        unsigned long code = ERR_peek_last_error();
        if (first_verify_error)
                snprintf(buf, len, "%s", X509_verify_cert_error_string(first_verify_error));
        else if (code)
                ERR_error_string_n(code, buf, len);
        else
                snprintf(buf, len, "unknown reason");
        ERR_clear_error();
}

static void name_oneline(const X509_NAME *n, char *buf, size_t len) {
        if (!X509_NAME_oneline(n, buf, (int)len))
                snprintf(buf, len, "?");
}

HV_DEFINE_CLEANUP(BIO *, BIO_free)
HV_DEFINE_CLEANUP(CMS_ContentInfo *, CMS_ContentInfo_free)
HV_DEFINE_CLEANUP(X509_STORE *, X509_STORE_free)

int smime_verify(const char *msg, size_t len, const char *ca_dir, struct smime_signed *res, struct hv_error *e) {
        *res = (struct smime_signed){ 0 };
        char why[256];
        first_verify_error = 0;
        ERR_clear_error();
        if (len > INT32_MAX)
                return hv_fail(e, HV_E_LIST_INVALID, EFBIG, "the signed list is too large");
        _cleanup_(BIO_freep) BIO *in = BIO_new_mem_buf(msg, (int)len);
        _cleanup_(BIO_freep) BIO *content = NULL;
        _cleanup_(BIO_freep) BIO *out = BIO_new(BIO_s_mem());
        _cleanup_(X509_STORE_freep) X509_STORE *store = X509_STORE_new();
        if (!in || !out || !store)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        _cleanup_(CMS_ContentInfo_freep) CMS_ContentInfo *cms = SMIME_read_CMS(in, &content);
        if (!cms) {
                openssl_reason(why, sizeof(why));
                return hv_fail(e, HV_E_SIGNATURE, EBADMSG, "the list is not an S/MIME signed message (%s)", why);
        }
        X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_hash_dir());
        if (!lookup || X509_LOOKUP_add_dir(lookup, ca_dir, X509_FILETYPE_PEM) != 1)
                return hv_fail(e, HV_E_ERRNO, EIO, "cannot use the CA directory %s ([Lists] CAPath)", ca_dir);
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
        X509_STORE_set_verify_cb(store, verify_cb);
        if (CMS_verify(cms, NULL, store, content, out, 0) != 1) {
                int verr = first_verify_error;
                openssl_reason(why, sizeof(why));
                if (verr == X509_V_ERR_CERT_REVOKED)
                        return hv_fail(e, HV_E_REVOKED, EKEYREVOKED, "the endorser's certificate is revoked (a CRL in %s): %s", ca_dir, why);
                return hv_fail(e, HV_E_SIGNATURE, EBADMSG, "the list's signature does not verify against the CAs in %s: %s", ca_dir, why);
        }
        STACK_OF(X509) *signers = CMS_get0_signers(cms);
        int n = signers ? sk_X509_num(signers) : 0;
        if (n != 1) {
                sk_X509_free(signers);
                return hv_fail(e, HV_E_SIGNATURE, EBADMSG, "the list has %d signers, expected one (its endorser)", n);
        }
        X509 *cert = sk_X509_value(signers, 0);
        name_oneline(X509_get_subject_name(cert), res->signer_dn, sizeof(res->signer_dn));
        name_oneline(X509_get_issuer_name(cert), res->issuer_dn, sizeof(res->issuer_dn));
        sk_X509_free(signers);
        char *p = NULL;
        long blen = BIO_get_mem_data(out, &p);
        if (blen < 0 || !(res->body = malloc((size_t)blen + 1)))
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        memcpy(res->body, p, (size_t)blen);
        res->body[blen] = 0;
        res->body_len = (size_t)blen;
        return 0;
}

void smime_signed_free(struct smime_signed *res) {
        free(res->body);
        res->body = NULL;
}
