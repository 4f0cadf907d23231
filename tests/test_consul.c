// deps: client/services/consul_view.c client/services/consul_diff.c
// deps: client/services/consul_request.c client/services/consul_loop.c
// deps: client/services/consul_sync.c client/services/consul_status.c
// deps: client/curl_uv.c client/services/services.c client/alloc/alloc.c
// deps: client/job/ client/hcl/
// deps: client/util.c
/* The Consul sync loop's pure parts: address parsing, backoff and
 * keep-alive arithmetic, the diff of a desired registration against
 * Consul's listings (missing, different with the differing fields, in
 * sync, stale), hostile answers (not JSON, wrong types, deep, huge,
 * mutated at random: never a crash), and the debugging view of a loop
 * that has not talked to Consul yet. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/services/services.h"
#include "client/config.h"
#include "client/curl_uv.h"

#define SEC 1000000000ull

/* services_rebuild is not used here: keeps the check engine out */
void alloc_checks_each(const struct alloc_checks *ac, const char *alloc_id,
                       const char *task, const char *service,
                       alloc_checks_each_fn fn, void *arg)
{
    (void)ac, (void)alloc_id, (void)task, (void)service, (void)fn, (void)arg;
}

#define ID "_nomad-task-0b3f1b7e-6a36-4c8e-9d2a-52c6d2e7a001-web-web-http"
#define CID1 "_nomad-check-aaaa"
#define CID2 "_nomad-check-bbbb"

/* ---- addresses ---- */

static void test_addr(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool ssl;
        const char *url, *sock; /* url NULL: refused */
    } cases[] = {
        {"127.0.0.1:8500", false, "http://127.0.0.1:8500", NULL},
        {"127.0.0.1:8501", true, "https://127.0.0.1:8501", NULL},
        {"consul.service", false, "http://consul.service:8500", NULL},
        {"http://10.0.0.1:8500", false, "http://10.0.0.1:8500", NULL},
        {"http://10.0.0.1:8500/", false, "http://10.0.0.1:8500", NULL},
        {"http://10.0.0.1:8500", true, "https://10.0.0.1:8500", NULL},
        {"https://h:8501", false, "https://h:8501", NULL},
        {"https://h", false, "https://h:8500", NULL},
        {"[::1]:8500", false, "http://[::1]:8500", NULL},
        {"[::1]", false, "http://[::1]:8500", NULL},
        {"unix:///run/consul/consul.sock", false, "http://localhost",
         "/run/consul/consul.sock"},
        {"unix:///run/c.sock", true, "https://localhost", "/run/c.sock"},
        {"unix://relative.sock", false, NULL, NULL},
        {"unix://", false, NULL, NULL},
        {"::1", false, NULL, NULL},
        {"[::1", false, NULL, NULL},
        {"[::1]x", false, NULL, NULL},
        {"h:0", false, NULL, NULL},
        {"h:65536", false, NULL, NULL},
        {"h:-1", false, NULL, NULL},
        {"h:+80", false, NULL, NULL},
        {"h:8a", false, NULL, NULL},
        {"h:", false, NULL, NULL},
        {":8500", false, NULL, NULL},
        {"[]:8500", false, NULL, NULL},
        {"ftp://h:21", false, NULL, NULL},
        {"h:8500/v1", false, NULL, NULL},
        {"user@h:8500", false, NULL, NULL},
        {"h:8500?x", false, NULL, NULL},
        {"a b:8500", false, NULL, NULL},
        {"h:85\n00", false, NULL, NULL},
        {"", false, NULL, NULL},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        struct consul_addr a;
        struct nc_error err = {0};
        int r = consul_addr_parse(cases[i].in, cases[i].ssl, &a, &err);
        if (!cases[i].url) {
            if (r != -EINVAL)
                fail_msg("\"%s\" accepted as %s", cases[i].in, a.base_url);
            assert_true(strstr(err.msg, "consul address") != NULL);
            continue;
        }
        if (r != 0)
            fail_msg("\"%s\": %s", cases[i].in, err.msg);
        assert_string_equal(a.base_url, cases[i].url);
        if (cases[i].sock)
            assert_string_equal(a.unix_socket, cases[i].sock);
        else
            assert_null(a.unix_socket);
        assert_int_equal(a.https, strncmp(cases[i].url, "https", 5) == 0);
        consul_addr_free(&a);
    }
    struct consul_addr a;
    assert_int_equal(consul_addr_parse(NULL, false, &a, NULL), -EINVAL);
}

