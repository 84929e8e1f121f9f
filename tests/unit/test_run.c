/* Unit tests of hvwg-run's pure logic (client/run.c): the allocation from Slurm's and
 * HTCondor's variables and ads, the machine name, durations, the console markers, and the
 * quoting of the command: words with spaces, quotes, $, backticks, newlines and non-ASCII run
 * by sh come out exactly as given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "run.h"
#include "util.h"

static const char *const *vars;

static const char *table_get(const char *name, void *ud) {
        (void)ud;
        for (const char *const *v = vars; v && *v; v += 2)
                if (strcmp(v[0], name) == 0)
                        return v[1];
        return NULL;
}

static struct run_alloc alloc_of(const char *const *table, const char *machine_ad, const char *job_ad) {
        struct run_alloc a;
        vars = table;
        run_alloc_from_env(table_get, NULL, machine_ad, job_ad, &a);
        return a;
}

static void test_alloc(void **s) {
        (void)s;
        struct run_alloc a = alloc_of((const char *const[]){ NULL }, NULL, NULL);
        assert_int_equal(a.cores, 1);
        assert_string_equal(a.cores_from, "default");
        assert_int_equal(a.memory_mib, 0);
        assert_string_equal(a.job_id, "");
        /* Slurm: per task before per node; memory per node before per CPU */
        a = alloc_of((const char *const[]){ "SLURM_JOB_ID", "4711", "SLURM_CPUS_ON_NODE", "8", "SLURM_CPUS_PER_TASK", "4",
                                            "SLURM_MEM_PER_CPU", "1000", NULL },
                     NULL, NULL);
        assert_int_equal(a.cores, 4);
        assert_string_equal(a.cores_from, "SLURM_CPUS_PER_TASK");
        assert_int_equal(a.memory_mib, 4000);
        assert_string_equal(a.job_id, "4711");
        assert_string_equal(a.system, "slurm");
        a = alloc_of((const char *const[]){ "SLURM_JOB_ID", "12", "SLURM_ARRAY_TASK_ID", "3", "SLURM_CPUS_ON_NODE", "2",
                                            "SLURM_MEM_PER_NODE", "2048", "SLURM_MEM_PER_CPU", "1", NULL },
                     NULL, NULL);
        assert_int_equal(a.cores, 2);
        assert_int_equal(a.memory_mib, 2048);
        assert_string_equal(a.job_id, "12"); /* an array task has its own SLURM_JOB_ID: the Epilog's */
        /* malformed values are skipped, not half-read */
        a = alloc_of((const char *const[]){ "SLURM_CPUS_ON_NODE", "2x", "SLURM_CPUS_PER_TASK", "0", "OMP_NUM_THREADS", "3",
                                            "SLURM_MEM_PER_NODE", "4G", "SLURM_JOB_ID", "-1", NULL },
                     NULL, NULL);
        assert_int_equal(a.cores, 3);
        assert_string_equal(a.cores_from, "OMP_NUM_THREADS");
        assert_int_equal(a.memory_mib, 0);
        assert_string_equal(a.job_id, "");
        /* HTCondor: the machine ad and the job ad */
        static const char machine_ad[] = "Arch = \"X86_64\"\nCpus = 6\nMemory = 12288\nName = \"slot1@node\"\n";
        static const char job_ad[] = "ClusterId = 1234\nProcId = 7\nCmd = \"/usr/bin/hvwg-run\"\n";
        a = alloc_of((const char *const[]){ "OMP_NUM_THREADS", "2", NULL }, machine_ad, job_ad);
        assert_int_equal(a.cores, 6);
        assert_int_equal(a.memory_mib, 12288);
        assert_string_equal(a.job_id, "1234.7");
        assert_string_equal(a.system, "htcondor");
        char v[32];
        assert_true(run_classad_value(machine_ad, "Name", v, sizeof(v)));
        assert_string_equal(v, "slot1@node");
        assert_false(run_classad_value(machine_ad, "Nothing", v, sizeof(v)));
        assert_false(run_classad_value(machine_ad, "Cpu", v, sizeof(v))); /* a prefix is not the key */
}

static void test_name(void **s) {
        (void)s;
        struct run_alloc a = { .job_id = "4711", .system = "slurm" };
        char n[HV_NAME_MAX + 1];
        run_machine_name(&a, "node12.example.org", 0x5f3a9c1e, n, sizeof(n));
        assert_string_equal(n, "slurm-4711-node12-5f3a9c1e");
        assert_true(hv_name_valid(n));
        struct run_alloc c = { .job_id = "1234.7", .system = "htcondor" };
        run_machine_name(&c, "wn-1", 1, n, sizeof(n));
        assert_string_equal(n, "htcondor-1234.7-wn-1-00000001");
        struct run_alloc none = { .system = "" };
        run_machine_name(&none, "", 0xffffffff, n, sizeof(n));
        assert_string_equal(n, "run-nojob-ffffffff");
        /* hostile or long parts never make an invalid name */
        struct run_alloc odd = { .job_id = "12/../../x y", .system = "slurm" };
        run_machine_name(&odd, "h$st;rm -rf.example", 2, n, sizeof(n));
        assert_true(hv_name_valid(n));
        char longhost[200];
        memset(longhost, 'h', sizeof(longhost) - 1);
        longhost[199] = 0;
        struct run_alloc longjob = { .system = "slurm" };
        memset(longjob.job_id, '9', sizeof(longjob.job_id) - 1);
        run_machine_name(&longjob, longhost, 3, n, sizeof(n));
        assert_true(hv_name_valid(n) && strlen(n) <= HV_NAME_MAX);
}

