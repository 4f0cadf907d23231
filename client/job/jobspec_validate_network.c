/* jobspec_validate_network.c - a group's networks and ports, and the
 * services and checks that refer to them, checked as Nomad's structs do. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/internal.h"

#define S(x) ((x) ? (x) : "")
#define SECOND 1000000000LL

/* ---- networks ---- */

static bool valid_dns_name(const char *s)
{
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!(isalnum((unsigned char)c) || c == '-' || c == '_'))
            return false;
        if (label == 0 && c == '-')
            return false;
        if (++label > 63)
            return false;
    }
    return s[len - 1] != '-';
}

static bool valid_port_label(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-' ||
              *s == '.'))
            return false;
    return true;
}

struct static_port {
    const char *host_network;
    int value;
    const char *label;
};

static void validate_port(struct jv_ctx *v, const struct port *p,
                          bool reserved, struct static_port *statics,
                          size_t *nstatics)
{
    const char *label = S(p->label);
    if (!valid_port_label(p->label))
        jv_err(v, ".Label", "port label \"%s\" is invalid: use letters, digits, "
             "\"_\", \"-\" and \".\"", label);
    if (reserved) {
        if (p->value > 65535)
            jv_err(v, ".Value", "Port %s (%d) cannot be greater than 65535",
                 label, p->value);
        else if (p->value < 1)
            jv_err(v, ".Value", "Port %s (%d) cannot be less than 1", label,
                 p->value);
        else {
            const char *hn = p->host_network && *p->host_network
                                 ? p->host_network
                                 : "default";
            bool dup = false;
            for (size_t i = 0; i < *nstatics; i++) {
                if (statics[i].value == p->value &&
                    strcmp(statics[i].host_network, hn) == 0) {
                    jv_err(v, ".Value",
                         "Static port %d already reserved by taskgroup "
                         "network:%s",
                         p->value, statics[i].label);
                    dup = true;
                    break;
                }
            }
            if (!dup)
                statics[(*nstatics)++] =
                    (struct static_port){hn, p->value, label};
        }
    }
    if (p->to < -1)
        jv_err(v, ".To", "Port \"%s\" cannot be mapped to negative value %d",
             label, p->to);
    else if (p->to > 65535)
        jv_err(v, ".To",
             "Port \"%s\" cannot be mapped to a port (%d) greater than 65535",
             label, p->to);
}

void jv_validate_networks(struct jv_ctx *v, const struct task_group *g)
{
    if (g->nnetworks > 1)
        jv_err(v, ".Networks[1]", "only one network block is allowed per group");
    size_t total = 0;
    for (size_t n = 0; n < g->nnetworks; n++)
        total += g->networks[n].nreserved_ports + g->networks[n].ndynamic_ports;
    struct static_port *statics = xcalloc(total ? total : 1, sizeof(*statics));
    size_t nstatics = 0;
    const char **labels = xcalloc(total ? total : 1, sizeof(*labels));
    size_t nlabels = 0;
    for (size_t n = 0; n < g->nnetworks; n++) {
        const struct network *nw = &g->networks[n];
        struct jv_mark m = jv_mark(v);
        nc_buf_printf(&v->j, ".Networks[%zu]", n);
        js_seg_index(&v->h, "network", n, g->nnetworks);
        const char *mode = S(nw->mode);
        if (!JV_ONE_OF(mode, "", "host", "bridge", "none") &&
            !(nc_str_has_prefix(mode, "cni/") && mode[4]))
            jv_err(v, ".Mode",
                 "invalid network mode \"%s\": must be \"host\", \"bridge\", "
                 "\"none\" or \"cni/<name>\"",
                 mode);
        if (nw->hostname && *nw->hostname && !strstr(nw->hostname, "${") &&
            !valid_dns_name(nw->hostname))
            jv_err(v, ".Hostname", "Hostname is not a valid DNS name");
        for (int kind = 0; kind < 2; kind++) {
            const struct port *ports =
                kind == 0 ? nw->reserved_ports : nw->dynamic_ports;
            size_t np = kind == 0 ? nw->nreserved_ports : nw->ndynamic_ports;
            for (size_t i = 0; i < np; i++) {
                struct jv_mark pm = jv_mark(v);
                nc_buf_printf(&v->j, ".%s[%zu]",
                              kind == 0 ? "ReservedPorts" : "DynamicPorts", i);
                js_seg_named(&v->h, "port", S(ports[i].label));
                bool dup = false;
                for (size_t l = 0; l < nlabels; l++)
                    if (strcmp(labels[l], S(ports[i].label)) == 0)
                        dup = true;
                if (dup)
                    jv_err(v, ".Label",
                         "Port label %s already in use by taskgroup network",
                         S(ports[i].label));
                else
                    labels[nlabels++] = S(ports[i].label);
                validate_port(v, &ports[i], kind == 0, statics, &nstatics);
                jv_restore(v, pm);
            }
        }
        jv_restore(v, m);
    }
    free(labels);
    free(statics);
}

