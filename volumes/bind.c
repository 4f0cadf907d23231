/* Bind-mounting a host volume into a task root.
 *
 * Both ends are open fds before anything is mounted: the source is opened
 * once by its (trusted) host path, the destination is resolved inside the
 * root (path.c). What happens between the checks and the mount cannot
 * redirect it: the mount goes onto the very inode that was checked.
 *
 * With the new mount API (open_tree, mount_setattr, move_mount) the copy
 * of the source tree gets nosuid, nodev and read-only on every submount
 * while still detached, and is attached by fd: it is never visible
 * writable, and the fd from open_tree is the mount itself for the checks.
 * Otherwise, as bubblewrap does: mount(MS_BIND | MS_REC) through
 * /proc/self/fd/N, find the new mount in mountinfo, reopen it without
 * following symlinks, and remount it and each submount with
 * MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV plus whatever
 * per-mount flags it already had (flags locked in a user namespace cannot
 * be cleared, and dropping relatime would be clearing one).
 *
 * Either way the result is checked: it shows the source's dev+ino, has the
 * flags, and lies beneath the root. A failed check unmounts it. */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

#include "volumes/vol_internal.h"

#define FALLBACK 1 /* not an error: use mount(2) instead */

struct bind_ctx {
    int root_fd, src_fd, dst_fd;
    struct stat root_st, src_st;
    bool read_only;
    const char *source_path, *destination;
    char *err;
    size_t errlen;
};

static bool same_inode(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static bool has_dotdot(const char *path)
{
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p += n;
        while (*p == '/')
            p++;
    }
    return false;
}

/* The path the kernel has for fd, allocated; NULL when it has none that
 * leads back to it (deleted, or outside our root). */
static char *fd_readlink(int fd)
{
    char link[32], buf[PATH_MAX];
    ssize_t n = readlink(vol_fd_path(link, sizeof link, fd), buf, sizeof buf);
    if (n <= 0 || (size_t)n >= sizeof buf || buf[0] != '/')
        return NULL;
    buf[n] = '\0';
    static const char deleted[] = " (deleted)";
    size_t dl = sizeof deleted - 1;
    if ((size_t)n > dl && strcmp(buf + n - dl, deleted) == 0)
        return NULL;
    return strdup(buf);
}

/* The id of the mount fd lies on, from /proc/self/fdinfo (any kernel since
 * 3.15, unlike statx's STATX_MNT_ID). */
static int fd_mount_id(int fd)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    int id = -ENOENT;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "mnt_id: %d", &id) == 1)
            break;
    fclose(f);
    return id;
}

/* ---- checks -------------------------------------------------------------- */

/* Is fd (a directory) beneath the root? Climb ".." (which crosses from a
 * mount's root to where it is mounted) until the root shows up, or a
 * directory that is its own parent: the namespace's "/", so outside. */
static int dir_beneath_root(struct bind_ctx *c, int fd)
{
    cleanup_close int cur = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (cur < 0)
        return -errno;
    for (int depth = 0; depth < 4096; depth++) {
        struct stat st, up;
        if (fstat(cur, &st) < 0)
            return -errno;
        if (same_inode(&st, &c->root_st))
            return 0;
        int parent = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (parent < 0)
            return -errno;
        close(cur);
        cur = parent;
        if (fstat(cur, &up) < 0)
            return -errno;
        if (same_inode(&st, &up))
            return -EXDEV;
    }
    return -ELOOP;
}

/* A file has no "..": compare the kernel's paths of the two instead. */
static int file_beneath_root(struct bind_ctx *c, int fd)
{
    cleanup_free char *root = fd_readlink(c->root_fd);
    cleanup_free char *file = fd_readlink(fd);
    if (!root || !file)
        return -ENOENT;
    size_t n = strlen(root);
    if (n == 1) /* the root is "/" */
        return 0;
    return strncmp(file, root, n) == 0 && file[n] == '/' ? 0 : -EXDEV;
}

