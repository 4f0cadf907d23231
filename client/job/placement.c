/* placement.c - placement_check: the feasibility walk over a job's groups on
 * this node. Constraint operators, ports and resources have files of their
 * own (placement_*.c, sharing internal.h).
 *
 * Semantics follow Nomad's scheduler (scheduler/feasible/feasible.go,
 * propertyset.go, rank.go, nomad/structs) and hashicorp/go-version, so a
 * job that Nomad would place on a node like this one is placed here, and
 * one it would refuse is refused with the same words. Two deliberate
 * differences, both because there is exactly one node:
 *   - Nomad stops at the first failing feasibility check of a node; here
 *     every node-level check runs, so the user sees all reasons at once
 *     (a wrong meta value *and* a missing driver).
 *   - Counts are computed, not simulated allocation by allocation, so a
 *     hostile `count = 2000000000` costs the same as `count = 1`.
 *
 * Every input (job strings, node attributes) may be hostile: parsing is
 * linear, regexps are vetted before regcomp, and nothing here recurses on
 * input. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/internal.h"

/* Adds a reason line unless it is already there (the same constraint at
 * two levels is one line, as in Nomad's per-constraint map). */
static void reason_add(struct strlist *l, char *line)
{
    if (!strlist_contains(l, line))
        strlist_add(l, line);
    free(line);
}

/* `prefix "quoted" suffix` as a new string. */
static char *quoted_line(const char *prefix, const char *s, const char *suffix)
{
    struct nc_buf b = {0};
    nc_buf_puts(&b, prefix);
    pl_go_quote(&b, s);
    nc_buf_puts(&b, suffix);
    return nc_buf_take(&b);
}

/* ---- node-level pieces ------------------------------------------------- */

/* ryanuber/go-glob as Nomad's Node.IsInAnyDC uses it: only `*` is special,
 * matched greedily left to right - linear, no backtracking. */
static bool go_glob(const char *pattern, const char *subj)
{
    if (!*pattern)
        return !*subj;
    if (strcmp(pattern, "*") == 0)
        return true;
    if (!strchr(pattern, '*'))
        return strcmp(pattern, subj) == 0;
    size_t plen = strlen(pattern);
    bool leading = pattern[0] == '*', trailing = pattern[plen - 1] == '*';
    const char *part = pattern;
    for (size_t i = 0;; i++) {
        const char *star = strchr(part, '*');
        if (!star)
            break; /* `part` is the last section */
        size_t n = (size_t)(star - part);
        const char *hit = memmem(subj, strlen(subj), part, n);
        if (i == 0 && !leading && hit != subj)
            return false;
        if (!hit)
            return false;
        subj = hit + n;
        part = star + 1;
    }
    return trailing || nc_str_has_suffix(subj, part);
}

static const struct node_driver *find_driver(const struct node *node,
                                             const char *name)
{
    for (size_t i = 0; i < node->ndrivers; i++)
        if (nc_streq(node->drivers[i].name, name))
            return &node->drivers[i];
    return NULL;
}

/* DriverChecker.hasDrivers: the driver's fingerprint, or for nodes without
 * one the attribute driver.<name> as a boolean. */
static bool node_has_driver(const struct node *node, const char *name)
{
    const struct node_driver *d = find_driver(node, name);
    if (d)
        return d->detected && d->healthy;
    char *key = xasprintf("driver.%s", name);
    const char *v = kv_get(&node->attributes, key);
    free(key);
    bool on = false;
    return v && nc_parse_go_bool(v, &on) && on;
}

static const struct node_host_volume *find_host_volume(const struct node *node,
                                                       const char *name)
{
    for (size_t i = 0; i < node->nhost_volumes; i++)
        if (nc_streq(node->host_volumes[i].name, name))
            return &node->host_volumes[i];
    return NULL;
}

/* HostVolumeChecker for a static host volume: present, and not read-only
 * when the request wants to write. */
