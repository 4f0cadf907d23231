// deps: client/job/ client/hcl/ client/util.c
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/job.h"

/* ---- builders: jobs and nodes by hand, as the parser and fingerprinter
 * would leave them (those modules are not linked here). ---- */

static void add_driver(struct node *n, const char *name, bool detected,
                       bool healthy)
{
    n->drivers = xrealloc(n->drivers, (n->ndrivers + 1) * sizeof(*n->drivers));
    n->drivers[n->ndrivers++] = (struct node_driver){
        .name = xstrdup(name),
        .detected = detected,
        .healthy = healthy,
        .health_description = xstrdup(healthy ? "Healthy" : "Unhealthy")};
}

static void add_host_volume(struct node *n, const char *name, bool read_only)
{
    n->host_volumes = xrealloc(n->host_volumes, (n->nhost_volumes + 1) *
                                                    sizeof(*n->host_volumes));
    n->host_volumes[n->nhost_volumes++] =
        (struct node_host_volume){.name = xstrdup(name),
                                  .path = xasprintf("/srv/%s", name),
                                  .read_only = read_only};
}

static void set_str(char **field, const char *v)
{
    free(*field);
    *field = xstrdup(v);
}

static struct node *mknode(void)
{
    struct node *n = xcalloc(1, sizeof(*n));
    n->id = xstrdup("0d3c8f54-7a43-4d7e-9d2b-3f4d2b0c9a11");
    n->name = xstrdup("worker-1");
    n->datacenter = xstrdup("dc1");
    n->region = xstrdup("global");
    n->status = xstrdup("ready");
    n->eligible = true;
    kv_set(&n->attributes, "cpu.arch", "amd64");
    kv_set(&n->attributes, "kernel.name", "linux");
    kv_set(&n->attributes, "cpu.numcores", "16");
    kv_set(&n->attributes, "os.version", "12.5");
    kv_set(&n->attributes, "nomad.version", "1.7.3");
    kv_set(&n->meta, "rack", "r1");
    add_driver(n, "exec", true, true);
    add_driver(n, "raw_exec", true, true);
    n->resources.cpu_mhz = 8000;
    n->resources.cores = 4;
    n->resources.memory_mb = 16384;
    n->resources.disk_mb = 100000;
    return n;
}

static void freenode(struct node *n)
{
    free(n->id);
    free(n->secret_id);
    free(n->name);
    free(n->node_class);
    free(n->node_pool);
    free(n->datacenter);
    free(n->region);
    free(n->http_addr);
    free(n->status);
    kv_free(&n->attributes);
    kv_free(&n->meta);
    for (size_t i = 0; i < n->ndrivers; i++) {
        free(n->drivers[i].name);
        free(n->drivers[i].health_description);
    }
    free(n->drivers);
    for (size_t i = 0; i < n->nhost_volumes; i++) {
        free(n->host_volumes[i].name);
        free(n->host_volumes[i].path);
    }
    free(n->host_volumes);
    free(n->reserved.reserved_ports);
    free(n);
}

static void add_constraint(struct constraint **arr, size_t *n, const char *l,
                           const char *op, const char *r)
{
    *arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
    (*arr)[(*n)++] = (struct constraint){
        .ltarget = xstrdup(l), .operand = xstrdup(op), .rtarget = xstrdup(r)};
}

static void free_constraints(struct constraint *arr, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(arr[i].ltarget);
        free(arr[i].operand);
        free(arr[i].rtarget);
    }
    free(arr);
}

static struct job *mkjob(const char *id, const char *type)
{
    struct job *j = xcalloc(1, sizeof(*j));
    j->id = xstrdup(id);
    j->name = xstrdup(id);
    j->type = xstrdup(type);
    strlist_add(&j->datacenters, "dc1");
    return j;
}

/* Adds a group with one task; the pointer is valid until the next group. */
static struct task_group *add_group(struct job *j, const char *name, int count,
                                    const char *driver, int cpu, int memory)
{
    j->groups = xrealloc(j->groups, (j->ngroups + 1) * sizeof(*j->groups));
    struct task_group *g = &j->groups[j->ngroups++];
    memset(g, 0, sizeof(*g));
    g->name = xstrdup(name);
    g->count = count;
    g->ephemeral_disk.mb = 300;
    g->tasks = xcalloc(1, sizeof(*g->tasks));
    g->ntasks = 1;
    g->tasks[0].name = xstrdup(name);
    g->tasks[0].driver = xstrdup(driver);
    g->tasks[0].resources.cpu = cpu;
    g->tasks[0].resources.memory_mb = memory;
    return g;
}

static struct task *add_task(struct task_group *g, const char *name,
                             const char *driver)
{
    g->tasks = xrealloc(g->tasks, (g->ntasks + 1) * sizeof(*g->tasks));
    struct task *t = &g->tasks[g->ntasks++];
    memset(t, 0, sizeof(*t));
    t->name = xstrdup(name);
    t->driver = xstrdup(driver);
    return t;
}

static struct network *group_network(struct task_group *g)
{
    if (!g->nnetworks) {
        g->networks = xcalloc(1, sizeof(*g->networks));
        g->nnetworks = 1;
        g->networks[0].mode = xstrdup("host");
    }
    return &g->networks[0];
}

static void add_static_port(struct task_group *g, const char *label, int value)
{
    struct network *net = group_network(g);
    net->reserved_ports = xrealloc(
        net->reserved_ports, (net->nreserved_ports + 1) * sizeof(struct port));
    net->reserved_ports[net->nreserved_ports++] =
        (struct port){.label = xstrdup(label), .value = value};
}

static void add_dynamic_port(struct task_group *g, const char *label)
{
    struct network *net = group_network(g);
    net->dynamic_ports = xrealloc(
        net->dynamic_ports, (net->ndynamic_ports + 1) * sizeof(struct port));
    net->dynamic_ports[net->ndynamic_ports++] =
        (struct port){.label = xstrdup(label)};
}

static void add_volume(struct task_group *g, const char *name, const char *type,
                       const char *source, bool read_only, bool per_alloc)
{
    g->volumes = xrealloc(g->volumes, (g->nvolumes + 1) * sizeof(*g->volumes));
    g->volumes[g->nvolumes++] =
        (struct volume_request){.name = xstrdup(name),
                                .type = xstrdup(type),
                                .source = xstrdup(source),
                                .read_only = read_only,
                                .per_alloc = per_alloc};
}

static void free_ports(struct port *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].label);
        free(p[i].host_network);
    }
    free(p);
}

static void freejob(struct job *j)
{
    for (size_t i = 0; i < j->ngroups; i++) {
        struct task_group *g = &j->groups[i];
        free(g->name);
        free_constraints(g->constraints, g->nconstraints);
        for (size_t t = 0; t < g->ntasks; t++) {
            free(g->tasks[t].name);
            free(g->tasks[t].driver);
            free_constraints(g->tasks[t].constraints, g->tasks[t].nconstraints);
        }
        free(g->tasks);
        for (size_t n = 0; n < g->nnetworks; n++) {
            free(g->networks[n].mode);
            free_ports(g->networks[n].reserved_ports,
                       g->networks[n].nreserved_ports);
            free_ports(g->networks[n].dynamic_ports,
                       g->networks[n].ndynamic_ports);
        }
        free(g->networks);
        for (size_t v = 0; v < g->nvolumes; v++) {
            free(g->volumes[v].name);
            free(g->volumes[v].type);
            free(g->volumes[v].source);
        }
        free(g->volumes);
    }
    free(j->groups);
    free_constraints(j->constraints, j->nconstraints);
    strlist_free(&j->datacenters);
    free(j->node_pool);
    free(j->id);
    free(j->name);
    free(j->type);
    free(j);
}

/* One constraint against a node; *why (if asked) is kept for the caller. */
static bool check3(const struct node *n, const char *l, const char *op,
                   const char *r, char **why)
{
    struct constraint c = {
        .ltarget = (char *)l, .operand = (char *)op, .rtarget = (char *)r};
    char *w = NULL;
    bool ok = placement_check_constraint(n, &c, &w);
    if (why)
        *why = w;
    else
        free(w);
    return ok;
}

