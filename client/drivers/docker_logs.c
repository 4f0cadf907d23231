/* docker_logs.c - a docker task's output, copied from the Engine's log
 * stream (GET /containers/{id}/logs?follow=1&timestamps=1) into the same
 * rotated files an exec task's supervisor writes (logfile.h), so `alloc
 * logs [-f]` reads them unchanged. No process per task (Nomad runs a
 * docker_logger and a logmon): one streamed call on the agent's loop.
 *
 * Each message of the stream starts with its timestamp, which is cut
 * off; the newest one written is kept in a small file beside the task's
 * (pwrite in place, no fsync: it is lost only with the page cache), so a
 * copier started again after a daemon restart, a dropped connection or
 * an agent restart asks for what came since (since= is inclusive:
 * messages at or before that instant are dropped) and neither loses nor
 * repeats lines. A non-tty container's stream is multiplexed (8-byte
 * frame headers, one message per frame); a tty's is raw, its messages
 * ending with their newline. */
#include "client/drivers/driver.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/drivers/docker_api.h"
#include "client/drivers/internal.h"
#include "client/drivers/logfile.h"

#define dk docker_driver_state

#define RETRY_FIRST_MS 250
#define RETRY_MAX_MS 5000
/* width of the timestamp record, rewritten in place */
#define POS_WIDTH 96

/* ---- the parser ---------------------------------------------------------- */

void docker_log_parser_init(
    struct docker_log_parser *p, bool tty, int64_t since,
    void (*out)(void *arg, int stream, const char *d, size_t n), void *arg)
{
    memset(p, 0, sizeof(*p));
    p->tty = tty;
    p->since = since;
    p->last_ts = since;
    p->out = out;
    p->arg = arg;
    p->stream = 1;
    p->at_start[1] = p->at_start[2] = true;
    p->at_start[0] = true;
}

/* A message's timestamp is complete: keep it, or drop the message when it
 * was written before. Text that is no timestamp goes out as it came. */
static void message_begins(struct docker_log_parser *p, int stream)
{
    int64_t ns = 0;
    p->ts[p->tslen] = '\0';
    if (nc_parse_time(p->ts, &ns) < 0 || ns <= 0) {
        p->skipping = false;
        p->out(p->arg, stream, p->ts, p->tslen);
        p->out(p->arg, stream, " ", 1);
        return;
    }
    p->skipping = ns <= p->since;
    if (!p->skipping && ns > p->last_ts)
        p->last_ts = ns;
}

/* n payload bytes of one message (part of a frame, or of a tty line) */
static void payload(struct docker_log_parser *p, int stream, const char *d,
                    size_t n, bool line_ends)
{
    int slot = stream == 2 ? 2 : 1;
    while (n > 0) {
        if (p->at_start[slot]) {
            /* the timestamp, up to its space */
            while (n > 0 && *d != ' ' && p->tslen < sizeof(p->ts) - 1) {
                p->ts[p->tslen++] = *d++;
                n--;
            }
            if (n == 0)
                return;
            if (*d == ' ') {
                d++;
                n--;
            }
            p->at_start[slot] = false;
            message_begins(p, stream);
            p->tslen = 0;
        }
        size_t take = n;
        if (line_ends) { /* a tty's message ends with its newline */
            const char *nl = memchr(d, '\n', n);
            if (nl) {
                take = (size_t)(nl - d) + 1;
                p->at_start[slot] = true;
            }
        }
        if (!p->skipping && take)
            p->out(p->arg, stream, d, take);
        d += take;
        n -= take;
    }
}

int docker_log_parser_feed(struct docker_log_parser *p, const char *data,
                           size_t n)
{
    if (p->stream < 0)
        return -EPROTO;
    if (p->tty) {
        payload(p, 1, data, n, true);
        return 0;
    }
    while (n > 0) {
        if (p->left == 0) {
            size_t want = 8 - p->have;
            size_t take = n < want ? n : want;
            memcpy(p->hdr + p->have, data, take);
            p->have += take;
            data += take;
            n -= take;
            if (p->have < 8)
                return 0;
            p->have = 0;
            int st = p->hdr[0];
            if (st > 3 || p->hdr[1] || p->hdr[2] || p->hdr[3]) {
                p->stream = -1;
                return -EPROTO;
            }
            p->stream = st == 0 ? 1 : st;
            p->left = (uint32_t)p->hdr[4] << 24 | (uint32_t)p->hdr[5] << 16 |
                      (uint32_t)p->hdr[6] << 8 | (uint32_t)p->hdr[7];
            /* one frame, one message */
            if (p->stream != 3) {
                p->at_start[p->stream] = true;
                p->tslen = 0;
                p->skipping = false;
            }
            continue;
        }
        size_t take = n < p->left ? n : p->left;
        if (p->stream == 3)
            p->out(p->arg, 3, data, take);
        else
            payload(p, p->stream, data, take, false);
        p->left -= (uint32_t)take;
        data += take;
        n -= take;
    }
    return 0;
}

