/* docker_task.c - a docker task's container, as Nomad's driver runs it
 * (drivers/docker/driver.go, handle.go), on the agent's loop:
 *
 *   start    the image (docker_image.c; "Downloading image"), then
 *            POST /containers/create?name=<task>-<alloc>; a name taken by
 *            this allocation's running container is adopted, a dead one
 *            removed and made again; the id is written to the task's
 *            record (.nomclient/<task>.docker.json, sync, before the
 *            start) and t->driver_state; POST start; inspect for the pid.
 *            A bridge task gets its image beside the network set-up and
 *            is created only once released (it joins the pause container).
 *   wait     POST /containers/{id}/wait (no timeout), again with backoff
 *            while the daemon is away; then the exit code and OOMKilled
 *            from an inspect, the logs drained, the container removed
 *            (gc.container) and the image released.
 *   stop     no kill_signal: POST stop?t=<kill_timeout>; else kill?signal=
 *            and stop?t=0 after kill_timeout. A stop during the start
 *            lets the call in flight finish (a cancelled create could
 *            still make the container), then removes what was made.
 *   recover  sync: the recorded pid with its start time still alive means
 *            the container runs (re-attached after an inspect); a dead one
 *            is inspected for its exit. The name is the task's, so a
 *            second container is never made, whenever the agent died.
 *
 * Reports go to the runner from the loop (a zero timer), never from
 * within an operation. */
#include "client/drivers/driver.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/drivers/docker_api.h"
#include "client/drivers/docker_config.h"
#include "client/drivers/internal.h"

#define dk docker_driver_state

#define CREATE_ATTEMPTS 5
#define WAIT_RETRY_FIRST_MS 250
#define WAIT_RETRY_MAX_MS 5000
#define LOGS_DRAIN_MS 2000  /* the log stream's end after the exit */
#define STOP_SLACK_MS 30000 /* beyond kill_timeout for stop?t= */

enum phase {
    PH_IDLE,    /* no run: before the first start, after the report */
    PH_IMAGE,   /* getting the image */
    PH_READY,   /* the image is there; waiting for the release */
    PH_CREATE,  /* create, a name conflict */
    PH_START,   /* start, inspect */
    PH_RUNNING, /* wait and logs */
    PH_RECOVER, /* re-attached: the first inspect */
    PH_EXITING, /* the exit's inspect, the logs' end, the removal */
    PH_ABORTED, /* prepared, never released */
};

extern const struct driver driver_docker;

static void task_create(struct docker_task *h);
static void task_exit_flow(struct docker_task *h);
static void task_report_later(struct docker_task *h);
static void task_send_stop(struct docker_task *h);

/* ---- the handle -----------------------------------------------------------
 */

static struct docker_task *handle_of(const struct driver_env *env,
                                     struct alloc_task *t)
{
    struct docker_task *h = t->handle;
    if (!h) {
        h = xcalloc(1, sizeof(*h));
        h->t = t;
        h->key = xasprintf("%s/%s", t->alloc->id, t->name);
        h->name = docker_container_name(t->name, t->alloc->id);
        h->record_path = xasprintf("%s/%s/.nomclient/%s.docker.json",
                                   env->alloc_root, t->alloc->id, t->name);
        h->pos_path = xasprintf("%s/%s/.nomclient/%s.docker-logs",
                                env->alloc_root, t->alloc->id, t->name);
        h->next = dk.tasks;
        if (dk.tasks)
            dk.tasks->pprev = &h->next;
        h->pprev = &dk.tasks;
        dk.tasks = h;
        t->handle = h;
    }
    h->env = env;
    return h;
}

static void on_timer_closed(uv_handle_t *x)
{
    free(x);
}

static void timer_close(uv_timer_t **tm)
{
    if (*tm) {
        uv_close((uv_handle_t *)*tm, on_timer_closed);
        *tm = NULL;
    }
}

static void timer_after(struct docker_task *h, uv_timer_t **tm, uint64_t ms,
                        uv_timer_cb cb)
{
    if (!*tm) {
        *tm = xcalloc(1, sizeof(**tm));
        uv_timer_init(dk.loop, *tm);
        (*tm)->data = h;
    }
    uv_timer_start(*tm, cb, ms, 0);
}

static void cancel_calls(struct docker_task *h)
{
    docker_image_cancel(h->image_req);
    h->image_req = NULL;
    struct docker_call **calls[] = {&h->call, &h->wait_call, &h->stop_call,
                                    &h->signal_call, &h->stats_call};
    for (size_t i = 0; i < NC_ARRAY_LEN(calls); i++)
        if (*calls[i]) {
            docker_call_cancel(dk.api, *calls[i]);
            *calls[i] = NULL;
        }
    docker_logs_stop(h->logs);
    h->logs = NULL;
    timer_close(&h->timer);
    timer_close(&h->kill_timer);
}

static void handle_free(struct docker_task *h)
{
    cancel_calls(h);
    if (h->pprev) {
        *h->pprev = h->next;
        if (h->next)
            h->next->pprev = h->pprev;
    }
    free(h->key);
    free(h->name);
    free(h->container_id);
    free(h->image);
    free(h->image_id);
    free(h->record_path);
    free(h->pos_path);
    free(h->cgroup);
    free(h->failure);
    json_decref(h->calls);
    json_decref(h->timings);
    free(h);
}

/* Forgets what a run found, for the next one. */
static void run_reset(struct docker_task *h)
{
    free(h->container_id);
    h->container_id = NULL;
    free(h->cgroup);
    h->cgroup = NULL;
    free(h->failure);
    h->failure = NULL;
    h->pid = 0;
    h->pid_start = 0;
    h->tty = false;
    h->wait_net = h->released = h->stop_asked = h->report_pending = false;
    h->stop_sent = h->exit_inspected = h->removing = false;
    h->attempts = 0;
    h->wait_failures = 0;
    memset(&h->res, 0, sizeof(h->res));
    memset(&h->usage, 0, sizeof(h->usage));
    h->usage_at_ns = h->usage_asked_ns = 0;
    json_decref(h->calls);
    h->calls = NULL;
    json_decref(h->timings);
    h->timings = NULL;
    h->start_ns = h->release_ns = h->engine_us = 0;
}