static bool host_volume_ok(const struct node *node, const char *source,
                           bool read_only)
{
    const struct node_host_volume *v = find_host_volume(node, source);
    return v && (read_only || !v->read_only);
}

/* ---- placement ----------------------------------------------------------- */

static void add_lines(struct strlist *dst, const struct strlist *src)
{
    for (size_t i = 0; i < src->n; i++)
        reason_add(dst, xstrdup(src->items[i]));
}

/* What is left on the node as groups are placed. */
struct pl_state {
    const struct job *job;
    const struct node *node;
    bool per_node; /* system / sysbatch: one allocation per group */
    struct pl_resources left; /* remaining */
    struct pl_ports ports;
    int64_t job_placed;    /* allocations of this job placed so far */
    struct strlist eligibility; /* datacenter / pool lines, empty if fine */
    struct strlist job_filter;  /* failing job-level constraints, checked
                                   once for all groups */
};

void pl_limit_by(struct pl_limiter *lim, int64_t allowed,
                 enum placement_failure kind, char *what)
{
    if (allowed < 0)
        allowed = 0;
    if (allowed < lim->allowed) {
        lim->allowed = allowed;
        lim->kind = kind;
        free(lim->what);
        lim->what = what;
    } else {
        free(what);
    }
}

static bool is_constraint_op(const struct constraint *c, const char *op)
{
    return c->operand && strcmp(c->operand, op) == 0;
}

static bool has_distinct_hosts(const struct constraint *cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_constraint_op(&cs[i], "distinct_hosts"))
            return true;
    return false;
}

static void check_constraints(const struct pl_state *st,
                              const struct constraint *cs, size_t n,
                              struct strlist *reasons)
{
    for (size_t i = 0; i < n; i++) {
        char *why = NULL;
        if (placement_check_constraint(st->node, &cs[i], &why))
            continue;
        char *text = pl_constraint_string(&cs[i]);
        reason_add(reasons, quoted_line("Constraint ", text,
                                        ": 1 nodes excluded by filter"));
        if (why) {
            char *line = quoted_line("Constraint ", text, " is invalid: ");
            char *full = xasprintf("%s%s", line, why);
            free(line);
            reason_add(reasons, full);
        }
        free(text);
        free(why);
    }
}

/* Node-level feasibility, in Nomad's order: job constraints, drivers,
 * group then task constraints, host and CSI volumes. Unlike Nomad every
 * check runs, so all reasons show. */
static void filter_node(const struct pl_state *st, const struct task_group *tg,
                        struct strlist *reasons)
{
    add_lines(reasons, &st->job_filter);

    for (size_t t = 0; t < tg->ntasks; t++) {
        if (!node_has_driver(st->node, pl_or_empty(tg->tasks[t].driver))) {
            reason_add(reasons, xstrdup("Constraint \"missing drivers\": 1 "
                                        "nodes excluded by filter"));
            break;
        }
    }

    check_constraints(st, tg->constraints, tg->nconstraints, reasons);
    for (size_t t = 0; t < tg->ntasks; t++)
        check_constraints(st, tg->tasks[t].constraints,
                          tg->tasks[t].nconstraints, reasons);

    for (size_t v = 0; v < tg->nvolumes; v++) {
        const struct volume_request *vr = &tg->volumes[v];
        if (nc_streq(vr->type, "host") && !vr->per_alloc &&
            !host_volume_ok(st->node, pl_or_empty(vr->source), vr->read_only))
            reason_add(reasons,
                       xstrdup("Constraint \"missing compatible host "
                               "volumes\": 1 nodes excluded by filter"));
    }
    /* This node mounts no CSI volumes; Nomad's words for a volume it
     * cannot find. */
    for (size_t v = 0; v < tg->nvolumes; v++) {
        const struct volume_request *vr = &tg->volumes[v];
        if (nc_streq(vr->type, "csi")) {
            char *what =
                xasprintf("missing CSI volume(s) %s", pl_or_empty(vr->source));
            reason_add(reasons, quoted_line("Constraint ", what,
                                            ": 1 nodes excluded by filter"));
            free(what);
        }
    }
}

