// deps: client/alloc/artifact_get.c client/job/ client/hcl/ client/util.c
/* Artifacts' pieces: checksum specs as Nomad validates them and digests
 * as go-getter compares them, the URL with options in its query, the
 * archive types, the sources refused, entry path safety, and unpacking
 * that refuses "..", absolute paths, symlinks and writing through a
 * symlink already in the task dir. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/alloc/internal.h"

static char err[1200];

static void test_checksum_parse(void **state)
{
    (void)state;
    struct artifact_checksum c;
    assert_int_equal(
        artifact_checksum_parse(" md5:d41d8cd98f00b204e9800998ecf8427e ", &c,
                                err, sizeof(err)),
        0);
    assert_string_equal(c.type, "md5");
    assert_int_equal(c.len, 16);
    assert_int_equal(c.digest[0], 0xd4);
    assert_int_equal(
        artifact_checksum_parse("sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
                                &c, err, sizeof(err)),
        0);
    assert_int_equal(c.len, 20);
    assert_int_equal(artifact_checksum_parse("", &c, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "checksum value cannot be empty");
    assert_int_equal(artifact_checksum_parse("abcd", &c, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(
        err, "checksum must be given as \"type:value\"; got \"abcd\"");
    assert_int_equal(
        artifact_checksum_parse("crc32:abcd", &c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "unsupported checksum type: crc32");
    assert_int_equal(
        artifact_checksum_parse("sha256:abcd", &c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "invalid sha256 checksum: abcd");
    assert_int_equal(
        artifact_checksum_parse("md5:zz1d8cd98f00b204e9800998ecf8427e", &c, err,
                                sizeof(err)),
        -EINVAL);
    assert_int_equal(artifact_checksum_parse("a:b:c", &c, err, sizeof(err)),
                     -EINVAL);
}

static void test_checksum_verify(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
    } ok[] = {
        {"md5:900150983cd24fb0d6963f7d28e17f72"},
        {"sha1:a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"sha256:"
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"sha512:"
         "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
         "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct artifact_checksum c;
        assert_int_equal(
            artifact_checksum_parse(ok[i].spec, &c, err, sizeof(err)), 0);
        assert_int_equal(
            artifact_checksum_verify(&c, "abc", 3, "f", err, sizeof(err)), 0);
        assert_int_equal(
            artifact_checksum_verify(&c, "abd", 3, "/x/f", err, sizeof(err)),
            -EBADMSG);
        assert_non_null(
            strstr(err, "Checksums did not match for /x/f.\nExpected: "));
    }
}

static void test_url(void **state)
{
    (void)state;
    struct artifact_url u;
    struct kvlist o = {0};
    kv_set(&o, "checksum", "sha1:a9993e364706816aba3e25717850c26c9cd0d89d");
    kv_set(&o, "ref", "a b&c");
    assert_int_equal(artifact_url("https://h:8/d/app.tar.gz?x=1&ref=old", &o,
                                  &u, err, sizeof(err)),
                     0);
    assert_string_equal(u.url, "https://h:8/d/app.tar.gz?x=1&ref=a%20b%26c");
    assert_string_equal(u.path, "/d/app.tar.gz");
    assert_string_equal(u.type, "tar.gz");
    assert_true(u.has_sum);
    artifact_url_free(&u);
    kv_free(&o);
    /* checksum and archive from the source's query, taken out of it */
    assert_int_equal(
        artifact_url("http://h/"
                     "f.bin?checksum=md5%3A900150983cd24fb0d6963f7d28e17f72&"
                     "archive=false",
                     NULL, &u, err, sizeof(err)),
        0);
    assert_string_equal(u.url, "http://h/f.bin");
    assert_string_equal(u.sum.type, "md5");
    assert_string_equal(u.type, "");
    artifact_url_free(&u);
    kv_set(&o, "archive", "rar");
    assert_int_equal(artifact_url("http://h/f", &o, &u, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "unsupported archive type: rar");
    kv_free(&o);
    kv_set(&o, "checksum", "sha256:abcd");
    assert_int_equal(artifact_url("http://h/f", &o, &u, err, sizeof(err)),
                     -EINVAL);
    kv_free(&o);
    assert_int_equal(artifact_url("h?x=://a/b.gz%", NULL, &u, err, sizeof(err)), 0);
    assert_string_equal(u.path, "/");
    assert_string_equal(u.url, "h?x=://a/b.gz%");
    artifact_url_free(&u);
    assert_string_equal(artifact_archive_type("/a/b.tgz"), "tgz");
    assert_string_equal(artifact_archive_type("/a/b.tar.zst"), "tar.zst");
    assert_string_equal(artifact_archive_type("/a/b.gz"), "gz");
    assert_string_equal(artifact_archive_type("/a/b.txt"), "");
    assert_string_equal(artifact_archive_type("/a/bgz"), "");
}

static void test_sources(void **state)
{
    (void)state;
    assert_true(artifact_source_supported("http://x/y", err, sizeof(err)));
    assert_true(artifact_source_supported("https://x/y", err, sizeof(err)));
    assert_false(
        artifact_source_supported("git::https://x/y", err, sizeof(err)));
    assert_non_null(strstr(err, "a forced getter source is not supported"));
    assert_false(
        artifact_source_supported("git@github.com:h/n.git", err, sizeof(err)));
    assert_non_null(strstr(err, "a git source"));
    assert_false(artifact_source_supported("s3://bucket/k", err, sizeof(err)));
    assert_non_null(strstr(err, "an S3 bucket source"));
    assert_false(artifact_source_supported("gcs://bucket/k", err, sizeof(err)));
    assert_false(artifact_source_supported("/etc/passwd", err, sizeof(err)));
    assert_false(
        artifact_source_supported("file:///etc/passwd", err, sizeof(err)));
}

