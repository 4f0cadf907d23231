// deps: client/template/ client/util.c
/* The template engine through its API: parse errors with positions,
 * dependencies asked through the environment (known, absent, missing,
 * failing), objects with fields, the registry, missing-key modes, the
 * value model, and the bounds that keep hostile templates from hurting
 * (output, steps, time, nesting, recursion, text size, cyclic values).
 * Go's semantics themselves are checked by test_template_diff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/template/template.h"

static struct tmpl_funcs *consul;

static int setup(void **state)
{
    (void)state;
    consul = tmpl_funcs_new();
    tmpl_funcs_add_consul(consul);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tmpl_funcs_free(consul);
    return 0;
}

/* Renders text with data (JSON or NULL) and env; returns the rc, fills
 * out (caller frees) and err. */
static int render(const char *text, const char *json,
                  const struct tmpl_options *opts, const struct tmpl_env *env,
                  char **out, struct nc_error *err)
{
    struct tmpl_options o = {.funcs = consul};
    if (opts)
        o = *opts;
    memset(err, 0, sizeof *err);
    *out = NULL;
    struct tmpl *t = tmpl_parse("t", text, strlen(text), &o, err);
    if (!t)
        return err->code;
    struct tmpl_arena *a = tmpl_arena_new(0);
    struct tmpl_value dot = tmpl_invalid();
    if (json)
        assert_int_equal(
            tmpl_value_from_json(a, json, strlen(json), 0, &dot, err), 0);
    struct nc_buf b = {0};
    int rc = tmpl_render(t, json ? &dot : NULL, env, &b, err);
    *out = nc_buf_take(&b);
    tmpl_arena_free(a);
    tmpl_free(t);
    return rc;
}

static char *ok(const char *text, const char *json)
{
    char *out;
    struct nc_error err;
    int rc = render(text, json, NULL, NULL, &out, &err);
    if (rc != 0)
        fail_msg("render of %s failed: %d %s", text, rc, err.msg);
    return out;
}

static void expect(const char *text, const char *json, const char *want)
{
    char *out = ok(text, json);
    assert_string_equal(out, want);
    free(out);
}

static void expect_error(const char *text, const char *json, const char *want)
{
    char *out;
    struct nc_error err;
    int rc = render(text, json, NULL, NULL, &out, &err);
    assert_true(rc < 0);
    assert_string_equal(err.msg, want);
    free(out);
}

/* ---- syntax and positions
 * ----------------------------------------------------- */

static void test_unknown_function_is_parse_error(void **state)
{
    (void)state;
    struct nc_error err = {0};
    struct tmpl_options o = {0}; /* builtins only */
    const char *text = "a\nb\n{{ foo 1 }}";
    assert_null(tmpl_parse("web.conf", text, strlen(text), &o, &err));
    assert_int_equal(err.code, -EINVAL);
    assert_string_equal(err.msg,
                        "template: web.conf:3: function \"foo\" not defined");
    /* consul-template's functions are known once added */
    text = "{{ base64Encode \"x\" }}";
    assert_null(tmpl_parse("t", text, strlen(text), &o, &err));
    o.funcs = consul;
    struct tmpl *t = tmpl_parse("t", text, strlen(text), &o, &err);
    assert_non_null(t);
    tmpl_free(t);
}

static void test_exec_error_names_line_column_and_node(void **state)
{
    (void)state;
    /* Go reports the column of a field chain's last link (.b here) */
    expect_error("ports: {{ .a.b }}", "{\"a\": 5}",
                 "template: t:1:12: executing \"t\" at <.a.b>: can't evaluate "
                 "field b in type interface {}");
    expect_error(
        "x\n  {{ index .l 3 }}", "{\"l\": [1]}",
        "template: t:2:5: executing \"t\" at <index .l 3>: error calling "
        "index: index out of range: 3");
}