/* ---- backoff and keep-alives ---- */

static void test_backoff(void **state)
{
    (void)state;
    const uint64_t base = SEC, cap = 60 * SEC;
    assert_int_equal(consul_backoff_ns(0, base, cap, 0.5), 0);
    /* exponential: the low end of the jitter is half of base * 2^(n-1) */
    uint64_t want[] = {0, 1, 2, 4, 8, 16, 32, 60, 60, 60};
    for (unsigned n = 1; n < NC_ARRAY_LEN(want); n++) {
        uint64_t lo = consul_backoff_ns(n, base, cap, 0.0);
        uint64_t hi = consul_backoff_ns(n, base, cap, 0.999999);
        assert_int_equal(lo, want[n] * SEC / 2);
        assert_true(hi < want[n] * SEC && hi > want[n] * SEC * 99 / 100);
    }
    /* jittered within [d/2, d) whatever the random number */
    for (int i = 0; i < 1000; i++) {
        double r = (double)i / 1000.0;
        uint64_t d = consul_backoff_ns(3, base, cap, r);
        assert_true(d >= 2 * SEC && d < 4 * SEC);
    }
    /* capped: no overflow however many failures */
    assert_true(consul_backoff_ns(1000000, base, cap, 0.9) <= cap);
    assert_true(consul_backoff_ns(UINT32_MAX, base, UINT64_MAX, 0.9) > 0);
    /* hostile random numbers count as 0 */
    assert_int_equal(consul_backoff_ns(2, base, cap, NAN), SEC);
    assert_int_equal(consul_backoff_ns(2, base, cap, -1.0), SEC);
    assert_int_equal(consul_backoff_ns(2, base, cap, 7.0), SEC);
    /* a cap below the base is the base */
    assert_int_equal(consul_backoff_ns(5, 4 * SEC, SEC, 0.0), 2 * SEC);
    assert_int_equal(consul_backoff_ns(5, 0, cap, 0.5), 0);
}

static void test_keepalive(void **state)
{
    (void)state;
    /* half the TTL after the last write, well before it expires */
    assert_int_equal(consul_keepalive_due_ns(100 * SEC, 20 * SEC), 110 * SEC);
    assert_int_equal(
        consul_keepalive_due_ns(100 * SEC, services_ttl_ns(5 * SEC)),
        100 * SEC + 15 * SEC / 2);
    /* unknown (after a restart): due at once */
    assert_int_equal(consul_keepalive_due_ns(0, 20 * SEC), 0);
    assert_int_equal(consul_keepalive_due_ns(7, -5), 7);
    /* the TTL registered is the interval plus 10 s */
    assert_int_equal(services_ttl_ns(1 * SEC), 11 * SEC);
}

/* ---- the diff ---- */

static void reg_init(struct svc_reg *r)
{
    memset(r, 0, sizeof(*r));
    r->id = xstrdup(ID);
    r->name = xstrdup("web");
    r->provider = xstrdup("consul");
    r->alloc_id = xstrdup("0b3f1b7e-6a36-4c8e-9d2a-52c6d2e7a001");
    r->address = xstrdup("10.0.0.5");
    r->port = 25123;
    strlist_add(&r->tags, "a");
    strlist_add(&r->tags, "b");
    kv_set(&r->meta, "version", "2");
    r->nchecks = 2;
    r->checks = xcalloc(2, sizeof(*r->checks));
    const char *ids[] = {CID1, CID2};
    for (int i = 0; i < 2; i++) {
        r->checks[i].id = xstrdup(ids[i]);
        r->checks[i].name = xasprintf("check %d", i);
        r->checks[i].type = xstrdup("http");
        r->checks[i].interval_ns = 5 * (int64_t)SEC; /* TTL 15s */
        r->checks[i].status = xstrdup("passing");
        r->checks[i].output = xstrdup("ok");
    }
}

/* services_clear frees the regs array too: hand it a heap copy */
static void reg_fini(struct svc_reg *r)
{
    struct svc_set set = {xmalloc(sizeof(*r)), 1, 1};
    set.regs[0] = *r;
    services_clear(&set);
}

