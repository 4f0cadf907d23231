/* docker_run.c - a command inside a running docker task (script checks),
 * through the Engine's exec API as Nomad's handle.Exec does it: POST
 * /containers/{id}/exec (stdout and stderr attached, no tty), POST
 * /exec/{id}/start streamed (the multiplexed output, its last 4 KiB
 * kept), then GET /exec/{id}/json for the exit code. The command gets
 * what the container gives every process: its user, environment,
 * working dir, namespaces and cgroup, so nothing here enters them by
 * hand. At the deadline (or a cancel) the command's process, whose host
 * pid the exec's inspect gives, is killed. */
#include "client/drivers/driver.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/drivers/docker_api.h"
#include "client/drivers/internal.h"

#define dk docker_driver_state

enum run_step { RUN_CREATE, RUN_START, RUN_INSPECT, RUN_KILL };

struct docker_run {
    struct driver_exec base; /* first */
    driver_exec_done_fn done;
    void *arg;
    char *container_id, *exec_id;
    int step;
    struct docker_call *call, *kill_call;
    struct docker_demux demux;
    char ring[DRIVER_EXEC_OUTPUT_MAX];
    size_t total;
    uv_timer_t *timer;
    bool timed_out, cancelled, reported;
    int inspects; /* of the exec, once its stream ended */
    char *error; /* why it never ran */
};

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void run_free(struct docker_run *x)
{
    if (x->call)
        docker_call_cancel(dk.api, x->call);
    if (x->kill_call)
        docker_call_cancel(dk.api, x->kill_call);
    if (x->timer)
        uv_close((uv_handle_t *)x->timer, on_timer_closed);
    free(x->container_id);
    free(x->exec_id);
    free(x->error);
    free(x);
}

static void run_report(struct docker_run *x, int code)
{
    if (x->reported)
        return;
    x->reported = true;
    if (!x->cancelled) {
        char out[DRIVER_EXEC_OUTPUT_MAX + 1];
        size_t n = x->total < sizeof(x->ring) ? x->total : sizeof(x->ring);
        size_t start =
            x->total < sizeof(x->ring) ? 0 : x->total % sizeof(x->ring);
        memcpy(out, x->ring + start, n - start);
        memcpy(out + (n - start), x->ring, start);
        out[n] = '\0';
        x->done(x->arg, x->timed_out || x->error ? -1 : code, 0, x->timed_out,
                out, n, x->error);
    }
    run_free(x);
}

static void on_output(void *arg, int stream, const char *p, size_t n)
{
    struct docker_run *x = arg;
    for (size_t i = 0; i < n; i++)
        x->ring[x->total++ % sizeof(x->ring)] = p[i];
}

static void on_data(void *arg, const char *data, size_t len)
{
    struct docker_run *x = arg;
    if (docker_demux_feed(&x->demux, data, len, on_output, x) < 0)
        on_output(x, 1, data, len); /* not multiplexed: kept as it is */
}

static int run_call(struct docker_run *x, struct docker_call **slot,
                    const struct docker_call_opts *o, docker_done_fn fn,
                    struct nc_error *err)
{
    struct docker_api *api = docker_api_get(err);
    return api         ? docker_call(api, o, fn, x, slot)
           : err->code ? err->code
                       : -EIO;
}

/* The exec's process, killed from the host (its pid from the inspect). */
static void on_kill_inspect(void *arg, const struct docker_reply *r)
{
    struct docker_run *x = arg;
    x->kill_call = NULL;
    int pid = (int)json_integer_value(json_object_get(r->json, "Pid"));
    bool running = json_is_true(json_object_get(r->json, "Running"));
    if (!r->error && running && pid > 0)
        kill(pid, SIGKILL);
    if (x->cancelled && !x->call)
        run_free(x);
}

static void run_kill(struct docker_run *x)
{
    if (!x->exec_id || x->kill_call)
        return;
    char *path = xasprintf("/exec/%s/json", x->exec_id);
    struct docker_call_opts o = {.path = path,
                                 .timeout_ms = DOCKER_CALL_TIMEOUT_MS};
    struct nc_error err = {0};
    run_call(x, &x->kill_call, &o, on_kill_inspect, &err);
    free(path);
}

static void on_inspected(void *arg, const struct docker_reply *r);

/* GET /exec/{id}/json for the exit code. */
static void inspect_start(struct docker_run *x)
{
    char *path = xasprintf("/exec/%s/json", x->exec_id);
    struct docker_call_opts o = {.path = path,
                                 .timeout_ms = DOCKER_CALL_TIMEOUT_MS};
    struct nc_error err = {0};
    if (run_call(x, &x->call, &o, on_inspected, &err) < 0) {
        x->error = xstrdup(err.msg);
        run_report(x, -1);
    }
    free(path);
}

static void on_reinspect(uv_timer_t *t) { inspect_start(t->data); }

static void on_inspected(void *arg, const struct docker_reply *r)
{
    struct docker_run *x = arg;
    x->call = NULL;
    if (!r->error && json_is_true(json_object_get(r->json, "Running")) &&
        x->inspects++ < 60 && !x->timed_out) {
        /* the stream can end a moment before the Engine records the exit
         * (Nomad reads again every 50 ms for up to 3 s) */
        uv_timer_stop(x->timer);
        uv_timer_start(x->timer, on_reinspect, 50, 0);
        return;
    }
    if (x->kill_call) { /* the kill's inspect is on its way: let it end */
        docker_call_cancel(dk.api, x->kill_call);
        x->kill_call = NULL;
    }
    int code = (int)json_integer_value(json_object_get(r->json, "ExitCode"));
    if (r->error && !x->error)
        x->error = xasprintf("inspect exec: %s", r->error);
    run_report(x, code);
}

