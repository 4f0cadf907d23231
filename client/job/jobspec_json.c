/* jobspec_json.c - Nomad's API job JSON decoded into the model with type
 * checks (js_decode). Unknown keys are ignored, as Nomad's API does. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/internal.h"

struct dc {
    struct nc_buf path; /* "Job.TaskGroups[0].Tasks[1]" */
    const struct js_source *src;
    struct nc_error *err;
};

static size_t push_key(struct dc *c, const char *key)
{
    size_t mark = c->path.len;
    nc_buf_printf(&c->path, ".%s", key);
    return mark;
}

static size_t push_idx(struct dc *c, size_t i)
{
    size_t mark = c->path.len;
    nc_buf_printf(&c->path, "[%zu]", i);
    return mark;
}

static void pop(struct dc *c, size_t mark)
{
    c->path.len = mark;
    c->path.data[mark] = '\0';
}

static int fail(struct dc *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(struct dc *c, const char *fmt, ...)
{
    struct nc_buf b = {0};
    js_where(c->src, c->path.data, &b);
    nc_buf_printf(&b, "%s: ", c->path.data);
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    nc_error_set(c->err, -EINVAL, "%s", b.data);
    nc_buf_free(&b);
    return -EINVAL;
}

/* Looks up o[key]; NULL when absent or null (Go leaves the zero value).
 * On a hit the key is pushed on the path; the caller pops it. */
static json_t *field(struct dc *c, const json_t *o, const char *key,
                     size_t *mark)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return NULL;
    *mark = push_key(c, key);
    return v;
}

static int str_value(struct dc *c, const json_t *v, char **out)
{
    if (!json_is_string(v))
        return fail(c, "expected a string");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return fail(c, "string contains a null character");
    free(*out);
    *out = xstrdup(json_string_value(v));
    return 0;
}

static int get_str(struct dc *c, const json_t *o, const char *key, char **out)
{
    size_t mark;
    json_t *v = field(c, o, key, &mark);
    if (!v)
        return 0;
    int r = str_value(c, v, out);
    if (r == 0)
        pop(c, mark);
    return r;
}

static int get_i64(struct dc *c, const json_t *o, const char *key,
                   int64_t *out, int64_t min, int64_t max)
{
    size_t mark;
    json_t *v = field(c, o, key, &mark);
    if (!v)
        return 0;
    if (json_is_real(v))
        return fail(c, "expected a whole number, got %g", json_real_value(v));
    if (!json_is_integer(v))
        return fail(c, "expected a number");
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return fail(c, "number %lld out of range", (long long)n);
    *out = n;
    pop(c, mark);
    return 0;
}

static int get_int(struct dc *c, const json_t *o, const char *key, int *out)
{
    int64_t v = *out;
    int r = get_i64(c, o, key, &v, INT_MIN, INT_MAX);
    if (r == 0)
        *out = (int)v;
    return r;
}

static int get_dur(struct dc *c, const json_t *o, const char *key,
                   int64_t *out)
{
    return get_i64(c, o, key, out, INT64_MIN, INT64_MAX);
}

static int get_bool(struct dc *c, const json_t *o, const char *key, bool *out)
{
    size_t mark;
    json_t *v = field(c, o, key, &mark);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return fail(c, "expected a boolean");
    *out = json_is_true(v);
    pop(c, mark);
    return 0;
}

static int get_strlist(struct dc *c, const json_t *o, const char *key,
                       struct strlist *out)
{
    size_t mark;
    json_t *v = field(c, o, key, &mark);
    if (!v)
        return 0;
    if (!json_is_array(v))
        return fail(c, "expected an array of strings");
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s)
    {
        size_t m2 = push_idx(c, i);
        char *tmp = NULL;
        if (str_value(c, s, &tmp) < 0)
            return -EINVAL;
        strlist_add(out, tmp);
        free(tmp);
        pop(c, m2);
    }
    pop(c, mark);
    return 0;
}

