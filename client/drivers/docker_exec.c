/* docker_exec.c - `alloc exec` in a docker task through the Engine API
 * (v1.41) on its unix socket, as Nomad's docker driver does it: create an
 * exec (POST /containers/{id}/exec, stdio attached), start it on a
 * connection of its own upgraded to the raw stream (POST /exec/{id}/start
 * with "Connection: Upgrade", "Upgrade: tcp": "101 UPGRADED", then the
 * process's output, in 8-byte-header frames of stream type and length
 * unless it has a terminal, and its stdin the other way), resize through
 * /exec/{id}/resize, and the exit code from /exec/{id}/json once the
 * stream ends (retried briefly: the Engine records the exit a moment
 * after it closes the stream, which Nomad works around the same way).
 *
 * Everything runs on the loop over uv_pipe_t connections: one per API
 * request (Connection: close) and the hijacked one for the stream. Each
 * request has DOCKER_EXEC_API_TIMEOUT_MS to answer; the stream has none
 * (it lasts as long as the command). Errors read as Nomad's ("failed to
 * create exec object: API error (409): Container x is not running"). A
 * cancelled session also kills the exec'd process: the Engine has no API
 * for that and would leave it running. */
#include "client/drivers/driver.h"

#include <errno.h>
#include <http_parser.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>

#include "client/drivers/internal.h"

#define DOCKER_EXEC_API "/v1.41"
#define DOCKER_EXEC_API_TIMEOUT_MS 30000
#define DOCKER_EXEC_INSPECT_RETRY_MS 50
#define DOCKER_EXEC_INSPECT_FOR_MS 3000
#define DOCKER_EXEC_ANSWER_MAX (1u << 20)
#define DOCKER_EXEC_FRAME_MAX (16u << 20)

struct docker_exec;

/* One request to the Engine on a connection of its own. */
struct dx_req {
    struct docker_exec *x;
    uv_pipe_t pipe;
    uv_connect_t conn;
    uv_timer_t timer;
    char *head; /* the request, sent once connected */
    http_parser parser;
    struct nc_buf body; /* the answer's */
    bool done, closing, upgrade, upgraded;
    char rbuf[16384];
    int handles;
    void (*on_done)(struct dx_req *r, int status, const char *body,
                    const char *error);
};

enum dx_phase {
    DX_CREATING,
    DX_STARTING,
    DX_STREAMING,
    DX_INSPECTING,
    DX_DONE
};

struct docker_exec {
    struct driver_session base;
    uv_loop_t *loop;
    const struct driver_session_cb *cb;
    void *arg;
    char *sock, *container, *user;
    char **argv;
    bool tty;
    char id[128]; /* the exec's, once created */
    enum dx_phase phase;
    struct dx_req *stream; /* the start request, then the raw stream */
    /* the stream's frames (no tty): header, then payload */
    uint8_t fhdr[8];
    size_t fhdr_len;
    uint32_t fleft;
    int fstream;
    /* stdin */
    struct nc_buf pending_in; /* written before the stream is up */
    size_t queued;
    bool in_closed, in_close_pending, shut;
    int width, height; /* a size asked for before the start */
    bool paused, cancelled, reported;
    uv_timer_t retry;
    bool retry_open;
    int64_t inspect_since;
    int refs; /* requests and timers still open */
};

/* ---- the session's life ----------------------------------------------------
 */

static void dx_unref(struct docker_exec *x)
{
    if (--x->refs > 0)
        return;
    for (size_t i = 0; x->argv && x->argv[i]; i++)
        free(x->argv[i]);
    free(x->argv);
    free(x->sock);
    free(x->container);
    free(x->user);
    nc_buf_free(&x->pending_in);
    free(x);
}

static void on_retry_closed(uv_handle_t *h)
{
    dx_unref(h->data);
}

static void dx_req_close(struct dx_req *r);

