/* virt.h: the libvirt connection, owned by its own thread: connect with retry and backoff,
 * lifecycle events into the machine registry, reconciliation at the first connection. Nothing
 * on the bus loop calls libvirt; workers borrow the connection with virt_conn(). */
#pragma once
#include <libvirt/libvirt.h>

#include "domxml.h"
#include "machines.h"
#include "util.h"

struct virt;

/* Starts the thread and waits (10 s at most) for the first connection attempt, so that the
 * registry is reconciled before hvwgd takes its bus name. uri "" is libvirt's default. */
int virt_new(const char *uri, const char *machine_root, struct machines *ms, struct virt **ret);
struct virt *virt_free(struct virt *v);
/* A reference to the connection (virConnectClose it), or NULL with e saying why (LibvirtError). */
virConnectPtr virt_conn(struct virt *v, struct hv_error *e);

/* The last libvirt error of this thread, as a message. */
const char *virt_last_error(void);
/* e from the last libvirt error: MachineExists for a name libvirt already has, else LibvirtError. */
int virt_fail(struct hv_error *e, const char *what, const char *name);
/* Our metadata of a domain; false when it has none (not an hvwgd machine). */
bool virt_read_meta(virDomainPtr dom, struct dom_meta *meta);
const char *virt_state_name(int state);
/* Why a domain is in its present state, in the words of event reasons ("poweroff", …). */
const char *virt_state_reason(int state, int reason);
/* Undefines a domain with what libvirt keeps beside it. 0 or -1 (libvirt's error set). */
int virt_undefine(virDomainPtr dom);