static bool check(const struct node *n, const char *l, const char *op,
                  const char *r)
{
    return check3(n, l, op, r, NULL);
}

/* Runs placement and returns the message ("" when ok). */
static char *run(const struct job *j, const struct node *n,
                 const struct placement_usage *used, struct placement_result *r)
{
    assert_int_equal(placement_check(j, n, used, r), 0);
    if (r->ok) {
        assert_null(r->message);
        return xstrdup("");
    }
    assert_non_null(r->message);
    return xstrdup(r->message);
}

/* ---- targets ---- */

static void test_resolve_targets(void **state)
{
    (void)state;
    struct node *n = mknode();
    set_str(&n->node_class, "compute");
    char *v = NULL;
    static const struct {
        const char *target, *want;
    } cases[] = {
        {"${attr.cpu.arch}", "amd64"},
        {"${meta.rack}", "r1"},
        {"${node.unique.id}", "0d3c8f54-7a43-4d7e-9d2b-3f4d2b0c9a11"},
        {"${node.unique.name}", "worker-1"},
        {"${node.datacenter}", "dc1"},
        {"${node.region}", "global"},
        {"${node.class}", "compute"},
        {"${node.pool}", "default"}, /* unset pool reads as Nomad's default */
        {"literal", "literal"},
        {"", ""},
        {"${attr.cpu.arch", "amd64"}, /* TrimSuffix: the brace is optional */
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        assert_true(placement_resolve(n, cases[i].target, &v));
        assert_string_equal(v, cases[i].want);
        free(v);
    }
    set_str(&n->node_pool, "gpu");
    assert_true(placement_resolve(n, "${node.pool}", &v));
    assert_string_equal(v, "gpu");
    free(v);

    v = (char *)"sentinel";
    assert_false(placement_resolve(n, "${attr.no.such}", &v));
    assert_null(v);
    assert_false(placement_resolve(n, "${meta.storage_type}", &v));
    assert_false(placement_resolve(n, "${node.unknown}", &v));
    assert_false(placement_resolve(n, "${env.HOME}", &v));
    assert_null(v);
    freenode(n);
}

static void test_interpolated_rtarget(void **state)
{
    (void)state;
    struct node *n = mknode();
    kv_set(&n->meta, "arch", "amd64");
    assert_true(check(n, "${attr.cpu.arch}", "=", "${meta.arch}"));
    assert_false(check(n, "${attr.cpu.arch}", "=", "${meta.nope}"));
    assert_true(check(n, "${node.datacenter}", "=", "dc1"));
    assert_true(check(n, "${node.unique.name}", "regexp", "^worker-[0-9]+$"));
    freenode(n);
}

/* ---- operators ---- */

static void test_equality_operators(void **state)
{
    (void)state;
    struct node *n = mknode();
    const char *eq[] = {"=", "==", "is"};
    for (size_t i = 0; i < NC_ARRAY_LEN(eq); i++) {
        assert_true(check(n, "${attr.cpu.arch}", eq[i], "amd64"));
        assert_false(check(n, "${attr.cpu.arch}", eq[i], "arm64"));
        assert_false(check(n, "${attr.cpu.arch}", eq[i], "AMD64"));
        /* a missing attribute never equals, not even "" */
        assert_false(check(n, "${meta.missing}", eq[i], ""));
    }
    const char *ne[] = {"!=", "not"};
    for (size_t i = 0; i < NC_ARRAY_LEN(ne); i++) {
        assert_false(check(n, "${attr.cpu.arch}", ne[i], "amd64"));
        assert_true(check(n, "${attr.cpu.arch}", ne[i], "arm64"));
        /* Nomad compares a missing side as "": != x holds, != "" does not */
        assert_true(check(n, "${meta.missing}", ne[i], "ssd"));
        assert_false(check(n, "${meta.missing}", ne[i], ""));
    }
    /* no operand: the HCL default "=" */
    assert_true(check(n, "${attr.cpu.arch}", NULL, "amd64"));
    assert_false(check(n, "${attr.cpu.arch}", "", "arm64"));
    freenode(n);
}

static void test_order_operators(void **state)
{
    (void)state;
    struct node *n = mknode();
    /* numeric when both sides are integers: 16 > 9 (lexically "16" < "9") */
    assert_true(check(n, "${attr.cpu.numcores}", ">", "9"));
    assert_true(check(n, "${attr.cpu.numcores}", ">=", "16"));
    assert_false(check(n, "${attr.cpu.numcores}", "<", "9"));
    assert_true(check(n, "${attr.cpu.numcores}", "<=", "16"));
    assert_true(check(n, "-5", "<", "+3"));
    /* beyond 2^53 only integer comparison tells these apart */
    assert_true(check(n, "9007199254740993", ">", "9007199254740992"));
    assert_false(check(n, "9007199254740993", "<=", "9007199254740992"));
    /* floats when both parse as floats: 12.5 < 100 */
    assert_true(check(n, "${attr.os.version}", "<", "100"));
    assert_true(check(n, "${attr.os.version}", ">", "9.75"));
    assert_true(check(n, "1e3", ">", "999.5"));
    assert_true(check(n, "1_000.5", ">", "999")); /* Go accepts _ in floats */
    assert_true(
        check(n, "99999999999999999999", ">", "5")); /* > int64: float */
    assert_false(check(n, "1e400", ">", "2")); /* out of float range: lexical */
    assert_true(check(n, "1e-400", "<", "1")); /* underflow is just 0 */
    assert_false(check(n, "nan", "<", "1"));
    assert_false(check(n, "nan", ">=", "1"));
    /* lexical otherwise: "16" < "9a" byte-wise */
    assert_true(check(n, "${attr.cpu.numcores}", "<", "9a"));
    assert_true(check(n, "abc", "<", "abd"));
    assert_true(check(n, "abc", "<=", "abc"));
    assert_false(check(n, "abc", ">", "abc"));
    assert_true(check(n, "0x10", "<", "2")); /* no hex: lexical */
    /* a missing side fails every ordering */
    assert_false(check(n, "${attr.missing}", "<", "zzz"));
    assert_false(check(n, "${attr.missing}", ">=", ""));
    assert_false(check(n, "a", ">", "${meta.missing}"));
    freenode(n);
}