/* The end: reported once (unless cancelled), then everything closes. */
static void dx_finish(struct docker_exec *x, int code, const char *error)
{
    if (x->reported)
        return;
    x->reported = true;
    x->phase = DX_DONE;
    if (x->stream) {
        dx_req_close(x->stream);
        x->stream = NULL;
    }
    if (x->retry_open) {
        x->retry_open = false;
        uv_close((uv_handle_t *)&x->retry, on_retry_closed);
    }
    if (!x->cancelled) {
        x->cb->exited(x->arg, code, error);
        dx_unref(x); /* the caller's: it forgets the session now */
    }
}

/* ---- requests
 * ----------------------------------------------------------------- */

static void on_req_closed(uv_handle_t *h)
{
    struct dx_req *r = h->data;
    if (--r->handles > 0)
        return;
    struct docker_exec *x = r->x;
    free(r->head);
    nc_buf_free(&r->body);
    free(r);
    dx_unref(x);
}

static void dx_req_close(struct dx_req *r)
{
    if (r->closing)
        return;
    r->closing = true;
    uv_close((uv_handle_t *)&r->pipe, on_req_closed);
    uv_close((uv_handle_t *)&r->timer, on_req_closed);
}

/* go-dockerclient's words for a refusal: "API error (409): <message>". */
static char *api_error(int status, const char *body)
{
    json_t *j = body && *body ? json_loads(body, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(j, "message"));
    size_t n = m ? strlen(m) : body ? strcspn(body, "\n") : 0;
    char *s = xasprintf("API error (%d): %.*s", status, (int)n,
                        m      ? m
                        : body ? body
                               : "");
    json_decref(j);
    return s;
}

static void req_complete(struct dx_req *r, const char *error)
{
    if (r->done)
        return;
    r->done = true;
    uv_timer_stop(&r->timer);
    nc_buf_puts(&r->body, "");
    if (r->on_done)
        r->on_done(r, error ? 0 : (int)r->parser.status_code,
                   r->body.data ? r->body.data : "", error);
    if (!r->upgraded)
        dx_req_close(r);
}

static int on_req_body(http_parser *p, const char *at, size_t n)
{
    struct dx_req *r = p->data;
    if (r->body.len + n > DOCKER_EXEC_ANSWER_MAX)
        return -1;
    nc_buf_append(&r->body, at, n);
    return 0;
}

/* Pauses the parser: on_req_read reports the answer once it returns. */
static int on_req_complete(http_parser *p)
{
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings req_settings = {
    .on_body = on_req_body,
    .on_message_complete = on_req_complete,
};

static void stream_data(struct docker_exec *x, const char *p, size_t n);
static void stream_ended(struct docker_exec *x, const char *error);

static void on_req_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    struct dx_req *r = h->data;
    *buf = uv_buf_init(r->rbuf, sizeof(r->rbuf));
}

static void on_req_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct dx_req *r = s->data;
    if (r->closing || n == 0)
        return;
    if (r->upgraded) {
        if (n < 0)
            stream_ended(r->x, n == UV_EOF ? NULL : uv_strerror((int)n));
        else
            stream_data(r->x, buf->base, (size_t)n);
        return;
    }
    const char *data = n > 0 ? buf->base : NULL;
    size_t len = n > 0 ? (size_t)n : 0;
    if (n < 0 && n != UV_EOF) {
        req_complete(r, uv_strerror((int)n));
        return;
    }
    size_t used = http_parser_execute(&r->parser, &req_settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
    if (r->upgrade && r->parser.upgrade && r->parser.status_code == 101) {
        /* the raw stream from here on, on this connection */
        r->upgraded = true;
        r->done = true;
        uv_timer_stop(&r->timer);
        r->on_done(r, 101, "", NULL);
        if (used < len && !r->closing)
            stream_data(r->x, data + used, len - used);
        return;
    }
    if (e == HPE_PAUSED) {
        req_complete(r, NULL);
        return;
    }
    if (e != HPE_OK || (n > 0 && used != len)) {
        req_complete(r, "the Engine answered something that is not HTTP");
        return;
    }
    if (n < 0)
        req_complete(r, "the Engine closed the connection before answering");
}

static void on_req_written(uv_write_t *w, int status)
{
    struct dx_req *r = w->data;
    free(w);
    if (status < 0 && !r->closing)
        req_complete(r, uv_strerror(status));
}

