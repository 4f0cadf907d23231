// deps: client/services/catalog.c client/services/services.c client/services/alloc_checks.c checks/checks.c checks/net.c checks/probe_http.c checks/probe_https.c client/curl_uv.c checks/probe_tcp.c checks/probe_grpc.c checks/probe_script.c checks/schedule.c checks/timers.c client/alloc/alloc.c client/job/ client/hcl/ client/util.c
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/services/services.h"

/* The desired state by hand, as services_rebuild would leave it. */
static struct node node = {.id = (char *)"5f0c6a0e-node",
                           .datacenter = (char *)"dc1"};

static struct svc_reg *add(struct svc_set *set, const char *alloc,
                           const char *name, const char *provider,
                           const char *address, int port)
{
    nc_grow((void **)&set->regs, &set->cap, set->n + 1, sizeof(*set->regs));
    struct svc_reg *r = &set->regs[set->n++];
    memset(r, 0, sizeof(*r));
    r->id = xasprintf("_nomad-task-%s-srv-%s-http", alloc, name);
    r->name = xstrdup(name);
    r->provider = xstrdup(provider);
    r->namespace_ = xstrdup("default");
    r->job_id = xstrdup("shop");
    r->alloc_id = xstrdup(alloc);
    r->group = xstrdup("g");
    r->task = xstrdup("srv");
    r->address = xstrdup(address);
    r->port = port;
    return r;
}

static void add_check(struct svc_reg *r, const char *name, const char *status)
{
    char *id = xasprintf("_nomad-check-%s-%zu", r->alloc_id, r->nchecks);
    r->checks = xrealloc(r->checks, (r->nchecks + 1) * sizeof(*r->checks));
    r->checks[r->nchecks++] =
        (struct svc_check){.id = id,
                           .name = xstrdup(name),
                           .type = xstrdup("http"),
                           .status = xstrdup(status),
                           .output = xstrdup("HTTP GET /: 200 OK")};
}

static void set_status(struct svc_reg *r, size_t i, const char *status)
{
    free(r->checks[i].status);
    r->checks[i].status = xstrdup(status);
}

static json_int_t field_int(const json_t *list, size_t i, const char *key)
{
    return json_integer_value(json_object_get(json_array_get(list, i), key));
}

static const char *field_str(const json_t *list, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(list, i), key));
}

static void test_providers(void **state)
{
    struct svc_set set = {0};
    add(&set, "a1", "web", "nomad", "10.0.0.1", 8080);
    add(&set, "a1", "db", "consul", "10.0.0.1", 5432);
    struct catalog *only_nomad = catalog_new(&node, false);
    struct catalog *all = catalog_new(&node, true);
    assert_true(catalog_serves(only_nomad, &set.regs[0]));
    assert_false(catalog_serves(only_nomad, &set.regs[1]));
    assert_true(catalog_serves(all, &set.regs[1]));
    catalog_update(only_nomad, &set);
    catalog_update(all, &set);
    assert_int_equal(catalog_count(only_nomad), 1);
    assert_int_equal(catalog_count(all), 2);
    json_t *db = catalog_service_json(only_nomad, "db");
    assert_int_equal(json_array_size(db), 0);
    json_decref(db);
    assert_null(catalog_describe(only_nomad, set.regs[1].id));
    catalog_free(only_nomad);
    catalog_free(all);
    services_clear(&set);
}

