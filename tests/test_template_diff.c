// deps: client/template/ client/util.c
/* The differential test: every case of the tests/template/corpus files is
 * rendered by the C engine and by Go's text/template (tests/template/
 * gorender, built here with Debian's golang-go into the build directory),
 * and the two must agree byte for byte: output, kind (ok, missing, error)
 * and error text. Skipped with a message when go is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/template/template.h"

static char build_dir[PATH_MAX];

struct tcase {
    char *name;
    struct kvlist env;
    struct strlist missing;
    char *missingkey, *left, *right;
    char *data;
    char *text;
    size_t len;
};

struct corpus {
    struct tcase *cases;
    size_t n, cap;
};

static void corpus_free(struct corpus *c)
{
    for (size_t i = 0; i < c->n; i++) {
        struct tcase *t = &c->cases[i];
        free(t->name);
        kv_free(&t->env);
        strlist_free(&t->missing);
        free(t->missingkey);
        free(t->left);
        free(t->right);
        free(t->data);
        free(t->text);
    }
    free(c->cases);
}

/* The corpus format that gorender reads too (see its comment). */
static int corpus_load(const char *path, struct corpus *c)
{
    size_t len;
    char *raw = nc_read_file(path, &len, 0);
    if (!raw)
        return -errno;
    struct tcase *cur = NULL;
    bool in_body = false;
    struct nc_buf body = {0};
    bool first_body_line = true;
    char *p = raw, *end = raw + len;
    if (len > 0 && raw[len - 1] == '\n')
        end--; /* the file's last newline ends the last line */
    while (p <= end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        size_t ll = (size_t)(le - p);
        if (ll >= 4 && memcmp(p, "### ", 4) == 0) {
            if (cur) {
                cur->len = body.len;
                cur->text = nc_buf_take(&body);
            }
            nc_grow((void **)&c->cases, &c->cap, c->n + 1, sizeof *c->cases);
            cur = &c->cases[c->n++];
            memset(cur, 0, sizeof *cur);
            char *nm = xstrndup(p + 4, ll - 4);
            size_t k = strlen(nm);
            while (k && (nm[k - 1] == ' ' || nm[k - 1] == '\r'))
                nm[--k] = 0;
            cur->name = nm;
            in_body = false;
            first_body_line = true;
            nc_buf_free(&body);
        } else if (cur) {
            if (!in_body && ll > 5 && memcmp(p, "#opt ", 5) == 0) {
                char *kvs = xstrndup(p + 5, ll - 5);
                char *eq = strchr(kvs, '=');
                if (eq) {
                    *eq = 0;
                    const char *v = eq + 1;
                    if (!strcmp(kvs, "env")) {
                        char *e2 = strchr(v, '=');
                        if (e2) {
                            *e2 = 0;
                            kv_set(&cur->env, v, e2 + 1);
                        }
                    } else if (!strcmp(kvs, "missing")) {
                        strlist_add(&cur->missing, v);
                    } else if (!strcmp(kvs, "missingkey")) {
                        cur->missingkey = xstrdup(v);
                    } else if (!strcmp(kvs, "left")) {
                        cur->left = xstrdup(v);
                    } else if (!strcmp(kvs, "right")) {
                        cur->right = xstrdup(v);
                    }
                }
                free(kvs);
            } else if (!in_body && ll > 6 && memcmp(p, "#data ", 6) == 0) {
                cur->data = xstrndup(p + 6, ll - 6);
            } else {
                in_body = true;
                if (!first_body_line)
                    nc_buf_putc(&body, '\n');
                nc_buf_append(&body, p, ll);
                first_body_line = false;
            }
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    if (cur) {
        cur->len = body.len;
        cur->text = nc_buf_take(&body);
    } else {
        nc_buf_free(&body);
    }
    free(raw);
    return 0;
}

struct env_ctx {
    const struct tcase *tc;
};

static int env_lookup(void *ctx, const struct tmpl_dep *dep,
                      struct tmpl_arena *a, struct tmpl_value *out, char *why,
                      size_t whylen)
{
    const struct tcase *tc = ((struct env_ctx *)ctx)->tc;
    if (strcmp(dep->kind, "env") != 0 || dep->nargs != 1) {
        snprintf(why, whylen, "unknown dependency %s", dep->kind);
        return -ENOENT;
    }
    if (strlist_contains(&tc->missing, dep->args[0]))
        return TMPL_MISSING;
    const char *v = kv_get(&tc->env, dep->args[0]);
    if (!v)
        return TMPL_ABSENT;
    *out = tmpl_cstring(a, v);
    return 0;
}

struct result {
    char kind[16];
    struct nc_buf out, err;
};

static void render_c(const struct tcase *tc, const struct tmpl_funcs *funcs,
                     struct result *r)
{
    memset(r, 0, sizeof *r);
    struct tmpl_options o = {
        .left_delim = tc->left, .right_delim = tc->right, .funcs = funcs};
    if (tc->missingkey && !strcmp(tc->missingkey, "zero"))
        o.missing_key = TMPL_MISSINGKEY_ZERO;
    if (tc->missingkey && !strcmp(tc->missingkey, "error"))
        o.missing_key = TMPL_MISSINGKEY_ERROR;
    struct nc_error err = {0};
    nc_buf_append(&r->out, "", 0);
    nc_buf_append(&r->err, "", 0);
    struct tmpl_arena *a = tmpl_arena_new(0);
    struct tmpl_value dot = tmpl_invalid();
    if (tc->data && tmpl_value_from_json(a, tc->data, strlen(tc->data), 0, &dot,
                                         &err) < 0) {
        strcpy(r->kind, "error");
        nc_buf_printf(&r->err, "bad data: %s", err.msg);
        tmpl_arena_free(a);
        return;
    }
    struct tmpl *t = tmpl_parse(tc->name, tc->text, tc->len, &o, &err);
    if (!t) {
        strcpy(r->kind, "error");
        nc_buf_puts(&r->err, err.msg);
        tmpl_arena_free(a);
        return;
    }
    struct env_ctx ctx = {tc};
    struct tmpl_env env = {.lookup = env_lookup,
                           .ctx = &ctx,
                           .now_unix_ns = 1709622489123456789LL};
    int rc = tmpl_render(t, tc->data ? &dot : NULL, &env, &r->out, &err);
    if (rc < 0) {
        strcpy(r->kind, "error");
        nc_buf_puts(&r->err, err.msg);
    } else {
        strcpy(r->kind, rc == TMPL_MISSING ? "missing" : "ok");
    }
    tmpl_free(t);
    tmpl_arena_free(a);
}

static bool find_go(char *out, size_t len)
{
    const char *candidates[] = {"/usr/bin/go", "/usr/lib/go/bin/go",
                                "/usr/local/go/bin/go"};
    for (size_t i = 0; i < NC_ARRAY_LEN(candidates); i++)
        if (access(candidates[i], X_OK) == 0) {
            snprintf(out, len, "%s", candidates[i]);
            return true;
        }
    return false;
}

/* Reads a whole pipe. */
static char *run_capture(const char *cmd, size_t *len)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return NULL;
    struct nc_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        nc_buf_append(&b, chunk, n);
    int st = pclose(f);
    if (st != 0) {
        nc_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    if (!b.data)
        nc_buf_append(&b, "", 0);
    return nc_buf_take(&b);
}

static const char *gorender_path(void)
{
    static char path[PATH_MAX + 32];
    static int built = -1;
    if (built >= 0)
        return built ? path : NULL;
    char go[PATH_MAX];
    if (!find_go(go, sizeof go)) {
        built = 0;
        return NULL;
    }
    snprintf(path, sizeof path, "%s/gorender", build_dir);
    char cmd[8 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "cd template/gorender && GOCACHE='%s/gocache' GOPATH='%s/gopath' "
             "GOFLAGS= GO111MODULE=off "
             "'%s' build -o '%s' main.go",
             build_dir, build_dir, go, path);
    built = system(cmd) == 0;
    return built ? path : NULL;
}

static void show(const char *what, const char *s, size_t n)
{
    struct nc_buf b = {0};
    for (size_t i = 0; i < n && i < 600; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            nc_buf_puts(&b, "\\n");
        else if (c < 0x20 || c >= 0x7f)
            nc_buf_printf(&b, "\\x%02x", c);
        else
            nc_buf_putc(&b, (char)c);
    }
    printf("      %s: %s\n", what, b.data ? b.data : "");
    nc_buf_free(&b);
}

static void test_corpus_matches_go(void **state)
{
    (void)state;
    const char *gorender = gorender_path();
    if (!gorender) {
        printf("skipped: go (Debian's golang-go) is not installed or gorender "
               "did not build\n");
        skip();
    }
    struct tmpl_funcs *funcs = tmpl_funcs_new();
    tmpl_funcs_add_consul(funcs);
    DIR *d = opendir("template/corpus");
    assert_non_null(d);
    struct strlist files = {0};
    struct dirent *e;
    while ((e = readdir(d)))
        if (nc_str_has_suffix(e->d_name, ".tmpl")) {
            char *p = xasprintf("template/corpus/%s", e->d_name);
            strlist_add(&files, p);
            free(p);
        }
    closedir(d);
    size_t total = 0, same = 0, errors = 0;
    for (size_t f = 0; f < files.n; f++) {
        struct corpus c = {0};
        assert_int_equal(corpus_load(files.items[f], &c), 0);
        char cmd[2 * PATH_MAX];
        snprintf(cmd, sizeof cmd, "'%s' '%s'", gorender, files.items[f]);
        size_t glen;
        char *gout = run_capture(cmd, &glen);
        assert_non_null(gout);
        const char *p = gout, *end = gout + glen;
        for (size_t i = 0; i < c.n; i++) {
            const struct tcase *tc = &c.cases[i];
            char name[700], kind[16];
            size_t olen, elen;
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            assert_non_null(nl);
            char header[700];
            snprintf(header, sizeof header, "%.*s", (int)(nl - p), p);
            char *tab1 = strchr(header, '\t');
            assert_non_null(tab1);
            *tab1 = 0;
            snprintf(name, sizeof name, "%s", header);
            assert_int_equal(
                sscanf(tab1 + 1, "%15s %zu %zu", kind, &olen, &elen), 3);
            p = nl + 1;
            const char *gobody = p, *goerr = p + olen;
            p += olen + elen;
            assert_string_equal(name, tc->name);
            struct result r;
            render_c(tc, funcs, &r);
            total++;
            if (!strcmp(kind, "error"))
                errors++;
            bool eq = !strcmp(kind, r.kind) && olen == r.out.len &&
                      !memcmp(gobody, r.out.data, olen) && elen == r.err.len &&
                      !memcmp(goerr, r.err.data, elen);
            if (eq) {
                same++;
            } else {
                printf("  DIFF %s (%s)\n", tc->name, files.items[f]);
                printf("      kind: go %s, c %s\n", kind, r.kind);
                show("go out", gobody, olen);
                show("c  out", r.out.data, r.out.len);
                show("go err", goerr, elen);
                show("c  err", r.err.data, r.err.len);
            }
            nc_buf_free(&r.out);
            nc_buf_free(&r.err);
        }
        free(gout);
        corpus_free(&c);
    }
    strlist_free(&files);
    tmpl_funcs_free(funcs);
    printf("corpus: %zu cases (%zu error cases), %zu identical to Go's, %zu "
           "differ\n",
           total, errors, same, total - same);
    assert_true(total >= 150);
    assert_int_equal(same, total);
}

int main(int argc, char **argv)
{
    char self[PATH_MAX];
    snprintf(self, sizeof self, "%s", argc > 0 ? argv[0] : "./x");
    snprintf(build_dir, sizeof build_dir, "%s", dirname(self));
    if (build_dir[0] != '/') {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd)) {
            char tmp[PATH_MAX];
            snprintf(tmp, sizeof tmp, "%.2000s/%.2000s", cwd, build_dir);
            snprintf(build_dir, sizeof build_dir, "%s", tmp);
        }
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_matches_go),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
