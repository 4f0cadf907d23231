// deps: client/acl/ client/hcl/ client/util.c
/* Unit tests of client/acl/: the policy language against Nomad's
 * documented examples, the capability checks, token hashing and headers,
 * and the store (bootstrap once, hashes on disk, deletes take effect). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/acl/acl.h"

static void parse_ok(const char *src, struct acl *acl)
{
    struct acl_rules r;
    struct nc_error err = {0};
    int rc = acl_rules_parse(src, strlen(src), &r, &err);
    if (rc != 0)
        fail_msg("parse failed: %s", err.msg);
    acl_merge(acl, &r);
    acl_rules_free(&r);
}

static const char *parse_err(const char *src, struct nc_error *err)
{
    struct acl_rules r;
    int rc = acl_rules_parse(src, strlen(src), &r, err);
    acl_rules_free(&r);
    assert_int_equal(rc, -EINVAL);
    return err->msg;
}

/* The example of Nomad's ACL policy documentation (policies concept). */
static void test_documented_example(void **state)
{
    struct acl acl = {0};
    parse_ok("namespace \"default\" {\n  policy = \"read\"\n}\n"
             "namespace \"dev\" {\n  policy = \"write\"\n"
             "  capabilities = [\"alloc-exec\"]\n}\n"
             "namespace \"prod-*\" {\n  capabilities = [\"read-logs\"]\n}\n"
             "node {\n  policy = \"read\"\n}\n"
             "agent {\n  policy = \"write\"\n}\n"
             "operator {\n  policy = \"deny\"\n}\n"
             "quota {\n  policy = \"read\"\n}\n"
             "plugin {\n  policy = \"list\"\n}\n"
             "host_volume \"shared\" {\n  policy = \"write\"\n}\n",
             &acl);
    assert_true(acl_allow_ns(&acl, "default", ACL_NS_LIST_JOBS));
    assert_true(acl_allow_ns(&acl, "default", ACL_NS_READ_JOB));
    assert_false(acl_allow_ns(&acl, "default", ACL_NS_SUBMIT_JOB));
    assert_false(acl_allow_ns(&acl, "default", ACL_NS_READ_LOGS));
    assert_true(acl_allow_ns(&acl, "dev", ACL_NS_SUBMIT_JOB));
    assert_true(acl_allow_ns(&acl, "dev", ACL_NS_READ_FS));
    assert_true(acl_allow_ns(&acl, "dev", ACL_NS_ALLOC_LIFECYCLE));
    assert_false(acl_allow_ns(&acl, "dev", ACL_NS_ALLOC_NODE_EXEC));
    assert_true(acl_allow_ns(&acl, "prod-api", ACL_NS_READ_LOGS));
    assert_false(acl_allow_ns(&acl, "prod-api", ACL_NS_READ_JOB));
    assert_false(acl_allow_ns(&acl, "other", ACL_NS_LIST_JOBS));
    assert_true(acl_allow_node(&acl, ACL_LEVEL_READ));
    assert_false(acl_allow_node(&acl, ACL_LEVEL_WRITE));
    assert_true(acl_allow_agent(&acl, ACL_LEVEL_WRITE));
    assert_true(acl_allow_ns(&acl, "*", ACL_NS_SUBMIT_JOB));
    acl_free(&acl);
}

/* Nomad's expandNamespacePolicy. */
static void test_policy_expansion(void **state)
{
    uint32_t read = acl_ns_policy_expand("read");
    uint32_t write = acl_ns_policy_expand("write");
    assert_int_equal(read, ACL_NS_LIST_JOBS | ACL_NS_PARSE_JOB |
                               ACL_NS_READ_JOB | ACL_NS_CSI_LIST_VOLUME |
                               ACL_NS_CSI_READ_VOLUME |
                               ACL_NS_READ_JOB_SCALING |
                               ACL_NS_LIST_SCALING_POLICIES |
                               ACL_NS_READ_SCALING_POLICY);
    assert_int_equal(write & read, read);
    assert_true(write & ACL_NS_READ_LOGS);
    assert_true(write & ACL_NS_ALLOC_EXEC);
    assert_false(write & ACL_NS_ALLOC_NODE_EXEC);
    assert_false(write & ACL_NS_SENTINEL_OVERRIDE);
    assert_int_equal(acl_ns_policy_expand("deny"), ACL_NS_DENY);
    assert_int_equal(acl_ns_policy_expand("scale"),
                     ACL_NS_LIST_SCALING_POLICIES | ACL_NS_READ_SCALING_POLICY |
                         ACL_NS_READ_JOB_SCALING | ACL_NS_SCALE_JOB);
    assert_int_equal(acl_ns_policy_expand("sudo"), 0);
    assert_int_equal(acl_ns_cap_parse("alloc-lifecycle"), ACL_NS_ALLOC_LIFECYCLE);
    assert_int_equal(acl_ns_cap_parse("read_logs"), 0);
}