/* newfd is the root of the mount just made. */
static int verify(struct bind_ctx *c, int newfd)
{
    struct stat st;
    struct statvfs sv;
    if (fstat(newfd, &st) < 0 || fstatvfs(newfd, &sv) < 0)
        return vol_fail(c->err, c->errlen, errno,
                        "volume destination \"%s\": checking the mount",
                        c->destination);
    if (!same_inode(&st, &c->src_st))
        return vol_failx(c->err, c->errlen, EIO,
                         "volume destination \"%s\": the mount shows inode "
                         "%ju:%ju, not host volume path \"%s\" (%ju:%ju)",
                         c->destination, (uintmax_t)st.st_dev,
                         (uintmax_t)st.st_ino, c->source_path,
                         (uintmax_t)c->src_st.st_dev,
                         (uintmax_t)c->src_st.st_ino);
    unsigned long want = ST_NOSUID | ST_NODEV | (c->read_only ? ST_RDONLY : 0);
    if ((sv.f_flag & want) != want)
        return vol_failx(c->err, c->errlen, EIO,
                         "volume destination \"%s\": the mount lacks%s%s%s",
                         c->destination, sv.f_flag & ST_NOSUID ? "" : " nosuid",
                         sv.f_flag & ST_NODEV ? "" : " nodev",
                         !c->read_only || sv.f_flag & ST_RDONLY ? "" : " ro");
    int r = S_ISDIR(st.st_mode) ? dir_beneath_root(c, newfd)
                                : file_beneath_root(c, newfd);
    if (r < 0)
        return vol_fail(c->err, c->errlen, -r,
                        "volume destination \"%s\": the mount is not inside "
                        "the task directory",
                        c->destination);
    return 0;
}

/* ---- open_tree + mount_setattr + move_mount ------------------------------ */

static int bind_with_mount_api(struct bind_ctx *c)
{
    cleanup_close int tree = (int)syscall(SYS_open_tree, c->src_fd, "",
                                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
                                              AT_EMPTY_PATH | AT_RECURSIVE);
    if (tree < 0) {
        /* As crun: ENOSYS, a seccomp EPERM or an EINVAL from an older
         * kernel all send us to mount(2), which reports its own error. */
        if (errno == ENOSYS)
            vol_mark_missing(VOL_FEATURE_MOUNT_API);
        if (errno == ENOSYS || errno == EPERM || errno == EINVAL)
            return FALLBACK;
        return vol_fail(c->err, c->errlen, errno,
                        "host volume path \"%s\": open_tree", c->source_path);
    }

    struct mount_attr attr = {
        .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                    (c->read_only ? MOUNT_ATTR_RDONLY : 0),
        .propagation = MS_PRIVATE,
    };
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE,
                &attr, sizeof attr) < 0) {
        if (errno == ENOSYS)
            vol_mark_missing(VOL_FEATURE_MOUNT_API);
        if (errno == ENOSYS || errno == EPERM || errno == EINVAL)
            return FALLBACK; /* the detached copy goes with the fd */
        return vol_fail(c->err, c->errlen, errno,
                        "host volume path \"%s\": mount_setattr",
                        c->source_path);
    }

    if (syscall(SYS_move_mount, tree, "", c->dst_fd, "",
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        return vol_fail(c->err, c->errlen, errno,
                        "mounting host volume path \"%s\" on volume "
                        "destination \"%s\": move_mount",
                        c->source_path, c->destination);

    int r = verify(c, tree);
    if (r < 0) {
        char link[32];
        umount2(vol_fd_path(link, sizeof link, tree), MNT_DETACH);
    }
    return r;
}

/* ---- mount(2) ------------------------------------------------------------ */

/* Adds nosuid, nodev and maybe rdonly to the mount whose root is fd, keeping
 * the per-mount flags it has. where: "volume destination" or "submount". */
static int remount(struct bind_ctx *c, int fd, const char *where,
                   const char *path)
{
    struct statvfs sv;
    if (fstatvfs(fd, &sv) < 0)
        return vol_fail(c->err, c->errlen, errno, "%s \"%s\": statvfs", where,
                        path);
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV;
    if (c->read_only || sv.f_flag & ST_RDONLY)
        flags |= MS_RDONLY;
    if (sv.f_flag & ST_NOEXEC)
        flags |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME)
        flags |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        flags |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        flags |= MS_RELATIME;
    char link[32];
    if (mount("none", vol_fd_path(link, sizeof link, fd), NULL, flags, NULL) <
        0)
        return vol_fail(c->err, c->errlen, errno,
                        "%s \"%s\": remounting nosuid,nodev%s", where, path,
                        flags & MS_RDONLY ? ",ro" : "");
    return 0;
}