/* Consul's answers for one service, with fields replaced as asked:
 * each override is "Field=<json>" for the service or "c1.Field=<json>" /
 * "c2.Field=<json>" for a check. */
static void answers(struct nc_buf *svcs, struct nc_buf *chks, ...)
{
    json_t *s = json_pack(
        "{s:s, s:s, s:[s,s], s:{s:s, s:s}, s:i, s:s, s:b, s:s, s:{s:i, s:i}}",
        "ID", ID, "Service", "web", "Tags", "b", "a", "Meta", "version", "2",
        "external-source", "nomad", "Port", 25123, "Address", "10.0.0.5",
        "EnableTagOverride", 0, "Datacenter", "dc1", "Weights", "Passing", 1,
        "Warning", 1);
    json_t *c[2];
    const char *ids[] = {CID1, CID2};
    for (int i = 0; i < 2; i++)
        c[i] = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[], s:{s:I}}",
                         "Node", "n1", "CheckID", ids[i], "Name", "check",
                         "Status", "passing", "Output", "ok", "ServiceID", ID,
                         "Type", "ttl", "ServiceTags", "Definition", "TTL",
                         (json_int_t)(15 * SEC));
    va_list ap;
    va_start(ap, chks);
    const char *o;
    while ((o = va_arg(ap, const char *))) {
        const char *eq = strchr(o, '=');
        char *field = xstrndup(o, (size_t)(eq - o));
        json_t *target = s;
        const char *name = field;
        if (strncmp(field, "c1.", 3) == 0 || strncmp(field, "c2.", 3) == 0) {
            target = c[field[1] - '1'];
            name = field + 3;
        }
        if (strcmp(eq + 1, "DELETE") == 0) {
            json_object_del(target, name);
        } else {
            json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
            assert_non_null(v);
            json_object_set_new(target, name, v);
        }
        free(field);
    }
    va_end(ap);
    json_t *so = json_pack("{s:o}", ID, s);
    json_t *co = json_pack("{s:o, s:o}", CID1, c[0], CID2, c[1]);
    char *st = json_dumps(so, JSON_COMPACT), *ct = json_dumps(co, JSON_COMPACT);
    svcs->len = chks->len = 0;
    nc_buf_puts(svcs, st);
    nc_buf_puts(chks, ct);
    free(st);
    free(ct);
    json_decref(so);
    json_decref(co);
}

/* The diff of the standard registration against answers with overrides:
 * the state, and every line must contain one of the expected pieces. */
static enum consul_diff_state diff_with(struct strlist *lines, ...)
{
    struct svc_reg r;
    reg_init(&r);
    json_t *payload = services_consul_payload(&r);
    struct nc_buf s = {0}, c = {0};
    /* collect the overrides into answers() */
    const char *ov[16] = {0};
    va_list ap;
    va_start(ap, lines);
    size_t n = 0;
    const char *o;
    while ((o = va_arg(ap, const char *)) && n < 15)
        ov[n++] = o;
    va_end(ap);
    answers(&s, &c, ov[0], ov[1], ov[2], ov[3], ov[4], ov[5], ov[6], ov[7],
            ov[8], ov[9], ov[10], ov[11], ov[12], ov[13], ov[14], ov[15]);
    struct consul_view *v = NULL;
    struct nc_error err = {0};
    if (consul_view_parse(&v, s.data, s.len, c.data, c.len, &err) != 0)
        fail_msg("%s", err.msg);
    enum consul_diff_state st = consul_diff(payload, v, lines);
    consul_view_free(v);
    json_decref(payload);
    nc_buf_free(&s);
    nc_buf_free(&c);
    reg_fini(&r);
    return st;
}

static bool has_line(const struct strlist *l, const char *piece)
{
    for (size_t i = 0; i < l->n; i++)
        if (strstr(l->items[i], piece))
            return true;
    return false;
}

static void dump(const struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        fprintf(stderr, "    diff: %s\n", l->items[i]);
}

