/* alloc.c - the allocation model: Nomad-shaped JSON, events, the task
 * environment and ${...} interpolation. The lifecycle is alloc_runner.c. */
#include "client/alloc/alloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/job.h"

void alloc_task_event(struct alloc_task *t, const char *type, const char *fmt,
                      ...)
{
    if (t->nevents == ALLOC_MAX_EVENTS) {
        free(t->events[0].type);
        free(t->events[0].message);
        memmove(&t->events[0], &t->events[1],
                (ALLOC_MAX_EVENTS - 1) * sizeof(t->events[0]));
        t->nevents--;
    }
    struct alloc_event *e = &t->events[t->nevents++];
    e->time = nc_now_unix_ns();
    e->type = xstrdup(type);
    struct nc_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    e->message = nc_buf_take(&b);
}

static json_t *task_state_json(const struct alloc_task *t)
{
    json_t *events = json_array();
    for (size_t i = 0; i < t->nevents; i++) {
        const struct alloc_event *e = &t->events[i];
        json_array_append_new(
            events, json_pack("{s:s, s:I, s:s, s:{}}", "Type", e->type, "Time",
                              (json_int_t)e->time, "DisplayMessage",
                              e->message, "Details"));
    }
    char started[64] = "0001-01-01T00:00:00Z", finished[64] = "0001-01-01T00:00:00Z",
         restarted[64] = "0001-01-01T00:00:00Z";
    nc_format_time(t->started_at, started, sizeof(started));
    nc_format_time(t->finished_at, finished, sizeof(finished));
    nc_format_time(t->last_restart, restarted, sizeof(restarted));
    json_t *j = json_pack("{s:s, s:b, s:i, s:s, s:s, s:s, s:o, s:i, s:i, s:i}",
                          "State", t->state, "Failed", t->failed, "Restarts",
                          t->restarts, "StartedAt", started, "FinishedAt",
                          finished, "LastRestart", restarted, "Events", events,
                          "SupervisorPid", t->supervisor_pid, "ExitCode",
                          t->exit_code, "Signal", t->signal);
    if (t->driver_state)
        json_object_set(j, "DriverState", t->driver_state);
    return j;
}

static json_t *ports_json(const struct alloc *a)
{
    json_t *ports = json_array();
    for (size_t i = 0; i < a->nports; i++) {
        const struct alloc_port *p = &a->ports[i];
        json_array_append_new(ports,
                              json_pack("{s:s, s:i, s:i, s:s}", "Label", p->label,
                                        "Value", p->value, "To", p->to,
                                        "HostIP", p->host_ip ? p->host_ip : ""));
    }
    return ports;
}

json_t *alloc_to_json(const struct alloc *a)
{
    json_t *states = json_object();
    for (size_t i = 0; i < a->ntasks; i++)
        json_object_set_new(states, a->tasks[i].name,
                            task_state_json(&a->tasks[i]));
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:s, s:s, s:s, s:o, s:I, s:I, "
        "s:I, s:I, s:i}",
        "ID", a->id, "Name", a->name, "Namespace", a->namespace, "JobID",
        a->job_id, "TaskGroup", a->group, "Index", a->index, "JobVersion",
        (json_int_t)a->job_version, "DesiredStatus", a->desired_status,
        "ClientStatus", a->client_status, "ClientDescription",
        a->client_description ? a->client_description : "", "TaskStates",
        states, "CreateTime", (json_int_t)a->create_time, "ModifyTime",
        (json_int_t)a->modify_time, "CreateIndex", (json_int_t)a->create_index,
        "ModifyIndex", (json_int_t)a->modify_index, "Reschedules",
        a->reschedules);
    json_t *net = json_pack("{s:s, s:s, s:o}", "Mode", a->network_mode,
                            "IP", a->ip ? a->ip : "", "Ports", ports_json(a));
    if (a->netns)
        json_object_set_new(net, "NetNS", json_string(a->netns));
    if (a->net_phase && *a->net_phase)
        json_object_set_new(net, "Phase", json_string(a->net_phase));
    if (a->cni_result)
        json_object_set(net, "CNIResult", a->cni_result);
    if (a->net_driver)
        json_object_set(net, "Driver", a->net_driver);
    if (a->net_timings)
        json_object_set(net, "SetupTimings", a->net_timings);
    json_object_set_new(j, "AllocatedResources",
                        json_pack("{s:{s:[o], s:o}}", "Shared", "Networks", net,
                                  "Ports", ports_json(a)));
    if (a->net_phase && *a->net_phase)
        /* Nomad's AllocNetworkStatus */
        json_object_set_new(j, "NetworkStatus",
                            json_pack("{s:s, s:s, s:n}", "InterfaceName",
                                      a->ip ? "eth0" : "", "Address",
                                      a->ip ? a->ip : "", "DNS"));
    if (a->previous_alloc)
        json_object_set_new(j, "PreviousAllocation",
                            json_string(a->previous_alloc));
    if (a->job)
        json_object_set_new(j, "Job", jobspec_to_json(a->job));
    return j;
}