static void test_regexp_operator(void **state)
{
    (void)state;
    struct node *n = mknode();
    char *why = NULL;
    assert_true(check(n, "${attr.kernel.name}", "regexp", "^lin"));
    assert_true(check(n, "${attr.kernel.name}", "regexp", "nu")); /* search */
    assert_false(check(n, "${attr.kernel.name}", "regexp", "^nu"));
    assert_true(check(n, "${attr.kernel.name}", "regexp", "^(linux|darwin)$"));
    assert_true(check(n, "${attr.os.version}", "regexp", "^\\d+\\.\\d+$"));
    assert_false(check(n, "${attr.kernel.name}", "regexp", "\\d"));
    assert_true(check(n, "${attr.kernel.name}", "regexp", "\\D"));
    assert_true(check(n, "${attr.kernel.name}", "regexp", "(?i)^LINUX$"));
    assert_false(check(n, "${attr.kernel.name}", "regexp", "^LINUX$"));
    assert_true(check(n, "${attr.kernel.name}", "regexp", "^(?:li|la)nux$"));
    assert_true(check(n, "${attr.kernel.name}", "regexp", "^[[:alpha:]]{5}$"));
    assert_true(check(n, "${attr.kernel.name}", "regexp", "^[]a-z]+$"));
    assert_false(check(n, "${meta.missing}", "regexp", ".*"));

    assert_false(check3(n, "${attr.kernel.name}", "regexp", "(linux", &why));
    assert_non_null(why);
    assert_string_equal(why, "Regular expression failed to compile: "
                             "Unmatched ( or \\(");
    free(why);
    assert_false(check3(n, "${attr.kernel.name}", "regexp", "[a-", &why));
    assert_true(
        nc_str_has_prefix(why, "Regular expression failed to compile: "));
    free(why);
    assert_false(check3(n, "${attr.kernel.name}", "regexp", "abc\\", &why));
    assert_string_equal(why, "Regular expression failed to compile: "
                             "trailing backslash at end of expression");
    free(why);
    /* back-references: RE2 refuses them and glibc may backtrack on them */
    assert_false(check3(n, "aa", "regexp", "(a)\\1", &why));
    assert_string_equal(why, "Regular expression failed to compile: invalid "
                             "escape sequence: `\\1` (back-references are "
                             "not supported)");
    free(why);
    /* sizes that would make regcomp crawl are refused up front */
    assert_false(check3(n, "a", "regexp", "a{1001}", &why));
    assert_string_equal(why, "Regular expression failed to compile: "
                             "invalid repeat count: `{1001}`");
    free(why);
    assert_false(check3(n, "a", "regexp", "((a{100}){100}){100}", &why));
    assert_true(nc_str_has_suffix(why, "expression too large (over 20000 "
                                       "nodes after expanding repeats)"));
    free(why);
    struct nc_buf b = {0};
    for (int i = 0; i < 40; i++)
        nc_buf_putc(&b, '(');
    nc_buf_putc(&b, 'a');
    for (int i = 0; i < 40; i++)
        nc_buf_puts(&b, ")+");
    assert_false(check3(n, "a", "regexp", b.data, &why));
    assert_true(nc_str_has_suffix(why, "expression too large (over 20000 "
                                       "nodes after expanding repeats)"));
    free(why);
    nc_buf_free(&b);
    for (int i = 0; i < 5000; i++)
        nc_buf_putc(&b, '(');
    assert_false(check3(n, "a", "regexp", b.data, &why));
    assert_string_equal(why, "Regular expression failed to compile: "
                             "expression nests too deeply (more than 100 "
                             "groups)");
    free(why);
    nc_buf_free(&b);
    /* an unmatched ) is refused, as RE2 does */
    assert_false(check3(n, "a)(b", "regexp", "a)(b", &why));
    assert_string_equal(why, "Regular expression failed to compile: "
                             "unexpected )");
    free(why);
    /* the empty regexp matches everything; ^ and $ keep their meaning */
    assert_true(check(n, "anything", "regexp", ""));
    assert_true(check(n, "", "regexp", "^$"));
    assert_false(check(n, "ab", "regexp", "^b"));
    assert_true(check(n, "ab", "regexp", "b$|^x"));
    assert_true(check(n, "line1\nline2", "regexp", "^line1.line2$"));
    /* hostile values: linear-time search, and a length cap with a reason */
    char *big = xcalloc(1, 2049);
    memset(big, 'a', 2048);
    assert_false(check(n, big, "regexp", "(a|aa)*(a|aa)*(a|aa)*b"));
    assert_true(check(n, big, "regexp", "^(a|aa)*$"));
    big[2047] = 'b';
    assert_true(check(n, big, "regexp", "((a+)+)+b"));
    big[2047] = 'a';
    big[2048] = 'a';
    big = xrealloc(big, 2050);
    big[2049] = '\0';
    assert_false(check3(n, big, "regexp", "a", &why));
    assert_string_equal(why, "the value is 2049 bytes long; regexp "
                             "constraints match at most 2048");
    free(why);
    free(big);
    /* a fine regexp leaves why NULL */
    why = (char *)"sentinel";
    assert_true(check3(n, "x", "regexp", "x", &why));
    assert_null(why);
    freenode(n);
}

static void test_set_operators(void **state)
{
    (void)state;
    struct node *n = mknode();
    kv_set(&n->meta, "features", "ssd, gpu ,nvme");
    const char *all[] = {"set_contains", "set_contains_all"};
    for (size_t i = 0; i < NC_ARRAY_LEN(all); i++) {
        assert_true(check(n, "${meta.features}", all[i], "gpu"));
        assert_true(check(n, "${meta.features}", all[i], "nvme , ssd"));
        assert_false(check(n, "${meta.features}", all[i], "gpu,tpu"));
        assert_false(check(n, "${meta.features}", all[i], "GPU"));
        assert_false(
            check(n, "${meta.features}", all[i], "")); /* "" not in set */
        assert_false(check(n, "${meta.missing}", all[i], "gpu"));
    }
    assert_true(check(n, "${meta.features}", "set_contains_any", "tpu,gpu"));
    assert_false(check(n, "${meta.features}", "set_contains_any", "tpu, fpga"));
    assert_false(check(n, "${meta.missing}", "set_contains_any", "gpu"));
    assert_true(check(n, "", "set_contains", "")); /* {""} holds "" */

    /* a hostile 100k-item set stays fast (sorted lookups) */
    struct nc_buf l = {0}, r = {0};
    for (int i = 0; i < 100000; i++) {
        nc_buf_printf(&l, "%si%d", i ? "," : "", i);
        nc_buf_printf(&r, "%si%d", i ? "," : "", 99999 - i);
    }
    assert_true(check(n, l.data, "set_contains_all", r.data));
    nc_buf_puts(&r, ",zz");
    assert_false(check(n, l.data, "set_contains_all", r.data));
    assert_true(check(n, l.data, "set_contains_any", "zz,i5"));
    nc_buf_free(&l);
    nc_buf_free(&r);
    freenode(n);
}

static void test_is_set_operators(void **state)
{
    (void)state;
    struct node *n = mknode();
    assert_true(check(n, "${attr.cpu.arch}", "is_set", ""));
    assert_false(check(n, "${attr.gpu.model}", "is_set", ""));
    assert_false(check(n, "${attr.cpu.arch}", "is_not_set", ""));
    assert_true(check(n, "${attr.gpu.model}", "is_not_set", ""));
    assert_true(check(n, "${meta.rack}", "is_set", NULL));
    assert_true(check(n, "${node.bogus}", "is_not_set", NULL));
    kv_set(&n->meta, "empty", "");
    assert_true(check(n, "${meta.empty}", "is_set", "")); /* set, if empty */
    freenode(n);
}

static void test_unknown_operator(void **state)
{
    (void)state;
    struct node *n = mknode();
    char *why = NULL;
    assert_false(check3(n, "${attr.cpu.arch}", "matches", "amd64", &why));
    assert_string_equal(why, "Unknown constraint type \"matches\"");
    free(why);
    /* distinct_* are applied by placement_check, not per node */
    assert_true(check3(n, "", "distinct_hosts", "true", &why));
    assert_null(why);
    assert_true(check(n, "${meta.rack}", "distinct_property", "1"));
    freenode(n);
}