static void test_diff_in_sync(void **state)
{
    (void)state;
    struct strlist l = {0};
    /* tags in another order, Consul's extra fields: in sync */
    assert_int_equal(diff_with(&l, NULL), CONSUL_IN_SYNC);
    assert_int_equal(l.n, 0);
    /* a TTL as a duration string, or not reported at all */
    assert_int_equal(diff_with(&l, "c1.Definition={\"TTL\":\"15s\"}",
                               "c2.Definition={}", NULL),
                     CONSUL_IN_SYNC);
    /* a check's status is no registration difference */
    assert_int_equal(diff_with(&l, "c1.Status=\"critical\"", NULL),
                     CONSUL_IN_SYNC);
    assert_int_equal(l.n, 0);
    strlist_free(&l);
}

static void test_diff_missing(void **state)
{
    (void)state;
    struct svc_reg r;
    reg_init(&r);
    json_t *payload = services_consul_payload(&r);
    struct consul_view *v = NULL;
    assert_int_equal(consul_view_parse(&v, "{}", 2, NULL, 0, NULL), 0);
    struct strlist l = {0};
    assert_int_equal(consul_diff(payload, v, &l), CONSUL_MISSING);
    assert_true(has_line(&l, "Consul does not have this service"));
    assert_int_equal(consul_diff(payload, v, NULL), CONSUL_MISSING);
    consul_view_free(v);
    /* forgotten after a deregistration: missing too */
    struct nc_buf s = {0}, c = {0};
    answers(&s, &c, NULL);
    assert_int_equal(consul_view_parse(&v, s.data, s.len, c.data, c.len, NULL),
                     0);
    assert_true(consul_view_service(v, ID, NULL, NULL, NULL));
    consul_view_forget(v, ID);
    assert_false(consul_view_service(v, ID, NULL, NULL, NULL));
    assert_int_equal(consul_diff(payload, v, NULL), CONSUL_MISSING);
    consul_view_free(v);
    nc_buf_free(&s);
    nc_buf_free(&c);
    strlist_free(&l);
    json_decref(payload);
    reg_fini(&r);
}

static void test_diff_different(void **state)
{
    (void)state;
    static const struct {
        const char *override, *override2, *piece;
    } cases[] = {
        {"Port=8080", NULL, "Port: Consul has 8080, this node wants 25123"},
        {"Address=\"10.0.0.9\"", NULL,
         "Address: Consul has \"10.0.0.9\", this node wants \"10.0.0.5\""},
        {"Address=DELETE", NULL, "Address: Consul has nothing"},
        {"Service=\"api\"", NULL,
         "Service: Consul has \"api\", this node wants \"web\""},
        {"Tags=[\"a\"]", NULL, "Tags: Consul has [\"a\"]"},
        {"Tags=[\"a\",\"c\"]", NULL, "Tags: Consul has [\"a\",\"c\"]"},
        {"Tags=null", NULL, "Tags: Consul has null"},
        {"Meta={\"version\":\"1\",\"external-source\":\"nomad\"}", NULL,
         "Meta[\"version\"]: Consul has \"1\", this node wants \"2\""},
        {"Meta={\"external-source\":\"nomad\"}", NULL,
         "Meta[\"version\"]: Consul has nothing, this node wants \"2\""},
        {"Meta={\"version\":\"2\",\"external-source\":\"nomad\",\"x\":\"y\"}",
         NULL, "Meta[\"x\"]: Consul has \"y\", this node does not set it"},
        {"EnableTagOverride=true", NULL,
         "EnableTagOverride: Consul has true, this node wants false"},
        /* wrong types from Consul: differences, not trusted */
        {"Port=\"25123\"", NULL, "Port: Consul has \"25123\""},
        {"Port=25123.5", NULL, "Port: Consul has 25123.5"},
        {"Tags=\"a\"", NULL, "Tags: Consul has \"a\""},
        {"Tags=[\"a\",1]", NULL, "Tags: Consul has [\"a\",1]"},
        {"Meta=[]", NULL, "Meta: Consul has []"},
        {"Meta={\"version\":2,\"external-source\":\"nomad\"}", NULL, "Meta"},
        {"EnableTagOverride=\"yes\"", NULL,
         "EnableTagOverride: Consul has \"yes\""},
        {"Service=null", NULL, "Service: Consul has null"},
        /* checks */
        {"c1.Type=\"http\"", NULL,
         "Check " CID1 ": Consul has a \"http\" check, this node wants a "
         "TTL check"},
        {"c2.Definition={\"TTL\":20000000000}", NULL,
         "Check " CID2 ": TTL: Consul has 20s, this node wants 15s"},
        {"c2.Definition={\"TTL\":\"1m\"}", NULL, "TTL: Consul has 1m0s"},
        {"c1.ServiceID=\"other\"", NULL,
         "Check " CID1 ": Consul has it on service \"other\", not this one"},
        {"c1.ServiceID=5", NULL, "Consul has it on service nothing"},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        struct strlist l = {0};
        enum consul_diff_state st =
            diff_with(&l, cases[i].override, cases[i].override2, NULL);
        if (st != CONSUL_DIFFERENT || !has_line(&l, cases[i].piece)) {
            dump(&l);
            fail_msg("%s: want \"%s\" (state %d)", cases[i].override,
                     cases[i].piece, st);
        }
        strlist_free(&l);
    }
    /* several at once: one line each */
    struct strlist l = {0};
    assert_int_equal(diff_with(&l, "Port=1", "Address=\"x\"", NULL),
                     CONSUL_DIFFERENT);
    assert_int_equal(l.n, 2);
    strlist_free(&l);
}

