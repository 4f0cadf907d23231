/* alloc_checks.c - see client/services/services.h. */
#include "client/services/services.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks/checks.h"

/* What the agent knows of a check beyond its definition. */
struct owned {
    struct alloc_checks *ac;
    char *id;
    char *alloc_id, *group, *task, *service, *check, *type;
    char *restart_task; /* whom check_restart restarts, NULL: nobody */
    char *exec_task;    /* script checks: the task the command runs in */
    chk_script_done_fn script_done; /* the engine's, for the run in flight */
    void *script_ctx;
    bool readiness;     /* on_update = "ignore": not part of health */
    int64_t started_at; /* of the task it restarts: a restart resets grace */
    bool seen;
    bool has_result;
    int last_code;        /* HTTP status of the last probe */
    uint64_t output_hash; /* of the last probe's output */
    int64_t last_time;    /* unix ns */
};

struct alloc_checks {
    uv_loop_t *loop;
    const struct node *node;
    struct alloc_checks_hooks hooks;
    struct chk_engine *engine;
    struct owned **items;
    size_t n, cap;
};

static void owned_free(struct owned *o)
{
    if (!o)
        return;
    free(o->id);
    free(o->alloc_id);
    free(o->group);
    free(o->task);
    free(o->service);
    free(o->check);
    free(o->type);
    free(o->restart_task);
    free(o->exec_task);
    free(o);
}

/* ---- engine callbacks ------------------------------------------------- */

