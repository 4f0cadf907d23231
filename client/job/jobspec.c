/* jobspec.c - entry points of the job model, freeing, warnings and the
 * small pieces the HCL, JSON and validation files share.
 * See client/job/internal.h for how the pieces fit together. */
#include "client/job/job.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/hcl/hcl.h"
#include "client/job/internal.h"

/* ---- position table ---- */

void js_posmap_add(struct js_posmap *m, const char *path, struct hcl_pos pos)
{
    nc_grow((void **)&m->items, &m->cap, m->n + 1, sizeof(*m->items));
    m->items[m->n].path = xstrdup(path);
    m->items[m->n].pos = pos;
    m->n++;
}

static const struct hcl_pos *posmap_exact(const struct js_posmap *m,
                                          const char *path, size_t len)
{
    /* Later entries win: the last definition is the one that counts. */
    for (size_t i = m->n; i-- > 0;) {
        if (strlen(m->items[i].path) == len &&
            memcmp(m->items[i].path, path, len) == 0)
            return &m->items[i].pos;
    }
    return NULL;
}

/* Length of the parent of path[0..len): strips ".Key", "[3]" or
 * "[\"name\"]". Quoted names may hold dots and brackets, so the scan skips
 * over a trailing quoted index as a whole. */
static size_t parent_len(const char *path, size_t len)
{
    if (len && path[len - 1] == ']') {
        if (len >= 2 && path[len - 2] == '"') {
            /* ["..."]: find the opening [" */
            for (size_t i = len - 2; i-- > 0;) {
                if (path[i] == '"' && i > 0 && path[i - 1] == '[' &&
                    (i < 2 || path[i - 2] != '\\'))
                    return i - 1;
            }
            return 0;
        }
        for (size_t i = len; i-- > 0;)
            if (path[i] == '[')
                return i;
        return 0;
    }
    for (size_t i = len; i-- > 0;) {
        if (path[i] == '.' || path[i] == ']')
            return path[i] == '.' ? i : i + 1;
    }
    return 0;
}

/* First entry below path ("path[..." or "path.…"): a list or object that
 * was never recorded itself is found at its first element. */
static const struct hcl_pos *posmap_child(const struct js_posmap *m,
                                          const char *path, size_t len)
{
    for (size_t i = 0; i < m->n; i++) {
        const char *p = m->items[i].path;
        if (strncmp(p, path, len) == 0 && (p[len] == '[' || p[len] == '.'))
            return &m->items[i].pos;
    }
    return NULL;
}

const struct hcl_pos *js_posmap_find(const struct js_posmap *m,
                                     const char *path)
{
    if (!m || !path)
        return NULL;
    size_t len = strlen(path);
    const struct hcl_pos *child = posmap_child(m, path, len);
    if (posmap_exact(m, path, len) == NULL && child)
        return child;
    while (len) {
        const struct hcl_pos *p = posmap_exact(m, path, len);
        if (p)
            return p;
        size_t up = parent_len(path, len);
        if (up >= len)
            break;
        len = up;
    }
    return NULL;
}

void js_posmap_free(struct js_posmap *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->items[i].path);
    free(m->items);
    m->items = NULL;
    m->n = m->cap = 0;
}

void js_where(const struct js_source *src, const char *path, struct nc_buf *b)
{
    if (!src || !src->filename)
        return;
    const struct hcl_pos *p = js_posmap_find(src->pos, path);
    if (p)
        nc_buf_printf(b, "%s:%d:%d: ", src->filename, p->line, p->col);
    else
        nc_buf_printf(b, "%s: ", src->filename);
}

/* ---- error lists ---- */

void js_errors_add(struct js_errors *e, const char *path, const char *human,
                   const char *fmt, ...)
{
    if (e->msgs.n >= JS_MAX_ERRORS) {
        e->dropped++;
        return;
    }
    struct nc_buf b = {0};
    js_where(e->src, path, &b);
    if (human && *human)
        nc_buf_printf(&b, "%s: ", human);
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    char *s = nc_buf_take(&b);
    strlist_add(&e->msgs, s);
    free(s);
}