/* A check of ours missing, or one too many on the service. */
static void test_diff_checks(void **state)
{
    (void)state;
    struct svc_reg r;
    reg_init(&r);
    json_t *payload = services_consul_payload(&r);
    struct nc_buf s = {0}, c = {0};
    answers(&s, &c, NULL);
    /* drop CID2, add one nobody wants */
    json_t *cj = json_loads(c.data, 0, NULL);
    json_t *extra = json_deep_copy(json_object_get(cj, CID2));
    json_object_set_new(extra, "CheckID", json_string("_nomad-check-zzzz"));
    json_object_del(cj, CID2);
    json_object_set_new(cj, "_nomad-check-zzzz", extra);
    char *ct = json_dumps(cj, 0);
    struct consul_view *v = NULL;
    assert_int_equal(consul_view_parse(&v, s.data, s.len, ct, strlen(ct), NULL),
                     0);
    struct strlist l = {0};
    assert_int_equal(consul_diff(payload, v, &l), CONSUL_DIFFERENT);
    assert_true(
        has_line(&l, "Check \"check 1\" (" CID2 "): Consul does not have it"));
    assert_true(has_line(&l, "Check \"_nomad-check-zzzz\": Consul has it on "
                             "this service, this node does not want it"));
    assert_int_equal(l.n, 2);
    size_t nchecks = 0;
    assert_int_equal(consul_view_count(v, &nchecks), 1);
    assert_int_equal(nchecks, 2);
    const char *out = NULL;
    assert_string_equal(consul_view_check_status(v, CID1, &out), "passing");
    assert_string_equal(out, "ok");
    assert_null(consul_view_check_status(v, CID2, &out));
    assert_string_equal(out, "");
    consul_view_free(v);
    free(ct);
    json_decref(cj);
    nc_buf_free(&s);
    nc_buf_free(&c);
    strlist_free(&l);
    json_decref(payload);
    reg_fini(&r);
}

static bool wanted_a(void *arg, const char *id)
{
    return strcmp(id, arg) == 0;
}