static void test_output_before_error_is_kept(void **state)
{
    (void)state;
    char *out;
    struct nc_error err;
    assert_true(render("kept {{ len 1 }} lost", NULL, NULL, NULL, &out, &err) <
                0);
    assert_string_equal(out, "kept ");
    free(out);
}

static void test_delimiters_and_trim(void **state)
{
    (void)state;
    struct tmpl_options o = {
        .left_delim = "[[", .right_delim = "]]", .funcs = consul};
    char *out;
    struct nc_error err;
    assert_int_equal(
        render("a  [[- \"b\" -]]  c {{ x }}", NULL, &o, NULL, &out, &err), 0);
    assert_string_equal(out, "abc {{ x }}");
    free(out);
}

static void test_plugin_and_write_to_file_are_disabled(void **state)
{
    (void)state;
    /* Nomad's function_denylist: known names, failing when run */
    expect("{{ if false }}{{ plugin \"rm\" \"-rf\" }}{{ end }}ok", NULL, "ok");
    expect_error("{{ plugin \"rm\" \"-rf\" }}", NULL,
                 "template: t:1:3: executing \"t\" at <plugin \"rm\" \"-rf\">: "
                 "error calling plugin: function is disabled");
    expect_error(
        "{{ writeToFile \"/etc/x\" \"\" \"\" \"0644\" \"x\" }}", NULL,
        "template: t:1:3: executing \"t\" at <writeToFile \"/etc/x\" \"\" "
        "\"\" \"0644\" \"x\">: error calling writeToFile: function is "
        "disabled");
}

/* ---- dependencies
 * ------------------------------------------------------------- */

struct recorder {
    struct strlist asked;
    const char *missing; /* a key not known yet */
    const char *fails;   /* a key whose lookup fails */
};

static int lookup(void *ctx, const struct tmpl_dep *dep, struct tmpl_arena *a,
                  struct tmpl_value *out, char *why, size_t whylen)
{
    struct recorder *r = ctx;
    char *what = xasprintf("%s %s", dep->kind, dep->nargs ? dep->args[0] : "");
    strlist_add(&r->asked, what);
    free(what);
    if (dep->nargs != 1)
        return TMPL_ABSENT;
    const char *k = dep->args[0];
    if (r->missing && !strcmp(k, r->missing))
        return TMPL_MISSING;
    if (r->fails && !strcmp(k, r->fails)) {
        snprintf(why, whylen, "consul: 500 Internal Server Error");
        return -EIO;
    }
    if (!strcmp(dep->kind, "env")) {
        if (!strcmp(k, "NOMAD_UPSTREAM_ADDR_api")) {
            *out = tmpl_cstring(a, "127.0.0.1:8080");
            return 0;
        }
        if (!strcmp(k, "EMPTY")) {
            *out = tmpl_string_ref("", 0);
            return 0;
        }
        return TMPL_ABSENT;
    }
    if (!strcmp(dep->kind, "key")) {
        *out = tmpl_string(a, k, strlen(k)); /* the value is the key */
        return 0;
    }
    return TMPL_ABSENT;
}

/* A `key` function as the Consul part will register it: it asks for its
 * dependency and renders "" while it is missing. */
static int fn_key(struct tmpl_call *c, const struct tmpl_value *args, size_t n,
                  struct tmpl_value *out)
{
    (void)n;
    char *k = xstrndup(args[0].s, args[0].len);
    const char *dargs[1] = {k};
    int rc = tmpl_call_dep(c, "key", dargs, 1, out);
    free(k);
    if (rc < 0)
        return -1;
    if (rc != 0)
        *out = tmpl_string_ref("", 0);
    return 0;
}

static const struct tmpl_func key_funcs[] = {
    {"key", fn_key, 1, false, {TMPL_P_STRING}, 0},
};

