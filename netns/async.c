/* async.c - netns_add / netns_del on the caller's libuv loop: the request
 * goes to `nomclient netns-helper -` on a stdin pipe, the outcome comes
 * back on a stdout pipe; the helper is detached (own session) so it
 * finishes its work even if the agent is stopped meanwhile. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netns/netns_internal.h"

struct netns_op {
    struct netns_op *next;
    uv_loop_t *loop;
    uv_process_t proc;
    uv_pipe_t in, out;
    uv_write_t write;
    char *request;
    struct nc_buf output;
    netns_done_cb cb;
    void *arg;
    char *alloc_id, *netns_path;
    int64_t started_us, spawn_us;
    int64_t exit_status;
    int term_signal;
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
    json_object_set_new(resp.timings, "WallUs", json_integer(wall));
    res.timings = resp.timings;
    if (!op->abandoned && op->cb)
        op->cb(&res, op->arg);
    netns_response_free(&resp);
}

static void maybe_finish(struct netns_op *op)
{
    if (op->exited && op->eof && !op->reported)
        report(op);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct netns_op *op = p->data;
    op->exited = true;
    op->exit_status = status;
    op->term_signal = sig;
    close_handle((uv_handle_t *)p);
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
        maybe_finish(op);
    }
}

static void on_written(uv_write_t *w, int status)
{
    struct netns_op *op = w->data;
    (void)status; /* a helper that died early is reported by its exit */
    close_handle((uv_handle_t *)&op->in);
}

static int spawn_helper(uv_loop_t *loop, const struct netns_config *cfg,
                        const struct netns_request *req, netns_done_cb cb,
                        void *arg, struct nc_error *err)
{
    if (!cfg->helper_path || !*cfg->helper_path)
        return nc_error_set(err, -EINVAL,
                            "no helper executable configured for netns");
    struct netns_op *op = xcalloc(1, sizeof(*op));
    op->loop = loop;
    op->cb = cb;
    op->arg = arg;
    op->alloc_id = xstrdup(req->alloc_id);
    op->netns_path = xstrdup(req->netns);
    json_t *j = netns_request_to_json(req);
    op->request = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    op->started_us = netns_now_us();
    uv_pipe_init(loop, &op->in, 0);
    uv_pipe_init(loop, &op->out, 0);
    op->in.data = op->out.data = op->proc.data = op->write.data = op;
    op->handles = 3; /* a failed spawn still leaves proc to close */
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE,
         .data.stream = (uv_stream_t *)&op->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
         .data.stream = (uv_stream_t *)&op->out},
        {.flags = UV_INHERIT_FD, .data.fd = STDERR_FILENO},
    };
    char *args[] = {(char *)cfg->helper_path, "netns-helper", "-", NULL};
    uv_process_options_t opts = {
        .file = cfg->helper_path,
        .args = args,
        .exit_cb = on_exit_cb,
        .flags = UV_PROCESS_DETACHED,
        .stdio = stdio,
        .stdio_count = 3,
    };
    int r = uv_spawn(loop, &op->proc, &opts);
    op->spawn_us = netns_now_us() - op->started_us;
    if (r < 0) {
        op->reported = true;
        close_handle((uv_handle_t *)&op->in);
        close_handle((uv_handle_t *)&op->out);
        close_handle((uv_handle_t *)&op->proc);
        return nc_error_set(err, r, "start netns helper %s: %s",
                            cfg->helper_path, uv_strerror(r));
    }
    uv_buf_t buf = uv_buf_init(op->request, (unsigned)strlen(op->request));
    r = uv_write(&op->write, (uv_stream_t *)&op->in, &buf, 1, on_written);
    if (r < 0)
        close_handle((uv_handle_t *)&op->in);
    uv_read_start((uv_stream_t *)&op->out, on_alloc, on_read);
    op->next = in_flight;
    in_flight = op;
    return 0;
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
    struct netns_request req;
    r = netns_request_build(&req, "ADD", cfg, setup, list, NULL, err);
    json_decref(list);
    if (r < 0)
        return r;
    r = spawn_helper(loop, cfg, &req, done_cb, arg, err);
    netns_request_free(&req);
    return r;
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
    struct netns_request req;
    int r =
        netns_request_build(&req, "DEL", cfg, setup, list, prev_result, err);
    json_decref(list);
    if (r < 0)
        return r;
    r = spawn_helper(loop, cfg, &req, done_cb, arg, err);
    netns_request_free(&req);
    return r;
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
        close_handle((uv_handle_t *)&op->proc);
    }
}
