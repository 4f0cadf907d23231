/* docker_reap.c - containers of ours that no task or allocation of this
 * agent accounts for, as Nomad's dangling containers reconciler
 * (drivers/docker/reconcile_dangling.go) finds them: labelled with an
 * allocation id (pause containers are too), older than creation_grace,
 * and neither a task's container this agent runs nor a pause container
 * it holds. Running ones are removed (as Nomad); stopped ones too when
 * gc.container is on and their allocation is unknown here. The first pass
 * waits a period (at least creation_grace) after start, so a restarted
 * agent re-attaches first; dry_run only logs. `nomclient leftovers
 * [-clean]` lists (and removes) the same with the allocations' view of
 * what should run. */
#include "client/drivers/driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/drivers/docker_api.h"
#include "client/drivers/internal.h"

#define dk docker_driver_state

#define LIST_TIMEOUT_MS 30000
#define LEFTOVERS_TIMEOUT_MS 5000

struct reaper {
    uv_timer_t timer;
    struct docker_call *call;
    size_t removing; /* removals in flight */
    bool failing;    /* the last pass failed: said once, as Nomad */
};

static char *list_path(bool all)
{
    char *filters = xasprintf("{\"label\":[\"%s\"]}", DOCKER_LABEL_ALLOC_ID);
    char *esc = docker_query_escape(filters);
    char *path =
        xasprintf("/containers/json?all=%d&filters=%s", all ? 1 : 0, esc);
    free(esc);
    free(filters);
    return path;
}

bool docker_container_ours(const json_t *c, const char **alloc_id, char **task)
{
    *alloc_id = json_string_value(
        json_object_get(json_object_get(c, "Labels"), DOCKER_LABEL_ALLOC_ID));
    *task = NULL;
    if (!*alloc_id || !**alloc_id)
        return false;
    const char *name =
        json_string_value(json_array_get(json_object_get(c, "Names"), 0));
    if (name && *name == '/')
        name++;
    if (!name || nc_str_has_prefix(name, DOCKER_PAUSE_PREFIX))
        return true;
    size_t n = strlen(name), k = strlen(*alloc_id);
    if (n > k + 1 && name[n - k - 1] == '-' &&
        strcmp(name + n - k, *alloc_id) == 0)
        *task = xstrndup(name, n - k - 1);
    return true;
}

static const char *container_name(const json_t *c)
{
    const char *name =
        json_string_value(json_array_get(json_object_get(c, "Names"), 0));
    return name && *name == '/' ? name + 1 : name ? name : "";
}

/* ---- the reaper ------------------------------------------------------------
 */

static void on_dangling_removed(void *arg, const struct docker_reply *r)
{
    char *id = arg;
    if (r->error && r->status != 404)
        LOG_WARN("docker", "failed to remove untracked container %.12s: %s", id,
                 r->error);
    else
        LOG_INFO("docker", "removed untracked container %.12s", id);
    free(id);
    struct reaper *rp = dk.reaper;
    if (rp)
        rp->removing--;
}

static void on_listed(void *arg, const struct docker_reply *r)
{
    struct reaper *rp = arg;
    rp->call = NULL;
    if (r->error) {
        if (!rp->failing)
            LOG_WARN("docker",
                     "failed to remove dangling containers: failed "
                     "to find untracked containers: %s",
                     r->error);
        rp->failing = true;
        return;
    }
    rp->failing = false;
    int64_t cutoff =
        (int64_t)time(NULL) - dk.set.dangling_grace_ns / 1000000000;
    size_t i;
    json_t *c;
    json_array_foreach(r->json, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "Id"));
        const char *alloc_id;
        char *task;
        if (!id || !docker_container_ours(c, &alloc_id, &task))
            continue;
        free(task);
        if (docker_task_tracked(id) || docker_net_tracked(id))
            continue;
        if (json_integer_value(json_object_get(c, "Created")) > cutoff)
            continue; /* creation_grace: maybe being started right now */
        bool running =
            nc_streq(json_string_value(json_object_get(c, "State")), "running");
        if (!running && !(dk.set.gc_container && !docker_alloc_known(alloc_id)))
            continue;
        if (dk.set.dangling_dry_run) {
            LOG_INFO("docker",
                     "detected untracked container %.12s (%s) of "
                     "allocation %s",
                     id, container_name(c), alloc_id);
            continue;
        }
        char *path = xasprintf("/containers/%s?force=true&v=true", id);
        struct nc_error err = {0};
        struct docker_api *api = docker_api_get(&err);
        struct docker_call_opts o = {
            .method = "DELETE", .path = path, .timeout_ms = LIST_TIMEOUT_MS};
        char *copy = xstrdup(id);
        if (api && docker_call(api, &o, on_dangling_removed, copy, NULL) == 0)
            rp->removing++;
        else
            free(copy);
        free(path);
    }
}