/* ---- services and checks ---- */

/* Port labels referenced by the services of one scope (a group's own
 * services, or one task's), reported together as Nomad does. */
struct port_ref {
    char *label;
    struct strlist services;
    char *where; /* JSON path of the first reference */
    char *human; /* human path of the first referencing service */
};
struct port_refs {
    struct port_ref *items;
    size_t n, cap;
};

static void ref_add(struct port_refs *r, const char *label,
                    const char *service, const char *where,
                    const char *human)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->items[i].label, label) == 0) {
            if (!strlist_contains(&r->items[i].services, service))
                strlist_add(&r->items[i].services, service);
            return;
        }
    }
    nc_grow((void **)&r->items, &r->cap, r->n + 1, sizeof(*r->items));
    struct port_ref *p = &r->items[r->n++];
    memset(p, 0, sizeof(*p));
    p->label = xstrdup(label);
    p->where = xstrdup(where);
    p->human = xstrdup(human);
    strlist_add(&p->services, service);
}

static int cmp_ref(const void *a, const void *b)
{
    return strcmp(((const struct port_ref *)a)->label,
                  ((const struct port_ref *)b)->label);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool group_has_port(const struct task_group *g, const char *label)
{
    /* Nomad looks at the first group network only. */
    if (!g->nnetworks)
        return false;
    const struct network *nw = &g->networks[0];
    for (size_t i = 0; i < nw->nreserved_ports; i++)
        if (nc_streq(nw->reserved_ports[i].label, label))
            return true;
    for (size_t i = 0; i < nw->ndynamic_ports; i++)
        if (nc_streq(nw->dynamic_ports[i].label, label))
            return true;
    return false;
}

static void refs_report(struct jv_ctx *v, struct port_refs *r,
                        const struct task_group *g)
{
    if (r->n > 1)
        qsort(r->items, r->n, sizeof(*r->items), cmp_ref);
    for (size_t i = 0; i < r->n; i++) {
        struct port_ref *p = &r->items[i];
        if (!group_has_port(g, p->label)) {
            if (p->services.n > 1)
                qsort(p->services.items, p->services.n, sizeof(char *),
                      cmp_str);
            struct nc_buf names = {0};
            for (size_t s = 0; s < p->services.n; s++)
                nc_buf_printf(&names, "%s%s", s ? ", " : "",
                              p->services.items[s]);
            struct jv_mark m = jv_mark(v);
            js_buf_truncate(&v->j, 0);
            nc_buf_puts(&v->j, p->where);
            js_buf_truncate(&v->h, 0);
            nc_buf_puts(&v->h, p->human);
            jv_err(v, NULL,
                 "port label \"%s\" referenced by services %s does not exist",
                 p->label, names.data ? names.data : "");
            jv_restore(v, m);
            nc_buf_free(&names);
        }
        free(p->label);
        free(p->where);
        free(p->human);
        strlist_free(&p->services);
    }
    free(r->items);
    r->items = NULL;
    r->n = r->cap = 0;
}

/* Service names are DNS labels (RFC 1123); ${...} parts are resolved at
 * run time, so they count as one placeholder, as Nomad does. */
static bool valid_service_name(const char *name)
{
    struct nc_buf b = {0};
    for (const char *p = name; *p;) {
        if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p, '}');
            if (end) {
                nc_buf_puts(&b, "ENV-VAR");
                p = end + 1;
                continue;
            }
        }
        nc_buf_putc(&b, *p++);
    }
    const char *s = b.data ? b.data : "";
    size_t len = strlen(s);
    bool ok = len >= 1 && len <= 63 && isalnum((unsigned char)s[0]) &&
              isalnum((unsigned char)s[len - 1]);
    for (size_t i = 0; ok && i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            ok = false;
    nc_buf_free(&b);
    return ok;
}

