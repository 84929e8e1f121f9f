/* Unit tests of machines.c: the machine.meta record (round trip, hostile text), why a
 * transient machine ended, the registry (totals, users of an image, destroy marks) and the
 * events its subscribers hear on a real sd-event loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machines.h"

static struct machine sample(const char *name, unsigned cores, const char *state) {
        struct machine x = { .cores = cores, .memory_mib = 512ULL * cores, .scratch_bytes = (uint64_t)cores << 30, .owner = 999,
                             .created_usec = 1700000000000000ULL, .transient = true };
        snprintf(x.name, sizeof(x.name), "%s", name);
        snprintf(x.uuid, sizeof(x.uuid), "0859b362-decc-4055-82f7-6992eda9eb66");
        snprintf(x.image, sizeof(x.image), "el9");
        snprintf(x.state, sizeof(x.state), "%s", state);
        snprintf(x.hypervisor, sizeof(x.hypervisor), "qemu");
        snprintf(x.network, sizeof(x.network), "default");
        snprintf(x.scratch_path, sizeof(x.scratch_path), "/var/lib/hvwgd/machines/%s/scratch.img", name);
        snprintf(x.scratch_uuid, sizeof(x.scratch_uuid), "11111111-2222-4333-8444-555555555555");
        return x;
}

static void test_record(void **s) {
        (void)s;
        struct machine x = sample("vm1", 4, "running"), y = { 0 };
        char text[4096];
        int n = machine_record_format(&x, text, sizeof(text));
        assert_true(n > 0 && (size_t)n == strlen(text));
        machine_record_parse(text, &y);
        assert_string_equal(y.uuid, x.uuid);
        assert_string_equal(y.image, "el9");
        assert_int_equal(y.cores, 4);
        assert_int_equal(y.memory_mib, 2048);
        assert_int_equal(y.scratch_bytes, 4ULL << 30);
        assert_string_equal(y.scratch_path, x.scratch_path);
        assert_string_equal(y.scratch_uuid, x.scratch_uuid);
        assert_string_equal(y.hypervisor, "qemu");
        assert_string_equal(y.network, "default");
        assert_int_equal(y.owner, 999);
        assert_true(y.transient);
        assert_int_equal(y.created_usec, x.created_usec);
        /* a record too small for its buffer is an error, not a cut line */
        assert_int_equal(machine_record_format(&x, text, 64), -ENAMETOOLONG);
}

static void test_record_hostile(void **s) {
        (void)s;
        struct machine y = { 0 };
        char big[3000];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        char text[8000];
        snprintf(text, sizeof(text),
                 "# comment\nimage=../../etc\ncores=-1\ncores=99999999999\nmemory_mib=12abc\nowner=4294967296\nhypervisor=%.100s\n"
                 "noequals\n=value\nscratch_path=%s\ntransient=1\nuuid=%s\n",
                 big, big, big);
        machine_record_parse(text, &y);
        assert_string_equal(y.image, "");      /* not a valid name */
        assert_int_equal(y.cores, 0);          /* negative, too large */
        assert_int_equal(y.memory_mib, 0);     /* trailing garbage */
        assert_int_equal(y.owner, 0);          /* past a uid */
        assert_string_equal(y.hypervisor, ""); /* too long */
        assert_string_equal(y.scratch_path, ""); /* a line longer than any field is skipped */
        assert_true(y.transient);
        assert_string_equal(y.uuid, "");
        machine_record_parse("", &y);
        machine_record_parse("cores=3", &y); /* no final newline */
        assert_int_equal(y.cores, 3);
}

static void test_end_reason(void **s) {
        (void)s;
        assert_null(machine_end_reason("running", "booted"));
        assert_null(machine_end_reason("paused", ""));
        assert_null(machine_end_reason("shutting-down", "shutdown"));
        assert_null(machine_end_reason("undefined", "disks-kept"));
        assert_string_equal(machine_end_reason("shut-off", "poweroff"), "poweroff");
        assert_string_equal(machine_end_reason("shut-off", "destroyed"), "destroyed");
        assert_string_equal(machine_end_reason("shut-off", "crash"), "crash");
        assert_string_equal(machine_end_reason("crashed", "crash"), "crash");
        assert_string_equal(machine_end_reason("crashed", ""), "crash");
        assert_string_equal(machine_end_reason("shut-off", "saved"), "host-shutdown");
        assert_string_equal(machine_end_reason("undefined", "host-shutdown"), "host-shutdown");
        assert_string_equal(machine_end_reason("undefined", "undefined"), "host-shutdown");
}