static void test_version_operator(void **state)
{
    (void)state;
    struct node *n = mknode();
    kv_set(&n->attributes, "v", "1.5.3");
    assert_true(check(n, "${attr.v}", "version", ">= 1.2, < 2.0"));
    assert_true(check(n, "${attr.v}", "version", ">=1.2,<2.0"));
    assert_false(check(n, "${attr.v}", "version", ">= 1.6"));
    assert_true(check(n, "${attr.v}", "version", "1.5.3")); /* bare = */
    assert_true(check(n, "${attr.v}", "version", "= 1.5.3"));
    assert_true(check(n, "${attr.v}", "version", "= v1.5.3"));
    assert_true(check(n, "${attr.v}", "version", "1.5.3.0")); /* padding */
    assert_true(check(n, "${attr.v}", "version", "!= 1.0"));
    assert_false(check(n, "${attr.v}", "version", "!= 1.5.3"));
    assert_true(check(n, "${attr.v}", "version", "> 1.5.2"));
    assert_true(check(n, "${attr.v}", "version", "< 1.10"));
    assert_true(check(n, "${attr.v}", "version", "<= 1.5.3"));
    /* pessimistic */
    assert_true(check(n, "${attr.v}", "version", "~> 1.5.0"));
    assert_false(check(n, "${attr.v}", "version", "~> 1.5.4"));
    assert_true(check(n, "${attr.v}", "version", "~> 1.2"));
    assert_true(check(n, "1.9", "version", "~> 1.2"));
    assert_false(check(n, "2.0", "version", "~> 1.2"));
    assert_false(check(n, "1.6.0", "version", "~> 1.5.0"));
    /* go-version quirk kept: with different segment counts the
     * prerelease is not compared at all */
    assert_true(check(n, "1.2.3-beta", "version", "= 1.2.3.0-alpha"));
    assert_false(check(n, "1.2.3-beta", "version", "= 1.2.3-alpha"));
    /* metadata does not order */
    assert_true(check(n, "1.5.3+ent", "version", "= 1.5.3"));
    assert_true(check(n, "1.5.3+ent.2-x", "version", "= 1.5.3"));
    assert_false(check(n, "1.5.3+", "version", ">= 0"));
    assert_false(check(n, "1.5.3+a..b", "version", ">= 0"));
    assert_false(check(n, "1.5.3+a+b", "version", ">= 0"));
    /* prerelease rules: only a constraint with a prerelease on the same
     * version matches a prerelease */
    assert_false(check(n, "1.6.0-beta1", "version", ">= 1.0"));
    assert_true(check(n, "1.6.0-beta1", "version", ">= 1.6.0-alpha"));
    assert_false(check(n, "1.7.0-beta1", "version", ">= 1.6.0-alpha"));
    assert_true(check(n, "1.6.0", "version", ">= 1.6.0-alpha"));
    assert_true(check(n, "1.6.0-beta1", "version", "= 1.6.0-beta1"));
    assert_false(check(n, "1.6.0", "version", "~> 1.6.0-beta"));
    assert_true(check(n, "1.6.0beta", "version", "= 1.6.0-beta")); /* loose */
    /* the left side must be a version, or the constraint fails silently */
    char *why = (char *)"sentinel";
    assert_false(check3(n, "${attr.kernel.name}", "version", ">= 1.0", &why));
    assert_null(why);
    assert_false(check(n, "${attr.missing}", "version", ">= 1.0"));
    assert_false(check(n, " 1.0", "version", ">= 1.0"));
    assert_false(check(n, "1.0.", "version", ">= 1.0"));
    assert_false(check(n, "99999999999999999999.0", "version", ">= 1.0"));

    /* constraint syntax errors say why, in go-version's words */
    assert_false(check3(n, "${attr.v}", "version", ">= x", &why));
    assert_string_equal(why, "Version constraint is invalid: malformed "
                             "constraint: >= x");
    free(why);
    assert_false(check3(n, "${attr.v}", "version", ">= 1.0,", &why));
    assert_string_equal(why, "Version constraint is invalid: malformed "
                             "constraint: ");
    free(why);
    assert_false(check3(n, "${attr.v}", "version", "", &why));
    assert_string_equal(why, "Version constraint is invalid: malformed "
                             "constraint: ");
    free(why);
    assert_false(check3(n, "${attr.v}", "version", "=> 1.0", &why));
    assert_string_equal(why, "Version constraint is invalid: malformed "
                             "constraint: => 1.0");
    free(why);
    assert_false(
        check3(n, "${attr.v}", "version", "1.99999999999999999999", &why));
    assert_string_equal(why, "Version constraint is invalid: error parsing "
                             "version: value out of range");
    free(why);

    /* a hostile 20000-segment version costs linear time */
    struct nc_buf b = {0};
    nc_buf_puts(&b, "1");
    for (int i = 0; i < 20000; i++)
        nc_buf_puts(&b, ".0");
    assert_true(check(n, b.data, "version", "= 1"));
    assert_true(check(n, "1", "version", b.data));
    nc_buf_free(&b);
    freenode(n);
}

static void test_semver_operator(void **state)
{
    (void)state;
    struct node *n = mknode();
    /* Semver 2.0 precedence, each strictly below the next */
    const char *order[] = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
                           "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
                           "1.0.0-rc.1",  "1.0.0",         "1.0.1",
                           "1.1.0-alpha", "1.1.0"};
    for (size_t i = 0; i + 1 < NC_ARRAY_LEN(order); i++) {
        char *lt = xasprintf("< %s", order[i + 1]);
        char *ge = xasprintf(">= %s", order[i + 1]);
        assert_true(check(n, order[i], "semver", lt));
        assert_false(check(n, order[i], "semver", ge));
        assert_false(check(n, order[i + 1], "semver", lt));
        free(lt);
        free(ge);
    }
    /* go-version's comparePart, which Nomad uses for semver too: a shorter
     * prerelease sorts above a longer one whose next part is alphanumeric
     * (Semver 2.0 would say otherwise; Nomad's behaviour wins here) */
    assert_true(check(n, "1.0.0-alpha", "semver", "> 1.0.0-alpha.beta"));
    assert_true(check(n, "1.0.0-alpha", "semver", "< 1.0.0-alpha.1"));
    /* unlike "version", ordering operators match prereleases */
    assert_true(check(n, "1.6.0-beta1", "semver", ">= 1.0.0"));
    assert_false(check(n, "1.6.0-beta1", "version", ">= 1.0.0"));
    assert_true(
        check(n, "${attr.nomad.version}", "semver", ">= 1.7.0, < 1.8.0"));
    assert_true(check(n, "1.2.3+build.7", "semver", "= 1.2.3"));
    assert_false(check(n, "${attr.missing}", "semver", ">= 1.0.0"));

    char *why = NULL;
    assert_false(check3(n, "1.2.3", "semver", "~> 1.2", &why));
    assert_string_equal(why, "Semver constraint is invalid: Malformed "
                             "constraint: ~> 1.2");
    free(why);
    /* semver needs the "-" before a prerelease; go-version does not */
    assert_false(check3(n, "1.2.3", "semver", ">= 1.2.3beta", &why));
    assert_string_equal(why, "Semver constraint is invalid: Malformed "
                             "constraint: >= 1.2.3beta");
    free(why);
    assert_true(check(n, "1.2.3", "version", ">= 1.2.3beta"));
    freenode(n);
}

/* ---- placement ---- */

static const char seed_message_system[] =
    "Placement failed: no nodes satisfied constraints\n"
    "    Task Group \"workers\" (failed to place 1 allocation):\n"
    "      * Constraint \"${meta.storage_type} = ssd\": 1 nodes excluded by "
    "filter\n"
    "      * Constraint \"missing drivers\": 1 nodes excluded by filter";

static struct job *seed_job(const char *type)
{
    /* examples/seed/custom-scheduler.nomad */
    struct job *j = mkjob("custom-scheduler", type);
    add_constraint(&j->constraints, &j->nconstraints, "${attr.cpu.arch}", "=",
                   "amd64");
    add_constraint(&j->constraints, &j->nconstraints, "${meta.storage_type}",
                   "=", "ssd");
    add_group(j, "workers", 10, "docker", 500, 256);
    return j;
}

static void test_seed_custom_scheduler(void **state)
{
    (void)state;
    struct node *n = mknode(); /* amd64, no meta.storage_type, no docker */
    struct job *j = seed_job("system");
    struct placement_result r;
    char *msg = run(j, n, NULL, &r);
    assert_false(r.ok);
    assert_string_equal(msg, seed_message_system);
    assert_int_equal(r.ngroups, 1);
    assert_string_equal(r.groups[0].group, "workers");
    assert_int_equal(r.groups[0].desired, 1); /* system: one per node */
    assert_int_equal(r.groups[0].placed, 0);
    assert_int_equal(r.groups[0].failure, PLACEMENT_FILTERED);
    assert_int_equal(r.groups[0].reasons.n, 2);
    assert_string_equal(
        r.groups[0].reasons.items[1],
        "Constraint \"missing drivers\": 1 nodes excluded by filter");
    placement_result_free(&r);
    free(msg);
    freejob(j);

    /* as a service job the count applies */
    j = seed_job("service");
    msg = run(j, n, NULL, &r);
    assert_string_equal(
        msg,
        "Placement failed: no nodes satisfied constraints\n"
        "    Task Group \"workers\" (failed to place 10 allocations):\n"
        "      * Constraint \"${meta.storage_type} = ssd\": 1 nodes excluded "
        "by filter\n"
        "      * Constraint \"missing drivers\": 1 nodes excluded by filter");
    placement_result_free(&r);
    free(msg);

    /* with the meta key and docker, everything fits: 10 x 500 MHz = 5000 */
    kv_set(&n->meta, "storage_type", "ssd");
    add_driver(n, "docker", true, true);
    msg = run(j, n, NULL, &r);
    assert_true(r.ok);
    assert_int_equal(r.groups[0].placed, 10);
    assert_int_equal(r.groups[0].reasons.n, 0);
    assert_int_equal(r.groups[0].failure, PLACEMENT_FIT);
    placement_result_free(&r);
    free(msg);
    freejob(j);
    freenode(n);
}