static int get_strmap(struct dc *c, const json_t *o, const char *key,
                      struct kvlist *out)
{
    size_t mark;
    json_t *v = field(c, o, key, &mark);
    if (!v)
        return 0;
    if (!json_is_object(v))
        return fail(c, "expected an object of strings");
    const char *k;
    json_t *s;
    json_object_foreach(v, k, s)
    {
        size_t m2 = push_key(c, k);
        char *tmp = NULL;
        if (str_value(c, s, &tmp) < 0)
            return -EINVAL;
        kv_set(out, k, tmp);
        free(tmp);
        pop(c, m2);
    }
    pop(c, mark);
    return 0;
}

static int depth_of(const json_t *v, int limit)
{
    if (limit < 0)
        return 1;
    int d = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            int e = depth_of(x, limit - 1);
            if (e > d)
                d = e;
        }
        return d + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            int e = depth_of(x, limit - 1);
            if (e > d)
                d = e;
        }
        return d + 1;
    }
    return 0;
}

/* Opaque JSON kept as is (driver config, connect, vault, ...). */
static int get_opaque(struct dc *c, const json_t *o, const char *key,
                      json_t **out, bool array)
{
    size_t mark;
    json_t *v = field(c, o, key, &mark);
    if (!v)
        return 0;
    if (array ? !json_is_array(v) : !json_is_object(v))
        return fail(c, array ? "expected an array" : "expected an object");
    if (depth_of(v, JS_MAX_DEPTH) > JS_MAX_DEPTH)
        return fail(c, "nested deeper than %d levels", JS_MAX_DEPTH);
    json_decref(*out);
    *out = json_deep_copy(v);
    pop(c, mark);
    return 0;
}

typedef int (*elem_fn)(struct dc *c, const json_t *o, void *out);

/* Decodes an array of objects into a calloc'ed array of structs; the
 * count is set before decoding so a failure leaves a freeable array. */
static int get_array(struct dc *c, const json_t *o, const char *key,
                     void **arr, size_t *n, size_t size, elem_fn fn)
{
    size_t mark;
    json_t *v = field(c, o, key, &mark);
    if (!v)
        return 0;
    if (!json_is_array(v))
        return fail(c, "expected an array");
    size_t cnt = json_array_size(v);
    *arr = xcalloc(cnt ? cnt : 1, size);
    *n = cnt;
    for (size_t i = 0; i < cnt; i++) {
        size_t m2 = push_idx(c, i);
        json_t *e = json_array_get(v, i);
        if (!json_is_object(e))
            return fail(c, "expected an object");
        int r = fn(c, e, (char *)*arr + i * size);
        if (r < 0)
            return r;
        pop(c, m2);
    }
    pop(c, mark);
    return 0;
}

/* Decodes o[key] (an object) with fn into a new struct of `size` bytes. */
static int get_object(struct dc *c, const json_t *o, const char *key,
                      void **out, size_t size, elem_fn fn)
{
    size_t mark;
    json_t *v = field(c, o, key, &mark);
    if (!v)
        return 0;
    if (!json_is_object(v))
        return fail(c, "expected an object");
    *out = xcalloc(1, size);
    int r = fn(c, v, *out);
    if (r < 0)
        return r;
    pop(c, mark);
    return 0;
}

#define TRY(x)                                                                 \
    do {                                                                       \
        int r_ = (x);                                                          \
        if (r_ < 0)                                                            \
            return r_;                                                         \
    } while (0)

static int dec_constraint(struct dc *c, const json_t *o, void *out)
{
    struct constraint *x = out;
    TRY(get_str(c, o, "LTarget", &x->ltarget));
    TRY(get_str(c, o, "RTarget", &x->rtarget));
    TRY(get_str(c, o, "Operand", &x->operand));
    return 0;
}

static int dec_affinity(struct dc *c, const json_t *o, void *out)
{
    struct affinity *x = out;
    TRY(get_str(c, o, "LTarget", &x->ltarget));
    TRY(get_str(c, o, "RTarget", &x->rtarget));
    TRY(get_str(c, o, "Operand", &x->operand));
    TRY(get_int(c, o, "Weight", &x->weight));
    return 0;
}

static int dec_spread_target(struct dc *c, const json_t *o, void *out)
{
    struct spread_target *x = out;
    TRY(get_str(c, o, "Value", &x->value));
    TRY(get_int(c, o, "Percent", &x->percent));
    return 0;
}

