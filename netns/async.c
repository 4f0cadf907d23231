/* async.c - netns_add / netns_del on the caller's libuv loop, answered by
 * one long-lived `nomclient netns-helper -serve` per loop: requests go to
 * its stdin as JSON lines tagged with a ReqID, each answer comes back as
 * one line on its stdout with the same ReqID. The server runs every
 * request on a thread of its own, so allocations set up side by side, and
 * it lives in its own session: a stopped or killed agent leaves it to
 * finish what it was given (its stdin then reads EOF and it exits once
 * idle). Keeping it running saves, per allocation, what a process each
 * cost: its exec, dynamic linking, first posix_spawn and exit, 3 to 6 ms
 * on a two-core machine.
 *
 * The server is started with posix_spawn (vfork: ~0.15 ms, whatever the
 * agent's size) on the first request, or ahead with netns_prestart. If it
 * dies, the requests it held fail with its exit status and the next
 * request starts a new one. Its stdout keeps the loop alive only while a
 * request is outstanding. It is reaped with waitpid(pid) once its stdout
 * closes, retried on a short timer while it finishes exiting, so no
 * SIGCHLD handler is involved and libuv's own never sees it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns/netns_internal.h"

extern char **environ;

struct server;

struct netns_op {
    struct netns_op *next;
    json_int_t id;
    netns_done_cb cb;
    void *arg;
    char *alloc_id, *netns_path;
    int64_t started_us, spawn_us;
};

struct server {
    struct server *next;
    uv_loop_t *loop;
    uv_pipe_t in, out;
    uv_timer_t reap;
    struct nc_buf buf; /* output not yet a whole line */
    struct netns_op *ops;
    json_int_t next_id;
    pid_t pid;
    int exit_status, term_signal;
    bool serving; /* takes new requests: running, stdout open */
    bool exited;
    int handles; /* initialised and not yet closed */
};

struct line_write {
    uv_write_t w;
    char *text;
};

/* Every server not yet freed, for each loop at most one serving. The
 * agent is single-threaded. */
static struct server *servers;

static void op_free(struct netns_op *op)
{
    free(op->alloc_id);
    free(op->netns_path);
    free(op);
}

static void server_free(struct server *s)
{
    for (struct server **pp = &servers; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    nc_buf_free(&s->buf);
    free(s);
}

static void on_closed(uv_handle_t *h)
{
    struct server *s = h->data;
    if (--s->handles == 0)
        server_free(s);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_closed);
}

/* The loop stays alive for the server only while it owes an answer. */
static void update_ref(struct server *s)
{
    if (uv_is_closing((uv_handle_t *)&s->out))
        return;
    if (s->ops)
        uv_ref((uv_handle_t *)&s->out);
    else
        uv_unref((uv_handle_t *)&s->out);
}

/* Calls op's callback with resp (NULL: the server went away without
 * answering) and frees op, which is no longer on the server's list. */
static void report(struct server *s, struct netns_op *op,
                   const json_t *answer)
{
    int64_t wall = netns_now_us() - op->started_us;
    struct netns_response resp = {0};
    struct netns_result res = {.alloc_id = op->alloc_id,
                               .netns_path = op->netns_path};
    char msg[600];
    if (!answer) {
        if (s->term_signal)
            snprintf(msg, sizeof(msg),
                     "netns helper (pid %d) was killed by signal %d before "
                     "answering for allocation %s",
                     (int)s->pid, s->term_signal, op->alloc_id);
        else if (s->exited)
            snprintf(msg, sizeof(msg),
                     "netns helper (pid %d) exited with status %d before "
                     "answering for allocation %s",
                     (int)s->pid, s->exit_status, op->alloc_id);
        else
            snprintf(msg, sizeof(msg),
                     "netns helper (pid %d) closed its output before "
                     "answering for allocation %s",
                     (int)s->pid, op->alloc_id);
        res.status = -EPROTO;
        res.message = msg;
        resp.timings = json_object();
    } else {
        netns_response_from_json(answer, &resp);
        res.status = resp.ok ? 0 : resp.code;
        res.message = resp.error ? resp.error : "";
        res.ip = resp.ip;
        if (resp.netns)
            res.netns_path = resp.netns;
        res.cni_result = resp.result;
        res.reused = resp.reused;
    }
    json_object_set_new(resp.timings, "SpawnUs", json_integer(op->spawn_us));
    json_t *done = json_object_get(resp.timings, "DoneUs");
    if (json_is_integer(done))
        json_object_set_new(
            resp.timings, "ExitUs",
            json_integer(netns_now_us() - json_integer_value(done)));
    json_object_set_new(resp.timings, "WallUs", json_integer(wall));
    res.timings = resp.timings;
    if (op->cb)
        op->cb(&res, op->arg);
    netns_response_free(&resp);
    op_free(op);
}

static struct netns_op *take_op(struct server *s, json_int_t id)
{
    for (struct netns_op **pp = &s->ops; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            struct netns_op *op = *pp;
            *pp = op->next;
            return op;
        }
    return NULL;
}

