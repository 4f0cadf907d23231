/* services.c - see client/services/services.h. */
#include "client/services/services.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void reg_free(struct svc_reg *r)
{
    free(r->id);
    free(r->name);
    free(r->provider);
    free(r->namespace_);
    free(r->job_id);
    free(r->alloc_id);
    free(r->group);
    free(r->task);
    free(r->address);
    free(r->address_mode);
    free(r->address_why);
    free(r->error);
    strlist_free(&r->tags);
    kv_free(&r->meta);
    for (size_t i = 0; i < r->nchecks; i++) {
        free(r->checks[i].id);
        free(r->checks[i].name);
        free(r->checks[i].type);
        free(r->checks[i].status);
        free(r->checks[i].output);
    }
    free(r->checks);
    memset(r, 0, sizeof(*r));
}

void services_clear(struct svc_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        reg_free(&set->regs[i]);
    free(set->regs);
    memset(set, 0, sizeof(*set));
}

static const struct task_group *group_of(const struct alloc *a)
{
    for (size_t i = 0; a->job && i < a->job->ngroups; i++)
        if (strcmp(a->job->groups[i].name, a->group) == 0)
            return &a->job->groups[i];
    return NULL;
}

static const struct alloc_port *port_of(const struct alloc *a, const char *label)
{
    for (size_t i = 0; label && i < a->nports; i++)
        if (strcmp(a->ports[i].label, label) == 0)
            return &a->ports[i];
    return NULL;
}

/* Nomad's address_mode rules for a service of an exec/raw_exec task: auto
 * is host (these drivers have no network of their own); host is the node's
 * address and the mapped host port; alloc (and driver, which falls back to
 * it) the allocation's address and the port inside its namespace. */
static void resolve_address(struct svc_reg *r, const struct alloc *a,
                            const struct service *s, const struct node *n)
{
    const char *mode = s->address_mode && *s->address_mode ? s->address_mode
                                                           : "auto";
    const char *host_ip = kv_get(&n->attributes, "unique.network.ip-address");
    if (!host_ip)
        host_ip = "127.0.0.1";
    const char *label = s->port_label && *s->port_label ? s->port_label : NULL;
    const struct alloc_port *p = port_of(a, label);
    struct nc_buf why = {0};
    const char *applied = mode;
    if (strcmp(mode, "auto") == 0) {
        applied = "host";
        nc_buf_puts(&why, "address_mode \"auto\" is \"host\" for exec tasks; ");
    } else if (strcmp(mode, "driver") == 0) {
        applied = "alloc";
        nc_buf_puts(&why, "address_mode \"driver\": exec tasks have no "
                          "driver network, so the allocation's is used; ");
    }
    bool in_alloc = strcmp(applied, "alloc") == 0;
    char *end = NULL;
    long num = label ? strtol(label, &end, 10) : 0;
    bool numeric = label && end && !*end;
    if (in_alloc && !a->ip) {
        r->error = xasprintf("address_mode \"%s\" needs an allocation address, "
                             "but allocation %.8s uses the host's network "
                             "(network mode \"%s\")",
                             mode, a->id, a->network_mode);
        nc_buf_puts(&why, r->error);
    } else if (s->address && *s->address) {
        r->address = xstrdup(s->address);
        nc_buf_printf(&why, "address \"%s\" given in the service", s->address);
    } else {
        r->address = xstrdup(in_alloc ? a->ip : host_ip);
        nc_buf_printf(&why, "address %s (%s)", r->address,
                      in_alloc ? "the allocation's, on its bridge network"
                               : "the node's unique.network.ip-address");
    }
    if (!label) {
        nc_buf_puts(&why, "; no port");
    } else if (numeric) {
        r->port = (int)num;
        nc_buf_printf(&why, "; port %ld given as a number", num);
    } else if (!p) {
        free(r->error);
        r->error = xasprintf("port label \"%s\" is not a port of allocation "
                             "%.8s", label, a->id);
        nc_buf_printf(&why, "; %s", r->error);
    } else if (in_alloc) {
        r->port = p->to > 0 ? p->to : p->value;
        nc_buf_printf(&why, "; port label \"%s\": %d inside the allocation's "
                            "namespace", label, r->port);
    } else {
        r->port = p->value;
        nc_buf_printf(&why, "; port label \"%s\": host port %d%s", label,
                      p->value,
                      a->netns && p->to > 0 && p->to != p->value
                          ? " (mapped to the allocation's port)"
                          : "");
    }
    r->address_mode = xstrdup(applied);
    r->address_why = nc_buf_take(&why);
}

struct check_fill {
    struct svc_reg *r;
};

static void add_check(void *arg, const char *id, const char *name,
                      const char *type, int64_t interval_ns, int64_t timeout_ns,
                      const char *status, const char *output, bool readiness)
{
    struct svc_reg *r = ((struct check_fill *)arg)->r;
    r->checks = xrealloc(r->checks, (r->nchecks + 1) * sizeof(*r->checks));
    struct svc_check *c = &r->checks[r->nchecks++];
    c->id = xstrdup(id);
    c->name = name && *name ? xstrdup(name)
                            : xasprintf("service: \"%s\" check", r->name);
    c->type = xstrdup(type);
    c->interval_ns = interval_ns;
    c->timeout_ns = timeout_ns;
    c->status = xstrdup(status);
    c->output = xstrdup(output);
    c->readiness = readiness;
}