static void on_req_connected(uv_connect_t *c, int status)
{
    struct dx_req *r = c->data;
    if (r->closing)
        return;
    if (status < 0) {
        req_complete(r, uv_strerror(status));
        return;
    }
    uv_write_t *w = xcalloc(1, sizeof(*w));
    w->data = r;
    uv_buf_t b = uv_buf_init(r->head, (unsigned)strlen(r->head));
    if (uv_write(w, (uv_stream_t *)&r->pipe, &b, 1, on_req_written) < 0) {
        free(w);
        req_complete(r, "write failed");
        return;
    }
    uv_read_start((uv_stream_t *)&r->pipe, on_req_alloc, on_req_read);
}

static void on_req_timeout(uv_timer_t *t)
{
    req_complete(t->data, "the Engine did not answer in time");
}

/* Sends `method path` with an optional JSON body (stolen). */
static struct dx_req *dx_request(struct docker_exec *x, const char *method,
                                 const char *path, json_t *body, bool upgrade,
                                 void (*on_done)(struct dx_req *r, int status,
                                                 const char *body,
                                                 const char *error))
{
    struct dx_req *r = xcalloc(1, sizeof(*r));
    r->x = x;
    r->on_done = on_done;
    r->upgrade = upgrade;
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    r->head = xasprintf("%s " DOCKER_EXEC_API "%s HTTP/1.1\r\nHost: docker\r\n"
                        "User-Agent: nomclient\r\n%s%s"
                        "Content-Length: %zu\r\n\r\n%s",
                        method, path,
                        payload ? "Content-Type: application/json\r\n" : "",
                        upgrade ? "Connection: Upgrade\r\nUpgrade: tcp\r\n"
                                : "Connection: close\r\n",
                        payload ? strlen(payload) : 0, payload ? payload : "");
    free(payload);
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = r;
    uv_pipe_init(x->loop, &r->pipe, 0);
    uv_timer_init(x->loop, &r->timer);
    r->pipe.data = r->timer.data = r->conn.data = r;
    r->handles = 2;
    x->refs++;
    uv_timer_start(&r->timer, on_req_timeout, DOCKER_EXEC_API_TIMEOUT_MS, 0);
    uv_pipe_connect(&r->conn, &r->pipe, x->sock, on_req_connected);
    return r;
}

/* ---- the stream
 * ------------------------------------------------------------------ */

static void on_inspected(struct dx_req *r, int status, const char *body,
                         const char *error);

static void inspect(struct docker_exec *x)
{
    char *path = xasprintf("/exec/%s/json", x->id);
    dx_request(x, "GET", path, NULL, false, on_inspected);
    free(path);
}

static void on_retry(uv_timer_t *t)
{
    struct docker_exec *x = t->data;
    if (!x->reported)
        inspect(x);
}

static void on_inspected(struct dx_req *r, int status, const char *body,
                         const char *error)
{
    struct docker_exec *x = r->x;
    if (x->reported)
        return;
    if (error || status != 200) {
        char *e = error ? xstrdup(error) : api_error(status, body);
        char *msg = xasprintf("failed to inspect exec result: %s", e);
        dx_finish(x, -1, msg);
        free(msg);
        free(e);
        return;
    }
    json_t *j = json_loads(body, 0, NULL);
    json_t *running = json_object_get(j, "Running");
    json_t *code = json_object_get(j, "ExitCode");
    if (json_is_false(running) && json_is_integer(code)) {
        int c = (int)json_integer_value(code);
        json_decref(j);
        dx_finish(x, c, NULL);
        return;
    }
    json_decref(j);
    if ((int64_t)(uv_now(x->loop)) - x->inspect_since >=
        DOCKER_EXEC_INSPECT_FOR_MS) {
        dx_finish(x, -1, "failed to retrieve exec result");
        return;
    }
    uv_timer_start(&x->retry, on_retry, DOCKER_EXEC_INSPECT_RETRY_MS, 0);
}

