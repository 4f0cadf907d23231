// deps: client/util.c
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/util.h"

static void test_duration_parse(void **state)
{
    (void)state;
    int64_t ns;
    assert_int_equal(nc_parse_duration("10s", &ns), 0);
    assert_true(ns == 10000000000LL);
    assert_int_equal(nc_parse_duration("1h30m", &ns), 0);
    assert_true(ns == 5400000000000LL);
    assert_int_equal(nc_parse_duration("250ms", &ns), 0);
    assert_true(ns == 250000000LL);
    assert_int_equal(nc_parse_duration("1.5s", &ns), 0);
    assert_true(ns == 1500000000LL);
    assert_int_equal(nc_parse_duration("0", &ns), 0);
    assert_true(ns == 0);
    assert_int_equal(nc_parse_duration("10", &ns), -EINVAL);
    assert_int_equal(nc_parse_duration("", &ns), -EINVAL);
    assert_int_equal(nc_parse_duration("s", &ns), -EINVAL);
    assert_int_equal(nc_parse_duration("10x", &ns), -EINVAL);
    assert_int_equal(nc_parse_duration("99999999999h", &ns), -ERANGE);
}

static void test_duration_format(void **state)
{
    (void)state;
    char b[64];
    nc_format_duration(90000000000LL, b, sizeof b);
    assert_string_equal(b, "1m30s");
    nc_format_duration(3600000000000LL, b, sizeof b);
    assert_string_equal(b, "1h0m0s");
    nc_format_duration(2000000000LL, b, sizeof b);
    assert_string_equal(b, "2s");
    nc_format_duration(250000000LL, b, sizeof b);
    assert_string_equal(b, "250ms");
    nc_format_duration(0, b, sizeof b);
    assert_string_equal(b, "0s");
}

static void test_kvlist(void **state)
{
    (void)state;
    struct kvlist l = {0};
    kv_set(&l, "b", "1");
    kv_set(&l, "a", "2");
    kv_set(&l, "b", "3");
    assert_int_equal(l.n, 2);
    assert_string_equal(kv_get(&l, "b"), "3");
    kv_sort(&l);
    assert_string_equal(l.items[0].key, "a");
    assert_true(kv_remove(&l, "a"));
    assert_null(kv_get(&l, "a"));
    kv_free(&l);
}

static void test_atomic_write(void **state)
{
    (void)state;
    char dir[] = "/tmp/nc-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *sub = xasprintf("%s/a/b", dir);
    assert_int_equal(nc_mkdir_p(sub, 0700), 0);
    char *path = xasprintf("%s/f.json", sub);
    assert_int_equal(nc_write_file_atomic(path, "hello", 5, 0600), 0);
    size_t len;
    char *data = nc_read_file(path, &len, 0);
    assert_non_null(data);
    assert_int_equal(len, 5);
    assert_string_equal(data, "hello");
    free(data);
    assert_null(nc_read_file(path, &len, 3));
    assert_int_equal(errno, EFBIG);
    char *cmd = xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(path);
    free(sub);
}

static void test_uuid(void **state)
{
    (void)state;
    char a[37], b[37];
    nc_uuid(a);
    nc_uuid(b);
    assert_int_equal(strlen(a), 36);
    assert_true(a[14] == '4');
    assert_string_not_equal(a, b);
}

static void test_time_format(void **state)
{
    (void)state;
    char buf[64];
    nc_format_time(0, buf, sizeof(buf));
    assert_string_equal(buf, "0001-01-01T00:00:00Z");
    int64_t t = 1795550000123456789LL;
    nc_format_time(t, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-24T19:53:20.123456789Z");
    int64_t back;
    assert_int_equal(nc_parse_time(buf, &back), 0);
    assert_true(back == t);
    assert_int_equal(nc_parse_time("2026-11-24T19:53:20Z", &back), 0);
    assert_true(back == 1795550000LL * 1000000000LL);
    assert_int_equal(nc_parse_time("0001-01-01T00:00:00Z", &back), 0);
    assert_true(back == 0);
    assert_int_equal(nc_parse_time("2026-11-24 13:53", &back), -EINVAL);
    assert_int_equal(nc_parse_time("2026-11-24T19:53:20+01:00", &back), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_duration_format),
        cmocka_unit_test(test_kvlist),
        cmocka_unit_test(test_atomic_write),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_time_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