static void test_constraint_levels(void **state)
{
    (void)state;
    struct node *n = mknode();
    struct job *j = mkjob("levels", "batch");
    struct task_group *g = add_group(j, "api", 2, "exec", 100, 100);
    add_constraint(&g->constraints, &g->nconstraints, "${attr.kernel.name}",
                   "=", "windows");
    struct task *t = add_task(g, "sidecar", "raw_exec");
    add_constraint(&t->constraints, &t->nconstraints, "${attr.cpu.arch}",
                   "regexp", "^arm");
    /* the same constraint at task level again: one line */
    add_constraint(&g->tasks[0].constraints, &g->tasks[0].nconstraints,
                   "${attr.kernel.name}", "=", "windows");
    g = add_group(j, "ok", 1, "exec", 100, 100);
    add_constraint(&g->constraints, &g->nconstraints, "${meta.rack}", "=",
                   "r1");
    struct placement_result r;
    char *msg = run(j, n, NULL, &r);
    assert_string_equal(
        msg, "Placement failed: no nodes satisfied constraints\n"
             "    Task Group \"api\" (failed to place 2 allocations):\n"
             "      * Constraint \"${attr.kernel.name} = windows\": 1 nodes "
             "excluded by filter\n"
             "      * Constraint \"${attr.cpu.arch} regexp ^arm\": 1 nodes "
             "excluded by filter");
    assert_int_equal(r.groups[1].placed, 1);
    placement_result_free(&r);
    free(msg);
    freejob(j);
    freenode(n);
}

static void test_invalid_constraint_reason(void **state)
{
    (void)state;
    struct node *n = mknode();
    struct job *j = mkjob("bad", "service");
    add_constraint(&j->constraints, &j->nconstraints, "${attr.kernel.name}",
                   "regexp", "([a-z]");
    add_constraint(&j->constraints, &j->nconstraints, "${attr.nomad.version}",
                   "version", ">= one");
    add_group(j, "g", 1, "exec", 100, 100);
    struct placement_result r;
    char *msg = run(j, n, NULL, &r);
    assert_string_equal(
        msg,
        "Placement failed: no nodes satisfied constraints\n"
        "    Task Group \"g\" (failed to place 1 allocation):\n"
        "      * Constraint \"${attr.kernel.name} regexp ([a-z]\": 1 nodes "
        "excluded by filter\n"
        "      * Constraint \"${attr.kernel.name} regexp ([a-z]\" is invalid: "
        "Regular expression failed to compile: Unmatched ( or \\(\n"
        "      * Constraint \"${attr.nomad.version} version >= one\": 1 nodes "
        "excluded by filter\n"
        "      * Constraint \"${attr.nomad.version} version >= one\" is "
        "invalid: "
        "Version constraint is invalid: malformed constraint: >= one");
    placement_result_free(&r);
    free(msg);
    freejob(j);
    freenode(n);
}

static void test_datacenters(void **state)
{
    (void)state;
    struct node *n = mknode();
    set_str(&n->datacenter, "us-east-1");
    struct job *j = mkjob("dc", "service");
    add_group(j, "g", 1, "exec", 100, 100);
    struct placement_result r;
    const char *fits[] = {"us-*", "*", "*-east-*", "us-east-1", "*1", "u*1"};
    for (size_t i = 0; i < NC_ARRAY_LEN(fits); i++) {
        strlist_free(&j->datacenters);
        strlist_add(&j->datacenters, "eu-west-1");
        strlist_add(&j->datacenters, fits[i]);
        char *msg = run(j, n, NULL, &r);
        assert_true(r.ok);
        placement_result_free(&r);
        free(msg);
    }
    /* no datacenters at all: Nomad's default ["*"] */
    strlist_free(&j->datacenters);
    char *msg = run(j, n, NULL, &r);
    assert_true(r.ok);
    placement_result_free(&r);
    free(msg);

    /* only `*` is special, as in go-glob: "?" and "[" are literal */
    const char *misses[] = {
        "eu-*", "us-east-?", "us-east-[12]", "us-east",     "*-west-*", "us*2",
        "",     "u*e",       "*east",        "us-east-1*x", "east*"};
    for (size_t i = 0; i < NC_ARRAY_LEN(misses); i++) {
        strlist_free(&j->datacenters);
        strlist_add(&j->datacenters, misses[i]);
        msg = run(j, n, NULL, &r);
        assert_false(r.ok);
        assert_int_equal(r.groups[0].failure, PLACEMENT_FILTERED);
        free(msg);
        placement_result_free(&r);
    }
    strlist_free(&j->datacenters);
    strlist_add(&j->datacenters, "eu-*");
    strlist_add(&j->datacenters, "dc\"2");
    msg = run(j, n, NULL, &r);
    assert_string_equal(
        msg, "Placement failed: no nodes satisfied constraints\n"
             "    Task Group \"g\" (failed to place 1 allocation):\n"
             "      * No nodes were eligible for evaluation\n"
             "      * No nodes are available in datacenter \"eu-*\"\n"
             "      * No nodes are available in datacenter \"dc\\\"2\"");
    placement_result_free(&r);
    free(msg);
    freejob(j);
    freenode(n);
}

static void test_node_pool(void **state)
{
    (void)state;
    struct node *n = mknode();
    struct job *j = mkjob("pool", "service");
    add_group(j, "g", 1, "exec", 100, 100);
    struct placement_result r;
    /* unset on both sides: "default" */
    char *msg = run(j, n, NULL, &r);
    assert_true(r.ok);
    placement_result_free(&r);
    free(msg);

    set_str(&j->node_pool, "gpu");
    msg = run(j, n, NULL, &r);
    assert_string_equal(msg,
                        "Placement failed: no nodes satisfied constraints\n"
                        "    Task Group \"g\" (failed to place 1 allocation):\n"
                        "      * No nodes were eligible for evaluation\n"
                        "      * No nodes are available in node pool \"gpu\"");
    placement_result_free(&r);
    free(msg);

    set_str(&n->node_pool, "gpu");
    msg = run(j, n, NULL, &r);
    assert_true(r.ok);
    placement_result_free(&r);
    free(msg);

    set_str(&j->node_pool, "all");
    msg = run(j, n, NULL, &r);
    assert_true(r.ok);
    placement_result_free(&r);
    free(msg);

    set_str(&j->node_pool, "default");
    msg = run(j, n, NULL, &r);
    assert_false(r.ok);
    placement_result_free(&r);
    free(msg);
    freejob(j);
    freenode(n);
}

/* `node drain` and `node eligibility -disable`: the node is not Ready,
 * so nothing is evaluated on it; either way back restores placement. */
static void test_node_not_ready(void **state)
{
    (void)state;
    struct node *n = mknode();
    struct job *j = mkjob("ready", "service");
    add_group(j, "g", 2, "exec", 100, 100);
    struct placement_result r;
    static const char want[] =
        "Placement failed: no nodes satisfied constraints\n"
        "    Task Group \"g\" (failed to place 2 allocations):\n"
        "      * No nodes were eligible for evaluation";
    n->eligible = false;
    char *msg = run(j, n, NULL, &r);
    assert_string_equal(msg, want);
    assert_int_equal(r.groups[0].failure, PLACEMENT_FILTERED);
    assert_int_equal(r.groups[0].placed, 0);
    placement_result_free(&r);
    free(msg);

    n->eligible = true;
    n->drain = true;
    msg = run(j, n, NULL, &r);
    assert_string_equal(msg, want);
    placement_result_free(&r);
    free(msg);

    n->drain = false;
    msg = run(j, n, NULL, &r);
    assert_true(r.ok);
    placement_result_free(&r);
    free(msg);
    freejob(j);
    freenode(n);
}

