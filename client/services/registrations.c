/* registrations.c - the registrations debugging view, built (see
 * services.h): each desired registration with its source, its registry's
 * answers and its checks, the problem stated first. registrations_print.c
 * prints it. */
#include "client/services/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/format.h"

/* ---- reading the inputs ---------------------------------------------- */

const char *registrations_jstr(const json_t *o, const char *key)
{
    return format_jstr(o, key, NULL);
}

/* A time as the registries give it: RFC 3339 text, or a unix time in
 * seconds, milliseconds or nanoseconds. 0 when absent. */
int64_t registrations_jtime(const json_t *v)
{
    int64_t t = 0;
    if (json_is_string(v) && nc_parse_time(json_string_value(v), &t) == 0)
        return t;
    if (json_is_integer(v)) {
        t = json_integer_value(v);
        return t > 1000000000000000LL ? t
               : t > 100000000000LL   ? t * 1000000
                                      : t * 1000000000LL;
    }
    return 0;
}

/* "in 8s" or "3m12s ago", to the second. */
void registrations_relative(int64_t t, int64_t now, char *out, size_t len)
{
    int64_t d = t - now;
    int64_t abs = d < 0 ? -d : d;
    char dur[32];
    nc_format_duration(abs / 1000000000 * 1000000000, dur, sizeof(dur));
    if (abs < 1000000000)
        snprintf(out, len, "now");
    else
        snprintf(out, len, d > 0 ? "in %s" : "%s ago", dur);
}

/* The first line of a text, at most `max` bytes, without '|' (the table
 * separator of format.h). */
char *registrations_one_line(const char *s, size_t max)
{
    if (!s)
        return xstrdup("");
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
        s++;
    size_t n = strcspn(s, "\r\n");
    bool cut = n > max;
    char *out = xasprintf("%.*s%s", (int)(cut ? max : n), s, cut ? "..." : "");
    for (char *p = out; *p; p++)
        if (*p == '|')
            *p = '/';
    return out;
}

static const struct alloc *find_alloc(const struct registrations_source *src,
                                      const char *id)
{
    for (size_t i = 0; i < src->nallocs; i++)
        if (nc_streq(src->allocs[i]->id, id))
            return src->allocs[i];
    return NULL;
}

static const struct task_group *group_of(const struct alloc *a)
{
    for (size_t i = 0; a && a->job && i < a->job->ngroups; i++)
        if (nc_streq(a->job->groups[i].name, a->group))
            return &a->job->groups[i];
    return NULL;
}

static const struct task *task_of(const struct task_group *g, const char *name)
{
    for (size_t i = 0; g && name && i < g->ntasks; i++)
        if (nc_streq(g->tasks[i].name, name))
            return &g->tasks[i];
    return NULL;
}

/* The service block of the job that produced r: same task (or group), the
 * same name once interpolated, and the port label the ID ends with. */
static const struct service *block_of(const struct registrations_source *src,
                                      const struct alloc *a,
                                      const struct svc_reg *r)
{
    const struct task_group *g = group_of(a);
    if (!g)
        return NULL;
    const struct task *t = task_of(g, r->task);
    if (r->task && !t)
        return NULL;
    const struct service *list = t ? t->services : g->services;
    size_t n = t ? t->nservices : g->nservices;
    const struct task *env_task = t ? t : (g->ntasks ? &g->tasks[0] : NULL);
    struct kvlist env = {0};
    if (env_task)
        alloc_task_env(a, env_task, src->node, "", "", false, &env);
    const struct service *found = NULL;
    for (size_t i = 0; i < n && !found; i++) {
        char *name = alloc_interpolate(list[i].name, &env, src->node);
        char *suffix = xasprintf("-%s-%s", name,
                                 list[i].port_label ? list[i].port_label : "");
        if (strcmp(name, r->name) == 0 && nc_str_has_suffix(r->id, suffix))
            found = &list[i];
        free(name);
        free(suffix);
    }
    kv_free(&env);
    return found;
}

