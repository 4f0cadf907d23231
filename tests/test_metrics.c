// deps: client/api/metrics.c client/util.c
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/api/api.h"

/* ---- a reader for the text format, strict enough to catch mistakes ---- */

/* Checks every line of `text` against the 0.0.4 grammar: "# HELP name
 * text", "# TYPE name gauge|counter" once per family before its samples,
 * samples `name{label="value",...} number` with escaped values, and no
 * series twice. Returns the number of samples. */
static size_t check_exposition(const char *text)
{
    struct strlist seen = {0}, typed = {0};
    size_t samples = 0;
    char current[256] = "";
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl); /* every line ends with a newline */
        char *l = xstrndup(line, (size_t)(nl - line));
        char name[256];
        if (strncmp(l, "# HELP ", 7) == 0) {
            assert_int_equal(sscanf(l + 7, "%255s", name), 1);
            snprintf(current, sizeof(current), "%s", name);
        } else if (strncmp(l, "# TYPE ", 7) == 0) {
            char type[32];
            assert_int_equal(sscanf(l + 7, "%255s %31s", name, type), 2);
            assert_string_equal(name, current);
            assert_true(strcmp(type, "gauge") == 0 ||
                        strcmp(type, "counter") == 0);
            assert_false(strlist_contains(&typed, name));
            strlist_add(&typed, name);
        } else {
            size_t n = strspn(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO"
                                 "PQRSTUVWXYZ0123456789_:");
            assert_true(n > 0);
            assert_true(strncmp(l, current, n) == 0 && !current[n]);
            const char *p = l + n;
            if (*p == '{') {
                for (p++; *p != '}';) {
                    size_t k = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFG"
                                         "HIJKLMNOPQRSTUVWXYZ0123456789_");
                    assert_true(k > 0 && p[k] == '=' && p[k + 1] == '"');
                    for (p += k + 2; *p != '"'; p++) {
                        assert_true(*p != '\0' && *p != '\n');
                        if (*p == '\\') {
                            p++;
                            assert_true(*p == '\\' || *p == '"' || *p == 'n');
                        }
                    }
                    p++;
                    if (*p == ',')
                        p++;
                    else
                        assert_int_equal(*p, '}');
                }
                p++;
            }
            assert_int_equal(*p, ' ');
            char *key = xstrndup(l, (size_t)(p - l));
            assert_false(strlist_contains(&seen, key)); /* no duplicates */
            strlist_add(&seen, key);
            free(key);
            char *end = NULL;
            strtod(p + 1, &end);
            assert_true(end && end != p + 1 && *end == '\0');
            samples++;
        }
        free(l);
        line = nl + 1;
    }
    strlist_free(&seen);
    strlist_free(&typed);
    return samples;
}

/* Whether a series matches a PromQL selector `name{k="v",...}` (equality
 * matchers only): what the seed job's scaling query selects. */
static bool selector_matches(const char *text, const char *name,
                             const char *const *matchers, size_t n)
{
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        char *l = xstrndup(line, (size_t)(nl - line));
        bool ok = l[0] != '#' && strncmp(l, name, strlen(name)) == 0 &&
                  l[strlen(name)] == '{';
        for (size_t i = 0; ok && i < n; i++)
            ok = strstr(l, matchers[i]) != NULL;
        free(l);
        if (ok)
            return true;
        line = nl + 1;
    }
    return false;
}

/* ---- the builder and the format --------------------------------------- */