static bool has_sidecar(const json_t *connect)
{
    json_t *s = json_object_get(connect, "SidecarService");
    return s && !json_is_null(s);
}

static void validate_check(struct jv_ctx *v, const struct service *s,
                           const struct check *c, bool task_level,
                           struct port_refs *refs, const char *svc_human)
{
    char a[64];
    const char *type = S(c->type);
    bool nomad = nc_streq(s->provider, "nomad");
    bool type_ok = nomad ? JV_ONE_OF(type, "tcp", "http")
                         : JV_ONE_OF(type, "grpc", "tcp", "http", "script");
    if (!type_ok) {
        jv_err(v, ".Type", "invalid check type (\"%s\"), must be one of %s",
             type, nomad ? "tcp, http" : "grpc, tcp, http, script");
        return;
    }
    if (strcmp(type, "http") == 0) {
        if (!c->path || !*c->path)
            jv_err(v, ".Path", "http type must have http path");
        else if (strstr(c->path, "://"))
            jv_err(v, ".Path", "http type must have relative http path");
        if (!JV_ONE_OF(c->protocol, "", "http", "https"))
            jv_err(v, ".Protocol",
                 "invalid protocol \"%s\": must be \"http\" or \"https\"",
                 S(c->protocol));
    }
    if (strcmp(type, "script") == 0 && (!c->command || !*c->command))
        jv_err(v, ".Command", "script type must have a valid script path");
    if (c->interval == 0)
        jv_err(v, ".Interval", "missing required value interval. Interval "
             "cannot be less than 1s");
    else if (c->interval < SECOND)
        jv_err(v, ".Interval", "minimum check interval is 1s, got %s",
             jv_dur(c->interval, a, sizeof(a)));
    if (c->timeout == 0)
        jv_err(v, ".Timeout", "missing required value timeout. Timeout cannot "
             "be less than 1s");
    else if (c->timeout < SECOND)
        jv_err(v, ".Timeout", "minimum check timeout is 1s, got %s",
             jv_dur(c->timeout, a, sizeof(a)));
    if (!JV_ONE_OF(c->initial_status, "", "passing", "warning", "critical"))
        jv_err(v, ".InitialStatus",
             "invalid initial check state (%s), must be one of \"passing\", "
             "\"warning\", \"critical\" or empty",
             S(c->initial_status));
    if (nc_streq(c->address_mode, "auto"))
        jv_err(v, ".AddressMode",
             "invalid address_mode \"auto\" - auto only valid for services");
    else if (!JV_ONE_OF(c->address_mode, "", "host", "driver", "alloc",
                     "alloc_ipv6"))
        jv_err(v, ".AddressMode", "invalid address_mode \"%s\"",
             S(c->address_mode));
    else if (task_level && JV_ONE_OF(c->address_mode, "alloc", "alloc_ipv6"))
        jv_err(v, ".AddressMode",
             "check cannot use address_mode=\"%s\", only checks defined in a "
             "\"group\" service block can use this mode",
             c->address_mode);
    else if (!task_level && nc_streq(c->address_mode, "driver"))
        jv_err(v, ".AddressMode",
             "check cannot use address_mode=\"driver\", only checks defined "
             "in a \"task\" service block can use this mode");
    if (!JV_ONE_OF(c->on_update, "", "require_healthy", "ignore_warnings",
                "ignore"))
        jv_err(v, ".OnUpdate",
             "on_update must be \"require_healthy\", \"ignore_warnings\", or "
             "\"ignore\"; got \"%s\"",
             S(c->on_update));
    if (c->check_restart) {
        if (nc_streq(c->on_update, "ignore"))
            jv_err(v, ".OnUpdate", "on_update value \"ignore\" is not "
                 "compatible with check_restart");
        else if (nc_streq(c->on_update, "ignore_warnings") &&
                 !c->check_restart->ignore_warnings)
            jv_err(v, ".OnUpdate",
                 "on_update value \"ignore_warnings\" not supported with "
                 "check_restart ignore_warnings value \"false\"");
        if (c->check_restart->limit < 0)
            jv_err(v, ".CheckRestart.Limit",
                 "limit must be greater than or equal to 0 but found %d",
                 c->check_restart->limit);
        if (c->check_restart->grace < 0)
            jv_err(v, ".CheckRestart.Grace",
                 "grace period must be greater than or equal to 0 but found "
                 "%s",
                 jv_dur(c->check_restart->grace, a, sizeof(a)));
    }
    static const struct {
        const char *name, *key;
        size_t off;
    } counters[] = {
        {"success_before_passing", ".SuccessBeforePassing",
         offsetof(struct check, success_before_passing)},
        {"failures_before_critical", ".FailuresBeforeCritical",
         offsetof(struct check, failures_before_critical)},
        {"failures_before_warning", ".FailuresBeforeWarning",
         offsetof(struct check, failures_before_warning)},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(counters); i++) {
        int n = *(const int *)((const char *)c + counters[i].off);
        if (n < 0)
            jv_err(v, counters[i].key, "%s must be non-negative",
                 counters[i].name);
        else if (n > 0 && nomad)
            jv_err(v, counters[i].key,
                 "%s may only be set for Consul service checks",
                 counters[i].name);
        else if (n > 0 && !JV_ONE_OF(type, "tcp", "http", "grpc"))
            jv_err(v, counters[i].key,
                 "%s not supported for check of type \"%s\"", counters[i].name,
                 type);
    }
    if (c->expose && !JV_ONE_OF(type, "http", "grpc"))
        jv_err(v, ".Expose", "expose may only be set on HTTP or gRPC checks");
    if (strcmp(type, "tcp") == 0 && has_sidecar(s->connect))
        jv_err(v, ".Type",
             "tcp checks are not valid for Connect enabled services");
    if (!JV_ONE_OF(type, "http", "tcp", "grpc"))
        return; /* script checks need no port */
    const char *port = c->port_label && *c->port_label ? c->port_label
                                                       : S(s->port_label);
    if (!*port) {
        jv_err(v, ".PortLabel",
             "check requires a port but neither check nor service \"%s\" "
             "have a port",
             S(s->name));
        return;
    }
    if (jv_is_numeric(port)) {
        long n = strtol(port, NULL, 10);
        if (!nc_streq(c->address_mode, "driver"))
            jv_err(v, ".PortLabel",
                 "check cannot use a numeric port %ld without setting "
                 "address_mode=\"driver\"",
                 n);
        else if (n <= 0)
            jv_err(v, ".PortLabel", "check has invalid numeric port %ld", n);
        return;
    }
    struct nc_buf where = {0};
    nc_buf_printf(&where, "%s%s", v->j.data,
                  c->port_label && *c->port_label ? ".PortLabel" : "");
    ref_add(refs, port, S(s->name), where.data, svc_human);
    nc_buf_free(&where);
}