static const struct alloc_port *port_of(const struct alloc *a,
                                        const char *label)
{
    for (size_t i = 0; a && label && i < a->nports; i++)
        if (strcmp(a->ports[i].label, label) == 0)
            return &a->ports[i];
    return NULL;
}

static bool is_number(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* ---- problems, stated first ------------------------------------------ */

struct finding {
    char *problem, *hint;
};

static void found(struct finding *f, char *problem, char *hint)
{
    f->problem = problem;
    f->hint = hint;
}

/* Why a registration cannot be built, and what would fix it. */
static void invalid_hint(struct finding *f, const struct svc_reg *r,
                         const struct alloc *a, const struct service *s)
{
    const char *label = s ? s->port_label : NULL;
    if (label && *label && !is_number(label) && a && !port_of(a, label)) {
        struct nc_buf ports = {0};
        for (size_t i = 0; i < a->nports; i++)
            nc_buf_printf(&ports, "%s\"%s\"", i ? ", " : "", a->ports[i].label);
        f->hint = a->nports
                      ? xasprintf("the allocation's ports are %s: set the "
                                  "service's port to one of them, or add "
                                  "port \"%s\" to the network block of "
                                  "group \"%s\"",
                                  ports.data, label, a->group)
                      : xasprintf("the network block of group \"%s\" "
                                  "declares no ports: add port \"%s\" {}",
                                  a->group, label);
        nc_buf_free(&ports);
    } else if (nc_streq(r->address_mode, "alloc") && a && !a->ip) {
        f->hint = xasprintf("use address_mode \"host\" (what \"auto\" means "
                            "for exec tasks), or give group \"%s\" "
                            "network { mode = \"bridge\" }",
                            a->group);
    }
}

/* What the registry last said: the status and text of the registration's
 * own last answer, else of the sync loop's last error, which reads
 * "GET /v1/agent/checks: HTTP 403: ACL not found" (then `request` gets
 * "GET /v1/agent/checks"). */
struct answer {
    int status;
    char *text, *request;
};

static void answer_of(struct answer *a, const json_t *answer,
                      const json_t *status)
{
    memset(a, 0, sizeof(*a));
    a->status = (int)format_jint(answer, "Status");
    const char *text = registrations_jstr(answer, "Body")
                           ? registrations_jstr(answer, "Body")
                           : registrations_jstr(answer, "Error");
    const char *err = registrations_jstr(status, "LastError");
    if (!text && !a->status && err) {
        const char *http = strstr(err, ": HTTP ");
        if (http) {
            a->request = xstrndup(err, (size_t)(http - err));
            a->status = atoi(http + 7);
            const char *colon = strchr(http + 7, ':');
            text = colon ? colon + 1 : http + 7;
        } else {
            text = err;
        }
    }
    a->text = registrations_one_line(text ? text : "(no message)", 200);
}

static void answer_free(struct answer *a)
{
    free(a->text);
    free(a->request);
}

/* "; next retry in 8s" from the description, else from the loop. */
static void next_retry(const json_t *desc, const json_t *status, char *out,
                       size_t len)
{
    int64_t next = registrations_jtime(json_object_get(desc, "NextRetry"));
    if (!next)
        next = registrations_jtime(json_object_get(status, "NextRetry"));
    out[0] = '\0';
    if (next) {
        char rel[48];
        registrations_relative(next, nc_now_unix_ns(), rel, sizeof(rel));
        snprintf(out, len, "; next retry %s", rel);
    }
}

static char *token_hint(const char *name)
{
    return xasprintf("the token of the consul block (or CONSUL_HTTP_TOKEN) "
                     "must be known to Consul and have service:write on "
                     "\"%s\"",
                     name);
}

static void registry_finding(struct finding *f, const char *registry,
                             const char *state, const json_t *desc,
                             const json_t *status, const struct svc_reg *r)
{
    bool consul = nc_streq(registry, "consul");
    struct answer ans;
    answer_of(&ans, json_object_get(desc, "LastAnswer"), status);
    char retry[64];
    next_retry(desc, status, retry, sizeof(retry));
    char on[160] = "";
    if (ans.request)
        snprintf(on, sizeof(on), " (on %s)", ans.request);
    if (nc_streq(state, "rejected") && consul) {
        if (ans.status == 401 || ans.status == 403)
            found(f,
                  xasprintf("Consul refused the ACL token: %d %s%s%s",
                            ans.status, ans.text, on, retry),
                  token_hint(r->name));
        else
            found(f,
                  xasprintf("Consul rejected this registration: %d %s%s%s",
                            ans.status, ans.text, on, retry),
                  xstrdup("Consul's message names what it refused: compare "
                          "it with the payload sent (-explain)"));
    } else if (nc_streq(state, "rejected")) {
        found(f,
              xasprintf("The built-in catalog refused this registration: %s",
                        registrations_jstr(desc, "Error")
                            ? registrations_jstr(desc, "Error")
                            : "?"),
              NULL);
    } else if (nc_streq(state, "unreachable")) {
        found(f, xasprintf("Consul is unreachable: %s%s", ans.text, retry),
              xstrdup("registrations are kept and retried; nothing is lost "
                      "while Consul is away"));
    } else if (nc_streq(state, "missing")) {
        found(f,
              xasprintf("%s does not have this registration%s",
                        consul ? "Consul" : "The built-in catalog", retry),
              xstrdup("it is registered on the next sync"));
    } else if (nc_streq(state, "different")) {
        struct nc_buf b = {0};
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(desc, "Differences"), i, d)
            nc_buf_printf(&b, "%s%s", i ? "; " : "", json_string_value(d));
        found(f,
              xasprintf("Consul holds a different registration: %s%s",
                        b.data ? b.data : "(no details)", retry),
              xstrdup("it is registered again on the next sync"));
        nc_buf_free(&b);
    } else if (nc_streq(state, "pending")) {
        found(f, xstrdup("Not sent to Consul yet: waiting for the first sync"),
              NULL);
    } else if (!nc_streq(state, "in sync")) {
        found(f, xasprintf("The registry reports state \"%s\"", state), NULL);
    }
    answer_free(&ans);
}