static void test_drivers(void **state)
{
    (void)state;
    struct node *n = mknode();
    add_driver(n, "docker", true, false); /* detected but unhealthy */
    add_driver(n, "java", false, false);
    kv_set(&n->attributes, "driver.qemu", "1");
    kv_set(&n->attributes, "driver.podman", "false");
    kv_set(&n->attributes, "driver.lxc", "yes"); /* not a Go bool */
    struct job *j = mkjob("drv", "batch");
    struct task_group *g = add_group(j, "g", 1, "exec", 100, 100);
    struct task *t = add_task(g, "t2", "raw_exec");
    struct placement_result r;
    const struct {
        const char *driver;
        bool ok;
    } cases[] = {{"raw_exec", true}, {"qemu", true},    {"docker", false},
                 {"java", false},    {"podman", false}, {"lxc", false},
                 {"rkt", false}};
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        set_str(&t->driver, cases[i].driver);
        char *msg = run(j, n, NULL, &r);
        assert_int_equal(r.ok, cases[i].ok);
        if (!cases[i].ok)
            assert_string_equal(
                msg, "Placement failed: no nodes satisfied constraints\n"
                     "    Task Group \"g\" (failed to place 1 allocation):\n"
                     "      * Constraint \"missing drivers\": 1 nodes excluded "
                     "by filter");
        placement_result_free(&r);
        free(msg);
    }
    freejob(j);
    freenode(n);
}

static void test_host_volumes(void **state)
{
    (void)state;
    struct node *n = mknode();
    add_host_volume(n, "data", false);
    add_host_volume(n, "certs", true);
    add_host_volume(n, "shard[0]", false);
    add_host_volume(n, "shard[1]", false);
    struct job *j = mkjob("vol", "service");
    struct task_group *g = add_group(j, "db", 1, "exec", 100, 100);
    add_volume(g, "d", "host", "data", false, false);
    add_volume(g, "c", "host", "certs", true, false);
    struct placement_result r;
    char *msg = run(j, n, NULL, &r);
    assert_true(r.ok);
    placement_result_free(&r);
    free(msg);

    /* writing to a read-only host volume is no match */
    j->groups[0].volumes[1].read_only = false;
    msg = run(j, n, NULL, &r);
    assert_string_equal(
        msg, "Placement failed: no nodes satisfied constraints\n"
             "    Task Group \"db\" (failed to place 1 allocation):\n"
             "      * Constraint \"missing compatible host volumes\": 1 nodes "
             "excluded by filter");
    placement_result_free(&r);
    free(msg);
    j->groups[0].volumes[1].read_only = true;

    set_str(&j->groups[0].volumes[0].source, "nope");
    msg = run(j, n, NULL, &r);
    assert_false(r.ok);
    assert_string_equal(r.groups[0].reasons.items[0],
                        "Constraint \"missing compatible host volumes\": 1 "
                        "nodes excluded by filter");
    placement_result_free(&r);
    free(msg);

    /* per_alloc: allocation i needs "shard[i]"; two exist, three wanted */
    set_str(&j->groups[0].volumes[0].source, "shard");
    j->groups[0].volumes[0].per_alloc = true;
    j->groups[0].count = 3;
    msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 2);
    assert_string_equal(
        msg, "Placement failed: 1 of 3 allocations of group \"db\" could not "
             "be placed\n"
             "    Task Group \"db\" (failed to place 1 allocation):\n"
             "      * Constraint \"missing compatible host volumes\": 1 nodes "
             "excluded by filter");
    placement_result_free(&r);
    free(msg);

    /* a CSI volume cannot be mounted here */
    add_volume(&j->groups[0], "s3", "csi", "bucket", false, false);
    msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 0);
    assert_string_equal(r.groups[0].reasons.items[0],
                        "Constraint \"missing CSI volume(s) bucket\": 1 nodes "
                        "excluded by filter");
    placement_result_free(&r);
    free(msg);
    freejob(j);
    freenode(n);
}

static void test_resources_across_groups(void **state)
{
    (void)state;
    struct node *n = mknode();
    n->resources.memory_mb = 1000;
    n->reserved.memory_mb = 100;
    struct job *j = mkjob("res", "service");
    add_group(j, "a", 3, "exec", 100, 200);
    add_group(j, "b", 2, "exec", 100, 200);
    struct placement_result r;
    char *msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 3);
    assert_int_equal(r.groups[1].placed, 1);
    assert_int_equal(r.groups[1].failure, PLACEMENT_EXHAUSTED);
    assert_string_equal(msg,
                        "Placement failed: 1 of 2 allocations of group \"b\" "
                        "could not be placed\n"
                        "    Task Group \"b\" (failed to place 1 allocation):\n"
                        "      * Resources exhausted on 1 nodes\n"
                        "      * Dimension \"memory\" exhausted on 1 nodes");
    placement_result_free(&r);
    free(msg);

    /* with a node class Nomad adds the class line */
    set_str(&n->node_class, "small");
    j->groups[1].count = 5;
    j->groups[0].tasks[0].resources.memory_mb = 300;
    msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 3);
    assert_int_equal(r.groups[1].placed, 0);
    assert_string_equal(
        msg, "Placement failed: 5 of 5 allocations of group \"b\" could not be "
             "placed\n"
             "    Task Group \"b\" (failed to place 5 allocations):\n"
             "      * Resources exhausted on 1 nodes\n"
             "      * Class \"small\" exhausted on 1 nodes\n"
             "      * Dimension \"memory\" exhausted on 1 nodes");
    placement_result_free(&r);
    free(msg);

    /* two failing groups: totals over the job */
    j->groups[0].count = 4;
    msg = run(j, n, NULL, &r);
    assert_true(nc_str_has_prefix(
        msg, "Placement failed: 6 of 9 allocations could not be placed\n"
             "    Task Group \"a\" (failed to place 1 allocation):\n"));
    placement_result_free(&r);
    free(msg);
    freejob(j);
    freenode(n);
}

static void test_prior_usage(void **state)
{
    (void)state;
    struct node *n = mknode();
    n->reserved.cpu_mhz = 1000;
    struct job *j = mkjob("use", "batch");
    add_group(j, "crunch", 2, "exec", 2000, 100);
    struct placement_usage used = {.cpu_mhz = 4500};
    struct placement_result r;
    /* 8000 - 1000 - 4500 = 2500: one of two */
    char *msg = run(j, n, &used, &r);
    assert_int_equal(r.groups[0].placed, 1);
    assert_string_equal(
        msg, "Placement failed: 1 of 2 allocations of group \"crunch\" could "
             "not be placed\n"
             "    Task Group \"crunch\" (failed to place 1 allocation):\n"
             "      * Resources exhausted on 1 nodes\n"
             "      * Dimension \"cpu\" exhausted on 1 nodes");
    placement_result_free(&r);
    free(msg);

    used.cpu_mhz = 0;
    used.disk_mb = 99500; /* two groups of 300 MB ephemeral disk: one fits */
    msg = run(j, n, &used, &r);
    assert_int_equal(r.groups[0].placed, 1);
    assert_string_equal(r.groups[0].reasons.items[1],
                        "Dimension \"disk\" exhausted on 1 nodes");
    placement_result_free(&r);
    free(msg);

    used.disk_mb = 0;
    used.memory_mb = 16384;
    msg = run(j, n, &used, &r);
    assert_int_equal(r.groups[0].placed, 0);
    assert_string_equal(r.groups[0].reasons.items[1],
                        "Dimension \"memory\" exhausted on 1 nodes");
    placement_result_free(&r);
    free(msg);

    /* without usage it all fits */
    msg = run(j, n, NULL, &r);
    assert_true(r.ok);
    placement_result_free(&r);
    free(msg);
    freejob(j);
    freenode(n);
}