int js_errors_finish(struct js_errors *e, struct nc_error *err)
{
    size_t n = e->msgs.n;
    if (n == 0) {
        strlist_free(&e->msgs);
        return 0;
    }
    if (n == 1 && !e->dropped) {
        nc_error_set(err, -EINVAL, "%s", e->msgs.items[0]);
    } else {
        /* Lines that would not fit in err->msg are counted instead, so the
         * total and the "and N more" tail always show. */
        size_t room = sizeof(((struct nc_error *)0)->msg) - 48;
        size_t dropped = e->dropped;
        struct nc_buf b = {0};
        nc_buf_printf(&b, "%zu errors occurred:", n + e->dropped);
        for (size_t i = 0; i < n; i++) {
            if (b.len + strlen(e->msgs.items[i]) + 4 > room) {
                dropped += n - i;
                break;
            }
            nc_buf_printf(&b, "\n\t* %s", e->msgs.items[i]);
        }
        if (dropped)
            nc_buf_printf(&b, "\n\t* ... and %zu more", dropped);
        nc_error_set(err, -EINVAL, "%s", b.data);
        nc_buf_free(&b);
    }
    strlist_free(&e->msgs);
    e->dropped = 0;
    return -EINVAL;
}

/* ---- JSON helpers ---- */

void js_buf_truncate(struct nc_buf *b, size_t n)
{
    b->len = n;
    if (b->data)
        b->data[n] = '\0';
}

json_t *js_string(const char *s)
{
    if (!s)
        return json_string("");
    json_t *j = json_string(s);
    if (j)
        return j;
    /* Only hand-built models can get here (decoders check UTF-8): replace
     * bytes that are not ASCII rather than emit invalid JSON. */
    char *copy = xstrdup(s);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j ? j : json_string("");
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *sorted_copy(const json_t *v, int depth)
{
    if (depth > JS_MAX_DEPTH * 4)
        return json_null();
    if (json_is_object(v)) {
        size_t n = json_object_size(v), i = 0;
        const char **keys = xcalloc(n ? n : 1, sizeof(*keys));
        const char *k;
        json_t *val;
        json_object_foreach((json_t *)v, k, val) keys[i++] = k;
        qsort(keys, i, sizeof(*keys), key_cmp);
        json_t *o = json_object();
        for (size_t j = 0; j < i; j++)
            json_object_set_new(o, keys[j],
                                sorted_copy(json_object_get(v, keys[j]),
                                            depth + 1));
        free(keys);
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(v); i++)
            json_array_append_new(a,
                                  sorted_copy(json_array_get(v, i), depth + 1));
        return a;
    }
    return json_deep_copy(v);
}

json_t *js_sorted_copy(const json_t *v)
{
    return v ? sorted_copy(v, 0) : json_null();
}

void js_seg_named(struct nc_buf *b, const char *kind, const char *name)
{
    if (b->len)
        nc_buf_puts(b, " > ");
    if (name)
        nc_buf_printf(b, "%s \"%s\"", kind, name);
    else
        nc_buf_puts(b, kind);
}

void js_seg_index(struct nc_buf *b, const char *kind, size_t i, size_t n)
{
    if (b->len)
        nc_buf_puts(b, " > ");
    if (n > 1)
        nc_buf_printf(b, "%s[%zu]", kind, i);
    else
        nc_buf_puts(b, kind);
}

/* ---- freeing ---- */

static void constraints_free(struct constraint *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        free(c[i].ltarget);
        free(c[i].rtarget);
        free(c[i].operand);
    }
    free(c);
}

static void affinities_free(struct affinity *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++) {
        free(a[i].ltarget);
        free(a[i].rtarget);
        free(a[i].operand);
    }
    free(a);
}

static void spreads_free(struct spread *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        free(s[i].attribute);
        for (size_t t = 0; s[i].targets && t < s[i].ntargets; t++)
            free(s[i].targets[t].value);
        free(s[i].targets);
    }
    free(s);
}

static void ports_free(struct port *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++) {
        free(p[i].label);
        free(p[i].host_network);
    }
    free(p);
}