static void test_format(void **state)
{
    struct metrics *m = metrics_new(1764580800000000000LL);
    struct kvlist l = {0};
    kv_set(&l, "zone", "a\"b\\c\nd");
    kv_set(&l, "alloc-id", "x");
    kv_set(&l, "9th", "y");
    metrics_gauge(m, "nomclient.test.value", "help with \\ and\nnewline", &l,
                  1.5);
    /* the same series again replaces the value: one line, not two */
    metrics_gauge(m, "nomclient.test.value", "ignored", &l, 2.25);
    kv_set(&l, "zone", "b");
    metrics_gauge(m, "nomclient.test.value", NULL, &l, 1e21);
    metrics_counter(m, "nomclient.test.probes", "Probes", NULL, 42);
    /* a name given both types keeps its first */
    metrics_gauge(m, "nomclient.test.probes", "Probes", NULL, 7);
    metrics_gauge(m, "nomclient.test.weird", "", NULL, NAN);
    metrics_gauge(m, "nomclient.test.big", "", NULL, 433868800);
    metrics_gauge(m, "nomclient.test.inf", "", NULL, -INFINITY);
    kv_free(&l);
    char *text = metrics_prometheus(m);
    assert_int_equal(check_exposition(text), 6);
    assert_non_null(strstr(text, "# HELP nomclient_test_value help with \\\\ "
                                 "and\\nnewline\n"
                                 "# TYPE nomclient_test_value gauge\n"));
    /* labels sorted, names made legal, values escaped */
    assert_non_null(strstr(text, "nomclient_test_value{_9th=\"y\",alloc_id="
                                 "\"x\",zone=\"a\\\"b\\\\c\\nd\"} 2.25\n"));
    assert_non_null(strstr(text, "zone=\"b\"} 1e+21\n"));
    assert_non_null(strstr(text, "# TYPE nomclient_test_probes_total "
                                 "counter\nnomclient_test_probes_total 42\n"));
    assert_non_null(strstr(text, "nomclient_test_weird NaN\n"));
    assert_non_null(strstr(text, "nomclient_test_big 433868800\n"));
    assert_non_null(strstr(text, "nomclient_test_inf -Inf\n"));
    /* HELP falls back to the name when none is given */
    assert_non_null(strstr(text, "# HELP nomclient_test_big "
                                 "nomclient.test.big\n"));
    free(text);

    json_t *j = metrics_json(m);
    assert_string_equal(json_string_value(json_object_get(j, "Timestamp")),
                        "2025-12-01 09:20:00 +0000 UTC");
    json_t *gauges = json_object_get(j, "Gauges");
    assert_int_equal(json_array_size(gauges), 5);
    json_t *g = json_array_get(gauges, 0);
    assert_string_equal(json_string_value(json_object_get(g, "Name")),
                        "nomclient.test.value");
    assert_true(json_real_value(json_object_get(g, "Value")) == 2.25);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(g, "Labels"), "zone")),
                        "a\"b\\c\nd");
    json_t *c = json_array_get(json_object_get(j, "Counters"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "Name")),
                        "nomclient.test.probes");
    assert_int_equal(json_integer_value(json_object_get(c, "Count")), 42);
    assert_true(json_real_value(json_object_get(c, "Sum")) == 42);
    assert_true(json_is_object(json_object_get(c, "Labels")));
    assert_true(json_is_array(json_object_get(j, "Samples")));
    assert_true(json_is_array(json_object_get(j, "Points")));
    /* NaN is not JSON: jansson refuses it, and the gauge must not vanish
     * the whole document */
    char *dump = json_dumps(j, 0);
    assert_non_null(dump);
    free(dump);
    json_decref(j);
    metrics_free(m);
}

/* ---- what an agent gathers -------------------------------------------- */

static struct task worker_tasks[] = {
    {.name = (char *)"worker", .resources = {.cpu = 500, .memory_mb = 256}},
    {.name = (char *)"sidecar", .resources = {.cpu = 100, .memory_mb = 64}}};
static struct task_group groups[] = {{.name = (char *)"workers",
                                      .tasks = worker_tasks,
                                      .ntasks = 2,
                                      .ephemeral_disk = {.mb = 300}}};
static struct job job = {
    .name = (char *)"scaler", .groups = groups, .ngroups = 1};

static struct alloc_task running_tasks[2] = {
    {.name = (char *)"worker", .state = (char *)"running"},
    {.name = (char *)"sidecar", .state = (char *)"running"}};
static struct alloc_task dead_task[1] = {
    {.name = (char *)"worker", .state = (char *)"dead"}};

static struct alloc alloc_a = {
    .id = (char *)"aaaaaaaa-0000-0000-0000-000000000001",
    .job_id = (char *)"scaler",
    .group = (char *)"workers",
    .namespace = (char *)"default",
    .client_status = (char *)"running",
    .job = &job,
    .tasks = running_tasks,
    .ntasks = 2};
static struct alloc alloc_done = {
    .id = (char *)"bbbbbbbb-0000-0000-0000-000000000002",
    .job_id = (char *)"scaler",
    .group = (char *)"workers",
    .namespace = (char *)"default",
    .client_status = (char *)"complete",
    .job = &job,
    .tasks = dead_task,
    .ntasks = 1};