static void test_stale(void **state)
{
    (void)state;
    const char *svcs =
        "{\"_nomad-task-aaaa-web-web-http\": {\"Service\": \"web\"},"
        " \"_nomad-task-bbbb-web-old-http\": {\"Service\": \"old\","
        "   \"Address\": \"10.1.1.1\", \"Port\": 8080},"
        " \"_nomad-task-cccc-x\": 5,"
        " \"_nomad-client-nomad-client-http\": {\"Service\": \"nomad\"},"
        " \"redis\": {\"Service\": \"redis\"}}";
    struct consul_view *v = NULL;
    assert_int_equal(consul_view_parse(&v, svcs, strlen(svcs), "{}", 2, NULL),
                     0);
    struct strlist out = {0};
    consul_view_stale(v, wanted_a, "_nomad-task-aaaa-web-web-http", &out);
    /* ours (task prefix) and unwanted; not the client's own, not redis */
    assert_int_equal(out.n, 2);
    assert_string_equal(out.items[0], "_nomad-task-bbbb-web-old-http");
    assert_string_equal(out.items[1], "_nomad-task-cccc-x");
    const char *name, *address;
    long long port;
    assert_true(consul_view_service(v, out.items[0], &name, &address, &port));
    assert_string_equal(name, "old");
    assert_string_equal(address, "10.1.1.1");
    assert_int_equal(port, 8080);
    /* of the wrong shape: present, fields empty */
    assert_true(consul_view_service(v, out.items[1], &name, &address, &port));
    assert_string_equal(name, "");
    assert_int_equal(port, 0);
    struct strlist pre = {0};
    consul_view_with_prefix(v, "_nomad-task-bbbb-", &pre);
    assert_int_equal(pre.n, 1);
    strlist_free(&pre);
    assert_true(consul_is_nomad_task_id("_nomad-task-x"));
    assert_false(consul_is_nomad_task_id("_nomad-client-x"));
    assert_false(consul_is_nomad_task_id(NULL));
    strlist_free(&out);
    consul_view_free(v);
}

/* ---- hostile answers ---- */

static int parse(const char *svcs, const char *chks, struct nc_error *err)
{
    struct consul_view *v = NULL;
    int r = consul_view_parse(&v, svcs, svcs ? strlen(svcs) : 0, chks,
                              chks ? strlen(chks) : 0, err);
    if (r == 0) {
        /* whatever it holds, the diff must cope */
        struct svc_reg reg;
        reg_init(&reg);
        json_t *p = services_consul_payload(&reg);
        struct strlist l = {0};
        consul_diff(p, v, &l);
        strlist_free(&l);
        json_decref(p);
        reg_fini(&reg);
    }
    consul_view_free(v);
    return r;
}

static void test_hostile(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *piece; /* NULL: must parse */
    } cases[] = {
        {"", "expected '{'"},
        {"<html>502 Bad Gateway</html>", "not a JSON object"},
        {"[]", "not a JSON object"},
        {"\"x\"", "not a JSON object"},
        {"{", "expected a string"},
        {"{\"a\":", "unexpected end"},
        {"{\"a\":1", "expected '}'"},
        {"{\"a\":1}x", "text after the object"},
        {"{\"a\":tru}", "unexpected character"},
        {"{\"a\":01}", "expected '}'"},
        {"{\"a\":-}", "bad number"},
        {"{\"a\":1.}", "bad number"},
        {"{\"a\":1e}", "bad number"},
        {"{\"a\":\"\\u0000\"}", "\\u0000"},
        {"{\"a\":\"\\ud800\"}", "lone high surrogate"},
        {"{\"a\":\"\\udc00\"}", "lone low surrogate"},
        {"{\"a\":\"\\x\"}", "bad escape"},
        {"{\"a\":\"\\u12\"}", "bad \\u escape"},
        {"{\"a\":\"tab\there\"}", "control character"},
        {"{\"a\":\"open}", "unterminated string"},
        {"{\"a\" 1}", "expected ':'"},
        {"{1:2}", "expected a string"},
        /* wrong shapes, but JSON: parsed, the diff reports */
        {"{\"a\":1, \"b\":[1,{\"c\":null}], \"d\":\"\\ud83d\\ude00\"}", NULL},
        {"{\"" ID "\": []}", NULL},
        {"{\"" ID "\": {\"Tags\": {\"x\":1}, \"Meta\": \"m\", \"Port\": "
         "true}}",
         NULL},
        {"{\"" ID "\": {\"Service\": \"w\\u00e9b\\n\"}, \"" ID "\": {}}", NULL},
        {"{\"" ID "\": {\"Service\": \"\xff\xfe\"}}", NULL},
        {"{\"" ID "\": {\"Port\": 99999999999999999999999}}", NULL},
        {"{\"" ID "\": {\"Port\": -1e400, \"EnableTagOverride\": nul}}",
         "unexpected character"},
        {" \t\r\n{}\n", NULL},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        struct nc_error err = {0};
        int r = parse(cases[i].text, NULL, &err);
        if (!cases[i].piece) {
            if (r != 0)
                fail_msg("%s: %s", cases[i].text, err.msg);
            continue;
        }
        if (r != -EINVAL || !strstr(err.msg, cases[i].piece))
            fail_msg("%s: got %d \"%s\", want \"%s\"", cases[i].text, r,
                     err.msg, cases[i].piece);
        assert_true(strstr(err.msg, "GET /v1/agent/services") != NULL);
        /* the checks' answer is named when it is the bad one */
        r = parse("{}", cases[i].text, &err);
        assert_int_equal(r, -EINVAL);
        assert_true(strstr(err.msg, "GET /v1/agent/checks") != NULL);
    }
    /* deep nesting ends in an error, not a stack overflow */
    size_t depth = 100000;
    char *deep = xmalloc(2 * depth + 16);
    strcpy(deep, "{\"a\":");
    size_t o = strlen(deep);
    for (size_t i = 0; i < depth; i++)
        deep[o++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[o++] = ']';
    deep[o++] = '}';
    deep[o] = '\0';
    struct nc_error err = {0};
    assert_int_equal(parse(deep, NULL, &err), -EINVAL);
    assert_true(strstr(err.msg, "nested too deep") != NULL);
    free(deep);
}

