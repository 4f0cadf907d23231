// deps: volumes/volumes.c volumes/path.c volumes/bind.c volumes/mounts.c
/* vol_bind_mount and vol_unmount_under for real (root only; skipped
 * otherwise). Every test does its mounts in a forked child that first
 * unshares its mount namespace and makes "/" private, so they vanish with
 * the child whatever happens; the child reports through a pipe and its
 * exit code. After each child body, the same check runs: every mount made
 * lies under the task root, and the host's /etc is untouched.
 *
 * Each test runs four times: with openat2 and the new mount API (when the
 * kernel has them), and with either or both forced to their fallback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "volumes/volumes.h"

#define MARKER "nomclient-volume-marker"

struct fx {
    char base[256];    /* /tmp/nomclient-vol.XXXXXX, canonical */
    char root[300];    /* base/root: the task directory */
    char src[300];     /* base/src: a host volume, holding MARKER */
    char srcfile[300]; /* base/src.txt: a file host volume */
    unsigned fallbacks;
};

static const unsigned mode_native = 0;
static const unsigned mode_no_openat2 = VOL_FEATURE_OPENAT2;
static const unsigned mode_no_mount_api = VOL_FEATURE_MOUNT_API;
static const unsigned mode_neither =
    VOL_FEATURE_OPENAT2 | VOL_FEATURE_MOUNT_API;

/* ---- fixture ------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int e = n < 0 ? errno : 0;
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -(e ? e : EIO);
}

static int read_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return 0;
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    fx->fallbacks = *(const unsigned *)*state;
    char tmpl[] = "/tmp/nomclient-vol.XXXXXX";
    char *canon = mkdtemp(tmpl) ? realpath(tmpl, NULL) : NULL;
    if (!canon || strlen(canon) >= sizeof fx->base) {
        free(canon);
        free(fx);
        return -1;
    }
    memcpy(fx->base, canon, strlen(canon) + 1);
    free(canon);
    snprintf(fx->root, sizeof fx->root, "%s/root", fx->base);
    snprintf(fx->src, sizeof fx->src, "%s/src", fx->base);
    snprintf(fx->srcfile, sizeof fx->srcfile, "%s/src.txt", fx->base);
    char marker[PATH_MAX + 64];
    snprintf(marker, sizeof marker, "%s/" MARKER, fx->src);
    *state = fx;
    if (mkdir(fx->root, 0755) < 0 || mkdir(fx->src, 0755) < 0 ||
        write_file(marker, "volume") < 0 ||
        write_file(fx->srcfile, "from host") < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    nftw(fx->base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* Root with mount namespaces, or the tests skip. */
static bool can_mount(void)
{
    static int known = -1;
    if (known >= 0)
        return known;
    known = 0;
    if (geteuid() != 0)
        return false;
    pid_t pid = fork();
    if (pid == 0)
        _exit(unshare(CLONE_NEWNS) == 0 &&
                      mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0
                  ? 0
                  : 1);
    int status;
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
        WEXITSTATUS(status) == 0)
        known = 1;
    return known;
}

#define REQUIRE_MOUNTS()                                                       \
    do {                                                                       \
        if (!can_mount())                                                      \
            skip();                                                            \
    } while (0)

/* ---- the child side ------------------------------------------------------ */

struct child {
    struct fx *fx;
    int root_fd;
    struct vol_mount_table before;
    struct stat etc, slash;
    char msg[2048];
    char err[1024]; /* from the last vol_* call */
};