/* One Engine call of the start, timed: calls before the release are
 * off a bridge task's path (they overlap the network's set-up). */
static void task_timing(struct docker_task *h, const struct docker_reply *r)
{
    if (h->calls && h->phase != PH_RUNNING)
        h->engine_us += docker_timing_add(h->calls, r);
}

/* Where the start's time went, in the task's DriverState.Timings:
 * EngineUs (the calls on the path), Calls, StartToRunningUs (from the
 * driver's start, or from the release for a task that waited for the
 * network, to the pid known); RunningAt (unix ns) that moment. */
static json_t *task_timings(const struct docker_task *h)
{
    if (!h->calls || !h->start_ns)
        return NULL;
    uint64_t from = h->wait_net && h->release_ns ? h->release_ns : h->start_ns;
    uint64_t now = nc_now_mono_ns();
    json_t *j = json_pack("{s:I, s:O, s:I, s:I}", "EngineUs",
                          (json_int_t)h->engine_us, "Calls", h->calls,
                          "StartToRunningUs", (json_int_t)((now - from) / 1000),
                          "RunningAt", (json_int_t)nc_now_unix_ns());
    if (h->wait_net && h->release_ns)
        json_object_set_new(
            j, "StartToReleaseUs",
            json_integer((json_int_t)((h->release_ns - h->start_ns) / 1000)));
    return j;
}

bool docker_task_tracked(const char *container_id)
{
    for (struct docker_task *h = dk.tasks; h; h = h->next)
        if (h->container_id && h->phase != PH_IDLE &&
            strcmp(h->container_id, container_id) == 0)
            return true;
    return false;
}

bool docker_alloc_known(const char *alloc_id)
{
    for (struct docker_task *h = dk.tasks; h; h = h->next)
        if (h->t && strcmp(h->t->alloc->id, alloc_id) == 0)
            return true;
    return false;
}

void docker_tasks_close(void)
{
    while (dk.tasks) {
        struct docker_task *h = dk.tasks;
        if (h->t)
            h->t->handle = NULL;
        handle_free(h);
    }
}

static void task_event(struct docker_task *h, const char *type, const char *msg)
{
    if (h->t && h->env && h->env->event)
        h->env->event(h->t, type, msg);
}

static void on_image_event(void *arg, const char *type, const char *msg)
{
    task_event(arg, type, msg);
}

/* ---- the record -----------------------------------------------------------
 */

/* What a restarted agent finds the container by, written (atomic, not
 * fsync'd: a kill of the agent keeps it) before the container starts, and
 * again with its pid and with its exit. */
