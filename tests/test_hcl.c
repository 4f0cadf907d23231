// deps: client/hcl/ client/util.c
/* Tests for the HCL2 parser: every seed job, each syntax feature, and the
 * exact file:line:col messages for bad input. Run with cwd = tests/. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/hcl/hcl.h"

static struct hcl_file *parse_ok(const char *src)
{
    struct hcl_file *f = NULL;
    struct nc_error err = {0};
    int r = hcl_parse("t.hcl", src, strlen(src), &f, &err);
    if (r < 0)
        fail_msg("unexpected error: %s", err.msg);
    return f;
}

static void expect_error(const char *src, const char *msg)
{
    struct hcl_file *f = NULL;
    struct nc_error err = {0};
    if (hcl_parse("t.hcl", src, strlen(src), &f, &err) != -EINVAL) {
        hcl_file_free(f);
        fail_msg("parsed without error: %s", src);
    }
    assert_null(f);
    assert_string_equal(err.msg, msg);
}

static char *dump_attr(const struct hcl_body *b, const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i].type == HCL_ATTRIBUTE && strcmp(b->items[i].name, name) == 0)
            return hcl_value_to_string(b->items[i].value);
    return NULL;
}

static void test_seed_files(void **state)
{
    (void)state;
    const char *files[] = {"data/jobs/platform.nomad", "data/jobs/secrets.nomad",
                           "data/jobs/service-mesh.nomad",
                           "data/jobs/custom-scheduler.nomad",
                           "data/jobs/full.nomad", "../contrib/agent.hcl"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct hcl_file *f = NULL;
        struct nc_error err = {0};
        if (hcl_parse_file(files[i], &f, &err) < 0)
            fail_msg("%s: %s", files[i], err.msg);
        assert_true(f->body->n > 0);
        hcl_file_free(f);
    }
}

static void test_values(void **state)
{
    (void)state;
    struct hcl_file *f = parse_ok(
        "# comment\n"
        "a = \"x\\ty\\u00e9 ${attr.cpu.arch} ${lookup(var.m, \\\"k\\\")}\"\n"
        "b = 42 // trailing\n"
        "c = -1.5e3\n"
        "d = [1, \"two\",\n  true, null,\n]\n"
        "e = { k = 1, \"q\": \"v\"\n  n = [] }\n"
        "f = var.x[0]\n"
        "g = $${literal}\n"
        "h = \"$${literal}\"\n"
        "/* block\n comment */\n"
        "i = false\n");
    struct hcl_body *b = f->body;
    char *s;
    s = dump_attr(b, "a");
    assert_string_equal(s, "\"x\\ty\xc3\xa9 ${attr.cpu.arch} ${lookup(var.m, \\\"k\\\")}\"");
    free(s);
    assert_true(b->items[1].value->is_integer);
    assert_int_equal(b->items[1].value->integer, 42);
    assert_true(b->items[2].value->number == -1500.0);
    assert_false(b->items[2].value->is_integer);
    s = dump_attr(b, "d");
    assert_string_equal(s, "[1, \"two\", true, null]");
    free(s);
    s = dump_attr(b, "e");
    assert_string_equal(s, "{\"k\": 1, \"q\": \"v\", \"n\": []}");
    free(s);
    s = dump_attr(b, "f");
    assert_string_equal(s, "expr(var.x[0])");
    free(s);
    s = dump_attr(b, "h");
    assert_string_equal(s, "\"${literal}\"");
    free(s);
    s = dump_attr(b, "i");
    assert_string_equal(s, "false");
    free(s);
    assert_int_equal(b->items[2].pos.line, 4);
    assert_int_equal(b->items[2].value->pos.col, 5);
    hcl_file_free(f);
}

