/* jobspec_validate.c - checks a decoded job the way Nomad's
 * structs.Job.Validate does, with Nomad's wording where it has one.
 *
 * Every error is collected (Nomad joins them in a multierror) and names
 * its place twice: a human path (`group "api" > task "api"`) printed in
 * the message, and a JSON path used to find the file:line:col when the job
 * came from HCL. Models built by hand may hold NULL strings; they read as
 * empty. */
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/internal.h"

#define S(x) ((x) ? (x) : "")
#define SECOND 1000000000LL

struct vctx {
    struct js_errors e;
    struct nc_buf h; /* human path */
    struct nc_buf j; /* JSON path */
    const struct job *job;
};

struct mark {
    size_t h, j;
};

static struct mark vmark(const struct vctx *v)
{
    return (struct mark){v->h.len, v->j.len};
}

static void trunc_buf(struct nc_buf *b, size_t n)
{
    b->len = n;
    if (b->data)
        b->data[n] = '\0';
}

static void vrestore(struct vctx *v, struct mark m)
{
    trunc_buf(&v->h, m.h);
    trunc_buf(&v->j, m.j);
}

/* Reports an error at the current place; jsuffix narrows the position to
 * a field (".PortLabel"). */
static void verr(struct vctx *v, const char *jsuffix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void verr(struct vctx *v, const char *jsuffix, const char *fmt, ...)
{
    struct nc_buf msg = {0}, loc = {0};
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    nc_buf_puts(&loc, v->j.data ? v->j.data : "Job");
    if (jsuffix)
        nc_buf_puts(&loc, jsuffix);
    js_errors_add(&v->e, loc.data, v->h.data, "%s", msg.data ? msg.data : "");
    nc_buf_free(&msg);
    nc_buf_free(&loc);
}

static const char *dur(int64_t ns, char *buf, size_t len)
{
    nc_format_duration(ns, buf, len);
    return buf;
}

static bool one_of(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(S(s), list[i]) == 0)
            return true;
    return false;
}

#define ONE_OF(s, ...)                                                         \
    one_of((s), (const char *const[]){__VA_ARGS__},                            \
           sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static bool is_numeric(const char *s)
{
    if (!s || !*s)
        return false;
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    if (!*p)
        return false;
    for (; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    return true;
}

/* ---- constraints, affinities, spreads ---- */

/* hashicorp/go-version constraints: "op version" separated by commas. */
static bool version_constraint_ok(const char *s)
{
    if (!s || !*s)
        return false;
    const char *p = s;
    for (;;) {
        while (*p == ' ')
            p++;
        static const char *const ops[] = {">=", "<=", "!=", "~>", "=",
                                          ">",  "<"};
        for (size_t i = 0; i < NC_ARRAY_LEN(ops); i++) {
            size_t n = strlen(ops[i]);
            if (strncmp(p, ops[i], n) == 0) {
                p += n;
                break;
            }
        }
        while (*p == ' ')
            p++;
        if (*p == 'v')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isalnum((unsigned char)*p) || *p == '.' || *p == '-' ||
               *p == '+')
            p++;
        while (*p == ' ')
            p++;
        if (!*p)
            return true;
        if (*p != ',')
            return false;
        p++;
    }
}

static void check_attribute(struct vctx *v, const char *target)
{
    static const char *const exact[] = {"${node.unique.id}", "${node.datacenter}",
                                        "${node.unique.name}", "${node.class}",
                                        "${node.pool}"};
    static const char *const prefixes[] = {"${attr.", "${device.", "${meta."};
    if (target[0] != '$')
        return;
    if (!nc_str_has_prefix(target, "${")) {
        verr(v, ".LTarget", "attribute \"%s\" is missing an opening brace",
             target);
        return;
    }
    if (!nc_str_has_suffix(target, "}")) {
        verr(v, ".LTarget", "attribute \"%s\" is missing a closing brace",
             target);
        return;
    }
    for (size_t i = 0; i < NC_ARRAY_LEN(exact); i++)
        if (strcmp(target, exact[i]) == 0)
            return;
    for (size_t i = 0; i < NC_ARRAY_LEN(prefixes); i++)
        if (nc_str_has_prefix(target, prefixes[i]))
            return;
    verr(v, ".LTarget", "unsupported attribute \"%s\"", target);
}

static void check_regexp(struct vctx *v, const char *re)
{
    regex_t rx;
    int rc = regcomp(&rx, S(re), REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char buf[256];
        regerror(rc, &rx, buf, sizeof(buf));
        verr(v, ".RTarget", "Regular expression failed to compile: %s", buf);
        return;
    }
    regfree(&rx);
}

static void validate_constraint(struct vctx *v, const struct constraint *c,
                                bool task_level)
{
    const char *op = S(c->operand), *rt = S(c->rtarget);
    bool need_ltarget = true;
    if (!*op) {
        verr(v, ".Operand", "Missing constraint operand");
    } else if (strcmp(op, "distinct_hosts") == 0) {
        need_ltarget = false;
    } else if (ONE_OF(op, "set_contains", "set_contains_all",
                      "set_contains_any")) {
        if (!*rt)
            verr(v, ".RTarget", "Set contains constraint requires an RTarget");
    } else if (strcmp(op, "regexp") == 0) {
        check_regexp(v, rt);
    } else if (ONE_OF(op, "version", "semver")) {
        if (!version_constraint_ok(rt))
            verr(v, ".RTarget", "%s constraint is invalid: Malformed "
                 "constraint: %s", strcmp(op, "version") == 0 ? "Version"
                                                                 : "Semver",
                 rt);
    } else if (strcmp(op, "distinct_property") == 0) {
        if (*rt) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(rt, &end, 10);
            if (*end || errno || rt[0] == '-')
                verr(v, ".RTarget",
                     "Failed to convert RTarget \"%s\" to uint64", rt);
            else if (n < 1)
                verr(v, ".RTarget",
                     "Distinct Property must have an allowed count of 1 or "
                     "greater: %llu < 1",
                     n);
        }
    } else if (ONE_OF(op, "is_set", "is_not_set")) {
        if (*rt)
            verr(v, ".RTarget", "Operator \"%s\" does not support an RTarget",
                 op);
    } else if (ONE_OF(op, "=", "==", "is", "!=", "not", "<", "<=", ">",
                      ">=")) {
        if (!*rt)
            verr(v, ".RTarget", "Operator \"%s\" requires an RTarget", op);
    } else {
        verr(v, ".Operand", "Unknown constraint type \"%s\"", op);
    }
    if (need_ltarget) {
        if (!c->ltarget || !*c->ltarget)
            verr(v, ".LTarget",
                 "no attribute provided but is required by operator");
        else
            check_attribute(v, c->ltarget);
    }
    if (task_level && ONE_OF(op, "distinct_hosts", "distinct_property"))
        verr(v, ".Operand", "operand %s is not allowed at task level", op);
}