static void networks_free(struct network *nw, size_t n)
{
    for (size_t i = 0; nw && i < n; i++) {
        free(nw[i].mode);
        ports_free(nw[i].reserved_ports, nw[i].nreserved_ports);
        ports_free(nw[i].dynamic_ports, nw[i].ndynamic_ports);
        free(nw[i].hostname);
        strlist_free(&nw[i].dns_servers);
        strlist_free(&nw[i].dns_searches);
        strlist_free(&nw[i].dns_options);
    }
    free(nw);
}

static void check_free(struct check *c)
{
    free(c->name);
    free(c->type);
    free(c->command);
    strlist_free(&c->args);
    free(c->path);
    free(c->protocol);
    free(c->port_label);
    free(c->address_mode);
    free(c->method);
    free(c->body);
    kv_free(&c->header);
    free(c->initial_status);
    free(c->task_name);
    free(c->on_update);
    free(c->check_restart);
    free(c->grpc_service);
}

static void services_free(struct service *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        free(s[i].name);
        free(s[i].task_name);
        free(s[i].port_label);
        free(s[i].address_mode);
        free(s[i].address);
        free(s[i].provider);
        strlist_free(&s[i].tags);
        strlist_free(&s[i].canary_tags);
        kv_free(&s[i].meta);
        kv_free(&s[i].canary_meta);
        for (size_t c = 0; s[i].checks && c < s[i].nchecks; c++)
            check_free(&s[i].checks[c]);
        free(s[i].checks);
        json_decref(s[i].connect);
        free(s[i].on_update);
    }
    free(s);
}

static void restart_free(struct restart_policy *r)
{
    if (r)
        free(r->mode);
    free(r);
}

static void scaling_free(struct scaling_policy *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++) {
        json_decref(p[i].policy);
        free(p[i].type);
    }
    free(p);
}

static void task_free(struct task *t)
{
    free(t->name);
    free(t->driver);
    free(t->user);
    json_decref(t->config);
    kv_free(&t->env);
    kv_free(&t->meta);
    json_decref(t->resources.devices);
    services_free(t->services, t->nservices);
    constraints_free(t->constraints, t->nconstraints);
    affinities_free(t->affinities, t->naffinities);
    for (size_t i = 0; t->templates && i < t->ntemplates; i++) {
        struct template_spec *tp = &t->templates[i];
        free(tp->source_path);
        free(tp->dest_path);
        free(tp->embedded_tmpl);
        free(tp->change_mode);
        free(tp->change_signal);
        free(tp->perms);
        free(tp->left_delim);
        free(tp->right_delim);
        free(tp->script_command);
        strlist_free(&tp->script_args);
    }
    free(t->templates);
    json_decref(t->vault);
    for (size_t i = 0; t->volume_mounts && i < t->nvolume_mounts; i++) {
        free(t->volume_mounts[i].volume);
        free(t->volume_mounts[i].destination);
        free(t->volume_mounts[i].propagation_mode);
    }
    free(t->volume_mounts);
    free(t->kill_signal);
    if (t->lifecycle)
        free(t->lifecycle->hook);
    free(t->lifecycle);
    restart_free(t->restart);
    for (size_t i = 0; t->artifacts && i < t->nartifacts; i++) {
        struct artifact *ar = &t->artifacts[i];
        free(ar->source);
        free(ar->destination);
        free(ar->mode);
        kv_free(&ar->options);
        kv_free(&ar->headers);
    }
    free(t->artifacts);
    scaling_free(t->scaling_policies, t->nscaling_policies);
}

static void reschedule_free(struct reschedule_policy *r)
{
    if (r)
        free(r->delay_function);
    free(r);
}

static void update_free(struct update_strategy *u)
{
    if (u)
        free(u->health_check);
    free(u);
}

static void migrate_free(struct migrate_strategy *m)
{
    if (m)
        free(m->health_check);
    free(m);
}

