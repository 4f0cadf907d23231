// deps: volumes/volumes.c volumes/path.c volumes/bind.c volumes/mounts.c
/* volumes/ without mounting anything: the catalogue, mountinfo parsing and
 * resolving paths inside a root (symlinks confined), each resolve test run
 * with openat2 and with the forced component walk. Mount tests, which need
 * root, are in test_volumes_mount.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "volumes/vol_internal.h"
#include "volumes/volumes.h"

/* ---- catalogue ----------------------------------------------------------- */

static void test_catalog_add_find(void **state)
{
    (void)state;
    struct vol_catalog cat = {0};
    char err[256];
    assert_int_equal(
        vol_catalog_add(&cat, "pg", "/srv/pg", false, err, sizeof err), 0);
    assert_int_equal(
        vol_catalog_add(&cat, "certs", "/etc/ssl", true, err, sizeof err), 0);
    assert_int_equal(
        vol_catalog_add(&cat, "pg", "/srv/other", false, err, sizeof err),
        -EEXIST);
    assert_string_equal(err, "host_volume \"pg\" is declared twice");
    assert_int_equal(
        vol_catalog_add(&cat, "rel", "srv/x", false, err, sizeof err), -EINVAL);
    assert_string_equal(err,
                        "host_volume \"rel\": path \"srv/x\" must be absolute");
    assert_int_equal(vol_catalog_add(&cat, "", "/x", false, NULL, 0), -EINVAL);
    assert_int_equal(cat.nvolumes, 2);

    const struct vol_host_volume *v = vol_catalog_find(&cat, "certs");
    assert_non_null(v);
    assert_string_equal(v->path, "/etc/ssl");
    assert_true(v->read_only);
    assert_null(vol_catalog_find(&cat, "nope"));
    assert_null(vol_catalog_find(NULL, "pg"));

    vol_catalog_free(&cat);
    assert_null(cat.volumes);
    assert_int_equal(cat.nvolumes, 0);
    vol_catalog_free(&cat);
    vol_catalog_free(NULL);
}

static void test_check_request_undeclared(void **state)
{
    (void)state;
    struct vol_catalog cat = {0};
    char err[512];
    assert_int_equal(vol_catalog_add(&cat, "data", "/tmp", false, NULL, 0), 0);
    struct vol_resolved out = {0};
    assert_int_equal(vol_check_request(&cat, "data", "pg", false, false, &out,
                                       err, sizeof err),
                     -ENOENT);
    assert_string_equal(err, "missing compatible host volumes: volume \"data\" "
                             "requests host volume \"pg\" which is not "
                             "declared in the agent config (client { "
                             "host_volume \"pg\" { ... } })");
    assert_null(out.volume);
    /* Without an alias, and with an empty catalogue. */
    struct vol_catalog empty = {0};
    assert_int_equal(vol_check_request(&empty, NULL, "pg", true, true, NULL,
                                       err, sizeof err),
                     -ENOENT);
    assert_non_null(strstr(err, "host volume \"pg\" which is not declared"));
    assert_int_equal(
        vol_check_request(&cat, "x", "", false, false, NULL, err, sizeof err),
        -EINVAL);
    assert_int_equal(
        vol_check_request(&cat, "x", NULL, false, false, NULL, err, sizeof err),
        -EINVAL);
    vol_catalog_free(&cat);
}

static void test_check_request_path_missing(void **state)
{
    (void)state;
    struct vol_catalog cat = {0};
    char err[512];
    assert_int_equal(vol_catalog_add(&cat, "pg", "/nonexistent/nomclient/pg",
                                     false, NULL, 0),
                     0);
    assert_int_equal(vol_check_request(&cat, "data", "pg", false, false, NULL,
                                       err, sizeof err),
                     -ENOENT);
    assert_string_equal(err, "missing compatible host volumes: volume \"data\" "
                             "requests host volume \"pg\", declared with path "
                             "\"/nonexistent/nomclient/pg\", which cannot be "
                             "used: No such file or directory");
    vol_catalog_free(&cat);
}

