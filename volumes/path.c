/* Opening paths inside a task root that the task can write to.
 *
 * The kernel does it best: openat2(RESOLVE_IN_ROOT) treats root_fd as "/"
 * for every symlink and "..", and fails with EAGAIN when a rename races a
 * ".." step. Without openat2 (before 5.6, or forced by tests) the same
 * rules are applied by hand: each component is opened with O_PATH |
 * O_NOFOLLOW relative to the fd of its parent, symlinks are read with
 * readlinkat and spliced into the remaining path (absolute ones restart at
 * the root), and ".." pops back to the previous fd, never above the root.
 * Nothing is ever looked up by a path string that the task could change
 * between two steps. Missing components are created with mkdirat /
 * openat(O_CREAT | O_EXCL), which never follow a symlink, and then opened
 * like any other component. */
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#include "volumes/vol_internal.h"

#define MAX_SYMLINKS 40 /* the kernel's limit */
#define MAX_CREATE_TRIES 8
#define MAX_EAGAIN_TRIES 64

struct fd_stack {
    int *fds;
    size_t n, cap;
};

static void fd_stack_clear(struct fd_stack *s)
{
    while (s->n > 0)
        close(s->fds[--s->n]);
}

static void fd_stack_free(struct fd_stack *s)
{
    fd_stack_clear(s);
    free(s->fds);
}

static int fd_stack_push(struct fd_stack *s, int fd)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        int *fds = realloc(s->fds, cap * sizeof *fds);
        if (!fds)
            return -ENOMEM;
        s->fds = fds;
        s->cap = cap;
    }
    s->fds[s->n++] = fd;
    return 0;
}

/* Creates the missing component name in dir_fd: a directory, or an empty
 * file when it is the last one and a file is wanted. Losing a race to
 * someone creating it first is fine: the caller opens whatever is there. */