static void test_paths(void **state)
{
    (void)state;
    assert_true(artifact_entry_safe("a/b/c"));
    assert_true(artifact_entry_safe("./a..b/c"));
    assert_false(artifact_entry_safe("../a"));
    assert_false(artifact_entry_safe("a/../../b"));
    assert_false(artifact_entry_safe("a/.."));
    assert_false(artifact_entry_safe("/etc/passwd"));
    assert_false(artifact_entry_safe(""));
    assert_false(artifact_entry_safe(NULL));
    assert_false(jobspec_path_escapes_alloc("local/"));
    assert_false(jobspec_path_escapes_alloc("../alloc/data"));
    assert_false(jobspec_path_escapes_alloc("/local/x"));
    assert_false(jobspec_path_escapes_alloc(".."));
    assert_true(jobspec_path_escapes_alloc("../.."));
    assert_true(jobspec_path_escapes_alloc("a/../../../b"));
}

/* A ustar archive in memory: NAME -> data, or a symlink to TARGET. */
static size_t tar_entry(unsigned char *out, const char *name, char type,
                        const char *body, const char *target)
{
    memset(out, 0, 512);
    snprintf((char *)out, 100, "%s", name);
    snprintf((char *)out + 100, 8, "%07o", 0755);
    snprintf((char *)out + 108, 8, "%07o", 0);
    snprintf((char *)out + 116, 8, "%07o", 0);
    size_t len = body ? strlen(body) : 0;
    snprintf((char *)out + 124, 12, "%011o", (unsigned)(len & 07777777));
    snprintf((char *)out + 136, 12, "%011o", 0);
    out[156] = (unsigned char)type;
    if (target)
        snprintf((char *)out + 157, 100, "%s", target);
    memcpy(out + 257, "ustar", 6);
    memcpy(out + 263, "00", 2);
    memset(out + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += out[i];
    snprintf((char *)out + 148, 8, "%06o", sum);
    size_t n = 512;
    if (len) {
        memset(out + 512, 0, (len + 511) / 512 * 512);
        memcpy(out + 512, body, len);
        n += (len + 511) / 512 * 512;
    }
    return n;
}

static char dir[] = "/tmp/test_artifact.XXXXXX";
static int dfd = -1;

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    dfd = open(dir, O_RDONLY | O_DIRECTORY);
    return dfd < 0;
}

static int teardown(void **state)
{
    (void)state;
    close(dfd);
    char *cmd = xasprintf("rm -rf '%s'", dir);
    int r = system(cmd);
    free(cmd);
    return r != 0;
}

static int unpack(const char *rel, const unsigned char *buf, size_t n)
{
    return artifact_unpack(dfd, rel, buf, n, "tar", false, err, sizeof(err));
}

/* Unpacks a one-entry tar into rel. */
static int unpack_one(const char *rel, const char *name, char type,
                      const char *body, const char *target)
{
    static unsigned char one[4096];
    size_t n = tar_entry(one, name, type, body, target);
    memset(one + n, 0, 1024);
    return unpack(rel, one, n + 1024);
}

static void test_unpack(void **state)
{
    (void)state;
    static unsigned char buf[16384];
    assert_int_equal(unpack_one("t/local", "bin/app", '0', "#!/bin/sh\n", NULL),
                     0);
    struct stat st;
    char *p = xasprintf("%s/t/local/bin/app", dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0755);
    free(p);

    size_t n = tar_entry(buf, "ok", '0', "x", NULL);
    n += tar_entry(buf + n, "../../escape", '0', "x", NULL);
    memset(buf + n, 0, 1024);
    assert_int_equal(unpack("t/local", buf, n + 1024), -EPERM);
    assert_string_equal(
        err,
        "archive entry \"../../escape\" escapes the destination directory");
    p = xasprintf("%s/escape", dir);
    assert_int_not_equal(access(p, F_OK), 0);
    free(p);

    assert_int_equal(unpack_one("t/local", "/abs", '0', "x", NULL), -EPERM);
    assert_int_equal(unpack_one("t/local", "lnk", '2', NULL, "/etc"), -EPERM);
    assert_string_equal(
        err, "archive entry \"lnk\": copying of symlinks has been disabled");

    /* a symlink the task left in its dir is not followed */
    p = xasprintf("%s/t/local/out", dir);
    assert_int_equal(symlink(dir, p), 0);
    free(p);
    assert_int_equal(unpack_one("t/local", "out/pwned", '0', "x", NULL),
                     -ELOOP);
    assert_int_equal(unpack_one("t/local/out", "pwned", '0', "x", NULL),
                     -ELOOP);
    n = tar_entry(buf, "pwned", '0', "x", NULL);
    assert_int_equal(
        artifact_save_file(dfd, "t/local/out/f", "x", 1, err, sizeof(err)),
        -ELOOP);
    assert_int_equal(
        artifact_save_file(dfd, "t/local/out", "x", 1, err, sizeof(err)),
        -ELOOP);
    p = xasprintf("%s/pwned", dir);
    assert_int_not_equal(access(p, F_OK), 0);
    free(p);

    /* garbage is an error, not a crash */
    assert_int_equal(artifact_unpack(dfd, "t/local", "garbage", 7, "tar.gz",
                                     false, err, sizeof(err)),
                     -EINVAL);
    /* a tar cannot be one file */
    assert_int_equal(artifact_unpack(dfd, "t/local/f", buf, n, "tar", true, err,
                                     sizeof(err)),
                     -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksum_parse),
        cmocka_unit_test(test_checksum_verify),
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_sources),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_unpack),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