static int failf(struct child *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(struct child *c, int line, const char *fmt, ...)
{
    int n = snprintf(c->msg, sizeof c->msg, "line %d: ", line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg + n, sizeof c->msg - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            return failf(c, __LINE__, "%s (last error: %s)", #cond, c->err);   \
    } while (0)

#define CHECK_ERRNO(expr, want)                                                \
    do {                                                                       \
        int got_ = (expr);                                                     \
        if (got_ != (want))                                                    \
            return failf(c, __LINE__, "%s = %d (%s), want %d (%s); %s", #expr, \
                         got_, strerror(-got_), (want), strerror(-(want)),     \
                         c->err);                                              \
    } while (0)

static const char *at(struct child *c, const char *rel)
{
    static char buf[4][PATH_MAX + 64];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", c->fx->root, rel);
    return p;
}

static int bind(struct child *c, const char *src, const char *dst, bool ro)
{
    c->err[0] = '\0';
    return vol_bind_mount(c->root_fd, src, dst, ro, c->err, sizeof c->err);
}

static bool is_new(const struct child *c, const struct vol_mount *m)
{
    for (size_t i = 0; i < c->before.nmounts; i++)
        if (c->before.mounts[i].id == m->id)
            return false;
    return true;
}

/* Mounts made since the child started, optionally printing them. */
static size_t new_mounts(struct child *c)
{
    struct vol_mount_table t;
    if (vol_mountinfo_read(&t, NULL, 0) < 0)
        return (size_t)-1;
    size_t n = 0;
    for (size_t i = 0; i < t.nmounts; i++)
        n += is_new(c, &t.mounts[i]);
    vol_mount_table_free(&t);
    return n;
}

static bool same_inode(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* The invariant of every test: nothing mounted outside the task root, and
 * nothing of the volume showing in the host's /etc or /. */
static int check_confined(struct child *c)
{
    struct vol_mount_table t;
    if (vol_mountinfo_read(&t, c->err, sizeof c->err) < 0)
        return failf(c, __LINE__, "mountinfo: %s", c->err);
    size_t rl = strlen(c->fx->root);
    int r = 0;
    for (size_t i = 0; i < t.nmounts && r == 0; i++) {
        const struct vol_mount *m = &t.mounts[i];
        if (is_new(c, m) && (strncmp(m->mount_point, c->fx->root, rl) != 0 ||
                             m->mount_point[rl] != '/'))
            r = failf(c, __LINE__, "mount outside the task root: %s",
                      m->mount_point);
    }
    vol_mount_table_free(&t);
    if (r < 0)
        return r;
    struct stat etc, slash, st;
    if (stat("/etc", &etc) < 0 || !same_inode(&etc, &c->etc) ||
        stat("/", &slash) < 0 || !same_inode(&slash, &c->slash))
        return failf(c, __LINE__, "the host's / or /etc changed");
    if (stat("/etc/" MARKER, &st) == 0 || stat("/" MARKER, &st) == 0)
        return failf(c, __LINE__, "the volume shows in the host's /etc or /");
    return 0;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Runs fn in a child with its own mount namespace; fails the test with
 * the child's message unless it exits 0. */
static void run_child(struct fx *fx, int (*fn)(struct child *))
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        struct child *c = calloc(1, sizeof *c);
        int rc = 1;
        if (!c)
            _exit(2);
        c->fx = fx;
        if (unshare(CLONE_NEWNS) < 0 ||
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
            failf(c, __LINE__, "private mount namespace: %s", strerror(errno));
        } else {
            vol_force_fallbacks(fx->fallbacks);
            c->root_fd = open(fx->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (c->root_fd < 0 || stat("/etc", &c->etc) < 0 ||
                stat("/", &c->slash) < 0 ||
                vol_mountinfo_read(&c->before, c->err, sizeof c->err) < 0)
                failf(c, __LINE__, "child setup: %s", strerror(errno));
            else {
                int fds = count_fds();
                if (fn(c) == 0 && check_confined(c) == 0) {
                    if (count_fds() != fds)
                        failf(c, __LINE__, "fd leak: %d open, %d before",
                              count_fds(), fds);
                    else
                        rc = 0;
                }
            }
        }
        if (write(p[1], c->msg, strlen(c->msg)) < 0)
            rc = 3;
        _exit(rc);
    }
    close(p[1]);
    char msg[2048];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof msg - 1 &&
           (n = read(p[0], msg + len, sizeof msg - 1 - len)) > 0)
        len += (size_t)n;
    msg[len] = '\0';
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child (fallbacks %#x) %s %d: %s", fx->fallbacks,
                 WIFEXITED(status) ? "exited" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                 msg);
}

/* ---- read-write, read-only, flags ---------------------------------------- */

static int child_rw(struct child *c)
{
    CHECK_ERRNO(bind(c, c->fx->src, "/data", false), 0);
    char buf[64];
    CHECK(read_file(at(c, "data/" MARKER), buf, sizeof buf) == 0);
    CHECK(strcmp(buf, "volume") == 0);
    CHECK(write_file(at(c, "data/hello"), "written by the task") == 0);
    CHECK(mkdir(at(c, "data/newdir"), 0755) == 0);
    struct statvfs sv;
    CHECK(statvfs(at(c, "data"), &sv) == 0);
    CHECK(!(sv.f_flag & ST_RDONLY));
    CHECK(sv.f_flag & ST_NOSUID);
    CHECK(sv.f_flag & ST_NODEV);
    return 0;
}

static void test_bind_rw(void **state)
{
    REQUIRE_MOUNTS();
    struct fx *fx = *state;
    run_child(fx, child_rw);
    /* The writes landed in the source, seen from outside the namespace. */
    char p[PATH_MAX + 64], buf[64];
    snprintf(p, sizeof p, "%s/hello", fx->src);
    assert_int_equal(read_file(p, buf, sizeof buf), 0);
    assert_string_equal(buf, "written by the task");
    snprintf(p, sizeof p, "%s/newdir", fx->src);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
}

static int expect_read_only(struct child *c, const char *dir)
{
    char p[PATH_MAX + 128];
    struct statvfs sv;
    CHECK(statvfs(at(c, dir), &sv) == 0);
    CHECK(sv.f_flag & ST_RDONLY);
    CHECK(sv.f_flag & ST_NOSUID);
    CHECK(sv.f_flag & ST_NODEV);
    snprintf(p, sizeof p, "%s/new", at(c, dir));
    CHECK_ERRNO(write_file(p, "x"), -EROFS);
    snprintf(p, sizeof p, "%s/" MARKER, at(c, dir));
    CHECK_ERRNO(write_file(p, "x"), -EROFS);
    snprintf(p, sizeof p, "%s/newdir", at(c, dir));
    CHECK_ERRNO(mkdir(p, 0755) < 0 ? -errno : 0, -EROFS);
    char buf[64];
    snprintf(p, sizeof p, "%s/" MARKER, at(c, dir));
    CHECK(read_file(p, buf, sizeof buf) == 0 && strcmp(buf, "volume") == 0);
    return 0;
}

/* read_only from the host volume, the group's volume or the volume_mount:
 * each makes the mount refuse writes with EROFS. */
static int child_read_only(struct child *c)
{
    struct vol_catalog cat = {0};
    CHECK(vol_catalog_add(&cat, "rw", c->fx->src, false, NULL, 0) == 0);
    CHECK(vol_catalog_add(&cat, "ro", c->fx->src, true, NULL, 0) == 0);
    const struct {
        const char *volume, *dest;
        bool group_ro, mount_ro;
    } cases[] = {
        {"rw", "group_ro", true, false},
        {"rw", "mount_ro", false, true},
        {"ro", "host_ro", true, false},
        {"ro", "all_ro", true, true},
    };
    int r = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0] && r == 0; i++) {
        struct vol_resolved v;
        if (vol_check_request(&cat, "data", cases[i].volume, cases[i].group_ro,
                              cases[i].mount_ro, &v, c->err,
                              sizeof c->err) < 0 ||
            !v.read_only)
            r = failf(c, __LINE__, "case %zu: %s", i, c->err);
        else if (bind(c, v.source_path, cases[i].dest, v.read_only) < 0)
            r = failf(c, __LINE__, "case %zu: %s", i, c->err);
        else
            r = expect_read_only(c, cases[i].dest);
    }
    vol_catalog_free(&cat);
    return r;
}

static void test_bind_read_only(void **state)
{
    REQUIRE_MOUNTS();
    struct fx *fx = *state;
    run_child(fx, child_read_only);
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/new", fx->src);
    struct stat st;
    assert_int_equal(stat(p, &st), -1);
}

/* Submounts of the source are read-only too (the mount(2) fallback has to
 * remount each one itself). */
static int child_ro_submounts(struct child *c)
{
    char sub[PATH_MAX + 8];
    snprintf(sub, sizeof sub, "%s/sub", c->fx->src);
    CHECK(mkdir(sub, 0755) == 0);
    CHECK(mount("tmpfs", sub, "tmpfs", 0, "size=64k") == 0);
    CHECK(write_file(at(c, "../src/sub/" MARKER), "volume") == 0);
    CHECK_ERRNO(bind(c, c->fx->src, "ro", true), 0);
    CHECK(expect_read_only(c, "ro") == 0);
    CHECK(expect_read_only(c, "ro/sub") == 0);
    CHECK_ERRNO(bind(c, c->fx->src, "rw", false), 0);
    CHECK(write_file(at(c, "rw/sub/x"), "x") == 0);
    struct statvfs sv;
    CHECK(statvfs(at(c, "rw/sub"), &sv) == 0);
    CHECK((sv.f_flag & (ST_NOSUID | ST_NODEV)) == (ST_NOSUID | ST_NODEV));
    CHECK(umount2(sub, MNT_DETACH) == 0); /* ours, outside the root */
    return 0;
}

static void test_bind_ro_submounts(void **state)
{
    REQUIRE_MOUNTS();
    run_child(*state, child_ro_submounts);
}

/* A second mount on the same destination lies on top, and gets the flags. */
static int child_stacked(struct child *c)
{
    CHECK_ERRNO(bind(c, c->fx->src, "data", false), 0);
    CHECK_ERRNO(bind(c, c->fx->src, "data", true), 0);
    CHECK(expect_read_only(c, "data") == 0);
    CHECK(new_mounts(c) == 2);
    return 0;
}

static void test_bind_stacked(void **state)
{
    REQUIRE_MOUNTS();
    run_child(*state, child_stacked);
}

/* ---- files --------------------------------------------------------------- */

static int child_file_on_file(struct child *c)
{
    char buf[64];
    /* Created, with its directories, inside the root. */
    CHECK_ERRNO(bind(c, c->fx->srcfile, "/etc/app/conf.txt", false), 0);
    CHECK(read_file(at(c, "etc/app/conf.txt"), buf, sizeof buf) == 0);
    CHECK(strcmp(buf, "from host") == 0);
    CHECK(write_file(at(c, "etc/app/conf.txt"), "changed") == 0);
    CHECK(read_file(c->fx->srcfile, buf, sizeof buf) == 0);
    CHECK(strcmp(buf, "changed") == 0);
    struct statvfs sv;
    CHECK(statvfs(at(c, "etc/app/conf.txt"), &sv) == 0);
    CHECK((sv.f_flag & (ST_NOSUID | ST_NODEV)) == (ST_NOSUID | ST_NODEV));

    /* Over a file the task already has; read-only. */
    CHECK(write_file(at(c, "existing.txt"), "task") == 0);
    CHECK_ERRNO(bind(c, c->fx->srcfile, "existing.txt", true), 0);
    CHECK(read_file(at(c, "existing.txt"), buf, sizeof buf) == 0);
    CHECK(strcmp(buf, "changed") == 0);
    CHECK_ERRNO(write_file(at(c, "existing.txt"), "x"), -EROFS);
    CHECK(statvfs(at(c, "existing.txt"), &sv) == 0);
    CHECK(sv.f_flag & ST_RDONLY);
    return 0;
}

static void test_bind_file_on_file(void **state)
{
    REQUIRE_MOUNTS();
    run_child(*state, child_file_on_file);
}

static int child_type_mismatch(struct child *c)
{
    CHECK(write_file(at(c, "afile"), "task") == 0);
    CHECK(mkdir(at(c, "adir"), 0755) == 0);
    CHECK_ERRNO(bind(c, c->fx->src, "afile", false), -ENOTDIR);
    CHECK(strstr(c->err, "volume destination \"afile\" is not a directory"));
    CHECK_ERRNO(bind(c, c->fx->srcfile, "adir", false), -EISDIR);
    CHECK(strstr(c->err, "volume destination \"adir\" is a directory"));
    /* A directory below a file cannot be made. */
    CHECK_ERRNO(bind(c, c->fx->src, "afile/sub", false), -ENOTDIR);

    /* The source side. */
    CHECK_ERRNO(bind(c, "/nonexistent/nomclient", "x", false), -ENOENT);
    CHECK(strcmp(c->err, "host volume path \"/nonexistent/nomclient\": No "
                         "such file or directory") == 0);
    CHECK_ERRNO(bind(c, "relative/path", "x", false), -EINVAL);
    int file_fd = open(at(c, "afile"), O_PATH | O_CLOEXEC);
    CHECK(file_fd >= 0);
    CHECK_ERRNO(
        vol_bind_mount(file_fd, c->fx->src, "x", false, c->err, sizeof c->err),
        -ENOTDIR);
    close(file_fd);
    CHECK(new_mounts(c) == 0);
    return 0;
}

static void test_bind_type_mismatch(void **state)
{
    REQUIRE_MOUNTS();
    run_child(*state, child_type_mismatch);
}

/* ---- escapes ------------------------------------------------------------- */

/* CVE-2022-24683's shape: path traversal out of the task directory. */
static int child_refuses_dotdot(struct child *c)
{
    static const char *dests[] = {
        "../../etc",
        "a/../../etc",
        "..",
        "x/..",
        "/../etc",
        "../root/data",
        "a/b/../../../../../../etc",
    };
    for (size_t i = 0; i < sizeof dests / sizeof dests[0]; i++) {
        CHECK_ERRNO(bind(c, c->fx->src, dests[i], false), -EPERM);
        CHECK(strstr(c->err, "\"..\" is not allowed"));
    }
    CHECK(new_mounts(c) == 0);
    return 0;
}

static void test_bind_refuses_dotdot(void **state)
{
    REQUIRE_MOUNTS();
    run_child(*state, child_refuses_dotdot);
}

static int child_refuses_root(struct child *c)
{
    CHECK(symlink("/", at(c, "slash")) == 0);
    CHECK(symlink("../../../../../../../..", at(c, "up")) == 0);
    static const char *dests[] = {"/",     ".",  "//",     "./",
                                  "slash", "up", "slash/."};
    for (size_t i = 0; i < sizeof dests / sizeof dests[0]; i++) {
        CHECK_ERRNO(bind(c, c->fx->src, dests[i], false), -EINVAL);
        CHECK(strstr(c->err, "is the task directory itself"));
    }
    CHECK_ERRNO(bind(c, c->fx->src, "", false), -EINVAL);
    CHECK_ERRNO(bind(c, c->fx->src, NULL, false), -EINVAL);
    CHECK(new_mounts(c) == 0);
    return 0;
}

static void test_bind_refuses_root(void **state)
{
    REQUIRE_MOUNTS();
    run_child(*state, child_refuses_root);
}

/* Mounted at the inode resolved inside the root. */
static int expect_mounted_at(struct child *c, const char *rel)
{
    struct stat want, got;
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/" MARKER, c->fx->src);
    CHECK(stat(p, &want) == 0);
    snprintf(p, sizeof p, "%s/" MARKER, at(c, rel));
    if (stat(p, &got) < 0 || !same_inode(&want, &got))
        return failf(c, __LINE__, "the volume is not at %s", rel);
    return 0;
}

/* CVE-2020-28348's shape: a symlink in task space pointing at the host's
 * /, /etc, or up and out; absolute targets mean the task's "/". */
static int child_symlinks_confined(struct child *c)
{
    CHECK(symlink("/etc", at(c, "etclink")) == 0);
    CHECK(symlink("/", at(c, "slash")) == 0);
    CHECK(symlink("../../../../../../../..", at(c, "up")) == 0);
    CHECK(mkdir(at(c, "a"), 0755) == 0);
    CHECK(symlink("../../../../../../../../etc4", at(c, "a/deep")) == 0);
    CHECK(mkdir(at(c, "inside"), 0755) == 0);
    CHECK(mkdir(at(c, "inside/dir"), 0755) == 0);
    CHECK(symlink("/inside/dir", at(c, "abs")) == 0);

    CHECK_ERRNO(bind(c, c->fx->src, "etclink", true), 0);
    CHECK(expect_mounted_at(c, "etc") == 0);
    CHECK_ERRNO(bind(c, c->fx->src, "slash/etc2", false), 0);
    CHECK(expect_mounted_at(c, "etc2") == 0);
    CHECK_ERRNO(bind(c, c->fx->src, "up/etc3", false), 0);
    CHECK(expect_mounted_at(c, "etc3") == 0);
    CHECK_ERRNO(bind(c, c->fx->src, "a/deep", false), 0);
    CHECK(expect_mounted_at(c, "etc4") == 0);
    CHECK_ERRNO(bind(c, c->fx->src, "abs", false), 0);
    CHECK(expect_mounted_at(c, "inside/dir") == 0);
    /* A file volume through a symlink to the host's passwd. */
    CHECK(symlink("/etc/passwd", at(c, "pw")) == 0);
    CHECK(mkdir(at(c, "etc5"), 0755) == 0);
    CHECK(symlink("/etc5", at(c, "etc5link")) == 0);
    CHECK_ERRNO(bind(c, c->fx->srcfile, "etc5link/passwd", true), 0);
    char buf[64];
    CHECK(read_file(at(c, "etc5/passwd"), buf, sizeof buf) == 0);
    CHECK(strcmp(buf, "from host") == 0);
    CHECK(new_mounts(c) == 6);
    return 0;
}

static void test_bind_symlinks_confined(void **state)
{
    REQUIRE_MOUNTS();
    run_child(*state, child_symlinks_confined);
}

/* A /proc inside the root: its magic links (cwd, root, fd/N) would jump
 * anywhere, so they are refused (RESOLVE_NO_MAGICLINKS, or by the walk,
 * which refuses every procfs link). */
static int child_magic_links(struct child *c)
{
    CHECK(mkdir(at(c, "proc"), 0755) == 0);
    CHECK(mount("proc", at(c, "proc"), "proc", MS_NOSUID | MS_NODEV, NULL) ==
          0);
    static const char *dests[] = {
        "proc/self/cwd/x",
        "proc/self/root/etc",
        "proc/thread-self/root",
        "/proc/self/fd/0",
    };
    for (size_t i = 0; i < sizeof dests / sizeof dests[0]; i++)
        CHECK_ERRNO(bind(c, c->fx->src, dests[i], false), -ELOOP);
    /* Another process's root: refused one way or another (without ptrace
     * rights over pid 1, EACCES comes first). */
    CHECK(bind(c, c->fx->src, "proc/1/root/etc", false) < 0);
    CHECK(new_mounts(c) == 1);
    CHECK(umount2(at(c, "proc"), MNT_DETACH) == 0);
    return 0;
}

static void test_bind_magic_links(void **state)
{
    REQUIRE_MOUNTS();
    run_child(*state, child_magic_links);
}

/* ---- races --------------------------------------------------------------- */

struct swap {
    struct child *c;
    const char *victim, *moved, *link_target;
    enum vol_hook_point when;
    bool done;
};

static void swap_hook(enum vol_hook_point point, void *arg)
{
    struct swap *s = arg;
    if (point != s->when || s->done)
        return;
    s->done = true;
    char victim[PATH_MAX + 64];
    snprintf(victim, sizeof victim, "%s", at(s->c, s->victim));
    if (rename(victim, at(s->c, s->moved)) == 0)
        symlink(s->link_target, victim);
}

/* Between the check and the mount the destination becomes a symlink to
 * /etc: the mount goes onto the directory that was checked. */
static int child_race_swap_before_mount(struct child *c)
{
    CHECK(mkdir(at(c, "victim"), 0755) == 0);
    struct swap s = {c,      "victim",          "victim.moved",
                     "/etc", VOL_HOOK_RESOLVED, false};
    vol_set_test_hook(swap_hook, &s);
    int r = bind(c, c->fx->src, "victim", true);
    vol_set_test_hook(NULL, NULL);
    CHECK(s.done);
    CHECK_ERRNO(r, 0);
    CHECK(expect_mounted_at(c, "victim.moved") == 0);
    CHECK(expect_read_only(c, "victim.moved") == 0);
    return 0;
}

static void test_race_swap_before_mount(void **state)
{
    REQUIRE_MOUNTS();
    run_child(*state, child_race_swap_before_mount);
}

/* mount(2) fallback only: after the bind, the parent of the mount point is
 * renamed and replaced by a symlink to "/". The reopen must not follow the
 * link: the mount is found where the kernel shows it, inside the root,
 * and made read-only there (or the attempt fails). */
static int child_race_swap_after_mount(struct child *c)
{
    CHECK(mkdir(at(c, "p"), 0755) == 0);
    CHECK(mkdir(at(c, "p/victim"), 0755) == 0);
    struct swap s = {c, "p", "p.moved", "/", VOL_HOOK_MOUNTED, false};
    vol_set_test_hook(swap_hook, &s);
    int r = bind(c, c->fx->src, "p/victim", true);
    vol_set_test_hook(NULL, NULL);
    if (!s.done || r == 0) {
        CHECK_ERRNO(r, 0);
        const char *where = s.done ? "p.moved/victim" : "p/victim";
        CHECK(expect_mounted_at(c, where) == 0);
        CHECK(expect_read_only(c, where) == 0);
    }
    return 0;
}

static void test_race_swap_after_mount(void **state)
{
    REQUIRE_MOUNTS();
    run_child(*state, child_race_swap_after_mount);
}

/* The source path is replaced after vol_bind_mount opened it: the mount
 * shows what was opened. */
static int child_race_swap_source(struct child *c)
{
    struct swap s = {c,      "../src",          "../src.old",
                     "/etc", VOL_HOOK_RESOLVED, false};
    vol_set_test_hook(swap_hook, &s);
    int r = bind(c, c->fx->src, "data", false);
    vol_set_test_hook(NULL, NULL);
    CHECK(s.done);
    CHECK_ERRNO(r, 0);
    char p[PATH_MAX + 64];
    struct stat want, got;
    snprintf(p, sizeof p, "%s.old/" MARKER, c->fx->src);
    CHECK(stat(p, &want) == 0);
    CHECK(stat(at(c, "data/" MARKER), &got) == 0);
    CHECK(same_inode(&want, &got));
    return 0;
}

static void test_race_swap_source(void **state)
{
    REQUIRE_MOUNTS();
    run_child(*state, child_race_swap_source);
}

/* A second process swaps a directory and a symlink to the host's /etc (or
 * "/") in a loop with RENAME_EXCHANGE while we mount again and again: each
 * attempt must mount inside the root or fail. Between attempts the flipper
 * is stopped and everything below the root is unmounted. */
static pid_t start_flipper(const char *a, const char *b)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;)
            renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
    }
    return pid;
}