/* ---- one registration ------------------------------------------------ */

static json_t *check_json(const struct svc_check *c, const json_t *live,
                          bool detail)
{
    /* the engine's output is the latest; the desired state's is from its
     * last rebuild (on status changes) */
    const char *output = registrations_jstr(live, "Output")
                             ? registrations_jstr(live, "Output")
                         : c->output ? c->output
                                     : "";
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:I}", "ID",
                          c->id, "Name", c->name, "Type", c->type, "Status",
                          c->status, "Output", output, "Readiness",
                          c->readiness, "Interval", (json_int_t)c->interval_ns,
                          "Timeout", (json_int_t)c->timeout_ns);
    const char *target = registrations_jstr(live, "URL")
                             ? registrations_jstr(live, "URL")
                             : registrations_jstr(live, "Target");
    json_object_set_new(o, "Target", json_string(target ? target : ""));
    static const char *const copied[] = {"Counters", "LastResult", "Latency",
                                         "Timestamp"};
    for (size_t i = 0; live && i < NC_ARRAY_LEN(copied); i++)
        if (json_object_get(live, copied[i]))
            json_object_set(o, copied[i], json_object_get(live, copied[i]));
    if (detail)
        json_object_set_new(
            o, "History",
            live && json_object_get(live, "History")
                ? json_deep_copy(json_object_get(live, "History"))
                : json_array());
    return o;
}

/* Adds what the registry shows of each check (Consul's describe "Checks":
 * ConsulStatus, LastUpdate); returns a message, to free, for the first
 * check Consul sees otherwise than this node (a TTL that expired because
 * updates fail), or NULL. */