static int dec_spread(struct dc *c, const json_t *o, void *out)
{
    struct spread *x = out;
    TRY(get_str(c, o, "Attribute", &x->attribute));
    TRY(get_int(c, o, "Weight", &x->weight));
    TRY(get_array(c, o, "SpreadTarget", (void **)&x->targets, &x->ntargets,
                  sizeof(*x->targets), dec_spread_target));
    return 0;
}

static int dec_update(struct dc *c, const json_t *o, void *out)
{
    struct update_strategy *x = out;
    TRY(get_int(c, o, "MaxParallel", &x->max_parallel));
    TRY(get_str(c, o, "HealthCheck", &x->health_check));
    TRY(get_dur(c, o, "MinHealthyTime", &x->min_healthy_time));
    TRY(get_dur(c, o, "HealthyDeadline", &x->healthy_deadline));
    TRY(get_dur(c, o, "ProgressDeadline", &x->progress_deadline));
    TRY(get_dur(c, o, "Stagger", &x->stagger));
    TRY(get_bool(c, o, "AutoRevert", &x->auto_revert));
    TRY(get_bool(c, o, "AutoPromote", &x->auto_promote));
    TRY(get_int(c, o, "Canary", &x->canary));
    return 0;
}

static int dec_migrate(struct dc *c, const json_t *o, void *out)
{
    struct migrate_strategy *x = out;
    TRY(get_int(c, o, "MaxParallel", &x->max_parallel));
    TRY(get_str(c, o, "HealthCheck", &x->health_check));
    TRY(get_dur(c, o, "MinHealthyTime", &x->min_healthy_time));
    TRY(get_dur(c, o, "HealthyDeadline", &x->healthy_deadline));
    return 0;
}

static int dec_reschedule(struct dc *c, const json_t *o, void *out)
{
    struct reschedule_policy *x = out;
    TRY(get_int(c, o, "Attempts", &x->attempts));
    TRY(get_dur(c, o, "Interval", &x->interval));
    TRY(get_dur(c, o, "Delay", &x->delay));
    TRY(get_str(c, o, "DelayFunction", &x->delay_function));
    TRY(get_dur(c, o, "MaxDelay", &x->max_delay));
    TRY(get_bool(c, o, "Unlimited", &x->unlimited));
    return 0;
}

static int dec_restart(struct dc *c, const json_t *o, void *out)
{
    struct restart_policy *x = out;
    TRY(get_int(c, o, "Attempts", &x->attempts));
    TRY(get_dur(c, o, "Interval", &x->interval));
    TRY(get_dur(c, o, "Delay", &x->delay));
    TRY(get_str(c, o, "Mode", &x->mode));
    TRY(get_bool(c, o, "RenderTemplates", &x->render_templates));
    return 0;
}

static int dec_scaling(struct dc *c, const json_t *o, void *out)
{
    struct scaling_policy *x = out;
    x->max = -1;
    TRY(get_i64(c, o, "Min", &x->min, INT64_MIN, INT64_MAX));
    TRY(get_i64(c, o, "Max", &x->max, INT64_MIN, INT64_MAX));
    TRY(get_bool(c, o, "Enabled", &x->enabled));
    TRY(get_str(c, o, "Type", &x->type));
    TRY(get_opaque(c, o, "Policy", &x->policy, false));
    return 0;
}

static int dec_port(struct dc *c, const json_t *o, void *out)
{
    struct port *x = out;
    TRY(get_str(c, o, "Label", &x->label));
    TRY(get_int(c, o, "Value", &x->value));
    TRY(get_int(c, o, "To", &x->to));
    TRY(get_str(c, o, "HostNetwork", &x->host_network));
    return 0;
}

