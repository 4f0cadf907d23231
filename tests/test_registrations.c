// deps: client/services/registrations.c client/services/registrations_print.c client/services/catalog.c client/services/services.c client/services/alloc_checks.c checks/checks.c checks/net.c checks/probe_http.c checks/probe_https.c client/curl_uv.c checks/probe_tcp.c checks/probe_grpc.c checks/probe_script.c checks/schedule.c checks/timers.c client/alloc/alloc.c client/job/ client/hcl/ client/format.c client/util.c
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/services/services.h"

/* A job parsed from HCL, allocations made by hand as the runner leaves
 * them, the desired state from services_rebuild, and Consul's side as
 * canned descriptions: every state the view knows. */
static const char job_hcl[] = "job \"shop\" {\n"
                              "  group \"web\" {\n"
                              "    network {\n"
                              "      port \"http\" {}\n"
                              "    }\n"
                              "    service {\n"
                              "      name = \"${NOMAD_GROUP_NAME}-front\"\n"
                              "      port = \"http\"\n"
                              "      provider = \"nomad\"\n"
                              "      tags = [\"v${NOMAD_ALLOC_INDEX}\"]\n"
                              "    }\n"
                              "    service {\n"
                              "      name = \"inside\"\n"
                              "      port = \"http\"\n"
                              "      address_mode = \"alloc\"\n"
                              "    }\n"
                              "    task \"srv\" {\n"
                              "      driver = \"raw_exec\"\n"
                              "      config {\n"
                              "        command = \"/bin/true\"\n"
                              "      }\n"
                              "      service {\n"
                              "        name = \"api\"\n"
                              "        port = \"http\"\n"
                              "      }\n"
                              "    }\n"
                              "  }\n"
                              "}\n";

static struct node node = {.id = (char *)"5f0c6a0e-node",
                           .name = (char *)"worker-1",
                           .datacenter = (char *)"dc1"};

struct fixture {
    struct job *job;
    struct alloc *allocs[2];
    struct svc_set set;
    struct catalog *catalog;
    json_t *consul; /* service ID -> description */
    json_t *stale, *status, *checks;
};

static struct alloc *make_alloc(struct job *job, const char *id, int port)
{
    struct alloc *a = xcalloc(1, sizeof(*a));
    a->id = xstrdup(id);
    a->name = xstrdup("shop.web[0]");
    a->job_id = xstrdup("shop");
    a->group = xstrdup("web");
    a->namespace = xstrdup("default");
    a->desired_status = xstrdup("run");
    a->client_status = xstrdup("running");
    a->network_mode = xstrdup("host");
    a->job = job;
    a->ntasks = 1;
    a->tasks = xcalloc(1, sizeof(*a->tasks));
    a->tasks[0].name = xstrdup("srv");
    a->tasks[0].state = xstrdup("running");
    if (port) {
        a->nports = 1;
        a->ports = xcalloc(1, sizeof(*a->ports));
        a->ports[0].label = xstrdup("metrics");
        a->ports[0].value = port;
        a->ports[0].to = port;
    }
    return a;
}

static void free_alloc(struct alloc *a)
{
    a->job = NULL; /* the fixture's, freed once */
    alloc_free(a);
}

static json_t *describe(void *arg, const char *id)
{
    json_t *d = json_object_get(arg, id);
    return d ? json_incref(d) : NULL;
}