static void validate_constraints(struct vctx *v, const struct constraint *c,
                                 size_t n, bool task_level)
{
    for (size_t i = 0; i < n; i++) {
        struct mark m = vmark(v);
        nc_buf_printf(&v->j, ".Constraints[%zu]", i);
        js_seg_index(&v->h, "constraint", i, n);
        validate_constraint(v, &c[i], task_level);
        vrestore(v, m);
    }
}

static void validate_affinities(struct vctx *v, const struct affinity *a,
                                size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct mark m = vmark(v);
        nc_buf_printf(&v->j, ".Affinities[%zu]", i);
        js_seg_index(&v->h, "affinity", i, n);
        const char *op = S(a[i].operand), *rt = S(a[i].rtarget);
        if (!*op)
            verr(v, ".Operand", "Missing affinity operand");
        else if (ONE_OF(op, "set_contains", "set_contains_all",
                        "set_contains_any")) {
            if (!*rt)
                verr(v, ".RTarget",
                     "Set contains operators require an RTarget");
        } else if (strcmp(op, "regexp") == 0) {
            check_regexp(v, rt);
        } else if (ONE_OF(op, "version", "semver")) {
            if (!version_constraint_ok(rt))
                verr(v, ".RTarget", "%s affinity is invalid: Malformed "
                     "constraint: %s", strcmp(op, "version") == 0 ? "Version"
                                                                     : "Semver",
                     rt);
        } else if (ONE_OF(op, "=", "==", "is", "!=", "not", "<", "<=", ">",
                          ">=")) {
            if (!*rt)
                verr(v, ".RTarget", "Operator \"%s\" requires an RTarget", op);
        } else {
            verr(v, ".Operand", "Unknown affinity operator \"%s\"", op);
        }
        if (!a[i].ltarget || !*a[i].ltarget)
            verr(v, ".LTarget", "No LTarget provided but is required");
        if (a[i].weight == 0)
            verr(v, ".Weight", "Affinity weight cannot be zero");
        if (a[i].weight > 100 || a[i].weight < -100)
            verr(v, ".Weight",
                 "Affinity weight must be within the range [-100,100]");
        vrestore(v, m);
    }
}

static void validate_spreads(struct vctx *v, const struct spread *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct mark m = vmark(v);
        nc_buf_printf(&v->j, ".Spreads[%zu]", i);
        js_seg_index(&v->h, "spread", i, n);
        if (!s[i].attribute || !*s[i].attribute)
            verr(v, ".Attribute", "Missing spread attribute");
        if (s[i].weight <= 0 || s[i].weight > 100)
            verr(v, ".Weight",
                 "Spread block must have a positive weight from 0 to 100");
        long sum = 0;
        for (size_t t = 0; t < s[i].ntargets; t++) {
            const struct spread_target *st = &s[i].targets[t];
            for (size_t u = 0; u < t; u++)
                if (nc_streq(S(s[i].targets[u].value), S(st->value))) {
                    verr(v, NULL, "Spread target value \"%s\" already defined",
                         S(st->value));
                    break;
                }
            if (st->percent < 0 || st->percent > 100)
                verr(v, NULL,
                     "Spread target percentage for value \"%s\" must be "
                     "between 0 and 100",
                     S(st->value));
            sum += st->percent;
        }
        if (sum > 100)
            verr(v, NULL,
                 "Sum of spread target percentages must not be greater than "
                 "100%%; got %ld%%",
                 sum);
        vrestore(v, m);
    }
}

/* ---- policies ---- */

static void validate_restart(struct vctx *v, const struct restart_policy *r)
{
    char a[64], b[64];
    if (!ONE_OF(r->mode, "delay", "fail"))
        verr(v, ".Mode", "Unsupported restart mode: \"%s\"", S(r->mode));
    if (r->attempts == 0 && !nc_streq(r->mode, "fail"))
        verr(v, ".Attempts", "Restart policy \"%s\" with %d attempts is "
             "ambiguous", S(r->mode), r->attempts);
    if (r->attempts < 0)
        verr(v, ".Attempts", "attempts must be >= 0; got %d", r->attempts);
    if (r->interval < 5 * SECOND)
        verr(v, ".Interval", "Interval can not be less than 5s (got %s)",
             dur(r->interval, a, sizeof(a)));
    if (r->attempts > 0 && r->delay > 0 && r->delay > r->interval / r->attempts)
        verr(v, NULL,
             "Nomad can't restart the TaskGroup %d times in an interval of %s "
             "with a delay of %s",
             r->attempts, dur(r->interval, a, sizeof(a)),
             dur(r->delay, b, sizeof(b)));
}

static void validate_reschedule(struct vctx *v,
                                const struct reschedule_policy *r)
{
    char a[64], b[64];
    if (!(r->attempts > 0 || r->unlimited))
        return; /* disabled: Nomad ignores the rest */
    if (r->attempts > 0) {
        if (r->interval <= 0)
            verr(v, ".Interval",
                 "Interval must be a non zero value if Attempts > 0");
        if (r->unlimited)
            verr(v, ".Unlimited",
                 "If Attempts >0, Unlimited cannot also be set to true");
    }
    if (r->delay < 5 * SECOND)
        verr(v, ".Delay", "Delay cannot be less than 5s (got %s)",
             dur(r->delay, a, sizeof(a)));
    if (!ONE_OF(r->delay_function, "constant", "exponential", "fibonacci"))
        verr(v, ".DelayFunction",
             "Invalid delay function \"%s\", must be one of [\"constant\" "
             "\"exponential\" \"fibonacci\"]",
             S(r->delay_function));
    else if (!nc_streq(r->delay_function, "constant")) {
        if (r->max_delay < 5 * SECOND)
            verr(v, ".MaxDelay", "Max Delay cannot be less than 5s (got %s)",
                 dur(r->max_delay, a, sizeof(a)));
        else if (r->max_delay < r->delay)
            verr(v, ".MaxDelay", "Max Delay cannot be less than Delay %s "
                 "(got %s)", dur(r->delay, a, sizeof(a)),
                 dur(r->max_delay, b, sizeof(b)));
    }
    if (!r->unlimited && r->interval < 15 * SECOND)
        verr(v, ".Interval", "Interval cannot be less than 15s (got %s)",
             dur(r->interval, a, sizeof(a)));
}

