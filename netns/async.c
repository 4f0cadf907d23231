/* async.c - netns_add / netns_del on the caller's libuv loop: the request
 * goes to `nomclient netns-helper -` on a stdin pipe, the outcome comes
 * back as one line on a stdout pipe. The helper runs in its own session so
 * it finishes its work even if the agent is stopped meanwhile.
 *
 * The helper is started with posix_spawn (vfork: ~0.15 ms, whatever the
 * agent's size) rather than uv_spawn (fork: ~0.45 ms here, growing with the
 * agent's page tables). The callback fires on the complete output line;
 * the child is reaped with waitpid(pid) once its stdout closes, retried
 * on a short timer while it finishes exiting, so no SIGCHLD handler is
 * involved and libuv's own (for uv_spawn'ed processes) never sees it. */
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

struct netns_op {
    struct netns_op *next;
    uv_loop_t *loop;
    uv_pipe_t in, out;
    uv_timer_t reap;
    uv_write_t write;
    char *request;
    struct nc_buf output;
    netns_done_cb cb;
    void *arg;
    char *alloc_id, *netns_path;
    int64_t started_us, spawn_us;
    pid_t pid;
    int exit_status, term_signal;
    bool exited, eof, reported, abandoned;
    int handles; /* initialised and not yet closed */
};

/* In flight, for netns_abandon_all. The agent is single-threaded. */
static struct netns_op *in_flight;

static void unlink_op(struct netns_op *op)
{
    for (struct netns_op **pp = &in_flight; *pp; pp = &(*pp)->next)
        if (*pp == op) {
            *pp = op->next;
            break;
        }
}

static void op_free(struct netns_op *op)
{
    free(op->request);
    nc_buf_free(&op->output);
    free(op->alloc_id);
    free(op->netns_path);
    free(op);
}

static void on_closed(uv_handle_t *h)
{
    struct netns_op *op = h->data;
    if (--op->handles == 0)
        op_free(op);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_closed);
}