static char *registry_check_status(json_t *checks, const json_t *desc)
{
    char *drift = NULL;
    size_t i, k;
    json_t *c, *rc;
    json_array_foreach(checks, i, c)
    {
        json_array_foreach(json_object_get(desc, "Checks"), k, rc)
        {
            if (!nc_streq(registrations_jstr(rc, "CheckID"),
                          registrations_jstr(c, "ID")))
                continue;
            const char *theirs = registrations_jstr(rc, "ConsulStatus");
            json_object_set_new(c, "RegistryStatus",
                                theirs ? json_string(theirs) : json_null());
            if (json_object_get(rc, "LastUpdate"))
                json_object_set(c, "LastUpdate",
                                json_object_get(rc, "LastUpdate"));
            if (!drift && theirs &&
                !nc_streq(theirs, registrations_jstr(c, "Status")))
                drift = xasprintf("check \"%s\" is %s here but %s in Consul "
                                  "(its status updates are not getting "
                                  "through)",
                                  registrations_jstr(c, "Name"),
                                  registrations_jstr(c, "Status"), theirs);
        }
    }
    return drift;
}

static json_t *source_json(const struct alloc *a, const struct service *s)
{
    json_t *ports = json_array();
    for (size_t i = 0; a && i < a->nports; i++)
        json_array_append_new(
            ports, json_pack("{s:s, s:i, s:i, s:s}", "Label", a->ports[i].label,
                             "Value", a->ports[i].value, "To", a->ports[i].to,
                             "HostIP",
                             a->ports[i].host_ip ? a->ports[i].host_ip : ""));
    json_t *o = json_pack("{s:o}", "Ports", ports);
    if (a) {
        json_object_set_new(o, "AllocName", json_string(a->name));
        json_object_set_new(
            o, "JobName",
            json_string(a->job && a->job->name ? a->job->name : a->job_id));
        json_object_set_new(
            o, "NetworkMode",
            json_string(a->network_mode ? a->network_mode : "host"));
        json_object_set_new(o, "AllocAddress",
                            a->ip ? json_string(a->ip) : json_null());
    }
    if (s) {
        json_t *tags = json_array();
        for (size_t i = 0; i < s->tags.n; i++)
            json_array_append_new(tags, json_string(s->tags.items[i]));
        json_object_set_new(
            o, "Service",
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "Name", s->name, "Port",
                      s->port_label ? s->port_label : "", "AddressMode",
                      s->address_mode && *s->address_mode ? s->address_mode
                                                          : "auto",
                      "Address", s->address ? s->address : "", "Provider",
                      s->provider && *s->provider ? s->provider : "consul",
                      "Tags", tags));
    }
    return o;
}

static json_t *tags_json(const struct strlist *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_string(l->items[i]));
    return a;
}

static const char *registry_of(const struct registrations_source *src,
                               const struct svc_reg *r)
{
    if (src->catalog && catalog_serves(src->catalog, r))
        return "nomad";
    if (src->consul_describe && nc_streq(r->provider, "consul"))
        return "consul";
    return NULL;
}

/* What the registry holds or was sent: the description's payload, else
 * what would be sent. */
static void payload(json_t *o, const struct registrations_source *src,
                    const struct svc_reg *r, const char *registry,
                    const json_t *desc)
{
    json_t *sent = json_object_get(
        desc, nc_streq(registry, "consul") ? "LastPayload" : "Registration");
    json_t *p = sent && !json_is_null(sent) ? json_deep_copy(sent)
                : nc_streq(registry, "consul")
                    ? services_consul_payload(r)
                    : services_nomad_json(r, src->node);
    json_object_set_new(o, "Payload", p);
    json_object_set_new(o, "PayloadSent",
                        json_boolean(sent && !json_is_null(sent)));
}