static void test_shapes(void **state)
{
    struct svc_set set = {0};
    struct svc_reg *r = add(&set, "a1", "web", "nomad", "10.0.0.1", 8080);
    strlist_add(&r->tags, "v2");
    strlist_add(&r->tags, "blue");
    add_check(r, "alive", "passing");
    add_check(r, "ready", "critical");
    r = add(&set, "b2", "web", "nomad", "10.0.0.2", 8081);
    strlist_add(&r->tags, "v2");
    strlist_add(&r->tags, "green");
    add(&set, "c3", "api", "nomad", "10.0.0.3", 9090);
    r = add(&set, "d4", "web", "nomad", "10.0.0.4", 8082);
    free(r->namespace_);
    r->namespace_ = xstrdup("prod");
    struct catalog *c = catalog_new(&node, true);
    catalog_update(c, &set);

    json_t *list = catalog_list_json(c);
    char *s = json_dumps(list, JSON_COMPACT);
    assert_string_equal(
        s, "[{\"Namespace\":\"default\",\"Services\":["
           "{\"ServiceName\":\"api\",\"Tags\":[]},"
           "{\"ServiceName\":\"web\",\"Tags\":[\"blue\",\"green\",\"v2\"]}]},"
           "{\"Namespace\":\"prod\",\"Services\":["
           "{\"ServiceName\":\"web\",\"Tags\":[]}]}]");
    free(s);
    json_decref(list);
    /* without ?namespace Nomad answers for "default" only */
    struct catalog_query dflt = {0};
    list = catalog_list_query_json(c, &dflt);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(field_str(list, 0, "Namespace"), "default");
    json_decref(list);

    json_t *web = NULL;
    assert_int_equal(catalog_service_query(c, "web", &dflt, &web, NULL), 0);
    assert_int_equal(json_array_size(web), 2);
    static const char *const keys[] = {
        "ID",          "ServiceName", "Namespace", "NodeID",  "Datacenter",
        "JobID",       "AllocID",     "Tags",      "Address", "Port",
        "CreateIndex", "ModifyIndex", "Health",    "Checks"};
    for (size_t i = 0; i < NC_ARRAY_LEN(keys); i++)
        assert_non_null(json_object_get(json_array_get(web, 0), keys[i]));
    assert_string_equal(field_str(web, 0, "NodeID"), "5f0c6a0e-node");
    assert_string_equal(field_str(web, 0, "Address"), "10.0.0.1");
    assert_int_equal(field_int(web, 0, "Port"), 8080);
    /* the worst check decides; no checks is passing, as in Consul */
    assert_string_equal(field_str(web, 0, "Health"), "critical");
    assert_string_equal(field_str(web, 1, "Health"), "passing");
    json_t *checks = json_object_get(json_array_get(web, 0), "Checks");
    assert_int_equal(json_array_size(checks), 2);
    assert_string_equal(field_str(checks, 1, "Name"), "ready");
    json_decref(web);

    struct catalog_query passing = {.passing = true};
    assert_int_equal(catalog_service_query(c, "web", &passing, &web, NULL), 0);
    assert_int_equal(json_array_size(web), 1);
    assert_string_equal(field_str(web, 0, "AllocID"), "b2");
    json_decref(web);
    struct catalog_query every = {.namespace_ = "*"};
    assert_int_equal(catalog_service_query(c, "web", &every, &web, NULL), 0);
    assert_int_equal(json_array_size(web), 3);
    json_decref(web);
    web = catalog_service_json(c, "nope");
    assert_true(json_is_array(web) && json_array_size(web) == 0);
    json_decref(web);
    catalog_free(c);
    services_clear(&set);
}

static void test_index_stability(void **state)
{
    struct svc_set set = {0};
    struct svc_reg *r = add(&set, "a1", "web", "nomad", "10.0.0.1", 8080);
    add_check(r, "alive", "critical");
    add(&set, "b2", "web", "nomad", "10.0.0.2", 8081);
    struct catalog *c = catalog_new(&node, true);
    catalog_update(c, &set);
    json_t *first = catalog_service_json(c, "web");
    uint64_t idx = catalog_index(c);
    assert_int_equal(idx, 2);

    /* a rebuild with nothing changed, then one where only health moved */
    catalog_update(c, &set);
    set_status(&set.regs[0], 0, "passing");
    catalog_update(c, &set);
    json_t *again = catalog_service_json(c, "web");
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(field_int(again, i, "CreateIndex"),
                         field_int(first, i, "CreateIndex"));
        assert_int_equal(field_int(again, i, "ModifyIndex"),
                         field_int(first, i, "ModifyIndex"));
    }
    assert_string_equal(field_str(again, 0, "Health"), "passing");
    assert_int_equal(catalog_index(c), idx);
    json_decref(again);

    /* a new port: same CreateIndex, a new ModifyIndex */
    set.regs[1].port = 9999;
    catalog_update(c, &set);
    again = catalog_service_json(c, "web");
    assert_int_equal(field_int(again, 1, "CreateIndex"),
                     field_int(first, 1, "CreateIndex"));
    assert_int_equal(field_int(again, 1, "ModifyIndex"), idx + 1);
    assert_int_equal(field_int(again, 0, "ModifyIndex"),
                     field_int(first, 0, "ModifyIndex"));
    json_decref(again);

    /* a removal raises the catalog's index; a newcomer gets a fresh one */
    services_clear(&set);
    add(&set, "b2", "web", "nomad", "10.0.0.2", 9999);
    add(&set, "c3", "web", "nomad", "10.0.0.3", 8082);
    catalog_update(c, &set);
    assert_int_equal(catalog_index(c), idx + 3);
    again = catalog_service_json(c, "web");
    assert_int_equal(json_array_size(again), 2);
    assert_string_equal(field_str(again, 1, "AllocID"), "c3");
    assert_int_equal(field_int(again, 1, "CreateIndex"), idx + 2);
    json_decref(again);
    json_decref(first);
    catalog_free(c);
    services_clear(&set);
}

