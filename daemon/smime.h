/* smime.h: a signed HEPiX image list's signature, checked with OpenSSL CMS. */
#pragma once
#include <stddef.h>

#include "imagelist.h"

struct smime_signed {
        char signer_dn[IL_DN_MAX]; /* OpenSSL's one-line form: /DC=org/DC=example/CN=… */
        char issuer_dn[IL_DN_MAX];
        char *body;                /* the signed content (malloc'd, NUL-terminated) */
        size_t body_len;
};

/* Verifies a clear-signed S/MIME message (multipart/signed with a detached PKCS#7 signature,
 * as `openssl smime -sign` writes it; an opaque signed message is accepted too) against the CA
 * certificates and CRLs of ca_dir (c_rehash layout; read on the calling thread — never the
 * loop). The signer's chain must verify to one of those CAs, for S/MIME signing; a CRL, where
 * the directory has one for an issuer, is honoured (a CA without one is not refused for that).
 * Exactly one signer. Refusals: SignatureInvalid, CertificateRevoked. On success res->body is
 * the signed content; free it with smime_signed_free. */
int smime_verify(const char *msg, size_t len, const char *ca_dir, struct smime_signed *res, struct hv_error *e);
void smime_signed_free(struct smime_signed *res);