static const struct svc_reg *find_reg(const struct svc_set *set,
                                      const char *name, const char *alloc)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->regs[i].name, name) == 0 &&
            strcmp(set->regs[i].alloc_id, alloc) == 0)
            return &set->regs[i];
    return NULL;
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    struct nc_error err = {0};
    if (jobspec_parse_hcl("shop.nomad", job_hcl, strlen(job_hcl), &f->job,
                          &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        free(f);
        return -1;
    }
    kv_set(&node.attributes, "unique.network.ip-address", "192.0.2.10");
    /* one allocation with its "http" port, one whose ports went missing */
    f->allocs[0] =
        make_alloc(f->job, "aaaaaaaa-1111-2222-3333-444444444444", 0);
    f->allocs[0]->nports = 1;
    f->allocs[0]->ports = xcalloc(1, sizeof(*f->allocs[0]->ports));
    f->allocs[0]->ports[0] = (struct alloc_port){
        .label = xstrdup("http"), .value = 25123, .to = 25123};
    f->allocs[1] =
        make_alloc(f->job, "bbbbbbbb-1111-2222-3333-444444444444", 9100);
    services_rebuild(&f->set, f->allocs, 2, &node, NULL);
    f->catalog = catalog_new(&node, false);
    catalog_update(f->catalog, &f->set);

    /* Consul's side of the "api" services and of "inside" */
    const struct svc_reg *api = find_reg(&f->set, "api", f->allocs[0]->id);
    const struct svc_reg *inside =
        find_reg(&f->set, "inside", f->allocs[0]->id);
    char retry[40];
    nc_format_time(nc_now_unix_ns() + 8500000000LL, retry, sizeof(retry));
    f->consul = json_object();
    json_object_set_new(
        f->consul, api->id,
        json_pack("{s:s, s:{s:s, s:s, s:s, s:i, s:s}, s:s, s:i, s:o}", "State",
                  "rejected", "LastAnswer", "Time", "2026-12-01T09:00:00Z",
                  "Method", "PUT", "Path", "/v1/agent/service/register",
                  "Status", 400, "Body", "Invalid service address\n",
                  "NextRetry", retry, "Attempts", 3, "LastPayload",
                  services_consul_payload(api)));
    json_object_set_new(f->consul, inside->id,
                        json_pack("{s:s}", "State", "pending"));
    f->stale = json_pack(
        "[{s:s, s:s, s:s, s:i, s:s}, {s:s, s:s, s:s, s:i, s:{s:i, s:s}}]",
        "ID", "_nomad-task-cccccccc-old-api-http", "Name", "api", "Address",
        "192.0.2.10", "Port", 24000, "Reason", "allocation cccccccc is gone",
        "ID", "_nomad-task-dddddddd-old-db-pg", "Name", "db", "Address",
        "192.0.2.10", "Port", 5432, "LastAnswer", "Status", 403, "Body",
        "Permission denied");
    f->status = json_pack("{s:s, s:b, s:s, s:s}", "Address",
                          "http://127.0.0.1:8500", "Reachable", 0, "LastError",
                          "Failed to connect to 127.0.0.1 port 8500: "
                          "Connection refused",
                          "NextRetry", retry);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    services_clear(&f->set);
    catalog_free(f->catalog);
    for (size_t i = 0; i < 2; i++)
        free_alloc(f->allocs[i]);
    jobspec_free(f->job);
    json_decref(f->consul);
    json_decref(f->stale);
    json_decref(f->status);
    json_decref(f->checks);
    kv_free(&node.attributes);
    free(f);
    return 0;
}

static json_t *view_of(struct fixture *f,
                       const struct registrations_filter *flt)
{
    struct registrations_source src = {.desired = &f->set,
                                       .node = &node,
                                       .catalog = f->catalog,
                                       .consul_describe = describe,
                                       .consul_arg = f->consul,
                                       .consul_stale = f->stale,
                                       .consul_status = f->status,
                                       .checks = f->checks,
                                       .allocs = f->allocs,
                                       .nallocs = 2};
    return registrations_json(&src, flt);
}

static const json_t *reg_named(const json_t *view, const char *name,
                               const char *alloc_prefix)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(view, "Registrations"), i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "ServiceName")),
                   name) == 0 &&
            nc_str_has_prefix(json_string_value(json_object_get(r, "AllocID")),
                              alloc_prefix))
            return r;
    }
    fail_msg("no registration %s of %s", name, alloc_prefix);
    return NULL;
}

