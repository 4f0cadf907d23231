/* docker_net.c - the pause container of a bridge allocation with docker
 * tasks, as Nomad's docker network manager (drivers/docker/network.go):
 * `nomad_init_<alloc id>` from infra_image, network mode none, labelled
 * with the allocation, restarted by the daemon unless stopped. The
 * network phase runs the CNI chain in its namespace (through
 * /proc/<pid>/ns/net, pinned by the netns helper, never the SandboxKey
 * path: nomad#8371); the group's docker tasks join it with
 * "container:<id>", its exec tasks through the namespace's mount.
 *
 * Recorded in a->net_driver: {"Driver": "docker", "ContainerID", "Pid",
 * "PidStart"}; a restarted agent asks again and gets the same pid while
 * the container runs, or a new container when it is gone. The name is
 * the allocation's, so a second one is never made: a create that finds
 * it (the agent was killed before recording it) adopts it when it runs,
 * or removes it and makes it again. */
#include "client/drivers/driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/drivers/docker_api.h"
#include "client/drivers/docker_config.h"
#include "client/drivers/internal.h"

#define dk docker_driver_state

#define CREATE_ATTEMPTS 5

typedef void (*net_done_fn)(struct alloc *a, int pid, const char *error);

struct docker_pause {
    struct docker_pause *next;
    char *alloc_id, *name, *owner;
    char *container_id, *image_id;
    struct alloc *a; /* while a net_create runs */
    net_done_fn done;
    struct docker_image_req *image_req;
    struct docker_call *call;
    int attempts;
    int pid;
    bool running;    /* started and tracked */
    bool destroying; /* its removal is on the way */
    /* where the set-up time went: the Engine's calls, from pause_make */
    json_t *calls;
    uint64_t t0_ns, engine_us;
};

/* One Engine call of the set-up, timed. */
static void pause_timing(struct docker_pause *p, const struct docker_reply *r)
{
    if (p->calls)
        p->engine_us += docker_timing_add(p->calls, r);
}

static struct docker_pause *pause_find(const char *alloc_id)
{
    for (struct docker_pause *p = dk.pauses; p; p = p->next)
        if (strcmp(p->alloc_id, alloc_id) == 0)
            return p;
    return NULL;
}