static void test_blocks_and_heredocs(void **state)
{
    (void)state;
    struct hcl_file *f = parse_ok(
        "job \"web\" {\n"
        "  group api { count = 2 }\n"
        "  template {\n"
        "    data = <<EOF\n"
        "  keep indent\n"
        "EOF\n"
        "    other = <<-EOT\n"
        "      line one\n"
        "        line two\n"
        "      EOT\n"
        "  }\n"
        "  a \"b\" \"c\" {}\n"
        "}\n");
    struct hcl_item *job = &f->body->items[0];
    assert_int_equal(job->type, HCL_BLOCK);
    assert_int_equal(job->nlabels, 1);
    assert_string_equal(job->labels[0], "web");
    struct hcl_item *grp = &job->body->items[0];
    assert_string_equal(grp->labels[0], "api");
    assert_int_equal(grp->body->items[0].value->integer, 2);
    struct hcl_body *tmpl = job->body->items[1].body;
    assert_string_equal(tmpl->items[0].value->str, "  keep indent\n");
    assert_string_equal(tmpl->items[1].value->str, "line one\n  line two\n");
    assert_int_equal(job->body->items[2].nlabels, 2);
    assert_int_equal(job->body->items[2].pos.line, 12);
    assert_int_equal(job->body->items[2].pos.col, 3);
    hcl_file_free(f);
    f = parse_ok("");
    assert_int_equal(f->body->n, 0);
    hcl_file_free(f);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("a = \"abc\n", "t.hcl:1:5: unterminated string");
    expect_error("job \"x\" {\n  a = 1\n", "t.hcl:1:9: missing closing \"}\" for block \"job\" opened here");
    expect_error("}\n", "t.hcl:1:1: unexpected \"}\"");
    expect_error("foo bar\n", "t.hcl:1:8: expected \"{\" to open block \"foo\", found newline");
    expect_error("foo\n", "t.hcl:1:4: expected \"=\" or \"{\" after \"foo\", found newline");
    expect_error("a = \"\\q\"\n", "t.hcl:1:6: invalid escape \"\\q\"");
    expect_error("a = <<EOF\nno end\n", "t.hcl:1:5: unterminated heredoc; expected \"EOF\"");
    expect_error("a = \"x\" \"y\"\n", "t.hcl:1:9: expected a newline after attribute \"a\", found \"\"\"");
}

#define SINGLE_ONE "Invalid single-argument block definition; A single-line " \
    "block definition must end with a closing brace immediately after its " \
    "single argument definition."
#define SINGLE_MANY "Invalid single-argument block definition; Single-line " \
    "block syntax can include only one argument definition. To define " \
    "multiple arguments, use the multi-line block syntax with one argument " \
    "definition per line."

/* A block opened and filled on one line holds one argument: the message
 * says so (hcl/v2's words) and points at the second argument. */
static void test_single_line_blocks(void **state)
{
    (void)state;
    expect_error("host_volume \"x\" { path = \"/a\"  read_only = true }\n",
                 "t.hcl:1:32: " SINGLE_ONE);
    expect_error("job \"j\" {\n  group \"g\" {\n"
                 "    volume \"v\" { type = \"host\" source = [\"a\",\n"
                 "\"b\"] }\n  }\n}\n",
                 "t.hcl:3:32: " SINGLE_ONE);
    /* a number or an expression does not swallow the next argument */
    expect_error("resources { cpu = 500  memory = 256 }\n",
                 "t.hcl:1:24: " SINGLE_ONE);
    expect_error("r { cpu = var.c memory = 256 }\n", "t.hcl:1:17: " SINGLE_ONE);
    expect_error("a { x = 1, y = 2 }\n", "t.hcl:1:12: " SINGLE_MANY);
    expect_error("a { x = 1, y = 2, z = 3 }\n", "t.hcl:1:12: " SINGLE_MANY);
    expect_error("a { x = 1, }\n", "t.hcl:1:10: " SINGLE_MANY);
    expect_error("a { x = \"s\" b { } }\n", "t.hcl:1:13: " SINGLE_ONE);
    /* a multi-line block keeps the newline rule */
    expect_error("a {\n  x = 1 y = 2\n}\n",
                 "t.hcl:2:9: expected a newline after attribute \"x\", found "
                 "\"y\"");
    expect_error("a { /* c */\n  x = 1 y = 2\n}\n",
                 "t.hcl:2:9: expected a newline after attribute \"x\", found "
                 "\"y\"");
    /* one argument on one line is fine, comparisons too */
    struct hcl_file *f = parse_ok("host_volume \"x\" { path = \"/a\" }\n"
                                  "b { }\n"
                                  "c { x = a == b }\n"
                                  "d = 1 <= var.n\n");
    assert_int_equal(f->body->items[0].body->n, 1);
    char *s = dump_attr(f->body->items[2].body, "x");
    assert_string_equal(s, "expr(a == b)");
    free(s);
    s = dump_attr(f->body, "d");
    assert_string_equal(s, "expr(1 <= var.n)");
    free(s);
    hcl_file_free(f);
}

