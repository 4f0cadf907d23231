// deps: client/services/services.c client/alloc/alloc.c client/job/ client/hcl/ client/util.c tests/stub_alloc_checks.c
/* The desired registrations: Nomad's service IDs, which services exist in
 * which allocation state, address and port per address_mode with the
 * reason, interpolation, and the Consul and Nomad payloads. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/alloc/alloc.h"
#include "client/services/services.h"

static const char job_hcl[] =
    "job \"web\" {\n"
    "  group \"api\" {\n"
    "    network {\n"
    "      mode = \"bridge\"\n"
    "      port \"http\" { to = 8080 }\n"
    "    }\n"
    "    service {\n"
    "      name = \"api-${NOMAD_GROUP_NAME}\"\n"
    "      port = \"http\"\n"
    "      tags = [\"v1\", \"dc-${node.datacenter}\"]\n"
    "      meta { alloc = \"${NOMAD_ALLOC_INDEX}\" }\n"
    "    }\n"
    "    service {\n"
    "      name = \"inside\"\n"
    "      port = \"http\"\n"
    "      address_mode = \"alloc\"\n"
    "    }\n"
    "    task \"srv\" {\n"
    "      driver = \"raw_exec\"\n"
    "      config { command = \"/bin/true\" }\n"
    "      service {\n"
    "        name = \"admin\"\n"
    "        port = \"http\"\n"
    "        provider = \"nomad\"\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

static struct node node;

static struct alloc *make_alloc(bool bridged)
{
    struct alloc *a = xcalloc(1, sizeof(*a));
    struct nc_error err = {0};
    assert_int_equal(jobspec_parse_hcl("web.nomad", job_hcl, strlen(job_hcl),
                                       &a->job, &err), 0);
    a->id = xstrdup("0b5e7a3c-1111-4222-8333-944455556666");
    a->name = xstrdup("web.api[0]");
    a->namespace = xstrdup("default");
    a->job_id = xstrdup("web");
    a->group = xstrdup("api");
    a->desired_status = xstrdup("run");
    a->client_status = xstrdup("running");
    a->network_mode = xstrdup(bridged ? "bridge" : "host");
    a->ip = bridged ? xstrdup("172.26.64.5") : NULL;
    a->netns = bridged ? xstrdup("0b5e7a3c") : NULL;
    a->nports = 1;
    a->ports = xcalloc(1, sizeof(*a->ports));
    a->ports[0] = (struct alloc_port){xstrdup("http"), 24000, 8080, xstrdup("")};
    a->ntasks = 1;
    a->tasks = xcalloc(1, sizeof(*a->tasks));
    a->tasks[0].name = xstrdup("srv");
    a->tasks[0].state = xstrdup("running");
    a->tasks[0].alloc = a;
    return a;
}

static int setup(void **state)
{
    node.id = xstrdup("node-1");
    node.datacenter = xstrdup("dc7");
    kv_set(&node.attributes, "unique.network.ip-address", "10.0.0.9");
    return 0;
}

static int teardown(void **state)
{
    free(node.id);
    free(node.datacenter);
    kv_free(&node.attributes);
    return 0;
}

static void test_ids_and_addresses(void **state)
{
    struct alloc *a = make_alloc(true);
    struct svc_set set = {0};
    services_rebuild(&set, &a, 1, &node, NULL);
    assert_int_equal(set.n, 3);
    const struct svc_reg *g = services_find(
        &set, "_nomad-task-0b5e7a3c-1111-4222-8333-944455556666-group-api-api-api-http");
    assert_non_null(g);
    assert_string_equal(g->name, "api-api");
    assert_null(g->task);
    assert_string_equal(g->provider, "consul");
    /* auto = host: the node's address and the mapped host port */
    assert_string_equal(g->address, "10.0.0.9");
    assert_int_equal(g->port, 24000);
    assert_string_equal(g->address_mode, "host");
    assert_non_null(strstr(g->address_why, "host port 24000"));
    assert_string_equal(g->tags.items[1], "dc-dc7");
    assert_string_equal(kv_get(&g->meta, "alloc"), "0");
    const struct svc_reg *in = services_find(
        &set, "_nomad-task-0b5e7a3c-1111-4222-8333-944455556666-group-api-inside-http");
    assert_non_null(in);
    assert_string_equal(in->address, "172.26.64.5");
    assert_int_equal(in->port, 8080);
    assert_null(in->error);
    const struct svc_reg *t = services_find(
        &set, "_nomad-task-0b5e7a3c-1111-4222-8333-944455556666-srv-admin-http");
    assert_non_null(t);
    assert_string_equal(t->task, "srv");
    assert_string_equal(t->provider, "nomad");
    services_clear(&set);
    alloc_free(a);
}

