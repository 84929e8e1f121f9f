/* errors.c: internal error kinds to D-Bus error names. */
#include "errors.h"

#include <errno.h>

#include "names.h"

#define DBUS_ERROR "org.freedesktop.DBus.Error."

const char *hv_error_name(const struct hv_error *e) {
        static const char *const names[] = {
                [HV_E_INVALID_ARGS] = DBUS_ERROR "InvalidArgs",
                [HV_E_ACCESS] = DBUS_ERROR "AccessDenied",
                [HV_E_LIMITS] = DBUS_ERROR "LimitsExceeded",
                [HV_E_FAILED] = DBUS_ERROR "Failed",
                [HV_E_IMAGE_EXISTS] = HV_ERROR_IMAGE_EXISTS,
                [HV_E_NO_SUCH_IMAGE] = HV_ERROR_NO_SUCH_IMAGE,
                [HV_E_IMAGE_BUSY] = HV_ERROR_IMAGE_BUSY,
                [HV_E_MACHINE_EXISTS] = HV_ERROR_MACHINE_EXISTS,
                [HV_E_NO_SUCH_MACHINE] = HV_ERROR_NO_SUCH_MACHINE,
                [HV_E_NO_SUCH_JOB] = HV_ERROR_NO_SUCH_JOB,
                [HV_E_SOURCE_NOT_ALLOWED] = HV_ERROR_SOURCE_NOT_ALLOWED,
                [HV_E_FETCH_FAILED] = HV_ERROR_FETCH_FAILED,
                [HV_E_CHECKSUM] = HV_ERROR_CHECKSUM_MISMATCH,
                [HV_E_SIZE] = HV_ERROR_SIZE_MISMATCH,
                [HV_E_BAD_COMPRESSION] = HV_ERROR_BAD_COMPRESSION,
                [HV_E_TOO_LARGE] = HV_ERROR_IMAGE_TOO_LARGE,
                [HV_E_BAD_TABLE] = HV_ERROR_BAD_PARTITION_TABLE,
                [HV_E_LVM] = HV_ERROR_LVM_NOT_ALLOWED,
                [HV_E_NO_SPACE] = HV_ERROR_NO_SPACE,
                [HV_E_LIBVIRT] = HV_ERROR_LIBVIRT,
                [HV_E_CANCELED] = HV_ERROR_CANCELED,
                [HV_E_LIST_INVALID] = HV_ERROR_LIST_INVALID,
                [HV_E_SIGNATURE] = HV_ERROR_SIGNATURE_INVALID,
                [HV_E_REVOKED] = HV_ERROR_CERTIFICATE_REVOKED,
                [HV_E_ENDORSER] = HV_ERROR_ENDORSER_MISMATCH,
                [HV_E_LIST_EXPIRED] = HV_ERROR_LIST_EXPIRED,
                [HV_E_LIST_ROLLBACK] = HV_ERROR_LIST_ROLLBACK,
                [HV_E_LIST_IDENTIFIER] = HV_ERROR_LIST_IDENTIFIER_CHANGED,
                [HV_E_NO_SUCH_SUBSCRIPTION] = HV_ERROR_NO_SUCH_SUBSCRIPTION,
                [HV_E_SUBSCRIPTION_EXISTS] = HV_ERROR_SUBSCRIPTION_EXISTS,
                [HV_E_IMAGE_EXPIRED] = HV_ERROR_IMAGE_EXPIRED,
        };
        if (e->err == ENOSPC || e->err == EDQUOT)
                return names[HV_E_NO_SPACE];
        if (e->kind != HV_E_ERRNO && (size_t)e->kind < ELEMENTSOF(names) && names[e->kind])
                return names[e->kind];
        switch (e->err) {
        case EINVAL: return names[HV_E_INVALID_ARGS];
        case EPERM:
        case EACCES: return names[HV_E_ACCESS];
        case ENOMEM: return DBUS_ERROR "NoMemory";
        case EOPNOTSUPP: return DBUS_ERROR "NotSupported";
        case ECANCELED: return names[HV_E_CANCELED];
        default: return names[HV_E_FAILED];
        }
}