static const struct vol_mount *find_mount(const struct vol_mount_table *t,
                                          int id)
{
    for (size_t i = 0; i < t->nmounts; i++)
        if (t->mounts[i].id == id)
            return &t->mounts[i];
    return NULL;
}

static bool is_descendant(const struct vol_mount_table *t,
                          const struct vol_mount *m, int ancestor)
{
    for (size_t hops = 0; m && hops < t->nmounts; hops++) {
        if (m->parent_id == ancestor)
            return true;
        if (m->parent_id == m->id)
            return false;
        m = find_mount(t, m->parent_id);
    }
    return false;
}

/* Remounts every submount of the new mount `top` (mounted at mp) that can
 * be reached from newfd; ones hidden under another mount on the same
 * point are out of reach for the task as well. */
static int remount_submounts(struct bind_ctx *c,
                             const struct vol_mount_table *t, int top,
                             const char *mp, int newfd)
{
    size_t mplen = strlen(mp);
    for (size_t i = 0; i < t->nmounts; i++) {
        const struct vol_mount *m = &t->mounts[i];
        if (!is_descendant(t, m, top))
            continue;
        if (strncmp(m->mount_point, mp, mplen) != 0 ||
            m->mount_point[mplen] != '/')
            return vol_failx(c->err, c->errlen, EIO,
                             "volume destination \"%s\": submount \"%s\" is "
                             "not below \"%s\"",
                             c->destination, m->mount_point, mp);
        cleanup_close int fd =
            vol_walk(newfd, m->mount_point + mplen, VOL_CREATE_NONE,
                     VOL_WALK_NO_SYMLINKS, "submount", c->err, c->errlen);
        if (fd < 0)
            return fd;
        int id = fd_mount_id(fd);
        if (id != m->id) {
            const struct vol_mount *other = find_mount(t, id);
            if (other && is_descendant(t, other, top))
                continue; /* stacked: the one on top is done in turn */
            return vol_failx(c->err, c->errlen, EIO,
                             "volume destination \"%s\": submount \"%s\" "
                             "changed while being remounted",
                             c->destination, m->mount_point);
        }
        int r = remount(c, fd, "submount", m->mount_point);
        if (r < 0)
            return r;
    }
    return 0;
}

static void table_freep(struct vol_mount_table *t)
{
    vol_mount_table_free(t);
}

#define cleanup_table __attribute__((cleanup(table_freep)))

static int bind_with_mount(struct bind_ctx *c)
{
    char srcl[32], dstl[32];
    /* After the mount, dst_fd still names the inode underneath; the mount
     * is found by where dst_fd lies and which mount it lies on. */
    cleanup_free char *mp = fd_readlink(c->dst_fd);
    if (!mp)
        return vol_failx(c->err, c->errlen, ENOENT,
                         "volume destination \"%s\" was removed before it "
                         "could be mounted on",
                         c->destination);
    int dst_mount = fd_mount_id(c->dst_fd);
    if (dst_mount < 0)
        return vol_fail(c->err, c->errlen, -dst_mount,
                        "volume destination \"%s\": /proc/self/fdinfo",
                        c->destination);
    cleanup_close int slash = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (slash < 0)
        return vol_fail(c->err, c->errlen, errno, "open /");
    cleanup_table struct vol_mount_table before = {0}, after = {0};
    int r = vol_mountinfo_read(&before, c->err, c->errlen);
    if (r < 0)
        return r;

    /* From here on a failure may leave the mount in place, inside the
     * root: the caller gives up the task and its mount namespace. */
    if (mount(vol_fd_path(srcl, sizeof srcl, c->src_fd),
              vol_fd_path(dstl, sizeof dstl, c->dst_fd), NULL, MS_BIND | MS_REC,
              NULL) < 0)
        return vol_fail(c->err, c->errlen, errno,
                        "mounting host volume path \"%s\" on volume "
                        "destination \"%s\"",
                        c->source_path, c->destination);
    vol_run_hook(VOL_HOOK_MOUNTED);

    r = vol_mountinfo_read(&after, c->err, c->errlen);
    if (r < 0)
        return r;
    /* Ours: new, and on top of the destination's mount (its submounts sit
     * on it instead). Normally at the path the destination had; if the
     * task renamed a directory meanwhile, at the path the kernel shows. */
    const struct vol_mount *top = NULL;
    size_t candidates = 0;
    for (size_t i = 0; i < after.nmounts; i++) {
        const struct vol_mount *m = &after.mounts[i];
        if (m->parent_id != dst_mount || find_mount(&before, m->id))
            continue;
        candidates++;
        if (!top || strcmp(m->mount_point, mp) == 0)
            top = m;
    }
    if (!top || (candidates > 1 && strcmp(top->mount_point, mp) != 0))
        return vol_failx(c->err, c->errlen, EIO,
                         "volume destination \"%s\": the new mount is not in "
                         "/proc/self/mountinfo at \"%s\"",
                         c->destination, mp);

    /* Reopen it by that path, following no symlink: if the task moves
     * things meanwhile, what we reach is not our mount and we stop. */
    cleanup_close int newfd =
        vol_walk(slash, top->mount_point, VOL_CREATE_NONE, VOL_WALK_NO_SYMLINKS,
                 "new mount", c->err, c->errlen);
    if (newfd < 0)
        return newfd;
    if (fd_mount_id(newfd) != top->id)
        return vol_failx(c->err, c->errlen, EIO,
                         "volume destination \"%s\" moved while being "
                         "mounted",
                         c->destination);

    r = remount(c, newfd, "volume destination", c->destination);
    if (r == 0)
        r = remount_submounts(c, &after, top->id, top->mount_point, newfd);
    if (r == 0)
        r = verify(c, newfd);
    if (r < 0)
        umount2(vol_fd_path(dstl, sizeof dstl, newfd), MNT_DETACH);
    return r;
}