/* per_alloc host volumes: allocation i needs "<source>[i]". Only the first
 * nhost_volumes + 1 indices can differ, so the scan is bounded. */
static void limit_per_alloc_volumes(const struct pl_state *st,
                                    const struct task_group *tg,
                                    int64_t desired, struct pl_limiter *lim)
{
    bool any = false;
    for (size_t v = 0; v < tg->nvolumes; v++)
        any |=
            nc_streq(tg->volumes[v].type, "host") && tg->volumes[v].per_alloc;
    if (!any)
        return;
    int64_t bound = (int64_t)st->node->nhost_volumes + 1;
    for (int64_t i = 0; i < desired && i < bound; i++) {
        for (size_t v = 0; v < tg->nvolumes; v++) {
            const struct volume_request *vr = &tg->volumes[v];
            if (!nc_streq(vr->type, "host") || !vr->per_alloc)
                continue;
            char *name =
                xasprintf("%s[%lld]", pl_or_empty(vr->source), (long long)i);
            bool ok = host_volume_ok(st->node, name, vr->read_only);
            free(name);
            if (!ok) {
                pl_limit_by(lim, i, PLACEMENT_FILTERED,
                         xstrdup("missing compatible host volumes"));
                return;
            }
        }
    }
}

/* propertyset.go: at most RTarget (default 1) allocations per value of the
 * property; on one node every allocation shares the node's value. */
static void limit_distinct_property(const struct pl_state *st,
                                    const struct constraint *c,
                                    int64_t used_before, struct pl_limiter *lim)
{
    const char *rt = pl_or_empty(c->rtarget);
    uint64_t allowed = 1;
    if (*rt) {
        int r = pl_parse_uint64(rt, &allowed);
        if (r) {
            struct nc_buf b = {0};
            nc_buf_puts(&b, "failed to convert RTarget ");
            pl_go_quote(&b, rt);
            nc_buf_puts(&b, " to uint64: strconv.ParseUint: parsing ");
            pl_go_quote(&b, rt);
            nc_buf_puts(&b,
                        r == 1 ? ": invalid syntax" : ": value out of range");
            pl_limit_by(lim, 0, PLACEMENT_FILTERED, nc_buf_take(&b));
            return;
        }
    }
    bool found;
    const char *value = pl_resolve_target(st->node, c->ltarget, &found);
    if (!found) {
        struct nc_buf b = {0};
        nc_buf_puts(&b, "missing property ");
        pl_go_quote(&b, pl_or_empty(c->ltarget));
        pl_limit_by(lim, 0, PLACEMENT_FILTERED, nc_buf_take(&b));
        return;
    }
    int64_t left = allowed > (uint64_t)INT64_MAX
                       ? INT64_MAX
                       : (int64_t)allowed - used_before;
    if (left < 0)
        left = 0;
    if (left >= lim->allowed)
        return;
    pl_limit_by(lim, left, PLACEMENT_FILTERED,
             xasprintf("distinct_property: %s=%s used by %lld allocs",
                       pl_or_empty(c->ltarget), value,
                       (long long)(used_before + left)));
}

static void class_line(const struct node *node, const char *suffix,
                       struct strlist *reasons)
{
    if (node->node_class && *node->node_class)
        reason_add(reasons, quoted_line("Class ", node->node_class, suffix));
}

static void place_group(struct pl_state *st, const struct task_group *tg,
                        struct placement_group_result *g)
{
    g->group = xstrdup(pl_or_empty(tg->name));
    /* System and sysbatch jobs place one allocation of each group per node
     * whatever the count (Nomad refuses count > 1 for system jobs); count 0
     * still means none, as in Nomad's materializeSystemTaskGroups. */
    int64_t desired = tg->count > 0 ? (st->per_node ? 1 : tg->count) : 0;
    g->desired = (int)desired;
    g->placed = 0;
    g->failure = PLACEMENT_FIT;
    if (desired == 0)
        return;