struct heard {
        int n;
        struct machine_event ev[16];
};

static void listen(void *ud, const struct machine_event *ev) {
        struct heard *h = ud;
        if (h->n < 16)
                h->ev[h->n] = *ev;
        h->n++;
}

static void test_registry(void **s) {
        (void)s;
        sd_event *event = NULL;
        struct loop *loop = NULL;
        struct machines *ms = NULL;
        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(loop_new(event, &loop), 0);
        assert_int_equal(machines_new(loop, &ms), 0);
        struct heard h = { 0 };
        assert_int_equal(machines_subscribe(ms, listen, &h), 0);
        struct machine a = sample("b-vm", 2, "running"), b = sample("a-vm", 3, "shut-off"), c = sample("c-vm", 5, "undefined");
        snprintf(c.image, sizeof(c.image), "other");
        machines_put(ms, &a);
        machines_put(ms, &b);
        machines_put(ms, &c);
        struct machine_totals t;
        machines_totals(ms, &t);
        assert_int_equal(t.cores, 5);               /* undefined leftovers do not count… */
        assert_int_equal(t.memory_mib, 512 * 5);
        assert_int_equal(t.scratch_bytes, 10ULL << 30); /* …but their disks do */
        char users[64];
        assert_int_equal(machines_using_image(ms, "el9", users, sizeof(users)), 2);
        assert_string_equal(users, "a-vm, b-vm"); /* name order */
        assert_int_equal(machines_using_image(ms, "none", users, sizeof(users)), 0);
        assert_string_equal(users, "");
        struct machine *snap = NULL;
        assert_int_equal(machines_snapshot(ms, &snap), 3);
        assert_string_equal(snap[0].name, "a-vm");
        free(snap);
        /* destroy marks */
        assert_int_equal(machines_begin_destroy(ms, "a-vm"), 0);
        assert_int_equal(machines_begin_destroy(ms, "a-vm"), -EBUSY);
        assert_int_equal(machines_begin_destroy(ms, "zz"), -ENOENT);
        machines_put(ms, &b); /* a replacement keeps the mark */
        struct machine got;
        assert_true(machines_get(ms, "a-vm", &got) && got.destroying);
        machines_end_destroy(ms, "a-vm");
        /* state changes: only real ones are heard; running → shut-off with its reason */
        machines_set_state(ms, "b-vm", "running", "");
        machines_set_state(ms, "b-vm", "shut-off", "poweroff");
        machines_set_state(ms, "nothere", "running", "booted");
        machines_remove(ms, "c-vm", "destroyed", "/logs/c-vm.log");
        machines_remove(ms, "c-vm", "destroyed", "");
        assert_int_equal(h.n, 0); /* delivered on the loop only */
        loop_run_pending(loop);
        assert_int_equal(h.n, 6); /* 4 puts, 1 change, 1 removal */
        assert_int_equal(h.ev[4].kind, MACHINE_STATE);
        assert_string_equal(h.ev[4].m.state, "shut-off");
        assert_string_equal(h.ev[4].m.reason, "poweroff");
        assert_true(h.ev[4].m.state_usec > 0);
        assert_int_equal(h.ev[5].kind, MACHINE_REMOVED);
        assert_string_equal(h.ev[5].m.name, "c-vm");
        assert_string_equal(h.ev[5].reason, "destroyed");
        assert_string_equal(h.ev[5].console_log, "/logs/c-vm.log");
        assert_false(machines_exists(ms, "c-vm"));
        machines_free(ms);
        loop_free(loop);
        sd_event_unref(event);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_record),
                cmocka_unit_test(test_record_hostile),
                cmocka_unit_test(test_end_reason),
                cmocka_unit_test(test_registry),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