static void test_dependencies_known_absent_missing(void **state)
{
    (void)state;
    struct tmpl_funcs *f = tmpl_funcs_new();
    tmpl_funcs_add_consul(f);
    tmpl_funcs_add(f, key_funcs, NC_ARRAY_LEN(key_funcs));
    struct tmpl_options o = {.funcs = f};
    struct recorder r = {.missing = "b/later"};
    struct tmpl_env env = {.lookup = lookup, .ctx = &r};
    const char *text =
        "up={{ env \"NOMAD_UPSTREAM_ADDR_api\" }} unset=[{{ env \"NOPE\" }}] "
        "dflt={{ envOrDefault \"NOPE\" \"d\" }} empty=[{{ envOrDefault "
        "\"EMPTY\" \"d\" }}] k={{ key \"a/b\" }} later=[{{ key \"b/later\" }}]";
    char *out;
    struct nc_error err;
    assert_int_equal(render(text, NULL, &o, &env, &out, &err), TMPL_MISSING);
    assert_string_equal(
        out, "up=127.0.0.1:8080 unset=[] dflt=d empty=[] k=a/b later=[]");
    free(out);
    /* every lookup reached the caller, in order */
    assert_int_equal(r.asked.n, 6);
    assert_string_equal(r.asked.items[0], "env NOMAD_UPSTREAM_ADDR_api");
    assert_string_equal(r.asked.items[4], "key a/b");
    assert_string_equal(r.asked.items[5], "key b/later");
    strlist_free(&r.asked);
    /* once known, the same template renders fully */
    r.missing = NULL;
    assert_int_equal(render(text, NULL, &o, &env, &out, &err), 0);
    assert_string_equal(out, "up=127.0.0.1:8080 unset=[] dflt=d empty=[] k=a/b "
                             "later=[b/later]");
    free(out);
    strlist_free(&r.asked);
    /* a failing lookup fails the render with the environment's words */
    r.fails = "a/b";
    assert_true(render("{{ key \"a/b\" }}", NULL, &o, &env, &out, &err) < 0);
    assert_string_equal(err.msg,
                        "template: t:1:3: executing \"t\" at <key \"a/b\">: "
                        "error calling key: consul: 500 Internal Server "
                        "Error");
    free(out);
    strlist_free(&r.asked);
    /* without an environment every dependency is absent */
    assert_int_equal(render("[{{ env \"X\" }}]", NULL, &o, NULL, &out, &err),
                     0);
    assert_string_equal(out, "[]");
    free(out);
    tmpl_funcs_free(f);
}

static void test_missing_inside_range_still_renders(void **state)
{
    (void)state;
    struct tmpl_funcs *f = tmpl_funcs_new();
    tmpl_funcs_add(f, key_funcs, NC_ARRAY_LEN(key_funcs));
    struct tmpl_options o = {.funcs = f};
    struct recorder r = {.missing = "m"};
    struct tmpl_env env = {.lookup = lookup, .ctx = &r};
    char *out;
    struct nc_error err;
    assert_int_equal(render("{{ range .l }}{{ key . }};{{ end }}",
                            "{\"l\": [\"x\", \"m\", \"y\"]}", &o, &env, &out,
                            &err),
                     TMPL_MISSING);
    assert_string_equal(out, "x;;y;");
    free(out);
    strlist_free(&r.asked);
    tmpl_funcs_free(f);
}

/* ---- objects
 * ----------------------------------------------------------------------- */

struct svc {
    const char *address;
    int port;
    const char *tags[2];
};

static const struct tmpl_object_type svc_type;

static int svc_field(const void *data, const char *name, size_t len,
                     struct tmpl_arena *a, struct tmpl_value *out)
{
    const struct svc *s = data;
    if (len == 7 && !memcmp(name, "Address", 7)) {
        *out = tmpl_string_ref(s->address, strlen(s->address));
        return 0;
    }
    if (len == 4 && !memcmp(name, "Port", 4)) {
        *out = tmpl_int(s->port);
        return 0;
    }
    if (len == 4 && !memcmp(name, "Tags", 4)) {
        *out = tmpl_list(a, 2, TMPL_ELEM_STRING);
        for (int i = 0; i < 2; i++)
            tmpl_list_items(out)[i] =
                tmpl_string_ref(s->tags[i], strlen(s->tags[i]));
        return 0;
    }
    if (len == 4 && !memcmp(name, "Self", 4)) {
        *out = tmpl_object(a, &svc_type, s);
        return 0;
    }
    return -ENOENT;
}