static void test_cores(void **state)
{
    (void)state;
    struct node *n = mknode(); /* 4 cores of 2000 MHz */
    struct job *j = mkjob("cores", "service");
    struct task_group *g = add_group(j, "pinned", 3, "exec", 0, 100);
    g->tasks[0].resources.cores = 2;
    struct placement_usage used = {.cores = 1};
    struct placement_result r;
    char *msg = run(j, n, &used, &r);
    assert_int_equal(r.groups[0].placed, 1);
    assert_string_equal(r.groups[0].reasons.items[1],
                        "Dimension \"cores\" exhausted on 1 nodes");
    placement_result_free(&r);
    free(msg);
    /* cores count as their MHz: 2 x 2000 leaves no room for 5000 MHz */
    g = add_group(j, "more", 1, "exec", 5000, 100);
    msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 2);
    /* cores and cpu both allow 2: cores is checked first, as in rank.go */
    assert_string_equal(r.groups[0].reasons.items[1],
                        "Dimension \"cores\" exhausted on 1 nodes");
    assert_int_equal(r.groups[1].placed, 0);
    assert_string_equal(r.groups[1].reasons.items[1],
                        "Dimension \"cpu\" exhausted on 1 nodes");
    placement_result_free(&r);
    free(msg);
    freejob(j);
    freenode(n);
}

static void test_ports(void **state)
{
    (void)state;
    struct node *n = mknode();
    n->reserved.reserved_ports = xstrdup("22, 80,8000-8100");
    struct job *j = mkjob("ports", "service");
    struct task_group *g = add_group(j, "db", 1, "exec", 100, 100);
    add_static_port(g, "http", 8443);
    add_static_port(g, "db", 5432);
    struct placement_usage used = {0};
    strlist_add(&used.used_ports, "5432");
    struct placement_result r;
    char *msg = run(j, n, &used, &r);
    assert_string_equal(
        msg, "Placement failed: 1 of 1 allocation of group \"db\" could not be "
             "placed\n"
             "    Task Group \"db\" (failed to place 1 allocation):\n"
             "      * Resources exhausted on 1 nodes\n"
             "      * Dimension \"network: reserved port collision db=5432\" "
             "exhausted on 1 nodes");
    placement_result_free(&r);
    free(msg);
    strlist_free(&used.used_ports);

    /* the node's reserved ports, ranges included */
    g->networks[0].reserved_ports[1].value = 8080;
    msg = run(j, n, NULL, &r);
    assert_string_equal(r.groups[0].reasons.items[1],
                        "Dimension \"network: reserved port collision "
                        "db=8080\" exhausted on 1 nodes");
    placement_result_free(&r);
    free(msg);

    /* a static port holds one allocation; the second collides with it */
    g->networks[0].reserved_ports[1].value = 9090;
    g->count = 3;
    msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 1);
    assert_string_equal(r.groups[0].reasons.items[1],
                        "Dimension \"network: reserved port collision "
                        "http=8443\" exhausted on 1 nodes");
    placement_result_free(&r);
    free(msg);

    /* and a later group asking for the same port finds it taken */
    g->count = 1;
    g = add_group(j, "db2", 1, "exec", 100, 100);
    add_static_port(g, "db", 9090);
    msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 1);
    assert_int_equal(r.groups[1].placed, 0);
    assert_string_equal(r.groups[1].reasons.items[1],
                        "Dimension \"network: reserved port collision "
                        "db=9090\" exhausted on 1 nodes");
    placement_result_free(&r);
    free(msg);

    g->networks[0].reserved_ports[0].value = 70000;
    msg = run(j, n, NULL, &r);
    assert_string_equal(r.groups[1].reasons.items[1],
                        "Dimension \"network: invalid port 70000 (out of "
                        "range)\" exhausted on 1 nodes");
    placement_result_free(&r);
    free(msg);

    /* dynamic ports come from 20000-32000; used entries that are not
     * ports are ignored */
    g->networks[0].reserved_ports[0].value = 9191;
    add_dynamic_port(g, "metrics");
    strlist_add(&used.used_ports, "20000-31999");
    strlist_add(&used.used_ports, "0");
    strlist_add(&used.used_ports, "junk");
    g->count = 1;
    add_group(j, "dyn", 2, "exec", 100, 100);
    add_dynamic_port(&j->groups[2], "a");
    msg = run(j, n, &used, &r);
    assert_int_equal(r.groups[1].placed, 1); /* takes 32000 */
    assert_int_equal(r.groups[2].placed, 0);
    assert_string_equal(r.groups[2].reasons.items[1],
                        "Dimension \"network: dynamic port selection "
                        "failed\" exhausted on 1 nodes");
    placement_result_free(&r);
    free(msg);
    strlist_free(&used.used_ports);
    freejob(j);

    /* a node whose reserved_ports cannot be read: refused, with why */
    j = mkjob("x", "service");
    add_group(j, "g", 1, "exec", 100, 100);
    const struct {
        const char *spec, *msg;
    } bad[] = {
        {"80,abc",
         "Placement failed: node reserved_ports \"80,abc\" is "
         "invalid: strconv.ParseUint: parsing \"abc\": invalid syntax"},
        {"90-80",
         "Placement failed: node reserved_ports \"90-80\" is invalid: "
         "invalid range: ending value (80) less than starting (90) value"},
        {"0", "Placement failed: node reserved_ports \"0\" is invalid: port "
              "must be > 0"},
        {"80,,81", "Placement failed: node reserved_ports \"80,,81\" is "
                   "invalid: can't specify empty port"},
        {"1-2-3", "Placement failed: node reserved_ports \"1-2-3\" is invalid: "
                  "can only parse single port numbers or port ranges (ex. "
                  "80,100-120,150)"},
        {"70000", "Placement failed: node reserved_ports \"70000\" is invalid: "
                  "port must be < 65536 but found 70000"},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(bad); i++) {
        set_str(&n->reserved.reserved_ports, bad[i].spec);
        assert_int_equal(placement_check(j, n, NULL, &r), -EINVAL);
        assert_false(r.ok);
        assert_string_equal(r.message, bad[i].msg);
        placement_result_free(&r);
    }
    freejob(j);
    freenode(n);
}

static void test_distinct_hosts(void **state)
{
    (void)state;
    struct node *n = mknode();
    struct job *j = mkjob("dh", "service");
    struct task_group *g = add_group(j, "web", 3, "exec", 100, 100);
    add_constraint(&g->constraints, &g->nconstraints, "", "distinct_hosts",
                   "true");
    add_group(j, "other", 2, "exec", 100, 100);
    struct placement_result r;
    char *msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 1);
    assert_int_equal(r.groups[0].failure, PLACEMENT_FILTERED);
    assert_int_equal(r.groups[1].placed,
                     2); /* group-level: others unaffected */
    assert_string_equal(
        msg,
        "Placement failed: 2 of 3 allocations of group \"web\" could not be "
        "placed\n"
        "    Task Group \"web\" (failed to place 2 allocations):\n"
        "      * Constraint \"distinct_hosts\": 1 nodes excluded by filter");
    placement_result_free(&r);
    free(msg);

    /* job-level: one allocation of the whole job per node */
    add_constraint(&j->constraints, &j->nconstraints, "", "distinct_hosts", "");
    msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 1);
    assert_int_equal(r.groups[1].placed, 0);
    assert_true(nc_str_has_prefix(msg, "Placement failed: 4 of 5 allocations "
                                       "could not be placed\n"));
    placement_result_free(&r);
    free(msg);

    /* system jobs have no distinct_hosts check (one per node anyway) */
    set_str(&j->type, "system");
    msg = run(j, n, NULL, &r);
    assert_true(r.ok);
    placement_result_free(&r);
    free(msg);
    freejob(j);
    freenode(n);
}