static int dec_network(struct dc *c, const json_t *o, void *out)
{
    struct network *x = out;
    TRY(get_str(c, o, "Mode", &x->mode));
    TRY(get_array(c, o, "ReservedPorts", (void **)&x->reserved_ports,
                  &x->nreserved_ports, sizeof(struct port), dec_port));
    TRY(get_array(c, o, "DynamicPorts", (void **)&x->dynamic_ports,
                  &x->ndynamic_ports, sizeof(struct port), dec_port));
    TRY(get_int(c, o, "MBits", &x->mbits));
    TRY(get_str(c, o, "Hostname", &x->hostname));
    size_t mark;
    json_t *dns = field(c, o, "DNS", &mark);
    if (dns) {
        if (!json_is_object(dns))
            return fail(c, "expected an object");
        TRY(get_strlist(c, dns, "Servers", &x->dns_servers));
        TRY(get_strlist(c, dns, "Searches", &x->dns_searches));
        TRY(get_strlist(c, dns, "Options", &x->dns_options));
        pop(c, mark);
    }
    return 0;
}

static int dec_check_restart(struct dc *c, const json_t *o, void *out)
{
    struct check_restart *x = out;
    TRY(get_int(c, o, "Limit", &x->limit));
    TRY(get_dur(c, o, "Grace", &x->grace));
    TRY(get_bool(c, o, "IgnoreWarnings", &x->ignore_warnings));
    return 0;
}

static int dec_header(struct dc *c, const json_t *o, struct kvlist *out)
{
    size_t mark;
    json_t *h = field(c, o, "Header", &mark);
    if (!h)
        return 0;
    if (!json_is_object(h))
        return fail(c, "expected an object of string arrays");
    const char *k;
    json_t *vals;
    json_object_foreach(h, k, vals)
    {
        size_t m2 = push_key(c, k);
        if (!json_is_array(vals))
            return fail(c, "expected an array of strings");
        struct nc_buf joined = {0};
        size_t i;
        json_t *s;
        json_array_foreach(vals, i, s)
        {
            char *tmp = NULL;
            size_t m3 = push_idx(c, i);
            if (str_value(c, s, &tmp) < 0) {
                nc_buf_free(&joined);
                return -EINVAL;
            }
            if (strchr(tmp, '\x1f')) {
                free(tmp);
                nc_buf_free(&joined);
                return fail(c, "header values cannot contain \\u001f");
            }
            if (i)
                nc_buf_putc(&joined, '\x1f');
            nc_buf_puts(&joined, tmp);
            free(tmp);
            pop(c, m3);
        }
        char *val = nc_buf_take(&joined);
        kv_set(out, k, val);
        free(val);
        pop(c, m2);
    }
    pop(c, mark);
    return 0;
}

static int dec_check(struct dc *c, const json_t *o, void *out)
{
    struct check *x = out;
    TRY(get_str(c, o, "Name", &x->name));
    TRY(get_str(c, o, "Type", &x->type));
    TRY(get_str(c, o, "Command", &x->command));
    TRY(get_strlist(c, o, "Args", &x->args));
    TRY(get_str(c, o, "Path", &x->path));
    TRY(get_str(c, o, "Protocol", &x->protocol));
    TRY(get_str(c, o, "PortLabel", &x->port_label));
    TRY(get_bool(c, o, "Expose", &x->expose));
    TRY(get_str(c, o, "AddressMode", &x->address_mode));
    TRY(get_dur(c, o, "Interval", &x->interval));
    TRY(get_dur(c, o, "Timeout", &x->timeout));
    TRY(get_str(c, o, "InitialStatus", &x->initial_status));
    TRY(get_bool(c, o, "TLSSkipVerify", &x->tls_skip_verify));
    TRY(dec_header(c, o, &x->header));
    TRY(get_str(c, o, "Method", &x->method));
    TRY(get_object(c, o, "CheckRestart", (void **)&x->check_restart,
                   sizeof(*x->check_restart), dec_check_restart));
    TRY(get_str(c, o, "GRPCService", &x->grpc_service));
    TRY(get_bool(c, o, "GRPCUseTLS", &x->grpc_use_tls));
    TRY(get_str(c, o, "TaskName", &x->task_name));
    TRY(get_int(c, o, "SuccessBeforePassing", &x->success_before_passing));
    TRY(get_int(c, o, "FailuresBeforeCritical", &x->failures_before_critical));
    TRY(get_int(c, o, "FailuresBeforeWarning", &x->failures_before_warning));
    TRY(get_str(c, o, "Body", &x->body));
    TRY(get_str(c, o, "OnUpdate", &x->on_update));
    return 0;
}

