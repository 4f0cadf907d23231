/* jobspec_json.c - Nomad's API job JSON: defaults (as api Canonicalize
 * applies them), decoding into the model with type checks, and encoding
 * the model back in the order `nomad job run -output` prints fields.
 *
 * Defaults work on JSON because Nomad's merge rules depend on whether a
 * field was given at all (a nil pointer in Go): an absent key or a null is
 * "not given". Unknown keys are ignored, as Nomad's API does. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/internal.h"

#define SECOND 1000000000LL
#define S(x) ((x) ? (x) : "")
#define MINUTE (60 * SECOND)
#define HOUR (60 * MINUTE)

/* ==== defaults ==== */

static bool unset(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return !v || json_is_null(v);
}

/* Sets o[k] = v (stolen) when o[k] is absent or null. */
static void def(json_t *o, const char *k, json_t *v)
{
    if (json_is_object(o) && unset(o, k))
        json_object_set_new(o, k, v);
    else
        json_decref(v);
}

/* Same, but an empty string also counts as unset. */
static void def_str(json_t *o, const char *k, const char *v)
{
    json_t *cur = json_object_get(o, k);
    if (json_is_object(o) &&
        (!cur || json_is_null(cur) ||
         (json_is_string(cur) && json_string_length(cur) == 0)))
        json_object_set_new(o, k, json_string(v));
}

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_t *oget(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_object(v) ? v : NULL;
}

static json_t *aget(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_array(v) ? v : NULL;
}

/* A copy of base with every non-null field of over on top: Go's Merge of
 * pointer fields. */
static json_t *merged(const json_t *base, const json_t *over)
{
    json_t *m = json_deep_copy(base);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)over, k, v)
    {
        if (!json_is_null(v))
            json_object_set_new(m, k, json_deep_copy(v));
    }
    return m;
}

/* Present with a type that is not an object: left alone so the decoder
 * reports it, rather than replaced by a default. */
static bool wrong_type(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return v && !json_is_null(v) && !json_is_object(v);
}

static bool is_type(const char *type, const char *want)
{
    return type && strcmp(type, want) == 0;
}

static void canon_weights(json_t *list)
{
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a) def(a, "Weight", json_integer(50));
}

static void canon_update(json_t *u)
{
    def(u, "Stagger", json_integer(30 * SECOND));
    def(u, "MaxParallel", json_integer(1));
    def(u, "HealthCheck", json_string("checks"));
    def(u, "MinHealthyTime", json_integer(10 * SECOND));
    def(u, "HealthyDeadline", json_integer(5 * MINUTE));
    def(u, "ProgressDeadline", json_integer(10 * MINUTE));
    def(u, "AutoRevert", json_false());
    def(u, "Canary", json_integer(0));
    def(u, "AutoPromote", json_false());
}

/* Nomad's UpdateStrategy.Empty: nothing set to a non-zero value. */
static bool update_empty(const json_t *u)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)u, k, v)
    {
        if (json_is_null(v) || json_is_false(v))
            continue;
        if (json_is_integer(v) && json_integer_value(v) == 0)
            continue;
        if (json_is_string(v) && json_string_length(v) == 0)
            continue;
        return false;
    }
    return true;
}

static json_t *default_reschedule(const char *type)
{
    if (is_type(type, "service"))
        return json_pack("{s:I, s:I, s:I, s:s, s:I, s:b}", "Attempts",
                         (json_int_t)0, "Interval", (json_int_t)0, "Delay",
                         (json_int_t)(30 * SECOND), "DelayFunction",
                         "exponential", "MaxDelay", (json_int_t)HOUR,
                         "Unlimited", 1);
    if (is_type(type, "batch"))
        return json_pack("{s:I, s:I, s:I, s:s, s:I, s:b}", "Attempts",
                         (json_int_t)1, "Interval", (json_int_t)(24 * HOUR),
                         "Delay", (json_int_t)(5 * SECOND), "DelayFunction",
                         "constant", "MaxDelay", (json_int_t)0, "Unlimited",
                         0);
    return json_pack("{s:I, s:I, s:I, s:s, s:I, s:b}", "Attempts",
                     (json_int_t)0, "Interval", (json_int_t)0, "Delay",
                     (json_int_t)0, "DelayFunction", "", "MaxDelay",
                     (json_int_t)0, "Unlimited", 0);
}

