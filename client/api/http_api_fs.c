/* http_api_fs.c - an allocation's files, as Nomad's /v1/client/fs/ serves
 * them: ls, stat, cat, readat and stream (followed through inotify).
 *
 * Paths are taken relative to the allocation dir (a leading "/" is its
 * root, as with Nomad), checked lexically for "../" first, then opened
 * with openat2(RESOLVE_BENEATH) from the allocation dir, and the file
 * actually opened is checked again through /proc/self/fd, so that a
 * symlink a task made cannot lead out of its allocation nor into the
 * supervisor's private .nomclient dir. Reading goes through that fd only. */
#include "client/api/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client/agent.h"
#include "client/alloc/alloc.h"

#define ESCAPES "Path escapes the alloc directory"
#define PRIVATE_DIR ".nomclient" /* the supervisors' files: never shown */
#define FS_CHUNK (32u << 10)
#define FS_MAX_QUEUED (256 << 10)

/* ---- resolving a path inside the allocation --------------------------- */

/* The path cleaned of ".", "" and ".." segments, relative ("" for the
 * root); NULL when ".." climbs above the root (Nomad's lexical check). */
static char *clean_path(const char *path)
{
    struct strlist segs = {0};
    const char *p = path;
    bool escapes = false;
    while (*p && !escapes) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (segs.n == 0)
                escapes = true;
            else
                free(segs.items[--segs.n]);
        } else if (n && !(n == 1 && p[0] == '.')) {
            char *seg = xstrndup(p, n);
            strlist_add(&segs, seg);
            free(seg);
        }
        p += n;
    }
    struct nc_buf b = {0};
    for (size_t i = 0; i < segs.n && !escapes; i++)
        nc_buf_printf(&b, "%s%s", i ? "/" : "", segs.items[i]);
    strlist_free(&segs);
    if (escapes) {
        nc_buf_free(&b);
        return NULL;
    }
    return b.data ? nc_buf_take(&b) : xstrdup("");
}

/* Whether `real` (an absolute host path) is `root` or below it, and not
 * in root's private dir. */
static bool inside_alloc(const char *root, const char *real)
{
    size_t n = strlen(root);
    if (strncmp(real, root, n) != 0 || (real[n] && real[n] != '/'))
        return false;
    const char *rest = real[n] ? real + n + 1 : "";
    size_t pl = strlen(PRIVATE_DIR);
    return !(strncmp(rest, PRIVATE_DIR, pl) == 0 &&
             (rest[pl] == '\0' || rest[pl] == '/'));
}

/* Opens the allocation's `path` with O_PATH. Returns the fd, or -errno
 * with *status and *msg (new string) saying why: 400 an escape, 404 a
 * missing file (the private dir reads as missing). */
static int fs_resolve(const char *alloc_dir, const char *path, int *status,
                      char **msg)
{
    char *rel = clean_path(path);
    if (!rel) {
        *status = 400;
        *msg = xstrdup(ESCAPES);
        return -EXDEV;
    }
    size_t pl = strlen(PRIVATE_DIR);
    if (strncmp(rel, PRIVATE_DIR, pl) == 0 && (!rel[pl] || rel[pl] == '/')) {
        *status = 404;
        *msg = xasprintf("stat /%s: no such file or directory", rel);
        free(rel);
        return -ENOENT;
    }
    int root = open(alloc_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) {
        int e = errno;
        *status = 404;
        *msg = xasprintf("allocation directory: %s", strerror(e));
        free(rel);
        return -e;
    }
    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    const char *name = *rel ? rel : ".";
    int fd = (int)syscall(SYS_openat2, root, name, &how, sizeof(how));
    if (fd < 0 && (errno == ENOSYS || errno == E2BIG))
        fd = openat(root, name, O_PATH | O_CLOEXEC); /* checked below */
    int e = errno;
    close(root);
    if (fd < 0) {
        *status = e == EXDEV || e == ELOOP ? 400 : e == ENOENT ? 404 : 500;
        *msg = e == EXDEV ? xstrdup(ESCAPES)
                          : xasprintf("stat /%s: %s", rel, strerror(e));
        free(rel);
        return -e;
    }
    /* what was opened, whatever led there */
    char link[64], real[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof(real) - 1);
    char *root_real = realpath(alloc_dir, NULL);
    bool ok = n > 0 && root_real;
    if (ok) {
        real[n] = '\0';
        ok = inside_alloc(root_real, real);
    }
    free(root_real);
    if (!ok) {
        close(fd);
        *status = 400;
        *msg = xstrdup(ESCAPES);
        free(rel);
        return -EXDEV;
    }
    free(rel);
    return fd;
}

