// deps: client/drivers/caps.c client/util.c
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/drivers/internal.h"

/* "a b c" -> list (NULL for NULL) */
static struct strlist *list(struct strlist *l, const char *words)
{
    memset(l, 0, sizeof(*l));
    if (!words)
        return NULL;
    char *copy = xstrdup(words), *save = NULL;
    for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save))
        strlist_add(l, w);
    free(copy);
    return l;
}

static char *joined(const struct strlist *l)
{
    struct nc_buf b = {0};
    for (size_t i = 0; i < l->n; i++)
        nc_buf_printf(&b, "%s%s", i ? " " : "", l->items[i]);
    return b.data ? b.data : xstrdup("");
}

/* Runs one case; returns the result as "CAP_A CAP_B" or "error: msg". */
static char *calc(const char *allow, const char *add, const char *drop)
{
    struct strlist la, ld, lr, out = {0};
    struct strlist *pa = list(&la, allow);
    list(&ld, add);
    list(&lr, drop);
    char msg[512] = "";
    int r = caps_calculate(pa, &ld, &lr, &out, msg, sizeof(msg));
    char *s = r < 0 ? xasprintf("error: %s", msg) : joined(&out);
    strlist_free(&la);
    strlist_free(&ld);
    strlist_free(&lr);
    strlist_free(&out);
    return s;
}

static void expect(const char *allow, const char *add, const char *drop,
                   const char *want)
{
    char *got = calc(allow, add, drop);
    assert_string_equal(got, want);
    free(got);
}

#define DEFAULTS                                                               \
    "CAP_AUDIT_WRITE CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_FSETID "        \
    "CAP_KILL CAP_MKNOD CAP_NET_BIND_SERVICE CAP_SETFCAP CAP_SETGID "          \
    "CAP_SETPCAP CAP_SETUID CAP_SYS_CHROOT"

/* Nomad's own cases for its exec driver (drivers/shared/capabilities) */
static void test_nomad_cases(void **state)
{
    (void)state;
    expect(NULL, NULL, NULL, DEFAULTS);
    expect("all", NULL, NULL, DEFAULTS); /* the basis is still the defaults */
    expect("cap_net_raw chown SYS_TIME", NULL, NULL, "CAP_CHOWN");
    expect("cap_net_raw chown SYS_TIME", "net_raw sys_time", NULL,
           "CAP_CHOWN CAP_NET_RAW CAP_SYS_TIME");
    expect(NULL, "chown KILL", NULL, DEFAULTS);
    expect(NULL, "chown net_raw", NULL,
           "error: driver does not allow the following capabilities: net_raw");
    expect(NULL, "sys_admin net_raw", NULL,
           "error: driver does not allow the following capabilities: "
           "net_raw, sys_admin");
    expect(NULL, NULL, "chown fowner CAP_KILL SYS_CHROOT mknod dac_override",
           "CAP_AUDIT_WRITE CAP_FSETID CAP_NET_BIND_SERVICE CAP_SETFCAP "
           "CAP_SETGID CAP_SETPCAP CAP_SETUID");
    expect(NULL, NULL, "all", "");
    expect(NULL, "chown fowner", "all", "CAP_CHOWN CAP_FOWNER");
    expect("all", "sys_time", "all", "CAP_SYS_TIME");
}

static void test_bad_names(void **state)
{
    (void)state;
    expect(NULL, "no_such_cap", NULL,
           "error: cap_add: unknown capability \"no_such_cap\"");
    expect(NULL, NULL, "chown;rm", "error: cap_drop: unknown capability "
                                   "\"chown;rm\"");
    expect("", NULL, NULL, ""); /* allow_caps = []: none at all */
    expect("", "chown", NULL,
           "error: driver does not allow the following capabilities: chown");
    expect("chown bogus", NULL, NULL,
           "error: allow_caps: unknown capability \"bogus\"");
    uint64_t m = 0;
    assert_int_equal(caps_parse("CAP_", &m), -EINVAL);
    assert_int_equal(caps_parse(NULL, &m), -EINVAL);
    assert_int_equal(caps_parse("Net_Admin", &m), 0);
    assert_int_equal(m, (uint64_t)1 << 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nomad_cases),
        cmocka_unit_test(test_bad_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
