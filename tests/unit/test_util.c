/* Unit tests of util.c: names. */
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

#include "util.h"

static void test_names(void **state) {
        (void)state;
        const char *good[] = { "a", "A", "0", "sl7", "cvm-4.0_x86-64.v2", "a.", "a..b", "x-", NULL };
        for (size_t i = 0; good[i]; i++)
                if (!hv_name_valid(good[i]))
                        fail_msg("\"%s\" refused", good[i]);
        char n64[65], n65[66];
        memset(n64, 'a', 64);
        n64[64] = 0;
        memset(n65, 'a', 65);
        n65[65] = 0;
        assert_true(hv_name_valid(n64));
        assert_false(hv_name_valid(n65));
        const char *bad[] = { "", ".", "..", "../x", "a/b", "/a", ".hidden", "-x", "_x", "a b", "a\nb", "ä", "a;rm", "a$b", NULL };
        for (size_t i = 0; bad[i]; i++)
                if (hv_name_valid(bad[i]))
                        fail_msg("\"%s\" accepted", bad[i]);
        assert_false(hv_name_valid(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names)
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
