/* log_follow.c - see client/api/api.h. */
#include "client/api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FOLLOW_CHUNK (32u << 10)
#define FOLLOW_MAX_QUEUED (256 << 10) /* stop reading until the client drains */

struct log_follow {
    struct log_follow_list *list;
    struct log_follow *next, *prev;
    uv_fs_event_t ev;
    struct http_stream *stream;
    char *dir, *alloc_id, *task, *type;
    log_follow_done_fn done;
    void *done_arg;
    int index; /* of the file being read */
    int fd;    /* -1 until that file exists */
    off_t off;
    bool finished;
    char buf[FOLLOW_CHUNK];
};

static char *log_path(const struct log_follow *f, int index)
{
    return xasprintf("%s/%s.%s.%d", f->dir, f->task, f->type, index);
}

static bool log_exists(const struct log_follow *f, int index)
{
    char *p = log_path(f, index);
    bool ok = access(p, F_OK) == 0;
    free(p);
    return ok;
}

/* The highest index present; older files may have been dropped by
 * rotation, so gaps before the first one found are skipped. */
static int newest_index(const struct log_follow *f)
{
    int newest = -1;
    for (int i = 0; i < 100000; i++) {
        if (log_exists(f, i))
            newest = i;
        else if (newest >= 0 || i > 1000)
            break;
    }
    return newest < 0 ? 0 : newest;
}

static int open_log(struct log_follow *f)
{
    char *p = log_path(f, f->index);
    f->fd = open(p, O_RDONLY | O_CLOEXEC);
    free(p);
    return f->fd < 0 ? -errno : 0;
}

static void on_ev_closed(uv_handle_t *h)
{
    struct log_follow *f = h->data;
    free(f->dir);
    free(f->alloc_id);
    free(f->task);
    free(f->type);
    free(f);
}

static void follow_finish(struct log_follow *f)
{
    if (f->finished)
        return;
    f->finished = true;
    if (f->prev)
        f->prev->next = f->next;
    else
        f->list->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    uv_close((uv_handle_t *)&f->ev, on_ev_closed);
}

/* Reads what is new, at the client's pace; moves to the next file once the
 * current one is drained and rotated; ends when the task is done. */
static void pump(struct log_follow *f)
{
    while (!f->finished) {
        if (f->fd < 0 && open_log(f) < 0) {
            if (f->done(f->done_arg, f->alloc_id, f->task)) {
                http_stream_end(f->stream);
                follow_finish(f);
            }
            return;
        }
        ssize_t n = pread(f->fd, f->buf, sizeof(f->buf), f->off);
        if (n > 0) {
            f->off += n;
            long queued = http_stream_write(f->stream, f->buf, (size_t)n);
            if (queued < 0) {
                follow_finish(f);
                return;
            }
            if (queued >= FOLLOW_MAX_QUEUED)
                return; /* on_drain resumes */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        /* end of this file: the supervisor may have moved on to the next */
        if (log_exists(f, f->index + 1)) {
            close(f->fd);
            f->fd = -1;
            f->index++;
            f->off = 0;
            continue;
        }
        if (f->done(f->done_arg, f->alloc_id, f->task)) {
            /* a last look: output written just before the task died */
            ssize_t more = pread(f->fd, f->buf, 1, f->off);
            if (more > 0)
                continue;
            http_stream_end(f->stream);
            follow_finish(f);
        }
        return;
    }
}

static void on_drain(void *arg) { pump(arg); }

static void on_client_gone(void *arg) { follow_finish(arg); }

static void on_dir_event(uv_fs_event_t *h, const char *name, int events,
                         int status)
{
    struct log_follow *f = h->data;
    if (f->finished)
        return;
    pump(f);
}

int log_follow_start(struct log_follow_list *list, uv_loop_t *loop,
                     struct http_response *resp,
                     const struct log_follow_spec *spec)
{
    struct log_follow *f = xcalloc(1, sizeof(*f));
    f->list = list;
    f->dir = xstrdup(spec->log_dir);
    f->alloc_id = xstrdup(spec->alloc_id);
    f->task = xstrdup(spec->task);
    f->type = xstrdup(spec->type);
    f->done = spec->done;
    f->done_arg = spec->done_arg;
    f->fd = -1;
    f->index = newest_index(f);
    if (open_log(f) == 0 && spec->tail_bytes >= 0) {
        struct stat st;
        if (fstat(f->fd, &st) == 0 && st.st_size > spec->tail_bytes)
            f->off = st.st_size - spec->tail_bytes;
    }
    uv_fs_event_init(loop, &f->ev);
    f->ev.data = f;
    int r = uv_fs_event_start(&f->ev, on_dir_event, f->dir, 0);
    if (r < 0)
        LOG_WARN("logs", "watching %s: %s; the stream moves on task state "
                         "changes only", f->dir, uv_strerror(r));
    f->stream = http_response_stream(resp, "text/plain; charset=utf-8",
                                     on_drain, on_client_gone, f);
    f->next = list->head;
    if (list->head)
        list->head->prev = f;
    list->head = f;
    pump(f);
    return 0;
}

void log_follow_poke(struct log_follow_list *list, const char *alloc_id)
{
    struct log_follow *f = list->head;
    while (f) {
        struct log_follow *next = f->next; /* pump may finish f */
        if (strcmp(f->alloc_id, alloc_id) == 0)
            pump(f);
        f = next;
    }
}

void log_follow_stop_all(struct log_follow_list *list)
{
    while (list->head) {
        struct log_follow *f = list->head;
        http_stream_end(f->stream);
        follow_finish(f);
    }
}