/* ---- entry point --------------------------------------------------------- */

int vol_bind_mount(int root_fd, const char *source_path,
                   const char *destination, bool read_only, char *err,
                   size_t errlen)
{
    if (!destination || !*destination)
        return vol_failx(err, errlen, EINVAL, "volume destination: empty");
    if (has_dotdot(destination))
        return vol_failx(err, errlen, EPERM,
                         "volume destination \"%s\": \"..\" is not allowed, "
                         "the path must stay inside the task directory",
                         destination);
    if (!source_path || source_path[0] != '/')
        return vol_failx(err, errlen, EINVAL,
                         "host volume path \"%s\" is not absolute",
                         source_path ? source_path : "");

    struct bind_ctx c = {
        .root_fd = root_fd,
        .read_only = read_only,
        .source_path = source_path,
        .destination = destination,
        .err = err,
        .errlen = errlen,
    };
    if (fstat(root_fd, &c.root_st) < 0)
        return vol_fail(err, errlen, errno, "task directory fd %d", root_fd);
    if (!S_ISDIR(c.root_st.st_mode))
        return vol_fail(err, errlen, ENOTDIR, "task directory fd %d", root_fd);

    cleanup_close int src = open(source_path, O_PATH | O_CLOEXEC);
    if (src < 0 || fstat(src, &c.src_st) < 0)
        return vol_fail(err, errlen, errno, "host volume path \"%s\"",
                        source_path);
    c.src_fd = src;

    bool dir = S_ISDIR(c.src_st.st_mode);
    cleanup_close int dst = vol_resolve_in_root(
        root_fd, destination, dir ? VOL_CREATE_DIR : VOL_CREATE_FILE,
        "volume destination", err, errlen);
    if (dst < 0)
        return dst;
    c.dst_fd = dst;

    struct stat st;
    if (fstat(dst, &st) < 0)
        return vol_fail(err, errlen, errno, "volume destination \"%s\"",
                        destination);
    if (same_inode(&st, &c.root_st))
        return vol_failx(err, errlen, EINVAL,
                         "volume destination \"%s\" is the task directory "
                         "itself",
                         destination);
    if (dir && !S_ISDIR(st.st_mode))
        return vol_failx(err, errlen, ENOTDIR,
                         "volume destination \"%s\" is not a directory, but "
                         "host volume path \"%s\" is",
                         destination, source_path);
    if (!dir && S_ISDIR(st.st_mode))
        return vol_failx(err, errlen, EISDIR,
                         "volume destination \"%s\" is a directory, but host "
                         "volume path \"%s\" is not",
                         destination, source_path);

    vol_run_hook(VOL_HOOK_RESOLVED);

    if (vol_have(VOL_FEATURE_MOUNT_API)) {
        int r = bind_with_mount_api(&c);
        if (r != FALLBACK)
            return r;
    }
    return bind_with_mount(&c);
}