static int flip_race(struct child *c, const char *dir, const char *link,
                     const char *target, const char *dest, int rounds)
{
    char a[PATH_MAX + 64], b[PATH_MAX + 64];
    snprintf(a, sizeof a, "%s", at(c, dir));
    snprintf(b, sizeof b, "%s", at(c, link));
    CHECK(symlink(target, b) == 0);
    pid_t flipper = start_flipper(a, b);
    CHECK(flipper > 0);
    int ok = 0, r = 0;
    for (int i = 0; i < rounds && r == 0; i++) {
        bool ro = i % 2;
        if (bind(c, c->fx->src, dest, ro) == 0)
            ok++;
        else if (getenv("VOL_TEST_VERBOSE"))
            fprintf(stderr, "  %s\n", c->err);
        kill(flipper, SIGSTOP);
        int status;
        waitpid(flipper, &status, WUNTRACED);
        r = check_confined(c);
        size_t n = 0;
        if (r == 0 &&
            vol_unmount_under(c->fx->root, &n, c->err, sizeof c->err) < 0)
            r = failf(c, __LINE__, "cleanup: %s", c->err);
        if (r == 0 && new_mounts(c) != 0)
            r = failf(c, __LINE__, "round %d left mounts", i);
        kill(flipper, SIGCONT);
    }
    kill(flipper, SIGKILL);
    waitpid(flipper, NULL, 0);
    if (getenv("VOL_TEST_VERBOSE"))
        fprintf(stderr, "flip %s: %d/%d mounted (%s)\n", dir, ok, rounds,
                c->err);
    if (r == 0 && ok == 0)
        r = failf(c, __LINE__, "no attempt succeeded (%s)", c->err);
    return r;
}

