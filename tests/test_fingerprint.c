// deps: client/node/fingerprint.c client/node/hoststats.c client/util.c
/* Fingerprint and host stats parsers on sample /proc, /sys and /etc files
 * (tests/data), node id persistence, and a fingerprint of this machine.
 * Run with cwd = tests/. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/config.h"
#include "client/node/node.h"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/nc-fp-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd);
}

static struct agent_config test_config(void)
{
    struct agent_config cfg = {0};
    cfg.data_dir = tmpdir;
    cfg.name = "node-a";
    cfg.datacenter = "dc2";
    cfg.region = "eu";
    cfg.bind_addr = "127.0.0.1";
    cfg.http_port = 4646;
    cfg.client.raw_exec_enabled = true;
    return cfg;
}

static void test_sample_files(void **state)
{
    (void)state;
    struct utsname uts = {0};
    strcpy(uts.machine, "x86_64");
    strcpy(uts.release, "6.1.0-13-amd64");
    strcpy(uts.nodename, "worker-1");
    struct fingerprint_root root = {.proc = "data/proc", .sys = "data/sys",
                                    .etc = "data/etc", .uts = &uts};
    struct agent_config cfg = test_config();
    struct node n;
    struct nc_error err = {0};
    assert_int_equal(fingerprint_node(&n, &cfg, &root, &err), 0);
    const struct kvlist *a = &n.attributes;
    assert_string_equal(kv_get(a, "cpu.arch"), "amd64");
    assert_string_equal(kv_get(a, "cpu.numcores"), "2");
    assert_string_equal(kv_get(a, "cpu.frequency"), "3000");
    assert_string_equal(kv_get(a, "cpu.totalcompute"), "6000");
    assert_string_equal(kv_get(a, "cpu.modelname"),
                        "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz");
    assert_string_equal(kv_get(a, "memory.totalbytes"), "8241741824");
    assert_string_equal(kv_get(a, "kernel.name"), "linux");
    assert_string_equal(kv_get(a, "kernel.version"), "6.1.0-13-amd64");
    assert_string_equal(kv_get(a, "kernel.arch"), "x86_64");
    assert_string_equal(kv_get(a, "os.name"), "debian");
    assert_string_equal(kv_get(a, "os.version"), "12");
    assert_string_equal(kv_get(a, "unique.hostname"), "worker-1");
    assert_string_equal(kv_get(a, "unique.network.ip-address"), "127.0.0.1");
    assert_non_null(kv_get(a, "unique.storage.bytestotal"));
    assert_string_equal(n.name, "node-a");
    assert_string_equal(n.datacenter, "dc2");
    assert_int_equal(n.resources.cpu_mhz, 6000);
    assert_int_equal(n.resources.memory_mb, 7859);
    node_free(&n);
}

static void test_node_id_persistence(void **state)
{
    (void)state;
    char *id1, *s1, *id2, *s2;
    struct nc_error err = {0};
    assert_int_equal(fingerprint_node_id(tmpdir, &id1, &s1, &err), 0);
    assert_int_equal(fingerprint_node_id(tmpdir, &id2, &s2, &err), 0);
    assert_string_equal(id1, id2);
    assert_string_equal(s1, s2);
    assert_string_not_equal(id1, s1);
    free(id2);
    free(s2);
    char path[128];
    snprintf(path, sizeof(path), "%s/client/client-id", tmpdir);
    assert_int_equal(nc_write_file_atomic(path, "garbage", 7, 0600), 0);
    assert_int_equal(fingerprint_node_id(tmpdir, &id2, &s2, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "client/client-id does not hold a UUID"));
    free(id1);
    free(s1);
    unlink(path);
}

static void test_this_machine(void **state)
{
    (void)state;
    struct agent_config cfg = test_config();
    struct node n;
    struct nc_error err = {0};
    assert_int_equal(fingerprint_node(&n, &cfg, NULL, &err), 0);
    const char *keys[] = {"cpu.arch", "cpu.numcores", "cpu.totalcompute",
                          "memory.totalbytes", "kernel.version", "os.name",
                          "unique.hostname", "unique.storage.volume",
                          "nomad.version"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!kv_get(&n.attributes, keys[i]))
            fail_msg("missing attribute %s", keys[i]);
    assert_true(n.resources.memory_mb > 0);
    node_free(&n);
}

static void test_cni_version_parse(void **state)
{
    (void)state;
    char v[64];
    assert_int_equal(fingerprint_cni_parse_version("CNI bridge plugin v1.1.1\nCNI protocol versions supported: 0.1.0\n", v, sizeof(v)), 0);
    assert_string_equal(v, "v1.1.1");
    assert_int_equal(fingerprint_cni_parse_version("CNI portmap plugin 1.4.0\n", v, sizeof(v)), 0);
    assert_string_equal(v, "1.4.0");
    assert_int_equal(fingerprint_cni_parse_version("CNI bridge plugin version unknown\n", v, sizeof(v)), -ENOENT);
    assert_int_equal(fingerprint_cni_parse_version("garbage", v, sizeof(v)), -ENOENT);
    assert_int_equal(fingerprint_cni_parse_version("", v, sizeof(v)), -ENOENT);
}

static void test_cni_async(void **state)
{
    (void)state;
    if (access("/usr/lib/cni/bridge", X_OK) < 0)
        skip();
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct node n = {0};
    struct fingerprint_cni *c = NULL;
    assert_int_equal(fingerprint_cni_start(&c, &n, &loop, "/usr/lib/cni"), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_non_null(kv_get(&n.attributes, "plugins.cni.version.bridge"));
    assert_int_equal(uv_loop_close(&loop), 0);
    kv_free(&n.attributes);
    free(c); /* all probes finished: only the shell is left */
}