static void svc_format(const void *data, struct nc_buf *out)
{
    const struct svc *s = data;
    nc_buf_printf(out, "&{%s %d}", s->address, s->port);
}

static int svc_to_json(const void *data, struct tmpl_arena *a,
                       struct tmpl_value *out)
{
    const struct svc *s = data;
    *out = tmpl_map_new(a, 2, TMPL_ELEM_ANY);
    tmpl_map_put(a, out, "Port", 4, tmpl_int(s->port));
    tmpl_map_put(a, out, "Address", 7, tmpl_cstring(a, s->address));
    tmpl_map_seal(out);
    return 0;
}

static const struct tmpl_object_type svc_type = {
    .type_name = "*dependency.HealthService",
    .field = svc_field,
    .format = svc_format,
    .to_json = svc_to_json,
};

static int render_svcs(const char *text, char **out, struct nc_error *err)
{
    static const struct svc svcs[] = {
        {"10.0.0.1", 8080, {"web", "v1"}},
        {"10.0.0.2", 8081, {"web", "v2"}},
    };
    struct tmpl_options o = {.funcs = consul};
    struct tmpl *t = tmpl_parse("t", text, strlen(text), &o, err);
    assert_non_null(t);
    struct tmpl_arena *a = tmpl_arena_new(0);
    struct tmpl_value list = tmpl_list(a, 2, TMPL_ELEM_ANY);
    for (int i = 0; i < 2; i++)
        tmpl_list_items(&list)[i] = tmpl_object(a, &svc_type, &svcs[i]);
    struct tmpl_value dot = tmpl_map_new(a, 1, TMPL_ELEM_ANY);
    tmpl_map_put(a, &dot, "Services", 8, list);
    tmpl_map_seal(&dot);
    struct nc_buf b = {0};
    int rc = tmpl_render(t, &dot, NULL, &b, err);
    *out = nc_buf_take(&b);
    tmpl_arena_free(a);
    tmpl_free(t);
    return rc;
}

static void test_objects_fields_print_json(void **state)
{
    (void)state;
    char *out;
    struct nc_error err;
    assert_int_equal(
        render_svcs("{{ range .Services }}server {{ .Address }}:{{ .Port }} "
                    "{{ join \",\" .Tags }};{{ end }}",
                    &out, &err),
        0);
    assert_string_equal(
        out, "server 10.0.0.1:8080 web,v1;server 10.0.0.2:8081 web,v2;");
    free(out);
    assert_int_equal(
        render_svcs(
            "{{ index .Services 0 }} {{ (index .Services 1).Self.Port }} "
            "{{ toJSON (index .Services 0) }}",
            &out, &err),
        0);
    assert_string_equal(
        out, "&{10.0.0.1 8080} 8081 {\"Address\":\"10.0.0.1\",\"Port\":8080}");
    free(out);
    assert_true(render_svcs("{{ with index .Services 0 }}{{ .Nope }}{{ end }}",
                            &out, &err) < 0);
    assert_string_equal(
        err.msg, "template: t:1:31: executing \"t\" at <.Nope>: can't "
                 "evaluate field Nope in type *dependency.HealthService");
    free(out);
    assert_true(render_svcs("{{ len (index .Services 0) }}", &out, &err) < 0);
    assert_string_equal(err.msg,
                        "template: t:1:3: executing \"t\" at <len (index "
                        ".Services 0)>: error calling len: len of type "
                        "dependency.HealthService");
    free(out);
}

/* ---- registry and options
 * --------------------------------------------------------- */