static void canon_reschedule(json_t *r, const char *type)
{
    json_t *d = default_reschedule(type);
    const char *k;
    json_t *v;
    json_object_foreach(d, k, v) def(r, k, json_incref(v));
    json_decref(d);
}

static void canon_migrate(json_t *m)
{
    def(m, "MaxParallel", json_integer(1));
    def(m, "HealthCheck", json_string("checks"));
    def(m, "MinHealthyTime", json_integer(10 * SECOND));
    def(m, "HealthyDeadline", json_integer(5 * MINUTE));
}

static json_t *default_restart(const char *type)
{
    bool svc = is_type(type, "service") || is_type(type, "system");
    return json_pack("{s:I, s:I, s:I, s:s, s:b}", "Attempts",
                     (json_int_t)(svc ? 2 : 3), "Interval",
                     (json_int_t)(svc ? 30 * MINUTE : 24 * HOUR), "Delay",
                     (json_int_t)(15 * SECOND), "Mode", "fail",
                     "RenderTemplates", 0);
}

static void canon_vault(json_t *v)
{
    def(v, "Env", json_true());
    def(v, "DisableFile", json_false());
    def(v, "Namespace", json_string(""));
    def_str(v, "Cluster", "default");
    def(v, "ChangeMode", json_string("restart"));
    def(v, "ChangeSignal", json_string("SIGHUP"));
    def(v, "AllowTokenExpiration", json_false());
}