json_t *alloc_stub_to_json(const struct alloc *a)
{
    json_t *j = alloc_to_json(a);
    json_object_del(j, "Job");
    return j;
}

static char *jstrdup(const json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));
    return xstrdup(s ? s : dflt);
}

static int64_t jtime(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    int64_t ns = 0;
    if (s)
        nc_parse_time(s, &ns);
    return ns;
}

int alloc_from_json(const json_t *j, struct alloc **out, struct nc_error *err)
{
    *out = NULL;
    if (!json_is_object(j) || !json_is_string(json_object_get(j, "ID")))
        return nc_error_set(err, -EINVAL, "allocation lacks an ID");
    struct alloc *a = xcalloc(1, sizeof(*a));
    a->id = jstrdup(j, "ID", "");
    a->name = jstrdup(j, "Name", "");
    a->namespace = jstrdup(j, "Namespace", "default");
    a->job_id = jstrdup(j, "JobID", "");
    a->group = jstrdup(j, "TaskGroup", "");
    a->index = (int)json_integer_value(json_object_get(j, "Index"));
    a->job_version = (uint64_t)json_integer_value(json_object_get(j, "JobVersion"));
    a->desired_status = jstrdup(j, "DesiredStatus", "run");
    a->client_status = jstrdup(j, "ClientStatus", "pending");
    a->client_description = jstrdup(j, "ClientDescription", "");
    a->create_time = json_integer_value(json_object_get(j, "CreateTime"));
    a->modify_time = json_integer_value(json_object_get(j, "ModifyTime"));
    a->create_index = (uint64_t)json_integer_value(json_object_get(j, "CreateIndex"));
    a->modify_index = (uint64_t)json_integer_value(json_object_get(j, "ModifyIndex"));
    a->reschedules = (int)json_integer_value(json_object_get(j, "Reschedules"));
    const char *prev = json_string_value(json_object_get(j, "PreviousAllocation"));
    a->previous_alloc = prev ? xstrdup(prev) : NULL;
    json_t *job = json_object_get(j, "Job");
    if (!job || jobspec_from_json(job, &a->job, err) < 0) {
        if (!job)
            nc_error_set(err, -EINVAL, "allocation %s lacks its job", a->id);
        else
            nc_error_prefix(err, "allocation %s: job", a->id);
        alloc_free(a);
        return -EINVAL;
    }
    json_t *net = json_array_get(
        json_object_get(json_object_get(json_object_get(j, "AllocatedResources"),
                                        "Shared"),
                        "Networks"),
        0);
    a->network_mode = jstrdup(net, "Mode", "host");
    const char *ip = json_string_value(json_object_get(net, "IP"));
    a->ip = ip && *ip ? xstrdup(ip) : NULL;
    const char *ns = json_string_value(json_object_get(net, "NetNS"));
    a->netns = ns ? xstrdup(ns) : NULL;
    a->cni_result = json_incref(json_object_get(net, "CNIResult"));
    a->net_driver = json_incref(json_object_get(net, "Driver"));
    a->net_phase = jstrdup(net, "Phase", "");
    a->net_timings = json_incref(json_object_get(net, "SetupTimings"));
    json_t *ports = json_object_get(net, "Ports");
    a->nports = json_array_size(ports);
    a->ports = xcalloc(a->nports + 1, sizeof(*a->ports));
    for (size_t i = 0; i < a->nports; i++) {
        json_t *p = json_array_get(ports, i);
        a->ports[i].label = jstrdup(p, "Label", "");
        a->ports[i].value = (int)json_integer_value(json_object_get(p, "Value"));
        a->ports[i].to = (int)json_integer_value(json_object_get(p, "To"));
        a->ports[i].host_ip = jstrdup(p, "HostIP", "");
    }
    json_t *states = json_object_get(j, "TaskStates");
    a->ntasks = json_object_size(states);
    a->tasks = xcalloc(a->ntasks + 1, sizeof(*a->tasks));
    const char *name;
    json_t *ts;
    size_t i = 0;
    json_object_foreach(states, name, ts)
    {
        struct alloc_task *t = &a->tasks[i++];
        t->alloc = a;
        t->name = xstrdup(name);
        t->state = jstrdup(ts, "State", "pending");
        t->failed = json_is_true(json_object_get(ts, "Failed"));
        t->restarts = (int)json_integer_value(json_object_get(ts, "Restarts"));
        t->started_at = jtime(ts, "StartedAt");
        t->finished_at = jtime(ts, "FinishedAt");
        t->last_restart = jtime(ts, "LastRestart");
        t->supervisor_pid = (int)json_integer_value(json_object_get(ts, "SupervisorPid"));
        t->exit_code = (int)json_integer_value(json_object_get(ts, "ExitCode"));
        t->signal = (int)json_integer_value(json_object_get(ts, "Signal"));
        t->driver_state = json_incref(json_object_get(ts, "DriverState"));
        size_t k;
        json_t *ev;
        json_array_foreach(json_object_get(ts, "Events"), k, ev)
        {
            if (t->nevents == ALLOC_MAX_EVENTS)
                break;
            struct alloc_event *e = &t->events[t->nevents++];
            e->time = json_integer_value(json_object_get(ev, "Time"));
            e->type = jstrdup(ev, "Type", "");
            e->message = jstrdup(ev, "DisplayMessage", "");
        }
    }
    *out = a;
    return 0;
}