/* Huge answers: a million tags on our service, a 4 MB string, 100000
 * services: parsed, and the diff stays cheap and bounded. */
static void test_huge(void **state)
{
    (void)state;
    struct nc_buf b = {0};
    nc_buf_puts(&b, "{\"" ID "\": {\"Service\": \"web\", \"Tags\": [");
    for (int i = 0; i < 1000000; i++)
        nc_buf_puts(&b, i ? ",\"t\"" : "\"t\"");
    nc_buf_puts(&b, "], \"Meta\": {");
    for (int i = 0; i < 100000; i++)
        nc_buf_printf(&b, "%s\"k%d\":\"v\"", i ? "," : "", i);
    nc_buf_puts(&b, "}, \"Address\": \"");
    for (int i = 0; i < 4 << 20; i++)
        nc_buf_putc(&b, 'x');
    nc_buf_puts(&b, "\"}}");
    struct svc_reg r;
    reg_init(&r);
    json_t *payload = services_consul_payload(&r);
    struct consul_view *v = NULL;
    assert_int_equal(consul_view_parse(&v, b.data, b.len, "{}", 2, NULL), 0);
    struct strlist l = {0};
    uint64_t t0 = nc_now_mono_ns();
    assert_int_equal(consul_diff(payload, v, &l), CONSUL_DIFFERENT);
    assert_true(nc_now_mono_ns() - t0 < SEC);
    assert_true(l.n < 40); /* a few lines, each cut short */
    for (size_t i = 0; i < l.n; i++)
        assert_true(strlen(l.items[i]) < 600);
    assert_true(has_line(&l, "Meta: Consul has 100000 keys"));
    strlist_free(&l);
    consul_view_free(v);
    b.len = 0;
    nc_buf_putc(&b, '{');
    for (int i = 0; i < 100000; i++)
        nc_buf_printf(&b, "%s\"_nomad-task-%d\":{\"Service\":\"s\"}",
                      i ? "," : "", i);
    nc_buf_putc(&b, '}');
    assert_int_equal(consul_view_parse(&v, b.data, b.len, "{}", 2, NULL), 0);
    assert_int_equal(consul_view_count(v, NULL), 100000);
    consul_view_free(v);
    nc_buf_free(&b);
    json_decref(payload);
    reg_fini(&r);
}

/* Valid answers mutated at random, byte by byte: parse or refuse, never
 * crash (ASan and UBSan watch). */
static void test_mutations(void **state)
{
    (void)state;
    struct nc_buf s = {0}, c = {0};
    answers(&s, &c, "Tags=[\"x\\u00e9\",\"\\ud83d\\ude00\"]", NULL);
    uint32_t seed = 12345;
    int parsed = 0;
    for (int round = 0; round < 3000; round++) {
        char *ms = xstrndup(s.data, s.len), *mc = xstrndup(c.data, c.len);
        int n = 1 + round % 4;
        for (int k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            char *t = (seed >> 16) & 1 ? ms : mc;
            size_t len = strlen(t);
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            static const char pick[] = "{}[]\",:\\u0123456789eE.-tfn \x01\xff";
            t[at] = pick[(seed >> 8) % (sizeof(pick) - 1)];
        }
        struct nc_error err = {0};
        parsed += parse(ms, mc, &err) == 0;
        free(ms);
        free(mc);
    }
    assert_true(parsed > 0 && parsed < 3000);
    nc_buf_free(&s);
    nc_buf_free(&c);
}