static void canon_template(json_t *t)
{
    def(t, "SourcePath", json_string(""));
    def(t, "DestPath", json_string(""));
    def(t, "EmbeddedTmpl", json_string(""));
    def(t, "ChangeMode", json_string("restart"));
    const char *sig = sget(t, "ChangeSignal");
    if (sig) {
        char *up = xstrdup(sig);
        for (char *p = up; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        json_object_set_new(t, "ChangeSignal", json_string(up));
        free(up);
    } else {
        def(t, "ChangeSignal",
            json_string(nc_streq(sget(t, "ChangeMode"), "signal") ? "SIGHUP"
                                                                   : ""));
    }
    def(t, "Splay", json_integer(5 * SECOND));
    def(t, "Perms", json_string("0644"));
    def(t, "LeftDelim", json_string("{{"));
    def(t, "RightDelim", json_string("}}"));
    def(t, "Envvars", json_false());
}

static void canon_artifact(json_t *a)
{
    def(a, "GetterMode", json_string("any"));
    def(a, "GetterInsecure", json_false());
    def(a, "GetterSource", json_string(""));
    if (json_is_object(oget(a, "GetterOptions")) &&
        json_object_size(oget(a, "GetterOptions")) == 0)
        json_object_set_new(a, "GetterOptions", json_null());
    if (json_is_object(oget(a, "GetterHeaders")) &&
        json_object_size(oget(a, "GetterHeaders")) == 0)
        json_object_set_new(a, "GetterHeaders", json_null());
    if (!unset(a, "RelativeDest"))
        return;
    if (!nc_streq(sget(a, "GetterMode"), "file")) {
        def(a, "RelativeDest", json_string("local/"));
        return;
    }
    /* file mode: local/<base name of the source>, as path.Base does */
    const char *src = sget(a, "GetterSource");
    char *s = xstrdup(src ? src : "");
    size_t n = strlen(s);
    while (n > 1 && s[n - 1] == '/')
        s[--n] = '\0';
    const char *base = strrchr(s, '/');
    base = base && base[1] ? base + 1 : (n ? s : ".");
    char *dest = strcmp(base, ".") == 0 ? xstrdup("local")
                                        : xasprintf("local/%s", base);
    def(a, "RelativeDest", json_string(dest));
    free(dest);
    free(s);
}

/* Nomad's CheckRestart.Merge: the check's own values win when given. */
static json_t *merge_check_restart(const json_t *svc, const json_t *chk)
{
    if (!svc)
        return chk ? json_deep_copy(chk) : NULL;
    json_t *m = json_deep_copy(svc);
    if (!chk)
        return m;
    json_t *v = json_object_get(chk, "Limit");
    if (json_is_integer(v) && json_integer_value(v) > 0)
        json_object_set(m, "Limit", v);
    v = json_object_get(chk, "Grace");
    if (v && !json_is_null(v))
        json_object_set(m, "Grace", v);
    if (json_is_true(json_object_get(chk, "IgnoreWarnings")))
        json_object_set_new(m, "IgnoreWarnings", json_true());
    return m;
}

static void canon_service(const json_t *job, const json_t *grp,
                          const json_t *task, json_t *s)
{
    if (!json_is_object(s))
        return;
    const char *sn = sget(s, "Name");
    if (!sn || !*sn) {
        const char *jn = sget(job, "Name"), *gn = sget(grp, "Name");
        char *name =
            task ? xasprintf("%s-%s-%s", jn ? jn : "", gn ? gn : "",
                             sget(task, "Name") ? sget(task, "Name") : "")
                 : xasprintf("%s-%s", jn ? jn : "", gn ? gn : "");
        json_object_set_new(s, "Name", js_string(name));
        free(name);
    }
    def_str(s, "AddressMode", "auto");
    def_str(s, "OnUpdate", "require_healthy");
    def_str(s, "Provider", "consul");
    if (task && sget(task, "Name"))
        def_str(s, "TaskName", sget(task, "Name"));
    const json_t *scr = oget(s, "CheckRestart");
    size_t i;
    json_t *c;
    json_array_foreach(aget(s, "Checks"), i, c)
    {
        if (!json_is_object(c))
            continue;
        json_t *cr = wrong_type(c, "CheckRestart")
                         ? NULL
                         : merge_check_restart(scr, oget(c, "CheckRestart"));
        if (cr) {
            def(cr, "Grace", json_integer(SECOND));
            json_object_set_new(c, "CheckRestart", cr);
        }
        static const char *const nonneg[] = {"SuccessBeforePassing",
                                             "FailuresBeforeCritical"};
        for (size_t k = 0; k < NC_ARRAY_LEN(nonneg); k++) {
            json_t *v = json_object_get(c, nonneg[k]);
            if (json_is_integer(v) && json_integer_value(v) < 0)
                json_object_set_new(c, nonneg[k], json_integer(0));
        }
        if (sget(s, "OnUpdate"))
            def_str(c, "OnUpdate", sget(s, "OnUpdate"));
        if (nc_streq(sget(c, "Type"), "http")) {
            def_str(c, "Protocol", "http");
            def_str(c, "Method", "GET");
        }
    }
    /* merged into every check above; the model has no service-level one
     * (a wrongly typed one stays for the decoder to report) */
    if (!wrong_type(s, "CheckRestart"))
        json_object_del(s, "CheckRestart");
}

static void canon_task(const json_t *job, const json_t *grp, json_t *t)
{
    if (!json_is_object(t))
        return;
    if (unset(t, "Resources"))
        json_object_set_new(t, "Resources", json_object());
    json_t *r = oget(t, "Resources");
    if (r) {
        if (unset(r, "Cores")) {
            json_object_set_new(r, "Cores", json_integer(0));
            def(r, "CPU", json_integer(100));
        }
        def(r, "CPU", json_integer(0));
        def(r, "MemoryMB", json_integer(300));
        size_t i;
        json_t *d;
        json_array_foreach(aget(r, "Devices"), i, d)
        {
            def(d, "Count", json_integer(1));
            canon_weights(aget(d, "Affinities"));
        }
    }
    def(t, "KillTimeout", json_integer(5 * SECOND));
    if (unset(t, "LogConfig"))
        json_object_set_new(t, "LogConfig", json_object());
    json_t *lc = oget(t, "LogConfig");
    def(lc, "MaxFiles", json_integer(10));
    def(lc, "MaxFileSizeMB", json_integer(10));
    def(lc, "Disabled", json_false());
    size_t i;
    json_t *v;
    json_array_foreach(aget(t, "Artifacts"), i, v) if (json_is_object(v))
        canon_artifact(v);
    if (oget(t, "Vault"))
        canon_vault(oget(t, "Vault"));
    json_array_foreach(aget(t, "Templates"), i, v) if (json_is_object(v))
        canon_template(v);
    json_array_foreach(aget(t, "Services"), i, v) canon_service(job, grp, t, v);
    canon_weights(aget(t, "Affinities"));
    json_array_foreach(aget(t, "VolumeMounts"), i, v)
    {
        def(v, "PropagationMode", json_string("private"));
        def(v, "ReadOnly", json_false());
    }
    json_array_foreach(aget(t, "ScalingPolicies"), i, v)
    {
        def(v, "Enabled", json_true());
        def_str(v, "Type", "horizontal");
    }
    const json_t *grp_restart = oget(grp, "RestartPolicy");
    if (grp_restart && !wrong_type(t, "RestartPolicy")) {
        json_t *tr = oget(t, "RestartPolicy");
        json_object_set_new(t, "RestartPolicy",
                            tr ? merged(grp_restart, tr)
                               : json_deep_copy(grp_restart));
    }
}

static void canon_group(const json_t *job, json_t *g)
{
    if (!json_is_object(g))
        return;
    const char *type = sget(job, "Type");
    def(g, "Name", json_string(""));
    json_t *sc = oget(g, "Scaling");
    if (unset(g, "Count")) {
        json_t *min = sc ? json_object_get(sc, "Min") : NULL;
        json_object_set_new(g, "Count", json_is_integer(min)
                                            ? json_integer(json_integer_value(min))
                                            : json_integer(1));
    }
    if (sc) {
        def(sc, "Enabled", json_true());
        json_t *count = json_object_get(g, "Count");
        if (json_is_integer(count))
            def(sc, "Min", json_integer(json_integer_value(count)));
        def_str(sc, "Type", "horizontal");
    }
    if (unset(g, "EphemeralDisk"))
        json_object_set_new(g, "EphemeralDisk", json_object());
    json_t *ed = oget(g, "EphemeralDisk");
    def(ed, "Sticky", json_false());
    def(ed, "Migrate", json_false());
    def(ed, "SizeMB", json_integer(300));

    json_t *ju = oget(job, "Update"), *tu = oget(g, "Update");
    if (ju && tu)
        json_object_set_new(g, "Update", merged(ju, tu));
    else if (ju && !update_empty(ju) && unset(g, "Update"))
        json_object_set_new(g, "Update", json_deep_copy(ju));
    if (oget(g, "Update"))
        canon_update(oget(g, "Update"));

    json_t *jr = oget(job, "Reschedule"), *tr = oget(g, "ReschedulePolicy");
    if (jr && tr)
        json_object_set_new(g, "ReschedulePolicy", merged(jr, tr));
    else if (jr && unset(g, "ReschedulePolicy"))
        json_object_set_new(g, "ReschedulePolicy", json_deep_copy(jr));
    if (unset(g, "ReschedulePolicy") && !is_type(type, "system") &&
        !is_type(type, "sysbatch"))
        json_object_set_new(g, "ReschedulePolicy", default_reschedule(type));
    if (oget(g, "ReschedulePolicy"))
        canon_reschedule(oget(g, "ReschedulePolicy"), type);

    json_t *jm = oget(job, "Migrate"), *tm = oget(g, "Migrate");
    if (jm && tm)
        json_object_set_new(g, "Migrate", merged(jm, tm));
    else if (jm && unset(g, "Migrate"))
        json_object_set_new(g, "Migrate", json_deep_copy(jm));
    if (unset(g, "Migrate") && is_type(type, "service"))
        json_object_set_new(g, "Migrate", json_object());
    if (oget(g, "Migrate"))
        canon_migrate(oget(g, "Migrate"));

    if (!wrong_type(g, "RestartPolicy")) {
        json_t *rp = default_restart(type);
        json_t *gr = oget(g, "RestartPolicy");
        json_object_set_new(g, "RestartPolicy", gr ? merged(rp, gr) : rp);
        if (gr)
            json_decref(rp);
    }

    size_t i;
    json_t *v;
    json_array_foreach(aget(g, "Tasks"), i, v) canon_task(job, g, v);
    canon_weights(aget(g, "Spreads"));
    canon_weights(aget(g, "Affinities"));
    json_array_foreach(aget(g, "Networks"), i, v)
    {
        def_str(v, "Mode", "host");
        static const char *const lists[] = {"ReservedPorts", "DynamicPorts"};
        for (size_t l = 0; l < 2; l++) {
            size_t p;
            json_t *port;
            json_array_foreach(aget(v, lists[l]), p, port)
                def_str(port, "HostNetwork", "default");
        }
    }
    json_array_foreach(aget(g, "Services"), i, v)
        canon_service(job, g, NULL, v);
    json_t *vols = oget(g, "Volumes");
    const char *k;
    json_object_foreach(vols, k, v) def(v, "Name", js_string(k));
}

void js_canonicalize(json_t *j)
{
    if (!json_is_object(j))
        return;
    def(j, "ID", json_string(""));
    if (unset(j, "Name"))
        json_object_set_new(j, "Name", json_string(sget(j, "ID") ? sget(j, "ID")
                                                                : ""));
    def_str(j, "Namespace", "default");
    def(j, "Priority", json_integer(50));
    def(j, "Region", json_string("global"));
    def_str(j, "NodePool", "default");
    def(j, "Type", json_string("service"));
    def(j, "AllAtOnce", json_false());
    json_t *dcs = json_object_get(j, "Datacenters");
    if (!dcs || json_is_null(dcs) ||
        (json_is_array(dcs) && json_array_size(dcs) == 0))
        json_object_set_new(j, "Datacenters", json_pack("[s]", "*"));
    const char *type = sget(j, "Type");
    if (oget(j, "Update"))
        canon_update(oget(j, "Update"));
    json_t *p = oget(j, "Periodic");
    if (p) {
        def(p, "Enabled", json_true());
        def(p, "Spec", json_string(""));
        def(p, "Specs", json_array());
        def(p, "SpecType", json_string("cron"));
        def(p, "ProhibitOverlap", json_false());
        def_str(p, "TimeZone", "UTC");
    }
    def_str(oget(j, "ParameterizedJob"), "Payload", "optional");
    if (oget(j, "Reschedule"))
        canon_reschedule(oget(j, "Reschedule"), type);
    if (oget(j, "Migrate"))
        canon_migrate(oget(j, "Migrate"));
    canon_weights(aget(j, "Spreads"));
    canon_weights(aget(j, "Affinities"));
    size_t i;
    json_t *g;
    json_array_foreach(aget(j, "TaskGroups"), i, g) canon_group(j, g);
}

/* ==== decoding ==== */

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
    TRY(get_opaque(c, o, "Artifacts", &x->artifacts, true));
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

/* ==== encoding ==== */

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
    set(o, "Artifacts", jopaque(t->artifacts));
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