/* One answer line: to the request of its ReqID. */
static void on_line(struct server *s, const char *line, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb(line, len, 0, &je);
    json_t *id = json_object_get(j, "ReqID");
    struct netns_op *op = json_is_integer(id)
                              ? take_op(s, json_integer_value(id))
                              : NULL;
    if (op)
        report(s, op, j);
    else
        LOG_WARN("netns", "netns helper (pid %d) printed a line that "
                          "answers no request: %.200s",
                 (int)s->pid, line);
    json_decref(j);
}

/* Fails whatever the server still owed, once it is gone for good. */
static void fail_all(struct server *s)
{
    while (s->ops) {
        struct netns_op *op = s->ops;
        s->ops = op->next;
        report(s, op, NULL);
    }
}

/* Reaps the server; after its stdout closed it is at most moments away
 * from being a zombie, so look again shortly rather than install SIGCHLD. */
static void try_reap(uv_timer_t *t)
{
    struct server *s = t->data;
    int st = 0;
    pid_t r = waitpid(s->pid, &st, WNOHANG);
    if (r == 0) {
        if (!uv_is_active((uv_handle_t *)t))
            uv_timer_start(t, try_reap, 1, 2);
        return;
    }
    uv_timer_stop(t);
    s->exited = true;
    if (r == s->pid && WIFSIGNALED(st))
        s->term_signal = WTERMSIG(st);
    else if (r == s->pid)
        s->exit_status = WEXITSTATUS(st);
    fail_all(s);
    close_handle((uv_handle_t *)&s->reap);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = xmalloc(suggested);
    buf->len = suggested;
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    struct server *s = stream->data;
    if (n > 0)
        nc_buf_append(&s->buf, buf->base, (size_t)n);
    free(buf->base);
    if (n < 0) {
        /* gone: no new requests; what it owes fails once it is reaped */
        s->serving = false;
        close_handle((uv_handle_t *)&s->out);
        close_handle((uv_handle_t *)&s->in);
        try_reap(&s->reap);
        return;
    }
    size_t start = 0;
    for (size_t i = 0; i < s->buf.len; i++) {
        if (s->buf.data[i] != '\n')
            continue;
        on_line(s, s->buf.data + start, i - start);
        start = i + 1;
    }
    if (start > 0) {
        memmove(s->buf.data, s->buf.data + start, s->buf.len - start);
        s->buf.len -= start;
    }
    if (s->buf.len > NETNS_MAX_OUTPUT) {
        LOG_WARN("netns", "netns helper (pid %d) printed an over-long line; "
                          "dropped",
                 (int)s->pid);
        s->buf.len = 0;
    }
    update_ref(s);
}

static void on_written(uv_write_t *w, int status)
{
    struct line_write *lw = (struct line_write *)w;
    /* a server that died is reported by its exit, with what it owed */
    (void)status;
    free(lw->text);
    free(lw);
}

/* posix_spawn of the server in a new session with stdin/stdout pipes;
 * returns the pid or -errno. */