static void group_free(struct task_group *g)
{
    free(g->name);
    constraints_free(g->constraints, g->nconstraints);
    affinities_free(g->affinities, g->naffinities);
    spreads_free(g->spreads, g->nspreads);
    networks_free(g->networks, g->nnetworks);
    services_free(g->services, g->nservices);
    for (size_t i = 0; g->volumes && i < g->nvolumes; i++) {
        struct volume_request *v = &g->volumes[i];
        free(v->name);
        free(v->type);
        free(v->source);
        free(v->access_mode);
        free(v->attachment_mode);
    }
    free(g->volumes);
    free(g->restart.mode);
    reschedule_free(g->reschedule);
    update_free(g->update);
    migrate_free(g->migrate);
    scaling_free(g->scaling, g->scaling ? 1 : 0);
    kv_free(&g->meta);
    for (size_t i = 0; g->tasks && i < g->ntasks; i++)
        task_free(&g->tasks[i]);
    free(g->tasks);
}

void jobspec_free(struct job *job)
{
    if (!job)
        return;
    free(job->id);
    free(job->name);
    free(job->namespace);
    free(job->region);
    free(job->type);
    strlist_free(&job->datacenters);
    free(job->node_pool);
    kv_free(&job->meta);
    constraints_free(job->constraints, job->nconstraints);
    affinities_free(job->affinities, job->naffinities);
    spreads_free(job->spreads, job->nspreads);
    update_free(job->update);
    migrate_free(job->migrate);
    reschedule_free(job->reschedule);
    for (size_t i = 0; job->groups && i < job->ngroups; i++)
        group_free(&job->groups[i]);
    free(job->groups);
    json_decref(job->periodic);
    json_decref(job->parameterized);
    json_decref(job->vault);
    strlist_free(&job->warnings);
    free(job);
}

/* ---- warnings ---- */

static void warn(struct job *job, const struct nc_buf *path, const char *fmt,
                 ...) __attribute__((format(printf, 3, 4)));
static void warn(struct job *job, const struct nc_buf *path, const char *fmt,
                 ...)
{
    struct nc_buf b = {0};
    nc_buf_printf(&b, "%s: ", path->data ? path->data : "job");
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    strlist_add(&job->warnings, b.data);
    nc_buf_free(&b);
}

#define SEC_NS 1000000000LL
#define IGNORED "is not supported by this node; kept but ignored"

static void path_trunc(struct nc_buf *b, size_t mark)
{
    b->len = mark;
    if (b->data)
        b->data[mark] = '\0';
}

/* One warning per block: `kind[i]: msg`. */
static void warn_list(struct job *job, struct nc_buf *path, const char *kind,
                      size_t n, const char *msg)
{
    size_t mark = path->len;
    for (size_t i = 0; i < n; i++) {
        js_seg_index(path, kind, i, n);
        warn(job, path, "%s", msg);
        path_trunc(path, mark);
    }
}


static void warn_services(struct job *job, struct nc_buf *path,
                          const struct service *s, size_t n)
{
    size_t mark = path->len;
    for (size_t i = 0; i < n; i++) {
        if (s[i].name)
            js_seg_named(path, "service", s[i].name);
        else
            js_seg_index(path, "service", i, n);
        if (s[i].canary_tags.n || s[i].canary_meta.n)
            warn(job, path, "canary_tags and canary_meta are used only by "
                 "canary deployments, which this node does not run; kept "
                 "but ignored");
        for (size_t k = 0; k < s[i].nchecks; k++) {
            if (!s[i].checks[k].expose)
                continue;
            size_t cm = path->len;
            if (s[i].checks[k].name)
                js_seg_named(path, "check", s[i].checks[k].name);
            else
                js_seg_index(path, "check", k, s[i].nchecks);
            warn(job, path, "expose needs a Consul Connect sidecar, which "
                 "this node does not run; kept but ignored");
            path_trunc(path, cm);
        }
        const json_t *c = s[i].connect;
        if (json_is_object(c)) {
            json_t *v;
            if (((v = json_object_get(c, "SidecarService")) && !json_is_null(v)) ||
                ((v = json_object_get(c, "SidecarTask")) && !json_is_null(v)))
                warn(job, path,
                     "connect sidecars are not supported by this node; kept "
                     "but ignored");
            if ((v = json_object_get(c, "Gateway")) && !json_is_null(v))
                warn(job, path,
                     "connect gateways are not supported by this node; kept "
                     "but ignored");
            if (json_is_true(json_object_get(c, "Native")))
                warn(job, path,
                     "connect native is not supported by this node; kept but "
                     "ignored");
        }
        path_trunc(path, mark);
    }
}