static int fn_shout(struct tmpl_call *c, const struct tmpl_value *args,
                    size_t n, struct tmpl_value *out)
{
    (void)n;
    struct nc_buf b = {0};
    for (size_t i = 0; i < args[0].len; i++)
        nc_buf_putc(&b, (char)(args[0].s[i] & ~0x20));
    nc_buf_putc(&b, '!');
    *out = tmpl_string(tmpl_call_arena(c), b.data, b.len);
    nc_buf_free(&b);
    return 0;
}

static int fn_my_len(struct tmpl_call *c, const struct tmpl_value *args,
                     size_t n, struct tmpl_value *out)
{
    (void)c;
    (void)args;
    (void)n;
    *out = tmpl_int(-1);
    return 0;
}

static void test_registry_adds_and_overrides(void **state)
{
    (void)state;
    static const struct tmpl_func mine[] = {
        {"shout", fn_shout, 1, false, {TMPL_P_STRING}, 0},
        {"len", fn_my_len, 1, false, {TMPL_P_VALUE}, 0},
    };
    struct tmpl_funcs *f = tmpl_funcs_new();
    tmpl_funcs_add(f, mine, NC_ARRAY_LEN(mine));
    assert_non_null(tmpl_funcs_find(f, "shout", 5));
    assert_null(tmpl_funcs_find(f, "sho", 3));
    struct tmpl_options o = {.funcs = f};
    char *out;
    struct nc_error err;
    assert_int_equal(render("{{ \"hey\" | shout }} {{ len \"abc\" }}", NULL, &o,
                            NULL, &out, &err),
                     0);
    assert_string_equal(out, "HEY! -1");
    free(out);
    /* the registry's parameter types are checked as Go checks them */
    assert_true(render("{{ shout 1 }}", NULL, &o, NULL, &out, &err) < 0);
    assert_string_equal(err.msg,
                        "template: t:1:9: executing \"t\" at <1>: expected "
                        "string; found 1");
    free(out);
    tmpl_funcs_free(f);
}

static void test_missing_key_modes(void **state)
{
    (void)state;
    struct tmpl_options o = {.funcs = consul};
    char *out;
    struct nc_error err;
    const char *data = "{\"m\": {\"a\": 1}}";
    assert_int_equal(render("[{{ .m.x }}]", data, &o, NULL, &out, &err), 0);
    assert_string_equal(out, "[<no value>]");
    free(out);
    o.missing_key = TMPL_MISSINGKEY_ZERO;
    assert_int_equal(render("[{{ .m.x }}]", data, &o, NULL, &out, &err), 0);
    assert_string_equal(out, "[<no value>]");
    free(out);
    o.missing_key = TMPL_MISSINGKEY_ERROR; /* error_on_missing_key */
    assert_true(render("[{{ .m.x }}]", data, &o, NULL, &out, &err) < 0);
    /* Go's column is the last field's: .x at 6 */
    assert_string_equal(err.msg,
                        "template: t:1:6: executing \"t\" at <.m.x>: map has "
                        "no entry for key \"x\"");
    free(out);
}

static void test_timestamp_uses_env_clock(void **state)
{
    (void)state;
    struct tmpl_options o = {.funcs = consul};
    struct tmpl_env env = {.now_unix_ns = 86400LL * 1000000000LL + 5};
    char *out;
    struct nc_error err;
    assert_int_equal(
        render("{{ timestamp }} {{ timestamp \"unix\" }} {{ timestamp "
               "\"Monday 02 Jan 2006 .000000000\" }}",
               NULL, &o, &env, &out, &err),
        0);
    assert_string_equal(
        out, "1970-01-02T00:00:00Z 86400 Friday 02 Jan 1970 .000000005");
    free(out);
}

static void test_to_title(void **state)
{
    (void)state;
    /* cases.Title(language.Und, cases.NoLower): the rest of a word is kept */
    expect("{{ toTitle \"hello wORLD don't stop-now 2nd_place\" }}", NULL,
           "Hello WORLD Don't Stop-Now 2nd_place");
    expect("{{ toTitle \"élan vital\" }}", NULL, "Élan Vital");
}