/* ---- AllocFileInfo ----------------------------------------------------- */

/* Go's os.FileMode.String(): type letters ("d", "L", "p", "S", "D", "Dc",
 * "u", "g", "t") or "-", then rwx. */
static void go_file_mode(mode_t m, char *out, size_t len)
{
    struct nc_buf b = {0};
    if (S_ISDIR(m))
        nc_buf_puts(&b, "d");
    if (S_ISLNK(m))
        nc_buf_puts(&b, "L");
    if (S_ISBLK(m) || S_ISCHR(m))
        nc_buf_puts(&b, "D");
    if (S_ISFIFO(m))
        nc_buf_puts(&b, "p");
    if (S_ISSOCK(m))
        nc_buf_puts(&b, "S");
    if (m & S_ISUID)
        nc_buf_puts(&b, "u");
    if (m & S_ISGID)
        nc_buf_puts(&b, "g");
    if (S_ISCHR(m))
        nc_buf_puts(&b, "c");
    if (m & S_ISVTX)
        nc_buf_puts(&b, "t");
    if (!b.len)
        nc_buf_puts(&b, "-");
    static const char rwx[] = "rwxrwxrwx";
    for (int i = 0; i < 9; i++)
        nc_buf_printf(&b, "%c", (m & (1u << (8 - i))) ? rwx[i] : '-');
    snprintf(out, len, "%s", b.data);
    nc_buf_free(&b);
}

/* What Go's http.DetectContentType says of the common cases: text as
 * UTF-8 text, the rest as bytes. */
static const char *content_type(int fd)
{
    unsigned char buf[512];
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    for (ssize_t i = 0; i < n; i++)
        if ((buf[i] < 0x20 && buf[i] != '\n' && buf[i] != '\r' &&
             buf[i] != '\t' && buf[i] != '\f' && buf[i] != 0x1b) ||
            buf[i] == 0x7f)
            return "application/octet-stream";
    return "text/plain; charset=utf-8";
}

static json_t *file_info(const char *name, const struct stat *st)
{
    char mode[32];
    go_file_mode(st->st_mode, mode, sizeof(mode));
    int64_t mtime = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    return json_pack("{s:s, s:b, s:I, s:s, s:o, s:s}", "Name", name, "IsDir",
                     S_ISDIR(st->st_mode), "Size", (json_int_t)st->st_size,
                     "FileMode", mode, "ModTime", http_api_time_json(mtime),
                     "ContentType", "");
}

/* ---- the routes --------------------------------------------------------- */

/* The allocation and its dir, or NULL after answering. */
static struct alloc *fs_alloc(struct agent *a, const char *id,
                              struct http_response *resp, char **dir)
{
    bool ambiguous = false;
    struct alloc *al = *id && a->allocs
                           ? alloc_manager_find(a->allocs, id, &ambiguous)
                           : NULL;
    if (!*id)
        http_response_error(resp, 400, "must provide a valid alloc id");
    else if (ambiguous)
        http_response_error(resp, 400, "allocation ID prefix \"%s\" matches "
                                       "several allocations", id);
    else if (!al)
        http_response_error(resp, 404, "Unknown allocation \"%s\"", id);
    else
        *dir = alloc_dir_path(a->allocs, al);
    return al;
}

/* Opens ?path= of the allocation; -1 after answering. */
static int fs_open_query(const char *dir, const struct http_request *req,
                         struct http_response *resp, bool required,
                         const char **path_out)
{
    const char *path = kv_get(&req->query, "path");
    if (!path || !*path) {
        if (required) {
            http_response_error(resp, 400, "must provide a file path");
            return -1;
        }
        path = "/";
    }
    *path_out = path;
    int status = 0;
    char *msg = NULL;
    int fd = fs_resolve(dir, path, &status, &msg);
    if (fd < 0) {
        http_response_error(resp, status, "%s", msg);
        free(msg);
        return -1;
    }
    return fd;
}

static void fs_ls(struct agent *a, const struct http_request *req,
                  struct http_response *resp, int fd, const char *path)
{
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        int e = errno;
        if (dfd >= 0)
            close(dfd);
        http_response_error(resp, e == ENOTDIR ? 400 : 500, "open %s: %s",
                            path, strerror(e));
        return;
    }
    char *rel = clean_path(path);
    bool root = rel && !*rel;
    free(rel);
    json_t *list = json_array();
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            (root && strcmp(e->d_name, PRIVATE_DIR) == 0) ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        json_array_append_new(list, file_info(e->d_name, &st));
    }
    closedir(d);
    http_response_json(resp, 200, list);
}