/* Numbers become strings as hcl/v2 (cty's big.Float Text('f', -1)) makes
 * them: plain decimal, shortest exact digits, whatever was written. */
static void test_number_text(void **state)
{
    (void)state;
    static const struct {
        const char *src, *want;
    } cases[] = {
        {"1e3", "1000"},
        {"1.50", "1.5"},
        {"0.1", "0.1"},
        {"1e-7", "0.0000001"},
        {"-0", "0"},
        {"0.000", "0"},
        {"-0e5", "0"},
        {"42", "42"},
        {"-7", "-7"},
        {"007", "7"},
        {"12345678901234567890", "12345678901234567890"},
        {"1.25E+2", "125"},
        {"-1.5e3", "-1500"},
        {"123.456e-2", "1.23456"},
        {"100e-2", "1"},
        {"0.5e1", "5"},
        {"2.50e-1", "0.25"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char src[64];
        snprintf(src, sizeof(src), "n = %s\n", cases[i].src);
        struct hcl_file *f = parse_ok(src);
        assert_int_equal(f->body->items[0].value->kind, HCL_NUMBER);
        char *text = hcl_number_text(f->body->items[0].value);
        if (!text || strcmp(text, cases[i].want) != 0)
            fail_msg("%s: got %s, want %s", cases[i].src,
                     text ? text : "NULL", cases[i].want);
        free(text);
        hcl_file_free(f);
    }

    /* 1.5e300: every digit, no exponent */
    struct hcl_file *f = parse_ok("n = 1.5e300\n");
    char *text = hcl_number_text(f->body->items[0].value);
    assert_non_null(text);
    assert_int_equal(strlen(text), 301);
    assert_memory_equal(text, "15000", 5);
    assert_int_equal(strspn(text + 2, "0"), 299);
    free(text);
    hcl_file_free(f);

    /* a text longer than HCL_NUMBER_TEXT_MAX is refused, not built */
    f = parse_ok("n = 1e999999999999\nm = 1e-5000\n");
    assert_null(hcl_number_text(f->body->items[0].value));
    assert_null(hcl_number_text(f->body->items[1].value));
    hcl_file_free(f);
    assert_null(hcl_number_text(NULL));
}

static void test_hostile(void **state)
{
    (void)state;
    char deep[400];
    memset(deep, '[', sizeof(deep) - 1);
    deep[sizeof(deep) - 1] = '\0';
    char *src = NULL;
    size_t n = strlen(deep) + 5;
    src = malloc(n + 1);
    snprintf(src, n + 1, "a = %s", deep);
    struct hcl_file *f = NULL;
    struct nc_error err = {0};
    assert_int_equal(hcl_parse("t.hcl", src, strlen(src), &f, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "nesting too deep"));
    free(src);
    struct hcl_file *g = NULL;
    assert_int_equal(hcl_parse("t.hcl", "a = 1\n\0", 7, &g, &err), -EINVAL);
    assert_string_equal(err.msg, "t.hcl:2:1: NUL byte in file");
    assert_int_equal(hcl_parse("t.hcl", "a = \"\xff\"", 7, &g, &err), -EINVAL);
    assert_string_equal(err.msg, "t.hcl:1:6: invalid UTF-8");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_files),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_blocks_and_heredocs),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_single_line_blocks),
        cmocka_unit_test(test_number_text),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