static void validate_update(struct vctx *v, const struct update_strategy *u)
{
    char a[64], b[64];
    if (!ONE_OF(u->health_check, "checks", "task_states", "manual"))
        verr(v, ".HealthCheck", "Invalid health check given: \"%s\"",
             S(u->health_check));
    if (u->max_parallel < 0)
        verr(v, ".MaxParallel",
             "Max parallel can not be less than zero: %d < 0",
             u->max_parallel);
    if (u->canary < 0)
        verr(v, ".Canary", "Canary count can not be less than zero: %d < 0",
             u->canary);
    if (u->canary == 0 && u->auto_promote)
        verr(v, ".AutoPromote",
             "Auto Promote requires a Canary count greater than zero");
    if (u->min_healthy_time < 0)
        verr(v, ".MinHealthyTime",
             "Minimum healthy time may not be less than zero: %s",
             dur(u->min_healthy_time, a, sizeof(a)));
    if (u->healthy_deadline <= 0)
        verr(v, ".HealthyDeadline",
             "Healthy deadline must be greater than zero: %s",
             dur(u->healthy_deadline, a, sizeof(a)));
    if (u->progress_deadline < 0)
        verr(v, ".ProgressDeadline",
             "Progress deadline must be zero or greater: %s",
             dur(u->progress_deadline, a, sizeof(a)));
    if (u->min_healthy_time >= u->healthy_deadline)
        verr(v, ".MinHealthyTime",
             "Minimum healthy time must be less than healthy deadline: %s > "
             "%s",
             dur(u->min_healthy_time, a, sizeof(a)),
             dur(u->healthy_deadline, b, sizeof(b)));
    if (u->progress_deadline != 0 &&
        u->healthy_deadline >= u->progress_deadline)
        verr(v, ".HealthyDeadline",
             "Healthy deadline must be less than progress deadline: %s > %s",
             dur(u->healthy_deadline, a, sizeof(a)),
             dur(u->progress_deadline, b, sizeof(b)));
    if (u->stagger <= 0)
        verr(v, ".Stagger", "Stagger must be greater than zero: %s",
             dur(u->stagger, a, sizeof(a)));
}

static void validate_migrate(struct vctx *v, const struct migrate_strategy *m)
{
    char a[64];
    if (m->max_parallel < 0)
        verr(v, ".MaxParallel", "MaxParallel must be >= 0 but found %d",
             m->max_parallel);
    if (!m->health_check || !*m->health_check) {
        if (m->max_parallel > 0)
            verr(v, ".HealthCheck", "Missing HealthCheck");
    } else if (!ONE_OF(m->health_check, "checks", "task_states")) {
        verr(v, ".HealthCheck", "Invalid HealthCheck: \"%s\"",
             m->health_check);
    }
    if (m->min_healthy_time < 0)
        verr(v, ".MinHealthyTime", "MinHealthyTime is %s and must be >= 0",
             dur(m->min_healthy_time, a, sizeof(a)));
    if (m->healthy_deadline < 0)
        verr(v, ".HealthyDeadline", "HealthyDeadline is %s and must be >= 0",
             dur(m->healthy_deadline, a, sizeof(a)));
    if (m->min_healthy_time > m->healthy_deadline)
        verr(v, NULL, "MinHealthyTime must be less than HealthyDeadline");
}

static void validate_scaling(struct vctx *v, const struct scaling_policy *p,
                             const struct task_group *g)
{
    if (g && !nc_streq(p->type, "horizontal"))
        verr(v, ".Type", "group scaling policy type must be \"horizontal\"; "
             "got \"%s\"", S(p->type));
    if (!g && !ONE_OF(p->type, "horizontal", "vertical_cpu", "vertical_mem"))
        verr(v, ".Type", "invalid scaling policy type \"%s\"", S(p->type));
    if (p->max < 0)
        verr(v, ".Max", "maximum count must be specified and non-negative");
    else if (p->max < p->min)
        verr(v, ".Max", "maximum count must not be less than minimum count");
    if (p->min < 0)
        verr(v, ".Min", "minimum count must be specified and non-negative");
    if (g && p->max >= 0 && p->max < g->count)
        verr(v, ".Max", "task group count must not be greater than maximum "
             "count in scaling policy");
    if (g && g->count < p->min)
        verr(v, ".Min", "task group count must not be less than minimum "
             "count in scaling policy");
}

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