static void pause_free(struct docker_pause *p)
{
    for (struct docker_pause **pp = &dk.pauses; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    docker_image_cancel(p->image_req);
    if (p->call)
        docker_call_cancel(dk.api, p->call);
    free(p->alloc_id);
    free(p->name);
    free(p->owner);
    free(p->container_id);
    free(p->image_id);
    json_decref(p->calls);
    free(p);
}

bool docker_net_tracked(const char *container_id)
{
    for (struct docker_pause *p = dk.pauses; p; p = p->next)
        if (p->container_id && strcmp(p->container_id, container_id) == 0)
            return true;
    return false;
}

const char *docker_net_pause_id(const struct alloc *a)
{
    const json_t *nd = a ? a->net_driver : NULL;
    const char *drv = json_string_value(json_object_get(nd, "Driver"));
    const char *id = json_string_value(json_object_get(nd, "ContainerID"));
    return nc_streq(drv, "docker") && id && *id ? id : NULL;
}

/* The end of a net_create: done once, with the pid or the error. */
static void pause_report(struct docker_pause *p, const char *error)
{
    struct alloc *a = p->a;
    net_done_fn done = p->done;
    p->a = NULL;
    p->done = NULL;
    if (error) {
        LOG_WARN("docker", "allocation %s: pause container: %s", p->alloc_id,
                 error);
        if (!p->running && !p->container_id) {
            if (p->image_id)
                docker_image_release(p->image_id, p->owner);
            free(p->image_id);
            p->image_id = NULL;
        }
    }
    if (done && a)
        done(a, error ? 0 : p->pid, error);
}

static void pause_record(struct docker_pause *p)
{
    struct alloc *a = p->a;
    if (!a)
        return;
    json_decref(a->net_driver);
    a->net_driver =
        json_pack("{s:s, s:s, s:i, s:I}", "Driver", "docker", "ContainerID",
                  p->container_id, "Pid", p->pid, "PidStart",
                  (json_int_t)docker_pid_start_time(p->pid));
    if (p->image_id)
        json_object_set_new(a->net_driver, "ImageID", json_string(p->image_id));
}

static int pause_call(struct docker_pause *p, const char *method,
                      const char *path, const json_t *body, long timeout_ms,
                      docker_done_fn fn)
{
    struct nc_error err = {0};
    struct docker_api *api = docker_api_get(&err);
    struct docker_call_opts o = {
        .method = method, .path = path, .body = body, .timeout_ms = timeout_ms};
    if (!api || docker_call(api, &o, fn, p, &p->call) < 0) {
        pause_report(p, err.msg[0] ? err.msg : "cannot call the Docker daemon");
        return -EIO;
    }
    return 0;
}

static void pause_create(struct docker_pause *p);

static void on_started_inspect(void *arg, const struct docker_reply *r)
{
    struct docker_pause *p = arg;
    p->call = NULL;
    pause_timing(p, r);
    json_t *state = json_object_get(r->json, "State");
    int pid = (int)json_integer_value(json_object_get(state, "Pid"));
    if (r->error || !json_is_true(json_object_get(state, "Running")) ||
        pid <= 0) {
        char *e = xasprintf("failed to inspect started pause container %s: %s",
                            p->name, r->error ? r->error : "it is not running");
        pause_report(p, e);
        free(e);
        return;
    }
    p->pid = pid;
    p->running = true;
    pause_record(p);
    if (p->calls && p->a && p->a->net_driver) {
        uint64_t total = (nc_now_mono_ns() - p->t0_ns) / 1000;
        json_object_set_new(p->a->net_driver, "Timings",
                            json_pack("{s:I, s:I, s:O}", "EngineUs",
                                      (json_int_t)p->engine_us, "TotalUs",
                                      (json_int_t)total, "Calls", p->calls));
    }
    LOG_INFO("docker", "allocation %s: pause container %.12s runs (pid %d)",
             p->alloc_id, p->container_id, pid);
    pause_report(p, NULL);
}

static void inspect_started(struct docker_pause *p)
{
    char *path = xasprintf("/containers/%s/json", p->container_id);
    pause_call(p, NULL, path, NULL, DOCKER_CALL_TIMEOUT_MS, on_started_inspect);
    free(path);
}

static void on_start(void *arg, const struct docker_reply *r)
{
    struct docker_pause *p = arg;
    p->call = NULL;
    pause_timing(p, r);
    if (r->error && r->status != 304) {
        char *e = xasprintf("Failed to start container %s: %s", p->container_id,
                            r->error);
        pause_report(p, e);
        free(e);
        return;
    }
    inspect_started(p);
}

static void pause_start(struct docker_pause *p)
{
    char *path = xasprintf("/containers/%s/start", p->container_id);
    pause_call(p, "POST", path, NULL, DOCKER_CREATE_TIMEOUT_MS, on_start);
    free(path);
}

static void on_conflict_removed(void *arg, const struct docker_reply *r)
{
    struct docker_pause *p = arg;
    p->call = NULL;
    pause_timing(p, r);
    if (r->error && r->status != 404) {
        char *e =
            xasprintf("Failed to purge container %s: %s", p->name, r->error);
        pause_report(p, e);
        free(e);
        return;
    }
    pause_create(p);
}

/* A container of that name exists: ours and running, it is the holder;
 * else it goes and a new one is made. */
static void on_conflict_inspect(void *arg, const struct docker_reply *r)
{
    struct docker_pause *p = arg;
    p->call = NULL;
    pause_timing(p, r);
    if (r->error && r->status != 404) {
        char *e =
            xasprintf("Failed to inspect container %s: %s", p->name, r->error);
        pause_report(p, e);
        free(e);
        return;
    }
    const char *id;
    enum docker_name_holder held = docker_name_holder(r, p->alloc_id, &id);
    if (held == DOCKER_NAME_GONE) {
        pause_create(p); /* gone meanwhile */
        return;
    }
    if (held == DOCKER_NAME_FOREIGN) {
        char *e = xasprintf("container %s exists and is not allocation %s's",
                            p->name, p->alloc_id);
        pause_report(p, e);
        free(e);
        return;
    }
    free(p->container_id);
    p->container_id = xstrdup(id);
    if (held == DOCKER_NAME_RUNNING) {
        inspect_started(p);
        return;
    }
    /* made by an agent that died before starting it: started as it is */
    if (held == DOCKER_NAME_CREATED) {
        pause_record(p);
        pause_start(p);
        return;
    }
    char *path = xasprintf("/containers/%s?force=true&v=true", id);
    pause_call(p, "DELETE", path, NULL, DOCKER_CALL_TIMEOUT_MS,
               on_conflict_removed);
    free(path);
}

static void on_created(void *arg, const struct docker_reply *r)
{
    struct docker_pause *p = arg;
    p->call = NULL;
    pause_timing(p, r);
    const char *id = json_string_value(json_object_get(r->json, "Id"));
    if (r->status == 409 && p->attempts < CREATE_ATTEMPTS) {
        char *path = xasprintf("/containers/%s/json", p->name);
        pause_call(p, NULL, path, NULL, DOCKER_CALL_TIMEOUT_MS,
                   on_conflict_inspect);
        free(path);
        return;
    }
    if (r->error || !id) {
        char *e = xasprintf("failed to create container: %s",
                            r->error ? r->error : "no container id");
        pause_report(p, e);
        free(e);
        return;
    }
    free(p->container_id);
    p->container_id = xstrdup(id);
    /* recorded before it starts, for a restarted agent (the name finds it
     * too, should this record not reach the disk) */
    pause_record(p);
    pause_start(p);
}

static void pause_create(struct docker_pause *p)
{
    p->attempts++;
    json_t *body = json_pack(
        "{s:s, s:{s:s}, s:{s:s, s:{s:s}}}", "Image", dk.set.infra_image,
        "Labels", DOCKER_LABEL_ALLOC_ID, p->alloc_id, "HostConfig",
        "NetworkMode", "none", "RestartPolicy", "Name", "unless-stopped");
    const struct task_group *g = p->a ? alloc_group(p->a) : NULL;
    const char *hostname = g && g->nnetworks ? g->networks[0].hostname : NULL;
    if (hostname && *hostname && !strchr(hostname, '$'))
        json_object_set_new(body, "Hostname", json_string(hostname));
    char *name = docker_query_escape(p->name);
    char *path = xasprintf("/containers/create?name=%s", name);
    pause_call(p, "POST", path, body, DOCKER_CREATE_TIMEOUT_MS, on_created);
    free(path);
    free(name);
    json_decref(body);
}

static void on_infra_image(void *arg, const char *image_id, const char *error)
{
    struct docker_pause *p = arg;
    p->image_req = NULL;
    if (error) {
        pause_report(p, error);
        return;
    }
    free(p->image_id);
    p->image_id = xstrdup(image_id);
    if (p->calls) {
        uint64_t us = (nc_now_mono_ns() - p->t0_ns) / 1000;
        json_array_append_new(p->calls, json_pack("{s:s, s:I}", "Call", "image",
                                                  "Us", (json_int_t)us));
        p->engine_us += us;
    }
    pause_create(p);
}

static void pause_make(struct docker_pause *p)
{
    json_decref(p->calls);
    p->calls = json_array();
    p->t0_ns = nc_now_mono_ns();
    p->engine_us = 0;
    struct docker_image_opts o = {.image = dk.set.infra_image,
                                  .owner = p->owner,
                                  .pull_timeout_ns =
                                      dk.set.infra_pull_timeout_ns};
    struct nc_error err = {0};
    if (docker_image_get(&o, on_infra_image, p, &p->image_req, &err) < 0)
        pause_report(p, err.msg);
}

/* After an agent restart: the recorded container, if it still runs. */
static void on_recorded_inspect(void *arg, const struct docker_reply *r)
{
    struct docker_pause *p = arg;
    p->call = NULL;
    json_t *state = json_object_get(r->json, "State");
    int pid = (int)json_integer_value(json_object_get(state, "Pid"));
    const char *image = json_string_value(json_object_get(r->json, "Image"));
    if (!r->error && json_is_true(json_object_get(state, "Running")) &&
        pid > 0) {
        p->pid = pid;
        p->running = true;
        free(p->image_id);
        p->image_id = xstrdup(image);
        docker_image_hold(p->image_id, p->owner);
        pause_record(p);
        LOG_INFO("docker",
                 "allocation %s: re-attached to pause container "
                 "%.12s (pid %d)",
                 p->alloc_id, p->container_id, pid);
        pause_report(p, NULL);
        return;
    }
    if (r->error && docker_reply_unreachable(r)) {
        pause_report(p, r->error);
        return;
    }
    /* gone or stopped: a new one (the old one goes on the way) */
    LOG_INFO("docker",
             "allocation %s: pause container %.12s is gone; making "
             "a new one",
             p->alloc_id, p->container_id);
    free(p->container_id);
    p->container_id = NULL;
    pause_make(p);
}

void docker_net_adopt(const struct alloc *a)
{
    const char *id = docker_net_pause_id(a);
    struct docker_pause *p = id ? pause_find(a->id) : NULL;
    if (!id || p)
        return;
    p = xcalloc(1, sizeof(*p));
    p->alloc_id = xstrdup(a->id);
    p->name = xasprintf("%s%s", DOCKER_PAUSE_PREFIX, a->id);
    p->owner = xasprintf("pause/%s", a->id);
    p->container_id = xstrdup(id);
    p->pid = (int)json_integer_value(json_object_get(a->net_driver, "Pid"));
    p->image_id =
        xstrdup(json_string_value(json_object_get(a->net_driver, "ImageID")));
    docker_image_hold(p->image_id, p->owner);
    p->running = true;
    p->next = dk.pauses;
    dk.pauses = p;
}

int docker_net_create(const struct driver_env *env, struct alloc *a,
                      net_done_fn done, struct nc_error *err)
{
    if (docker_driver_setup(env->loop, env->cfg, err) < 0)
        return err->code;
    if (!dk.set.infra_image || !*dk.set.infra_image)
        return nc_error_set(err, -EINVAL,
                            "the docker plugin has no infra_image");
    struct docker_pause *p = pause_find(a->id);
    if (p && (p->done || p->destroying))
        return nc_error_set(
            err, -EBUSY, "the pause container of allocation %s is busy", a->id);
    if (!p) {
        p = xcalloc(1, sizeof(*p));
        p->alloc_id = xstrdup(a->id);
        p->name = xasprintf("%s%s", DOCKER_PAUSE_PREFIX, a->id);
        p->owner = xasprintf("pause/%s", a->id);
        p->next = dk.pauses;
        dk.pauses = p;
    }
    p->a = a;
    p->done = done;
    p->attempts = 0;
    const char *recorded = docker_net_pause_id(a);
    if (recorded) {
        free(p->container_id);
        p->container_id = xstrdup(recorded);
        char *path = xasprintf("/containers/%s/json", recorded);
        pause_call(p, NULL, path, NULL, DOCKER_CALL_TIMEOUT_MS,
                   on_recorded_inspect);
        free(path);
    } else {
        pause_make(p);
    }
    return 0;
}

static void on_pause_removed(void *arg, const struct docker_reply *r)
{
    struct docker_pause *p = arg;
    p->call = NULL;
    if (r->error && r->status != 404)
        LOG_WARN("docker",
                 "allocation %s: failed to remove pause container "
                 "%s: %s",
                 p->alloc_id, p->name, r->error);
    else
        LOG_INFO("docker", "allocation %s: removed pause container",
                 p->alloc_id);
    if (p->image_id)
        docker_image_release(p->image_id, p->owner);
    pause_free(p);
}

void docker_net_destroy(const struct driver_env *env, struct alloc *a)
{
    struct nc_error err = {0};
    if (docker_driver_setup(env->loop, env->cfg, &err) < 0) {
        LOG_WARN("docker", "allocation %s: %s", a->id, err.msg);
        return;
    }
    struct docker_pause *p = pause_find(a->id);
    if (!p) {
        p = xcalloc(1, sizeof(*p));
        p->alloc_id = xstrdup(a->id);
        p->name = xasprintf("%s%s", DOCKER_PAUSE_PREFIX, a->id);
        p->owner = xasprintf("pause/%s", a->id);
        p->next = dk.pauses;
        dk.pauses = p;
    }
    if (p->destroying)
        return;
    /* a create still on its way ends now */
    docker_image_cancel(p->image_req);
    p->image_req = NULL;
    if (p->call)
        docker_call_cancel(dk.api, p->call);
    p->call = NULL;
    if (p->done) {
        p->a = a;
        pause_report(p, "the allocation is stopping");
    }
    p->destroying = true;
    p->running = false;
    const char *recorded = docker_net_pause_id(a);
    if (!p->image_id)
        p->image_id = xstrdup(
            json_string_value(json_object_get(a->net_driver, "ImageID")));
    /* by id when known, else by its name (the agent died before it
     * recorded the id) */
    const char *target = p->container_id ? p->container_id
                         : recorded      ? recorded
                                         : p->name;
    char *path = xasprintf("/containers/%s?force=true&v=true", target);
    struct docker_api *api = docker_api_get(&err);
    struct docker_call_opts o = {
        .method = "DELETE", .path = path, .timeout_ms = DOCKER_CALL_TIMEOUT_MS};
    if (!api || docker_call(api, &o, on_pause_removed, p, &p->call) < 0) {
        LOG_WARN("docker",
                 "allocation %s: cannot remove its pause container "
                 "%s: %s",
                 a->id, target, err.msg);
        pause_free(p);
    }
    free(path);
    json_decref(a->net_driver);
    a->net_driver = NULL;
}

void docker_net_close(void)
{
    while (dk.pauses)
        pause_free(dk.pauses);
}