static int dec_service(struct dc *c, const json_t *o, void *out)
{
    struct service *x = out;
    TRY(get_str(c, o, "Name", &x->name));
    TRY(get_strlist(c, o, "Tags", &x->tags));
    TRY(get_strlist(c, o, "CanaryTags", &x->canary_tags));
    TRY(get_bool(c, o, "EnableTagOverride", &x->enable_tag_override));
    TRY(get_str(c, o, "PortLabel", &x->port_label));
    TRY(get_str(c, o, "AddressMode", &x->address_mode));
    TRY(get_str(c, o, "Address", &x->address));
    TRY(get_array(c, o, "Checks", (void **)&x->checks, &x->nchecks,
                  sizeof(*x->checks), dec_check));
    TRY(get_opaque(c, o, "Connect", &x->connect, false));
    TRY(get_strmap(c, o, "Meta", &x->meta));
    TRY(get_strmap(c, o, "CanaryMeta", &x->canary_meta));
    TRY(get_str(c, o, "TaskName", &x->task_name));
    TRY(get_str(c, o, "OnUpdate", &x->on_update));
    TRY(get_str(c, o, "Provider", &x->provider));
    size_t mark;
    if (field(c, o, "CheckRestart", &mark))
        return fail(c, "expected an object"); /* objects were merged away */
    return 0;
}

/* Decodes o[key] (an object) with fn into x, a struct the caller has. */
static int get_inline(struct dc *c, const json_t *o, const char *key, void *x,
                      elem_fn fn)
{
    size_t mark;
    json_t *v = field(c, o, key, &mark);
    if (!v)
        return 0;
    if (!json_is_object(v))
        return fail(c, "expected an object");
    int r = fn(c, v, x);
    if (r < 0)
        return r;
    pop(c, mark);
    return 0;
}

static int dec_template_wait(struct dc *c, const json_t *o, void *out)
{
    struct template_spec *x = out;
    TRY(get_dur(c, o, "Min", &x->wait_min));
    return get_dur(c, o, "Max", &x->wait_max);
}

static int dec_change_script(struct dc *c, const json_t *o, void *out)
{
    struct template_spec *x = out;
    TRY(get_str(c, o, "Command", &x->script_command));
    TRY(get_strlist(c, o, "Args", &x->script_args));
    TRY(get_dur(c, o, "Timeout", &x->script_timeout));
    return get_bool(c, o, "FailOnError", &x->script_fail_on_error);
}

static int dec_template(struct dc *c, const json_t *o, void *out)
{
    struct template_spec *x = out;
    TRY(get_str(c, o, "SourcePath", &x->source_path));
    TRY(get_str(c, o, "DestPath", &x->dest_path));
    TRY(get_str(c, o, "EmbeddedTmpl", &x->embedded_tmpl));
    TRY(get_str(c, o, "ChangeMode", &x->change_mode));
    TRY(get_str(c, o, "ChangeSignal", &x->change_signal));
    TRY(get_dur(c, o, "Splay", &x->splay));
    TRY(get_str(c, o, "Perms", &x->perms));
    TRY(get_str(c, o, "LeftDelim", &x->left_delim));
    TRY(get_str(c, o, "RightDelim", &x->right_delim));
    TRY(get_bool(c, o, "Envvars", &x->envvars));
    TRY(get_bool(c, o, "ErrMissingKey", &x->err_missing_key));
    x->uid = x->gid = -1;
    TRY(get_int(c, o, "Uid", &x->uid));
    TRY(get_int(c, o, "Gid", &x->gid));
    TRY(get_inline(c, o, "Wait", x, dec_template_wait));
    x->script_timeout = 5 * 1000000000LL;
    return get_inline(c, o, "ChangeScript", x, dec_change_script);
}

static int dec_artifact(struct dc *c, const json_t *o, void *out)
{
    struct artifact *x = out;
    TRY(get_str(c, o, "GetterSource", &x->source));
    TRY(get_str(c, o, "RelativeDest", &x->destination));
    TRY(get_str(c, o, "GetterMode", &x->mode));
    TRY(get_strmap(c, o, "GetterOptions", &x->options));
    TRY(get_strmap(c, o, "GetterHeaders", &x->headers));
    TRY(get_bool(c, o, "GetterInsecure", &x->insecure));
    TRY(get_bool(c, o, "Chown", &x->chown));
    return 0;
}