/* ---- the copier ---------------------------------------------------------- */

struct docker_logs {
    char *container_id, *log_dir, *task, *pos_file;
    struct logfile files[2]; /* stdout, stderr */
    struct docker_log_parser parser;
    struct docker_call *call;
    uv_timer_t *retry;
    int retry_ms;
    int pos_fd;
    int64_t written_ts; /* the last timestamp recorded in pos_file */
    bool done, tty;
    void (*ended)(void *arg);
    void *arg;
};

static void logs_connect(struct docker_logs *l);
static void logs_end(struct docker_logs *l);

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void on_parsed(void *arg, int stream, const char *d, size_t n)
{
    struct docker_logs *l = arg;
    if (stream == 3) {
        LOG_WARN("docker",
                 "container %.12s: the daemon's log stream says: %.*s",
                 l->container_id, (int)(n > 300 ? 300 : n), d);
        return;
    }
    logfile_write(&l->files[stream == 2 ? 1 : 0], d, n);
}

/* "<container id> <unix ns>": where the copier got to. */
static void pos_write(struct docker_logs *l)
{
    if (l->pos_fd < 0 || l->parser.last_ts == l->written_ts)
        return;
    char buf[POS_WIDTH + 1];
    int n = snprintf(buf, sizeof(buf), "%s %" PRId64, l->container_id,
                     l->parser.last_ts);
    if (n < 0 || n >= POS_WIDTH)
        return;
    memset(buf + n, ' ', (size_t)(POS_WIDTH - 1 - n));
    buf[POS_WIDTH - 1] = '\n';
    if (pwrite(l->pos_fd, buf, POS_WIDTH, 0) == POS_WIDTH)
        l->written_ts = l->parser.last_ts;
}

static int64_t pos_read(const char *path, const char *container_id)
{
    size_t len;
    char *txt = nc_read_file(path, &len, 4096);
    int64_t ns = 0;
    size_t idlen = strlen(container_id);
    if (txt && len > idlen && strncmp(txt, container_id, idlen) == 0 &&
        txt[idlen] == ' ')
        ns = strtoll(txt + idlen + 1, NULL, 10);
    free(txt);
    return ns > 0 ? ns : 0;
}

static void on_logs_data(void *arg, const char *data, size_t len)
{
    struct docker_logs *l = arg;
    if (docker_log_parser_feed(&l->parser, data, len) < 0) {
        LOG_WARN("docker",
                 "container %.12s: the log stream is not "
                 "multiplexed as it should be; no more logs copied",
                 l->container_id);
        docker_call_cancel(dk.api, l->call);
        l->call = NULL;
        pos_write(l);
        logs_end(l);
        return;
    }
    pos_write(l);
    l->retry_ms = 0; /* it flows again */
}

static void logs_end(struct docker_logs *l)
{
    l->done = true;
    for (int i = 0; i < 2; i++)
        logfile_close(&l->files[i]);
    if (l->ended)
        l->ended(l->arg);
}

static void on_retry(uv_timer_t *t)
{
    struct docker_logs *l = t->data;
    uv_close((uv_handle_t *)t, on_timer_closed);
    l->retry = NULL;
    logs_connect(l);
}

static void retry_later(struct docker_logs *l)
{
    l->retry_ms = l->retry_ms ? l->retry_ms * 2 : RETRY_FIRST_MS;
    if (l->retry_ms > RETRY_MAX_MS)
        l->retry_ms = RETRY_MAX_MS;
    l->retry = xcalloc(1, sizeof(*l->retry));
    uv_timer_init(dk.loop, l->retry);
    l->retry->data = l;
    uv_timer_start(l->retry, on_retry, (uint64_t)l->retry_ms, 0);
}

