/* docker_stats.c - a docker task's usage in the shape of an exec task's
 * (driver_usage), read from the container's own cgroup (the path
 * /proc/<pid>/cgroup names, through cgroup.c's reader): synchronous and
 * cheap, no call to the daemon. Where no cgroup can be read (another
 * cgroup layout, the pid gone), GET /containers/{id}/stats?stream=false
 * answers instead: the stats op returns its last sample, asking for a
 * new one when it is over a second old, so the daemon is asked only
 * while someone looks. */
#include "client/drivers/driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/drivers/docker_api.h"
#include "client/drivers/internal.h"

#define dk docker_driver_state

#define SAMPLE_MAX_AGE_NS 1000000000ULL
#define STATS_TIMEOUT_MS 10000

char *docker_cgroup_of(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
    size_t len;
    char *txt = nc_read_file(path, &len, 1 << 16);
    char *out = NULL;
    /* v1: "N:memory:/docker/<id>" (the controllers of a container share
     * one path); v2: "0::/docker/<id>" */
    for (char *line = txt; line && *line && !out;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 && c2[1] == '/' && c2[2]) {
            size_t n = (size_t)(c2 - c1 - 1);
            bool memory = n == 6 && strncmp(c1 + 1, "memory", 6) == 0;
            bool unified = n == 0 && strcmp(cgroup_version(), "v2") == 0;
            if (memory || unified)
                out = xstrdup(c2 + 1);
        }
        line = nl ? nl + 1 : NULL;
    }
    free(txt);
    return out;
}

static void on_stats(void *arg, const struct docker_reply *r)
{
    struct docker_task *h = arg;
    h->stats_call = NULL;
    if (r->error || !r->json) {
        LOG_DEBUG("docker", "task %s: stats: %s", h->key,
                  r->error ? r->error : "no JSON");
        return;
    }
    const json_t *cpu = json_object_get(r->json, "cpu_stats");
    const json_t *cu = json_object_get(cpu, "cpu_usage");
    const json_t *mem = json_object_get(r->json, "memory_stats");
    const json_t *ms = json_object_get(mem, "stats");
    struct driver_usage *u = &h->usage;
    memset(u, 0, sizeof(*u));
    u->cpu_ns =
        (uint64_t)json_integer_value(json_object_get(cu, "total_usage"));
    u->user_ns =
        (uint64_t)json_integer_value(json_object_get(cu, "usage_in_usermode"));
    u->system_ns = (uint64_t)json_integer_value(
        json_object_get(cu, "usage_in_kernelmode"));
    u->have_cpu = cu != NULL;
    u->mem_usage = (uint64_t)json_integer_value(json_object_get(mem, "usage"));
    u->mem_max_usage =
        (uint64_t)json_integer_value(json_object_get(mem, "max_usage"));
    json_t *rss = json_object_get(ms, "rss");
    u->mem_rss =
        (uint64_t)json_integer_value(rss ? rss : json_object_get(ms, "anon"));
    json_t *cache = json_object_get(ms, "cache");
    u->mem_cache = (uint64_t)json_integer_value(
        cache ? cache : json_object_get(ms, "file"));
    u->mem_swap = (uint64_t)json_integer_value(json_object_get(ms, "swap"));
    u->have_mem = mem != NULL && json_object_size(mem) > 0;
    u->pids = (int)json_integer_value(
        json_object_get(json_object_get(r->json, "pids_stats"), "current"));
    h->usage_at_ns = nc_now_mono_ns();
}

int docker_task_stats(const struct driver_env *env, const struct alloc_task *t,
                      struct driver_usage *u)
{
    struct docker_task *h = t->handle;
    if (!h || !h->container_id || t->supervisor_pid <= 0)
        return -ESRCH;
    if (h->cgroup && cgroup_read_stats(h->cgroup, u) == 0)
        return 0;
    uint64_t now = nc_now_mono_ns();
    h->usage_asked_ns = now;
    if ((!h->usage_at_ns || now - h->usage_at_ns > SAMPLE_MAX_AGE_NS) &&
        !h->stats_call) {
        char *path =
            xasprintf("/containers/%s/stats?stream=false", h->container_id);
        struct nc_error err = {0};
        struct docker_api *api = docker_api_get(&err);
        struct docker_call_opts o = {.path = path,
                                     .timeout_ms = STATS_TIMEOUT_MS};
        if (api)
            docker_call(api, &o, on_stats, h, &h->stats_call);
        free(path);
    }
    if (!h->usage_at_ns)
        return -EAGAIN;
    *u = h->usage;
    return 0;
}