static void add_service(struct svc_set *set, const struct alloc *a,
                        const struct task_group *g, const struct task *t,
                        const struct service *s, const struct node *n,
                        const struct alloc_checks *checks)
{
    struct kvlist env = {0};
    const struct task *env_task = t ? t : (g->ntasks ? &g->tasks[0] : NULL);
    if (env_task)
        alloc_task_env(a, env_task, n, "", "", false, &env);
    nc_grow((void **)&set->regs, &set->cap, set->n + 1, sizeof(*set->regs));
    struct svc_reg *r = &set->regs[set->n++];
    memset(r, 0, sizeof(*r));
    r->name = alloc_interpolate(s->name, &env, n);
    const char *label = s->port_label ? s->port_label : "";
    if (t)
        r->id = xasprintf("_nomad-task-%s-%s-%s-%s", a->id, t->name, r->name,
                          label);
    else
        r->id = xasprintf("_nomad-task-%s-group-%s-%s-%s", a->id, g->name,
                          r->name, label);
    r->provider = xstrdup(s->provider && *s->provider ? s->provider : "consul");
    r->namespace_ = xstrdup(a->namespace);
    r->job_id = xstrdup(a->job_id);
    r->alloc_id = xstrdup(a->id);
    r->group = xstrdup(a->group);
    r->task = t ? xstrdup(t->name) : NULL;
    r->enable_tag_override = s->enable_tag_override;
    r->shutdown_delay_ns = t ? t->shutdown_delay : g->shutdown_delay;
    for (size_t i = 0; i < s->tags.n; i++) {
        char *v = alloc_interpolate(s->tags.items[i], &env, n);
        strlist_add(&r->tags, v);
        free(v);
    }
    for (size_t i = 0; i < s->meta.n; i++) {
        char *v = alloc_interpolate(s->meta.items[i].value, &env, n);
        kv_set(&r->meta, s->meta.items[i].key, v);
        free(v);
    }
    resolve_address(r, a, s, n);
    if (checks) {
        struct check_fill f = {r};
        alloc_checks_each(checks, a->id, t ? t->name : NULL, s->name, add_check,
                          &f);
    }
    kv_free(&env);
}

static int by_id(const void *x, const void *y)
{
    return strcmp(((const struct svc_reg *)x)->id, ((const struct svc_reg *)y)->id);
}

void services_rebuild(struct svc_set *set, struct alloc *const *allocs,
                      size_t nallocs, const struct node *node,
                      const struct alloc_checks *checks)
{
    services_clear(set);
    for (size_t i = 0; i < nallocs; i++) {
        const struct alloc *a = allocs[i];
        const struct task_group *g = group_of(a);
        if (!g || a->stopping || !nc_streq(a->desired_status, "run") ||
            nc_streq(a->client_status, "complete") ||
            nc_streq(a->client_status, "failed"))
            continue;
        bool any = false;
        for (size_t k = 0; k < a->ntasks; k++) {
            if (!nc_streq(a->tasks[k].state, "running"))
                continue;
            any = true;
            for (size_t t = 0; t < g->ntasks; t++)
                if (strcmp(g->tasks[t].name, a->tasks[k].name) == 0)
                    for (size_t s = 0; s < g->tasks[t].nservices; s++)
                        add_service(set, a, g, &g->tasks[t],
                                    &g->tasks[t].services[s], node, checks);
        }
        for (size_t s = 0; any && s < g->nservices; s++)
            add_service(set, a, g, NULL, &g->services[s], node, checks);
    }
    if (set->n > 1)
        qsort(set->regs, set->n, sizeof(*set->regs), by_id);
}

const struct svc_reg *services_find(const struct svc_set *set, const char *id)
{
    struct svc_reg key = {.id = (char *)id};
    return set->n ? bsearch(&key, set->regs, set->n, sizeof(*set->regs), by_id)
                  : NULL;
}

/* A TTL a little over the interval: a dead agent stops the updates and
 * Consul turns the check critical soon after. */
int64_t services_ttl_ns(int64_t interval_ns)
{
    return interval_ns + 10000000000LL;
}

json_t *services_consul_payload(const struct svc_reg *r)
{
    json_t *meta = json_object();
    for (size_t i = 0; i < r->meta.n; i++)
        json_object_set_new(meta, r->meta.items[i].key,
                            json_string(r->meta.items[i].value));
    json_object_set_new(meta, "external-source", json_string("nomad"));
    json_t *checks = json_array();
    for (size_t i = 0; i < r->nchecks; i++) {
        const struct svc_check *c = &r->checks[i];
        char ttl[32];
        snprintf(ttl, sizeof(ttl), "%llds",
                 (long long)(services_ttl_ns(c->interval_ns) / 1000000000LL));
        json_array_append_new(
            checks,
            json_pack("{s:s, s:s, s:s, s:s, s:s}", "CheckID", c->id, "Name",
                      c->name, "TTL", ttl, "Status", c->status, "Notes",
                      "status pushed by the nomclient agent's own check"));
    }
    return json_pack("{s:s, s:s, s:o, s:s, s:i, s:o, s:b, s:o}", "ID", r->id,
                     "Name", r->name, "Tags", nc_strlist_json(&r->tags), "Address",
                     r->address ? r->address : "", "Port", r->port, "Meta", meta,
                     "EnableTagOverride", r->enable_tag_override, "Checks",
                     checks);
}

json_t *services_nomad_json(const struct svc_reg *r, const struct node *node)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:i}", "ID",
                     r->id, "ServiceName", r->name, "Namespace", r->namespace_,
                     "NodeID", node->id, "Datacenter",
                     node->datacenter ? node->datacenter : "dc1", "JobID",
                     r->job_id, "AllocID", r->alloc_id, "Tags",
                     nc_strlist_json(&r->tags), "Address",
                     r->address ? r->address : "", "Port", r->port);
}