static void test_hoststats_samples(void **state)
{
    (void)state;
    uint64_t ticks[4][8];
    int rows = hoststats_parse_cpu("cpu  1 2 3 4 5 6 7 8\ncpu0 1 1 1 1\nbogus\ncpuX\n", ticks, 4);
    assert_int_equal(rows, 2);
    assert_true(ticks[0][7] == 8);
    struct host_stats s = {0};
    assert_int_equal(hoststats_parse_meminfo("MemTotal: 1024 kB\nMemFree: 256 kB\nMemAvailable: 512 kB\n", &s), 0);
    assert_true(s.mem_total == 1024 * 1024 && s.mem_used == 512 * 1024);
    assert_int_equal(hoststats_parse_meminfo("garbage\n", &s), -EINVAL);
    assert_int_equal(hoststats_parse_cpu("", ticks, 4), 0);

    struct hoststats_collector *c = NULL;
    assert_int_equal(hoststats_collector_init(&c, "data/proc", tmpdir), 0);
    assert_null(hoststats_latest(c));
    assert_int_equal(hoststats_collect(c), 0);
    const struct host_stats *st = hoststats_latest(c);
    assert_non_null(st);
    assert_true(st->mem_total == 8048576ULL * 1024);
    assert_true(st->load1 == 0.5);
    assert_true(st->uptime == 12345);
    json_t *j = hoststats_to_json(st);
    assert_non_null(json_object_get(j, "Memory"));
    assert_true(json_array_size(json_object_get(j, "DiskStats")) == 1);
    assert_true(json_integer_value(json_object_get(j, "Uptime")) == 12345);
    json_decref(j);
    hoststats_collector_free(c);
}

static void test_hoststats_live_delta(void **state)
{
    (void)state;
    struct hoststats_collector *c = NULL;
    assert_int_equal(hoststats_collector_init(&c, NULL, "/"), 0);
    volatile double x = 0;
    for (int i = 0; i < 20000000; i++)
        x += i;
    assert_int_equal(hoststats_collect(c), 0);
    const struct host_stats *st = hoststats_latest(c);
    assert_true(st->ncpus > 0);
    double sum = st->cpu[0].idle + st->cpu[0].total;
    assert_true(sum > 99.0 && sum < 101.0);
    assert_true(st->disk_size > 0);
    hoststats_collector_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_files),
        cmocka_unit_test(test_node_id_persistence),
        cmocka_unit_test(test_this_machine),
        cmocka_unit_test(test_cni_version_parse),
        cmocka_unit_test(test_cni_async),
        cmocka_unit_test(test_hoststats_samples),
        cmocka_unit_test(test_hoststats_live_delta),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