static void test_duration(void **s) {
        (void)s;
        uint64_t v;
        static const struct { const char *s; uint64_t v; } good[] = { { "90", 90 }, { "90s", 90 }, { "15m", 900 }, { "2h", 7200 },
                                                                        { "1d", 86400 } };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                assert_int_equal(run_parse_duration(good[i].s, &v), 0);
                assert_int_equal(v, good[i].v);
        }
        static const char *const bad[] = { "", "0", "-5", "5x", "1.5h", "h", "5 m", "99999999999999999999", "400d", NULL };
        for (size_t i = 0; bad[i]; i++)
                if (run_parse_duration(bad[i], &v) == 0)
                        fail_msg("\"%s\" accepted", bad[i]);
}

static void test_markers(void **s) {
        (void)s;
        int st = -1;
        assert_int_equal(run_marker("HVWG-RUN-BEGIN abc123", "abc123", &st), 1);
        assert_int_equal(run_marker("HVWG-RUN-END abc123 3", "abc123", &st), 2);
        assert_int_equal(st, 3);
        assert_int_equal(run_marker("HVWG-RUN-END abc123 255", "abc123", &st), 2);
        assert_int_equal(run_marker("HVWG-RUN-END abc123 256", "abc123", &st), 0);
        assert_int_equal(run_marker("HVWG-RUN-END other 0", "abc123", &st), 0);    /* another run's */
        assert_int_equal(run_marker("HVWG-RUN-END abc123 0x", "abc123", &st), 0);
        assert_int_equal(run_marker("HVWG-RUN-END abc123", "abc123", &st), 0);
        assert_int_equal(run_marker("HVWG-RUN-BEGIN abc1234", "abc123", &st), 0);
        assert_int_equal(run_marker("output HVWG-RUN-END abc123 0", "abc123", &st), 0);
}

/* The words quoted as the script quotes them, run by sh: printf shows them back. */
static void test_quoting(void **s) {
        (void)s;
        static const char *const words[] = { "a b", "it's", "'", "\"", "$HOME", "`id`", "$(id)", "line\nbreak", "caf\xc3\xa9", "",
                                             "--opt", "*", "\\", "a;b&c|d", "\t", "!x", NULL };
        char cmd[4096] = "printf '[%s]'";
        size_t used = strlen(cmd);
        char expect[1024] = "";
        for (size_t i = 0; words[i]; i++) {
                cmd[used++] = ' ';
                assert_int_equal(hv_shell_quote(words[i], cmd, sizeof(cmd), &used), 0);
                snprintf(expect + strlen(expect), sizeof(expect) - strlen(expect), "[%s]", words[i]);
        }
        char path[] = "/tmp/hvwg-run-quote-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(hv_write_all(fd, cmd, used), 0);
        close(fd);
        char shcmd[128];
        snprintf(shcmd, sizeof(shcmd), "sh %s", path);
        FILE *p = popen(shcmd, "r");
        char out[1024] = "";
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = 0;
        assert_int_equal(pclose(p), 0);
        unlink(path);
        assert_string_equal(out, expect);
        /* too small a buffer: refused, never cut */
        char tiny[8];
        size_t u = 0;
        assert_int_equal(hv_shell_quote("longer than eight", tiny, sizeof(tiny), &u), -ENOSPC);
}

static void test_script(void **s) {
        (void)s;
        char *argv[] = { "sh", "-c", "nproc; echo it's", NULL };
        char *script = run_build_script(argv, 3, "00ff00ff00ff00ff");
        assert_non_null(script);
        assert_non_null(strstr(script, "'sh' '-c' 'nproc; echo it'\\''s'"));
        assert_non_null(strstr(script, "HVWG_RUN_NONCE=00ff00ff00ff00ff"));
        assert_non_null(strstr(script, "echo \"HVWG-RUN-BEGIN $HVWG_RUN_NONCE\""));
        assert_non_null(strstr(script, "LABEL=scratch"));
        assert_non_null(strstr(script, "poweroff -f"));
        /* the whole is valid sh */
        char path[] = "/tmp/hvwg-run-script-XXXXXX";
        int fd = mkstemp(path);
        assert_int_equal(hv_write_all(fd, script, strlen(script)), 0);
        close(fd);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "sh -n %s", path);
        assert_int_equal(system(cmd), 0);
        unlink(path);
        free(script);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_alloc),   cmocka_unit_test(test_name),    cmocka_unit_test(test_duration),
                cmocka_unit_test(test_markers), cmocka_unit_test(test_quoting), cmocka_unit_test(test_script),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
