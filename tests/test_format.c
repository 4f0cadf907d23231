// deps: client/format.c client/util.c
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/format.h"

static char *capture(void (*fn)(FILE *, const struct strlist *),
                     const struct strlist *rows)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(f, rows);
    fclose(f);
    return buf;
}

static void test_kv_alignment(void **state)
{
    (void)state;
    struct strlist rows = {0};
    strlist_add(&rows, "ID|abc");
    strlist_add(&rows, "Node Pool|default");
    strlist_add(&rows, "Empty|");
    char *out = capture(format_kv, &rows);
    assert_string_equal(out, "ID        = abc\n"
                             "Node Pool = default\n"
                             "Empty     = \n");
    free(out);
    strlist_free(&rows);
}

static void test_columns(void **state)
{
    (void)state;
    struct strlist rows = {0};
    strlist_add(&rows, "CPU|Memory|Disk");
    strlist_add(&rows, "0/9200 MHz|0 B/15 GiB|0 B/80 GiB");
    char *out = capture(format_columns, &rows);
    assert_string_equal(out, "CPU         Memory      Disk\n"
                             "0/9200 MHz  0 B/15 GiB  0 B/80 GiB\n");
    free(out);
    strlist_free(&rows);
}

static void test_bytes(void **state)
{
    (void)state;
    char b[32];
    format_bytes(512, b, sizeof b);
    assert_string_equal(b, "512 B");
    format_bytes(16106127360ULL, b, sizeof b);
    assert_string_equal(b, "15 GiB");
    format_bytes(1288490189ULL, b, sizeof b);
    assert_string_equal(b, "1.2 GiB");
    format_bytes(0, b, sizeof b);
    assert_string_equal(b, "0 B");
}

static void test_time(void **state)
{
    (void)state;
    char b[32];
    format_time(1700000000LL * 1000000000LL, b, sizeof b);
    assert_string_equal(b, "2023-11-14T22:13:20Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_alignment),
        cmocka_unit_test(test_columns),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