static int dec_volume_mount(struct dc *c, const json_t *o, void *out)
{
    struct volume_mount *x = out;
    TRY(get_str(c, o, "Volume", &x->volume));
    TRY(get_str(c, o, "Destination", &x->destination));
    TRY(get_bool(c, o, "ReadOnly", &x->read_only));
    TRY(get_str(c, o, "PropagationMode", &x->propagation_mode));
    return 0;
}

static int dec_lifecycle(struct dc *c, const json_t *o, void *out)
{
    struct lifecycle *x = out;
    TRY(get_str(c, o, "Hook", &x->hook));
    TRY(get_bool(c, o, "Sidecar", &x->sidecar));
    return 0;
}

static int dec_resources(struct dc *c, const json_t *o, struct resources *x)
{
    TRY(get_int(c, o, "CPU", &x->cpu));
    TRY(get_int(c, o, "Cores", &x->cores));
    TRY(get_int(c, o, "MemoryMB", &x->memory_mb));
    TRY(get_int(c, o, "MemoryMaxMB", &x->memory_max_mb));
    TRY(get_int(c, o, "DiskMB", &x->disk_mb));
    TRY(get_opaque(c, o, "Devices", &x->devices, true));
    return 0;
}

static bool restart_equal(const struct restart_policy *a,
                          const struct restart_policy *b)
{
    return a->attempts == b->attempts && a->interval == b->interval &&
           a->delay == b->delay && nc_streq(a->mode, b->mode) &&
           a->render_templates == b->render_templates;
}

static int dec_task(struct dc *c, const json_t *o, void *out)
{
    struct task *x = out;
    TRY(get_str(c, o, "Name", &x->name));
    TRY(get_str(c, o, "Driver", &x->driver));
    TRY(get_str(c, o, "User", &x->user));
    TRY(get_object(c, o, "Lifecycle", (void **)&x->lifecycle,
                   sizeof(*x->lifecycle), dec_lifecycle));
    TRY(get_opaque(c, o, "Config", &x->config, false));
    TRY(get_array(c, o, "Constraints", (void **)&x->constraints,
                  &x->nconstraints, sizeof(*x->constraints), dec_constraint));
    TRY(get_array(c, o, "Affinities", (void **)&x->affinities,
                  &x->naffinities, sizeof(*x->affinities), dec_affinity));
    TRY(get_strmap(c, o, "Env", &x->env));
    TRY(get_array(c, o, "Services", (void **)&x->services, &x->nservices,
                  sizeof(*x->services), dec_service));
    size_t mark;
    json_t *res = field(c, o, "Resources", &mark);
    if (res) {
        if (!json_is_object(res))
            return fail(c, "expected an object");
        TRY(dec_resources(c, res, &x->resources));
        pop(c, mark);
    }
    TRY(get_object(c, o, "RestartPolicy", (void **)&x->restart,
                   sizeof(*x->restart), dec_restart));
    TRY(get_strmap(c, o, "Meta", &x->meta));
    TRY(get_dur(c, o, "KillTimeout", &x->kill_timeout));
    json_t *lc = field(c, o, "LogConfig", &mark);
    if (lc) {
        if (!json_is_object(lc))
            return fail(c, "expected an object");
        TRY(get_int(c, lc, "MaxFiles", &x->logs.max_files));
        TRY(get_int(c, lc, "MaxFileSizeMB", &x->logs.max_file_size_mb));
        TRY(get_bool(c, lc, "Disabled", &x->logs.disabled));
        pop(c, mark);
    }
    TRY(get_array(c, o, "Artifacts", (void **)&x->artifacts, &x->nartifacts,
                  sizeof(*x->artifacts), dec_artifact));
    TRY(get_opaque(c, o, "Vault", &x->vault, false));
    TRY(get_array(c, o, "Templates", (void **)&x->templates, &x->ntemplates,
                  sizeof(*x->templates), dec_template));
    TRY(get_array(c, o, "VolumeMounts", (void **)&x->volume_mounts,
                  &x->nvolume_mounts, sizeof(*x->volume_mounts),
                  dec_volume_mount));
    TRY(get_bool(c, o, "Leader", &x->leader));
    TRY(get_dur(c, o, "ShutdownDelay", &x->shutdown_delay));
    TRY(get_str(c, o, "KillSignal", &x->kill_signal));
    TRY(get_array(c, o, "ScalingPolicies", (void **)&x->scaling_policies,
                  &x->nscaling_policies, sizeof(*x->scaling_policies),
                  dec_scaling));
    return 0;
}