static void fs_stat(struct agent *a, const struct http_request *req,
                    struct http_response *resp, int fd, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        http_response_error(resp, 500, "stat %s: %s", path, strerror(errno));
        return;
    }
    char *rel = clean_path(path);
    const char *base = rel && strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
    json_t *info = file_info(base && *base ? base : "/", &st);
    free(rel);
    if (!S_ISDIR(st.st_mode)) {
        char self[64];
        snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
        int rfd = S_ISREG(st.st_mode) ? open(self, O_RDONLY | O_CLOEXEC) : -1;
        json_object_set_new(info, "ContentType",
                            json_string(rfd >= 0 ? content_type(rfd)
                                                 : "application/octet-stream"));
        if (rfd >= 0)
            close(rfd);
    }
    http_response_json(resp, 200, info);
}

/* A file streamed to a client: cat, readat, and stream (framed, or plain
 * bytes with plain=true; followed unless follow=false). */
struct fs_sender {
    struct agent *agent;
    struct http_stream *stream;
    uv_fs_event_t ev;
    bool watching, finished, framed, follow;
    int fd;
    int64_t off, left; /* left < 0: no limit */
    char *path;        /* as asked, for the frames' File */
    char buf[FS_CHUNK];
};

static void sender_closed(uv_handle_t *h)
{
    struct fs_sender *s = h->data;
    free(s->path);
    free(s);
}

static void sender_finish(struct fs_sender *s)
{
    if (s->finished)
        return;
    s->finished = true;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    if (s->watching)
        uv_close((uv_handle_t *)&s->ev, sender_closed);
    else
        sender_closed((uv_handle_t *)&s->ev);
}

/* Nomad's StreamFrame: {"Offset": <after the data>, "Data": base64,
 * "File": path}, or {"FileEvent": ...}. */
static long send_frame(struct fs_sender *s, const char *data, size_t n,
                       const char *event)
{
    if (!s->framed)
        return http_stream_write(s->stream, data, n);
    json_t *f = json_pack("{s:I, s:s}", "Offset", (json_int_t)s->off, "File",
                          s->path);
    if (n) {
        char *b64 = nc_base64_encode(data, n, false);
        json_object_set_new(f, "Data", json_string(b64));
        free(b64);
    }
    if (event)
        json_object_set_new(f, "FileEvent", json_string(event));
    char *txt = json_dumps(f, JSON_COMPACT);
    json_decref(f);
    long r = http_stream_write(s->stream, txt, strlen(txt));
    free(txt);
    return r;
}

static void sender_pump(struct fs_sender *s)
{
    while (!s->finished) {
        size_t want = sizeof(s->buf);
        if (s->left >= 0 && (int64_t)want > s->left)
            want = (size_t)s->left;
        ssize_t n = want ? pread(s->fd, s->buf, want, s->off) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0) {
            s->off += n;
            if (s->left >= 0)
                s->left -= n;
            long queued = send_frame(s, s->buf, (size_t)n, NULL);
            if (queued < 0) {
                sender_finish(s);
                return;
            }
            if (queued >= FS_MAX_QUEUED)
                return; /* on_drain resumes */
            continue;
        }
        struct stat st;
        bool gone = fstat(s->fd, &st) < 0 || st.st_nlink == 0;
        if (!gone && st.st_size < s->off) {
            s->off = 0; /* truncated: from the start again, as Nomad */
            if (send_frame(s, NULL, 0, "file truncated") < 0) {
                sender_finish(s);
                return;
            }
            continue;
        }
        if (!s->follow || s->left == 0 || gone) {
            if (gone && s->follow)
                send_frame(s, NULL, 0, "file deleted");
            http_stream_end(s->stream);
            sender_finish(s);
        }
        return; /* inotify wakes it */
    }
}

static void sender_drain(void *arg) { sender_pump(arg); }
static void sender_gone(void *arg) { sender_finish(arg); }

static void sender_event(uv_fs_event_t *h, const char *name, int events,
                         int status)
{
    struct fs_sender *s = h->data;
    if (!s->finished)
        sender_pump(s);
}

/* Streams the file open as `fd` (O_PATH) from `off`, `limit` bytes (< 0:
 * all). */