static int child_race_flipper(struct child *c)
{
    /* The last component flips. */
    CHECK(mkdir(at(c, "flip"), 0755) == 0);
    CHECK(mkdir(at(c, "flip/dst"), 0755) == 0);
    CHECK(flip_race(c, "flip/dst", "flip/alt", "/etc", "flip/dst", 150) == 0);
    /* A parent component flips. */
    CHECK(mkdir(at(c, "mid"), 0755) == 0);
    CHECK(mkdir(at(c, "mid/dst"), 0755) == 0);
    CHECK(flip_race(c, "mid", "midalt", "/", "mid/dst", 150) == 0);
    return 0;
}

static void test_race_flipper(void **state)
{
    REQUIRE_MOUNTS();
    run_child(*state, child_race_flipper);
}

/* ---- cleanup of leftover mounts ------------------------------------------ */

static int child_unmount_under(struct child *c)
{
    char d[PATH_MAX], p[PATH_MAX + 64];
    snprintf(d, sizeof d, "%s/data_dir", c->fx->base);
    CHECK(mkdir(d, 0755) == 0);
    CHECK(mount("tmpfs", d, "tmpfs", 0, "size=64k") == 0);
    static const char *subs[] = {"a", "a/b",    "c",       "e",
                                 "e", "sp ace", "a/b/deep"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", d, subs[i]);
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return failf(c, __LINE__, "mkdir %s: %s", p, strerror(errno));
        CHECK(mount("tmpfs", p, "tmpfs", 0, "size=64k") == 0);
    }
    CHECK(new_mounts(c) == 8);
    size_t n = 0;
    char slashed[PATH_MAX + 2];
    snprintf(slashed, sizeof slashed, "%s/", d);
    CHECK_ERRNO(vol_unmount_under(slashed, &n, c->err, sizeof c->err), 0);
    CHECK(n == 7);
    /* data_dir itself stays. */
    CHECK(new_mounts(c) == 1);
    struct vol_mount_table t;
    CHECK(vol_mountinfo_read(&t, NULL, 0) == 0);
    char **paths;
    size_t np;
    CHECK(vol_mounts_under(&t, d, &paths, &np) == 0);
    vol_mount_table_free(&t);
    vol_paths_free(paths, np);
    CHECK(np == 0);
    /* Nothing there, or nothing at all. */
    CHECK_ERRNO(vol_unmount_under(d, &n, c->err, sizeof c->err), 0);
    CHECK(n == 0);
    CHECK_ERRNO(
        vol_unmount_under("/nonexistent/nomclient", &n, c->err, sizeof c->err),
        0);
    CHECK(umount2(d, MNT_DETACH) == 0);
    return 0;
}