static void on_result(void *arg, struct chk *c, const struct chk_result *r)
{
    struct alloc_checks *ac = arg;
    struct owned *o = chk_owner(c);
    o->has_result = true;
    o->last_code = r->http_code;
    o->last_time = r->time_unix_ns;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: cheap, per probe */
    for (const unsigned char *p = (const unsigned char *)r->output; p && *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    if (h != o->output_hash) {
        o->output_hash = h;
        if (ac->hooks.output_changed)
            ac->hooks.output_changed(ac->hooks.arg, o->alloc_id);
    }
}

static void on_status_change(void *arg, struct chk *c, enum chk_status old,
                             enum chk_status now)
{
    struct alloc_checks *ac = arg;
    struct owned *o = chk_owner(c);
    LOG_INFO("checks", "check \"%s\" of service \"%s\" (allocation %.8s): %s "
                       "-> %s", o->check, o->service, o->alloc_id,
             chk_status_name(old), chk_status_name(now));
    if (ac->hooks.status_changed)
        ac->hooks.status_changed(ac->hooks.arg, o->alloc_id);
}

static void on_restart(void *arg, struct chk *c)
{
    struct alloc_checks *ac = arg;
    struct owned *o = chk_owner(c);
    if (!o->restart_task || !ac->hooks.restart_task)
        return;
    char why[512];
    snprintf(why, sizeof(why), "healthcheck: check \"%s\" unhealthy",
             o->check);
    ac->hooks.restart_task(ac->hooks.arg, o->alloc_id, o->restart_task, why);
}

/* The driver's answer to the engine's: a run the driver had to kill at
 * its own (backstop) limit reads as the engine's deadline. */
static void on_script_exit(void *arg, int exit_code, int signal,
                           bool timed_out, const char *output,
                           size_t output_len, const char *error)
{
    struct owned *o = arg;
    chk_script_done_fn done = o->script_done;
    o->script_done = NULL;
    if (!done)
        return;
    char why[64];
    if (!error && timed_out)
        error = "context deadline exceeded";
    else if (!error && exit_code < 0) {
        snprintf(why, sizeof(why), "signal: %s", strsignal(signal));
        error = why;
    }
    done(o->script_ctx, exit_code, output, output_len, error);
}

static int script_start(void *arg, struct chk *c, char *const argv[],
                        int64_t timeout_ns, chk_script_done_fn done, void *ctx,
                        void **run, struct nc_error *err)
{
    struct alloc_checks *ac = arg;
    struct owned *o = chk_owner(c);
    if (!ac->hooks.exec_task)
        return nc_error_set(err, -ENOTSUP, "script checks cannot run here");
    o->script_done = done;
    o->script_ctx = ctx;
    int r = ac->hooks.exec_task(ac->hooks.arg, o->alloc_id, o->exec_task, argv,
                                timeout_ns, on_script_exit, o, run, err);
    if (r < 0)
        o->script_done = NULL;
    return r;
}

static void script_cancel(void *arg, void *run)
{
    struct alloc_checks *ac = arg;
    if (ac->hooks.exec_cancel)
        ac->hooks.exec_cancel(ac->hooks.arg, run);
}

int alloc_checks_open(struct alloc_checks **out, uv_loop_t *loop,
                      const struct node *node,
                      const struct alloc_checks_hooks *hooks)
{
    struct alloc_checks *ac = xcalloc(1, sizeof(*ac));
    ac->loop = loop;
    ac->node = node;
    if (hooks)
        ac->hooks = *hooks;
    static const struct chk_callbacks cbs = {.on_result = on_result,
                                             .on_status_change = on_status_change,
                                             .on_restart = on_restart,
                                             .script_start = script_start,
                                             .script_cancel = script_cancel};
    int r = chk_engine_new(&ac->engine, loop, &cbs, ac);
    if (r < 0) {
        free(ac);
        return r;
    }
    *out = ac;
    return 0;
}

void alloc_checks_close(struct alloc_checks *ac)
{
    if (!ac)
        return;
    chk_engine_close(ac->engine);
    for (size_t i = 0; i < ac->n; i++)
        owned_free(ac->items[i]);
    free(ac->items);
    free(ac);
}

/* ---- building definitions ----------------------------------------------- */

/* A stable ID per allocation, service and check, as Nomad's
 * "_nomad-check-<hash>" (FNV-1a 64 over the identifying fields). */
static char *check_id(const char *alloc_id, const char *group, const char *task,
                      const char *service, const struct check *c, size_t index)
{
    char key[2048];
    snprintf(key, sizeof(key), "%s|%s|%s|%s|%s|%s|%zu", alloc_id, group,
             task ? task : "", service, c->name ? c->name : "",
             c->type ? c->type : "", index);
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return xasprintf("_nomad-check-%016llx", (unsigned long long)h);
}

static const struct alloc_port *find_port(const struct alloc *a,
                                          const char *label)
{
    for (size_t i = 0; label && i < a->nports; i++)
        if (strcmp(a->ports[i].label, label) == 0)
            return &a->ports[i];
    return NULL;
}

static const struct task *group_task(const struct task_group *g,
                                     const char *name)
{
    for (size_t i = 0; name && i < g->ntasks; i++)
        if (strcmp(g->tasks[i].name, name) == 0)
            return &g->tasks[i];
    return g->ntasks ? &g->tasks[0] : NULL;
}

/* Fills the address and port a check probes, per its address_mode. */
static int check_target(const struct alloc_checks *ac, const struct alloc *a,
                        const struct service *s, const struct check *c,
                        char *addr, size_t addrlen, int *port,
                        struct nc_error *err)
{
    const char *label = c->port_label && *c->port_label ? c->port_label
                                                        : s->port_label;
    const char *mode = c->address_mode && *c->address_mode ? c->address_mode
                                                           : "host";
    const char *host_ip =
        kv_get(&ac->node->attributes, "unique.network.ip-address");
    bool in_alloc = strcmp(mode, "alloc") == 0 || strcmp(mode, "driver") == 0;
    if (in_alloc && !a->ip)
        return nc_error_set(err, -EINVAL,
                            "address_mode \"%s\" needs an allocation address "
                            "(bridge networking); this allocation uses the "
                            "host's network", mode);
    snprintf(addr, addrlen, "%s", in_alloc ? a->ip : host_ip ? host_ip
                                                             : "127.0.0.1");
    char *end = NULL;
    long num = label ? strtol(label, &end, 10) : 0;
    if (label && *label && end && !*end) {
        *port = (int)num; /* a numeric port (address_mode "driver") */
        return 0;
    }
    const struct alloc_port *p = find_port(a, label);
    if (!p)
        return nc_error_set(err, -ENOENT,
                            "port label \"%s\" is not a port of this "
                            "allocation", label ? label : "");
    *port = in_alloc && p->to > 0 ? p->to : p->value;
    return 0;
}

static enum chk_status initial_status(const char *s)
{
    enum chk_status st = CHK_CRITICAL;
    if (s && *s)
        chk_status_parse(s, &st);
    return st;
}

static int build_def(const struct alloc_checks *ac, const struct alloc *a,
                     const struct task_group *g, const struct service *s,
                     const struct task *owner_task, const struct check *c,
                     const char *id, struct owned *o, struct nc_error *err)
{
    char addr[64] = "";
    int port = 0;
    bool script = nc_streq(c->type, "script");
    int r = script ? 0 : check_target(ac, a, s, c, addr, sizeof(addr), &port,
                                      err);
    if (r < 0)
        return r;
    const struct task *env_task =
        owner_task ? owner_task : group_task(g, c->task_name);
    struct kvlist env = {0};
    if (env_task)
        alloc_task_env(a, env_task, ac->node, "", "", false, &env);
    char *path = alloc_interpolate(c->path ? c->path : "/", &env, ac->node);
    /* several values of one header are kept joined by \x1f */
    size_t nh = 0;
    for (size_t i = 0; i < c->header.n; i++) {
        nh++;
        for (const char *p = c->header.items[i].value; *p; p++)
            nh += *p == '\x1f';
    }
    struct chk_header *hs = xcalloc(nh + 1, sizeof(*hs));
    char **vals = xcalloc(nh + 1, sizeof(*vals));
    size_t k = 0;
    for (size_t i = 0; i < c->header.n; i++) {
        const char *v = c->header.items[i].value;
        for (;;) {
            const char *sep = strchr(v, '\x1f');
            char *one = sep ? xstrndup(v, (size_t)(sep - v)) : xstrdup(v);
            vals[k] = alloc_interpolate(one, &env, ac->node);
            free(one);
            hs[k].name = c->header.items[i].key;
            hs[k].value = vals[k];
            k++;
            if (!sep)
                break;
            v = sep + 1;
        }
    }
    bool http = nc_streq(c->type, "http");
    enum chk_type type = http                          ? CHK_TYPE_HTTP
                         : nc_streq(c->type, "grpc")   ? CHK_TYPE_GRPC
                         : script                      ? CHK_TYPE_SCRIPT
                                                       : CHK_TYPE_TCP;
    struct chk_def d = {
        .id = id,
        .name = o->check,
        .type = type,
        .address = addr,
        .port = port,
        .protocol = nc_streq(c->protocol, "https") ? CHK_PROTO_HTTPS
                                                   : CHK_PROTO_HTTP,
        .method = c->method && *c->method ? c->method : NULL,
        .path = http ? path : NULL,
        .headers = hs,
        .nheaders = k,
        .body = c->body && *c->body ? c->body : NULL,
        .tls_skip_verify = c->tls_skip_verify,
        .grpc_service = c->grpc_service,
        .grpc_use_tls = c->grpc_use_tls,
        .command = c->command,
        .args = (const char *const *)c->args.items,
        .nargs = c->args.n,
        .interval_ns = c->interval,
        .timeout_ns = c->timeout,
        .success_before_passing = c->success_before_passing,
        .failures_before_critical = c->failures_before_critical,
        .failures_before_warning = c->failures_before_warning,
        .initial_status = initial_status(c->initial_status),
        .on_update = c->on_update,
        .owner = o,
    };
    if (c->check_restart) {
        d.check_restart.limit = c->check_restart->limit;
        d.check_restart.grace_ns = c->check_restart->grace;
        d.check_restart.ignore_warnings = c->check_restart->ignore_warnings;
    }
    r = chk_add(ac->engine, &d, err);
    for (size_t i = 0; i < k; i++)
        free(vals[i]);
    free(vals);
    free(hs);
    free(path);
    kv_free(&env);
    return r;
}

/* ---- sync ------------------------------------------------------------------ */

static struct owned *find_owned(const struct alloc_checks *ac, const char *id)
{
    for (size_t i = 0; i < ac->n; i++)
        if (strcmp(ac->items[i]->id, id) == 0)
            return ac->items[i];
    return NULL;
}

/* When the task last (re)started, 0 if unknown. */
static int64_t restarted_at(const struct alloc *a, const char *task)
{
    for (size_t i = 0; task && i < a->ntasks; i++)
        if (strcmp(a->tasks[i].name, task) == 0)
            return a->tasks[i].started_at;
    return 0;
}

static void want_service(struct alloc_checks *ac, const struct alloc *a,
                         const struct task_group *g, const struct service *s,
                         const struct task *t)
{
    for (size_t i = 0; i < s->nchecks; i++) {
        const struct check *c = &s->checks[i];
        char *id = check_id(a->id, a->group, t ? t->name : NULL, s->name, c, i);
        struct owned *o = find_owned(ac, id);
        int64_t started = restarted_at(a, t ? t->name : c->task_name);
        if (o) {
            o->seen = true;
            if (o->restart_task && started != o->started_at) {
                o->started_at = started;
                chk_reset_grace(ac->engine, o->id);
            }
            free(id);
            continue;
        }
        o = xcalloc(1, sizeof(*o));
        o->ac = ac;
        o->id = id;
        o->alloc_id = xstrdup(a->id);
        o->group = xstrdup(a->group);
        o->task = xstrdup(t ? t->name : NULL);
        o->service = xstrdup(s->name);
        /* Nomad's name for a check without one */
        o->check = c->name && *c->name
                       ? xstrdup(c->name)
                       : xasprintf("service: \"%s\" check", s->name);
        o->type = xstrdup(c->type);
        o->readiness = nc_streq(c->on_update, "ignore");
        if (c->check_restart && c->check_restart->limit > 0)
            o->restart_task =
                xstrdup(t ? t->name
                          : (c->task_name && *c->task_name ? c->task_name
                                                           : NULL));
        const char *in_task = t ? t->name : c->task_name;
        o->exec_task = in_task && *in_task ? xstrdup(in_task) : NULL;
        o->seen = true;
        o->started_at = started;
        struct nc_error err = {0};
        if (build_def(ac, a, g, s, t, c, id, o, &err) < 0) {
            LOG_WARN("checks", "allocation %.8s service \"%s\" check \"%s\": "
                               "not run: %s", a->id, s->name, o->check,
                     err.msg);
            owned_free(o);
            continue;
        }
        nc_grow((void **)&ac->items, &ac->cap, ac->n + 1, sizeof(*ac->items));
        ac->items[ac->n++] = o;
    }
}

static const struct task_group *alloc_group_of(const struct alloc *a)
{
    for (size_t i = 0; a->job && i < a->job->ngroups; i++)
        if (strcmp(a->job->groups[i].name, a->group) == 0)
            return &a->job->groups[i];
    return NULL;
}

void alloc_checks_sync(struct alloc_checks *ac, const struct alloc *a)
{
    for (size_t i = 0; i < ac->n; i++)
        if (strcmp(ac->items[i]->alloc_id, a->id) == 0)
            ac->items[i]->seen = false;
    const struct task_group *g = alloc_group_of(a);
    bool live = g && !a->stopping && nc_streq(a->desired_status, "run") &&
                !nc_streq(a->client_status, "complete") &&
                !nc_streq(a->client_status, "failed");
    bool any_running = false;
    for (size_t i = 0; live && i < a->ntasks; i++) {
        const struct alloc_task *at = &a->tasks[i];
        if (!nc_streq(at->state, "running"))
            continue;
        any_running = true;
        const struct task *t = group_task(g, at->name);
        if (!t || strcmp(t->name, at->name) != 0)
            continue;
        for (size_t k = 0; k < t->nservices; k++)
            want_service(ac, a, g, &t->services[k], t);
    }
    for (size_t k = 0; any_running && k < g->nservices; k++)
        want_service(ac, a, g, &g->services[k], NULL);
    size_t keep = 0;
    for (size_t i = 0; i < ac->n; i++) {
        struct owned *o = ac->items[i];
        if (strcmp(o->alloc_id, a->id) == 0 && !o->seen) {
            chk_remove(ac->engine, o->id);
            owned_free(o);
            continue;
        }
        ac->items[keep++] = o;
    }
    ac->n = keep;
}

/* ---- views ---------------------------------------------------------------- */

json_t *alloc_checks_alloc_json(const struct alloc_checks *ac,
                                const char *alloc_id)
{
    json_t *out = json_object();
    for (size_t i = 0; i < ac->n; i++) {
        const struct owned *o = ac->items[i];
        if (strcmp(o->alloc_id, alloc_id) != 0)
            continue;
        struct chk *c = chk_find(ac->engine, o->id);
        json_t *live = c ? chk_to_json(c) : NULL;
        enum chk_status st = c ? chk_get_status(c) : CHK_CRITICAL;
        /* Nomad's words for its own checks: success, failure, pending */
        const char *status = !o->has_result      ? "pending"
                             : st == CHK_PASSING ? "success"
                                                 : "failure";
        const char *output = json_string_value(json_object_get(live, "Output"));
        json_object_set_new(
            out, o->id,
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:I}",
                      "ID", o->id, "Check", o->check, "Group", o->group,
                      "Task", o->task ? o->task : "", "Service", o->service,
                      "Mode", o->readiness ? "readiness" : "healthiness",
                      "Status", status, "ConsulStatus", chk_status_name(st),
                      "StatusCode", o->last_code, "Output",
                      output ? output : "", "Timestamp",
                      (json_int_t)(o->last_time / 1000000000)));
        json_decref(live);
    }
    return out;
}