static void report(struct netns_op *op)
{
    op->reported = true;
    unlink_op(op);
    int64_t wall = netns_now_us() - op->started_us;
    struct netns_response resp = {0};
    struct nc_error err = {0};
    struct netns_result res = {.alloc_id = op->alloc_id,
                               .netns_path = op->netns_path};
    char msg[1200];
    if (netns_response_parse(op->output.data, op->output.len, &resp, &err) <
        0) {
        if (op->term_signal)
            snprintf(msg, sizeof(msg),
                     "netns helper for allocation %s was killed by signal %d "
                     "(%s)",
                     op->alloc_id, op->term_signal, err.msg);
        else
            snprintf(msg, sizeof(msg),
                     "netns helper for allocation %s exited with status %lld "
                     "(%s)",
                     op->alloc_id, (long long)op->exit_status, err.msg);
        res.status = err.code;
        res.message = msg;
        resp.timings = json_object();
    } else {
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
    if (!op->abandoned && op->cb)
        op->cb(&res, op->arg);
    netns_response_free(&resp);
}

/* The helper prints one line and exits: the line is enough, so the
 * callback does not wait for the process teardown and SIGCHLD. */
static bool line_complete(const struct netns_op *op)
{
    if (op->output.len == 0 || op->output.data[op->output.len - 1] != '\n')
        return false;
    json_t *j = json_loadb(op->output.data, op->output.len, 0, NULL);
    bool ok = json_is_object(j);
    json_decref(j);
    return ok;
}

static void maybe_finish(struct netns_op *op)
{
    if (!op->reported && (op->exited || line_complete(op)))
        report(op);
    if (op->reported && op->exited && op->eof)
        close_handle((uv_handle_t *)&op->reap);
}

/* Reaps the helper; after its stdout closed it is at most moments away
 * from being a zombie, so poll briefly rather than install SIGCHLD. */
static void try_reap(uv_timer_t *t)
{
    struct netns_op *op = t->data;
    int st = 0;
    pid_t r = waitpid(op->pid, &st, WNOHANG);
    if (r == 0) {
        if (!uv_is_active((uv_handle_t *)t))
            uv_timer_start(t, try_reap, 1, 2);
        return;
    }
    uv_timer_stop(t);
    op->exited = true;
    if (r == op->pid && WIFSIGNALED(st))
        op->term_signal = WTERMSIG(st);
    else if (r == op->pid)
        op->exit_status = WEXITSTATUS(st);
    maybe_finish(op);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = xmalloc(suggested);
    buf->len = suggested;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct netns_op *op = s->data;
    if (n > 0 && op->output.len < NETNS_MAX_OUTPUT)
        nc_buf_append(&op->output, buf->base, (size_t)n);
    free(buf->base);
    if (n < 0) {
        op->eof = true;
        close_handle((uv_handle_t *)s);
        try_reap(&op->reap);
    } else if (n > 0) {
        maybe_finish(op);
    }
}

static void on_written(uv_write_t *w, int status)
{
    struct netns_op *op = w->data;
    (void)status; /* a helper that died early is reported by its exit */
    close_handle((uv_handle_t *)&op->in);
}

/* posix_spawn of the helper in a new session with stdin/stdout pipes;
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

static int spawn_helper(uv_loop_t *loop, const struct netns_config *cfg,
                        const struct netns_request *req, netns_done_cb cb,
                        void *arg, struct nc_error *err)
{
    if (!cfg->helper_path || !*cfg->helper_path)
        return nc_error_set(err, -EINVAL,
                            "no helper executable configured for netns");
    int64_t t0 = netns_now_us();
    json_t *j = netns_request_to_json(req);
    json_object_set_new(j, "SentUs", json_integer(t0));
    char *request = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    char *args[] = {(char *)cfg->helper_path, "netns-helper", "-", NULL};
    int in_fd, out_fd;
    int64_t t1 = netns_now_us();
    pid_t pid = spawn_process(cfg->helper_path, args, &in_fd, &out_fd);
    int64_t spawn_us = netns_now_us() - t1;
    if (pid < 0) {
        free(request);
        return nc_error_set(err, pid, "start netns helper %s: %s",
                            cfg->helper_path, strerror(-pid));
    }
    struct netns_op *op = xcalloc(1, sizeof(*op));
    op->loop = loop;
    op->cb = cb;
    op->arg = arg;
    op->alloc_id = xstrdup(req->alloc_id);
    op->netns_path = xstrdup(req->netns);
    op->request = request;
    op->pid = pid;
    op->started_us = t0;
    op->spawn_us = spawn_us;
    uv_pipe_init(loop, &op->in, 0);
    uv_pipe_init(loop, &op->out, 0);
    uv_timer_init(loop, &op->reap);
    op->in.data = op->out.data = op->reap.data = op->write.data = op;
    op->handles = 3;
    uv_pipe_open(&op->in, in_fd);
    uv_pipe_open(&op->out, out_fd);
    op->next = in_flight;
    in_flight = op;
    uv_buf_t buf = uv_buf_init(op->request, (unsigned)strlen(op->request));
    if (uv_write(&op->write, (uv_stream_t *)&op->in, &buf, 1, on_written) < 0)
        close_handle((uv_handle_t *)&op->in);
    if (uv_read_start((uv_stream_t *)&op->out, on_alloc, on_read) < 0) {
        op->eof = true;
        close_handle((uv_handle_t *)&op->out);
        try_reap(&op->reap);
    }
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
    r = spawn_helper(loop, cfg, &req, done_cb, arg, err);
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

void netns_abandon_all(uv_loop_t *loop)
{
    struct netns_op **pp = &in_flight;
    while (*pp) {
        struct netns_op *op = *pp;
        if (op->loop != loop) {
            pp = &op->next;
            continue;
        }
        *pp = op->next;
        op->abandoned = true;
        op->reported = true;
        close_handle((uv_handle_t *)&op->in);
        close_handle((uv_handle_t *)&op->out);
        close_handle((uv_handle_t *)&op->reap);
    }
}
