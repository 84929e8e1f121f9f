/* Unit tests of errors.c: error kinds and errnos to D-Bus error names. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"

static void test_error_names(void **state) {
        (void)state;
        struct hv_error e = { 0 };
        assert_int_equal(hv_fail(&e, HV_E_CHECKSUM, EBADMSG, "x %d", 1), -EBADMSG);
        assert_string_equal(hv_error_name(&e), "org.hepix.hvwg1.Error.ChecksumMismatch");
        assert_string_equal(e.msg, "x 1");
        /* first error wins */
        hv_fail(&e, HV_E_SIZE, EBADMSG, "second");
        assert_string_equal(e.msg, "x 1");
        /* ENOSPC is always NoSpace and never "Success" */
        struct hv_error s = { 0 };
        hv_fail_errno(&s, HV_E_ERRNO, ENOSPC, "writing");
        assert_string_equal(hv_error_name(&s), "org.hepix.hvwg1.Error.NoSpace");
        assert_non_null(strstr(s.msg, "No space left"));
        struct hv_error q = { 0 };
        hv_fail(&q, HV_E_FETCH_FAILED, EDQUOT, "quota");
        assert_string_equal(hv_error_name(&q), "org.hepix.hvwg1.Error.NoSpace");
        struct hv_error z = { 0 };
        assert_int_equal(hv_fail(&z, HV_E_ERRNO, 0, "unknown"), -EIO);
        assert_string_equal(hv_error_name(&z), "org.freedesktop.DBus.Error.Failed");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_error_names)
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
