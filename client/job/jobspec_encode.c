/* jobspec_encode.c - the model encoded back as Nomad's API job JSON, in
 * the order `nomad job run -output` prints fields (jobspec_to_json). */
#include <stdlib.h>
#include <string.h>

#include "client/job/internal.h"

#define S(x) ((x) ? (x) : "")

static json_t *jstrlist(const struct strlist *l)
{
    if (!l->n)
        return json_null();
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, js_string(l->items[i]));
    return a;
}

/* Maps print sorted, as Go prints them; empty maps as null. */
static json_t *jkv(const struct kvlist *l)
{
    if (!l->n)
        return json_null();
    struct kvlist copy = {0};
    kv_copy(&copy, l);
    kv_sort(&copy);
    json_t *o = json_object();
    for (size_t i = 0; i < copy.n; i++) {
        json_t *v = js_string(copy.items[i].value);
        if (json_object_set_new(o, copy.items[i].key, v) < 0) {
            /* a key that is not UTF-8 (hand-built model): keep the value */
            json_t *k = js_string(copy.items[i].key);
            json_object_set_new(o, json_string_value(k), js_string(copy.items[i].value));
            json_decref(k);
        }
    }
    kv_free(&copy);
    return o;
}

static json_t *jopaque(const json_t *v)
{
    return v ? js_sorted_copy(v) : json_null();
}

static void set(json_t *o, const char *k, json_t *v)
{
    json_object_set_new(o, k, v ? v : json_null());
}