json_t *alloc_checks_agent_json(const struct alloc_checks *ac)
{
    json_t *out = json_object();
    for (size_t i = 0; i < ac->n; i++) {
        const struct owned *o = ac->items[i];
        struct chk *c = chk_find(ac->engine, o->id);
        if (!c)
            continue;
        json_t *j = chk_to_json(c);
        json_object_set_new(j, "AllocID", json_string(o->alloc_id));
        json_object_set_new(j, "Group", json_string(o->group));
        json_object_set_new(j, "Task", json_string(o->task ? o->task : ""));
        json_object_set_new(j, "ServiceName", json_string(o->service));
        json_object_set_new(j, "CheckType", json_string(o->type));
        json_object_set_new(j, "Mode", json_string(o->readiness ? "readiness"
                                                                : "healthiness"));
        json_object_set_new(out, o->id, j);
    }
    return out;
}

const char *alloc_checks_service_status(const struct alloc_checks *ac,
                                        const char *alloc_id,
                                        const char *service)
{
    bool any = false;
    enum chk_status worst = CHK_PASSING;
    for (size_t i = 0; i < ac->n; i++) {
        const struct owned *o = ac->items[i];
        if (strcmp(o->alloc_id, alloc_id) != 0 ||
            strcmp(o->service, service) != 0)
            continue;
        struct chk *c = chk_find(ac->engine, o->id);
        if (!c)
            continue;
        any = true;
        enum chk_status st = chk_get_status(c);
        if (st < worst)
            worst = st;
    }
    return any ? chk_status_name(worst) : NULL;
}

void alloc_checks_each(const struct alloc_checks *ac, const char *alloc_id,
                       const char *task, const char *service,
                       alloc_checks_each_fn fn, void *arg)
{
    for (size_t i = 0; i < ac->n; i++) {
        const struct owned *o = ac->items[i];
        if (strcmp(o->alloc_id, alloc_id) != 0 ||
            strcmp(o->service, service) != 0 || !nc_streq(o->task, task))
            continue;
        struct chk *c = chk_find(ac->engine, o->id);
        if (!c)
            continue;
        json_t *live = chk_to_json(c);
        const char *out = json_string_value(json_object_get(live, "Output"));
        fn(arg, o->id, o->check, o->type,
           json_integer_value(json_object_get(live, "Interval")),
           json_integer_value(json_object_get(live, "Timeout")),
           chk_status_name(chk_get_status(c)), out ? out : "", o->readiness);
        json_decref(live);
    }
}