static void test_alloc_mode_without_network(void **state)
{
    struct alloc *a = make_alloc(false);
    struct svc_set set = {0};
    services_rebuild(&set, &a, 1, &node, NULL);
    const struct svc_reg *in = services_find(
        &set, "_nomad-task-0b5e7a3c-1111-4222-8333-944455556666-group-api-inside-http");
    assert_non_null(in);
    assert_non_null(in->error);
    assert_non_null(strstr(in->error, "address_mode \"alloc\" needs an allocation address"));
    services_clear(&set);
    alloc_free(a);
}

static void test_which_states_register(void **state)
{
    struct alloc *a = make_alloc(true);
    struct svc_set set = {0};
    free(a->tasks[0].state);
    a->tasks[0].state = xstrdup("pending"); /* not running: nothing */
    services_rebuild(&set, &a, 1, &node, NULL);
    assert_int_equal(set.n, 0);
    free(a->tasks[0].state);
    a->tasks[0].state = xstrdup("running");
    a->stopping = true; /* stopping: deregistered before the kill */
    services_rebuild(&set, &a, 1, &node, NULL);
    assert_int_equal(set.n, 0);
    a->stopping = false;
    free(a->client_status);
    a->client_status = xstrdup("complete");
    services_rebuild(&set, &a, 1, &node, NULL);
    assert_int_equal(set.n, 0);
    services_clear(&set);
    alloc_free(a);
}

static void test_payloads(void **state)
{
    struct alloc *a = make_alloc(true);
    struct svc_set set = {0};
    services_rebuild(&set, &a, 1, &node, NULL);
    struct svc_reg *g = &set.regs[0];
    g->checks = xcalloc(1, sizeof(*g->checks));
    g->nchecks = 1;
    g->checks[0] = (struct svc_check){xstrdup("_nomad-check-1"), xstrdup("alive"),
                                      xstrdup("http"), 5000000000LL,
                                      2000000000LL, xstrdup("passing"),
                                      xstrdup("HTTP GET ...: 200 OK"), false};
    json_t *p = services_consul_payload(g);
    assert_string_equal(json_string_value(json_object_get(p, "ID")), g->id);
    assert_int_equal(json_integer_value(json_object_get(p, "Port")), g->port);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(p, "Meta"), "external-source")),
                        "nomad");
    json_t *c = json_array_get(json_object_get(p, "Checks"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "CheckID")),
                        "_nomad-check-1");
    assert_string_equal(json_string_value(json_object_get(c, "TTL")), "15s");
    assert_string_equal(json_string_value(json_object_get(c, "Status")), "passing");
    json_decref(p);
    p = services_nomad_json(g, &node);
    assert_string_equal(json_string_value(json_object_get(p, "NodeID")), "node-1");
    assert_string_equal(json_string_value(json_object_get(p, "Datacenter")), "dc7");
    json_decref(p);
    assert_int_equal(services_ttl_ns(1000000000LL), 11000000000LL);
    services_clear(&set);
    alloc_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_and_addresses),
        cmocka_unit_test(test_alloc_mode_without_network),
        cmocka_unit_test(test_which_states_register),
        cmocka_unit_test(test_payloads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
