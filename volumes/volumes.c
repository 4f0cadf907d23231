/* The host volume catalogue, and what the module's files share: error
 * messages, kernel feature probes, forced fallbacks and the test hook. */
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "volumes/vol_internal.h"

/* ---- errors -------------------------------------------------------------- */

static int vformat(char *err, size_t errlen, int errnum, bool with_errno,
                   const char *fmt, va_list ap)
{
    if (err && errlen > 0) {
        int n = vsnprintf(err, errlen, fmt, ap);
        if (with_errno && n >= 0 && (size_t)n < errlen)
            snprintf(err + n, errlen - (size_t)n, ": %s", strerror(errnum));
    }
    return -errnum;
}

int vol_fail(char *err, size_t errlen, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vformat(err, errlen, errnum, true, fmt, ap);
    va_end(ap);
    return r;
}

int vol_failx(char *err, size_t errlen, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vformat(err, errlen, errnum, false, fmt, ap);
    va_end(ap);
    return r;
}

const char *vol_fd_path(char *buf, size_t len, int fd)
{
    snprintf(buf, len, "/proc/self/fd/%d", fd);
    return buf;
}

/* ---- features ------------------------------------------------------------ */

static bool probed;
static unsigned probed_features; /* what the kernel answered */
static unsigned missing;         /* found missing at run time */
static unsigned forced;          /* vol_force_fallbacks */

/* ENOSYS is the honest answer; container seccomp filters often say EPERM
 * for syscalls they do not know. Either way: use the fallback. */
static bool syscall_exists(long r)
{
    return r >= 0 || (errno != ENOSYS && errno != EPERM);
}

static void probe(void)
{
    if (probed)
        return;
    probed = true;

    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    long fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
    if (fd >= 0) {
        close((int)fd);
        probed_features |= VOL_FEATURE_OPENAT2;
    }

    /* Bad fds on purpose: a kernel with the call says EBADF. */
    struct mount_attr attr = {0};
    if (syscall_exists(syscall(SYS_open_tree, -1, "", AT_EMPTY_PATH)) &&
        syscall_exists(
            syscall(SYS_move_mount, -1, "", -1, "",
                    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)) &&
        syscall_exists(syscall(SYS_mount_setattr, -1, "", AT_EMPTY_PATH, &attr,
                               sizeof attr)))
        probed_features |= VOL_FEATURE_MOUNT_API;
}

unsigned vol_kernel_features(void)
{
    probe();
    return probed_features & ~missing & ~forced;
}

void vol_force_fallbacks(unsigned features)
{
    forced = features;
}

bool vol_have(unsigned feature)
{
    return (vol_kernel_features() & feature) == feature;
}

void vol_mark_missing(unsigned feature)
{
    missing |= feature;
}

/* ---- test hook ----------------------------------------------------------- */

static void (*test_hook)(enum vol_hook_point, void *);
static void *test_hook_arg;

void vol_set_test_hook(void (*hook)(enum vol_hook_point point, void *arg),
                       void *arg)
{
    test_hook = hook;
    test_hook_arg = arg;
}

void vol_run_hook(enum vol_hook_point point)
{
    if (test_hook)
        test_hook(point, test_hook_arg);
}

/* ---- catalogue ----------------------------------------------------------- */

#define PLACEMENT_TEXT "missing compatible host volumes"

int vol_catalog_add(struct vol_catalog *cat, const char *name, const char *path,
                    bool read_only, char *err, size_t errlen)
{
    if (!name || !*name)
        return vol_failx(err, errlen, EINVAL,
                         "host_volume: the block needs a name");
    if (!path || path[0] != '/')
        return vol_failx(err, errlen, EINVAL,
                         "host_volume \"%s\": path \"%s\" must be absolute",
                         name, path ? path : "");
    if (vol_catalog_find(cat, name))
        return vol_failx(err, errlen, EEXIST,
                         "host_volume \"%s\" is declared twice", name);

    struct vol_host_volume *v =
        realloc(cat->volumes, (cat->nvolumes + 1) * sizeof *v);
    if (!v)
        return vol_fail(err, errlen, ENOMEM, "host_volume \"%s\"", name);
    cat->volumes = v;
    v = &cat->volumes[cat->nvolumes];
    v->name = strdup(name);
    v->path = strdup(path);
    v->read_only = read_only;
    if (!v->name || !v->path) {
        free(v->name);
        free(v->path);
        return vol_fail(err, errlen, ENOMEM, "host_volume \"%s\"", name);
    }
    cat->nvolumes++;
    return 0;
}

void vol_catalog_free(struct vol_catalog *cat)
{
    if (!cat)
        return;
    for (size_t i = 0; i < cat->nvolumes; i++) {
        free(cat->volumes[i].name);
        free(cat->volumes[i].path);
    }
    free(cat->volumes);
    cat->volumes = NULL;
    cat->nvolumes = 0;
}

const struct vol_host_volume *vol_catalog_find(const struct vol_catalog *cat,
                                               const char *name)
{
    if (!cat || !name)
        return NULL;
    for (size_t i = 0; i < cat->nvolumes; i++)
        if (strcmp(cat->volumes[i].name, name) == 0)
            return &cat->volumes[i];
    return NULL;
}

int vol_check_request(const struct vol_catalog *cat, const char *alias,
                      const char *source, bool group_ro, bool mount_ro,
                      struct vol_resolved *out, char *err, size_t errlen)
{
    /* `volume "data" requests host volume "pg"`, or without an alias
     * `host volume "pg"`. */
    char who[256];
    const char *src = source ? source : "";
    if (alias)
        snprintf(who, sizeof who, "volume \"%s\" requests host volume \"%s\"",
                 alias, src);
    else
        snprintf(who, sizeof who, "host volume \"%s\"", src);

    if (!*src)
        return vol_failx(err, errlen, EINVAL,
                         PLACEMENT_TEXT ": %s, but its source is empty", who);
    const struct vol_host_volume *v = vol_catalog_find(cat, src);
    if (!v)
        return vol_failx(err, errlen, ENOENT,
                         PLACEMENT_TEXT ": %s which is not declared in the "
                                        "agent config (client { host_volume "
                                        "\"%s\" { ... } })",
                         who, src);
    /* Nomad's HostVolumeChecker: a read-only host volume only serves
     * read-only requests. The mount side alone cannot make it fit: the
     * group asks for the volume as a whole. */
    if (v->read_only && !group_ro)
        return vol_failx(err, errlen, EROFS,
                         PLACEMENT_TEXT ": %s read-write, but the agent "
                                        "config declares it read_only (set "
                                        "read_only = true in the job's volume "
                                        "block)",
                         who);
    struct stat st;
    if (stat(v->path, &st) < 0)
        return vol_fail(err, errlen, errno,
                        PLACEMENT_TEXT ": %s, declared with path \"%s\", "
                                       "which cannot be used",
                        who, v->path);
    if (out) {
        out->volume = v;
        out->source_path = v->path;
        out->read_only = v->read_only || group_ro || mount_ro;
    }
    return 0;
}
