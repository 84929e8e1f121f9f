/* Unit tests of util.c: names, the token bucket of MaxBandwidth. */
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

/* Simulated takers drawing 256 KiB each and waiting what they are told: the bytes over the
 * simulated time keep to the rate (one taker, or three interleaved), the burst is a quarter
 * second's worth, and rate 0 never waits. */
static void test_rate(void **state) {
        (void)state;
        struct hv_rate r = { 0 };
        assert_int_equal(hv_rate_take(&r, 5, 1 << 30, 0), 0);
        const uint64_t rate = 4 << 20, chunk = 256 << 10;
        for (unsigned takers = 1; takers <= 3; takers++) {
                r = (struct hv_rate){ 0 };
                uint64_t at[3] = { 1000000, 1000000, 1000000 }, bytes = 0, t0 = 1000000, now = t0;
                while (bytes < (64ULL << 20)) {
                        unsigned k = 0; /* the taker whose wait ends first goes next */
                        for (unsigned i = 1; i < takers; i++)
                                if (at[i] < at[k])
                                        k = i;
                        now = at[k];
                        at[k] = now + hv_rate_take(&r, now, chunk, rate);
                        bytes += chunk;
                }
                double secs = (double)(now - t0) / 1e6, got = (double)bytes / secs;
                if (got > rate * 1.05 || got < rate * 0.95)
                        fail_msg("%u takers: %.0f bytes/s for a rate of %llu", takers, got, (unsigned long long)rate);
        }
        r = (struct hv_rate){ 0 };
        assert_int_equal(hv_rate_take(&r, 1000, rate / 4, rate), 0);  /* the burst */
        assert_true(hv_rate_take(&r, 1000, chunk, rate) > 0);          /* then it waits */
        assert_int_equal(hv_rate_take(&r, 1000 + 10000000, rate / 4, rate), 0); /* refilled after 10 s … */
        assert_true(hv_rate_take(&r, 1000 + 10000000, chunk, rate) > 0);         /* … only up to the burst */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_rate),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