/* ---- values
 * ------------------------------------------------------------------------- */

static void test_value_model(void **state)
{
    (void)state;
    struct tmpl_arena *a = tmpl_arena_new(64);
    struct tmpl_value m = tmpl_map_new(a, 1, TMPL_ELEM_ANY);
    tmpl_map_put(a, &m, "b", 1, tmpl_int(1));
    tmpl_map_put(a, &m, "a", 1, tmpl_int(2));
    tmpl_map_put(a, &m, "b", 1, tmpl_int(3)); /* the last put wins */
    tmpl_map_seal(&m);
    assert_int_equal(m.len, 2);
    assert_string_equal(m.entries[0].key, "a");
    assert_int_equal(tmpl_map_get(&m, "b", 1)->i, 3);
    assert_null(tmpl_map_get(&m, "c", 1));
    assert_string_equal(tmpl_type_name(&m), "map[string]interface {}");
    struct tmpl_value l = tmpl_list(a, 2, TMPL_ELEM_STRING);
    assert_string_equal(tmpl_type_name(&l), "[]string");
    struct tmpl_value i64 = tmpl_int64(1), u = tmpl_uint64(1),
                      f = tmpl_float(1);
    assert_string_equal(tmpl_type_name(&i64), "int64");
    assert_string_equal(tmpl_type_name(&u), "uint64");
    assert_string_equal(tmpl_type_name(&f), "float64");

    struct tmpl_value v;
    struct nc_error err = {0};
    assert_int_equal(
        tmpl_value_from_json(a, "{\"n\": 1, \"f\": 1.5, \"l\": [null]}", 31, 0,
                             &v, &err),
        0);
    assert_int_equal(tmpl_map_get(&v, "n", 1)->kind, TMPL_INT);
    assert_int_equal(tmpl_map_get(&v, "f", 1)->kind, TMPL_FLOAT);
    assert_int_equal(tmpl_map_get(&v, "l", 1)->items[0].kind, TMPL_NIL);
    assert_int_equal(tmpl_value_from_json(a, "{\"n\": 1}", 8,
                                          TMPL_JSON_GO_NUMBERS, &v, &err),
                     0);
    assert_int_equal(tmpl_map_get(&v, "n", 1)->kind, TMPL_FLOAT);
    assert_int_equal(tmpl_value_from_json(a, "[1,", 3, 0, &v, &err), -EINVAL);
    assert_string_equal(err.msg, "unexpected end of JSON input");
    assert_true(tmpl_arena_used(a) > 0);
    tmpl_arena_free(a);
}

static void test_render_many_times(void **state)
{
    (void)state;
    const char *text = "{{ range $k, $v := . }}{{ $k }}={{ $v }} {{ end }}";
    struct tmpl_options o = {.funcs = consul};
    struct nc_error err = {0};
    struct tmpl *t = tmpl_parse("t", text, strlen(text), &o, &err);
    assert_non_null(t);
    assert_true(tmpl_size(t) < 4096); /* a small template stays small */
    for (int i = 0; i < 50; i++) {
        struct tmpl_arena *a = tmpl_arena_new(0);
        struct tmpl_value dot = tmpl_map_new(a, 2, TMPL_ELEM_ANY);
        tmpl_map_put(a, &dot, "i", 1, tmpl_int(i));
        tmpl_map_put(a, &dot, "a", 1, tmpl_cstring(a, "x"));
        tmpl_map_seal(&dot);
        struct nc_buf b = {0};
        assert_int_equal(tmpl_render(t, &dot, NULL, &b, &err), 0);
        char want[64];
        snprintf(want, sizeof want, "a=x i=%d ", i);
        assert_string_equal(b.data, want);
        nc_buf_free(&b);
        tmpl_arena_free(a);
    }
    tmpl_free(t);
}