static void on_reap(uv_timer_t *t)
{
    struct reaper *rp = t->data;
    if (rp->call || !docker_driver_healthy())
        return; /* as Nomad: only while the daemon answers */
    char *path = list_path(true);
    struct nc_error err = {0};
    struct docker_api *api = docker_api_get(&err);
    struct docker_call_opts o = {.path = path, .timeout_ms = LIST_TIMEOUT_MS};
    if (api)
        docker_call(api, &o, on_listed, rp, &rp->call);
    free(path);
}

static void on_reaper_closed(uv_handle_t *h)
{
    free(h->data);
}

void docker_reaper_start(void)
{
    if (dk.reaper || !dk.set.dangling_enabled || !dk.loop)
        return;
    struct reaper *rp = xcalloc(1, sizeof(*rp));
    uv_timer_init(dk.loop, &rp->timer);
    rp->timer.data = rp;
    uint64_t period = dk.set.dangling_period_ns > 0
                          ? (uint64_t)(dk.set.dangling_period_ns / 1000000)
                          : 300000;
    uint64_t grace = dk.set.dangling_grace_ns > 0
                         ? (uint64_t)(dk.set.dangling_grace_ns / 1000000)
                         : 0;
    uv_timer_start(&rp->timer, on_reap, grace > period ? grace : period,
                   period);
    uv_unref((uv_handle_t *)&rp->timer);
    dk.reaper = rp;
}

void docker_reaper_stop(void)
{
    struct reaper *rp = dk.reaper;
    if (!rp)
        return;
    if (rp->call)
        docker_call_cancel(dk.api, rp->call);
    uv_close((uv_handle_t *)&rp->timer, on_reaper_closed);
    dk.reaper = NULL;
}

/* ---- leftovers (sync: `nomclient leftovers`) ------------------------------
 */

void docker_leftovers(const struct driver_env *env, driver_owned_fn owned,
                      void *arg, bool clean, json_t *out)
{
    struct docker_settings s;
    const struct docker_settings *set = &dk.set;
    if (!dk.cfg && env && env->cfg) {
        /* outside an agent's driver (tests): the config as given */
        memset(&s, 0, sizeof(s));
        s.endpoint = env->cfg->client.docker.endpoint &&
                             *env->cfg->client.docker.endpoint
                         ? env->cfg->client.docker.endpoint
                         : DOCKER_DEFAULT_ENDPOINT;
        set = &s;
    }
    json_t *list = json_array();
    json_object_set_new(out, "DockerContainers", list);
    char why[256];
    if (!set->endpoint ||
        !docker_endpoint_listening(set->endpoint, why, sizeof(why)))
        return; /* no daemon: nothing of ours can run there */
    /* blocking, bounded: this runs for an operator's command */
    char *path = list_path(true);
    long status = 0;
    json_t *json = NULL;
    struct nc_error err = {0};
    int r = docker_call_sync(set->endpoint, "GET", path, NULL,
                             LEFTOVERS_TIMEOUT_MS, &status, &json, &err);
    free(path);
    if (r < 0 || status != 200) {
        json_object_set_new(out, "DockerError",
                            json_string(err.msg[0] ? err.msg : "cannot list"));
        json_decref(json);
        return;
    }
    size_t i;
    json_t *c;
    json_array_foreach(json, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "Id"));
        const char *alloc_id;
        char *task;
        if (!id || !docker_container_ours(c, &alloc_id, &task))
            continue;
        bool mine =
            task ? owned(alloc_id, task, arg) : owned(alloc_id, NULL, arg);
        if (!mine) {
            json_array_append_new(
                list,
                json_pack("{s:s, s:s, s:s, s:s?}", "ID", id, "Name",
                          container_name(c), "AllocID", alloc_id, "State",
                          json_string_value(json_object_get(c, "State"))));
            if (clean) {
                char *del = xasprintf("/containers/%s?force=true&v=true", id);
                long st = 0;
                struct nc_error e = {0};
                if (docker_call_sync(set->endpoint, "DELETE", del, NULL,
                                     LEFTOVERS_TIMEOUT_MS, &st, NULL, &e) < 0 ||
                    (st != 204 && st != 404))
                    LOG_WARN("docker",
                             "leftovers: cannot remove container "
                             "%.12s: %s",
                             id, e.msg);
                free(del);
            }
        }
        free(task);
    }
    json_decref(json);
}