static pid_t spawn_process(const char *path, char *const argv[], int *in_fd,
                           int *out_fd)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(out, O_CLOEXEC) < 0) {
        int e = -errno;
        close(in[0]);
        close(in[1]);
        return e;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawnattr_init(&attr);
    sigset_t none, def;
    sigemptyset(&none);
    sigemptyset(&def);
    int sigs[] = {SIGPIPE, SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGCHLD};
    for (size_t i = 0; i < NC_ARRAY_LEN(sigs); i++)
        sigaddset(&def, sigs[i]);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID |
                                        POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int r = posix_spawn(&pid, path, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(in[0]);
    close(out[1]);
    if (r != 0) {
        close(in[1]);
        close(out[0]);
        return -r;
    }
    *in_fd = in[1];
    *out_fd = out[0];
    return pid;
}

/* The loop's serving server, started if there is none; *spawn_us gets
 * the start's cost when this call started it. */
static struct server *get_server(uv_loop_t *loop, const struct netns_config *cfg,
                                 int64_t *spawn_us, struct nc_error *err)
{
    *spawn_us = 0;
    for (struct server *s = servers; s; s = s->next)
        if (s->loop == loop && s->serving)
            return s;
    if (!cfg->helper_path || !*cfg->helper_path) {
        nc_error_set(err, -EINVAL, "no helper executable configured for netns");
        return NULL;
    }
    /* a server gone between two requests must not kill the caller */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    char *args[] = {(char *)cfg->helper_path, "netns-helper", "-serve", NULL};
    int in_fd = -1, out_fd = -1;
    int64_t t = netns_now_us();
    pid_t pid = spawn_process(cfg->helper_path, args, &in_fd, &out_fd);
    *spawn_us = netns_now_us() - t;
    if (pid < 0) {
        nc_error_set(err, pid, "start netns helper %s: %s", cfg->helper_path,
                     strerror(-pid));
        return NULL;
    }
    struct server *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->pid = pid;
    s->serving = true;
    s->next_id = 1;
    uv_pipe_init(loop, &s->in, 0);
    uv_pipe_init(loop, &s->out, 0);
    uv_timer_init(loop, &s->reap);
    s->in.data = s->out.data = s->reap.data = s;
    s->handles = 3;
    uv_pipe_open(&s->in, in_fd);
    uv_pipe_open(&s->out, out_fd);
    s->next = servers;
    servers = s;
    if (uv_read_start((uv_stream_t *)&s->out, on_alloc, on_read) < 0) {
        s->serving = false;
        close_handle((uv_handle_t *)&s->out);
        close_handle((uv_handle_t *)&s->in);
        try_reap(&s->reap);
        nc_error_set(err, -EPIPE, "read from netns helper %s",
                     cfg->helper_path);
        return NULL;
    }
    update_ref(s);
    return s;
}

static int send_request(uv_loop_t *loop, const struct netns_config *cfg,
                        const struct netns_request *req, netns_done_cb cb,
                        void *arg, struct nc_error *err)
{
    int64_t t0 = netns_now_us(), spawn_us;
    struct server *s = get_server(loop, cfg, &spawn_us, err);
    if (!s)
        return err->code ? err->code : -EIO;
    json_int_t id = s->next_id++;
    json_t *j = netns_request_to_json(req);
    json_object_set_new(j, "SentUs", json_integer(t0));
    json_object_set_new(j, "ReqID", json_integer(id));
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    struct line_write *lw = xcalloc(1, sizeof(*lw));
    lw->text = xasprintf("%s\n", text);
    free(text);
    uv_buf_t buf = uv_buf_init(lw->text, (unsigned)strlen(lw->text));
    int r = uv_write(&lw->w, (uv_stream_t *)&s->in, &buf, 1, on_written);
    if (r < 0) {
        free(lw->text);
        free(lw);
        return nc_error_set(err, r, "send a request to netns helper (pid %d): "
                                    "%s",
                            (int)s->pid, uv_strerror(r));
    }
    struct netns_op *op = xcalloc(1, sizeof(*op));
    op->id = id;
    op->cb = cb;
    op->arg = arg;
    op->alloc_id = xstrdup(req->alloc_id);
    op->netns_path = xstrdup(req->netns);
    op->started_us = t0;
    op->spawn_us = spawn_us;
    op->next = s->ops;
    s->ops = op;
    update_ref(s);
    return 0;
}

static int start(uv_loop_t *loop, const struct netns_config *cfg,
                 const char *cmd, const struct netns_setup *setup,
                 json_t *conflist, const json_t *prev_result,
                 netns_done_cb done_cb, void *arg, struct nc_error *err)
{
    struct netns_request req;
    int r =
        netns_request_build(&req, cmd, cfg, setup, conflist, prev_result, err);
    json_decref(conflist);
    if (r < 0)
        return r;
    r = send_request(loop, cfg, &req, done_cb, arg, err);
    netns_request_free(&req);
    return r;
}

int netns_add(uv_loop_t *loop, const struct netns_config *cfg,
              const struct netns_setup *setup, netns_done_cb done_cb, void *arg,
              struct nc_error *err)
{
    json_t *list = NULL;
    int r =
        netns_conflist_for_mode(cfg, setup ? setup->mode : NULL, &list, err);
    if (r < 0)
        return r;
    return start(loop, cfg, "ADD", setup, list, NULL, done_cb, arg, err);
}

int netns_del(uv_loop_t *loop, const struct netns_config *cfg,
              const struct netns_setup *setup, json_t *prev_result,
              netns_done_cb done_cb, void *arg, struct nc_error *err)
{
    /* the recorded conflist wins in the helper; this one only serves when
     * the state file is gone, so failing to build it is no reason to stop */
    json_t *list = NULL;
    struct nc_error ignored = {0};
    netns_conflist_for_mode(cfg, setup ? setup->mode : NULL, &list, &ignored);
    return start(loop, cfg, "DEL", setup, list, prev_result, done_cb, arg, err);
}

int netns_prestart(uv_loop_t *loop, const struct netns_config *cfg,
                   struct nc_error *err)
{
    int64_t spawn_us;
    return get_server(loop, cfg, &spawn_us, err) ? 0 : -EIO;
}

void netns_abandon_all(uv_loop_t *loop)
{
    for (struct server *s = servers; s; s = s->next) {
        if (s->loop != loop)
            continue;
        while (s->ops) {
            struct netns_op *op = s->ops;
            s->ops = op->next;
            op_free(op);
        }
        /* its stdin closing tells it to exit once what it runs is done */
        s->serving = false;
        close_handle((uv_handle_t *)&s->in);
        close_handle((uv_handle_t *)&s->out);
        close_handle((uv_handle_t *)&s->reap);
    }
}

void netns_loop_done(uv_loop_t *loop)
{
    netns_abandon_all(loop);
    uv_run(loop, UV_RUN_DEFAULT);
}
