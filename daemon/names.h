/* names.h: the one definition of the D-Bus names of shared/API.md, for the daemon and the client. */
#pragma once

#define HV_BUS_NAME "org.hepix.hvwg1"
#define HV_OBJ_PATH "/org/hepix/hvwg1"
#define HV_JOB_PREFIX "/org/hepix/hvwg1/job"
#define HV_MANAGER_IFACE "org.hepix.hvwg1.Manager"
#define HV_JOB_IFACE "org.hepix.hvwg1.Job"

#define HV_ERROR_PREFIX "org.hepix.hvwg1.Error."
#define HV_ERROR_IMAGE_EXISTS HV_ERROR_PREFIX "ImageExists"
#define HV_ERROR_NO_SUCH_IMAGE HV_ERROR_PREFIX "NoSuchImage"
#define HV_ERROR_IMAGE_BUSY HV_ERROR_PREFIX "ImageBusy"
#define HV_ERROR_MACHINE_EXISTS HV_ERROR_PREFIX "MachineExists"
#define HV_ERROR_NO_SUCH_MACHINE HV_ERROR_PREFIX "NoSuchMachine"
#define HV_ERROR_NO_SUCH_JOB HV_ERROR_PREFIX "NoSuchJob"
#define HV_ERROR_SOURCE_NOT_ALLOWED HV_ERROR_PREFIX "SourceNotAllowed"
#define HV_ERROR_FETCH_FAILED HV_ERROR_PREFIX "FetchFailed"
#define HV_ERROR_CHECKSUM_MISMATCH HV_ERROR_PREFIX "ChecksumMismatch"
#define HV_ERROR_SIZE_MISMATCH HV_ERROR_PREFIX "SizeMismatch"
#define HV_ERROR_BAD_COMPRESSION HV_ERROR_PREFIX "BadCompression"
#define HV_ERROR_IMAGE_TOO_LARGE HV_ERROR_PREFIX "ImageTooLarge"
#define HV_ERROR_BAD_PARTITION_TABLE HV_ERROR_PREFIX "BadPartitionTable"
#define HV_ERROR_LVM_NOT_ALLOWED HV_ERROR_PREFIX "LvmNotAllowed"
#define HV_ERROR_NO_SPACE HV_ERROR_PREFIX "NoSpace"
#define HV_ERROR_LIBVIRT HV_ERROR_PREFIX "LibvirtError"
#define HV_ERROR_CANCELED HV_ERROR_PREFIX "Canceled"
/* image lists: additions to API.md */
#define HV_ERROR_LIST_INVALID HV_ERROR_PREFIX "ListInvalid"
#define HV_ERROR_SIGNATURE_INVALID HV_ERROR_PREFIX "SignatureInvalid"
#define HV_ERROR_CERTIFICATE_REVOKED HV_ERROR_PREFIX "CertificateRevoked"
#define HV_ERROR_ENDORSER_MISMATCH HV_ERROR_PREFIX "EndorserMismatch"
#define HV_ERROR_LIST_EXPIRED HV_ERROR_PREFIX "ListExpired"
#define HV_ERROR_LIST_ROLLBACK HV_ERROR_PREFIX "ListRollback"
#define HV_ERROR_LIST_IDENTIFIER_CHANGED HV_ERROR_PREFIX "ListIdentifierChanged"
#define HV_ERROR_NO_SUCH_SUBSCRIPTION HV_ERROR_PREFIX "NoSuchSubscription"
#define HV_ERROR_SUBSCRIPTION_EXISTS HV_ERROR_PREFIX "SubscriptionExists"
#define HV_ERROR_IMAGE_EXPIRED HV_ERROR_PREFIX "ImageExpired"

/* Image and machine names: at most this many bytes (shared/API.md). */
#define HV_NAME_MAX 64
/* Text forms: a UUID (36 characters), a SHA-512 digest in hex (128). */
#define HV_UUID_STR 37
#define HV_SHA512_HEX 128
/* A directory in a store: the store's path (at most 511 bytes) and a name. */
#define HV_STORE_DIR_MAX 600