static void test_unmount_under(void **state)
{
    REQUIRE_MOUNTS();
    run_child(*state, child_unmount_under);
}

/* Mounts made by vol_bind_mount are found and removed by the cleanup. */
static int child_bind_then_cleanup(struct child *c)
{
    CHECK_ERRNO(bind(c, c->fx->src, "a/b/c", true), 0);
    CHECK_ERRNO(bind(c, c->fx->srcfile, "a/b/c/../f", false), -EPERM);
    CHECK_ERRNO(bind(c, c->fx->srcfile, "a/f", false), 0);
    CHECK(new_mounts(c) == 2);
    size_t n;
    CHECK_ERRNO(vol_unmount_under(c->fx->root, &n, c->err, sizeof c->err), 0);
    CHECK(n == 2);
    CHECK(new_mounts(c) == 0);
    return 0;
}

static void test_bind_then_cleanup(void **state)
{
    REQUIRE_MOUNTS();
    run_child(*state, child_bind_then_cleanup);
}

/* ---- the matrix ---------------------------------------------------------- */

#define T(fn, mode, tag)                                                       \
    {                                                                          \
#fn tag, fn, setup, teardown, (void *)&mode                            \
    }
#define ALL(mode, tag)                                                         \
    T(test_bind_rw, mode, tag), T(test_bind_read_only, mode, tag),             \
        T(test_bind_ro_submounts, mode, tag), T(test_bind_stacked, mode, tag), \
        T(test_bind_file_on_file, mode, tag),                                  \
        T(test_bind_type_mismatch, mode, tag),                                 \
        T(test_bind_refuses_dotdot, mode, tag),                                \
        T(test_bind_refuses_root, mode, tag),                                  \
        T(test_bind_symlinks_confined, mode, tag),                             \
        T(test_bind_magic_links, mode, tag),                                   \
        T(test_race_swap_before_mount, mode, tag),                             \
        T(test_race_swap_after_mount, mode, tag),                              \
        T(test_race_swap_source, mode, tag), T(test_race_flipper, mode, tag),  \
        T(test_unmount_under, mode, tag), T(test_bind_then_cleanup, mode, tag)

int main(void)
{
    const struct CMUnitTest tests[] = {
        ALL(mode_native, ""),
        ALL(mode_no_openat2, "[no openat2]"),
        ALL(mode_no_mount_api, "[no mount api]"),
        ALL(mode_neither, "[no openat2, no mount api]"),
    };
    unsigned f = vol_kernel_features();
    print_message("kernel features: openat2 %s, new mount API %s\n",
                  f & VOL_FEATURE_OPENAT2 ? "yes" : "no",
                  f & VOL_FEATURE_MOUNT_API ? "yes" : "no");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