static void on_started(void *arg, const struct docker_reply *r)
{
    struct docker_run *x = arg;
    x->call = NULL;
    if (r->error && !x->timed_out) {
        x->error = xasprintf("start exec: %s", r->error);
        run_report(x, -1);
        return;
    }
    inspect_start(x);
}

static void on_created(void *arg, const struct docker_reply *r)
{
    struct docker_run *x = arg;
    x->call = NULL;
    const char *id = json_string_value(json_object_get(r->json, "Id"));
    if (r->error || !id) {
        x->error = xasprintf("create exec: %s",
                             r->error ? r->error : "no exec id in the answer");
        run_report(x, -1);
        return;
    }
    x->exec_id = xstrdup(id);
    if (x->timed_out) { /* never started */
        run_report(x, -1);
        return;
    }
    char *path = xasprintf("/exec/%s/start", id);
    json_t *body = json_pack("{s:b, s:b}", "Detach", 0, "Tty", 0);
    struct docker_call_opts o = {.method = "POST",
                                 .path = path,
                                 .body = body,
                                 .on_data = on_data,
                                 .data_arg = x};
    struct nc_error err = {0};
    if (run_call(x, &x->call, &o, on_started, &err) < 0) {
        x->error = xstrdup(err.msg);
        run_report(x, -1);
    }
    json_decref(body);
    free(path);
}

static void on_deadline(uv_timer_t *t)
{
    struct docker_run *x = t->data;
    x->timed_out = true;
    run_kill(x); /* the stream ends once the process is gone */
}

static void run_cancel(struct driver_exec *base)
{
    struct docker_run *x = (struct docker_run *)base;
    x->cancelled = true;
    if (x->call) {
        docker_call_cancel(dk.api, x->call);
        x->call = NULL;
    }
    if (x->exec_id && !x->reported) {
        x->reported = true;
        run_kill(x); /* freed once the kill's inspect is back */
        if (x->kill_call)
            return;
    }
    run_free(x);
}

int docker_task_exec(const struct driver_env *env, struct alloc_task *t,
                     char *const argv[], int64_t timeout_ns,
                     driver_exec_done_fn done, void *arg,
                     struct driver_exec **out, struct nc_error *err)
{
    *out = NULL;
    struct docker_task *h = t->handle;
    const struct task *spec = alloc_task_spec(t);
    if (!h || !h->container_id || t->supervisor_pid <= 0 || !spec ||
        !nc_streq(t->state, "running"))
        return nc_error_set(err, -ESRCH, "task \"%s\" is not running", t->name);
    if (!argv || !argv[0] || !*argv[0])
        return nc_error_set(err, -EINVAL, "no command");
    /* the check's words may name the task's variables, as exec's */
    struct kvlist kv = {0};
    alloc_task_env(t->alloc, spec, env->node, "/alloc", "/local", true, &kv);
    json_t *cmd = json_array();
    for (size_t i = 0; argv[i]; i++) {
        char *v = alloc_interpolate(argv[i], &kv, env->node);
        json_array_append_new(cmd, json_string(v ? v : ""));
        free(v);
    }
    kv_free(&kv);
    struct docker_run *x = xcalloc(1, sizeof(*x));
    x->base.cancel = run_cancel;
    x->done = done;
    x->arg = arg;
    x->container_id = xstrdup(h->container_id);
    json_t *body =
        json_pack("{s:b, s:b, s:b, s:b, s:o}", "AttachStdin", 0, "AttachStdout",
                  1, "AttachStderr", 1, "Tty", 0, "Cmd", cmd);
    char *path = xasprintf("/containers/%s/exec", h->container_id);
    struct docker_call_opts o = {.method = "POST",
                                 .path = path,
                                 .body = body,
                                 .timeout_ms = DOCKER_CALL_TIMEOUT_MS};
    int r = run_call(x, &x->call, &o, on_created, err);
    json_decref(body);
    free(path);
    if (r < 0) {
        free(x->container_id);
        free(x);
        return err->msg[0] ? r : nc_error_set(err, r, "cannot call the daemon");
    }
    uint64_t ms = timeout_ns > 0 ? (uint64_t)(timeout_ns / 1000000) : 0;
    x->timer = xcalloc(1, sizeof(*x->timer));
    uv_timer_init(env->loop, x->timer);
    x->timer->data = x;
    uv_timer_start(x->timer, on_deadline, ms ? ms : 1, 0);
    *out = &x->base;
    return 0;
}

/* `alloc exec` (docker_exec.c): the task's container, as its user. */
int docker_task_exec_session(const struct driver_env *env, struct alloc_task *t,
                             char *const argv[], bool tty,
                             const struct driver_session_cb *cb, void *arg,
                             struct driver_session **out, struct nc_error *err)
{
    *out = NULL;
    struct docker_task *h = t->handle;
    const struct task *spec = alloc_task_spec(t);
    if (!h || !h->container_id || t->supervisor_pid <= 0 || !spec ||
        !nc_streq(t->state, "running"))
        return nc_error_set(err, -ESRCH, "task \"%s\" is not running", t->name);
    if (docker_driver_setup(env->loop, env->cfg, err) < 0)
        return err->code;
    return docker_exec_session(env->loop, docker_driver_state.set.endpoint,
                               h->container_id, spec->user, argv, tty, cb, arg,
                               out, err);
}