static void test_rejected(void **state)
{
    struct svc_set set = {0};
    struct svc_reg *r = add(&set, "a1", "web", "nomad", "10.0.0.1", 0);
    free(r->address);
    r->address = NULL;
    r->error = xstrdup("port label \"htp\" is not a port of allocation a1");
    add(&set, "b2", "web", "nomad", "0.0.0.0", 8080);
    add(&set, "c3", "web", "nomad", "10.0.0.3", 8080);
    struct catalog *c = catalog_new(&node, true);
    catalog_update(c, &set);
    assert_int_equal(catalog_count(c), 1);
    assert_int_equal(catalog_index(c), 1);
    json_t *web = catalog_service_json(c, "web");
    assert_int_equal(json_array_size(web), 1);
    json_decref(web);

    json_t *d = catalog_describe(c, set.regs[0].id);
    assert_string_equal(json_string_value(json_object_get(d, "State")),
                        "rejected");
    assert_non_null(strstr(json_string_value(json_object_get(d, "Error")),
                           "port label \"htp\""));
    json_decref(d);
    d = catalog_describe(c, set.regs[1].id);
    assert_non_null(strstr(json_string_value(json_object_get(d, "Error")),
                           "invalid service registration address"));
    json_decref(d);
    d = catalog_describe(c, set.regs[2].id);
    assert_string_equal(json_string_value(json_object_get(d, "State")),
                        "in sync");
    json_t *reg = json_object_get(d, "Registration");
    assert_string_equal(json_string_value(json_object_get(reg, "Address")),
                        "10.0.0.3");
    assert_non_null(json_object_get(d, "Since"));
    json_decref(d);
    assert_null(catalog_describe(c, "_nomad-task-unknown"));
    catalog_free(c);
    services_clear(&set);
}

/* Expected orders computed with Python's hashlib over Nomad's HashWith
 * fields: port (8 bytes, big-endian), AllocID, ID, Namespace, Address,
 * ServiceName, tags, key. */
static void test_choose(void **state)
{
    static const struct {
        const char *alloc;
        int port;
        const char *tags[2];
    } in[] = {{"a1", 8080, {"v1"}},      {"b2", 8081, {0}},
              {"c3", 8082, {"v1", "x"}}, {"d4", 8083, {0}},
              {"e5", 8084, {"blue"}},    {"f6", 8085, {0}}};
    struct svc_set set = {0};
    for (size_t i = 0; i < NC_ARRAY_LEN(in); i++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "10.0.0.%zu", i + 1);
        struct svc_reg *r =
            add(&set, in[i].alloc, "web", "nomad", addr, in[i].port);
        for (size_t t = 0; t < 2 && in[i].tags[t]; t++)
            strlist_add(&r->tags, in[i].tags[t]);
    }
    struct catalog *c = catalog_new(&node, true);
    catalog_update(c, &set);
    static const struct {
        const char *param;
        const char *order[6];
        size_t n;
    } cases[] = {{"6|k1", {"e5", "d4", "f6", "a1", "c3", "b2"}, 6},
                 {"3|0f9c2e", {"f6", "d4", "c3"}, 3},
                 {"99|0f9c2e", {"f6", "d4", "c3", "a1", "b2", "e5"}, 6},
                 {"0|k1", {0}, 0}};
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        struct catalog_query q = {.choose = cases[i].param};
        json_t *out = NULL;
        assert_int_equal(catalog_service_query(c, "web", &q, &out, NULL), 0);
        assert_int_equal(json_array_size(out), cases[i].n);
        for (size_t k = 0; k < cases[i].n; k++)
            assert_string_equal(field_str(out, k, "AllocID"),
                                cases[i].order[k]);
        json_decref(out);
    }
    static const char *const bad[] = {"",   "3",    "|k",  "x|k",
                                      "3|", "-1|k", "3x|k"};
    for (size_t i = 0; i < NC_ARRAY_LEN(bad); i++) {
        struct catalog_query q = {.choose = bad[i]};
        struct nc_error err = {0};
        json_t *out = (json_t *)&err;
        assert_int_equal(catalog_service_query(c, "web", &q, &out, &err),
                         -EINVAL);
        assert_null(out);
        assert_non_null(strstr(err.msg, "'<number>|<key>'"));
    }
    catalog_free(c);
    services_clear(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_providers),       cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_index_stability), cmocka_unit_test(test_rejected),
        cmocka_unit_test(test_choose),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