/* ---- the loop before it talked to Consul ---- */

static void flush_done(void *arg, const char *alloc_id)
{
    (void)alloc_id;
    (*(int *)arg)++;
}

static void test_sync_offline(void **state)
{
    (void)state;
    char why[256];
    if (!curl_uv_available(why, sizeof(why)))
        skip();
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct agent_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.consul.address = "http://127.0.0.1:1";
    cfg.consul.token = "secret";
    cfg.consul.verify_ssl = true;
    struct node node;
    memset(&node, 0, sizeof(node));
    struct consul_sync *s = NULL;
    struct nc_error err = {0};
    /* refused at once: a bad address, a token that would split headers */
    cfg.consul.address = "ftp://x";
    assert_int_equal(consul_sync_open(&s, &loop, &cfg, &node, &err), -EINVAL);
    cfg.consul.address = "127.0.0.1:1";
    cfg.consul.token = "a\r\nX-Evil: 1";
    assert_int_equal(consul_sync_open(&s, &loop, &cfg, &node, &err), -EINVAL);
    assert_true(strstr(err.msg, "control character") != NULL);
    cfg.consul.token = "secret";
    assert_int_equal(consul_sync_open(&s, &loop, &cfg, &node, &err), 0);
    json_t *st = consul_sync_status(s);
    assert_string_equal(json_string_value(json_object_get(st, "Address")),
                        "http://127.0.0.1:1");
    assert_true(json_is_null(json_object_get(st, "Reachable")));
    assert_true(json_is_null(json_object_get(st, "LastSync")));
    json_decref(st);
    /* only provider "consul" is taken */
    struct svc_reg regs[2];
    reg_init(&regs[0]);
    reg_init(&regs[1]);
    free(regs[1].id);
    regs[1].id = xstrdup(ID "-nomad");
    free(regs[1].provider);
    regs[1].provider = xstrdup("nomad");
    struct svc_set set = {regs, 2, 2};
    consul_sync_update(s, &set);
    json_t *d = consul_sync_describe(s, ID);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "State")),
                        "pending");
    assert_int_equal(json_array_size(json_object_get(d, "Checks")), 2);
    assert_true(json_is_null(json_object_get(d, "LastAnswer")));
    json_decref(d);
    assert_null(consul_sync_describe(s, ID "-nomad"));
    assert_null(consul_sync_describe(s, "nope"));
    /* unsorted, an ID twice: taken once, still found */
    struct svc_reg more[3];
    reg_init(&more[0]);
    reg_init(&more[1]);
    reg_init(&more[2]);
    free(more[0].id);
    more[0].id = xstrdup(ID "-z");
    struct svc_set messy = {more, 3, 3};
    consul_sync_update(s, &messy);
    d = consul_sync_describe(s, ID "-z");
    assert_non_null(d);
    json_decref(d);
    d = consul_sync_describe(s, ID);
    assert_non_null(d);
    json_decref(d);
    st = consul_sync_status(s);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(st, "LastPass"), "Services")),
                     2);
    json_decref(st);
    struct svc_set own_more = {xmalloc(sizeof(more)), 3, 3};
    memcpy(own_more.regs, more, sizeof(more));
    services_clear(&own_more);
    json_t *stale = consul_sync_stale(s);
    assert_int_equal(json_array_size(stale), 0);
    json_decref(stale);
    /* no Consul was asked: a flush has nothing to wait for */
    int flushed = 0;
    consul_sync_flush_alloc(s, "no-such-alloc", flush_done, &flushed);
    assert_int_equal(flushed, 1);
    consul_sync_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    struct svc_set own = {xmalloc(2 * sizeof(*regs)), 2, 2};
    memcpy(own.regs, regs, sizeof(regs));
    services_clear(&own);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_diff_in_sync),
        cmocka_unit_test(test_diff_missing),
        cmocka_unit_test(test_diff_different),
        cmocka_unit_test(test_diff_checks),
        cmocka_unit_test(test_stale),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_huge),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_sync_offline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