static int create_component(int dir_fd, const char *name, bool file)
{
    if (file) {
        int fd =
            openat(dir_fd, name,
                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
    } else if (mkdirat(dir_fd, name, 0755) == 0) {
        return 0;
    }
    return errno == EEXIST ? 0 : -errno;
}

/* Replaces *todo by "<target>/<rest>". */
static int splice_link(char **todo, const char *target, const char *rest)
{
    size_t tl = strlen(target), rl = strlen(rest);
    char *s = malloc(tl + rl + 2);
    if (!s)
        return -ENOMEM;
    memcpy(s, target, tl);
    s[tl] = '/';
    memcpy(s + tl + 1, rest, rl + 1);
    free(*todo);
    *todo = s;
    return 0;
}

int vol_walk(int root_fd, const char *path, enum vol_create create,
             unsigned flags, const char *what, char *err, size_t errlen)
{
    if (strlen(path) >= PATH_MAX)
        return vol_failx(err, errlen, ENAMETOOLONG, "%s \"%.64s...\": too long",
                         what, path);
    cleanup_free char *todo = strdup(path);
    cleanup_free char *target = malloc(PATH_MAX);
    if (!todo || !target)
        return vol_fail(err, errlen, ENOMEM, "%s \"%s\"", what, path);

    struct fd_stack stack = {0};
    size_t pos = 0;
    int links = 0, r = 0;
    char name[NAME_MAX + 1];

    for (;;) {
        while (todo[pos] == '/')
            pos++;
        if (!todo[pos])
            break;
        size_t len = strcspn(todo + pos, "/");
        if (len > NAME_MAX) {
            r = vol_failx(err, errlen, ENAMETOOLONG,
                          "%s \"%s\": a component is longer than %d bytes",
                          what, path, NAME_MAX);
            goto out;
        }
        memcpy(name, todo + pos, len);
        name[len] = '\0';
        pos += len;
        size_t next = pos;
        while (todo[next] == '/')
            next++;
        bool last = todo[next] == '\0';

        if (strcmp(name, ".") == 0)
            continue;
        if (strcmp(name, "..") == 0) {
            /* The root is its own parent, as for a chrooted process. */
            if (stack.n > 0)
                close(stack.fds[--stack.n]);
            continue;
        }

        int dir = stack.n ? stack.fds[stack.n - 1] : root_fd;
        int fd = -1;
        for (int tries = 0;; tries++) {
            fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0)
                break;
            if (errno != ENOENT || create == VOL_CREATE_NONE) {
                r = vol_fail(err, errlen, errno, "%s \"%s\": component \"%s\"",
                             what, path, name);
                goto out;
            }
            if (tries == MAX_CREATE_TRIES) {
                r = vol_failx(err, errlen, EAGAIN,
                              "%s \"%s\": component \"%s\" keeps vanishing "
                              "while it is created",
                              what, path, name);
                goto out;
            }
            int c =
                create_component(dir, name, last && create == VOL_CREATE_FILE);
            if (c < 0) {
                r = vol_fail(err, errlen, -c, "%s \"%s\": creating \"%s\"",
                             what, path, name);
                goto out;
            }
        }

        struct stat st;
        if (fstat(fd, &st) < 0) {
            r = vol_fail(err, errlen, errno, "%s \"%s\": fstat \"%s\"", what,
                         path, name);
            close(fd);
            goto out;
        }
        if (S_ISLNK(st.st_mode)) {
            ssize_t n = readlinkat(fd, "", target, PATH_MAX);
            int e = errno;
            struct statfs sfs;
            bool proc =
                fstatfs(fd, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC;
            close(fd);
            if (flags & VOL_WALK_NO_SYMLINKS) {
                r = vol_failx(err, errlen, ELOOP,
                              "%s \"%s\": component \"%s\" is a symlink, "
                              "which is not followed here",
                              what, path, name);
                goto out;
            }
            /* openat2's RESOLVE_NO_MAGICLINKS, by hand: every symlink on
             * procfs (fd/N, cwd, root, exe, ns/...) is refused, not only
             * the magic ones; no volume belongs below a /proc. */
            if (proc) {
                r = vol_failx(err, errlen, ELOOP,
                              "%s \"%s\": component \"%s\" is a /proc "
                              "link, which is not followed",
                              what, path, name);
                goto out;
            }
            if (++links > MAX_SYMLINKS) {
                r = vol_fail(err, errlen, ELOOP, "%s \"%s\"", what, path);
                goto out;
            }
            if (n < 0 || n >= PATH_MAX) {
                r = vol_fail(err, errlen, n < 0 ? e : ENAMETOOLONG,
                             "%s \"%s\": reading symlink \"%s\"", what, path,
                             name);
                goto out;
            }
            target[n] = '\0';
            if (n == 0) {
                r = vol_failx(err, errlen, ENOENT,
                              "%s \"%s\": symlink \"%s\" is empty", what, path,
                              name);
                goto out;
            }
            /* Absolute targets mean the task's "/", which is root_fd. */
            if (target[0] == '/')
                fd_stack_clear(&stack);
            if (splice_link(&todo, target, todo + pos) < 0 ||
                strlen(todo) >= 2 * PATH_MAX) {
                r = vol_failx(err, errlen, ENAMETOOLONG,
                              "%s \"%s\": symlinks expand too far", what, path);
                goto out;
            }
            pos = 0;
            continue;
        }
        if (!last && !S_ISDIR(st.st_mode)) {
            close(fd);
            r = vol_fail(err, errlen, ENOTDIR, "%s \"%s\": component \"%s\"",
                         what, path, name);
            goto out;
        }
        if (fd_stack_push(&stack, fd) < 0) {
            close(fd);
            r = vol_fail(err, errlen, ENOMEM, "%s \"%s\"", what, path);
            goto out;
        }
    }

    if (stack.n == 0) {
        r = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
        if (r < 0)
            r = vol_fail(err, errlen, errno, "%s \"%s\": dup", what, path);
    } else {
        r = stack.fds[--stack.n];
    }
out:
    fd_stack_free(&stack);
    return r;
}

static long openat2_in_root(int root_fd, const char *path)
{
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    long fd;
    int tries = 0;
    /* EAGAIN: a rename raced a ".." step; the kernel asks us to retry. */
    do
        fd = syscall(SYS_openat2, root_fd, path, &how, sizeof how);
    while (fd < 0 && errno == EAGAIN && ++tries < MAX_EAGAIN_TRIES);
    return fd;
}

int vol_open_in_root(int root_fd, const char *path, enum vol_create create,
                     char *err, size_t errlen)
{
    return vol_resolve_in_root(root_fd, path, create, "path", err, errlen);
}

int vol_resolve_in_root(int root_fd, const char *path, enum vol_create create,
                        const char *what, char *err, size_t errlen)
{
    if (!path || !*path)
        return vol_failx(err, errlen, EINVAL, "%s: empty", what);
    if (!vol_have(VOL_FEATURE_OPENAT2))
        return vol_walk(root_fd, path, create, 0, what, err, errlen);

    long fd = openat2_in_root(root_fd, path);
    if (fd >= 0)
        return (int)fd;
    if (errno == ENOSYS || errno == EPERM) {
        /* EPERM: a seccomp filter that does not know openat2. */
        vol_mark_missing(VOL_FEATURE_OPENAT2);
        return vol_walk(root_fd, path, create, 0, what, err, errlen);
    }
    if (errno != ENOENT || create == VOL_CREATE_NONE)
        return vol_fail(err, errlen, errno, "%s \"%s\" in the task directory",
                        what, path);

    /* Create what is missing by the walk, then let the kernel resolve the
     * path again: both must name the same inode, or someone moved things
     * under us and we give up rather than guess. */
    cleanup_close int walked =
        vol_walk(root_fd, path, create, 0, what, err, errlen);
    if (walked < 0)
        return walked;
    fd = openat2_in_root(root_fd, path);
    if (fd < 0)
        return vol_fail(err, errlen, errno,
                        "%s \"%s\" in the task directory, after creating it",
                        what, path);
    struct stat a, b;
    if (fstat(walked, &a) < 0 || fstat((int)fd, &b) < 0 ||
        a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
        close((int)fd);
        return vol_failx(err, errlen, EAGAIN,
                         "%s \"%s\" changed while it was being created", what,
                         path);
    }
    return (int)fd;
}