static json_t *reg_json(const struct registrations_source *src,
                        const struct svc_reg *r, bool detail, int *unhealthy)
{
    const struct alloc *a = find_alloc(src, r->alloc_id);
    /* the service block (interpolating to find it) only where it is shown
     * or explains an error */
    const struct service *s =
        a && (detail || r->error) ? block_of(src, a, r) : NULL;
    const char *registry = registry_of(src, r);
    json_t *desc = NULL;
    if (nc_streq(registry, "nomad"))
        desc = catalog_describe(src->catalog, r->id);
    else if (registry)
        desc = src->consul_describe(src->consul_arg, r->id);
    const char *rstate = registrations_jstr(desc, "State");
    bool consul_registry = nc_streq(registry, "consul");
    const char *state = !registry                      ? "unregistered"
                        : r->error                     ? "invalid"
                        : rstate                       ? rstate
                        : nc_streq(registry, "consul") ? "pending"
                                                       : "missing";
    struct finding f = {0};
    if (!registry)
        found(&f,
              xasprintf("No registry takes provider \"%s\" on this node",
                        r->provider),
              xstrdup("provider \"consul\" needs a consul block in the agent's "
                      "configuration"));
    else if (r->error) {
        found(&f, xasprintf("Cannot be registered: %s", r->error), NULL);
        invalid_hint(&f, r, a, s);
    } else {
        registry_finding(&f, registry, state, desc,
                         consul_registry ? src->consul_status : NULL, r);
    }

    json_t *o = json_object();
    json_object_set_new(o, "ID", json_string(r->id));
    json_object_set_new(o, "ServiceName", json_string(r->name));
    json_object_set_new(o, "Provider", json_string(r->provider));
    json_object_set_new(o, "Registry",
                        registry ? json_string(registry) : json_null());
    json_object_set_new(o, "Namespace", json_string(r->namespace_));
    json_object_set_new(o, "JobID", json_string(r->job_id));
    json_object_set_new(o, "Group", json_string(r->group));
    json_object_set_new(o, "Task",
                        r->task ? json_string(r->task) : json_null());
    json_object_set_new(o, "AllocID", json_string(r->alloc_id));
    json_object_set_new(o, "AllocStatus",
                        a ? json_string(a->client_status) : json_null());
    json_object_set_new(o, "Address",
                        json_string(r->address ? r->address : ""));
    json_object_set_new(o, "Port", json_integer(r->port));
    json_object_set_new(o, "AddressMode", json_string(r->address_mode));
    json_object_set_new(o, "AddressWhy", json_string(r->address_why));
    json_object_set_new(o, "Error",
                        r->error ? json_string(r->error) : json_null());
    json_object_set_new(o, "Tags", tags_json(&r->tags));
    json_object_set_new(o, "State", json_string(state));
    json_object_set_new(o, "RegistryState",
                        rstate ? json_string(rstate) : json_null());
    json_object_set_new(o, "Problem",
                        f.problem ? json_string(f.problem) : json_null());
    json_object_set_new(o, "Hint", f.hint ? json_string(f.hint) : json_null());
    static const char *const copied[] = {"Differences", "Since", "LastAnswer",
                                         "NextRetry", "Attempts"};
    for (size_t i = 0; i < NC_ARRAY_LEN(copied); i++) {
        json_t *v = json_object_get(desc, copied[i]);
        json_object_set_new(o, copied[i], v ? json_deep_copy(v) : json_null());
    }
    if (registry)
        payload(o, src, r, registry, desc);

    json_t *checks = json_array();
    const struct svc_check *bad = NULL;
    size_t passing = 0;
    for (size_t i = 0; i < r->nchecks; i++) {
        const struct svc_check *c = &r->checks[i];
        json_array_append_new(
            checks, check_json(c, json_object_get(src->checks, c->id), detail));
        if (nc_streq(c->status, "passing"))
            passing++;
        else if (!bad || (nc_streq(c->status, "critical") &&
                          !nc_streq(bad->status, "critical")))
            bad = c; /* the first critical one, else the first warning */
    }
    char *drift = registry_check_status(checks, desc);
    json_object_set_new(o, "Checks", checks);
    json_object_set_new(o, "CheckStatus",
                        json_string(!r->nchecks ? "none"
                                    : bad       ? bad->status
                                                : "passing"));
    if (bad) {
        const json_t *live = json_object_get(src->checks, bad->id);
        char *out =
            registrations_one_line(registrations_jstr(live, "Output")
                                       ? registrations_jstr(live, "Output")
                                       : bad->output,
                                   160);
        bool probed =
            format_jint(json_object_get(live, "Counters"), "Probes") > 0;
        char *msg = xasprintf("check \"%s\" is %s%s%s", bad->name, bad->status,
                              *out     ? ": "
                              : probed ? " (its probes give no output)"
                                       : " (no probe yet)",
                              out);
        json_object_set_new(o, "CheckProblem", json_string(msg));
        free(msg);
        free(out);
        (*unhealthy)++;
    } else if (drift) {
        json_object_set_new(o, "CheckProblem", json_string(drift));
        (*unhealthy)++;
    } else {
        json_object_set_new(o, "CheckProblem", json_null());
    }
    free(drift);
    if (detail)
        json_object_set_new(o, "Source", source_json(a, s));
    free(f.problem);
    free(f.hint);
    json_decref(desc);
    return o;
}