    if (st->eligibility.n) {
        add_lines(&g->reasons, &st->eligibility);
        g->failure = PLACEMENT_FILTERED;
        return;
    }

    struct strlist filtered = {0};
    filter_node(st, tg, &filtered);
    if (filtered.n) {
        class_line(st->node, ": 1 nodes excluded by filter", &g->reasons);
        add_lines(&g->reasons, &filtered);
        strlist_free(&filtered);
        g->failure = PLACEMENT_FILTERED;
        return;
    }

    struct pl_limiter lim = {.allowed = desired, .kind = PLACEMENT_FIT};
    limit_per_alloc_volumes(st, tg, desired, &lim);

    /* DistinctHostsIterator; the system stack has none. */
    if (!st->per_node) {
        if (has_distinct_hosts(st->job->constraints, st->job->nconstraints))
            pl_limit_by(&lim, st->job_placed == 0 ? 1 : 0, PLACEMENT_FILTERED,
                     xstrdup("distinct_hosts"));
        if (has_distinct_hosts(tg->constraints, tg->nconstraints))
            pl_limit_by(&lim, 1, PLACEMENT_FILTERED, xstrdup("distinct_hosts"));
    }
    for (size_t i = 0; i < st->job->nconstraints; i++)
        if (is_constraint_op(&st->job->constraints[i], "distinct_property"))
            limit_distinct_property(st, &st->job->constraints[i],
                                    st->job_placed, &lim);
    for (size_t i = 0; i < tg->nconstraints; i++)
        if (is_constraint_op(&tg->constraints[i], "distinct_property"))
            limit_distinct_property(st, &tg->constraints[i], 0, &lim);

    int64_t ndynamic;
    pl_ports_limit(&st->ports, tg, &lim, &ndynamic);

    struct pl_resources ask;
    pl_resources_ask(&st->left, tg, &ask);
    pl_resources_limit(&st->left, &ask, &lim);

    int64_t placed = lim.allowed;
    g->placed = (int)placed;
    st->job_placed += placed;
    pl_resources_take(&st->left, &ask, placed);
    pl_ports_take(&st->ports, tg, placed, ndynamic);

    if (placed < desired) {
        g->failure = lim.kind;
        if (lim.kind == PLACEMENT_FILTERED) {
            class_line(st->node, ": 1 nodes excluded by filter", &g->reasons);
            reason_add(&g->reasons,
                       quoted_line("Constraint ", lim.what,
                                   ": 1 nodes excluded by filter"));
        } else {
            reason_add(&g->reasons, xstrdup("Resources exhausted on 1 nodes"));
            class_line(st->node, " exhausted on 1 nodes", &g->reasons);
            reason_add(&g->reasons, quoted_line("Dimension ", lim.what,
                                                " exhausted on 1 nodes"));
        }
    }
    free(lim.what);
}

/* Datacenter (go-glob patterns, default "*"), node pool ("default"
 * unless set; "all" matches any) and readiness (eligible, not draining):
 * a node outside them is never evaluated, which Nomad reports as below. */
static void check_eligibility(struct pl_state *st)
{
    const struct job *job = st->job;
    const char *dc = pl_or_empty(st->node->datacenter);
    bool in_dc = job->datacenters.n == 0;
    for (size_t i = 0; i < job->datacenters.n && !in_dc; i++)
        in_dc = go_glob(pl_or_empty(job->datacenters.items[i]), dc);
    const char *pool =
        job->node_pool && *job->node_pool ? job->node_pool : "default";
    bool in_pool =
        strcmp(pool, "all") == 0 || strcmp(pool, pl_node_pool(st->node)) == 0;
    /* a draining or ineligible node is not Ready to Nomad's scheduler:
     * it is never evaluated */
    if (in_dc && in_pool && node_ready(st->node))
        return;
    reason_add(&st->eligibility,
               xstrdup("No nodes were eligible for evaluation"));
    for (size_t i = 0; !in_dc && i < job->datacenters.n; i++)
        reason_add(&st->eligibility,
                   quoted_line("No nodes are available in datacenter ",
                               job->datacenters.items[i], ""));
    if (!in_pool)
        reason_add(
            &st->eligibility,
            quoted_line("No nodes are available in node pool ", pool, ""));
}

