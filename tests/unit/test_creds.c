/* Unit tests of creds.c: the ids of a /proc/PID/status, and the texts that must give none. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "creds.h"

static void test_real_status(void **s) {
        (void)s;
        const char *t = "Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t42\nPid:\t42\n"
                        "Uid:\t1000\t1001\t1002\t1003\nGid:\t2000\t2001\t2002\t2003\nFDSize:\t256\n"
                        "Groups:\t4 24 27 2001 65534 \nNStgid:\t42\n";
        uid_t u = 0;
        gid_t g = 0, gids[8];
        unsigned n = 99;
        assert_int_equal(creds_parse_status(t, &u, &g, gids, 8, &n), 0);
        assert_int_equal(u, 1001);
        assert_int_equal(g, 2001);
        assert_int_equal(n, 5);
        assert_int_equal(gids[0], 4);
        assert_int_equal(gids[3], 2001);
        assert_int_equal(gids[4], 65534);
        /* no supplementary groups */
        const char *none = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n";
        assert_int_equal(creds_parse_status(none, &u, &g, gids, 8, &n), 0);
        assert_int_equal(u, 0);
        assert_int_equal(n, 0);
}

/* this very process: what the kernel writes parses, and gives our ids */
static void test_own_status(void **s) {
        (void)s;
        FILE *f = fopen("/proc/self/status", "r");
        if (!f)
                skip();
        char buf[65536];
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = 0;
        uid_t u;
        gid_t g, gids[CREDS_GIDS_MAX];
        unsigned n;
        assert_int_equal(creds_parse_status(buf, &u, &g, gids, CREDS_GIDS_MAX, &n), 0);
        assert_int_equal(u, geteuid());
        assert_int_equal(g, getegid());
        gid_t want[CREDS_GIDS_MAX];
        int wn = getgroups(CREDS_GIDS_MAX, want);
        assert_int_equal((int)n, wn);
        for (int i = 0; i < wn; i++)
                assert_int_equal(gids[i], want[i]);
}

static void test_refused(void **s) {
        (void)s;
        static const char *const bad[] = {
                "",                                                              /* nothing */
                "Gid:\t0\t0\t0\t0\nGroups:\t\n",                                 /* no Uid */
                "Uid:\t0\t0\t0\t0\nGroups:\t\n",                                 /* no Gid */
                "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n",                          /* no Groups */
                "Uid:\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n",                  /* three ids */
                "Uid:\t0\t-1\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n",              /* a sign */
                "Uid:\t0\t1x\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n",              /* junk in a number */
                "Uid:\t0\t4294967295\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n",      /* (uid_t)-1 */
                "Uid:\t0\t99999999999999999999\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n", /* overflow */
                "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t1 two 3\n",        /* junk in the groups */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                uid_t u = 7;
                gid_t g = 7, gids[4];
                unsigned n = 7;
                if (creds_parse_status(bad[i], &u, &g, gids, 4, &n) != -EINVAL)
                        fail_msg("accepted case %zu", i);
                assert_int_equal(n, 0);
                assert_int_equal(u, 7); /* nothing set */
        }
        /* more groups than room: none trusted */
        uid_t u;
        gid_t g, gids[4];
        unsigned n;
        assert_int_equal(creds_parse_status("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t1 2 3 4 5\n", &u, &g, gids, 4, &n), -E2BIG);
        assert_int_equal(n, 0);
        assert_int_equal(creds_parse_status("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t1 2 3 4\n", &u, &g, gids, 4, &n), 0);
        assert_int_equal(n, 4);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_real_status),
                cmocka_unit_test(test_own_status),
                cmocka_unit_test(test_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