static int dec_volume(struct dc *c, const char *name, const json_t *o,
                      struct volume_request *x)
{
    x->name = xstrdup(name);
    TRY(get_str(c, o, "Type", &x->type));
    TRY(get_str(c, o, "Source", &x->source));
    TRY(get_bool(c, o, "ReadOnly", &x->read_only));
    TRY(get_bool(c, o, "PerAlloc", &x->per_alloc));
    TRY(get_str(c, o, "AccessMode", &x->access_mode));
    TRY(get_str(c, o, "AttachmentMode", &x->attachment_mode));
    return 0;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Volumes are a map in the API; the model keeps them sorted by name, the
 * order Go prints a map in, so both paths give the same model. */
static int dec_volumes(struct dc *c, const json_t *o, struct task_group *g)
{
    size_t mark;
    json_t *v = field(c, o, "Volumes", &mark);
    if (!v)
        return 0;
    if (!json_is_object(v))
        return fail(c, "expected an object");
    size_t n = json_object_size(v), i = 0;
    const char **keys = xcalloc(n ? n : 1, sizeof(*keys));
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) keys[i++] = k;
    qsort(keys, i, sizeof(*keys), cmp_strp);
    g->volumes = xcalloc(i ? i : 1, sizeof(*g->volumes));
    g->nvolumes = i;
    int r = 0;
    for (size_t j = 0; j < i && r == 0; j++) {
        size_t m2 = c->path.len;
        nc_buf_puts(&c->path, "[\"");
        nc_buf_puts(&c->path, keys[j]);
        nc_buf_puts(&c->path, "\"]");
        json_t *vo = json_object_get(v, keys[j]);
        if (!json_is_object(vo))
            r = fail(c, "expected an object");
        else
            r = dec_volume(c, keys[j], vo, &g->volumes[j]);
        if (r == 0)
            pop(c, m2);
    }
    free(keys);
    if (r == 0)
        pop(c, mark);
    return r;
}