/* A group service's check names the task it runs in (script) or is
 * restarted with; it must be one of the group's. A group script check
 * without one would never run anywhere: refused rather than ignored. */
static void validate_check_task(struct jv_ctx *v, const struct check *c,
                                bool task_level, const struct task_group *g)
{
    if (task_level)
        return;
    const char *tn = S(c->task_name);
    if (!*tn) {
        if (nc_streq(c->type, "script"))
            jv_err(v, ".TaskName",
                   "script check in a group service must set task to the "
                   "task it runs in");
        return;
    }
    for (size_t i = 0; g && i < g->ntasks; i++)
        if (nc_streq(g->tasks[i].name, tn))
            return;
    jv_err(v, ".TaskName", "Check %s invalid: refers to non-existent task %s",
           S(c->name), tn);
}

void jv_validate_services(struct jv_ctx *v, const struct service *svc,
                              size_t n, const struct task *task,
                              const struct task_group *g)
{
    struct port_refs refs = {0};
    bool task_level = task != NULL;
    for (size_t i = 0; i < n; i++) {
        const struct service *s = &svc[i];
        struct jv_mark m = jv_mark(v);
        nc_buf_printf(&v->j, ".Services[%zu]", i);
        if (s->name && *s->name)
            js_seg_named(&v->h, "service", s->name);
        else
            js_seg_index(&v->h, "service", i, n);
        if (!valid_service_name(S(s->name)))
            jv_err(v, ".Name",
                 "Service name must be valid per RFC 1123 and can contain "
                 "only alphanumeric characters or dashes and must be no "
                 "longer than 63 characters: \"%s\"",
                 S(s->name));
        const char *am = S(s->address_mode);
        if (!JV_ONE_OF(am, "", "auto", "host", "driver", "alloc", "alloc_ipv6"))
            jv_err(v, ".AddressMode",
                 "Service address_mode must be \"auto\", \"host\", or "
                 "\"driver\"; not \"%s\"",
                 am);
        else if (*am && strcmp(am, "auto") != 0 && s->address &&
                 *s->address)
            jv_err(v, ".Address",
                 "Service address_mode must be \"auto\" if address is set");
        else if (!task_level && strcmp(am, "driver") == 0)
            jv_err(v, ".AddressMode",
                 "service \"%s\" cannot use address_mode=\"driver\", only "
                 "services defined in a \"task\" block can use this mode",
                 S(s->name));
        else if (task_level && JV_ONE_OF(am, "alloc", "alloc_ipv6"))
            jv_err(v, ".AddressMode",
                 "service \"%s\" cannot use address_mode=\"%s\", only "
                 "services defined in a \"group\" block can use this mode",
                 S(s->name), am);
        if (!JV_ONE_OF(s->on_update, "", "require_healthy", "ignore_warnings",
                    "ignore"))
            jv_err(v, ".OnUpdate",
                 "Service on_update must be \"require_healthy\", "
                 "\"ignore_warnings\", or \"ignore\"; not \"%s\"",
                 S(s->on_update));
        if (!JV_ONE_OF(s->provider, "consul", "nomad"))
            jv_err(v, ".Provider",
                 "Service provider must be \"consul\", or \"nomad\"; not "
                 "\"%s\"",
                 S(s->provider));
        if (s->connect && task_level)
            jv_err(v, ".Connect",
                 "service \"%s\" cannot have \"connect\" block, only services "
                 "defined in a \"group\" block can",
                 S(s->name));
        else if (s->connect && nc_streq(s->provider, "nomad"))
            jv_err(v, ".Connect",
                 "Service with provider nomad cannot include Connect blocks");
        if (task_level && s->task_name && *s->task_name &&
            !nc_streq(s->task_name, task->name))
            jv_err(v, ".TaskName",
                 "Service %s is invalid: may only specify task the service "
                 "belongs to, got \"%s\"",
                 S(s->name), s->task_name);
        if (task_level) {
            for (size_t o = 0; o < i; o++)
                if (nc_streq(S(svc[o].name), S(s->name)) &&
                    nc_streq(S(svc[o].port_label), S(s->port_label))) {
                    jv_err(v, NULL, "service \"%s\" is duplicate", S(s->name));
                    break;
                }
        }
        const char *port = S(s->port_label);
        if (*port && !(jv_is_numeric(port) && strcmp(am, "driver") == 0)) {
            struct nc_buf where = {0};
            nc_buf_printf(&where, "%s.PortLabel", v->j.data);
            ref_add(&refs, port, S(s->name), where.data, v->h.data);
            nc_buf_free(&where);
        }
        char *svc_human = xstrdup(v->h.data);
        for (size_t c = 0; c < s->nchecks; c++) {
            const struct check *ck = &s->checks[c];
            struct jv_mark cm = jv_mark(v);
            nc_buf_printf(&v->j, ".Checks[%zu]", c);
            if (ck->name && *ck->name)
                js_seg_named(&v->h, "check", ck->name);
            else
                js_seg_index(&v->h, "check", c, s->nchecks);
            if (ck->name && *ck->name) {
                for (size_t o = 0; o < c; o++)
                    if (nc_streq(s->checks[o].name, ck->name)) {
                        jv_err(v, ".Name", "check \"%s\" is duplicate",
                             ck->name);
                        break;
                    }
            }
            validate_check(v, s, ck, task_level, &refs, svc_human);
            validate_check_task(v, ck, task_level, g);
            jv_restore(v, cm);
        }
        free(svc_human);
        jv_restore(v, m);
    }
    refs_report(v, &refs, g);
}

