// deps: client/template/ client/util.c
/* bench_template: ns per render of each case of a corpus file (the format
 * of tests/template/corpus, see tests/template/gorender/main.go), each
 * template parsed once and rendered N times, as gorender -bench does for
 * Go's text/template. Prints "name\tns\tbytes\theld" per case: held is
 * what the parsed template keeps beyond its text.
 *
 *   bench_template N corpus-file */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/template/template.h"

struct bcase {
    char *name, *data;
    struct kvlist env;
    struct nc_buf text;
};

static int env_lookup(void *ctx, const struct tmpl_dep *dep,
                      struct tmpl_arena *a, struct tmpl_value *out, char *why,
                      size_t whylen)
{
    (void)a;
    (void)why;
    (void)whylen;
    const struct bcase *c = ctx;
    if (strcmp(dep->kind, "env") || dep->nargs != 1)
        return TMPL_ABSENT;
    const char *v = kv_get(&c->env, dep->args[0]);
    if (!v)
        return TMPL_ABSENT;
    *out = tmpl_string_ref(v, strlen(v)); /* the case outlives the render */
    return 0;
}

/* Vault's secret, as a stand-in with the shape the seed jobs read. */
static int fn_secret(struct tmpl_call *c, const struct tmpl_value *args,
                     size_t n, struct tmpl_value *out)
{
    (void)args;
    (void)n;
    struct tmpl_arena *a = tmpl_call_arena(c);
    static const char *const kv[][2] = {{"username", "app"},
                                        {"password", "s3cret"},
                                        {"access_key", "AKIA123"},
                                        {"secret_key", "abc/def"}};
    struct tmpl_value d = tmpl_map_new(a, 4, TMPL_ELEM_ANY);
    for (size_t i = 0; i < 4; i++)
        tmpl_map_put(a, &d, kv[i][0], strlen(kv[i][0]),
                     tmpl_string_ref(kv[i][1], strlen(kv[i][1])));
    tmpl_map_seal(&d);
    *out = tmpl_map_new(a, 1, TMPL_ELEM_ANY);
    tmpl_map_put(a, out, "Data", 4, d);
    tmpl_map_seal(out);
    return 0;
}

static const struct tmpl_func bench_funcs[] = {
    {"secret", fn_secret, 1, true, {TMPL_P_STRING}, 0},
};

static void run(struct bcase *c, long n, const struct tmpl_funcs *funcs)
{
    struct tmpl_options o = {.funcs = funcs,
                             .missing_key = TMPL_MISSINGKEY_ZERO};
    struct nc_error err = {0};
    struct tmpl *t = tmpl_parse(c->name, c->text.data ? c->text.data : "",
                                c->text.len, &o, &err);
    if (!t) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    struct tmpl_arena *a = tmpl_arena_new(0);
    struct tmpl_value dot = tmpl_invalid();
    if (c->data &&
        tmpl_value_from_json(a, c->data, strlen(c->data), 0, &dot, &err) < 0) {
        fprintf(stderr, "%s: %s\n", c->name, err.msg);
        exit(1);
    }
    struct tmpl_env env = {.lookup = env_lookup, .ctx = c};
    struct nc_buf b = {0};
    for (long i = 0; i < n / 10 + 1; i++) {
        b.len = 0;
        tmpl_render(t, c->data ? &dot : NULL, &env, &b, &err);
    }
    uint64_t t0 = nc_now_mono_ns();
    for (long i = 0; i < n; i++) {
        b.len = 0;
        if (tmpl_render(t, c->data ? &dot : NULL, &env, &b, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            exit(1);
        }
    }
    double ns = (double)(nc_now_mono_ns() - t0) / (double)n;
    printf("%s\t%.0f\t%zu\t%zu\n", c->name, ns, b.len,
           tmpl_size(t) - c->text.len);
    nc_buf_free(&b);
    tmpl_arena_free(a);
    tmpl_free(t);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_template N corpus-file\n");
        return 2;
    }
    long n = atol(argv[1]);
    size_t len;
    char *raw = nc_read_file(argv[2], &len, 0);
    if (!raw || n <= 0) {
        fprintf(stderr, "bench_template: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    struct tmpl_funcs *funcs = tmpl_funcs_new();
    tmpl_funcs_add_consul(funcs);
    tmpl_funcs_add(funcs, bench_funcs, NC_ARRAY_LEN(bench_funcs));
    struct bcase cur = {0};
    bool have = false, body = false, first = true;
    if (len && raw[len - 1] == '\n')
        raw[--len] = 0;
    for (char *line = raw, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        if (!strncmp(line, "### ", 4)) {
            if (have)
                run(&cur, n, funcs);
            free(cur.name);
            free(cur.data);
            kv_free(&cur.env);
            nc_buf_free(&cur.text);
            memset(&cur, 0, sizeof cur);
            cur.name = xstrdup(line + 4);
            have = true;
            body = false;
            first = true;
        } else if (have && !body && !strncmp(line, "#opt env=", 9)) {
            char *eq = strchr(line + 9, '=');
            if (eq) {
                *eq = 0;
                kv_set(&cur.env, line + 9, eq + 1);
            }
        } else if (have && !body && !strncmp(line, "#data ", 6)) {
            cur.data = xstrdup(line + 6);
        } else if (have && !(!body && !strncmp(line, "#opt ", 5))) {
            body = true;
            if (!first)
                nc_buf_putc(&cur.text, '\n');
            nc_buf_puts(&cur.text, line);
            first = false;
        }
    }
    if (have)
        run(&cur, n, funcs);
    free(cur.name);
    free(cur.data);
    kv_free(&cur.env);
    nc_buf_free(&cur.text);
    tmpl_funcs_free(funcs);
    free(raw);
    return 0;
}
