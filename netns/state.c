/* state.c - <state_dir>/<alloc>.json (what a helper intends and has done)
 * and <state_dir>/<alloc>.lock (held by the helper working on it).
 *
 * Intent and the final result are written durably (fsync of file and
 * directory). The per-plugin progress in between is written atomically
 * but not fsynced: it guards against the helper or agent being killed,
 * and a kill does not lose the page cache; after a power loss the
 * namespace, veth and iptables rules are gone anyway, and the intent
 * still names the allocation for the IPAM lease. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netns/netns_internal.h"

char *netns_state_path(const char *dir, const char *alloc_id)
{
    return xasprintf("%s/%s.json", dir, alloc_id);
}

char *netns_lock_path(const char *dir, const char *alloc_id)
{
    return xasprintf("%s/%s.lock", dir, alloc_id);
}

int netns_state_lock(const char *dir, const char *alloc_id, int *out,
                     struct nc_error *err)
{
    int r = nc_mkdir_p(dir, 0700);
    if (r < 0)
        return nc_error_set(err, r, "create %s: %s", dir, strerror(-r));
    cleanup_free char *path = netns_lock_path(dir, alloc_id);
    for (;;) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            return nc_error_set(err, -errno, "open %s: %s", path,
                                strerror(errno));
        while (flock(fd, LOCK_EX) < 0) {
            if (errno != EINTR) {
                r = nc_error_set(err, -errno, "lock %s: %s", path,
                                 strerror(errno));
                close(fd);
                return r;
            }
        }
        /* the previous holder may have unlinked the file after a complete
         * DEL: then this lock guards nothing and we start over */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev) {
            char pid[24];
            int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
            if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0)
                LOG_DEBUG("netns", "write pid to %s: %s", path,
                          strerror(errno));
            *out = fd;
            return 0;
        }
        close(fd);
    }
}

void netns_state_unlock_remove(const char *dir, const char *alloc_id, int fd)
{
    cleanup_free char *path = netns_lock_path(dir, alloc_id);
    unlink(path);
    close(fd);
}

int netns_state_read(const char *dir, const char *alloc_id, json_t **out,
                     struct nc_error *err)
{
    cleanup_free char *path = netns_state_path(dir, alloc_id);
    size_t len;
    *out = NULL;
    cleanup_free char *text = nc_read_file(path, &len, 16u << 20);
    if (!text) {
        if (errno == ENOENT)
            return -ENOENT;
        return nc_error_set(err, -errno, "read %s: %s", path, strerror(errno));
    }
    json_error_t je;
    json_t *j = json_loadb(text, len, 0, &je);
    const char *why =
        !j                   ? je.text
        : !json_is_object(j) ? "not a JSON object"
        : !nc_streq(json_string_value(json_object_get(j, "AllocID")), alloc_id)
            ? "\"AllocID\" does not match the file name"
            : NULL;
    if (why) {
        json_decref(j);
        cleanup_free char *bad = xasprintf("%s.corrupt", path);
        rename(path, bad);
        return nc_error_set(err, -ENOENT, "%s: %s; moved to %s", path, why,
                            bad);
    }
    *out = j;
    return 0;
}

int netns_state_write(const char *dir, const char *alloc_id,
                      const json_t *state, bool durable, struct nc_error *err)
{
    cleanup_free char *path = netns_state_path(dir, alloc_id);
    cleanup_free char *text = json_dumps(state, JSON_COMPACT);
    if (!text)
        return nc_error_set(err, -EINVAL, "encode %s", path);
    size_t len = strlen(text);
    int r;
    if (durable) {
        r = nc_write_file_atomic(path, text, len, 0600);
    } else {
        cleanup_free char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        r = fd < 0 ? -errno : 0;
        if (fd >= 0) {
            ssize_t w = write(fd, text, len);
            if (w != (ssize_t)len)
                r = w < 0 ? -errno : -EIO;
            if (close(fd) < 0 && r == 0)
                r = -errno;
            if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
            if (r < 0)
                unlink(tmp);
        }
    }
    if (r < 0)
        return nc_error_set(err, r, "write %s: %s", path, strerror(-r));
    return 0;
}

int netns_state_remove(const char *dir, const char *alloc_id)
{
    cleanup_free char *path = netns_state_path(dir, alloc_id);
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

json_t *netns_state_best_result(const json_t *state)
{
    json_t *r = json_object_get(state, "Result");
    if (json_is_object(r))
        return r;
    json_t *results = json_object_get(state, "Results");
    for (size_t i = json_array_size(results); i > 0; i--) {
        r = json_array_get(results, i - 1);
        if (json_is_object(r))
            return r;
    }
    return NULL;
}