static int stats_calls;

static json_t *fake_stats(void *arg, struct alloc *a)
{
    stats_calls++;
    return json_pack(
        "{s:{s:{s:{s:{s:I, s:I, s:[s, s]}, s:{s:f, s:f, s:f, s:f}}}, "
        "s:{s:{s:{s:I, s:[s]}, s:{s:f, s:f, s:f, s:f}}}}}",
        "Tasks", "worker", "ResourceUsage", "MemoryStats", "RSS",
        (json_int_t)52428800, "Cache", (json_int_t)0, "Measured", "RSS",
        "Cache", "CpuStats", "Percent", 73.5, "UserMode", 60.0, "SystemMode",
        13.5, "TotalTicks", 1837.5, "sidecar", "ResourceUsage", "MemoryStats",
        "RSS", (json_int_t)1048576, "Measured", "RSS", "CpuStats", "Percent",
        1.0, "UserMode", 1.0, "SystemMode", 0.0, "TotalTicks", 25.0);
}

static void test_collect(void **state)
{
    struct node n = {.id = (char *)"node-1",
                     .datacenter = (char *)"dc1",
                     .node_pool = (char *)"default",
                     .status = (char *)"ready",
                     .eligible = true};
    n.resources.cpu_mhz = 8000;
    n.resources.memory_mb = 16000;
    n.resources.disk_mb = 100000;
    kv_set(&n.attributes, "cpu.totalcompute", "8000");
    kv_set(&n.attributes, "cpu.numcores", "4");
    struct host_stats hs = {.ncpus = 2,
                            .mem_total = 17179869184ULL,
                            .mem_available = 8589934592ULL,
                            .uptime = 3600,
                            .disk_size = 1000};
    hs.cpu[0] = (struct host_cpu_stats){
        .user = 10, .system = 5, .idle = 85, .total = 15};
    hs.cpu[1] = (struct host_cpu_stats){.idle = 100};
    snprintf(hs.device, sizeof(hs.device), "/dev/vda1");
    json_t *checks = json_pack(
        "{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:{s:i, s:i, s:i, s:i, "
        "s:i}}}",
        "_nomad-check-1", "AllocID", alloc_a.id, "Group", "workers", "Task",
        "worker", "ServiceName", "work", "Name", "alive", "Type", "http",
        "Status", "critical", "Latency", (json_int_t)1351616, "Counters",
        "Probes", 10, "Passing", 7, "Critical", 3, "Timeouts", 2, "Restarts",
        1);
    json_t *consul =
        json_pack("{s:s, s:b, s:s, s:{s:i, s:i, s:i, s:i, s:i}}", "Address",
                  "http://127.0.0.1:8500", "Reachable", 1, "LastSyncDuration",
                  "1.5s", "Counters", "Registrations", 4, "Deregistrations", 1,
                  "CheckUpdates", 9, "Errors", 2, "Passes", 30);
    json_t *view =
        json_pack("{s:{s:{}, s:{}}, s:{s:i, s:i}, s:[{s:s, s:s}, {s:s, s:s}]}",
                  "Registries", "Consul", "Catalog", "Summary", "Unhealthy", 1,
                  "Stale", 0, "Registrations", "Registry", "consul", "State",
                  "rejected", "Registry", "consul", "State", "rejected");
    struct alloc *allocs[] = {&alloc_a, &alloc_done};
    struct metrics_source src = {.node = &n,
                                 .hostname = "worker-1",
                                 .host = &hs,
                                 .allocs = allocs,
                                 .nallocs = 2,
                                 .alloc_stats = fake_stats,
                                 .checks = checks,
                                 .consul_status = consul,
                                 .registrations = view};
    stats_calls = 0;
    struct metrics *m = metrics_collect(&src);
    char *text = metrics_prometheus(m);
    check_exposition(text);
    /* a terminal allocation is not measured at all */
    assert_int_equal(stats_calls, 1);

    /* the seed job's query: avg(nomad_client_allocs_cpu_total_percent{
     * task_group="workers"}) */
    const char *workers[] = {"task_group=\"workers\""};
    assert_true(selector_matches(text, "nomad_client_allocs_cpu_total_percent",
                                 workers, 1));
    static const char *const present[] = {
        "nomad_client_allocs_cpu_total_percent{alloc_id=\"aaaaaaaa-0000-"
        "0000-0000-000000000001\",host=\"worker-1\",job=\"scaler\","
        "namespace=\"default\",task=\"worker\",task_group=\"workers\"} "
        "73.5\n",
        "task=\"sidecar\",task_group=\"workers\"} 1\n",
        "nomad_client_allocs_memory_rss{",
        "task=\"worker\",task_group=\"workers\"} "
        "52428800\n",
        "nomad_client_allocs_memory_cache{",
        "nomad_client_allocs_memory_allocated{",
        "task=\"worker\",task_group=\"workers\"} "
        "268435456\n",
        "nomad_client_allocs_cpu_allocated{",
        "nomad_client_host_memory_total{datacenter=\"dc1\",host=\""
        "worker-1\",node_class=\"none\",node_id=\"node-1\",node_pool=\""
        "default\",node_scheduling_eligibility=\"eligible\",node_status="
        "\"ready\"} 17179869184\n",
        "nomad_client_host_cpu_total_percent{cpu=\""
        "cpu0\",datacenter=\"dc1\"",
        "nomad_client_host_cpu_total_ticks{cpu=\""
        "cpu0\"",
        "node_status=\"ready\"} 300\n",
        "nomad_client_host_disk_size{datacenter=\""
        "dc1\",disk=\"/dev/vda1\"",
        "nomad_client_uptime{",
        "nomad_client_allocations_running{",
        "nomad_client_allocations_terminal{",
        "nomad_client_tasks_dead{",
        "# TYPE nomad_client_allocated_cpu gauge\n"
        "nomad_client_allocated_cpu{",
        "node_status=\"ready\"} 600\n",
        "node_status=\"ready\"} 7400\n",
        "nomclient_check_status{alloc_id=\"",
        "status=\"critical\",task=\"worker\","
        "task_group=\"workers\",type=\"http\"} 1\n",
        "status=\"passing\",task=\"worker\","
        "task_group=\"workers\",type=\"http\"} 0\n",
        "nomclient_check_probes_total{",
        "result=\"critical\",service=\"work\"",
        "nomclient_check_timeouts_total{",
        "type=\"http\"} 0.001351616\n",
        "nomclient_checks{",
        "nomclient_consul_registrations_total{",
        "nomclient_consul_errors_total{",
        "nomclient_consul_reachable{",
        "node_status=\"ready\"} 1.5\n",
        "registry=\"consul\",state=\"rejected\"} 2\n",
        "registry=\"nomad\",state=\"in sync\"} 0\n",
    };
    /* not measured and zero: left out, as Nomad does */
    static const char *const absent[] = {
        "nomad_client_allocs_memory_swap{",
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(present); i++)
        if (!strstr(text, present[i]))
            fail_msg("missing from the exposition: %s", present[i]);
    for (size_t i = 0; i < NC_ARRAY_LEN(absent); i++)
        if (strstr(text, absent[i]))
            fail_msg("should not be there: %s", absent[i]);
    free(text);

    json_t *j = metrics_json(m);
    size_t i;
    json_t *g;
    bool found = false;
    json_array_foreach(json_object_get(j, "Gauges"), i, g)
    {
        if (strcmp(json_string_value(json_object_get(g, "Name")),
                   "nomad.client.allocs.cpu.total_percent") == 0 &&
            strcmp(json_string_value(
                       json_object_get(json_object_get(g, "Labels"), "task")),
                   "worker") == 0) {
            found = true;
            assert_true(json_real_value(json_object_get(g, "Value")) == 73.5);
        }
    }
    assert_true(found);
    json_decref(j);
    metrics_free(m);

    /* without host stats, stats callback, checks or Consul: still valid */
    struct metrics_source bare = {.node = &n, .hostname = "h"};
    m = metrics_collect(&bare);
    text = metrics_prometheus(m);
    check_exposition(text);
    assert_null(strstr(text, "nomad_client_host_"));
    assert_non_null(strstr(text, "nomad_client_allocations_running{"));
    free(text);
    metrics_free(m);
    kv_free(&n.attributes);
    json_decref(checks);
    json_decref(consul);
    json_decref(view);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_collect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
