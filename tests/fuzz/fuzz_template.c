// deps: client/template/ client/util.c
/* libFuzzer target for the template engine: the input is a template (its
 * first byte picks the delimiters and the missing-key mode), parsed with
 * consul-template's functions and rendered against fixed data that has
 * lists, maps, nulls and a value containing itself, with an environment
 * that answers, refuses and says "missing". Tight bounds, so hostile
 * templates (deep nesting, huge ranges, recursion, giant printf widths,
 * regexps) must end in an error, never a crash, a hang or a leak. Inputs
 * starting with '{' or '[' also go through the JSON reader; a first byte
 * of 0xFE makes the rest "pattern NUL replacement NUL subject" for the
 * regexp functions. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/template/template.h"

static struct tmpl_funcs *funcs;

static int lookup(void *ctx, const struct tmpl_dep *dep, struct tmpl_arena *a,
                  struct tmpl_value *out, char *why, size_t whylen)
{
    (void)ctx;
    if (dep->nargs != 1)
        return TMPL_ABSENT;
    const char *k = dep->args[0];
    switch (k[0]) {
    case 'M':
        return TMPL_MISSING;
    case 'E':
        snprintf(why, whylen, "lookup of %.40s failed", k);
        return -EIO;
    case 'A':
        return TMPL_ABSENT;
    }
    *out = tmpl_cstring(a, k);
    return 0;
}

static const char data_json[] =
    "{\"s\": \"héllo wörld\", \"n\": 42, \"f\": 2.5, \"b\": true, \"z\": null,"
    " \"l\": [1, \"two\", 3.5, null, [4, 5], {\"k\": \"v\"}],"
    " \"m\": {\"a\": 1, \"b\": {\"c\": [true, false]}, \"e\": \"\"},"
    " \"svc\": [{\"addr\": \"10.0.0.1\", \"port\": 80}, {\"addr\": \"::1\", "
    "\"port\": 443}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!funcs) {
        funcs = tmpl_funcs_new();
        tmpl_funcs_add_consul(funcs);
    }
    struct tmpl_arena *a = tmpl_arena_new(0);
    struct nc_error err = {0};
    if (size > 0 && (data[0] == '{' || data[0] == '[')) {
        struct tmpl_value v;
        if (tmpl_value_from_json(a, (const char *)data, size, 0, &v, &err) ==
            0) {
            /* print and encode what was read */
            const char *text = "{{ . }}{{ toJSONPretty . }}";
            struct tmpl_options o = {.funcs = funcs};
            struct tmpl *t = tmpl_parse("json", text, strlen(text), &o, &err);
            struct nc_buf b = {0};
            tmpl_render(t, &v, NULL, &b, &err);
            nc_buf_free(&b);
            tmpl_free(t);
        }
    }
    if (size > 0 && data[0] == 0xFE) {
        const char *p = (const char *)data + 1,
                   *end = (const char *)data + size;
        const char *z1 = memchr(p, 0, (size_t)(end - p));
        const char *z2 = z1 ? memchr(z1 + 1, 0, (size_t)(end - z1 - 1)) : NULL;
        if (z2) {
            struct tmpl_value dot = tmpl_map_new(a, 3, TMPL_ELEM_ANY);
            tmpl_map_put(a, &dot, "p", 1, tmpl_string_ref(p, (size_t)(z1 - p)));
            tmpl_map_put(a, &dot, "r", 1,
                         tmpl_string_ref(z1 + 1, (size_t)(z2 - z1 - 1)));
            tmpl_map_put(a, &dot, "s", 1,
                         tmpl_string_ref(z2 + 1, (size_t)(end - z2 - 1)));
            tmpl_map_seal(&dot);
            const char *text =
                "{{ regexMatch .p .s }}{{ regexReplaceAll .p .r .s }}";
            struct tmpl_options o = {.funcs = funcs};
            struct tmpl *t = tmpl_parse("re", text, strlen(text), &o, &err);
            struct nc_buf b = {0};
            tmpl_render(t, &dot, NULL, &b, &err);
            nc_buf_free(&b);
            tmpl_free(t);
        }
        tmpl_arena_free(a);
        return 0;
    }
    struct tmpl_options o = {.funcs = funcs};
    o.limits.max_output = 1 << 20;
    o.limits.max_memory = 16 << 20;
    o.limits.max_steps = 200000;
    o.limits.max_time_ns = 1000000000ull;
    const char *text = (const char *)data;
    if (size > 0) {
        unsigned mode = data[0];
        if (mode % 7 == 1) {
            o.left_delim = "[[";
            o.right_delim = "]]";
        }
        o.missing_key = (enum tmpl_missing_key)(mode % 3);
        text++;
        size--;
    }
    struct tmpl *t = tmpl_parse("fuzz", text, size, &o, &err);
    if (t) {
        struct tmpl_value dot;
        if (tmpl_value_from_json(a, data_json, sizeof data_json - 1, 0, &dot,
                                 &err) == 0) {
            /* a value that contains itself, as an API user could build */
            struct tmpl_value *self =
                (struct tmpl_value *)tmpl_map_get(&dot, "z", 1);
            if (self)
                *self = dot;
            struct tmpl_env env = {.lookup = lookup,
                                   .now_unix_ns = 1700000000000000000LL};
            struct nc_buf b = {0};
            tmpl_render(t, &dot, &env, &b, &err);
            nc_buf_free(&b);
        }
        tmpl_free(t);
    }
    tmpl_arena_free(a);
    return 0;
}