static void test_check_request_read_only(void **state)
{
    (void)state;
    struct vol_catalog cat = {0};
    char err[512];
    assert_int_equal(vol_catalog_add(&cat, "rw", "/tmp", false, NULL, 0), 0);
    assert_int_equal(vol_catalog_add(&cat, "ro", "/tmp", true, NULL, 0), 0);
    struct vol_resolved out;

    /* A read-only host volume serves read-only requests only. */
    assert_int_equal(
        vol_check_request(&cat, "d", "ro", false, false, &out, err, sizeof err),
        -EROFS);
    assert_non_null(strstr(err, "missing compatible host volumes: volume "
                                "\"d\" requests host volume \"ro\" "
                                "read-write, but the agent config declares "
                                "it read_only"));
    assert_int_equal(
        vol_check_request(&cat, "d", "ro", false, true, &out, err, sizeof err),
        -EROFS);
    assert_int_equal(
        vol_check_request(&cat, "d", "ro", true, false, &out, err, sizeof err),
        0);
    assert_true(out.read_only);
    assert_string_equal(out.source_path, "/tmp");
    assert_string_equal(out.volume->name, "ro");

    /* Read-only from either side of the job. */
    const struct {
        bool group_ro, mount_ro, want;
    } cases[] = {
        {false, false, false},
        {true, false, true},
        {false, true, true},
        {true, true, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(vol_check_request(&cat, "d", "rw", cases[i].group_ro,
                                           cases[i].mount_ro, &out, err,
                                           sizeof err),
                         0);
        assert_int_equal(out.read_only, cases[i].want);
    }
    vol_catalog_free(&cat);
}

/* ---- mountinfo ----------------------------------------------------------- */

static const char sample_mountinfo[] =
    "22 27 0:21 / /proc rw,relatime shared:13 - proc proc rw\n"
    "27 1 254:0 / / rw,relatime shared:1 master:2 - ext4 /dev/vda "
    "rw,discard\n"
    "40 27 0:40 / /var/lib/nomclient/alloc/a1/web/secrets rw,nosuid,nodev "
    "- tmpfs tmpfs rw,size=1024k\n"
    "41 27 254:0 /srv/my\\040data /var/lib/nomclient/alloc/a1/web/my\\040dir "
    "ro,nosuid,nodev,relatime - ext4 /dev/vda rw\n"
    "42 41 0:41 / /var/lib/nomclient/alloc/a1/web/my\\040dir/sub\\011tab "
    "rw - tmpfs tmpfs rw\n"
    "43 27 0:42 / /var/lib/nomclient/alloc/a1/web/secrets rw - tmpfs none "
    "rw\n"
    "44 27 0:43 / /var/lib/nomclient rw - tmpfs none rw\n"
    "45 27 0:44 / /var/lib/nomclient2/x rw - tmpfs none rw\n"
    "46 27 0:45 / /back\\134slash\\0 rw - tmpfs none\n";

static void test_mountinfo_parse(void **state)
{
    (void)state;
    struct vol_mount_table t;
    char err[256];
    assert_int_equal(vol_mountinfo_parse(sample_mountinfo, &t, err, sizeof err),
                     0);
    assert_int_equal(t.nmounts, 9);

    const struct vol_mount *m = &t.mounts[1];
    assert_int_equal(m->id, 27);
    assert_int_equal(m->parent_id, 1);
    assert_int_equal(m->major, 254);
    assert_int_equal(m->minor, 0);
    assert_string_equal(m->root, "/");
    assert_string_equal(m->mount_point, "/");
    assert_string_equal(m->options, "rw,relatime");
    assert_string_equal(m->fstype, "ext4");
    assert_string_equal(m->source, "/dev/vda");
    assert_string_equal(m->super_options, "rw,discard");

    m = &t.mounts[3];
    assert_string_equal(m->root, "/srv/my data");
    assert_string_equal(m->mount_point,
                        "/var/lib/nomclient/alloc/a1/web/my dir");
    assert_string_equal(m->options, "ro,nosuid,nodev,relatime");
    m = &t.mounts[4];
    assert_string_equal(m->mount_point,
                        "/var/lib/nomclient/alloc/a1/web/my dir/sub\ttab");
    /* A backslash escape, a truncated escape kept as is, no super options. */
    m = &t.mounts[8];
    assert_string_equal(m->mount_point, "/back\\slash\\0");
    assert_string_equal(m->super_options, "");
    vol_mount_table_free(&t);
    vol_mount_table_free(&t);

    assert_int_equal(vol_mountinfo_parse("", &t, err, sizeof err), 0);
    assert_int_equal(t.nmounts, 0);
    vol_mount_table_free(&t);
    assert_int_equal(vol_mountinfo_parse("\n\n", &t, err, sizeof err), 0);
    vol_mount_table_free(&t);

    /* No trailing newline. */
    assert_int_equal(vol_mountinfo_parse("1 0 8:1 / / rw - ext4 /dev/sda1 rw",
                                         &t, err, sizeof err),
                     0);
    assert_int_equal(t.nmounts, 1);
    vol_mount_table_free(&t);

    static const char *bad[] = {
        "1 0 8:1 / / rw ext4 /dev/sda1 rw\n",   /* no separator */
        "1 0 8:1 / / rw -\n",                   /* nothing after it */
        "x 0 8:1 / / rw - ext4 /dev/sda1 rw\n", /* id */
        "1 0 81 / / rw - ext4 /dev/sda1 rw\n",  /* major:minor */
        "1 0 8:1 /\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n%s",
                 bad[i]);
        assert_int_equal(vol_mountinfo_parse(text, &t, err, sizeof err),
                         -EINVAL);
        assert_non_null(strstr(err, "mountinfo line 2: malformed"));
    }
}

