// deps: client/alloc/template_deps.c client/alloc/alloc.c client/job/
// deps: client/hcl/ client/util.c
/* A task's templates, the pure pieces: where sources and destinations land
 * (Nomad's ClientPath: relative to the task dir, ${NOMAD_*_DIR}
 * interpolated, escapes refused), go-envparse's reading of env = true
 * files, and the "Missing: ..." list. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/alloc/internal.h"

#define TASK "/data/alloc/A1/web"
#define SHARED "/data/alloc/A1/alloc"

static struct kvlist env_of(void)
{
    struct kvlist e = {0};
    kv_set(&e, "NOMAD_TASK_DIR", TASK "/local");
    kv_set(&e, "NOMAD_SECRETS_DIR", TASK "/secrets");
    kv_set(&e, "NOMAD_ALLOC_DIR", SHARED);
    kv_set(&e, "NOMAD_META_d", "../../x");
    return e;
}

static void dest_ok(const char *raw, bool join, const char *want)
{
    struct kvlist e = env_of();
    char *out = NULL;
    int r = template_path(raw, &e, NULL, TASK, SHARED, join, &out);
    if (r != 0)
        fail_msg("%s: refused (%d)", raw, r);
    assert_string_equal(out, want);
    free(out);
    kv_free(&e);
}

static void dest_refused(const char *raw, bool join)
{
    struct kvlist e = env_of();
    char *out = (char *)"x";
    int r = template_path(raw, &e, NULL, TASK, SHARED, join, &out);
    if (r != -EPERM)
        fail_msg("%s: accepted as %s", raw, out ? out : "(null)");
    assert_null(out);
    kv_free(&e);
}

static void test_destinations(void **state)
{
    (void)state;
    dest_ok("local/nginx.conf", true, TASK "/local/nginx.conf");
    dest_ok("secrets/config.env", true, TASK "/secrets/config.env");
    dest_ok("./local//a/../b.txt", true, TASK "/local/b.txt");
    dest_ok("${NOMAD_TASK_DIR}/x.conf", true, TASK "/local/x.conf");
    dest_ok("${NOMAD_SECRETS_DIR}/s", true, TASK "/secrets/s");
    dest_ok("${NOMAD_ALLOC_DIR}/shared.txt", true, SHARED "/shared.txt");
    dest_ok("../alloc/x", true, SHARED "/x");
    /* an absolute path outside is joined to the task dir (destinations) */
    dest_ok("/etc/app.conf", true, TASK "/etc/app.conf");
    dest_ok(TASK "/local/abs", true, TASK "/local/abs");
    /* escapes */
    dest_refused("../../escaped", true);
    dest_refused("../other-task/x", true);
    /* an absolute one that escapes is joined too: Nomad's sandbox */
    dest_ok("${NOMAD_ALLOC_DIR}/../../x", true, TASK "/data/alloc/x");
    dest_refused("${NOMAD_META_d}", true); /* interpolated to ../../x */
    dest_refused("local/../../..", true);
    dest_refused("../alloc-evil/x", true); /* a prefix is not a parent */
    /* sources: an absolute path stays absolute, then is checked */
    dest_ok("tmpl/a.tpl", false, TASK "/tmpl/a.tpl");
    dest_refused("/etc/passwd", false);
    dest_ok(SHARED "/a.tpl", false, SHARED "/a.tpl");
}

static void env_ok(const char *text, const char *const *kv, size_t n)
{
    struct kvlist out = {0};
    char err[256] = "";
    int r = template_env_parse(text, strlen(text), &out, err, sizeof(err));
    if (r != 0)
        fail_msg("%s: %s", text, err);
    assert_int_equal(out.n, n / 2);
    for (size_t i = 0; i < n; i += 2) {
        const char *v = kv_get(&out, kv[i]);
        if (!v)
            fail_msg("%s: no %s", text, kv[i]);
        assert_string_equal(v, kv[i + 1]);
    }
    kv_free(&out);
}

static void env_bad(const char *text, const char *want)
{
    struct kvlist out = {0};
    char err[256] = "";
    int r = template_env_parse(text, strlen(text), &out, err, sizeof(err));
    assert_int_equal(r, -EINVAL);
    if (!strstr(err, want))
        fail_msg("%s: error %s, want %s", text, err, want);
    kv_free(&out);
}

static void test_env_file(void **state)
{
    (void)state;
    static const char *const a[] = {"A", "1", "B", "two words", "C", ""};
    env_ok("A=1\nB=two words  \nC=\n", a, NC_ARRAY_LEN(a));
    static const char *const b[] = {"X", "y"};
    env_ok("# comment\n\n   export X=y # trailing\n", b, NC_ARRAY_LEN(b));
    static const char *const c[] = {"Q", "a \"b\" $c\n\td", "S", "lit\\n $x"};
    env_ok("Q=\"a \\\"b\\\" \\$c\\n\\td\"\nS='lit\\n $x'\n", c,
           NC_ARRAY_LEN(c));
    static const char *const d[] = {"M", "line1\nline2", "U", "\xc3\xa9"};
    env_ok("M=\"line1\nline2\"\nU=\"\\u00e9\"\n", d, NC_ARRAY_LEN(d));
    static const char *const e[] = {"K", "a#b", "_k9", "v", "E", "x=y"};
    env_ok("K=a#b\n_k9 = v\r\nE=x=y", e, NC_ARRAY_LEN(e));
    static const char *const f[] = {"A", "2"}; /* the last one wins */
    env_ok("A=1\nA=2\n", f, NC_ARRAY_LEN(f));
    static const char *const g[] = {"P", "a b"};
    env_ok("P=a\\ b\n", g, NC_ARRAY_LEN(g));
    env_ok("", NULL, 0);

    env_bad("9A=1\n", "line 1: invalid key");
    env_bad("A=1\nnovalue\n", "line 2: expected '='");
    env_bad("A=\"open\n", "unterminated double-quoted");
    env_bad("A='open", "unterminated single-quoted");
    env_bad("A=\"x\" y\n", "unexpected text after the value");
    env_bad("A=\"\\q\"\n", "invalid escape \\q");
    env_bad("A=b\"c\n", "unexpected quote");
    env_bad("export=1\nA-B=1\n", "line 2: expected '='");
}

static void test_missing_text(void **state)
{
    (void)state;
    struct strlist l = {0};
    char *t = template_missing_text(&l);
    assert_string_equal(t, "");
    free(t);
    strlist_add(&l, "kv.block(b)");
    strlist_add(&l, "health.service(web)");
    strlist_add(&l, "kv.block(b)");
    t = template_missing_text(&l);
    assert_string_equal(t, "health.service(web), kv.block(b)");
    free(t);
    strlist_add(&l, "kv.block(a)");
    strlist_add(&l, "kv.list(z)");
    strlist_add(&l, "nomad.service(x)");
    t = template_missing_text(&l);
    /* Nomad shows 3, then "and N more" */
    assert_string_equal(t, "health.service(web), kv.block(a), kv.block(b), "
                           "and 2 more");
    free(t);
    strlist_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_destinations),
        cmocka_unit_test(test_env_file),
        cmocka_unit_test(test_missing_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