static const char *s(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static void test_states(void **state)
{
    struct fixture *f = *state;
    json_t *view = view_of(f, NULL);
    /* 2 allocations x (web-front, api, inside) */
    assert_int_equal(json_array_size(json_object_get(view, "Registrations")),
                     6);

    const json_t *front = reg_named(view, "web-front", "aaaa");
    assert_string_equal(s(front, "Registry"), "nomad");
    assert_string_equal(s(front, "State"), "in sync");
    assert_true(json_is_null(json_object_get(front, "Problem")));
    assert_string_equal(s(front, "Address"), "192.0.2.10");
    assert_int_equal(json_integer_value(json_object_get(front, "Port")), 25123);
    assert_true(json_is_true(json_object_get(front, "PayloadSent")));

    const json_t *api = reg_named(view, "api", "aaaa");
    assert_string_equal(s(api, "Registry"), "consul");
    assert_string_equal(s(api, "State"), "rejected");
    assert_string_equal(s(api, "Problem"),
                        "Consul rejected this registration: 400 Invalid "
                        "service address; next retry in 8s");
    assert_string_equal(s(json_object_get(api, "Payload"), "Name"), "api");

    /* address_mode "alloc" in a host-network group: never registrable */
    const json_t *inside = reg_named(view, "inside", "aaaa");
    assert_string_equal(s(inside, "State"), "invalid");
    assert_non_null(strstr(s(inside, "Problem"),
                           "Cannot be registered: address_mode \"alloc\" "
                           "needs an allocation address"));
    assert_non_null(strstr(s(inside, "Hint"), "address_mode \"host\""));
    assert_non_null(strstr(s(inside, "Hint"), "group \"web\""));

    /* an allocation without the "http" port the services name */
    const json_t *lost = reg_named(view, "web-front", "bbbb");
    assert_string_equal(s(lost, "State"), "invalid");
    assert_non_null(strstr(s(lost, "Problem"), "port label \"http\""));
    assert_non_null(
        strstr(s(lost, "Hint"), "the allocation's ports are \"metrics\""));
    /* no description from Consul yet */
    const json_t *api_b = reg_named(view, "api", "bbbb");
    assert_string_equal(s(api_b, "State"), "invalid");

    const json_t *reg = json_object_get(view, "Registries");
    const json_t *consul = json_object_get(reg, "Consul");
    assert_non_null(strstr(s(consul, "Problem"),
                           "Consul at http://127.0.0.1:8500 is unreachable: "
                           "Failed to connect to 127.0.0.1 port 8500: "
                           "Connection refused; next retry in 8s"));
    const json_t *cat = json_object_get(reg, "Catalog");
    assert_int_equal(json_integer_value(json_object_get(cat, "Registrations")),
                     1);
    const json_t *stale = json_array_get(json_object_get(view, "Stale"), 0);
    assert_non_null(strstr(s(stale, "Problem"),
                           "Consul holds _nomad-task-cccccccc-old-api-http "
                           "(service \"api\" at 192.0.2.10:24000)"));
    const json_t *sum = json_object_get(view, "Summary");
    assert_int_equal(json_integer_value(json_object_get(sum, "InSync")), 1);
    assert_int_equal(json_integer_value(json_object_get(sum, "Problems")), 5);
    assert_int_equal(json_integer_value(json_object_get(sum, "Stale")), 2);
    stale = json_array_get(json_object_get(view, "Stale"), 1);
    assert_non_null(strstr(s(stale, "Problem"), "which no allocation of this "
                                                "node wants; deregistering it "
                                                "failed: 403 Permission "
                                                "denied"));
    json_decref(view);
}

/* Consul's other answers, one registration at a time. */
static void test_consul_answers(void **state)
{
    struct fixture *f = *state;
    const struct svc_reg *api = find_reg(&f->set, "api", f->allocs[0]->id);
    static const struct {
        const char *desc, *problem, *hint;
    } cases[] = {
        {"{\"State\": \"in sync\"}", NULL, NULL},
        {"{\"State\": \"missing\"}",
         "Consul does not have this registration; next retry in 8s",
         "next sync"},
        {"{\"State\": \"different\", \"Differences\": [\"Port: Consul has "
         "8080, this node wants 25123\", \"Tags: Consul has [], this node "
         "wants [v0]\"]}",
         "Consul holds a different registration: Port: Consul has 8080, this "
         "node wants 25123; Tags: Consul has [], this node wants [v0]; next "
         "retry in 8s",
         "next sync"},
        {"{\"State\": \"rejected\", \"LastAnswer\": {\"Status\": 403, "
         "\"Body\": \"ACL not found\"}}",
         "Consul refused the ACL token: 403 ACL not found; next retry in 8s",
         "service:write on \"api\""},
        {"{\"State\": \"unreachable\", \"LastAnswer\": {\"Status\": 0, "
         "\"Error\": \"Connection refused\"}, \"NextRetry\": null}",
         "Consul is unreachable: Connection refused; next retry in 8s",
         "nothing is lost"},
        {"{\"State\": \"pending\"}",
         "Not sent to Consul yet: waiting for the first sync", NULL},
        /* a pass that failed on reading: no answer of its own, the loop's
         * last error says why */
        {"{\"State\": \"rejected\", \"LastAnswer\": null}",
         "Consul refused the ACL token: 403 ACL not found (on GET "
         "/v1/agent/checks); next retry in 8s",
         "must be known to Consul"},
    };
    json_object_set_new(f->status, "LastError",
                        json_string("GET /v1/agent/checks: HTTP 403: ACL "
                                    "not found"));
    json_object_set_new(f->status, "Reachable", json_true());
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        json_object_set_new(f->consul, api->id,
                            json_loads(cases[i].desc, 0, NULL));
        struct registrations_filter flt = {.id = api->id};
        json_t *view = view_of(f, &flt);
        const json_t *regs = json_object_get(view, "Registrations");
        assert_int_equal(json_array_size(regs), 1);
        const json_t *r = json_array_get(regs, 0);
        if (!cases[i].problem)
            assert_true(json_is_null(json_object_get(r, "Problem")));
        else
            assert_string_equal(s(r, "Problem"), cases[i].problem);
        if (cases[i].hint)
            assert_non_null(strstr(s(r, "Hint"), cases[i].hint));
        const json_t *consul =
            json_object_get(json_object_get(view, "Registries"), "Consul");
        assert_string_equal(s(consul, "Problem"),
                            "Consul at http://127.0.0.1:8500 refused this "
                            "agent's ACL token: 403 ACL not found (on GET "
                            "/v1/agent/checks); next retry in 8s");
        json_decref(view);
    }
    /* in sync, but Consul shows a check this node passes as critical */
    struct svc_reg *r = (struct svc_reg *)api;
    r->checks = xcalloc(1, sizeof(*r->checks));
    r->nchecks = 1;
    r->checks[0] = (struct svc_check){
        .id = xstrdup("_nomad-check-ttl"),
        .name = xstrdup("alive"),
        .type = xstrdup("tcp"),
        .status = xstrdup("passing"),
        .output = xstrdup("TCP connect 192.0.2.10:25123: Success")};
    json_object_set_new(f->consul, api->id,
                        json_pack("{s:s, s:[{s:s, s:s}]}", "State", "in sync",
                                  "Checks", "CheckID", "_nomad-check-ttl",
                                  "ConsulStatus", "critical"));
    struct registrations_filter flt = {.id = api->id};
    json_t *view = view_of(f, &flt);
    const json_t *one =
        json_array_get(json_object_get(view, "Registrations"), 0);
    assert_true(json_is_null(json_object_get(one, "Problem")));
    assert_string_equal(s(one, "CheckProblem"),
                        "check \"alive\" is passing here but critical in "
                        "Consul (its status updates are not getting through)");
    const json_t *check = json_array_get(json_object_get(one, "Checks"), 0);
    assert_string_equal(s(check, "RegistryStatus"), "critical");
    json_decref(view);
}