/* `kind: msg` under the current path. */
static void warn_at(struct job *job, struct nc_buf *path, const char *kind,
                    const char *msg)
{
    size_t mark = path->len;
    nc_buf_printf(path, " > %s", kind);
    warn(job, path, "%s", msg);
    path_trunc(path, mark);
}

/* Nomad's migrate defaults (api.DefaultMigrateStrategy): what a service
 * group gets without writing the block. */
static bool migrate_is_default(const struct migrate_strategy *m)
{
    return (m->max_parallel == 1 || m->max_parallel == 0) &&
           (!m->health_check || nc_streq(m->health_check, "checks")) &&
           (m->min_healthy_time == 0 || m->min_healthy_time == 10 * SEC_NS) &&
           (m->healthy_deadline == 0 || m->healthy_deadline == 300 * SEC_NS);
}

/* Group stanzas the runner and placement do not use: update (a new
 * version replaces every allocation at once), what of migrate a drain
 * does not pace with, sticky or migrated ephemeral disks (a replacement
 * gets a fresh dir), stop_after_client_disconnect (no servers to lose),
 * mbits and host networks of ports. */
static void warn_group_stanzas(struct job *job, struct nc_buf *path,
                               const struct task_group *tg)
{
    if (tg->update)
        warn_at(job, path, "update",
                "rolling updates, canaries and auto_revert are not run by "
                "this node (a new job version replaces every allocation at "
                "once); kept but ignored");
    if (tg->migrate && nc_streq(job->type, "service") &&
        !migrate_is_default(tg->migrate))
        warn_at(job, path, "migrate",
                "health_check, min_healthy_time and healthy_deadline are not "
                "acted on by this node (a drain stops max_parallel "
                "allocations at a time, with no replacement elsewhere to "
                "wait for); kept but ignored");
    if (tg->ephemeral_disk.sticky || tg->ephemeral_disk.migrate)
        warn_at(job, path, "ephemeral_disk",
                "sticky and migrate are not acted on by this node (a "
                "replacement allocation starts with a new directory); kept "
                "but ignored");
    if (tg->stop_after_client_disconnect > 0)
        warn(job, path, "stop_after_client_disconnect is not acted on by "
                        "this node (it has no servers to lose); kept but "
                        "ignored");
    size_t mark = path->len;
    for (size_t n = 0; n < tg->nnetworks; n++) {
        const struct network *net = &tg->networks[n];
        js_seg_index(path, "network", n, tg->nnetworks);
        if (net->mbits > 0)
            warn(job, path, "mbits is not reserved nor enforced by this "
                            "node; kept but ignored");
        const struct port *lists[] = {net->reserved_ports, net->dynamic_ports};
        size_t counts[] = {net->nreserved_ports, net->ndynamic_ports};
        for (size_t l = 0; l < 2; l++)
            for (size_t i = 0; i < counts[l]; i++) {
                const char *hn = lists[l][i].host_network;
                if (!hn || !*hn || nc_streq(hn, "default"))
                    continue;
                size_t pm = path->len;
                js_seg_named(path, "port", lists[l][i].label);
                warn(job, path, "host_network \"%s\": host networks are "
                     "not supported by this node (the port is on the "
                     "default network); kept but ignored", hn);
                path_trunc(path, pm);
            }
        path_trunc(path, mark);
    }
}

/* propagation_mode other than Nomad's default "private": mounts here are
 * always private. */