static const char *plural(int64_t n)
{
    return n == 1 ? "" : "s";
}

static char *build_message(const struct placement_result *r)
{
    size_t nfail = 0;
    const struct placement_group_result *only = NULL;
    bool all_filtered = true;
    int64_t failed = 0, desired = 0;
    for (size_t i = 0; i < r->ngroups; i++) {
        const struct placement_group_result *g = &r->groups[i];
        desired += g->desired;
        if (g->placed >= g->desired)
            continue;
        nfail++;
        only = g;
        failed += g->desired - g->placed;
        all_filtered &= g->failure == PLACEMENT_FILTERED && g->placed == 0;
    }
    struct nc_buf b = {0};
    if (all_filtered) {
        nc_buf_puts(&b, "Placement failed: no nodes satisfied constraints");
    } else if (nfail == 1) {
        nc_buf_printf(&b, "Placement failed: %d of %d allocation%s of group ",
                      only->desired - only->placed, only->desired,
                      plural(only->desired));
        pl_go_quote(&b, only->group);
        nc_buf_puts(&b, " could not be placed");
    } else {
        nc_buf_printf(&b,
                      "Placement failed: %lld of %lld allocation%s could not "
                      "be placed",
                      (long long)failed, (long long)desired, plural(desired));
    }
    for (size_t i = 0; i < r->ngroups; i++) {
        const struct placement_group_result *g = &r->groups[i];
        if (g->placed >= g->desired)
            continue;
        int n = g->desired - g->placed;
        nc_buf_puts(&b, "\n    Task Group ");
        pl_go_quote(&b, g->group);
        nc_buf_printf(&b, " (failed to place %d allocation%s):", n, plural(n));
        for (size_t k = 0; k < g->reasons.n; k++)
            nc_buf_printf(&b, "\n      * %s", g->reasons.items[k]);
    }
    return nc_buf_take(&b);
}

int placement_check(const struct job *job, const struct node *node,
                    const struct placement_usage *used,
                    struct placement_result *out)
{
    memset(out, 0, sizeof(*out));
    if (!job || !node) {
        out->message = xstrdup("Placement failed: no job or no node");
        return -EINVAL;
    }

    struct pl_state st = {.job = job, .node = node};
    if (pl_ports_init(&st.ports, node, used, &out->message) < 0)
        return -EINVAL;
    st.per_node =
        nc_streq(job->type, "system") || nc_streq(job->type, "sysbatch");
    pl_resources_init(&st.left, node, used);
    check_eligibility(&st);
    check_constraints(&st, job->constraints, job->nconstraints,
                      &st.job_filter);

    out->ngroups = job->ngroups;
    out->groups =
        xcalloc(job->ngroups ? job->ngroups : 1, sizeof(*out->groups));
    for (size_t i = 0; i < job->ngroups; i++)
        place_group(&st, &job->groups[i], &out->groups[i]);
    pl_ports_free(&st.ports);
    strlist_free(&st.eligibility);
    strlist_free(&st.job_filter);

    out->ok = true;
    for (size_t i = 0; i < out->ngroups; i++)
        if (out->groups[i].placed < out->groups[i].desired)
            out->ok = false;
    if (!out->ok)
        out->message = build_message(out);
    return 0;
}

void placement_result_free(struct placement_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ngroups; i++) {
        free(r->groups[i].group);
        strlist_free(&r->groups[i].reasons);
    }
    free(r->groups);
    free(r->message);
    memset(r, 0, sizeof(*r));
}