static void fs_send(struct agent *a, struct http_response *resp, int fd,
                    const char *path, int64_t off, int64_t limit, bool framed,
                    bool follow)
{
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        http_response_error(resp, 400, "file \"%s\" is a directory", path);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        http_response_error(resp, 400, "file \"%s\" is not a regular file",
                            path);
        return;
    }
    int rfd = open(self, O_RDONLY | O_CLOEXEC);
    if (rfd < 0) {
        http_response_error(resp, 500, "open %s: %s", path, strerror(errno));
        return;
    }
    struct fs_sender *s = xcalloc(1, sizeof(*s));
    s->agent = a;
    s->fd = rfd;
    s->off = off < 0 ? 0 : off;
    s->left = limit;
    s->framed = framed;
    s->follow = follow;
    s->path = xstrdup(path);
    s->ev.data = s;
    if (follow) {
        uv_fs_event_init(a->loop, &s->ev);
        /* the watch is on what was opened, not on a path that may change */
        snprintf(self, sizeof(self), "/proc/self/fd/%d", rfd);
        int r = uv_fs_event_start(&s->ev, sender_event, self, 0);
        s->watching = true;
        if (r < 0)
            LOG_WARN("fs", "watching %s: %s", path, uv_strerror(r));
    }
    s->stream = http_response_stream(resp,
                                     framed ? "application/json"
                                            : "text/plain; charset=utf-8",
                                     sender_drain, sender_gone, s);
    sender_pump(s);
}

/* A decimal int64 query parameter; false after answering 400 in Nomad's
 * words. */
static bool query_int(const struct http_request *req, struct http_response *resp,
                      const char *name, bool required, int64_t *out)
{
    const char *v = kv_get(&req->query, name);
    if (!v || !*v) {
        if (!required)
            return true;
        v = "";
    }
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno) {
        http_response_error(resp, 400,
                            "error parsing %s: strconv.ParseInt: parsing "
                            "\"%s\": invalid syntax", name, v);
        return false;
    }
    *out = n;
    return true;
}

void http_api_fs(struct agent *a, const struct http_request *req,
                 struct http_response *resp, const char *rest)
{
    static const char *const ops[] = {"ls", "stat", "cat", "readat", "stream"};
    size_t op = NC_ARRAY_LEN(ops);
    const char *slash = strchr(rest, '/');
    for (size_t i = 0; slash && i < NC_ARRAY_LEN(ops); i++)
        if (strlen(ops[i]) == (size_t)(slash - rest) &&
            strncmp(rest, ops[i], (size_t)(slash - rest)) == 0)
            op = i;
    if (op == NC_ARRAY_LEN(ops)) {
        http_response_error(resp, 404, "no such endpoint: %s %s", req->method,
                            req->path);
        return;
    }
    if (!http_api_method_allowed(req->method, "GET")) {
        http_api_method_not_allowed(resp, "GET");
        return;
    }
    int64_t offset = 0, limit = -1;
    const char *origin = kv_get(&req->query, "origin");
    const char *follow = kv_get(&req->query, "follow");
    if (op == 3 && (!query_int(req, resp, "offset", true, &offset) ||
                    !query_int(req, resp, "limit", false, &limit)))
        return;
    if (op == 4 && !query_int(req, resp, "offset", false, &offset))
        return;
    if (op == 4 && origin && *origin && strcmp(origin, "start") != 0 &&
        strcmp(origin, "end") != 0) {
        http_response_error(resp, 400, "origin must be start or end");
        return;
    }
    if (op == 4 && follow && *follow && strcmp(follow, "true") != 0 &&
        strcmp(follow, "false") != 0) {
        http_response_error(resp, 400, "failed to parse follow field to "
                                       "boolean: strconv.ParseBool: parsing "
                                       "\"%s\": invalid syntax", follow);
        return;
    }
    char *dir = NULL;
    if (!fs_alloc(a, slash + 1, resp, &dir))
        return;
    const char *path = NULL;
    int fd = fs_open_query(dir, req, resp, op != 0, &path);
    free(dir);
    if (fd < 0)
        return;
    struct stat st;
    if (op == 0)
        fs_ls(a, req, resp, fd, path);
    else if (op == 1)
        fs_stat(a, req, resp, fd, path);
    else if (op == 2)
        fs_send(a, resp, fd, path, 0, -1, false, false);
    else if (op == 3)
        fs_send(a, resp, fd, path, offset, limit, false, false);
    else if (nc_streq(origin, "end") && fstat(fd, &st) == 0)
        fs_send(a, resp, fd, path, st.st_size - offset, -1,
                !nc_streq(kv_get(&req->query, "plain"), "true"),
                !nc_streq(follow, "false"));
    else
        fs_send(a, resp, fd, path, offset, -1,
                !nc_streq(kv_get(&req->query, "plain"), "true"),
                !nc_streq(follow, "false"));
    close(fd);
}
