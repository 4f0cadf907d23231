/* state.c - <state_dir>/<alloc>.json (what a helper intends and has done)
 * and the allocation's lock: a byte of <state_dir>/.locks, an open file
 * description lock (fcntl F_OFD_SETLKW) held by the thread working on it.
 * One file made once and kept, since making a file per set-up costs
 * 0.2-0.3 ms on some filesystems while another fsync is committing, and
 * OFD locks are per open file, so they hold between the threads of one
 * helper as between processes, and go with the holder's death.
 *
 * The state file is a small journal: its first line is the whole intent
 * (conflist, port mappings, namespace path), written to a temporary file,
 * fsynced and renamed into place before anything is created; every later
 * line is an update merged over it (a plugin's result, the final result,
 * a phase change), appended with one write(2). A killed process cannot
 * tear a write to the page cache, so appends need neither a rename (ext4
 * flushes data on rename-over, ~0.5 ms) nor an fsync: after a power loss
 * the namespace, veth and iptables rules are gone anyway, and the durable
 * intent still names the allocation for its IPAM lease. A torn last line
 * is ignored. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

/* Where an allocation's lock lies in the lock file: a byte at an offset
 * from a 62-bit hash of its id (FNV-1a), so two allocations never share
 * one in practice. */
off_t netns_lock_offset(const char *alloc_id)
{
    uint64_t h = 14695981039346656037ull;
    for (const char *p = alloc_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return (off_t)(h >> 2);
}

int netns_state_lock(const char *dir, const char *alloc_id, int *out,
                     struct nc_error *err)
{
    int r;
    cleanup_free char *path = xasprintf("%s/%s", dir, NETNS_LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
        if ((r = nc_mkdir_p(dir, 0700)) < 0)
            return nc_error_set(err, r, "create %s: %s", dir, strerror(-r));
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    }
    if (fd < 0)
        return nc_error_set(err, -errno, "open %s: %s", path, strerror(errno));
    struct flock fl = {
        .l_type = F_WRLCK,
        .l_whence = SEEK_SET,
        .l_start = netns_lock_offset(alloc_id),
        .l_len = 1,
    };
    while (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
        if (errno != EINTR) {
            r = nc_error_set(err, -errno, "lock allocation %s in %s: %s",
                             alloc_id, path, strerror(errno));
            close(fd);
            return r;
        }
    }
    *out = fd;
    return 0;
}

int netns_state_parse(const char *text, size_t len, const char *alloc_id,
                      json_t **out, char *why, size_t whylen)
{
    json_error_t je;
    *out = NULL;
    const char *end = text + len;
    const char *nl = memchr(text, '\n', len);
    size_t first = nl ? (size_t)(nl - text) : len;
    json_t *st = json_loadb(text, first, 0, &je);
    const char *bad =
        !st                   ? je.text
        : !json_is_object(st) ? "not a JSON object"
        : !nc_streq(json_string_value(json_object_get(st, "AllocID")), alloc_id)
            ? "\"AllocID\" does not match the file name"
            : NULL;
    if (bad) {
        snprintf(why, whylen, "line 1: %s", bad);
        json_decref(st);
        return -EINVAL;
    }
    int line = 1;
    for (const char *p = nl ? nl + 1 : end; p < end; line++) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) /* torn append: the writer died mid-line */
            break;
        json_t *u = json_loadb(p, (size_t)(e - p), 0, NULL);
        p = e + 1;
        if (!json_is_object(u)) {
            json_decref(u);
            break;
        }
        json_t *add = json_object_get(u, "Results+");
        if (add) {
            json_t *results = json_object_get(st, "Results");
            if (!json_is_array(results)) {
                results = json_array();
                json_object_set_new(st, "Results", results);
            }
            json_array_append(results, add);
            json_object_del(u, "Results+");
        }
        json_object_update(st, u);
        json_decref(u);
    }
    *out = st;
    return 0;
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
    char why[256];
    if (netns_state_parse(text, len, alloc_id, out, why, sizeof(why)) < 0) {
        cleanup_free char *bad = xasprintf("%s.corrupt", path);
        rename(path, bad);
        return nc_error_set(err, -ENOENT, "%s: %s; moved to %s", path, why,
                            bad);
    }
    return 0;
}

static void *sync_thread(void *arg)
{
    struct netns_state_sync *s = arg;
    if (fsync(s->fd) < 0 || fsync(s->dirfd) < 0)
        s->result = -errno;
    return NULL;
}

int netns_state_write_begin(const char *dir, const char *alloc_id,
                            const json_t *state, struct netns_state_sync *s,
                            struct nc_error *err)
{
    memset(s, 0, sizeof(*s));
    s->fd = s->dirfd = -1;
    cleanup_free char *path = netns_state_path(dir, alloc_id);
    cleanup_free char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    cleanup_free char *text = json_dumps(state, JSON_COMPACT);
    if (!text)
        return nc_error_set(err, -EINVAL, "encode %s", path);
    cleanup_free char *line = xasprintf("%s\n", text);
    size_t len = strlen(line);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return nc_error_set(err, -errno, "write %s: %s", tmp, strerror(errno));
    ssize_t w = write(fd, line, len);
    int r = w == (ssize_t)len ? 0 : w < 0 ? -errno : -EIO;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0) {
        close(fd);
        unlink(tmp);
        return nc_error_set(err, r, "write %s: %s", path, strerror(-r));
    }
    s->fd = fd;
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        r = nc_error_set(err, -errno, "open %s: %s", dir, strerror(errno));
        close(s->fd);
        s->fd = -1;
        return r;
    }
    s->pending = true;
    if (pthread_create(&s->thread, NULL, sync_thread, s) == 0)
        s->threaded = true;
    else
        sync_thread(s);
    return 0;
}

int netns_state_write_end(struct netns_state_sync *s, struct nc_error *err)
{
    if (!s->pending)
        return 0;
    if (s->threaded)
        pthread_join(s->thread, NULL);
    s->pending = s->threaded = false;
    close(s->fd);
    close(s->dirfd);
    s->fd = s->dirfd = -1;
    if (s->result < 0)
        return nc_error_set(err, s->result, "fsync the state file: %s",
                            strerror(-s->result));
    return 0;
}

int netns_state_write(const char *dir, const char *alloc_id,
                      const json_t *state, struct nc_error *err)
{
    struct netns_state_sync s;
    int r = netns_state_write_begin(dir, alloc_id, state, &s, err);
    return r < 0 ? r : netns_state_write_end(&s, err);
}

int netns_state_append(const char *dir, const char *alloc_id,
                       const json_t *update, struct nc_error *err)
{
    cleanup_free char *path = netns_state_path(dir, alloc_id);
    cleanup_free char *text = json_dumps(update, JSON_COMPACT);
    if (!text)
        return nc_error_set(err, -EINVAL, "encode an update of %s", path);
    cleanup_free char *line = xasprintf("%s\n", text);
    size_t len = strlen(line);
    cleanup_close int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return nc_error_set(err, -errno, "append to %s: %s", path,
                            strerror(errno));
    ssize_t w = write(fd, line, len);
    if (w != (ssize_t)len)
        return nc_error_set(err, w < 0 ? -errno : -EIO, "append to %s: %s",
                            path, w < 0 ? strerror(errno) : "short write");
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