static void stream_ended(struct docker_exec *x, const char *error)
{
    if (x->phase != DX_STREAMING)
        return;
    x->phase = DX_INSPECTING;
    if (x->stream) {
        dx_req_close(x->stream);
        x->stream = NULL;
    }
    if (x->cancelled)
        return;
    x->cb->output(x->arg, 1, "", 0);
    if (!x->tty)
        x->cb->output(x->arg, 2, "", 0);
    if (x->reported)
        return;
    if (error)
        LOG_DEBUG("docker", "exec %.12s: stream: %s", x->id, error);
    x->inspect_since = (int64_t)uv_now(x->loop);
    inspect(x);
}

/* The raw stream: as is with a terminal, else frames of
 * [stream, 0, 0, 0, length (big endian)] + payload. */
static void stream_data(struct docker_exec *x, const char *p, size_t n)
{
    if (x->cancelled || x->reported)
        return;
    if (x->tty) {
        x->cb->output(x->arg, 1, p, n);
        return;
    }
    while (n > 0 && !x->reported) {
        if (x->fhdr_len < 8) {
            size_t take = 8 - x->fhdr_len < n ? 8 - x->fhdr_len : n;
            memcpy(x->fhdr + x->fhdr_len, p, take);
            x->fhdr_len += take;
            p += take;
            n -= take;
            if (x->fhdr_len < 8)
                return;
            x->fstream = x->fhdr[0];
            x->fleft = (uint32_t)x->fhdr[4] << 24 | (uint32_t)x->fhdr[5] << 16 |
                       (uint32_t)x->fhdr[6] << 8 | x->fhdr[7];
            if (x->fstream > 3 || x->fleft > DOCKER_EXEC_FRAME_MAX) {
                char *msg = xasprintf("the Engine's exec stream is not "
                                      "multiplexed output (stream %d, %u "
                                      "bytes)",
                                      x->fstream, x->fleft);
                dx_finish(x, -1, msg);
                free(msg);
                return;
            }
            if (x->fleft == 0)
                x->fhdr_len = 0;
            continue;
        }
        size_t take = x->fleft < n ? x->fleft : n;
        /* 1 stdout; 2 stderr, and 3, the Engine's own errors, go there */
        x->cb->output(x->arg, x->fstream == 1 ? 1 : 2, p, take);
        p += take;
        n -= take;
        x->fleft -= (uint32_t)take;
        if (x->fleft == 0)
            x->fhdr_len = 0;
    }
}

/* ---- stdin
 * -------------------------------------------------------------------------- */

struct dx_write {
    uv_write_t req;
    struct docker_exec *x;
    size_t n;
    char data[];
};

static void on_shutdown(uv_shutdown_t *s, int status)
{
    free(s);
}

static void do_shutdown(struct docker_exec *x)
{
    x->in_close_pending = false;
    if (x->shut || !x->stream || x->stream->closing)
        return;
    x->shut = true;
    uv_shutdown_t *s = xcalloc(1, sizeof(*s));
    if (uv_shutdown(s, (uv_stream_t *)&x->stream->pipe, on_shutdown) < 0)
        free(s);
}

static void on_stdin_written(uv_write_t *w, int status)
{
    struct dx_write *dw = (struct dx_write *)w;
    struct docker_exec *x = dw->x;
    x->queued -= dw->n;
    free(dw);
    if (status < 0)
        x->in_closed = true;
    if (x->queued || x->reported || x->cancelled)
        return;
    if (x->in_close_pending)
        do_shutdown(x);
    if (x->cb->drained)
        x->cb->drained(x->arg);
}