static void test_filter_and_detail(void **state)
{
    struct fixture *f = *state;
    const struct svc_reg *front =
        find_reg(&f->set, "web-front", f->allocs[0]->id);
    /* a check with live history, as the check engine reports it */
    struct svc_reg *r = (struct svc_reg *)front;
    r->checks = xcalloc(1, sizeof(*r->checks));
    r->nchecks = 1;
    r->checks[0] = (struct svc_check){
        .id = xstrdup("_nomad-check-abc"),
        .name = xstrdup("alive"),
        .type = xstrdup("http"),
        .status = xstrdup("critical"),
        .output = xstrdup("dial tcp 192.0.2.10:25123: connection refused")};
    f->checks =
        json_pack("{s:{s:s, s:{s:i, s:i, s:i}, s:[{s:s, s:s, s:i, s:i}]}}",
                  "_nomad-check-abc", "URL", "http://192.0.2.10:25123/health",
                  "Counters", "Probes", 7, "Passing", 5, "Critical", 2,
                  "History", "Status", "critical", "Timestamp",
                  "2026-12-01T09:00:07Z", "Code", 0, "Latency", 1200000);

    struct registrations_filter flt = {.service = "web-front", .detail = true};
    json_t *view = view_of(f, &flt);
    const json_t *regs = json_object_get(view, "Registrations");
    assert_int_equal(json_array_size(regs), 2);
    const json_t *one = reg_named(view, "web-front", "aaaa");
    assert_string_equal(s(one, "CheckStatus"), "critical");
    assert_string_equal(s(one, "CheckProblem"),
                        "check \"alive\" is critical: dial tcp "
                        "192.0.2.10:25123: connection refused");
    const json_t *check = json_array_get(json_object_get(one, "Checks"), 0);
    assert_string_equal(s(check, "Target"), "http://192.0.2.10:25123/health");
    assert_int_equal(json_array_size(json_object_get(check, "History")), 1);
    /* the service block as written, before interpolation */
    const json_t *src = json_object_get(one, "Source");
    const json_t *svc = json_object_get(src, "Service");
    assert_string_equal(s(svc, "Name"), "${NOMAD_GROUP_NAME}-front");
    assert_string_equal(s(svc, "AddressMode"), "auto");
    assert_string_equal(s(svc, "Provider"), "nomad");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(one, "Tags"), 0)),
        "v0");
    assert_int_equal(json_array_size(json_object_get(src, "Ports")), 1);
    json_t *sum = json_object_get(view, "Summary");
    assert_int_equal(json_integer_value(json_object_get(sum, "Unhealthy")), 1);
    json_decref(view);

    /* by ID prefix; unknown names match nothing */
    flt = (struct registrations_filter){.service = "_nomad-task-bbbbbbbb"};
    view = view_of(f, &flt);
    assert_int_equal(json_array_size(json_object_get(view, "Registrations")),
                     3);
    assert_null(json_object_get(
        json_array_get(json_object_get(view, "Registrations"), 0), "Source"));
    json_decref(view);
    flt = (struct registrations_filter){.service = "nope\"\n"};
    view = view_of(f, &flt);
    assert_int_equal(json_array_size(json_object_get(view, "Registrations")),
                     0);
    assert_int_equal(json_array_size(json_object_get(view, "Stale")), 0);
    json_decref(view);
}