void alloc_free(struct alloc *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];
        free(t->name);
        free(t->state);
        json_decref(t->driver_state);
        kv_free(&t->template_env);
        for (size_t k = 0; k < t->nevents; k++) {
            free(t->events[k].type);
            free(t->events[k].message);
        }
    }
    free(a->tasks);
    for (size_t i = 0; i < a->nports; i++) {
        free(a->ports[i].label);
        free(a->ports[i].host_ip);
    }
    free(a->ports);
    free(a->id);
    free(a->name);
    free(a->namespace);
    free(a->job_id);
    free(a->group);
    free(a->desired_status);
    free(a->client_status);
    free(a->client_description);
    free(a->network_mode);
    free(a->ip);
    free(a->netns);
    free(a->previous_alloc);
    free(a->stop_why);
    json_decref(a->cni_result);
    json_decref(a->net_driver);
    free(a->net_phase);
    json_decref(a->net_timings);
    jobspec_free(a->job);
    free(a);
}

/* ---- environment and interpolation ------------------------------------ */

static void upper_label(char *dst, size_t len, const char *prefix,
                        const char *label)
{
    snprintf(dst, len, "%s%s", prefix, label);
    for (char *p = dst + strlen(prefix); *p; p++)
        if (*p == '-' || *p == '.')
            *p = '_';
}