/* ---- the view -------------------------------------------------------- */

static bool matches(const struct registrations_filter *f, const char *id,
                    const char *name)
{
    if (!f)
        return true;
    if (f->id && !nc_str_has_prefix(id, f->id))
        return false;
    if (f->service && !nc_streq(name, f->service) &&
        !nc_str_has_prefix(id, f->service))
        return false;
    return true;
}

static json_t *consul_registry_json(const json_t *status)
{
    json_t *o = json_deep_copy(status);
    const char *addr = registrations_jstr(status, "Address")
                           ? registrations_jstr(status, "Address")
                           : "(address unknown)";
    char retry[64];
    next_retry(NULL, status, retry, sizeof(retry));
    char *problem = NULL, *hint = NULL;
    struct answer ans;
    answer_of(&ans, NULL, status);
    if (json_is_false(json_object_get(status, "Reachable"))) {
        problem = xasprintf(
            "Consul at %s is unreachable: %s%s", addr,
            registrations_jstr(status, "LastError") ? ans.text : "no answer",
            retry);
        hint = xstrdup("is Consul running there? Registrations are kept "
                       "and retried meanwhile");
    } else if (ans.status == 401 || ans.status == 403) {
        problem = xasprintf("Consul at %s refused this agent's ACL token: %d "
                            "%s (on %s)%s",
                            addr, ans.status, ans.text,
                            ans.request ? ans.request : "a request", retry);
        hint = xstrdup("set a token Consul knows in the consul block (or "
                       "CONSUL_HTTP_TOKEN), with service:write and "
                       "node:read");
    } else if (registrations_jstr(status, "LastError")) {
        problem =
            xasprintf("Consul at %s answered the last sync with an "
                      "error: %s%s",
                      addr, registrations_jstr(status, "LastError"), retry);
    }
    answer_free(&ans);
    json_object_set_new(o, "Problem",
                        problem ? json_string(problem) : json_null());
    json_object_set_new(o, "Hint", hint ? json_string(hint) : json_null());
    free(problem);
    free(hint);
    return o;
}

static json_t *stale_json(const json_t *st)
{
    json_t *o = json_deep_copy(st);
    char *reason =
        registrations_one_line(registrations_jstr(st, "Reason"), 200);
    /* a deregistration that failed says why it is still there */
    const json_t *ans = json_object_get(st, "LastAnswer");
    char *failed = NULL;
    if (format_jint(ans, "Status") >= 300 || registrations_jstr(ans, "Error")) {
        struct answer a;
        answer_of(&a, ans, NULL);
        failed = a.status ? xasprintf("; deregistering it failed: %d %s",
                                      a.status, a.text)
                          : xasprintf("; deregistering it failed: %s", a.text);
        answer_free(&a);
    }
    char *p = xasprintf(
        "Consul holds %s (service \"%s\" at %s:%lld), which "
        "no allocation of this node wants%s%s%s",
        registrations_jstr(st, "ID") ? registrations_jstr(st, "ID") : "?",
        registrations_jstr(st, "Name") ? registrations_jstr(st, "Name") : "?",
        registrations_jstr(st, "Address") ? registrations_jstr(st, "Address")
                                          : "?",
        (long long)format_jint(st, "Port"), *reason ? ": " : "", reason,
        failed ? failed : "");
    json_object_set_new(o, "Problem", json_string(p));
    free(p);
    free(failed);
    free(reason);
    return o;
}