/* Captures what a print function writes. */
static char *printed(void (*fn)(FILE *, const json_t *), const json_t *view)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    fn(out, view);
    fclose(out);
    if (getenv("REGISTRATIONS_PRINT")) /* to look at the layout */
        fputs(buf, stderr);
    return buf;
}

static void test_print(void **state)
{
    struct fixture *f = *state;
    json_t *view = view_of(f, NULL);
    char *text = printed(registrations_print, view);
    /* the registry's trouble first, then the problems, then the table */
    char *consul = strstr(text, "Consul");
    char *problems = strstr(text, "\nProblems\n");
    char *rejected = strstr(text, "api (allocation aaaaaaaa): Consul rejected "
                                  "this registration: 400 Invalid service "
                                  "address");
    char *table = strstr(text, "Service ");
    assert_non_null(consul);
    assert_non_null(problems);
    assert_non_null(rejected);
    assert_non_null(table);
    assert_true(consul < problems && problems < rejected && rejected < table);
    assert_non_null(strstr(text, "192.0.2.10:25123"));
    assert_non_null(strstr(text, "in sync"));
    assert_non_null(strstr(text, "Stale in Consul"));
    assert_non_null(strstr(text, "_nomad-task-cccccccc-old-api-http"));
    free(text);
    json_decref(view);

    struct registrations_filter flt = {.service = "api", .detail = true};
    view = view_of(f, &flt);
    text = printed(registrations_print_explain, view);
    char *first = strstr(text, "== Service \"api\"");
    assert_non_null(first);
    assert_true(strncmp(strchr(first, '\n') + 1,
                        "Problem: Consul rejected this registration: 400 "
                        "Invalid service address",
                        60) == 0);
    assert_non_null(strstr(text, "Payload sent (PUT "
                                 "/v1/agent/service/register)"));
    assert_non_null(strstr(text, "\"Name\": \"api\""));
    assert_non_null(strstr(text, "Last answer"));
    assert_non_null(strstr(text, "400 Invalid service address"));
    assert_non_null(strstr(text, "address_mode \"auto\" is \"host\""));
    assert_non_null(strstr(text, "Allocation ports"));
    free(text);
    json_decref(view);
}

static void test_api_path(void **state)
{
    char *p = registrations_api_path(NULL);
    assert_string_equal(p, "/v1/agent/registrations");
    free(p);
    p = registrations_api_path("web api&x=\"1\"");
    assert_string_equal(p, "/v1/agent/registrations?service="
                           "web%20api%26x%3D%221%22");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consul_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_and_detail, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_print, setup, teardown),
        cmocka_unit_test(test_api_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
