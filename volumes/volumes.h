/* volumes - host volume catalogue and safe bind mounts into a task root.
 *
 * Only host volumes declared in the agent config
 * (client { host_volume "name" { path, read_only } }) can be mounted. A
 * task's volume_mount destination lies in task-writable space, so it is
 * resolved relative to the task root's fd with every symlink confined to
 * that root (openat2 RESOLVE_IN_ROOT, or a component-by-component O_PATH |
 * O_NOFOLLOW walk), and the mount is made from fd to fd (open_tree +
 * mount_setattr + move_mount, or mount(2) through /proc/self/fd/N), then
 * verified. This module knows nothing of jobs: client/ maps a job's
 * volume + volume_mount onto vol_check_request and vol_bind_mount.
 *
 * Every function returns 0 (or an fd) on success and a negative errno on
 * failure, writing "what failed: why: strerror" into err (when err is not
 * NULL and errlen > 0). Not thread-safe: the mount calls are meant for the
 * single-threaded task supervisor, inside its private mount namespace. */
#ifndef NOMCLIENT_VOLUMES_H
#define NOMCLIENT_VOLUMES_H

#include <stdbool.h>
#include <stddef.h>

/* ---- catalogue ----------------------------------------------------------- */

struct vol_host_volume {
    char *name;
    char *path; /* absolute host path */
    bool read_only;
};

/* The host volumes of the agent config. Caller-owned; zero-initialise it,
 * fill it with vol_catalog_add, release it with vol_catalog_free. */
struct vol_catalog {
    struct vol_host_volume *volumes;
    size_t nvolumes;
};

/* Copies name and path into the catalogue. -EINVAL for an empty name or a
 * path that is not absolute, -EEXIST for a name already declared. */
int vol_catalog_add(struct vol_catalog *cat, const char *name, const char *path,
                    bool read_only, char *err, size_t errlen);

/* Frees what the catalogue holds (not cat itself) and zeroes it; NULL ok. */
void vol_catalog_free(struct vol_catalog *cat);

/* The volume declared under name, or NULL. Borrowed from cat. */
const struct vol_host_volume *vol_catalog_find(const struct vol_catalog *cat,
                                               const char *name);

/* What a request resolves to; pointers are borrowed from the catalogue. */
struct vol_resolved {
    const struct vol_host_volume *volume;
    const char *source_path; /* == volume->path */
    bool read_only;          /* host, group or mount side asked read-only */
};

/* Checks a group `volume "<alias>" { type = "host", source = <source>,
 * read_only = group_ro }` used by a `volume_mount { read_only = mount_ro }`
 * against the catalogue, as Nomad's HostVolumeChecker does, and that the
 * declared path exists. alias is only used in messages and may be NULL.
 * Errors start with Nomad's placement text "missing compatible host
 * volumes" and say what to fix:
 *   -ENOENT  source not declared, or its path does not exist;
 *   -EROFS   a read-write request for a volume declared read_only.
 * On success *out holds the host path and the effective read-only flag. */
int vol_check_request(const struct vol_catalog *cat, const char *alias,
                      const char *source, bool group_ro, bool mount_ro,
                      struct vol_resolved *out, char *err, size_t errlen);

/* ---- paths inside a root ------------------------------------------------- */

enum vol_create {
    VOL_CREATE_NONE, /* everything must exist */
    VOL_CREATE_DIR,  /* create missing directories, the last one included */
    VOL_CREATE_FILE, /* create missing directories and an empty last file */
};

/* Opens path (absolute or relative, both taken from root) as an O_PATH |
 * O_CLOEXEC fd, following symlinks as if root were "/": absolute targets
 * restart at root and ".." stops at root, so the result is always inside
 * root; magic links (/proc/self/fd/...) are refused. Missing parts are
 * created with mkdirat/openat(O_EXCL) relative to the fds already open,
 * never through a symlink. Returns the fd (the caller closes it). */
int vol_open_in_root(int root_fd, const char *path, enum vol_create create,
                     char *err, size_t errlen);

/* ---- bind mounts --------------------------------------------------------- */