static void warn_volume_mounts(struct job *job, struct nc_buf *path,
                               const struct task *tk)
{
    size_t mark = path->len;
    for (size_t i = 0; i < tk->nvolume_mounts; i++) {
        const char *pm = tk->volume_mounts[i].propagation_mode;
        if (!pm || !*pm || nc_streq(pm, "private"))
            continue;
        js_seg_index(path, "volume_mount", i, tk->nvolume_mounts);
        warn(job, path, "propagation_mode \"%s\" is not supported by this "
             "node (mounts are private); kept but ignored", pm);
        path_trunc(path, mark);
    }
}

static void warn_scaling(struct job *job, struct nc_buf *path,
                         const struct scaling_policy *p, size_t n)
{
    size_t mark = path->len;
    for (size_t i = 0; i < n; i++) {
        js_seg_index(path, "scaling", i, n);
        warn(job, path,
             "scaling policies are not acted on by this node (no "
             "autoscaler); kept but ignored");
        path_trunc(path, mark);
    }
    (void)p;
}

void js_collect_warnings(struct job *job)
{
    /* Job-level stanzas are named from the job; group paths start at the
     * group, as error messages do. */
    struct nc_buf path = {0};
    js_seg_named(&path, "job", job->id ? job->id : "");
    if (job->periodic)
        warn(job, &path, "periodic " IGNORED);
    if (job->parameterized)
        warn(job, &path, "parameterized " IGNORED);
    warn_list(job, &path, "affinity", job->naffinities, "affinity " IGNORED);
    warn_list(job, &path, "spread", job->nspreads, "spread " IGNORED);
    for (size_t g = 0; g < job->ngroups; g++) {
        const struct task_group *tg = &job->groups[g];
        path_trunc(&path, 0);
        js_seg_named(&path, "group", tg->name ? tg->name : "");
        size_t gmark = path.len;
        bool per_node =
            nc_streq(job->type, "system") || nc_streq(job->type, "sysbatch");
        if (per_node && tg->count > 1)
            warn(job, &path, "count %d is ignored: %s jobs run one "
                 "allocation per node", tg->count, job->type);
        if (per_node && tg->reschedule) {
            nc_buf_puts(&path, " > reschedule");
            warn(job, &path, "%s jobs are not rescheduled; kept but ignored",
                 job->type);
            path_trunc(&path, gmark);
        }
        if (tg->migrate && !nc_streq(job->type, "service")) {
            nc_buf_puts(&path, " > migrate");
            warn(job, &path, "migrate applies to service jobs only; kept but "
                 "ignored");
            path_trunc(&path, gmark);
        }
        warn_list(job, &path, "affinity", tg->naffinities, "affinity " IGNORED);
        warn_list(job, &path, "spread", tg->nspreads, "spread " IGNORED);
        if (tg->scaling)
            warn_scaling(job, &path, tg->scaling, 1);
        for (size_t v = 0; v < tg->nvolumes; v++) {
            if (!nc_streq(tg->volumes[v].type, "csi"))
                continue;
            js_seg_named(&path, "volume", tg->volumes[v].name);
            warn(job, &path, "csi volumes are not supported by this node; "
                             "kept but ignored");
            path_trunc(&path, gmark);
        }
        warn_group_stanzas(job, &path, tg);
        warn_services(job, &path, tg->services, tg->nservices);
        for (size_t t = 0; t < tg->ntasks; t++) {
            const struct task *tk = &tg->tasks[t];
            js_seg_named(&path, "task", tk->name ? tk->name : "");
            if (tk->vault)
                warn(job, &path, "vault " IGNORED);
            warn_volume_mounts(job, &path, tk);
            if (json_is_array(tk->resources.devices)) {
                size_t mark = path.len;
                json_t *d;
                size_t i;
                json_array_foreach(tk->resources.devices, i, d)
                {
                    nc_buf_puts(&path, " > resources");
                    js_seg_named(&path, "device",
                                 json_string_value(json_object_get(d, "Name")));
                    warn(job, &path, "device requests are not supported by this node; kept but "
                         "ignored");
                    path_trunc(&path, mark);
                }
            }
            warn_list(job, &path, "affinity", tk->naffinities,
                      "affinity " IGNORED);
            warn_scaling(job, &path, tk->scaling_policies,
                         tk->nscaling_policies);
            warn_services(job, &path, tk->services, tk->nservices);
            path_trunc(&path, gmark);
        }
    }
    nc_buf_free(&path);
}