/* ---- bounds
 * ------------------------------------------------------------------------- */

static int render_limited(const char *text, const struct tmpl_limits *lim,
                          struct nc_error *err)
{
    struct tmpl_options o = {.funcs = consul, .limits = *lim};
    memset(err, 0, sizeof *err);
    struct tmpl *t = tmpl_parse("t", text, strlen(text), &o, err);
    if (!t)
        return err->code;
    struct nc_buf b = {0};
    int rc = tmpl_render(t, NULL, NULL, &b, err);
    nc_buf_free(&b);
    tmpl_free(t);
    return rc;
}

static void test_limits_output_steps_time(void **state)
{
    (void)state;
    struct nc_error err;
    struct tmpl_limits lim = {.max_output = 1000};
    assert_int_equal(
        render_limited("{{ range loop 1000 }}xx{{ end }}", &lim, &err), -E2BIG);
    assert_non_null(strstr(err.msg, "the output is larger than 1000 bytes"));
    /* a huge range is stopped by the step budget, not run to the end */
    lim = (struct tmpl_limits){.max_steps = 100000};
    assert_int_equal(
        render_limited("{{ range loop 1000000000 }}{{ end }}", &lim, &err),
        -E2BIG);
    assert_non_null(strstr(err.msg, "more than 100000 steps"));
    lim =
        (struct tmpl_limits){.max_time_ns = 20000000, .max_steps = UINT64_MAX};
    uint64_t t0 = nc_now_mono_ns();
    assert_int_equal(
        render_limited("{{ range loop 1000000000 }}{{ range loop 1000000000 }}"
                       "{{ end }}{{ end }}",
                       &lim, &err),
        -ETIMEDOUT);
    assert_true(nc_now_mono_ns() - t0 < 2000000000ull);
    assert_non_null(strstr(err.msg, "longer than 20 ms"));
    /* printf's widths are bounded by the memory budget */
    lim = (struct tmpl_limits){.max_memory = 1 << 20};
    assert_true(
        render_limited(
            "{{ range loop 100 }}{{ printf \"%10000000d\" 1 }}{{ end }}", &lim,
            &err) < 0);
    /* and so are functions that multiply their input */
    assert_true(
        render_limited(
            "{{ $s := printf \"%500000s\" \"x\" }}{{ replaceAll \"\" $s $s }}",
            &lim, &err) < 0);
    assert_non_null(strstr(err.msg, "memory"));
}

static void test_limits_nesting_recursion_text(void **state)
{
    (void)state;
    struct nc_error err;
    struct tmpl_limits lim = {0};
    struct nc_buf b = {0};
    for (int i = 0; i < 150; i++)
        nc_buf_puts(&b, "{{ if 1 }}");
    for (int i = 0; i < 150; i++)
        nc_buf_puts(&b, "{{ end }}");
    assert_int_equal(render_limited(b.data, &lim, &err), -EINVAL);
    assert_string_equal(
        err.msg, "template: t:1: nesting too deep: more than 100 levels");
    b.len = 0;
    nc_buf_puts(&b, "{{ ");
    for (int i = 0; i < 300; i++)
        nc_buf_puts(&b, "(");
    nc_buf_puts(&b, "1");
    for (int i = 0; i < 300; i++)
        nc_buf_puts(&b, ")");
    nc_buf_puts(&b, " }}");
    assert_int_equal(render_limited(b.data, &lim, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "nesting too deep"));
    /* a long else-if chain is fine */
    b.len = 0;
    nc_buf_puts(&b, "{{ if eq 1 0 }}");
    for (int i = 0; i < 500; i++)
        nc_buf_printf(&b, "{{ else if eq 1 %d }}%d", i + 2, i);
    nc_buf_puts(&b, "{{ else }}last{{ end }}");
    assert_int_equal(render_limited(b.data, &lim, &err), 0);
    nc_buf_free(&b);
    /* recursion through {{template}} */
    assert_int_equal(
        render_limited("{{ define \"r\" }}{{ template \"r\" . }}{{ end }}"
                       "{{ template \"r\" }}",
                       &lim, &err),
        -EINVAL);
    assert_non_null(strstr(err.msg, "exceeded maximum template depth (100)"));
    /* a self-referencing range through templates ends the same way */
    assert_int_equal(
        render_limited(
            "{{ define \"r\" }}{{ range loop 2 }}{{ template \"r\" }}"
            "{{ end }}{{ end }}{{ template \"r\" }}",
            &lim, &err),
        -EINVAL);
    lim.max_text = 10;
    assert_int_equal(render_limited("0123456789abc", &lim, &err), -E2BIG);
}