static void test_mounts_under(void **state)
{
    (void)state;
    struct vol_mount_table t;
    assert_int_equal(vol_mountinfo_parse(sample_mountinfo, &t, NULL, 0), 0);
    char **paths;
    size_t n;

    /* Strictly below, deepest first, the top of a stack first; not the
     * directory itself, nor a sibling sharing its prefix. */
    assert_int_equal(vol_mounts_under(&t, "/var/lib/nomclient/", &paths, &n),
                     0);
    assert_int_equal(n, 4);
    assert_string_equal(paths[0],
                        "/var/lib/nomclient/alloc/a1/web/my dir/sub\ttab");
    assert_string_equal(paths[1], "/var/lib/nomclient/alloc/a1/web/secrets");
    assert_string_equal(paths[2], "/var/lib/nomclient/alloc/a1/web/my dir");
    assert_string_equal(paths[3], "/var/lib/nomclient/alloc/a1/web/secrets");
    vol_paths_free(paths, n);

    assert_int_equal(vol_mounts_under(&t,
                                      "/var/lib/nomclient/alloc/a1/web/my dir",
                                      &paths, &n),
                     0);
    assert_int_equal(n, 1);
    vol_paths_free(paths, n);

    assert_int_equal(vol_mounts_under(&t, "/nothing", &paths, &n), 0);
    assert_int_equal(n, 0);
    assert_null(paths);
    vol_paths_free(paths, n);

    assert_int_equal(vol_mounts_under(&t, "/", &paths, &n), 0);
    assert_int_equal(n, 8); /* all but "/" */
    vol_paths_free(paths, n);
    vol_mount_table_free(&t);
}

static void test_mountinfo_read_self(void **state)
{
    (void)state;
    struct vol_mount_table t;
    char err[256];
    assert_int_equal(vol_mountinfo_read(&t, err, sizeof err), 0);
    bool root = false;
    for (size_t i = 0; i < t.nmounts; i++)
        root |= strcmp(t.mounts[i].mount_point, "/") == 0;
    assert_true(root);
    vol_mount_table_free(&t);
}

/* ---- resolving inside a root --------------------------------------------- */

struct fx {
    char base[64];
    char root[96];
    int root_fd;
    unsigned fallbacks;
};