/* Deny wins over any grant, merged across policies; globs: an exact name
 * beats a glob, the closest glob beats a wider one. */
static void test_deny_and_globs(void **state)
{
    struct acl acl = {0};
    parse_ok("namespace \"*\" { policy = \"write\" }\n"
             "namespace \"prod-*\" { policy = \"read\" }\n"
             "namespace \"prod-db\" { policy = \"deny\" }\n"
             "node { policy = \"write\" }\n",
             &acl);
    parse_ok("namespace \"prod-db\" { policy = \"write\" }\n"
             "node { policy = \"deny\" }\n",
             &acl);
    assert_true(acl_allow_ns(&acl, "dev", ACL_NS_SUBMIT_JOB));
    assert_true(acl_allow_ns(&acl, "prod-web", ACL_NS_READ_JOB));
    assert_false(acl_allow_ns(&acl, "prod-web", ACL_NS_SUBMIT_JOB));
    assert_false(acl_allow_ns(&acl, "prod-db", ACL_NS_READ_JOB));
    assert_false(acl_allow_node(&acl, ACL_LEVEL_READ));
    assert_false(acl_allow_agent(&acl, ACL_LEVEL_READ));
    acl_free(&acl);

    struct acl m = {.management = true};
    assert_true(acl_allow_ns(&m, "anything", ACL_NS_ALLOC_NODE_EXEC));
    assert_true(acl_allow_node(&m, ACL_LEVEL_WRITE));
    struct acl none = {0};
    assert_false(acl_allow_ns(&none, "default", ACL_NS_LIST_JOBS));
    assert_false(acl_allow_agent(&none, ACL_LEVEL_READ));
}

static void test_parse_errors(void **state)
{
    struct nc_error err = {0};
    assert_non_null(strstr(parse_err("namespace \"x\" { policy = \"sudo\" }", &err),
                           "policy:1:17: Invalid namespace policy"));
    assert_non_null(strstr(parse_err("namespace \"x\" {\n capabilities = [\"read-job\", \"fly\"]\n}", &err),
                           "policy:2:30: Invalid namespace capability 'fly'"));
    assert_non_null(strstr(parse_err("namespace \"a b\" { policy = \"read\" }", &err),
                           "Invalid namespace name"));
    assert_non_null(strstr(parse_err("node { policy = \"list\" }", &err),
                           "Invalid node policy"));
    assert_non_null(strstr(parse_err("agent { }", &err), "Invalid agent policy"));
    assert_non_null(strstr(parse_err("", &err), "Invalid policy"));
    assert_non_null(strstr(parse_err("namespace { policy = \"read\" }", &err),
                           "one name label"));
    assert_non_null(strstr(parse_err("namespace \"x\" {", &err),
                           "Failed to parse ACL Policy"));
    assert_non_null(strstr(parse_err("frobnicate { }", &err), "unknown block"));
    assert_non_null(strstr(parse_err("policy = \"read\"", &err), "expected a block"));
}