static int dec_group(struct dc *c, const json_t *o, void *out)
{
    struct task_group *x = out;
    TRY(get_str(c, o, "Name", &x->name));
    TRY(get_int(c, o, "Count", &x->count));
    TRY(get_array(c, o, "Constraints", (void **)&x->constraints,
                  &x->nconstraints, sizeof(*x->constraints), dec_constraint));
    TRY(get_array(c, o, "Affinities", (void **)&x->affinities,
                  &x->naffinities, sizeof(*x->affinities), dec_affinity));
    TRY(get_array(c, o, "Spreads", (void **)&x->spreads, &x->nspreads,
                  sizeof(*x->spreads), dec_spread));
    TRY(dec_volumes(c, o, x));
    size_t mark;
    json_t *rp = field(c, o, "RestartPolicy", &mark);
    if (rp) {
        if (!json_is_object(rp))
            return fail(c, "expected an object");
        TRY(dec_restart(c, rp, &x->restart));
        pop(c, mark);
    }
    TRY(get_object(c, o, "ReschedulePolicy", (void **)&x->reschedule,
                   sizeof(*x->reschedule), dec_reschedule));
    json_t *ed = field(c, o, "EphemeralDisk", &mark);
    if (ed) {
        if (!json_is_object(ed))
            return fail(c, "expected an object");
        TRY(get_int(c, ed, "SizeMB", &x->ephemeral_disk.mb));
        TRY(get_bool(c, ed, "Migrate", &x->ephemeral_disk.migrate));
        TRY(get_bool(c, ed, "Sticky", &x->ephemeral_disk.sticky));
        pop(c, mark);
    }
    TRY(get_object(c, o, "Update", (void **)&x->update, sizeof(*x->update),
                   dec_update));
    TRY(get_object(c, o, "Migrate", (void **)&x->migrate, sizeof(*x->migrate),
                   dec_migrate));
    TRY(get_array(c, o, "Networks", (void **)&x->networks, &x->nnetworks,
                  sizeof(*x->networks), dec_network));
    TRY(get_strmap(c, o, "Meta", &x->meta));
    TRY(get_array(c, o, "Services", (void **)&x->services, &x->nservices,
                  sizeof(*x->services), dec_service));
    TRY(get_dur(c, o, "ShutdownDelay", &x->shutdown_delay));
    TRY(get_dur(c, o, "StopAfterClientDisconnect",
                &x->stop_after_client_disconnect));
    TRY(get_object(c, o, "Scaling", (void **)&x->scaling, sizeof(*x->scaling),
                   dec_scaling));
    TRY(get_array(c, o, "Tasks", (void **)&x->tasks, &x->ntasks,
                  sizeof(*x->tasks), dec_task));
    /* A task restart policy equal to the group's is the group's: keep
     * NULL so "task-level override" means one. */
    for (size_t i = 0; i < x->ntasks; i++) {
        struct task *t = &x->tasks[i];
        if (t->restart && restart_equal(t->restart, &x->restart)) {
            free(t->restart->mode);
            free(t->restart);
            t->restart = NULL;
        }
    }
    return 0;
}

static int dec_job(struct dc *c, const json_t *o, struct job *x)
{
    TRY(get_str(c, o, "Region", &x->region));
    TRY(get_str(c, o, "Namespace", &x->namespace));
    TRY(get_str(c, o, "ID", &x->id));
    TRY(get_str(c, o, "Name", &x->name));
    TRY(get_str(c, o, "Type", &x->type));
    TRY(get_int(c, o, "Priority", &x->priority));
    TRY(get_bool(c, o, "AllAtOnce", &x->all_at_once));
    TRY(get_strlist(c, o, "Datacenters", &x->datacenters));
    TRY(get_str(c, o, "NodePool", &x->node_pool));
    TRY(get_array(c, o, "Constraints", (void **)&x->constraints,
                  &x->nconstraints, sizeof(*x->constraints), dec_constraint));
    TRY(get_array(c, o, "Affinities", (void **)&x->affinities,
                  &x->naffinities, sizeof(*x->affinities), dec_affinity));
    TRY(get_object(c, o, "Update", (void **)&x->update, sizeof(*x->update),
                   dec_update));
    TRY(get_array(c, o, "Spreads", (void **)&x->spreads, &x->nspreads,
                  sizeof(*x->spreads), dec_spread));
    TRY(get_opaque(c, o, "Periodic", &x->periodic, false));
    TRY(get_opaque(c, o, "ParameterizedJob", &x->parameterized, false));
    TRY(get_object(c, o, "Reschedule", (void **)&x->reschedule,
                   sizeof(*x->reschedule), dec_reschedule));
    TRY(get_object(c, o, "Migrate", (void **)&x->migrate, sizeof(*x->migrate),
                   dec_migrate));
    TRY(get_strmap(c, o, "Meta", &x->meta));
    TRY(get_array(c, o, "TaskGroups", (void **)&x->groups, &x->ngroups,
                  sizeof(*x->groups), dec_group));
    return 0;
}

int js_decode(const json_t *job, const struct js_source *src,
              struct job **out, struct nc_error *err)
{
    *out = NULL;
    struct dc c = {.src = src, .err = err};
    nc_buf_puts(&c.path, "Job");
    if (!json_is_object(job)) {
        int r = fail(&c, "expected an object");
        nc_buf_free(&c.path);
        return r;
    }
    struct job *x = xcalloc(1, sizeof(*x));
    int r = dec_job(&c, job, x);
    nc_buf_free(&c.path);
    if (r < 0) {
        jobspec_free(x);
        return r;
    }
    *out = x;
    return 0;
}