static void record_write(struct docker_task *h)
{
    if (!h->container_id)
        return;
    json_t *j = json_pack(
        "{s:s, s:s, s:s?, s:s?, s:i, s:I, s:b}", "ContainerID", h->container_id,
        "Name", h->name, "Image", h->image, "ImageID", h->image_id, "Pid",
        h->pid, "PidStart", (json_int_t)h->pid_start, "Tty", h->tty);
    if (h->phase == PH_IDLE && h->res.have_status) {
        json_object_set_new(j, "Exited", json_true());
        json_object_set_new(j, "ExitCode", json_integer(h->res.exit_code));
        json_object_set_new(j, "OOMKilled", json_boolean(h->res.oom_killed));
    }
    if (h->timings)
        json_object_set(j, "Timings", h->timings);
    char *txt = json_dumps(j, JSON_COMPACT);
    char *dir = xstrdup(h->record_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    nc_mkdir_p(dir, 0700);
    free(dir);
    int r = nc_write_file_replace(h->record_path, txt, strlen(txt), 0600);
    if (r < 0)
        LOG_WARN("docker", "task %s: cannot write %s: %s", h->key,
                 h->record_path, strerror(-r));
    free(txt);
    if (h->t) {
        json_decref(h->t->driver_state);
        h->t->driver_state = j;
    } else {
        json_decref(j);
    }
}

static void record_remove(struct docker_task *h)
{
    unlink(h->record_path);
    unlink(h->pos_path);
    if (h->t) {
        json_decref(h->t->driver_state);
        h->t->driver_state = NULL;
    }
}

/* The newest of the record file and t->driver_state (the file is written
 * first; the state is saved with the allocation later). New reference. */
static json_t *record_read(struct docker_task *h)
{
    size_t len;
    char *txt = nc_read_file(h->record_path, &len, 1 << 16);
    json_t *j = txt ? json_loadb(txt, len, 0, NULL) : NULL;
    free(txt);
    if (!json_is_object(j)) {
        json_decref(j);
        j = h->t && json_is_object(h->t->driver_state)
                ? json_incref(h->t->driver_state)
                : NULL;
    }
    return j;
}

/* ---- the end of a run ------------------------------------------------------
 */

static void on_report(uv_timer_t *tm)
{
    struct docker_task *h = tm->data;
    timer_close(&h->timer);
    h->report_pending = false;
    struct driver_exit res = h->res;
    char failure[sizeof(h->failure_buf)];
    if (h->failure) { /* the runner may start the task again from exited */
        snprintf(failure, sizeof(failure), "%s", h->failure);
        res.failure = failure;
    }
    h->phase = PH_IDLE;
    if (res.have_status && !res.failure && h->container_id)
        record_write(h); /* the exit, should the save not make it */
    struct alloc_task *t = h->t;
    if (!t)
        return;
    t->supervisor_pid = 0;
    if (h->image_id) {
        docker_image_release(h->image_id, h->key);
        free(h->image_id);
        h->image_id = NULL;
    }
    if (!res.failure)
        LOG_INFO("docker", "task %s: container %.12s exited (code %d%s)",
                 h->key, h->container_id ? h->container_id : "?", res.exit_code,
                 res.oom_killed ? ", OOM killed" : "");
    h->env->exited(t, &res);
}

/* The runner hears of the end from the loop. */
static void task_report_later(struct docker_task *h)
{
    if (h->report_pending)
        return;
    h->report_pending = true;
    timer_after(h, &h->timer, 0, on_report);
}

static void task_fail(struct docker_task *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void task_fail(struct docker_task *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->failure_buf, sizeof(h->failure_buf), fmt, ap);
    va_end(ap);
    free(h->failure);
    h->failure = xstrdup(h->failure_buf);
    h->res.have_status = true;
    h->res.exit_code = -1;
    LOG_WARN("docker", "task %s: %s", h->key, h->failure);
    task_report_later(h);
}

static int task_call(struct docker_task *h, struct docker_call **slot,
                     const char *method, const char *path, const json_t *body,
                     long timeout_ms, docker_done_fn fn)
{
    struct nc_error err = {0};
    struct docker_api *api = docker_api_get(&err);
    struct docker_call_opts o = {
        .method = method, .path = path, .body = body, .timeout_ms = timeout_ms};
    int r = api ? docker_call(api, &o, fn, h, slot) : -EIO;
    if (r < 0)
        task_fail(h, "%s %s: %s", method ? method : "GET", path,
                  err.msg[0] ? err.msg : strerror(-r));
    return r;
}

/* A stop during the start: what was made goes, then the end. */
static void on_cancel_removed(void *arg, const struct docker_reply *r)
{
    struct docker_task *h = arg;
    h->call = NULL;
    if (r->error && r->status != 404)
        LOG_WARN("docker", "task %s: failed to remove container %s: %s", h->key,
                 h->name, r->error);
    record_remove(h);
    free(h->container_id);
    h->container_id = NULL;
    h->res.have_status = true;
    task_report_later(h);
}

static void task_cancel_start(struct docker_task *h)
{
    if (!h->container_id) {
        h->res.have_status = true;
        task_report_later(h);
        return;
    }
    char *path = xasprintf("/containers/%s?force=true&v=true", h->container_id);
    task_call(h, &h->call, "DELETE", path, NULL, DOCKER_CALL_TIMEOUT_MS,
              on_cancel_removed);
    free(path);
}

/* ---- start ------------------------------------------------------------------
 */

static void on_image(void *arg, const char *image_id, const char *error)
{
    struct docker_task *h = arg;
    h->image_req = NULL;
    if (error) {
        if (h->stop_asked) {
            task_cancel_start(h);
        } else if (h->wait_net && !h->released) {
            h->failure = xstrdup(error); /* said at the release */
            h->phase = PH_READY;
        } else {
            task_fail(h, "%s", error);
        }
        return;
    }
    free(h->image_id);
    h->image_id = xstrdup(image_id);
    if (h->calls) { /* on the path from the start, or from the release */
        uint64_t now = nc_now_mono_ns();
        uint64_t from = !h->wait_net ? h->start_ns
                        : h->released ? h->release_ns
                                      : now;
        uint64_t path_us = (now - from) / 1000;
        json_array_append_new(
            h->calls,
            json_pack("{s:s, s:I, s:I}", "Call", "image", "Us",
                      (json_int_t)((now - h->start_ns) / 1000), "OnPathUs",
                      (json_int_t)path_us));
        h->engine_us += path_us;
    }
    if (h->stop_asked) {
        task_cancel_start(h);
        return;
    }
    if (h->wait_net && !h->released) {
        h->phase = PH_READY;
        return;
    }
    task_create(h);
}

/* The environment of the task inside its container. */
static void task_env(const struct docker_task *h, struct kvlist *env)
{
    const struct alloc_task *t = h->t;
    char *alloc_dir =
        xasprintf("%s/%s/alloc", h->env->alloc_root, t->alloc->id);
    char *task_dir =
        xasprintf("%s/%s/%s", h->env->alloc_root, t->alloc->id, t->name);
    alloc_task_env(t->alloc, alloc_task_spec(t), h->env->node, alloc_dir,
                   task_dir, true, env);
    free(alloc_dir);
    free(task_dir);
}

int docker_start(const struct driver_env *env, struct alloc_task *t,
                 bool wait_net, const char **event, struct nc_error *err)
{
    *event = "Driver Failure";
    if (docker_driver_setup(env->loop, env->cfg, err) < 0)
        return err->code;
    const struct task *spec = alloc_task_spec(t);
    if (!spec)
        return nc_error_set(err, -ENOENT, "task no longer in the job");
    struct docker_task *h = handle_of(env, t);
    if (h->phase != PH_IDLE)
        return nc_error_set(err, -EBUSY, "task %s is already starting",
                            t->name);
    run_reset(h);
    struct kvlist kv = {0};
    task_env(h, &kv);
    char *image = docker_task_image(spec, &kv, env->node);
    char *load = docker_task_string(spec, "load", &kv, env->node);
    kv_free(&kv);
    if (!image || !*image) {
        free(image);
        free(load);
        return nc_error_set(err, -EINVAL,
                            "image name required for docker driver");
    }
    if (load && (load[0] == '/' || strstr(load, ".."))) {
        nc_error_set(err, -EINVAL,
                     "load \"%s\" must be a path inside the task's local dir",
                     load);
        free(image);
        free(load);
        return -EINVAL;
    }
    free(h->image);
    h->image = image;
    char *load_path = load && *load
                          ? xasprintf("%s/%s/%s/local/%s", env->alloc_root,
                                      t->alloc->id, t->name, load)
                          : NULL;
    free(load);
    /* the previous run's record goes: nothing of it runs */
    record_remove(h);
    docker_net_adopt(t->alloc);
    h->wait_net = wait_net;
    h->phase = PH_IMAGE;
    h->calls = json_array();
    h->start_ns = nc_now_mono_ns();
    struct docker_image_opts o = {
        .image = h->image,
        .owner = h->key,
        .force_pull = docker_task_bool(spec, "force_pull"),
        .load_path = load_path,
        .pull_timeout_ns = docker_task_pull_timeout(spec),
        .spec = spec,
        .event = on_image_event,
    };
    int r = docker_image_get(&o, on_image, h, &h->image_req, err);
    free(load_path);
    if (r < 0) {
        h->phase = PH_IDLE;
        return r;
    }
    return wait_net ? 0 : DRIVER_STARTING;
}

int docker_release(const struct driver_env *env, struct alloc_task *t,
                   struct nc_error *err)
{
    struct docker_task *h = t->handle;
    if (!h || (h->phase != PH_IMAGE && h->phase != PH_READY))
        return nc_error_set(err, -EINVAL, "task %s was not prepared", t->name);
    h->env = env;
    h->released = true;
    h->release_ns = nc_now_mono_ns();
    if (h->phase == PH_READY) {
        if (h->failure) {
            h->res.have_status = true;
            h->res.exit_code = -1;
            task_report_later(h);
        } else {
            task_create(h);
        }
    }
    return DRIVER_STARTING;
}

void docker_abort(struct alloc_task *t)
{
    struct docker_task *h = t->handle;
    if (!h || h->phase == PH_IDLE)
        return;
    cancel_calls(h);
    h->phase = PH_ABORTED;
    h->res.have_status = false;
    task_report_later(h); /* the runner waits for this end */
}

/* Something went wrong that trying again may mend: the daemon away, a
 * 500, a cut connection. */
static bool transient(const struct docker_reply *r)
{
    return docker_reply_unreachable(r) || r->status >= 500 ||
           (r->error && strstr(r->error, "EOF"));
}

static void on_retry_create(uv_timer_t *tm)
{
    struct docker_task *h = tm->data;
    if (h->stop_asked)
        task_cancel_start(h);
    else
        task_create(h);
}

static void retry_create(struct docker_task *h)
{
    uint64_t ms = 50u << (h->attempts < 6 ? h->attempts : 6);
    timer_after(h, &h->timer, ms, on_retry_create);
}

static void task_inspect_started(struct docker_task *h);

static void on_conflict_removed(void *arg, const struct docker_reply *r)
{
    struct docker_task *h = arg;
    h->call = NULL;
    task_timing(h, r);
    if (r->error && r->status != 404) {
        task_fail(h, "Failed to purge container %s: %s", h->name, r->error);
        return;
    }
    free(h->container_id);
    h->container_id = NULL;
    if (h->stop_asked)
        task_cancel_start(h);
    else
        task_create(h);
}

static void on_started(void *arg, const struct docker_reply *r);

/* The name is taken: this allocation's running container is the task
 * (an earlier agent started it); a stopped one is removed and made anew. */
static void on_conflict_inspect(void *arg, const struct docker_reply *r)
{
    struct docker_task *h = arg;
    h->call = NULL;
    task_timing(h, r);
    if (r->error && r->status != 404) {
        task_fail(h, "Failed to inspect container %s: %s", h->name, r->error);
        return;
    }
    const char *id;
    enum docker_name_holder held = docker_name_holder(r, h->t->alloc->id, &id);
    if (held == DOCKER_NAME_GONE) {
        task_create(h); /* gone meanwhile */
        return;
    }
    if (held == DOCKER_NAME_FOREIGN) {
        task_fail(h,
                  "failed to create container: the name %s is taken by a "
                  "container that is not this allocation's",
                  h->name);
        return;
    }
    free(h->container_id);
    h->container_id = xstrdup(id);
    if (held == DOCKER_NAME_RUNNING && !h->stop_asked) {
        LOG_INFO("docker", "task %s: container %.12s already runs: adopted",
                 h->key, id);
        record_write(h);
        h->phase = PH_START;
        task_inspect_started(h);
        return;
    }
    /* made by an agent that died before starting it (same allocation, same
     * config): started as it is, so the task still starts once */
    if (held == DOCKER_NAME_CREATED && !h->stop_asked) {
        LOG_INFO("docker",
                 "task %s: container %.12s was made but never "
                 "started: starting it",
                 h->key, id);
        record_write(h);
        h->phase = PH_START;
        char *path = xasprintf("/containers/%s/start", id);
        task_call(h, &h->call, "POST", path, NULL, DOCKER_CREATE_TIMEOUT_MS,
                  on_started);
        free(path);
        return;
    }
    char *path = xasprintf("/containers/%s?force=true&v=true", id);
    task_call(h, &h->call, "DELETE", path, NULL, DOCKER_CALL_TIMEOUT_MS,
              on_conflict_removed);
    free(path);
}

static void on_started(void *arg, const struct docker_reply *r);

static void on_created(void *arg, const struct docker_reply *r)
{
    struct docker_task *h = arg;
    h->call = NULL;
    task_timing(h, r);
    const char *id = json_string_value(json_object_get(r->json, "Id"));
    if (!r->error && id) {
        h->container_id = xstrdup(id);
        if (h->stop_asked) {
            task_cancel_start(h);
            return;
        }
        /* before it starts: a restarted agent must find it */
        record_write(h);
        LOG_INFO("docker", "task %s: created container %.12s", h->key, id);
        h->phase = PH_START;
        char *path = xasprintf("/containers/%s/start", id);
        task_call(h, &h->call, "POST", path, NULL, DOCKER_CREATE_TIMEOUT_MS,
                  on_started);
        free(path);
        return;
    }
    if (h->stop_asked) {
        task_cancel_start(h);
        return;
    }
    if (r->status == 409 && h->attempts < CREATE_ATTEMPTS) {
        char *path = xasprintf("/containers/%s/json", h->name);
        task_call(h, &h->call, NULL, path, NULL, DOCKER_CALL_TIMEOUT_MS,
                  on_conflict_inspect);
        free(path);
        return;
    }
    if (transient(r) && h->attempts < CREATE_ATTEMPTS) {
        LOG_DEBUG("docker", "task %s: create: %s; trying again", h->key,
                  r->error);
        retry_create(h);
        return;
    }
    task_fail(h, "failed to create container: %s",
              r->error ? r->error : "no container id in the answer");
}

static void task_create(struct docker_task *h)
{
    h->phase = PH_CREATE;
    h->attempts++;
    const struct alloc_task *t = h->t;
    const struct alloc *a = t->alloc;
    const struct task *spec = alloc_task_spec(t);
    if (!spec) {
        task_fail(h, "task no longer in the job");
        return;
    }
    const char *pause = docker_net_pause_id(a);
    if (!pause && a->netns && !nc_streq(a->network_mode, "host")) {
        task_fail(h,
                  "the allocation's %s network has no pause container for "
                  "docker tasks to join",
                  a->network_mode ? a->network_mode : "group");
        return;
    }
    char *mode = pause ? xasprintf("container:%s", pause) : NULL;
    struct kvlist kv = {0};
    task_env(h, &kv);
    char *alloc_dir = xasprintf("%s/%s/alloc", h->env->alloc_root, a->id);
    char *task_dir = xasprintf("%s/%s/%s", h->env->alloc_root, a->id, t->name);
    struct docker_task_ctx ctx = {.cfg = h->env->cfg,
                                  .node = h->env->node,
                                  .a = a,
                                  .t = t,
                                  .spec = spec,
                                  .task_dir = task_dir,
                                  .alloc_dir = alloc_dir,
                                  .env = &kv,
                                  .network_mode = mode,
                                  .image = h->image};
    struct nc_error err = {0};
    json_t *body = docker_container_body(&ctx, &err);
    free(mode);
    free(alloc_dir);
    free(task_dir);
    kv_free(&kv);
    if (!body) {
        task_fail(h,
                  "Failed to create container configuration for image "
                  "\"%s\" (\"%s\"): %s",
                  h->image, h->image_id ? h->image_id : "", err.msg);
        return;
    }
    char *name = docker_query_escape(h->name);
    char *path = xasprintf("/containers/create?name=%s", name);
    task_call(h, &h->call, "POST", path, body, DOCKER_CREATE_TIMEOUT_MS,
              on_created);
    free(path);
    free(name);
    json_decref(body);
}

static void on_started_removed(void *arg, const struct docker_reply *r)
{
    struct docker_task *h = arg;
    h->call = NULL;
    record_remove(h);
    free(h->container_id);
    h->container_id = NULL;
    task_report_later(h); /* the failure is set */
}

static void on_started(void *arg, const struct docker_reply *r)
{
    struct docker_task *h = arg;
    h->call = NULL;
    task_timing(h, r);
    if (!r->error || r->status == 304) { /* 304: it runs already */
        task_inspect_started(h);
        return;
    }
    if (h->stop_asked) {
        task_cancel_start(h);
        return;
    }
    /* Nomad: a runtime race that making it again mends */
    bool again = strstr(r->error, "container with id exists") != NULL ||
                 (transient(r) && !docker_reply_unreachable(r));
    if (again && h->attempts < CREATE_ATTEMPTS) {
        char *path =
            xasprintf("/containers/%s?force=true&v=true", h->container_id);
        task_call(h, &h->call, "DELETE", path, NULL, DOCKER_CALL_TIMEOUT_MS,
                  on_conflict_removed);
        free(path);
        return;
    }
    /* the container goes, the task fails */
    snprintf(h->failure_buf, sizeof(h->failure_buf),
             "Failed to start container %s: %s", h->container_id, r->error);
    free(h->failure);
    h->failure = xstrdup(h->failure_buf);
    h->res.have_status = true;
    h->res.exit_code = -1;
    LOG_WARN("docker", "task %s: %s", h->key, h->failure);
    char *path = xasprintf("/containers/%s?force=true&v=true", h->container_id);
    if (task_call(h, &h->call, "DELETE", path, NULL, DOCKER_CALL_TIMEOUT_MS,
                  on_started_removed) < 0)
        record_remove(h);
    free(path);
}

static void task_attach(struct docker_task *h);
static void task_logs_start(struct docker_task *h);

/* The running container's pid and tty: the task runs. */
static void on_started_inspect(void *arg, const struct docker_reply *r)
{
    struct docker_task *h = arg;
    h->call = NULL;
    task_timing(h, r);
    json_t *state = json_object_get(r->json, "State");
    if (r->error) {
        if (h->stop_asked) {
            task_cancel_start(h);
            return;
        }
        snprintf(h->failure_buf, sizeof(h->failure_buf),
                 "failed to inspect started container %s: %s", h->container_id,
                 r->error);
        free(h->failure);
        h->failure = xstrdup(h->failure_buf);
        h->res.have_status = true;
        h->res.exit_code = -1;
        char *path =
            xasprintf("/containers/%s?force=true&v=true", h->container_id);
        if (task_call(h, &h->call, "DELETE", path, NULL, DOCKER_CALL_TIMEOUT_MS,
                      on_started_removed) < 0)
            record_remove(h);
        free(path);
        return;
    }
    h->pid = (int)json_integer_value(json_object_get(state, "Pid"));
    h->pid_start = docker_pid_start_time(h->pid);
    h->tty = json_is_true(
        json_object_get(json_object_get(r->json, "Config"), "Tty"));
    free(h->cgroup);
    h->cgroup = h->pid > 0 ? docker_cgroup_of(h->pid) : NULL;
    json_decref(h->timings);
    h->timings = task_timings(h);
    record_write(h);
    h->phase = PH_RUNNING;
    LOG_INFO("docker", "task %s: started container %.12s (pid %d)", h->key,
             h->container_id, h->pid);
    task_attach(h);
    struct alloc_task *t = h->t;
    t->supervisor_pid = h->pid;
    if (h->stop_asked) {
        task_send_stop(h); /* stopped while it started: it runs no more */
        return;
    }
    if (!t->starting)
        t->starting = true; /* an adopted start the runner had not seen */
    h->env->started(t);
}

static void task_inspect_started(struct docker_task *h)
{
    char *path = xasprintf("/containers/%s/json", h->container_id);
    task_call(h, &h->call, NULL, path, NULL, DOCKER_CALL_TIMEOUT_MS,
              on_started_inspect);
    free(path);
}

/* ---- wait, logs, exit ------------------------------------------------------
 */

static void task_wait(struct docker_task *h);

static void on_wait_retry(uv_timer_t *tm)
{
    struct docker_task *h = tm->data;
    task_wait(h);
}

static void on_logs_ended(void *arg)
{
    struct docker_task *h = arg;
    if (h->phase == PH_EXITING && !h->call && !h->report_pending)
        task_exit_flow(h);
}

static void on_wait(void *arg, const struct docker_reply *r)
{
    struct docker_task *h = arg;
    h->wait_call = NULL;
    docker_driver_saw(r);
    if (r->status == 404) {
        h->phase = PH_EXITING;
        snprintf(h->failure_buf, sizeof(h->failure_buf),
                 "Docker container %s no longer exists", h->container_id);
        free(h->failure);
        h->failure = xstrdup(h->failure_buf);
        h->res.have_status = true;
        h->res.exit_code = -1;
        task_exit_flow(h);
        return;
    }
    if (r->error) {
        /* the daemon is away (or restarting): ask again, as long as it
         * takes; the fingerprint says it is unhealthy meanwhile */
        h->wait_failures++;
        uint64_t ms = WAIT_RETRY_FIRST_MS
                      << (h->wait_failures < 5 ? h->wait_failures - 1 : 5);
        if (ms > WAIT_RETRY_MAX_MS)
            ms = WAIT_RETRY_MAX_MS;
        if (h->wait_failures == 1)
            LOG_WARN("docker",
                     "task %s: waiting for container %.12s: %s; "
                     "trying again",
                     h->key, h->container_id, r->error);
        timer_after(h, &h->timer, ms, on_wait_retry);
        return;
    }
    h->wait_failures = 0;
    h->phase = PH_EXITING;
    h->res.have_status = true;
    h->res.exit_code =
        (int)json_integer_value(json_object_get(r->json, "StatusCode"));
    task_exit_flow(h);
}

static void task_wait(struct docker_task *h)
{
    char *path = xasprintf("/containers/%s/wait", h->container_id);
    struct nc_error err = {0};
    struct docker_api *api = docker_api_get(&err);
    struct docker_call_opts o = {.method = "POST", .path = path};
    if (!api || docker_call(api, &o, on_wait, h, &h->wait_call) < 0) {
        if (!dk.closing)
            timer_after(h, &h->timer, WAIT_RETRY_MAX_MS, on_wait_retry);
    }
    free(path);
}

static void task_logs_start(struct docker_task *h)
{
    const struct task *spec = alloc_task_spec(h->t);
    if (!spec || spec->logs.disabled ||
        dk.cfg->client.docker.disable_log_collection || h->logs)
        return;
    char *log_dir =
        xasprintf("%s/%s/alloc/logs", h->env->alloc_root, h->t->alloc->id);
    struct docker_logs_opts o = {
        .container_id = h->container_id,
        .tty = h->tty,
        .log_dir = log_dir,
        .task = h->t->name,
        .max_files = spec->logs.max_files,
        .max_file_bytes = (int64_t)spec->logs.max_file_size_mb << 20,
        .pos_file = h->pos_path,
        .ended = on_logs_ended,
        .arg = h,
    };
    struct nc_error err = {0};
    if (docker_logs_start(&h->logs, &o, &err) < 0)
        LOG_WARN("docker", "task %s: %s", h->key, err.msg);
    free(log_dir);
}

static void task_attach(struct docker_task *h)
{
    task_wait(h);
    task_logs_start(h);
}

static void on_removed(void *arg, const struct docker_reply *r)
{
    struct docker_task *h = arg;
    h->call = NULL;
    if (r->error && r->status != 404)
        LOG_WARN("docker", "task %s: error removing container %.12s: %s",
                 h->key, h->container_id, r->error);
    task_report_later(h);
}

static void on_logs_drain_timeout(uv_timer_t *tm)
{
    struct docker_task *h = tm->data;
    LOG_DEBUG("docker", "task %s: log stream still open after the exit",
              h->key);
    docker_logs_stop(h->logs);
    h->logs = NULL;
    task_exit_flow(h);
}

static void on_exit_inspect(void *arg, const struct docker_reply *r)
{
    struct docker_task *h = arg;
    h->call = NULL;
    json_t *state = json_object_get(r->json, "State");
    if (!r->error && state) {
        h->res.have_status = true;
        h->res.exit_code =
            (int)json_integer_value(json_object_get(state, "ExitCode"));
        h->res.oom_killed = json_is_true(json_object_get(state, "OOMKilled"));
        if (h->res.oom_killed)
            LOG_WARN("docker",
                     "task %s: OOM Killed (container %.12s, image "
                     "%s)",
                     h->key, h->container_id, h->image ? h->image : "");
        if (json_is_true(json_object_get(state, "Running"))) {
            /* the wait answered early: wait again */
            h->phase = PH_RUNNING;
            h->res.have_status = false;
            task_wait(h);
            return;
        }
    } else if (r->status == 404 && !h->res.have_status) {
        snprintf(h->failure_buf, sizeof(h->failure_buf),
                 "Docker container %s no longer exists", h->container_id);
        free(h->failure);
        h->failure = xstrdup(h->failure_buf);
        h->res.have_status = true;
        h->res.exit_code = -1;
    }
    h->res.signal = 0; /* Nomad's docker reports the exit code alone */
    h->exit_inspected = true;
    task_exit_flow(h);
}

/* After the exit: inspect (exit code, OOM), the logs' end, the removal,
 * then the report; each step runs once. */
static void task_exit_flow(struct docker_task *h)
{
    if (h->call || h->report_pending)
        return;
    h->phase = PH_EXITING;
    timer_close(&h->kill_timer);
    if (!h->exit_inspected && !h->failure) {
        char *path = xasprintf("/containers/%s/json", h->container_id);
        task_call(h, &h->call, NULL, path, NULL, DOCKER_CALL_TIMEOUT_MS,
                  on_exit_inspect);
        free(path);
        return;
    }
    if (h->logs && !docker_logs_done(h->logs)) {
        if (!h->timer || !uv_is_active((uv_handle_t *)h->timer))
            timer_after(h, &h->timer, LOGS_DRAIN_MS, on_logs_drain_timeout);
        return;
    }
    timer_close(&h->timer);
    docker_logs_stop(h->logs);
    h->logs = NULL;
    if (dk.set.gc_container && h->container_id && !h->removing) {
        h->removing = true;
        char *path =
            xasprintf("/containers/%s?force=true&v=true", h->container_id);
        if (task_call(h, &h->call, "DELETE", path, NULL, DOCKER_CALL_TIMEOUT_MS,
                      on_removed) < 0)
            task_report_later(h);
        free(path);
        return;
    }
    task_report_later(h);
}

/* ---- stop and signals ------------------------------------------------------
 */

static void on_stop_answer(void *arg, const struct docker_reply *r)
{
    struct docker_task *h = arg;
    h->stop_call = NULL;
    /* 304: it had stopped; 404: it is gone; the wait reports either way */
    if (r->error && r->status != 304 && r->status != 404 && r->status != 409)
        LOG_WARN("docker", "task %s: Failed to stop container %.12s: %s",
                 h->key, h->container_id, r->error);
}

static void stop_now(struct docker_task *h, int seconds)
{
    if (h->stop_call)
        docker_call_cancel(dk.api, h->stop_call);
    h->stop_call = NULL;
    char *path =
        xasprintf("/containers/%s/stop?t=%d", h->container_id, seconds);
    struct nc_error err = {0};
    struct docker_api *api = docker_api_get(&err);
    struct docker_call_opts o = {.method = "POST",
                                 .path = path,
                                 .timeout_ms =
                                     (long)seconds * 1000 + STOP_SLACK_MS};
    if (!api || docker_call(api, &o, on_stop_answer, h, &h->stop_call) < 0)
        LOG_WARN("docker", "task %s: cannot stop container %.12s: %s", h->key,
                 h->container_id, err.msg);
    free(path);
}

static void on_kill_timeout(uv_timer_t *tm)
{
    struct docker_task *h = tm->data;
    timer_close(&h->kill_timer);
    if (h->phase == PH_RUNNING)
        stop_now(h, 0);
}

static void on_kill_answer(void *arg, const struct docker_reply *r)
{
    struct docker_task *h = arg;
    h->stop_call = NULL;
    if (r->error && r->status != 404 && r->status != 409)
        LOG_WARN("docker",
                 "task %s: Failed to signal container %.12s while "
                 "killing: %s",
                 h->key, h->container_id, r->error);
}

static void task_send_stop(struct docker_task *h)
{
    h->stop_sent = true;
    const struct task *spec = alloc_task_spec(h->t);
    int64_t timeout_ns = spec ? spec->kill_timeout : 5000000000LL;
    const char *sig = spec ? spec->kill_signal : NULL;
    if (!sig || !*sig) {
        /* Docker sends the image's stop signal (SIGTERM) and SIGKILL
         * after t seconds itself, agent or not */
        stop_now(h, (int)(timeout_ns / 1000000000));
        return;
    }
    int num = driver_signal_number(sig);
    char *path = xasprintf("/containers/%s/kill?signal=%d", h->container_id,
                           num > 0 ? num : SIGTERM);
    struct nc_error err = {0};
    struct docker_api *api = docker_api_get(&err);
    struct docker_call_opts o = {
        .method = "POST", .path = path, .timeout_ms = DOCKER_CALL_TIMEOUT_MS};
    if (h->stop_call)
        docker_call_cancel(dk.api, h->stop_call);
    h->stop_call = NULL;
    if (!api || docker_call(api, &o, on_kill_answer, h, &h->stop_call) < 0)
        LOG_WARN("docker", "task %s: cannot signal container: %s", h->key,
                 err.msg);
    free(path);
    timer_after(h, &h->kill_timer,
                timeout_ns > 0 ? (uint64_t)(timeout_ns / 1000000) : 0,
                on_kill_timeout);
}

void docker_stop(struct alloc_task *t)
{
    struct docker_task *h = t->handle;
    if (!h)
        return;
    switch (h->phase) {
    case PH_IMAGE:
    case PH_READY:
        h->stop_asked = true;
        docker_image_cancel(h->image_req);
        h->image_req = NULL;
        task_cancel_start(h);
        break;
    case PH_CREATE:
    case PH_START:
        /* the call in flight ends first (see the top of this file); a
         * retry waiting on the timer is cut short */
        h->stop_asked = true;
        if (!h->call && !h->report_pending) {
            timer_close(&h->timer);
            task_cancel_start(h);
        }
        break;
    case PH_RECOVER:
        h->stop_asked = true;
        break;
    case PH_RUNNING:
        h->stop_asked = true;
        if (!h->stop_sent)
            task_send_stop(h);
        break;
    default:
        break;
    }
}

static void on_signal_answer(void *arg, const struct docker_reply *r)
{
    struct docker_task *h = arg;
    h->signal_call = NULL;
    if (r->error) {
        char *msg = xasprintf("Failed to signal task: %s", r->error);
        LOG_WARN("docker", "task %s: %s", h->key, msg);
        task_event(h, "Driver", msg);
        free(msg);
    }
}

int docker_signal(struct alloc_task *t, int sig, struct nc_error *err)
{
    struct docker_task *h = t->handle;
    if (!h || h->phase != PH_RUNNING || !h->container_id)
        return nc_error_set(err, -ESRCH, "Task not running");
    char *path =
        xasprintf("/containers/%s/kill?signal=%d", h->container_id, sig);
    struct docker_api *api = docker_api_get(err);
    struct docker_call_opts o = {
        .method = "POST", .path = path, .timeout_ms = DOCKER_CALL_TIMEOUT_MS};
    int r = !api ? -EIO
            : h->signal_call
                ? -EBUSY
                : docker_call(api, &o, on_signal_answer, h, &h->signal_call);
    free(path);
    if (r < 0)
        return err->msg[0]
                   ? err->code
                   : nc_error_set(err, r, "cannot signal the container: %s",
                                  r == -EBUSY ? "a signal is on its way"
                                              : strerror(-r));
    return 0;
}

/* ---- recover ----------------------------------------------------------------
 */

static void task_recover_inspect(struct docker_task *h);

static void on_recover_retry(uv_timer_t *tm)
{
    task_recover_inspect(tm->data);
}

static void on_removed_quietly(void *arg, const struct docker_reply *r)
{
    if (r->error && r->status != 404)
        LOG_WARN("docker", "failed to remove a stopping task's container: %s",
                 r->error);
}

/* The first inspect after a re-attach: running, the task goes on (wait,
 * logs; a start the runner had not seen is reported started); else its
 * end, with the logs it wrote while the agent was away. */
static void on_recover_inspect(void *arg, const struct docker_reply *r)
{
    struct docker_task *h = arg;
    h->call = NULL;
    docker_driver_saw(r);
    json_t *state = json_object_get(r->json, "State");
    if (r->error && r->status != 404 &&
        (docker_reply_unreachable(r) || r->status >= 500)) {
        /* the daemon is away: ask again until it answers */
        timer_after(h, &h->timer, WAIT_RETRY_MAX_MS, on_recover_retry);
        return;
    }
    struct alloc_task *t = h->t;
    if (!r->error && json_is_true(json_object_get(state, "Running"))) {
        h->tty = json_is_true(
            json_object_get(json_object_get(r->json, "Config"), "Tty"));
        int pid = (int)json_integer_value(json_object_get(state, "Pid"));
        if (pid > 0 && pid != h->pid) {
            h->pid = pid;
            h->pid_start = docker_pid_start_time(pid);
            t->supervisor_pid = pid;
            record_write(h);
        }
        if (!h->cgroup && h->pid > 0)
            h->cgroup = docker_cgroup_of(h->pid);
        h->phase = PH_RUNNING;
        task_attach(h);
        /* prepared beside a network this agent did not see ready, or told
         * to stop meanwhile: it ends */
        if (t->aborting || h->stop_asked) {
            task_send_stop(h);
            return;
        }
        if (t->starting)
            h->env->started(t);
        return;
    }
    h->phase = PH_EXITING;
    if (r->error) {
        snprintf(h->failure_buf, sizeof(h->failure_buf),
                 "Docker container %s no longer exists", h->container_id);
        free(h->failure);
        h->failure = xstrdup(h->failure_buf);
        free(h->container_id);
        h->container_id = NULL;
        h->res.have_status = true;
        h->res.exit_code = -1;
        task_report_later(h);
        return;
    }
    const char *id = json_string_value(json_object_get(r->json, "Id"));
    if (id && !nc_streq(id, h->container_id)) { /* found by its name */
        free(h->container_id);
        h->container_id = xstrdup(id);
    }
    h->res.have_status = true;
    h->res.exit_code =
        (int)json_integer_value(json_object_get(state, "ExitCode"));
    h->res.oom_killed = json_is_true(json_object_get(state, "OOMKilled"));
    h->exit_inspected = true;
    task_logs_start(h);
    task_exit_flow(h);
}

static void task_recover_inspect(struct docker_task *h)
{
    char *path = xasprintf("/containers/%s/json", h->container_id);
    task_call(h, &h->call, NULL, path, NULL, DOCKER_CALL_TIMEOUT_MS,
              on_recover_inspect);
    free(path);
}

bool docker_recover(const struct driver_env *env, struct alloc_task *t,
                    bool ran)
{
    struct nc_error err = {0};
    if (docker_driver_setup(env->loop, env->cfg, &err) < 0) {
        LOG_ERROR("docker", "%s", err.msg);
        return false;
    }
    struct docker_task *h = handle_of(env, t);
    if (h->phase != PH_IDLE)
        return t->supervisor_pid > 0; /* re-attached already */
    run_reset(h);
    docker_net_adopt(t->alloc);
    json_t *rec = record_read(h);
    const char *id = json_string_value(json_object_get(rec, "ContainerID"));
    const char *image = json_string_value(json_object_get(rec, "Image"));
    const char *image_id = json_string_value(json_object_get(rec, "ImageID"));
    h->pid = (int)json_integer_value(json_object_get(rec, "Pid"));
    h->pid_start =
        (uint64_t)json_integer_value(json_object_get(rec, "PidStart"));
    h->tty = json_is_true(json_object_get(rec, "Tty"));
    bool exited = json_is_true(json_object_get(rec, "Exited"));
    free(h->image);
    h->image = xstrdup(image);
    free(h->image_id);
    h->image_id = xstrdup(image_id);
    h->container_id = xstrdup(id ? id : h->name); /* the name finds it too */
    bool stopping = nc_streq(t->alloc->desired_status, "stop");
    if (exited) {
        /* its end was recorded; the save of it did not happen */
        h->res.have_status = true;
        h->res.exit_code =
            (int)json_integer_value(json_object_get(rec, "ExitCode"));
        h->res.oom_killed = json_is_true(json_object_get(rec, "OOMKilled"));
        json_decref(rec);
        free(h->image_id);
        h->image_id = NULL;
        if (!ran)
            return false;
        t->starting = true; /* active until the report */
        h->phase = PH_EXITING;
        task_report_later(h);
        return false;
    }
    json_decref(rec);
    bool alive = h->pid > 0 && h->pid_start &&
                 docker_pid_start_time(h->pid) == h->pid_start;
    if (!alive && !ran) {
        /* never seen running: started again, and the create finds what
         * may exist by its name (adopted when it runs); a stopping one's
         * container goes */
        free(h->image_id);
        h->image_id = NULL;
        if (stopping && id) {
            char *path = xasprintf("/containers/%s?force=true&v=true", id);
            struct docker_api *api = docker_api_get(&err);
            struct docker_call_opts o = {.method = "DELETE",
                                         .path = path,
                                         .timeout_ms = DOCKER_CALL_TIMEOUT_MS};
            if (api)
                docker_call(api, &o, on_removed_quietly, NULL, NULL);
            free(path);
        }
        free(h->container_id);
        h->container_id = NULL;
        return false;
    }
    docker_image_hold(h->image_id, h->key);
    if (alive) {
        t->supervisor_pid = h->pid;
        if (!ran)
            t->starting = true; /* reported started after the inspect */
        LOG_INFO("docker", "task %s: container %.12s still runs (pid %d)",
                 h->key, h->container_id, h->pid);
    } else {
        t->starting = true; /* active until its end is reported */
    }
    h->phase = PH_RECOVER;
    task_recover_inspect(h);
    return alive;
}

/* ---- the rest of the table --------------------------------------------------
 */

void docker_destroy(const struct driver_env *env, struct alloc_task *t)
{
    struct docker_task *h = t->handle;
    if (!h)
        return;
    if (h->image_id) {
        docker_image_release(h->image_id, h->key);
        free(h->image_id);
        h->image_id = NULL;
    }
    record_remove(h);
}

void docker_detach(struct alloc_task *t)
{
    struct docker_task *h = t->handle;
    if (!h)
        return;
    h->t = NULL;
    t->handle = NULL;
    handle_free(h);
}