static void test_distinct_property(void **state)
{
    (void)state;
    struct node *n = mknode();
    struct job *j = mkjob("dp", "service");
    struct task_group *g = add_group(j, "web", 3, "exec", 100, 100);
    add_constraint(&g->constraints, &g->nconstraints, "${meta.rack}",
                   "distinct_property", "2");
    struct placement_result r;
    char *msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 2);
    assert_string_equal(
        msg, "Placement failed: 1 of 3 allocations of group \"web\" could not "
             "be placed\n"
             "    Task Group \"web\" (failed to place 1 allocation):\n"
             "      * Constraint \"distinct_property: ${meta.rack}=r1 used by "
             "2 allocs\": 1 nodes excluded by filter");
    placement_result_free(&r);
    free(msg);

    /* default RTarget is 1 */
    set_str(&g->constraints[0].rtarget, "");
    msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 1);
    placement_result_free(&r);
    free(msg);

    set_str(&g->constraints[0].ltarget, "${meta.zone}");
    msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 0);
    assert_string_equal(r.groups[0].reasons.items[0],
                        "Constraint \"missing property \\\"${meta.zone}\\\"\": "
                        "1 nodes excluded by filter");
    placement_result_free(&r);
    free(msg);

    set_str(&g->constraints[0].ltarget, "${meta.rack}");
    set_str(&g->constraints[0].rtarget, "-1");
    msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 0);
    assert_string_equal(
        r.groups[0].reasons.items[0],
        "Constraint \"failed to convert RTarget \\\"-1\\\" to "
        "uint64: strconv.ParseUint: parsing \\\"-1\\\": invalid "
        "syntax\": 1 nodes excluded by filter");
    placement_result_free(&r);
    free(msg);

    /* job-level counts allocations of every group */
    free_constraints(g->constraints, g->nconstraints);
    g->constraints = NULL;
    g->nconstraints = 0;
    g->count = 2;
    add_constraint(&j->constraints, &j->nconstraints, "${node.datacenter}",
                   "distinct_property", "3");
    add_group(j, "worker", 2, "exec", 100, 100);
    msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 2);
    assert_int_equal(r.groups[1].placed, 1);
    assert_string_equal(
        r.groups[1].reasons.items[0],
        "Constraint \"distinct_property: ${node.datacenter}=dc1 "
        "used by 3 allocs\": 1 nodes excluded by filter");
    placement_result_free(&r);
    free(msg);
    freejob(j);
    freenode(n);
}

static void test_system_job_count(void **state)
{
    (void)state;
    struct node *n = mknode();
    const char *types[] = {"system", "sysbatch"};
    for (size_t i = 0; i < NC_ARRAY_LEN(types); i++) {
        struct job *j = mkjob("sys", types[i]);
        add_group(j, "agent", 10, "exec", 1000, 1000);
        add_group(j, "zero", 0, "exec", 1000, 1000);
        struct placement_result r;
        char *msg = run(j, n, NULL, &r);
        assert_true(r.ok);
        assert_int_equal(r.groups[0].desired, 1);
        assert_int_equal(r.groups[0].placed, 1);
        assert_int_equal(r.groups[1].desired, 0); /* count 0: none, as Nomad */
        placement_result_free(&r);
        free(msg);
        freejob(j);
    }
    /* a service job with count 10 takes 10 x 1000 MHz > 8000 */
    struct job *j = mkjob("svc", "service");
    add_group(j, "agent", 10, "exec", 1000, 1000);
    add_group(j, "zero", 0, "exec", 1000, 1000);
    struct placement_result r;
    char *msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 8);
    assert_int_equal(r.groups[1].desired, 0);
    assert_int_equal(r.groups[1].placed, 0);
    assert_int_equal(r.groups[1].failure, PLACEMENT_FIT);
    placement_result_free(&r);
    free(msg);
    freejob(j);
    freenode(n);
}

static void test_hostile_inputs(void **state)
{
    (void)state;
    struct node *n = mknode();
    /* a huge count costs nothing more than a small one */
    struct job *j = mkjob("big", "batch");
    add_group(j, "tiny", 2000000000, "exec", 0, 0);
    j->groups[0].ephemeral_disk.mb = 0;
    struct placement_result r;
    char *msg = run(j, n, NULL, &r);
    assert_true(r.ok);
    assert_int_equal(r.groups[0].placed, 2000000000);
    placement_result_free(&r);
    free(msg);
    j->groups[0].tasks[0].resources.memory_mb = 1;
    msg = run(j, n, NULL, &r);
    assert_int_equal(r.groups[0].placed, 16384);
    placement_result_free(&r);
    free(msg);

    /* negative and extreme numbers do not wrap */
    j->groups[0].count = 5;
    j->groups[0].tasks[0].resources.memory_mb = -100;
    j->groups[0].tasks[0].resources.cpu = 2147483647;
    n->reserved.memory_mb = -5;
    n->resources.disk_mb = 10;
    n->reserved.disk_mb = INT64_MAX; /* more than there is, and then some */
    struct placement_usage used = {
        .memory_mb = INT64_MAX, .cpu_mhz = -1, .disk_mb = INT64_MAX};
    msg = run(j, n, &used, &r);
    assert_int_equal(r.groups[0].placed, 0);
    assert_string_equal(r.groups[0].reasons.items[1],
                        "Dimension \"cpu\" exhausted on 1 nodes");
    placement_result_free(&r);
    free(msg);

    /* names with quotes and control characters are quoted as Go's %q */
    set_str(&j->groups[0].name,
            "a\"b\n\x1b[31m\xe2\x80\xae\xff\xe0\x80\xaf\xc3\xa9\xf0\x9f\x90\xb3"
            "\xf4\x90\x80\x80");
    msg = run(j, n, &used, &r);
    assert_true(nc_str_has_prefix(
        msg, "Placement failed: 5 of 5 allocations of group "
             "\"a\\\"b\\n\\x1b[31m\\u202e\\xff\\xe0\\x80\\xaf"
             "\xc3\xa9\xf0\x9f\x90\xb3\\xf4\\x90\\x80\\x80\" could not be "
             "placed\n"));
    placement_result_free(&r);
    free(msg);
    freejob(j);

    /* NULL strings everywhere */
    struct node empty = {.eligible = true}; /* ready, as fingerprinted */
    struct job bare = {0};
    struct task_group tg = {.count = 1};
    struct task task = {0};
    tg.tasks = &task;
    tg.ntasks = 1;
    bare.groups = &tg;
    bare.ngroups = 1;
    assert_int_equal(placement_check(&bare, &empty, NULL, &r), 0);
    assert_false(r.ok); /* no driver "" on an empty node */
    assert_string_equal(
        r.message,
        "Placement failed: no nodes satisfied constraints\n"
        "    Task Group \"\" (failed to place 1 allocation):\n"
        "      * Constraint \"missing drivers\": 1 nodes excluded by filter");
    placement_result_free(&r);
    assert_int_equal(placement_check(NULL, n, NULL, &r), -EINVAL);
    placement_result_free(&r);
    placement_result_free(NULL);
    placement_result_free(&r); /* twice is fine */
    struct constraint c = {0};
    assert_true(placement_check_constraint(n, &c, NULL)); /* "" = "" literals */
    assert_false(placement_check_constraint(NULL, &c, NULL));
    freenode(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_targets),
        cmocka_unit_test(test_interpolated_rtarget),
        cmocka_unit_test(test_equality_operators),
        cmocka_unit_test(test_order_operators),
        cmocka_unit_test(test_regexp_operator),
        cmocka_unit_test(test_set_operators),
        cmocka_unit_test(test_is_set_operators),
        cmocka_unit_test(test_unknown_operator),
        cmocka_unit_test(test_version_operator),
        cmocka_unit_test(test_semver_operator),
        cmocka_unit_test(test_seed_custom_scheduler),
        cmocka_unit_test(test_constraint_levels),
        cmocka_unit_test(test_invalid_constraint_reason),
        cmocka_unit_test(test_datacenters),
        cmocka_unit_test(test_node_pool),
        cmocka_unit_test(test_node_not_ready),
        cmocka_unit_test(test_drivers),
        cmocka_unit_test(test_host_volumes),
        cmocka_unit_test(test_resources_across_groups),
        cmocka_unit_test(test_prior_usage),
        cmocka_unit_test(test_cores),
        cmocka_unit_test(test_ports),
        cmocka_unit_test(test_distinct_hosts),
        cmocka_unit_test(test_distinct_property),
        cmocka_unit_test(test_system_job_count),
        cmocka_unit_test(test_hostile_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