/* Bind-mounts source_path (a trusted host path, opened once with O_PATH so
 * a swap after the open is harmless) recursively onto destination inside
 * root_fd's tree, with nosuid and nodev, read-only when read_only (every
 * submount too). A missing destination is created inside the root: a
 * directory for a directory source, an empty file otherwise.
 *
 * Refused: an empty destination, one with ".." components (-EPERM), one
 * resolving to the root itself (-EINVAL), a file onto a directory or the
 * reverse (-EISDIR / -ENOTDIR). The result is verified (the mount shows the
 * source's dev+ino, carries the flags, and lies beneath the root) and
 * undone if it does not. Call it in the task's private mount namespace
 * (the caller has unshared it); mounts vanish with that namespace. On any
 * error the caller must not start the task: with the mount(2) fallback a
 * failure after the bind can leave that mount behind (inside the root). */
int vol_bind_mount(int root_fd, const char *source_path,
                   const char *destination, bool read_only, char *err,
                   size_t errlen);

/* ---- mounts left behind (restart cleanup) -------------------------------- */

/* One line of /proc/self/mountinfo, octal escapes (\040 ...) decoded. */
struct vol_mount {
    int id, parent_id;
    unsigned major, minor;
    char *root;
    char *mount_point;
    char *options; /* per-mount: "rw,nosuid,relatime" */
    char *fstype;
    char *source;
    char *super_options;
};

struct vol_mount_table {
    struct vol_mount *mounts; /* in file order: later ones lie on top */
    size_t nmounts;
};

/* Parses mountinfo text into *out (caller frees with vol_mount_table_free).
 * -EINVAL with the line number for a malformed line. */
int vol_mountinfo_parse(const char *text, struct vol_mount_table *out,
                        char *err, size_t errlen);

/* Reads and parses /proc/self/mountinfo. */
int vol_mountinfo_read(struct vol_mount_table *out, char *err, size_t errlen);

void vol_mount_table_free(struct vol_mount_table *t);

/* The mount points strictly below dir (not dir itself), deepest first and
 * the topmost of stacked mounts first: the order to unmount them in. dir is
 * compared as written, trailing slashes aside. *paths is an allocated array
 * of allocated strings (free with vol_paths_free), NULL when none. */
int vol_mounts_under(const struct vol_mount_table *t, const char *dir,
                     char ***paths, size_t *npaths);

void vol_paths_free(char **paths, size_t npaths);

/* Lazily unmounts (MNT_DETACH) every mount strictly below dir in this mount
 * namespace, deepest first, opening each mount point without following any
 * symlink so a planted link cannot redirect the unmount. Mounts already
 * gone are skipped. *unmounted (may be NULL) gets the count; on failures
 * the rest is still tried and the first error is returned. */
int vol_unmount_under(const char *dir, size_t *unmounted, char *err,
                      size_t errlen);

/* ---- kernel features and testing ----------------------------------------- */

enum {
    VOL_FEATURE_OPENAT2 = 1u << 0,   /* openat2 + RESOLVE_IN_ROOT (5.6) */
    VOL_FEATURE_MOUNT_API = 1u << 1, /* open_tree, move_mount (5.2) and
                                        mount_setattr (5.12) */
};

/* The features this kernel has (probed once), minus forced fallbacks. */
unsigned vol_kernel_features(void);

/* Pretends the given VOL_FEATURE_* are missing, so tests run the fallback
 * paths (the component walk, mount(2) + MS_REMOUNT) on any kernel. 0
 * restores the probed set. */
void vol_force_fallbacks(unsigned features);

enum vol_hook_point {
    VOL_HOOK_RESOLVED, /* destination resolved and opened, nothing mounted */
    VOL_HOOK_MOUNTED,  /* mount(2) fallback only: bound, not yet reopened */
};

/* Test hook called by vol_bind_mount at the points above, so tests can
 * race it deterministically (swap a symlink in). NULL removes it. */
void vol_set_test_hook(void (*hook)(enum vol_hook_point point, void *arg),
                       void *arg);

#endif
