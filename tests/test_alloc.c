// deps: client/alloc/alloc.c client/job/ client/hcl/ client/util.c
/* The allocation model: Nomad-shaped JSON round trip (the durable state),
 * bounded events, the task environment and ${...} interpolation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/alloc/alloc.h"

static const char job_hcl[] =
    "job \"web\" {\n"
    "  meta { team = \"core\" }\n"
    "  group \"api\" {\n"
    "    network {\n"
    "      port \"http\" { to = 8080 }\n"
    "      port \"admin-ui\" { static = 9000 }\n"
    "    }\n"
    "    task \"srv\" {\n"
    "      driver = \"raw_exec\"\n"
    "      config { command = \"/bin/true\" }\n"
    "      env { LISTEN = \"${NOMAD_IP_http}:${NOMAD_PORT_http}\"\n"
    "            ARCH = \"${attr.cpu.arch}\"\n"
    "            KEEP = \"${var.unknown}\" }\n"
    "    }\n"
    "  }\n"
    "}\n";

static struct alloc *make_alloc(void)
{
    struct alloc *a = xcalloc(1, sizeof(*a));
    struct nc_error err = {0};
    assert_int_equal(jobspec_parse_hcl("web.nomad", job_hcl, strlen(job_hcl), &a->job, &err), 0);
    a->id = xstrdup("0b5e7a3c-1111-4222-8333-944455556666");
    a->name = xstrdup("web.api[0]");
    a->namespace = xstrdup("default");
    a->job_id = xstrdup("web");
    a->group = xstrdup("api");
    a->desired_status = xstrdup("run");
    a->client_status = xstrdup("running");
    a->client_description = xstrdup("Tasks are running");
    a->network_mode = xstrdup("bridge");
    a->ip = xstrdup("172.26.64.5");
    a->netns = xstrdup("nomclient-0b5e7a3c");
    a->nports = 2;
    a->ports = xcalloc(2, sizeof(*a->ports));
    a->ports[0] = (struct alloc_port){xstrdup("http"), 24000, 8080, xstrdup("")};
    a->ports[1] = (struct alloc_port){xstrdup("admin-ui"), 9000, 9000, xstrdup("")};
    a->ntasks = 1;
    a->tasks = xcalloc(1, sizeof(*a->tasks));
    a->tasks[0].name = xstrdup("srv");
    a->tasks[0].state = xstrdup("running");
    a->tasks[0].started_at = 1795550000123456789LL;
    a->tasks[0].restarts = 2;
    a->tasks[0].alloc = a;
    return a;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct alloc *a = make_alloc();
    for (int i = 0; i < 15; i++)
        alloc_task_event(&a->tasks[0], "Restarting", "attempt %d", i);
    assert_int_equal(a->tasks[0].nevents, ALLOC_MAX_EVENTS);
    assert_string_equal(a->tasks[0].events[0].message, "attempt 5");
    json_t *j = alloc_to_json(a);
    json_t *ts = json_object_get(json_object_get(j, "TaskStates"), "srv");
    assert_string_equal(json_string_value(json_object_get(ts, "StartedAt")),
                        "2026-11-24T19:53:20.123456789Z");
    struct alloc *b = NULL;
    struct nc_error err = {0};
    assert_int_equal(alloc_from_json(j, &b, &err), 0);
    json_t *j2 = alloc_to_json(b);
    json_object_del(j, "ModifyTime");
    json_object_del(j2, "ModifyTime");
    assert_true(json_equal(j, j2));
    assert_int_equal(b->tasks[0].restarts, 2);
    assert_int_equal(b->ports[0].to, 8080);
    json_decref(j);
    json_decref(j2);
    alloc_free(b);
    alloc_free(a);
    json_t *bad = json_pack("{s:s}", "Name", "x");
    assert_int_equal(alloc_from_json(bad, &b, &err), -EINVAL);
    assert_string_equal(err.msg, "allocation lacks an ID");
    json_decref(bad);
}

static void test_env_and_interpolation(void **state)
{
    (void)state;
    struct alloc *a = make_alloc();
    struct node n = {0};
    n.datacenter = "dc1";
    n.region = "global";
    kv_set(&n.attributes, "cpu.arch", "amd64");
    kv_set(&n.attributes, "unique.network.ip-address", "10.0.0.7");
    struct kvlist env = {0};
    alloc_task_env(a, &a->job->groups[0].tasks[0], &n, "/data/alloc/x/alloc",
                   "/data/alloc/x/srv", true, &env);
    assert_string_equal(kv_get(&env, "NOMAD_ALLOC_ID"), a->id);
    assert_string_equal(kv_get(&env, "NOMAD_SHORT_ALLOC_ID"), "0b5e7a3c");
    assert_string_equal(kv_get(&env, "NOMAD_ALLOC_DIR"), "/alloc");
    assert_string_equal(kv_get(&env, "NOMAD_TASK_DIR"), "/local");
    assert_string_equal(kv_get(&env, "NOMAD_PORT_http"), "8080");
    assert_string_equal(kv_get(&env, "NOMAD_HOST_PORT_http"), "24000");
    assert_string_equal(kv_get(&env, "NOMAD_ALLOC_PORT_http"), "8080");
    assert_string_equal(kv_get(&env, "NOMAD_ADDR_http"), "10.0.0.7:24000");
    assert_string_equal(kv_get(&env, "NOMAD_ALLOC_ADDR_http"), "172.26.64.5:8080");
    assert_string_equal(kv_get(&env, "NOMAD_PORT_admin_ui"), "9000");
    assert_string_equal(kv_get(&env, "NOMAD_META_team"), "core");
    assert_string_equal(kv_get(&env, "NOMAD_DC"), "dc1");
    assert_string_equal(kv_get(&env, "LISTEN"), "10.0.0.7:8080");
    assert_string_equal(kv_get(&env, "ARCH"), "amd64");
    assert_string_equal(kv_get(&env, "KEEP"), "${var.unknown}");
    char *s = alloc_interpolate("x ${env[\"NOMAD_TASK_NAME\"]} ${meta.none} ${", &env, &n);
    assert_string_equal(s, "x srv ${meta.none} ${");
    free(s);
    kv_free(&env);
    kv_free(&n.attributes);
    alloc_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_env_and_interpolation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
