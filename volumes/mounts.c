/* /proc/self/mountinfo: parsing, the mounts below a directory, and
 * unmounting them (restart cleanup of what we left under data_dir). */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "volumes/vol_internal.h"

/* The kernel escapes space, tab, newline and backslash in paths as \ooo. */
static char *unescape(const char *s, size_t len)
{
    char *out = malloc(len + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        const char *d = s + i + 1;
        if (s[i] == '\\' && i + 3 < len && d[0] >= '0' && d[0] <= '3' &&
            d[1] >= '0' && d[1] <= '7' && d[2] >= '0' && d[2] <= '7') {
            *o++ = (char)((d[0] - '0') << 6 | (d[1] - '0') << 3 | (d[2] - '0'));
            i += 3;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static void mount_free(struct vol_mount *m)
{
    free(m->root);
    free(m->mount_point);
    free(m->options);
    free(m->fstype);
    free(m->source);
    free(m->super_options);
}

void vol_mount_table_free(struct vol_mount_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nmounts; i++)
        mount_free(&t->mounts[i]);
    free(t->mounts);
    t->mounts = NULL;
    t->nmounts = 0;
}

/* Splits line (len bytes, no newline) at spaces into at most max fields. */
static size_t split_fields(const char *line, size_t len, const char **f,
                           size_t *flen, size_t max)
{
    size_t n = 0, i = 0;
    while (i < len && n < max) {
        while (i < len && line[i] == ' ')
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && line[i] != ' ')
            i++;
        f[n] = line + start;
        flen[n] = i - start;
        n++;
    }
    return n;
}

static bool parse_int(const char *s, size_t len, int *out)
{
    char buf[16];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    long v = strtol(buf, &end, 10);
    if (*end || v < 0 || v > INT_MAX)
        return false;
    *out = (int)v;
    return true;
}

static int parse_line(const char *line, size_t len, struct vol_mount *m)
{
    enum { MAXF = 64 };
    const char *f[MAXF];
    size_t fl[MAXF];
    size_t n = split_fields(line, len, f, fl, MAXF);
    /* id parent maj:min root mount_point options [optional...] - fstype
     * source super_options */
    size_t dash = 6;
    while (dash < n && !(fl[dash] == 1 && f[dash][0] == '-'))
        dash++;
    if (n < 6 || dash + 2 >= n)
        return -EINVAL;
    if (!parse_int(f[0], fl[0], &m->id) ||
        !parse_int(f[1], fl[1], &m->parent_id))
        return -EINVAL;
    char dev[32];
    if (fl[2] >= sizeof dev)
        return -EINVAL;
    memcpy(dev, f[2], fl[2]);
    dev[fl[2]] = '\0';
    char tail;
    if (sscanf(dev, "%u:%u%c", &m->major, &m->minor, &tail) != 2)
        return -EINVAL;
    m->root = unescape(f[3], fl[3]);
    m->mount_point = unescape(f[4], fl[4]);
    m->options = unescape(f[5], fl[5]);
    m->fstype = unescape(f[dash + 1], fl[dash + 1]);
    m->source = unescape(f[dash + 2], fl[dash + 2]);
    m->super_options =
        dash + 3 < n ? unescape(f[dash + 3], fl[dash + 3]) : strdup("");
    if (!m->root || !m->mount_point || !m->options || !m->fstype ||
        !m->source || !m->super_options)
        return -ENOMEM;
    return 0;
}

int vol_mountinfo_parse(const char *text, struct vol_mount_table *out,
                        char *err, size_t errlen)
{
    struct vol_mount_table t = {0};
    size_t cap = 0, lineno = 0;
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        lineno++;
        if (len > 0) {
            if (t.nmounts == cap) {
                cap = cap ? cap * 2 : 64;
                struct vol_mount *m = realloc(t.mounts, cap * sizeof *m);
                if (!m) {
                    vol_mount_table_free(&t);
                    return vol_fail(err, errlen, ENOMEM, "mountinfo");
                }
                t.mounts = m;
            }
            struct vol_mount *m = &t.mounts[t.nmounts];
            memset(m, 0, sizeof *m);
            int r = parse_line(p, len, m);
            if (r < 0) {
                mount_free(m);
                vol_mount_table_free(&t);
                if (r == -ENOMEM)
                    return vol_fail(err, errlen, ENOMEM, "mountinfo");
                return vol_failx(err, errlen, EINVAL,
                                 "mountinfo line %zu: malformed: %.*s", lineno,
                                 (int)(len > 120 ? 120 : len), p);
            }
            t.nmounts++;
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    *out = t;
    return 0;
}

int vol_mountinfo_read(struct vol_mount_table *out, char *err, size_t errlen)
{
    cleanup_close int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vol_fail(err, errlen, errno, "/proc/self/mountinfo");
    size_t cap = 16384, len = 0;
    cleanup_free char *buf = malloc(cap);
    if (!buf)
        return vol_fail(err, errlen, ENOMEM, "/proc/self/mountinfo");
    for (;;) {
        if (cap - len < 4096) {
            char *b = realloc(buf, cap * 2);
            if (!b)
                return vol_fail(err, errlen, ENOMEM, "/proc/self/mountinfo");
            buf = b;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return vol_fail(err, errlen, errno, "reading /proc/self/mountinfo");
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return vol_mountinfo_parse(buf, out, err, errlen);
}

/* ---- below a directory --------------------------------------------------- */

struct ranked {
    size_t index, depth;
};

static int deepest_first(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->depth != y->depth)
        return x->depth < y->depth ? 1 : -1;
    /* Same depth: later in mountinfo lies on top, so goes first. */
    return x->index < y->index ? 1 : x->index > y->index ? -1 : 0;
}

void vol_paths_free(char **paths, size_t npaths)
{
    if (!paths)
        return;
    for (size_t i = 0; i < npaths; i++)
        free(paths[i]);
    free(paths);
}

int vol_mounts_under(const struct vol_mount_table *t, const char *dir,
                     char ***paths, size_t *npaths)
{
    *paths = NULL;
    *npaths = 0;
    size_t dl = strlen(dir);
    while (dl > 0 && dir[dl - 1] == '/')
        dl--; /* "/" becomes "": everything but "/" itself is below */

    cleanup_free struct ranked *r = calloc(t->nmounts + 1, sizeof *r);
    if (!r)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < t->nmounts; i++) {
        const char *mp = t->mounts[i].mount_point;
        if (strncmp(mp, dir, dl) != 0 || mp[dl] != '/' || mp[dl + 1] == '\0')
            continue;
        size_t depth = 0;
        for (const char *c = mp; *c; c++)
            depth += *c == '/';
        r[n++] = (struct ranked){i, depth};
    }
    if (n == 0)
        return 0;
    qsort(r, n, sizeof *r, deepest_first);
    char **out = calloc(n, sizeof *out);
    if (!out)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(t->mounts[r[i].index].mount_point);
        if (!out[i]) {
            vol_paths_free(out, i);
            return -ENOMEM;
        }
    }
    *paths = out;
    *npaths = n;
    return 0;
}

int vol_unmount_under(const char *dir, size_t *unmounted, char *err,
                      size_t errlen)
{
    if (unmounted)
        *unmounted = 0;
    /* mountinfo shows canonical paths; so must we. */
    cleanup_free char *canon = realpath(dir, NULL);
    if (!canon) {
        if (errno == ENOENT)
            return 0; /* nothing can be mounted below what is not there */
        return vol_fail(err, errlen, errno, "unmounting below \"%s\"", dir);
    }
    struct vol_mount_table t = {0};
    int r = vol_mountinfo_read(&t, err, errlen);
    if (r < 0)
        return r;
    char **paths;
    size_t npaths;
    r = vol_mounts_under(&t, canon, &paths, &npaths);
    vol_mount_table_free(&t);
    if (r < 0)
        return vol_fail(err, errlen, -r, "unmounting below \"%s\"", dir);

    cleanup_close int slash = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (slash < 0) {
        vol_paths_free(paths, npaths);
        return vol_fail(err, errlen, errno, "open /");
    }
    int first = 0;
    char msg[512];
    for (size_t i = 0; i < npaths; i++) {
        /* No symlink followed: a task cannot point us at a host mount. */
        cleanup_close int fd =
            vol_walk(slash, paths[i], VOL_CREATE_NONE, VOL_WALK_NO_SYMLINKS,
                     "mount point", msg, sizeof msg);
        if (fd == -ENOENT)
            continue; /* went with a parent */
        int e = 0;
        char link[32];
        if (fd < 0)
            e = -fd;
        else if (umount2(vol_fd_path(link, sizeof link, fd), MNT_DETACH) < 0) {
            if (errno == EINVAL)
                continue; /* no longer a mount point */
            e = errno;
            vol_fail(msg, sizeof msg, e, "unmounting \"%s\"", paths[i]);
        }
        if (e == 0) {
            if (unmounted)
                (*unmounted)++;
        } else if (first == 0) {
            first = -e;
            if (err && errlen)
                snprintf(err, errlen, "%s", msg);
        }
    }
    vol_paths_free(paths, npaths);
    return first;
}