static void test_hash_and_headers(void **state)
{
    char h[65];
    acl_hash_secret("", h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    acl_hash_secret("abc", h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* two blocks (56 bytes: the padding spills over) */
    acl_hash_secret("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    assert_true(acl_secret_equal("abc", "abc"));
    assert_false(acl_secret_equal("abc", "abd"));
    assert_false(acl_secret_equal("abc", "abcd"));
    assert_true(acl_is_uuid("0b9e4c1d-5c4f-4f8a-9d3e-2a1b3c4d5e6f"));
    assert_false(acl_is_uuid("0b9e4c1d-5c4f-4f8a-9d3e-2a1b3c4d5e6"));
    assert_false(acl_is_uuid("0b9e4c1d-5c4f-4f8a-9d3e-2a1b3c4d5e6fa"));
    assert_false(acl_is_uuid("0b9e4c1dx5c4f-4f8a-9d3e-2a1b3c4d5e6f"));

    char out[64];
    acl_token_from_headers("  tok  ", "Bearer other", out, sizeof(out));
    assert_string_equal(out, "tok");
    acl_token_from_headers(NULL, "Bearer abc", out, sizeof(out));
    assert_string_equal(out, "abc");
    acl_token_from_headers("", "bearer   abc def", out, sizeof(out));
    assert_string_equal(out, "abc");
    acl_token_from_headers(NULL, "Basic abc", out, sizeof(out));
    assert_string_equal(out, "");
    acl_token_from_headers(NULL, "Bearer", out, sizeof(out));
    assert_string_equal(out, "");
    acl_token_from_headers(NULL, NULL, out, sizeof(out));
    assert_string_equal(out, "");
    char small[8];
    acl_token_from_headers("0123456789", NULL, small, sizeof(small));
    assert_string_equal(small, "0123456");
}

static void test_store(void **state)
{
    char dir[] = "/tmp/test_acl.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct acl_store *s;
    struct nc_error err = {0};
    assert_int_equal(acl_store_open(&s, dir, &err), 0);
    const struct acl *acl;
    assert_int_equal(acl_store_resolve(s, "", &acl, NULL), ACL_RESOLVED);
    assert_false(acl_allow_ns(acl, "default", ACL_NS_LIST_JOBS));
    assert_int_equal(acl_store_resolve(s, "nope", &acl, NULL), ACL_TOKEN_INVALID);

    const struct acl_token *t;
    char secret[37];
    assert_int_equal(acl_store_bootstrap(s, NULL, &t, secret, &err), 0);
    assert_true(t->management);
    assert_int_equal(acl_store_bootstrap(s, NULL, &t, secret, &err), -EEXIST);
    assert_string_equal(err.msg, "ACL bootstrap already done (reset index: 1)");

    assert_int_equal(acl_store_policy_upsert(s, "r", "d", "namespace \"default\" { policy = \"read\" }", &err), 0);
    assert_int_equal(acl_store_policy_upsert(s, "bad name", "", "node { policy = \"read\" }", &err), -EINVAL);
    struct acl_token want = {.name = "x"};
    assert_int_equal(acl_store_token_create(s, &want, &t, secret, &err), -EINVAL);
    assert_string_equal(err.msg, "client token missing policies or roles");
    strlist_add(&want.policies, "missing");
    assert_int_equal(acl_store_token_create(s, &want, &t, secret, &err), -EINVAL);
    strlist_free(&want.policies);
    strlist_add(&want.policies, "r");
    assert_int_equal(acl_store_token_create(s, &want, &t, secret, &err), 0);
    strlist_free(&want.policies);
    char accessor[37];
    memcpy(accessor, t->accessor_id, 37);
    assert_int_equal(acl_store_resolve(s, secret, &acl, &t), ACL_RESOLVED);
    assert_true(acl_allow_ns(acl, "default", ACL_NS_READ_JOB));

    /* reopened: the same tokens, no secret on disk */
    acl_store_free(s);
    assert_int_equal(acl_store_open(&s, dir, &err), 0);
    assert_int_equal(acl_store_resolve(s, secret, &acl, &t), ACL_RESOLVED);
    assert_true(acl_store_bootstrapped(s));
    char *path = xasprintf("%s/tokens.json", dir);
    char *text = nc_read_file(path, NULL, 1 << 20);
    assert_non_null(text);
    assert_null(strstr(text, secret));
    free(text);

    /* policy gone: no grant; token gone: not found */
    assert_int_equal(acl_store_policy_delete(s, "r", &err), 0);
    assert_int_equal(acl_store_resolve(s, secret, &acl, &t), ACL_RESOLVED);
    assert_false(acl_allow_ns(acl, "default", ACL_NS_READ_JOB));
    assert_int_equal(acl_store_token_delete(s, accessor, &err), 0);
    assert_int_equal(acl_store_resolve(s, secret, &acl, &t), ACL_TOKEN_NOT_FOUND);
    assert_int_equal(acl_store_token_delete(s, accessor, &err), -ENOENT);
    acl_store_free(s);
    unlink(path);
    free(path);
    path = xasprintf("%s/policies.json", dir);
    unlink(path);
    free(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documented_example),
        cmocka_unit_test(test_policy_expansion),
        cmocka_unit_test(test_deny_and_globs),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_hash_and_headers),
        cmocka_unit_test(test_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