static json_t *enc_constraints(const struct constraint *c, size_t n)
{
    if (!n)
        return json_null();
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        set(o, "LTarget", js_string(c[i].ltarget));
        set(o, "RTarget", js_string(c[i].rtarget));
        set(o, "Operand", js_string(c[i].operand));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *enc_affinities(const struct affinity *x, size_t n)
{
    if (!n)
        return json_null();
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        set(o, "LTarget", js_string(x[i].ltarget));
        set(o, "RTarget", js_string(x[i].rtarget));
        set(o, "Operand", js_string(x[i].operand));
        set(o, "Weight", json_integer(x[i].weight));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *enc_spreads(const struct spread *x, size_t n)
{
    if (!n)
        return json_null();
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        set(o, "Attribute", js_string(x[i].attribute));
        set(o, "Weight", json_integer(x[i].weight));
        json_t *t = x[i].ntargets ? json_array() : json_null();
        for (size_t j = 0; j < x[i].ntargets; j++)
            json_array_append_new(
                t, json_pack("{s:o, s:i}", "Value",
                             js_string(x[i].targets[j].value), "Percent",
                             x[i].targets[j].percent));
        set(o, "SpreadTarget", t);
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *enc_update(const struct update_strategy *u)
{
    if (!u)
        return json_null();
    json_t *o = json_object();
    set(o, "Stagger", json_integer(u->stagger));
    set(o, "MaxParallel", json_integer(u->max_parallel));
    set(o, "HealthCheck", js_string(u->health_check));
    set(o, "MinHealthyTime", json_integer(u->min_healthy_time));
    set(o, "HealthyDeadline", json_integer(u->healthy_deadline));
    set(o, "ProgressDeadline", json_integer(u->progress_deadline));
    set(o, "Canary", json_integer(u->canary));
    set(o, "AutoRevert", json_boolean(u->auto_revert));
    set(o, "AutoPromote", json_boolean(u->auto_promote));
    return o;
}

static json_t *enc_migrate(const struct migrate_strategy *m)
{
    if (!m)
        return json_null();
    json_t *o = json_object();
    set(o, "MaxParallel", json_integer(m->max_parallel));
    set(o, "HealthCheck", js_string(m->health_check));
    set(o, "MinHealthyTime", json_integer(m->min_healthy_time));
    set(o, "HealthyDeadline", json_integer(m->healthy_deadline));
    return o;
}

static json_t *enc_reschedule(const struct reschedule_policy *r)
{
    if (!r)
        return json_null();
    json_t *o = json_object();
    set(o, "Attempts", json_integer(r->attempts));
    set(o, "Interval", json_integer(r->interval));
    set(o, "Delay", json_integer(r->delay));
    set(o, "DelayFunction", js_string(r->delay_function));
    set(o, "MaxDelay", json_integer(r->max_delay));
    set(o, "Unlimited", json_boolean(r->unlimited));
    return o;
}

static json_t *enc_restart(const struct restart_policy *r)
{
    json_t *o = json_object();
    set(o, "Interval", json_integer(r->interval));
    set(o, "Attempts", json_integer(r->attempts));
    set(o, "Delay", json_integer(r->delay));
    set(o, "Mode", js_string(r->mode));
    set(o, "RenderTemplates", json_boolean(r->render_templates));
    return o;
}

static json_t *enc_scaling(const struct scaling_policy *p)
{
    json_t *o = json_object();
    set(o, "Min", json_integer(p->min));
    set(o, "Max", json_integer(p->max));
    set(o, "Policy", jopaque(p->policy));
    set(o, "Enabled", json_boolean(p->enabled));
    set(o, "Type", js_string(p->type));
    return o;
}

static json_t *enc_ports(const struct port *p, size_t n)
{
    if (!n)
        return json_null();
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        set(o, "Label", js_string(p[i].label));
        set(o, "Value", json_integer(p[i].value));
        set(o, "To", json_integer(p[i].to));
        set(o, "HostNetwork", js_string(p[i].host_network));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *enc_networks(const struct network *nw, size_t n)
{
    if (!n)
        return json_null();
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct network *x = &nw[i];
        json_t *o = json_object();
        set(o, "Mode", js_string(x->mode));
        set(o, "ReservedPorts", enc_ports(x->reserved_ports,
                                          x->nreserved_ports));
        set(o, "DynamicPorts", enc_ports(x->dynamic_ports, x->ndynamic_ports));
        set(o, "MBits", json_integer(x->mbits));
        if (x->dns_servers.n || x->dns_searches.n || x->dns_options.n)
            set(o, "DNS",
                json_pack("{s:o, s:o, s:o}", "Servers",
                          jstrlist(&x->dns_servers), "Searches",
                          jstrlist(&x->dns_searches), "Options",
                          jstrlist(&x->dns_options)));
        else
            set(o, "DNS", NULL);
        set(o, "Hostname", js_string(x->hostname));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *enc_header(const struct kvlist *h)
{
    if (!h->n)
        return json_null();
    struct kvlist copy = {0};
    kv_copy(&copy, h);
    kv_sort(&copy);
    json_t *o = json_object();
    for (size_t i = 0; i < copy.n; i++) {
        json_t *vals = json_array();
        const char *s = copy.items[i].value ? copy.items[i].value : "";
        for (;;) {
            const char *sep = strchr(s, '\x1f');
            size_t len = sep ? (size_t)(sep - s) : strlen(s);
            char *one = xstrndup(s, len);
            json_array_append_new(vals, js_string(one));
            free(one);
            if (!sep)
                break;
            s = sep + 1;
        }
        json_t *k = js_string(copy.items[i].key);
        json_object_set_new(o, json_string_value(k), vals);
        json_decref(k);
    }
    kv_free(&copy);
    return o;
}

static json_t *enc_check(const struct check *c)
{
    json_t *o = json_object();
    set(o, "Name", js_string(c->name));
    set(o, "Type", js_string(c->type));
    set(o, "Command", js_string(c->command));
    set(o, "Args", jstrlist(&c->args));
    set(o, "Path", js_string(c->path));
    set(o, "Protocol", js_string(c->protocol));
    set(o, "PortLabel", js_string(c->port_label));
    set(o, "Expose", json_boolean(c->expose));
    set(o, "AddressMode", js_string(c->address_mode));
    set(o, "Interval", json_integer(c->interval));
    set(o, "Timeout", json_integer(c->timeout));
    set(o, "InitialStatus", js_string(c->initial_status));
    set(o, "TLSSkipVerify", json_boolean(c->tls_skip_verify));
    set(o, "Header", enc_header(&c->header));
    set(o, "Method", js_string(c->method));
    if (c->check_restart)
        set(o, "CheckRestart",
            json_pack("{s:i, s:I, s:b}", "Limit", c->check_restart->limit,
                      "Grace", (json_int_t)c->check_restart->grace,
                      "IgnoreWarnings", c->check_restart->ignore_warnings));
    else
        set(o, "CheckRestart", NULL);
    set(o, "GRPCService", js_string(c->grpc_service));
    set(o, "GRPCUseTLS", json_boolean(c->grpc_use_tls));
    set(o, "TaskName", js_string(c->task_name));
    set(o, "SuccessBeforePassing", json_integer(c->success_before_passing));
    set(o, "FailuresBeforeCritical", json_integer(c->failures_before_critical));
    set(o, "FailuresBeforeWarning", json_integer(c->failures_before_warning));
    set(o, "Body", js_string(c->body));
    set(o, "OnUpdate", js_string(c->on_update));
    return o;
}

static json_t *enc_services(const struct service *s, size_t n)
{
    if (!n)
        return json_null();
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct service *x = &s[i];
        json_t *o = json_object();
        set(o, "Name", js_string(x->name));
        set(o, "Tags", jstrlist(&x->tags));
        set(o, "CanaryTags", jstrlist(&x->canary_tags));
        set(o, "EnableTagOverride", json_boolean(x->enable_tag_override));
        set(o, "PortLabel", js_string(x->port_label));
        set(o, "AddressMode", js_string(x->address_mode));
        set(o, "Address", js_string(x->address));
        json_t *checks = x->nchecks ? json_array() : json_null();
        for (size_t c = 0; c < x->nchecks; c++)
            json_array_append_new(checks, enc_check(&x->checks[c]));
        set(o, "Checks", checks);
        set(o, "Connect", jopaque(x->connect));
        set(o, "Meta", jkv(&x->meta));
        set(o, "CanaryMeta", jkv(&x->canary_meta));
        set(o, "TaskName", js_string(x->task_name));
        set(o, "OnUpdate", js_string(x->on_update));
        set(o, "Provider", js_string(x->provider));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *enc_task(const struct task_group *g, const struct task *t)
{
    json_t *o = json_object();
    set(o, "Name", js_string(t->name));
    set(o, "Driver", js_string(t->driver));
    set(o, "User", js_string(t->user));
    if (t->lifecycle)
        set(o, "Lifecycle",
            json_pack("{s:o, s:b}", "Hook", js_string(t->lifecycle->hook),
                      "Sidecar", t->lifecycle->sidecar));
    else
        set(o, "Lifecycle", NULL);
    set(o, "Config", jopaque(t->config));
    set(o, "Constraints", enc_constraints(t->constraints, t->nconstraints));
    set(o, "Affinities", enc_affinities(t->affinities, t->naffinities));
    set(o, "Env", jkv(&t->env));
    set(o, "Services", enc_services(t->services, t->nservices));
    json_t *r = json_object();
    set(r, "CPU", json_integer(t->resources.cpu));
    set(r, "Cores", json_integer(t->resources.cores));
    set(r, "MemoryMB", json_integer(t->resources.memory_mb));
    set(r, "MemoryMaxMB", json_integer(t->resources.memory_max_mb));
    set(r, "DiskMB", json_integer(t->resources.disk_mb));
    set(r, "Devices", jopaque(t->resources.devices));
    set(o, "Resources", r);
    set(o, "RestartPolicy", enc_restart(t->restart ? t->restart : &g->restart));
    set(o, "Meta", jkv(&t->meta));
    set(o, "KillTimeout", json_integer(t->kill_timeout));
    set(o, "LogConfig",
        json_pack("{s:i, s:i, s:b}", "MaxFiles", t->logs.max_files,
                  "MaxFileSizeMB", t->logs.max_file_size_mb, "Disabled",
                  t->logs.disabled));
    json_t *ar = t->nartifacts ? json_array() : json_null();
    for (size_t i = 0; i < t->nartifacts; i++) {
        const struct artifact *x = &t->artifacts[i];
        json_t *ao = json_object();
        set(ao, "GetterSource", js_string(x->source));
        set(ao, "GetterOptions", x->options.n ? jkv(&x->options) : json_null());
        set(ao, "GetterHeaders", x->headers.n ? jkv(&x->headers) : json_null());
        set(ao, "GetterMode", js_string(x->mode));
        set(ao, "GetterInsecure", json_boolean(x->insecure));
        set(ao, "RelativeDest", js_string(x->destination));
        set(ao, "Chown", json_boolean(x->chown));
        json_array_append_new(ar, ao);
    }
    set(o, "Artifacts", ar);
    set(o, "Vault", jopaque(t->vault));
    json_t *tp = t->ntemplates ? json_array() : json_null();
    for (size_t i = 0; i < t->ntemplates; i++) {
        const struct template_spec *x = &t->templates[i];
        json_t *to = json_object();
        set(to, "SourcePath", js_string(x->source_path));
        set(to, "DestPath", js_string(x->dest_path));
        set(to, "EmbeddedTmpl", js_string(x->embedded_tmpl));
        set(to, "ChangeMode", js_string(x->change_mode));
        set(to, "ChangeSignal", js_string(x->change_signal));
        set(to, "Splay", json_integer(x->splay));
        set(to, "Perms", js_string(x->perms));
        set(to, "LeftDelim", js_string(x->left_delim));
        set(to, "RightDelim", js_string(x->right_delim));
        set(to, "Envvars", json_boolean(x->envvars));
        set(to, "ErrMissingKey", json_boolean(x->err_missing_key));
        set(to, "Uid", json_integer(x->uid));
        set(to, "Gid", json_integer(x->gid));
        set(to, "Wait", x->wait_min || x->wait_max
                            ? json_pack("{s:I, s:I}", "Min",
                                        (json_int_t)x->wait_min, "Max",
                                        (json_int_t)x->wait_max)
                            : json_null());
        if (x->script_command) {
            json_t *args = json_array();
            for (size_t k = 0; k < x->script_args.n; k++)
                json_array_append_new(args, json_string(x->script_args.items[k]));
            set(to, "ChangeScript",
                json_pack("{s:s, s:o, s:I, s:b}", "Command", x->script_command,
                          "Args", args, "Timeout",
                          (json_int_t)x->script_timeout, "FailOnError",
                          x->script_fail_on_error));
        } else {
            set(to, "ChangeScript", json_null());
        }
        json_array_append_new(tp, to);
    }
    set(o, "Templates", tp);
    json_t *vm = t->nvolume_mounts ? json_array() : json_null();
    for (size_t i = 0; i < t->nvolume_mounts; i++) {
        const struct volume_mount *x = &t->volume_mounts[i];
        json_array_append_new(
            vm, json_pack("{s:o, s:o, s:b, s:o}", "Volume",
                          js_string(x->volume), "Destination",
                          js_string(x->destination), "ReadOnly", x->read_only,
                          "PropagationMode", js_string(x->propagation_mode)));
    }
    set(o, "VolumeMounts", vm);
    set(o, "Leader", json_boolean(t->leader));
    set(o, "ShutdownDelay", json_integer(t->shutdown_delay));
    set(o, "KillSignal", js_string(t->kill_signal));
    json_t *sp = t->nscaling_policies ? json_array() : json_null();
    for (size_t i = 0; i < t->nscaling_policies; i++)
        json_array_append_new(sp, enc_scaling(&t->scaling_policies[i]));
    set(o, "ScalingPolicies", sp);
    return o;
}

static json_t *enc_group(const struct task_group *g)
{
    json_t *o = json_object();
    set(o, "Name", js_string(g->name));
    set(o, "Count", json_integer(g->count));
    set(o, "Constraints", enc_constraints(g->constraints, g->nconstraints));
    set(o, "Affinities", enc_affinities(g->affinities, g->naffinities));
    json_t *tasks = g->ntasks ? json_array() : json_null();
    for (size_t i = 0; i < g->ntasks; i++)
        json_array_append_new(tasks, enc_task(g, &g->tasks[i]));
    set(o, "Tasks", tasks);
    set(o, "Spreads", enc_spreads(g->spreads, g->nspreads));
    /* a map: printed sorted by name, as Go prints maps */
    json_t *vols = g->nvolumes ? json_object() : json_null();
    size_t *order = xcalloc(g->nvolumes ? g->nvolumes : 1, sizeof(*order));
    for (size_t i = 0; i < g->nvolumes; i++) {
        size_t k = i;
        while (k > 0 && strcmp(S(g->volumes[order[k - 1]].name),
                               S(g->volumes[i].name)) > 0) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    for (size_t i = 0; i < g->nvolumes; i++) {
        const struct volume_request *v = &g->volumes[order[i]];
        json_t *vo = json_object();
        set(vo, "Name", js_string(v->name));
        set(vo, "Type", js_string(v->type));
        set(vo, "Source", js_string(v->source));
        set(vo, "ReadOnly", json_boolean(v->read_only));
        set(vo, "AccessMode", js_string(v->access_mode));
        set(vo, "AttachmentMode", js_string(v->attachment_mode));
        set(vo, "PerAlloc", json_boolean(v->per_alloc));
        json_t *k = js_string(v->name);
        json_object_set_new(vols, json_string_value(k), vo);
        json_decref(k);
    }
    free(order);
    set(o, "Volumes", vols);
    set(o, "RestartPolicy", enc_restart(&g->restart));
    set(o, "ReschedulePolicy", enc_reschedule(g->reschedule));
    set(o, "EphemeralDisk",
        json_pack("{s:b, s:b, s:i}", "Sticky", g->ephemeral_disk.sticky,
                  "Migrate", g->ephemeral_disk.migrate, "SizeMB",
                  g->ephemeral_disk.mb));
    set(o, "Update", enc_update(g->update));
    set(o, "Migrate", enc_migrate(g->migrate));
    set(o, "Networks", enc_networks(g->networks, g->nnetworks));
    set(o, "Meta", jkv(&g->meta));
    set(o, "Services", enc_services(g->services, g->nservices));
    set(o, "ShutdownDelay", json_integer(g->shutdown_delay));
    set(o, "StopAfterClientDisconnect",
        g->stop_after_client_disconnect
            ? json_integer(g->stop_after_client_disconnect)
            : NULL);
    set(o, "Scaling", g->scaling ? enc_scaling(g->scaling) : NULL);
    return o;
}

json_t *jobspec_to_json(const struct job *job)
{
    if (!job)
        return json_null();
    json_t *o = json_object();
    set(o, "Region", js_string(job->region));
    set(o, "Namespace", js_string(job->namespace));
    set(o, "ID", js_string(job->id));
    set(o, "Name", js_string(job->name));
    set(o, "Type", js_string(job->type));
    set(o, "Priority", json_integer(job->priority));
    set(o, "AllAtOnce", json_boolean(job->all_at_once));
    set(o, "Datacenters", jstrlist(&job->datacenters));
    set(o, "NodePool", js_string(job->node_pool));
    set(o, "Constraints", enc_constraints(job->constraints, job->nconstraints));
    set(o, "Affinities", enc_affinities(job->affinities, job->naffinities));
    json_t *groups = job->ngroups ? json_array() : json_null();
    for (size_t i = 0; i < job->ngroups; i++)
        json_array_append_new(groups, enc_group(&job->groups[i]));
    set(o, "TaskGroups", groups);
    set(o, "Update", enc_update(job->update));
    set(o, "Spreads", enc_spreads(job->spreads, job->nspreads));
    set(o, "Periodic", jopaque(job->periodic));
    set(o, "ParameterizedJob", jopaque(job->parameterized));
    set(o, "Reschedule", enc_reschedule(job->reschedule));
    set(o, "Migrate", enc_migrate(job->migrate));
    set(o, "Meta", jkv(&job->meta));
    return o;
}