static void validate_port(struct vctx *v, const struct port *p,
                          bool reserved, struct static_port *statics,
                          size_t *nstatics)
{
    const char *label = S(p->label);
    if (!valid_port_label(p->label))
        verr(v, ".Label", "port label \"%s\" is invalid: use letters, digits, "
             "\"_\", \"-\" and \".\"", label);
    if (reserved) {
        if (p->value > 65535)
            verr(v, ".Value", "Port %s (%d) cannot be greater than 65535",
                 label, p->value);
        else if (p->value < 1)
            verr(v, ".Value", "Port %s (%d) cannot be less than 1", label,
                 p->value);
        else {
            const char *hn = p->host_network && *p->host_network
                                 ? p->host_network
                                 : "default";
            bool dup = false;
            for (size_t i = 0; i < *nstatics; i++) {
                if (statics[i].value == p->value &&
                    strcmp(statics[i].host_network, hn) == 0) {
                    verr(v, ".Value",
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
        verr(v, ".To", "Port \"%s\" cannot be mapped to negative value %d",
             label, p->to);
    else if (p->to > 65535)
        verr(v, ".To",
             "Port \"%s\" cannot be mapped to a port (%d) greater than 65535",
             label, p->to);
}

static void validate_networks(struct vctx *v, const struct task_group *g)
{
    if (g->nnetworks > 1)
        verr(v, ".Networks[1]", "only one network block is allowed per group");
    size_t total = 0;
    for (size_t n = 0; n < g->nnetworks; n++)
        total += g->networks[n].nreserved_ports + g->networks[n].ndynamic_ports;
    struct static_port *statics = xcalloc(total ? total : 1, sizeof(*statics));
    size_t nstatics = 0;
    const char **labels = xcalloc(total ? total : 1, sizeof(*labels));
    size_t nlabels = 0;
    for (size_t n = 0; n < g->nnetworks; n++) {
        const struct network *nw = &g->networks[n];
        struct mark m = vmark(v);
        nc_buf_printf(&v->j, ".Networks[%zu]", n);
        js_seg_index(&v->h, "network", n, g->nnetworks);
        const char *mode = S(nw->mode);
        if (!ONE_OF(mode, "", "host", "bridge", "none") &&
            !(nc_str_has_prefix(mode, "cni/") && mode[4]))
            verr(v, ".Mode",
                 "invalid network mode \"%s\": must be \"host\", \"bridge\", "
                 "\"none\" or \"cni/<name>\"",
                 mode);
        if (nw->hostname && *nw->hostname && !strstr(nw->hostname, "${") &&
            !valid_dns_name(nw->hostname))
            verr(v, ".Hostname", "Hostname is not a valid DNS name");
        for (int kind = 0; kind < 2; kind++) {
            const struct port *ports =
                kind == 0 ? nw->reserved_ports : nw->dynamic_ports;
            size_t np = kind == 0 ? nw->nreserved_ports : nw->ndynamic_ports;
            for (size_t i = 0; i < np; i++) {
                struct mark pm = vmark(v);
                nc_buf_printf(&v->j, ".%s[%zu]",
                              kind == 0 ? "ReservedPorts" : "DynamicPorts", i);
                js_seg_named(&v->h, "port", S(ports[i].label));
                bool dup = false;
                for (size_t l = 0; l < nlabels; l++)
                    if (strcmp(labels[l], S(ports[i].label)) == 0)
                        dup = true;
                if (dup)
                    verr(v, ".Label",
                         "Port label %s already in use by taskgroup network",
                         S(ports[i].label));
                else
                    labels[nlabels++] = S(ports[i].label);
                validate_port(v, &ports[i], kind == 0, statics, &nstatics);
                vrestore(v, pm);
            }
        }
        vrestore(v, m);
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

static void refs_report(struct vctx *v, struct port_refs *r,
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
            struct mark m = vmark(v);
            trunc_buf(&v->j, 0);
            nc_buf_puts(&v->j, p->where);
            trunc_buf(&v->h, 0);
            nc_buf_puts(&v->h, p->human);
            verr(v, NULL,
                 "port label \"%s\" referenced by services %s does not exist",
                 p->label, names.data ? names.data : "");
            vrestore(v, m);
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

static void validate_check(struct vctx *v, const struct service *s,
                           const struct check *c, bool task_level,
                           struct port_refs *refs, const char *svc_human)
{
    char a[64];
    const char *type = S(c->type);
    bool nomad = nc_streq(s->provider, "nomad");
    bool type_ok = nomad ? ONE_OF(type, "tcp", "http")
                         : ONE_OF(type, "grpc", "tcp", "http", "script");
    if (!type_ok) {
        verr(v, ".Type", "invalid check type (\"%s\"), must be one of %s",
             type, nomad ? "tcp, http" : "grpc, tcp, http, script");
        return;
    }
    if (strcmp(type, "http") == 0) {
        if (!c->path || !*c->path)
            verr(v, ".Path", "http type must have http path");
        else if (strstr(c->path, "://"))
            verr(v, ".Path", "http type must have relative http path");
        if (!ONE_OF(c->protocol, "", "http", "https"))
            verr(v, ".Protocol",
                 "invalid protocol \"%s\": must be \"http\" or \"https\"",
                 S(c->protocol));
    }
    if (strcmp(type, "script") == 0 && (!c->command || !*c->command))
        verr(v, ".Command", "script type must have a valid script path");
    if (c->interval == 0)
        verr(v, ".Interval", "missing required value interval. Interval "
             "cannot be less than 1s");
    else if (c->interval < SECOND)
        verr(v, ".Interval", "minimum check interval is 1s, got %s",
             dur(c->interval, a, sizeof(a)));
    if (c->timeout == 0)
        verr(v, ".Timeout", "missing required value timeout. Timeout cannot "
             "be less than 1s");
    else if (c->timeout < SECOND)
        verr(v, ".Timeout", "minimum check timeout is 1s, got %s",
             dur(c->timeout, a, sizeof(a)));
    if (!ONE_OF(c->initial_status, "", "passing", "warning", "critical"))
        verr(v, ".InitialStatus",
             "invalid initial check state (%s), must be one of \"passing\", "
             "\"warning\", \"critical\" or empty",
             S(c->initial_status));
    if (nc_streq(c->address_mode, "auto"))
        verr(v, ".AddressMode",
             "invalid address_mode \"auto\" - auto only valid for services");
    else if (!ONE_OF(c->address_mode, "", "host", "driver", "alloc",
                     "alloc_ipv6"))
        verr(v, ".AddressMode", "invalid address_mode \"%s\"",
             S(c->address_mode));
    else if (task_level && ONE_OF(c->address_mode, "alloc", "alloc_ipv6"))
        verr(v, ".AddressMode",
             "check cannot use address_mode=\"%s\", only checks defined in a "
             "\"group\" service block can use this mode",
             c->address_mode);
    else if (!task_level && nc_streq(c->address_mode, "driver"))
        verr(v, ".AddressMode",
             "check cannot use address_mode=\"driver\", only checks defined "
             "in a \"task\" service block can use this mode");
    if (!ONE_OF(c->on_update, "", "require_healthy", "ignore_warnings",
                "ignore"))
        verr(v, ".OnUpdate",
             "on_update must be \"require_healthy\", \"ignore_warnings\", or "
             "\"ignore\"; got \"%s\"",
             S(c->on_update));
    if (c->check_restart) {
        if (nc_streq(c->on_update, "ignore"))
            verr(v, ".OnUpdate", "on_update value \"ignore\" is not "
                 "compatible with check_restart");
        else if (nc_streq(c->on_update, "ignore_warnings") &&
                 !c->check_restart->ignore_warnings)
            verr(v, ".OnUpdate",
                 "on_update value \"ignore_warnings\" not supported with "
                 "check_restart ignore_warnings value \"false\"");
        if (c->check_restart->limit < 0)
            verr(v, ".CheckRestart.Limit",
                 "limit must be greater than or equal to 0 but found %d",
                 c->check_restart->limit);
        if (c->check_restart->grace < 0)
            verr(v, ".CheckRestart.Grace",
                 "grace period must be greater than or equal to 0 but found "
                 "%s",
                 dur(c->check_restart->grace, a, sizeof(a)));
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
            verr(v, counters[i].key, "%s must be non-negative",
                 counters[i].name);
        else if (n > 0 && nomad)
            verr(v, counters[i].key,
                 "%s may only be set for Consul service checks",
                 counters[i].name);
        else if (n > 0 && !ONE_OF(type, "tcp", "http", "grpc"))
            verr(v, counters[i].key,
                 "%s not supported for check of type \"%s\"", counters[i].name,
                 type);
    }
    if (c->expose && !ONE_OF(type, "http", "grpc"))
        verr(v, ".Expose", "expose may only be set on HTTP or gRPC checks");
    if (strcmp(type, "tcp") == 0 && has_sidecar(s->connect))
        verr(v, ".Type",
             "tcp checks are not valid for Connect enabled services");
    if (!ONE_OF(type, "http", "tcp", "grpc"))
        return; /* script checks need no port */
    const char *port = c->port_label && *c->port_label ? c->port_label
                                                       : S(s->port_label);
    if (!*port) {
        verr(v, ".PortLabel",
             "check requires a port but neither check nor service \"%s\" "
             "have a port",
             S(s->name));
        return;
    }
    if (is_numeric(port)) {
        long n = strtol(port, NULL, 10);
        if (!nc_streq(c->address_mode, "driver"))
            verr(v, ".PortLabel",
                 "check cannot use a numeric port %ld without setting "
                 "address_mode=\"driver\"",
                 n);
        else if (n <= 0)
            verr(v, ".PortLabel", "check has invalid numeric port %ld", n);
        return;
    }
    struct nc_buf where = {0};
    nc_buf_printf(&where, "%s%s", v->j.data,
                  c->port_label && *c->port_label ? ".PortLabel" : "");
    ref_add(refs, port, S(s->name), where.data, svc_human);
    nc_buf_free(&where);
}

static void validate_services(struct vctx *v, const struct service *svc,
                              size_t n, const struct task *task,
                              const struct task_group *g)
{
    struct port_refs refs = {0};
    bool task_level = task != NULL;
    for (size_t i = 0; i < n; i++) {
        const struct service *s = &svc[i];
        struct mark m = vmark(v);
        nc_buf_printf(&v->j, ".Services[%zu]", i);
        if (s->name && *s->name)
            js_seg_named(&v->h, "service", s->name);
        else
            js_seg_index(&v->h, "service", i, n);
        if (!valid_service_name(S(s->name)))
            verr(v, ".Name",
                 "Service name must be valid per RFC 1123 and can contain "
                 "only alphanumeric characters or dashes and must be no "
                 "longer than 63 characters: \"%s\"",
                 S(s->name));
        const char *am = S(s->address_mode);
        if (!ONE_OF(am, "", "auto", "host", "driver", "alloc", "alloc_ipv6"))
            verr(v, ".AddressMode",
                 "Service address_mode must be \"auto\", \"host\", or "
                 "\"driver\"; not \"%s\"",
                 am);
        else if (*am && strcmp(am, "auto") != 0 && s->address &&
                 *s->address)
            verr(v, ".Address",
                 "Service address_mode must be \"auto\" if address is set");
        else if (!task_level && strcmp(am, "driver") == 0)
            verr(v, ".AddressMode",
                 "service \"%s\" cannot use address_mode=\"driver\", only "
                 "services defined in a \"task\" block can use this mode",
                 S(s->name));
        else if (task_level && ONE_OF(am, "alloc", "alloc_ipv6"))
            verr(v, ".AddressMode",
                 "service \"%s\" cannot use address_mode=\"%s\", only "
                 "services defined in a \"group\" block can use this mode",
                 S(s->name), am);
        if (!ONE_OF(s->on_update, "", "require_healthy", "ignore_warnings",
                    "ignore"))
            verr(v, ".OnUpdate",
                 "Service on_update must be \"require_healthy\", "
                 "\"ignore_warnings\", or \"ignore\"; not \"%s\"",
                 S(s->on_update));
        if (!ONE_OF(s->provider, "consul", "nomad"))
            verr(v, ".Provider",
                 "Service provider must be \"consul\", or \"nomad\"; not "
                 "\"%s\"",
                 S(s->provider));
        if (s->connect && task_level)
            verr(v, ".Connect",
                 "service \"%s\" cannot have \"connect\" block, only services "
                 "defined in a \"group\" block can",
                 S(s->name));
        else if (s->connect && nc_streq(s->provider, "nomad"))
            verr(v, ".Connect",
                 "Service with provider nomad cannot include Connect blocks");
        if (task_level && s->task_name && *s->task_name &&
            !nc_streq(s->task_name, task->name))
            verr(v, ".TaskName",
                 "Service %s is invalid: may only specify task the service "
                 "belongs to, got \"%s\"",
                 S(s->name), s->task_name);
        if (task_level) {
            for (size_t o = 0; o < i; o++)
                if (nc_streq(S(svc[o].name), S(s->name)) &&
                    nc_streq(S(svc[o].port_label), S(s->port_label))) {
                    verr(v, NULL, "service \"%s\" is duplicate", S(s->name));
                    break;
                }
        }
        const char *port = S(s->port_label);
        if (*port && !(is_numeric(port) && strcmp(am, "driver") == 0)) {
            struct nc_buf where = {0};
            nc_buf_printf(&where, "%s.PortLabel", v->j.data);
            ref_add(&refs, port, S(s->name), where.data, v->h.data);
            nc_buf_free(&where);
        }
        char *svc_human = xstrdup(v->h.data);
        for (size_t c = 0; c < s->nchecks; c++) {
            const struct check *ck = &s->checks[c];
            struct mark cm = vmark(v);
            nc_buf_printf(&v->j, ".Checks[%zu]", c);
            if (ck->name && *ck->name)
                js_seg_named(&v->h, "check", ck->name);
            else
                js_seg_index(&v->h, "check", c, s->nchecks);
            if (ck->name && *ck->name) {
                for (size_t o = 0; o < c; o++)
                    if (nc_streq(s->checks[o].name, ck->name)) {
                        verr(v, ".Name", "check \"%s\" is duplicate",
                             ck->name);
                        break;
                    }
            }
            validate_check(v, s, ck, task_level, &refs, svc_human);
            vrestore(v, cm);
        }
        free(svc_human);
        vrestore(v, m);
    }
    refs_report(v, &refs, g);
}

/* ---- tasks ---- */

/* Does dest, taken relative to the task directory, leave the allocation
 * directory? Absolute paths are relative to the task dir too. */
static bool escapes_alloc(const char *dest)
{
    int depth = 1; /* inside <alloc>/<task> */
    const char *p = dest;
    while (*p) {
        while (*p == '/')
            p++;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return true;
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            depth++;
        }
        p += n;
    }
    return false;
}

static void validate_templates(struct vctx *v, const struct task *t)
{
    for (size_t i = 0; i < t->ntemplates; i++) {
        const struct template_spec *tp = &t->templates[i];
        struct mark m = vmark(v);
        nc_buf_printf(&v->j, ".Templates[%zu]", i);
        js_seg_index(&v->h, "template", i, t->ntemplates);
        if ((!tp->source_path || !*tp->source_path) &&
            (!tp->embedded_tmpl || !*tp->embedded_tmpl))
            verr(v, NULL, "Must specify a source path or have an embedded "
                 "template");
        if (!tp->dest_path || !*tp->dest_path)
            verr(v, ".DestPath", "Must specify a destination for the template");
        else if (escapes_alloc(tp->dest_path))
            verr(v, ".DestPath", "destination escapes allocation directory");
        const char *cm = S(tp->change_mode);
        if (strcmp(cm, "signal") == 0) {
            if (!tp->change_signal || !*tp->change_signal)
                verr(v, ".ChangeSignal",
                     "Must specify signal value when change mode is signal");
            if (tp->envvars)
                verr(v, ".Envvars", "cannot use signals with env var "
                     "templates");
        } else if (strcmp(cm, "script") == 0) {
            verr(v, ".ChangeMode", "must specify change script configuration "
                 "value when change mode is script");
        } else if (!ONE_OF(cm, "noop", "restart")) {
            verr(v, ".ChangeMode", "Invalid change mode (\"%s\"); must be one "
                 "of \"noop\", \"restart\", \"signal\"", cm);
        }
        if (tp->splay < 0)
            verr(v, ".Splay", "Must specify positive splay value");
        if (tp->perms && *tp->perms) {
            char *end;
            errno = 0;
            unsigned long mode = strtoul(tp->perms, &end, 8);
            if (*end || errno || mode > 07777 || tp->perms[0] == '-')
                verr(v, ".Perms", "Failed to parse \"%s\" as octal",
                     tp->perms);
        }
        for (size_t o = 0; o < i; o++) {
            if (nc_streq(S(t->templates[o].dest_path), S(tp->dest_path))) {
                verr(v, ".DestPath", "Template %zu has same destination as "
                     "%zu", i + 1, o + 1);
                break;
            }
        }
        vrestore(v, m);
    }
}

static void validate_resources(struct vctx *v, const struct task *t,
                               const struct task_group *g)
{
    const struct resources *r = &t->resources;
    struct mark m = vmark(v);
    nc_buf_puts(&v->j, ".Resources");
    js_seg_named(&v->h, "resources", NULL);
    if (r->cores > 0 && r->cpu > 0)
        verr(v, NULL, "Task can only ask for 'cpu' or 'cores' resource, not "
             "both.");
    if (r->cores < 0)
        verr(v, ".Cores", "cores value (%d) cannot be negative", r->cores);
    if (r->cores == 0 && r->cpu < 1)
        verr(v, ".CPU", "minimum CPU value is 1; got %d", r->cpu);
    if (r->memory_mb < 10)
        verr(v, ".MemoryMB", "minimum MemoryMB value is 10; got %d",
             r->memory_mb);
    if (r->memory_max_mb != 0 && r->memory_max_mb != -1 &&
        r->memory_max_mb < r->memory_mb)
        verr(v, ".MemoryMaxMB", "MemoryMaxMB value (%d) should be larger "
             "than MemoryMB value (%d)", r->memory_max_mb, r->memory_mb);
    if (r->disk_mb < 0)
        verr(v, ".DiskMB", "DiskMB value (%d) cannot be negative", r->disk_mb);
    vrestore(v, m);

    m = vmark(v);
    nc_buf_puts(&v->j, ".LogConfig");
    js_seg_named(&v->h, "logs", NULL);
    if (t->logs.max_files < 1)
        verr(v, ".MaxFiles", "minimum number of files is 1; got %d",
             t->logs.max_files);
    if (t->logs.max_file_size_mb < 1)
        verr(v, ".MaxFileSizeMB", "minimum file size is 1MB; got %d",
             t->logs.max_file_size_mb);
    long long usage =
        (long long)t->logs.max_files * (long long)t->logs.max_file_size_mb;
    if (!t->logs.disabled && g->ephemeral_disk.mb <= usage)
        verr(v, NULL, "log storage (%lld MB) must be less than requested disk "
             "capacity (%d MB)", usage, g->ephemeral_disk.mb);
    vrestore(v, m);
}

static void validate_task(struct vctx *v, const struct task *t,
                          const struct task_group *g)
{
    char a[64], b[64];
    const char *name = S(t->name);
    if (!*name)
        verr(v, ".Name", "Missing task name");
    if (strcmp(name, "alloc") == 0)
        verr(v, ".Name", "Task cannot be named \"alloc\"");
    if (strpbrk(name, "/\\"))
        verr(v, ".Name", "Task name cannot include slashes");
    if (!t->driver || !*t->driver)
        verr(v, ".Driver", "Missing task driver");
    if (t->kill_timeout < 0)
        verr(v, ".KillTimeout", "KillTimeout must be a positive value");
    else if (nc_streq(v->job->type, "service") && g->update &&
             g->update->progress_deadline > 0 &&
             t->kill_timeout > g->update->progress_deadline)
        verr(v, ".KillTimeout",
             "KillTimeout (%s) longer than the group's ProgressDeadline (%s)",
             dur(t->kill_timeout, a, sizeof(a)),
             dur(g->update->progress_deadline, b, sizeof(b)));
    if (t->shutdown_delay < 0)
        verr(v, ".ShutdownDelay", "ShutdownDelay must be a positive value");
    validate_resources(v, t, g);
    validate_constraints(v, t->constraints, t->nconstraints, true);
    validate_affinities(v, t->affinities, t->naffinities);
    validate_services(v, t->services, t->nservices, t, g);
    validate_templates(v, t);
    for (size_t i = 0; i < t->nvolume_mounts; i++) {
        const struct volume_mount *vm = &t->volume_mounts[i];
        struct mark m = vmark(v);
        nc_buf_printf(&v->j, ".VolumeMounts[%zu]", i);
        js_seg_index(&v->h, "volume_mount", i, t->nvolume_mounts);
        bool found = false;
        for (size_t k = 0; k < g->nvolumes; k++)
            if (nc_streq(S(g->volumes[k].name), S(vm->volume)))
                found = true;
        if (!found)
            verr(v, ".Volume", "references undefined volume \"%s\"",
                 S(vm->volume));
        if (!vm->destination || !*vm->destination)
            verr(v, ".Destination", "volume_mount needs a destination");
        if (!ONE_OF(vm->propagation_mode, "", "private", "host-to-task",
                    "bidirectional"))
            verr(v, ".PropagationMode",
                 "invalid propagation mode \"%s\": must be \"private\", "
                 "\"host-to-task\" or \"bidirectional\"",
                 S(vm->propagation_mode));
        vrestore(v, m);
    }
    if (t->lifecycle) {
        struct mark m = vmark(v);
        nc_buf_puts(&v->j, ".Lifecycle");
        js_seg_named(&v->h, "lifecycle", NULL);
        if (!t->lifecycle->hook || !*t->lifecycle->hook)
            verr(v, ".Hook", "no lifecycle hook provided");
        else if (!ONE_OF(t->lifecycle->hook, "prestart", "poststart",
                         "poststop"))
            verr(v, ".Hook", "invalid hook: %s", t->lifecycle->hook);
        vrestore(v, m);
    }
    if (t->restart) {
        struct mark m = vmark(v);
        nc_buf_puts(&v->j, ".RestartPolicy");
        js_seg_named(&v->h, "restart", NULL);
        validate_restart(v, t->restart);
        vrestore(v, m);
    }
    for (size_t i = 0; i < t->nscaling_policies; i++) {
        struct mark m = vmark(v);
        nc_buf_printf(&v->j, ".ScalingPolicies[%zu]", i);
        js_seg_index(&v->h, "scaling", i, t->nscaling_policies);
        validate_scaling(v, &t->scaling_policies[i], NULL);
        vrestore(v, m);
    }
}

/* ---- groups and job ---- */

static void validate_volumes(struct vctx *v, const struct task_group *g)
{
    const char *type = S(v->job->type);
    for (size_t i = 0; i < g->nvolumes; i++) {
        const struct volume_request *vr = &g->volumes[i];
        struct mark m = vmark(v);
        nc_buf_printf(&v->j, ".Volumes[\"%s\"]", S(vr->name));
        js_seg_named(&v->h, "volume", S(vr->name));
        for (size_t o = 0; o < i; o++)
            if (nc_streq(S(g->volumes[o].name), S(vr->name)))
                verr(v, NULL, "duplicate volume \"%s\"", S(vr->name));
        if (!ONE_OF(vr->type, "host", "csi")) {
            verr(v, ".Type", "volume has unrecognized type %s", S(vr->type));
            vrestore(v, m);
            continue;
        }
        if (!vr->source || !*vr->source)
            verr(v, ".Source", "volume has an empty source");
        if (vr->per_alloc) {
            if (ONE_OF(type, "system", "sysbatch"))
                verr(v, ".PerAlloc", "volume cannot be per_alloc for system "
                     "or sysbatch jobs");
            if (g->update && g->update->canary > 0)
                verr(v, ".PerAlloc", "volume cannot be per_alloc when "
                     "canaries are in use");
        }
        const char *am = S(vr->access_mode);
        if (strcmp(S(vr->type), "host") == 0) {
            if (strcmp(am, "single-node-reader-only") == 0) {
                if (!vr->read_only)
                    verr(v, ".AccessMode", "%s volumes must be read-only", am);
            } else if (!ONE_OF(am, "", "single-node-writer",
                               "single-node-single-writer",
                               "single-node-multi-writer")) {
                verr(v, ".AccessMode",
                     "host volumes cannot be mounted with %s access mode", am);
            }
        } else {
            if (!vr->attachment_mode || !*vr->attachment_mode)
                verr(v, ".AttachmentMode",
                     "CSI volumes must have an attachment mode");
            if (!*am)
                verr(v, ".AccessMode", "CSI volumes must have an access mode");
        }
        vrestore(v, m);
    }
}

static void validate_group(struct vctx *v, const struct task_group *g)
{
    const char *type = S(v->job->type);
    bool sys = ONE_OF(type, "system", "sysbatch");
    if (!g->name || !*g->name)
        verr(v, ".Name", "Missing task group name");
    if (g->count < 0)
        verr(v, ".Count", "Task group count can't be negative");
    if (g->ntasks == 0)
        verr(v, NULL, "Missing tasks for task group");
    if (g->shutdown_delay < 0)
        verr(v, ".ShutdownDelay", "ShutdownDelay must be a positive value");
    if (g->stop_after_client_disconnect < 0)
        verr(v, ".StopAfterClientDisconnect",
             "stop_after_client_disconnect must be a positive value");
    validate_constraints(v, g->constraints, g->nconstraints, false);
    validate_affinities(v, g->affinities, g->naffinities);
    validate_spreads(v, g->spreads, g->nspreads);

    struct mark m = vmark(v);
    nc_buf_puts(&v->j, ".RestartPolicy");
    js_seg_named(&v->h, "restart", NULL);
    validate_restart(v, &g->restart);
    vrestore(v, m);

    /* Nomad refuses reschedule and migrate blocks, affinities, spreads
     * and a count above 1 in system jobs; on one node they change nothing,
     * so they are warnings here (js_collect_warnings). */
    if (g->reschedule && !sys) {
        nc_buf_puts(&v->j, ".ReschedulePolicy");
        js_seg_named(&v->h, "reschedule", NULL);
        validate_reschedule(v, g->reschedule);
        vrestore(v, m);
    }
    if (g->ephemeral_disk.mb < 10)
        verr(v, ".EphemeralDisk.SizeMB", "minimum DiskMB value is 10; got %d",
             g->ephemeral_disk.mb);
    if (g->update) {
        nc_buf_puts(&v->j, ".Update");
        js_seg_named(&v->h, "update", NULL);
        if (!ONE_OF(type, "service", "system"))
            verr(v, NULL, "Job type \"%s\" does not allow update block", type);
        validate_update(v, g->update);
        vrestore(v, m);
    }
    if (g->migrate) {
        nc_buf_puts(&v->j, ".Migrate");
        js_seg_named(&v->h, "migrate", NULL);
        validate_migrate(v, g->migrate);
        vrestore(v, m);
    }
    if (g->scaling) {
        nc_buf_puts(&v->j, ".Scaling");
        js_seg_named(&v->h, "scaling", NULL);
        validate_scaling(v, g->scaling, g);
        vrestore(v, m);
    }

    size_t leaders = 0, mains = 0;
    for (size_t i = 0; i < g->ntasks; i++) {
        const struct task *t = &g->tasks[i];
        if (t->leader)
            leaders++;
        if (!t->lifecycle)
            mains++;
        for (size_t o = 0; o < i; o++) {
            if (t->name && *t->name && nc_streq(g->tasks[o].name, t->name)) {
                struct mark tm = vmark(v);
                nc_buf_printf(&v->j, ".Tasks[%zu]", i);
                verr(v, ".Name", "Task %zu redefines '%s' from task %zu", i + 1,
                     t->name, o + 1);
                vrestore(v, tm);
                break;
            }
        }
    }
    if (leaders > 1)
        verr(v, NULL, "Only one task may be marked as leader");
    if (g->ntasks && mains == 0)
        verr(v, NULL, "Task group %s must have at least one main task",
             S(g->name));

    validate_volumes(v, g);
    validate_networks(v, g);
    validate_services(v, g->services, g->nservices, NULL, g);
    for (size_t i = 0; i < g->ntasks; i++) {
        struct mark tm = vmark(v);
        nc_buf_printf(&v->j, ".Tasks[%zu]", i);
        js_seg_named(&v->h, "task", S(g->tasks[i].name));
        validate_task(v, &g->tasks[i], g);
        vrestore(v, tm);
    }
}

static void validate_job(struct vctx *v, const struct job *job)
{
    const char *type = S(job->type);
    const char *id = S(job->id);
    if (!*id)
        verr(v, ".ID", "Missing job ID");
    else if (strchr(id, ' '))
        verr(v, ".ID", "Job ID contains a space");
    if (!job->name || !*job->name)
        verr(v, ".Name", "Missing job name");
    if (!job->region || !*job->region)
        verr(v, ".Region", "Missing job region");
    if (!job->namespace || !*job->namespace)
        verr(v, ".Namespace", "Job must be in a namespace");
    if (!*type)
        verr(v, ".Type", "Missing job type");
    else if (!ONE_OF(type, "service", "batch", "system", "sysbatch"))
        verr(v, ".Type", "Invalid job type: \"%s\"", type);
    if (job->priority < 1 || job->priority > 100)
        verr(v, ".Priority", "job priority must be between [1, 100]");
    if (job->datacenters.n == 0)
        verr(v, ".Datacenters", "Missing job datacenters");
    for (size_t i = 0; i < job->datacenters.n; i++)
        if (!job->datacenters.items[i][0]) {
            verr(v, ".Datacenters", "Job datacenter must be non-empty string");
            break;
        }
    if (job->ngroups == 0)
        verr(v, ".TaskGroups", "Missing job task groups");
    validate_constraints(v, job->constraints, job->nconstraints, false);
    validate_affinities(v, job->affinities, job->naffinities);
    validate_spreads(v, job->spreads, job->nspreads);
    bool batchy = ONE_OF(type, "batch", "sysbatch");
    if (job->periodic &&
        !json_is_false(json_object_get(job->periodic, "Enabled")) && !batchy)
        verr(v, ".Periodic", "Periodic can only be used with \"batch\" or "
             "\"sysbatch\" scheduler");
    if (job->parameterized) {
        if (!batchy)
            verr(v, ".ParameterizedJob", "Parameterized job can only be used "
                 "with \"batch\" or \"sysbatch\" scheduler");
        const char *payload =
            json_string_value(json_object_get(job->parameterized, "Payload"));
        if (payload && !ONE_OF(payload, "", "optional", "required",
                               "forbidden"))
            verr(v, ".ParameterizedJob.Payload",
                 "Unknown payload requirement: \"%s\"", payload);
    }
    for (size_t i = 0; i < job->ngroups; i++) {
        const struct task_group *g = &job->groups[i];
        struct mark m = vmark(v);
        nc_buf_printf(&v->j, ".TaskGroups[%zu]", i);
        for (size_t o = 0; o < i; o++) {
            if (g->name && *g->name && nc_streq(job->groups[o].name, g->name)) {
                verr(v, ".Name", "Job task group %zu redefines '%s' from "
                     "group %zu", i + 1, g->name, o + 1);
                break;
            }
        }
        /* group paths start at the group, without the job in front */
        trunc_buf(&v->h, 0);
        js_seg_named(&v->h, "group", S(g->name));
        validate_group(v, g);
        trunc_buf(&v->h, 0);
        js_seg_named(&v->h, "job", S(job->id));
        vrestore(v, m);
    }
}

int js_validate(struct job *job, const struct js_source *src,
                struct nc_error *err)
{
    struct vctx v = {.e = {.src = src}, .job = job};
    nc_buf_puts(&v.j, "Job");
    js_seg_named(&v.h, "job", S(job->id));
    validate_job(&v, job);
    nc_buf_free(&v.h);
    nc_buf_free(&v.j);
    return js_errors_finish(&v.e, err);
}