/* Writes to the stream (which must be up). */
static void stdin_send(struct docker_exec *x, const char *p, size_t n)
{
    struct dx_write *w = xmalloc(sizeof(*w) + n);
    w->x = x;
    w->n = n;
    memcpy(w->data, p, n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    x->queued += n;
    if (uv_write(&w->req, (uv_stream_t *)&x->stream->pipe, &b, 1,
                 on_stdin_written) < 0) {
        x->queued -= n;
        free(w);
        x->in_closed = true;
    }
}

static long dx_write(struct driver_session *base, const char *p, size_t n)
{
    struct docker_exec *x = (struct docker_exec *)base;
    if (x->in_closed || x->in_close_pending || x->reported || x->cancelled ||
        x->phase > DX_STREAMING)
        return -EPIPE;
    if (!n)
        return (long)(x->queued + x->pending_in.len);
    if (x->phase == DX_STREAMING) {
        stdin_send(x, p, n);
    } else {
        nc_buf_append(&x->pending_in, p, n);
    }
    return (long)(x->queued + x->pending_in.len);
}

static void dx_close_stdin(struct driver_session *base)
{
    struct docker_exec *x = (struct docker_exec *)base;
    if (x->in_closed || x->in_close_pending || x->reported || x->cancelled)
        return;
    if (x->tty) {
        char eof = 4; /* ^D: a terminal has no other end of input */
        dx_write(base, &eof, 1);
        x->in_closed = true;
        return;
    }
    if (x->phase == DX_STREAMING && !x->queued)
        do_shutdown(x);
    else
        x->in_close_pending = true;
}

static void on_resized(struct dx_req *r, int status, const char *body,
                       const char *error)
{
    /* as Nomad, a failed resize is not the session's end */
    if (error || status >= 300)
        LOG_DEBUG("docker", "exec %.12s: resize: %s", r->x->id,
                  error ? error : body);
}

static void resize_now(struct docker_exec *x)
{
    char *path =
        xasprintf("/exec/%s/resize?h=%d&w=%d", x->id, x->height, x->width);
    dx_request(x, "POST", path, NULL, false, on_resized);
    free(path);
}

static void dx_resize(struct driver_session *base, int width, int height)
{
    struct docker_exec *x = (struct docker_exec *)base;
    if (!x->tty || x->reported || x->cancelled || width <= 0 || height <= 0 ||
        width > 0xffff || height > 0xffff)
        return;
    x->width = width;
    x->height = height;
    if (x->phase == DX_STREAMING)
        resize_now(x);
}

static void dx_pause(struct driver_session *base, bool pause)
{
    struct docker_exec *x = (struct docker_exec *)base;
    if (x->paused == pause || x->reported || x->cancelled)
        return;
    x->paused = pause;
    if (x->phase != DX_STREAMING || !x->stream)
        return;
    if (pause)
        uv_read_stop((uv_stream_t *)&x->stream->pipe);
    else
        uv_read_start((uv_stream_t *)&x->stream->pipe, on_req_alloc,
                      on_req_read);
}

/* After a cancel: the process, if it still runs, is killed by its pid
 * (the Engine's inspect shows it; it would outlive the session). */
static void on_cancel_inspected(struct dx_req *r, int status, const char *body,
                                const char *error)
{
    if (error || status != 200)
        return;
    json_t *j = json_loads(body, 0, NULL);
    json_int_t pid = json_integer_value(json_object_get(j, "Pid"));
    if (json_is_true(json_object_get(j, "Running")) && pid > 1)
        kill((pid_t)pid, SIGKILL);
    json_decref(j);
}

static void dx_cancel(struct driver_session *base)
{
    struct docker_exec *x = (struct docker_exec *)base;
    if (x->cancelled)
        return;
    x->cancelled = true;
    bool started = x->phase >= DX_STARTING && x->id[0];
    bool done = x->reported;
    dx_finish(x, -1, NULL); /* closes all; no callback (cancelled) */
    if (started && !done) {
        char *path = xasprintf("/exec/%s/json", x->id);
        dx_request(x, "GET", path, NULL, false, on_cancel_inspected);
        free(path);
    }
    dx_unref(x); /* the caller's reference */
}

static const struct driver_session_ops dx_ops = {
    .write = dx_write,
    .close_stdin = dx_close_stdin,
    .resize = dx_resize,
    .pause_output = dx_pause,
    .cancel = dx_cancel,
};

/* ---- create, start
 * ---------------------------------------------------------------- */

static void on_started(struct dx_req *r, int status, const char *body,
                       const char *error)
{
    struct docker_exec *x = r->x;
    if (x->reported)
        return;
    if (status != 101) {
        /* an Engine that answers a start with 200 streams anyway: refuse
         * it rather than guess where the headers end */
        char *e = error           ? xstrdup(error)
                  : status == 200 ? xstrdup("the Engine did not "
                                            "upgrade the connection")
                                  : api_error(status, body);
        char *msg = xasprintf("failed to start exec: %s", e);
        x->stream = NULL; /* closed by req_complete */
        dx_finish(x, -1, msg);
        free(msg);
        free(e);
        return;
    }
    x->phase = DX_STREAMING;
    if (x->pending_in.len) {
        stdin_send(x, x->pending_in.data, x->pending_in.len);
        x->pending_in.len = 0;
    }
    if (x->in_close_pending && !x->queued)
        do_shutdown(x);
    if (x->width > 0)
        resize_now(x);
    if (x->paused)
        uv_read_stop((uv_stream_t *)&r->pipe);
}

static void on_created(struct dx_req *r, int status, const char *body,
                       const char *error)
{
    struct docker_exec *x = r->x;
    if (x->reported)
        return;
    json_t *j = !error && status == 201 ? json_loads(body, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(j, "Id"));
    if (!id || !*id || strlen(id) >= sizeof(x->id) ||
        strspn(id, "0123456789abcdef") != strlen(id)) {
        char *e = error           ? xstrdup(error)
                  : status == 201 ? xstrdup("the Engine gave no exec ID")
                                  : api_error(status, body);
        char *msg = xasprintf("failed to create exec object: %s", e);
        json_decref(j);
        dx_finish(x, -1, msg);
        free(msg);
        free(e);
        return;
    }
    snprintf(x->id, sizeof(x->id), "%s", id);
    json_decref(j);
    x->phase = DX_STARTING;
    char *path = xasprintf("/exec/%s/start", x->id);
    x->stream =
        dx_request(x, "POST", path,
                   json_pack("{s:b, s:b}", "Detach", false, "Tty", x->tty),
                   true, on_started);
    free(path);
}

/* "unix:///run/docker.sock" (or a bare path) to the socket's path. */
static char *socket_path(const char *endpoint)
{
    if (!endpoint || !*endpoint)
        return xstrdup("/var/run/docker.sock");
    if (nc_str_has_prefix(endpoint, "unix://"))
        endpoint += strlen("unix://");
    return *endpoint == '/' ? xstrdup(endpoint) : NULL;
}

int docker_exec_session(uv_loop_t *loop, const char *endpoint,
                        const char *container_id, const char *user,
                        char *const argv[], bool tty,
                        const struct driver_session_cb *cb, void *arg,
                        struct driver_session **out, struct nc_error *err)
{
    *out = NULL;
    if (!argv || !argv[0] || !*argv[0])
        return nc_error_set(err, -EINVAL, "command is required but was empty");
    if (!container_id || !*container_id ||
        strspn(container_id, "0123456789abcdefABCDEF") != strlen(container_id))
        return nc_error_set(err, -EINVAL, "invalid container ID \"%s\"",
                            container_id ? container_id : "");
    char *sock = socket_path(endpoint);
    if (!sock)
        return nc_error_set(err, -EINVAL,
                            "exec needs the Engine on a unix "
                            "socket, not \"%s\"",
                            endpoint);
    struct docker_exec *x = xcalloc(1, sizeof(*x));
    x->base.ops = &dx_ops;
    x->loop = loop;
    x->cb = cb;
    x->arg = arg;
    x->sock = sock;
    x->container = xstrdup(container_id);
    x->user = user && *user ? xstrdup(user) : NULL;
    x->tty = tty;
    x->refs = 2; /* the caller's (until cancel or the end), the retry timer */
    uv_timer_init(loop, &x->retry);
    x->retry.data = x;
    x->retry_open = true;
    json_t *cmd = json_array();
    for (size_t i = 0; argv[i]; i++)
        json_array_append_new(cmd, json_string(argv[i]));
    json_t *body = json_pack("{s:b, s:b, s:b, s:b, s:o}", "AttachStdin", true,
                             "AttachStdout", true, "AttachStderr", true, "Tty",
                             tty, "Cmd", cmd);
    if (x->user)
        json_object_set_new(body, "User", json_string(x->user));
    char *path = xasprintf("/containers/%s/exec", x->container);
    dx_request(x, "POST", path, body, false, on_created);
    free(path);
    *out = &x->base;
    return 0;
}