/* ---- entry points ---- */

int js_finish(json_t *api, const struct js_source *src, struct job **out,
              struct nc_error *err)
{
    *out = NULL;
    js_canonicalize(api);
    struct job *job = NULL;
    int r = js_decode(api, src, &job, err);
    json_decref(api);
    if (r < 0)
        return r;
    r = js_validate(job, src, err);
    if (r < 0) {
        jobspec_free(job);
        return r;
    }
    js_collect_warnings(job);
    *out = job;
    return 0;
}

int jobspec_parse_hcl(const char *filename, const char *src, size_t len,
                      struct job **out, struct nc_error *err)
{
    *out = NULL;
    if (!filename)
        filename = "job.nomad";
    struct hcl_file *file = NULL;
    int r = hcl_parse(filename, src, len, &file, err);
    if (r < 0)
        return r;
    struct js_posmap pos = {0};
    json_t *api = NULL, *job_vault = NULL;
    r = js_hcl_to_api(file, &pos, &api, &job_vault, err);
    hcl_file_free(file);
    if (r == 0) {
        struct js_source s = {filename, &pos};
        r = js_finish(api, &s, out, err);
        if (r == 0 && job_vault) {
            (*out)->vault = job_vault;
            job_vault = NULL;
        }
    }
    json_decref(job_vault);
    js_posmap_free(&pos);
    return r;
}

int jobspec_from_json(const json_t *root, struct job **out,
                      struct nc_error *err)
{
    *out = NULL;
    if (!json_is_object(root))
        return nc_error_set(err, -EINVAL, "Job: expected an object");
    const json_t *job = root;
    json_t *wrapped = json_object_get(root, "Job");
    if (wrapped) {
        if (!json_is_object(wrapped))
            return nc_error_set(err, -EINVAL, "Job: expected an object");
        job = wrapped;
    }
    /* Defaults are applied to a copy: the caller's document is const. */
    json_t *copy = json_deep_copy(job);
    if (!copy)
        return nc_error_set(err, -ENOMEM, "Job: cannot copy the document");
    struct js_source s = {NULL, NULL};
    return js_finish(copy, &s, out, err);
}

int jobspec_parse_json(const char *filename, const char *src, size_t len,
                       struct job **out, struct nc_error *err)
{
    *out = NULL;
    if (!filename)
        filename = "job.json";
    json_error_t je;
    json_t *root = json_loadb(src, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return nc_error_set(err, -EINVAL, "%s:%d:%d: %s", filename, je.line,
                            je.column, je.text);
    int r = jobspec_from_json(root, out, err);
    json_decref(root);
    if (r < 0)
        nc_error_prefix(err, "%s", filename);
    return r;
}

/* JSON when the first character that is not blank (nor a UTF-8 BOM) is
 * '{': an HCL file cannot start with one. */
static bool looks_like_json(const char *s, size_t len)
{
    size_t i = 0;
    if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    for (; i < len; i++) {
        if (!isspace((unsigned char)s[i]))
            return s[i] == '{';
    }
    return false;
}

int jobspec_parse_file(const char *path, struct job **out,
                       struct nc_error *err)
{
    *out = NULL;
    size_t len = 0;
    /* Job files are small; 8 MiB is far beyond any real one. */
    char *data = nc_read_file(path, &len, 8u << 20);
    if (!data) {
        int e = errno ? errno : EIO;
        return nc_error_set(err, -e, "%s: cannot read job file: %s", path,
                            strerror(e));
    }
    int r;
    if (looks_like_json(data, len))
        r = jobspec_parse_json(path, data, len, out, err);
    else
        r = jobspec_parse_hcl(path, data, len, out, err);
    free(data);
    return r;
}

int jobspec_validate(struct job *job, struct nc_error *err)
{
    if (!job)
        return nc_error_set(err, -EINVAL, "no job");
    return js_validate(job, NULL, err);
}