json_t *registrations_json(const struct registrations_source *src,
                           const struct registrations_filter *f)
{
    int64_t now = src->now ? src->now : nc_now_unix_ns();
    char when[40];
    nc_format_time(now, when, sizeof(when));
    const struct node *n = src->node;
    json_t *view =
        json_pack("{s:s, s:{s:s, s:s, s:s}}", "Time", when, "Node", "ID",
                  n && n->id ? n->id : "", "Name", n && n->name ? n->name : "",
                  "Datacenter", n && n->datacenter ? n->datacenter : "");

    json_t *catalog = json_null();
    if (src->catalog)
        catalog =
            json_pack("{s:b, s:b, s:I, s:I}", "Enabled", true, "AllProviders",
                      catalog_all_providers(src->catalog), "Registrations",
                      (json_int_t)catalog_count(src->catalog), "Index",
                      (json_int_t)catalog_index(src->catalog));
    json_object_set_new(view, "Registries",
                        json_pack("{s:o, s:o}", "Consul",
                                  src->consul_describe && src->consul_status
                                      ? consul_registry_json(src->consul_status)
                                      : json_null(),
                                  "Catalog", catalog));

    json_t *regs = json_array();
    int in_sync = 0, problems = 0, unhealthy = 0;
    bool exact = false;
    for (size_t i = 0; f && f->id && src->desired && i < src->desired->n; i++)
        exact |= strcmp(src->desired->regs[i].id, f->id) == 0;
    for (size_t i = 0; src->desired && i < src->desired->n; i++) {
        const struct svc_reg *r = &src->desired->regs[i];
        if (!matches(f, r->id, r->name) || (exact && strcmp(r->id, f->id)))
            continue;
        json_t *o = reg_json(src, r, f && f->detail, &unhealthy);
        if (json_is_null(json_object_get(o, "Problem")))
            in_sync++;
        else
            problems++;
        json_array_append_new(regs, o);
    }
    json_t *stale = json_array();
    size_t i;
    json_t *st;
    json_array_foreach(src->consul_describe ? src->consul_stale : NULL, i, st)
    {
        if (matches(f,
                    registrations_jstr(st, "ID") ? registrations_jstr(st, "ID")
                                                 : "",
                    registrations_jstr(st, "Name")))
            json_array_append_new(stale, stale_json(st));
    }
    json_object_set_new(view, "Summary",
                        json_pack("{s:I, s:i, s:i, s:i, s:I}", "Registrations",
                                  (json_int_t)json_array_size(regs), "InSync",
                                  in_sync, "Problems", problems, "Unhealthy",
                                  unhealthy, "Stale",
                                  (json_int_t)json_array_size(stale)));
    json_object_set_new(view, "Registrations", regs);
    json_object_set_new(view, "Stale", stale);
    return view;
}

char *registrations_api_path(const char *service)
{
    static const char unreserved[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
                                     "nopqrstuvwxyz0123456789-_.~";
    struct nc_buf b = {0};
    nc_buf_puts(&b, "/v1/agent/registrations");
    for (const char *p = service ? service : ""; *p; p++)
        nc_buf_printf(&b, strchr(unreserved, *p) ? "%s%c" : "%s%%%02X",
                      p == service ? "?service=" : "", *p & 0xff);
    return nc_buf_take(&b);
}