static void test_cyclic_value_does_not_recurse_forever(void **state)
{
    (void)state;
    struct tmpl_arena *a = tmpl_arena_new(0);
    struct tmpl_value m = tmpl_map_new(a, 2, TMPL_ELEM_ANY);
    tmpl_map_put(a, &m, "x", 1, tmpl_int(1));
    tmpl_map_put(a, &m, "self", 4, tmpl_invalid());
    tmpl_map_seal(&m);
    /* point the entry at the map itself: a value that contains itself */
    struct tmpl_value *slot = (struct tmpl_value *)tmpl_map_get(&m, "self", 4);
    *slot = m;
    struct tmpl_options o = {.funcs = consul};
    struct nc_error err = {0};
    const char *texts[] = {"{{ . }}", "{{ toJSON . }}",
                           "{{ printf \"%#v\" . }}", "{{ .self.self.self.x }}"};
    for (size_t i = 0; i < NC_ARRAY_LEN(texts); i++) {
        struct tmpl *t = tmpl_parse("t", texts[i], strlen(texts[i]), &o, &err);
        assert_non_null(t);
        struct nc_buf b = {0};
        int rc = tmpl_render(t, &m, NULL, &b, &err);
        if (i == 3)
            assert_int_equal(rc, 0);
        else
            assert_true(rc < 0);
        nc_buf_free(&b);
        tmpl_free(t);
    }
    tmpl_arena_free(a);
}

static void test_regexp_bounds(void **state)
{
    (void)state;
    /* RE2 semantics: no backtracking blow-up on a classic bad pattern */
    uint64_t t0 = nc_now_mono_ns();
    expect("{{ regexMatch \"(a*)*b\" "
           "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" }}",
           NULL, "false");
    assert_true(nc_now_mono_ns() - t0 < 1000000000ull);
    expect_error(
        "{{ regexMatch \"a{1000}{1000}\" \"a\" }}", NULL,
        "template: t:1:3: executing \"t\" at <regexMatch \"a{1000}{1000}\" "
        "\"a\">: error calling regexMatch: error parsing regexp: invalid "
        "nested repetition operator: `{1000}{1000}`");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_function_is_parse_error),
        cmocka_unit_test(test_exec_error_names_line_column_and_node),
        cmocka_unit_test(test_output_before_error_is_kept),
        cmocka_unit_test(test_delimiters_and_trim),
        cmocka_unit_test(test_plugin_and_write_to_file_are_disabled),
        cmocka_unit_test(test_dependencies_known_absent_missing),
        cmocka_unit_test(test_missing_inside_range_still_renders),
        cmocka_unit_test(test_objects_fields_print_json),
        cmocka_unit_test(test_registry_adds_and_overrides),
        cmocka_unit_test(test_missing_key_modes),
        cmocka_unit_test(test_timestamp_uses_env_clock),
        cmocka_unit_test(test_to_title),
        cmocka_unit_test(test_value_model),
        cmocka_unit_test(test_render_many_times),
        cmocka_unit_test(test_limits_output_steps_time),
        cmocka_unit_test(test_limits_nesting_recursion_text),
        cmocka_unit_test(test_cyclic_value_does_not_recurse_forever),
        cmocka_unit_test(test_regexp_bounds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