void alloc_task_env(const struct alloc *a, const struct task *t,
                    const struct node *n, const char *alloc_dir,
                    const char *task_dir, bool in_chroot, struct kvlist *env)
{
    char buf[512], key[256];
    kv_set(env, "NOMAD_ALLOC_ID", a->id);
    kv_set(env, "NOMAD_SHORT_ALLOC_ID", (snprintf(buf, 9, "%s", a->id), buf));
    kv_set(env, "NOMAD_ALLOC_NAME", a->name);
    snprintf(buf, sizeof(buf), "%d", a->index);
    kv_set(env, "NOMAD_ALLOC_INDEX", buf);
    kv_set(env, "NOMAD_ALLOC_DIR", in_chroot ? "/alloc" : alloc_dir);
    if (in_chroot) {
        kv_set(env, "NOMAD_TASK_DIR", "/local");
        kv_set(env, "NOMAD_SECRETS_DIR", "/secrets");
    } else {
        snprintf(buf, sizeof(buf), "%s/local", task_dir);
        kv_set(env, "NOMAD_TASK_DIR", buf);
        snprintf(buf, sizeof(buf), "%s/secrets", task_dir);
        kv_set(env, "NOMAD_SECRETS_DIR", buf);
    }
    kv_set(env, "NOMAD_JOB_ID", a->job_id);
    kv_set(env, "NOMAD_JOB_NAME", a->job->name ? a->job->name : a->job_id);
    kv_set(env, "NOMAD_JOB_PARENT_ID", "");
    kv_set(env, "NOMAD_GROUP_NAME", a->group);
    kv_set(env, "NOMAD_TASK_NAME", t->name);
    kv_set(env, "NOMAD_NAMESPACE", a->namespace);
    kv_set(env, "NOMAD_DC", n->datacenter ? n->datacenter : "dc1");
    kv_set(env, "NOMAD_REGION", n->region ? n->region : "global");
    snprintf(buf, sizeof(buf), "%d", t->resources.cpu);
    kv_set(env, "NOMAD_CPU_LIMIT", buf);
    snprintf(buf, sizeof(buf), "%d", t->resources.memory_mb);
    kv_set(env, "NOMAD_MEMORY_LIMIT", buf);
    if (t->resources.memory_max_mb) {
        snprintf(buf, sizeof(buf), "%d", t->resources.memory_max_mb);
        kv_set(env, "NOMAD_MEMORY_MAX_LIMIT", buf);
    }
    const char *host_ip = kv_get(&n->attributes, "unique.network.ip-address");
    if (!host_ip)
        host_ip = "127.0.0.1";
    bool bridged = a->netns != NULL;
    for (size_t i = 0; i < a->nports; i++) {
        const struct alloc_port *p = &a->ports[i];
        int inside = bridged && p->to > 0 ? p->to : p->value;
        const char *ip = bridged ? (a->ip ? a->ip : host_ip) : host_ip;
        upper_label(key, sizeof(key), "NOMAD_PORT_", p->label);
        snprintf(buf, sizeof(buf), "%d", inside);
        kv_set(env, key, buf);
        upper_label(key, sizeof(key), "NOMAD_ALLOC_PORT_", p->label);
        kv_set(env, key, buf);
        upper_label(key, sizeof(key), "NOMAD_HOST_PORT_", p->label);
        snprintf(buf, sizeof(buf), "%d", p->value);
        kv_set(env, key, buf);
        upper_label(key, sizeof(key), "NOMAD_IP_", p->label);
        kv_set(env, key, host_ip);
        upper_label(key, sizeof(key), "NOMAD_HOST_IP_", p->label);
        kv_set(env, key, host_ip);
        upper_label(key, sizeof(key), "NOMAD_ADDR_", p->label);
        snprintf(buf, sizeof(buf), "%s:%d", host_ip, p->value);
        kv_set(env, key, buf);
        upper_label(key, sizeof(key), "NOMAD_HOST_ADDR_", p->label);
        kv_set(env, key, buf);
        upper_label(key, sizeof(key), "NOMAD_ALLOC_IP_", p->label);
        kv_set(env, key, ip);
        upper_label(key, sizeof(key), "NOMAD_ALLOC_ADDR_", p->label);
        snprintf(buf, sizeof(buf), "%s:%d", ip, inside);
        kv_set(env, key, buf);
    }
    for (size_t i = 0; i < a->job->meta.n; i++) {
        upper_label(key, sizeof(key), "NOMAD_META_", a->job->meta.items[i].key);
        kv_set(env, key, a->job->meta.items[i].value);
        /* Nomad sets both the upper-cased and the original key */
        snprintf(key, sizeof(key), "NOMAD_META_%s", a->job->meta.items[i].key);
        kv_set(env, key, a->job->meta.items[i].value);
    }
    for (size_t i = 0; i < t->meta.n; i++) {
        snprintf(key, sizeof(key), "NOMAD_META_%s", t->meta.items[i].key);
        kv_set(env, key, t->meta.items[i].value);
    }
    /* the task's own env last, interpolated against what is set so far */
    for (size_t i = 0; i < t->env.n; i++) {
        char *v = alloc_interpolate(t->env.items[i].value, env, n);
        kv_set(env, t->env.items[i].key, v);
        free(v);
    }
    /* env = true templates override the task's env, as Nomad's */
    for (size_t i = 0; i < a->ntasks; i++)
        if (nc_streq(a->tasks[i].name, t->name))
            for (size_t k = 0; k < a->tasks[i].template_env.n; k++)
                kv_set(env, a->tasks[i].template_env.items[k].key,
                       a->tasks[i].template_env.items[k].value);
}