static const unsigned with_openat2 = 0;
static const unsigned without_openat2 = VOL_FEATURE_OPENAT2;

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    fx->fallbacks = *(const unsigned *)*state;
    snprintf(fx->base, sizeof fx->base, "/tmp/nomclient-vol.XXXXXX");
    if (!mkdtemp(fx->base)) {
        free(fx);
        return -1;
    }
    snprintf(fx->root, sizeof fx->root, "%s/root", fx->base);
    mkdir(fx->root, 0755);
    fx->root_fd = open(fx->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    vol_force_fallbacks(fx->fallbacks);
    *state = fx;
    return fx->root_fd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    vol_force_fallbacks(0);
    close(fx->root_fd);
    nftw(fx->base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static void in_root(struct fx *fx, const char *rel, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", fx->root, rel);
}

static void mk_symlink(struct fx *fx, const char *target, const char *rel)
{
    char p[PATH_MAX];
    in_root(fx, rel, p, sizeof p);
    assert_int_equal(symlink(target, p), 0);
}

static void mk_dir(struct fx *fx, const char *rel)
{
    char p[PATH_MAX];
    in_root(fx, rel, p, sizeof p);
    assert_int_equal(mkdir(p, 0755), 0);
}

/* Asserts that fd is the inode at root/rel (rel == "" for the root). */
static void assert_is(struct fx *fx, int fd, const char *rel)
{
    char p[PATH_MAX];
    in_root(fx, rel, p, sizeof p);
    struct stat a, b;
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &a), 0);
    assert_int_equal(lstat(p, &b), 0);
    assert_true(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
    close(fd);
}

static int open_in(struct fx *fx, const char *path, enum vol_create create)
{
    char err[512];
    return vol_open_in_root(fx->root_fd, path, create, err, sizeof err);
}

static void test_features(void **state)
{
    struct fx *fx = *state;
    unsigned f = vol_kernel_features();
    assert_int_equal(f & fx->fallbacks, 0);
    vol_force_fallbacks(VOL_FEATURE_OPENAT2 | VOL_FEATURE_MOUNT_API);
    assert_int_equal(vol_kernel_features(), 0);
    vol_force_fallbacks(fx->fallbacks);
}

static void test_resolve_plain(void **state)
{
    struct fx *fx = *state;
    mk_dir(fx, "a");
    mk_dir(fx, "a/b");
    assert_is(fx, open_in(fx, "a/b", VOL_CREATE_NONE), "a/b");
    assert_is(fx, open_in(fx, "/a/b/", VOL_CREATE_NONE), "a/b");
    assert_is(fx, open_in(fx, "//a/./b", VOL_CREATE_NONE), "a/b");
    assert_is(fx, open_in(fx, "/", VOL_CREATE_NONE), "");
    assert_is(fx, open_in(fx, ".", VOL_CREATE_NONE), "");
    assert_int_equal(open_in(fx, "a/missing", VOL_CREATE_NONE), -ENOENT);
    assert_int_equal(open_in(fx, "", VOL_CREATE_NONE), -EINVAL);

    char p[PATH_MAX];
    in_root(fx, "a/file", p, sizeof p);
    int f = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    assert_true(f >= 0);
    close(f);
    assert_int_equal(open_in(fx, "a/file/x", VOL_CREATE_NONE), -ENOTDIR);
    assert_int_equal(open_in(fx, "a/file/x", VOL_CREATE_DIR), -ENOTDIR);
}

/* ".." stops at the root, as in a chroot. */
static void test_resolve_dotdot_clamped(void **state)
{
    struct fx *fx = *state;
    mk_dir(fx, "etc");
    assert_is(fx, open_in(fx, "../../etc", VOL_CREATE_NONE), "etc");
    assert_is(fx, open_in(fx, "etc/../../../..", VOL_CREATE_NONE), "");
    assert_is(fx, open_in(fx, "/../etc/..", VOL_CREATE_NONE), "");
}

/* CVE-2020-28348's shape: symlinks in task space pointing at the host. */
static void test_resolve_symlinks_confined(void **state)
{
    struct fx *fx = *state;
    mk_dir(fx, "inside");
    mk_dir(fx, "inside/dir");
    mk_symlink(fx, "/", "slash");
    mk_symlink(fx, "/etc", "etclink");
    mk_symlink(fx, "../../../../../..", "up");
    mk_symlink(fx, "/inside/dir", "abs");
    mk_symlink(fx, "dir", "inside/rel");
    mk_symlink(fx, "../inside/rel", "inside/chain");

    assert_is(fx, open_in(fx, "slash", VOL_CREATE_NONE), "");
    assert_is(fx, open_in(fx, "up", VOL_CREATE_NONE), "");
    assert_is(fx, open_in(fx, "abs", VOL_CREATE_NONE), "inside/dir");
    assert_is(fx, open_in(fx, "slash/inside/dir", VOL_CREATE_NONE),
              "inside/dir");
    assert_is(fx, open_in(fx, "inside/chain", VOL_CREATE_NONE), "inside/dir");
    assert_is(fx, open_in(fx, "up/abs/..", VOL_CREATE_NONE), "inside");

    /* The host's /etc exists, the root's does not: the link must not
     * reach the former. */
    assert_int_equal(open_in(fx, "etclink", VOL_CREATE_NONE), -ENOENT);
    assert_int_equal(open_in(fx, "slash/etc/passwd", VOL_CREATE_NONE), -ENOENT);
    assert_int_equal(open_in(fx, "up/etc", VOL_CREATE_NONE), -ENOENT);
    /* Creating through them creates inside the root. */
    int fd = open_in(fx, "etclink", VOL_CREATE_DIR);
    assert_is(fx, fd, "etc");
    fd = open_in(fx, "up/etc/sub", VOL_CREATE_DIR);
    assert_is(fx, fd, "etc/sub");
}

static void test_resolve_loops_and_magic(void **state)
{
    struct fx *fx = *state;
    mk_symlink(fx, "b", "a");
    mk_symlink(fx, "a", "b");
    mk_symlink(fx, "self/x", "self");
    assert_int_equal(open_in(fx, "a", VOL_CREATE_NONE), -ELOOP);
    assert_int_equal(open_in(fx, "a", VOL_CREATE_DIR), -ELOOP);
    assert_int_equal(open_in(fx, "self", VOL_CREATE_NONE), -ELOOP);

    /* Inside the root /proc/self/... means root/proc/self/...: it is
     * never the host's magic link. */
    mk_symlink(fx, "/proc/self/cwd", "magic");
    assert_int_equal(open_in(fx, "magic", VOL_CREATE_NONE), -ENOENT);
}

/* A dangling symlink is created at its target, inside the root. */
static void test_resolve_create_through_dangling(void **state)
{
    struct fx *fx = *state;
    mk_symlink(fx, "/made/here", "dangling");
    int fd = open_in(fx, "dangling", VOL_CREATE_DIR);
    assert_is(fx, fd, "made/here");
    struct stat st;
    assert_int_equal(stat("/made", &st), -1);

    fd = open_in(fx, "x/y/conf.txt", VOL_CREATE_FILE);
    char p[PATH_MAX];
    in_root(fx, "x/y/conf.txt", p, sizeof p);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 0);
    assert_is(fx, fd, "x/y/conf.txt");
    /* An existing file is opened, not truncated or replaced. */
    int w = open(p, O_WRONLY | O_CLOEXEC);
    assert_int_equal(write(w, "abc", 3), 3);
    close(w);
    fd = open_in(fx, "x/y/conf.txt", VOL_CREATE_FILE);
    assert_is(fx, fd, "x/y/conf.txt");
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_size, 3);
}