static void on_logs_done(void *arg, const struct docker_reply *r)
{
    struct docker_logs *l = arg;
    l->call = NULL;
    pos_write(l);
    if (!r->error || r->status == 404) {
        logs_end(l); /* the container stopped (or is gone) */
        return;
    }
    /* the daemon went away or the stream was cut: follow again from the
     * last timestamp once it answers; an API error is final */
    if (docker_reply_unreachable(r) || (r->status >= 200 && r->status < 300) ||
        r->status >= 500) {
        LOG_DEBUG("docker",
                  "container %.12s: log stream ended: %s; "
                  "following again",
                  l->container_id, r->error);
        retry_later(l);
        return;
    }
    LOG_WARN("docker", "container %.12s: cannot read its logs: %s",
             l->container_id, r->error);
    logs_end(l);
}

static void logs_connect(struct docker_logs *l)
{
    /* a frame cut by the previous stream is dropped with it */
    int64_t since = l->parser.last_ts;
    docker_log_parser_init(&l->parser, l->tty, since, on_parsed, l);
    char *path;
    if (since > 0)
        path =
            xasprintf("/containers/%s/logs?follow=1&stdout=1&stderr=1&"
                      "timestamps=1&since=%" PRId64 ".%09" PRId64,
                      l->container_id, since / 1000000000, since % 1000000000);
    else
        path = xasprintf("/containers/%s/logs?follow=1&stdout=1&stderr=1&"
                         "timestamps=1",
                         l->container_id);
    struct docker_call_opts o = {
        .path = path, .on_data = on_logs_data, .data_arg = l};
    struct nc_error err = {0};
    struct docker_api *api = docker_api_get(&err);
    if (!api || docker_call(api, &o, on_logs_done, l, &l->call) < 0) {
        if (dk.closing) {
            logs_end(l);
        } else {
            LOG_DEBUG("docker", "container %.12s: logs: %s", l->container_id,
                      err.msg);
            retry_later(l);
        }
    }
    free(path);
}

int docker_logs_start(struct docker_logs **out,
                      const struct docker_logs_opts *o, struct nc_error *err)
{
    *out = NULL;
    struct docker_logs *l = xcalloc(1, sizeof(*l));
    l->container_id = xstrdup(o->container_id);
    l->log_dir = xstrdup(o->log_dir);
    l->task = xstrdup(o->task);
    l->pos_file = xstrdup(o->pos_file);
    l->tty = o->tty;
    l->ended = o->ended;
    l->arg = o->arg;
    l->pos_fd = -1;
    nc_mkdir_p(l->log_dir, 0755);
    static const char *const names[] = {"stdout", "stderr"};
    for (int i = 0; i < 2; i++) {
        int r = logfile_open(&l->files[i], l->log_dir, l->task, names[i],
                             o->max_files, o->max_file_bytes);
        if (r < 0) {
            nc_error_set(err, r, "open the task's %s log in %s: %s", names[i],
                         l->log_dir, strerror(-r));
            for (int k = 0; k < i; k++)
                logfile_close(&l->files[k]);
            free(l->container_id);
            free(l->log_dir);
            free(l->task);
            free(l->pos_file);
            free(l);
            return r;
        }
    }
    int64_t since = l->pos_file ? pos_read(l->pos_file, l->container_id) : 0;
    l->written_ts = since;
    if (l->pos_file)
        l->pos_fd = open(l->pos_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    docker_log_parser_init(&l->parser, l->tty, since, on_parsed, l);
    logs_connect(l);
    *out = l;
    return 0;
}

bool docker_logs_done(const struct docker_logs *l)
{
    return !l || l->done;
}

void docker_logs_stop(struct docker_logs *l)
{
    if (!l)
        return;
    if (l->call)
        docker_call_cancel(dk.api, l->call);
    pos_write(l);
    if (l->retry)
        uv_close((uv_handle_t *)l->retry, on_timer_closed);
    for (int i = 0; i < 2; i++)
        logfile_close(&l->files[i]);
    if (l->pos_fd >= 0)
        close(l->pos_fd);
    free(l->container_id);
    free(l->log_dir);
    free(l->task);
    free(l->pos_file);
    free(l);
}