static const char *lookup(const char *ref, size_t len, const struct kvlist *env,
                          const struct node *n, char **tmp)
{
    char *key = xstrndup(ref, len);
    const char *v = NULL;
    if (nc_str_has_prefix(key, "env[\"") && nc_str_has_suffix(key, "\"]")) {
        key[len - 2] = '\0';
        v = kv_get(env, key + 5);
    } else if (nc_str_has_prefix(key, "NOMAD_")) {
        v = kv_get(env, key);
    } else if (nc_str_has_prefix(key, "attr.") || nc_str_has_prefix(key, "meta.") ||
               nc_str_has_prefix(key, "node.")) {
        char *full = xasprintf("${%s}", key);
        if (placement_resolve(n, full, tmp))
            v = *tmp;
        free(full);
    }
    free(key);
    return v;
}

char *alloc_interpolate(const char *s, const struct kvlist *env,
                        const struct node *n)
{
    if (!s)
        return NULL;
    struct nc_buf b = {0};
    nc_buf_puts(&b, "");
    const char *p = s;
    while (*p) {
        const char *open = strstr(p, "${");
        if (!open) {
            nc_buf_puts(&b, p);
            break;
        }
        const char *close = strchr(open + 2, '}');
        if (!close) {
            nc_buf_puts(&b, p);
            break;
        }
        nc_buf_append(&b, p, (size_t)(open - p));
        char *tmp = NULL;
        const char *v = lookup(open + 2, (size_t)(close - open - 2), env, n, &tmp);
        if (v)
            nc_buf_puts(&b, v);
        else
            nc_buf_append(&b, open, (size_t)(close - open + 1));
        free(tmp);
        p = close + 1;
    }
    return nc_buf_take(&b);
}

const struct task_group *alloc_group(const struct alloc *a)
{
    for (size_t i = 0; a->job && i < a->job->ngroups; i++)
        if (strcmp(a->job->groups[i].name, a->group) == 0)
            return &a->job->groups[i];
    return NULL;
}

const struct task *alloc_task_spec(const struct alloc_task *t)
{
    const struct task_group *g = alloc_group(t->alloc);
    for (size_t i = 0; g && i < g->ntasks; i++)
        if (strcmp(g->tasks[i].name, t->name) == 0)
            return &g->tasks[i];
    return NULL;
}