/* The walk used to reach mount points for unmounting refuses symlinks. */
static void test_walk_no_symlinks(void **state)
{
    struct fx *fx = *state;
    mk_dir(fx, "d");
    mk_symlink(fx, "d", "l");
    char err[256];
    int fd = vol_walk(fx->root_fd, "d", VOL_CREATE_NONE, VOL_WALK_NO_SYMLINKS,
                      "mount point", err, sizeof err);
    assert_is(fx, fd, "d");
    assert_int_equal(vol_walk(fx->root_fd, "l", VOL_CREATE_NONE,
                              VOL_WALK_NO_SYMLINKS, "mount point", err,
                              sizeof err),
                     -ELOOP);
    assert_string_equal(err, "mount point \"l\": component \"l\" is a symlink, "
                             "which is not followed here");
}

#define RESOLVE_TESTS(mode, tag)                                               \
    {"test_features" tag, test_features, setup, teardown, (void *)&mode},      \
        {"test_resolve_plain" tag, test_resolve_plain, setup, teardown,        \
         (void *)&mode},                                                       \
        {"test_resolve_dotdot_clamped" tag, test_resolve_dotdot_clamped,       \
         setup, teardown, (void *)&mode},                                      \
        {"test_resolve_symlinks_confined" tag, test_resolve_symlinks_confined, \
         setup, teardown, (void *)&mode},                                      \
        {"test_resolve_loops_and_magic" tag, test_resolve_loops_and_magic,     \
         setup, teardown, (void *)&mode},                                      \
        {"test_resolve_create_through_dangling" tag,                           \
         test_resolve_create_through_dangling, setup, teardown,                \
         (void *)&mode},                                                       \
    {                                                                          \
        "test_walk_no_symlinks" tag, test_walk_no_symlinks, setup, teardown,   \
            (void *)&mode                                                      \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog_add_find),
        cmocka_unit_test(test_check_request_undeclared),
        cmocka_unit_test(test_check_request_path_missing),
        cmocka_unit_test(test_check_request_read_only),
        cmocka_unit_test(test_mountinfo_parse),
        cmocka_unit_test(test_mounts_under),
        cmocka_unit_test(test_mountinfo_read_self),
        RESOLVE_TESTS(with_openat2, ""),
        RESOLVE_TESTS(without_openat2, "[no openat2]"),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
