/* jobspec_defaults.c - Nomad's API job JSON defaults, as api Canonicalize
 * applies them (js_canonicalize).
 *
 * Defaults work on JSON because Nomad's merge rules depend on whether a
 * field was given at all (a nil pointer in Go): an absent key or a null is
 * "not given". */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/internal.h"

#define SECOND 1000000000LL
#define MINUTE (60 * SECOND)
#define HOUR (60 * MINUTE)

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
    def(t, "ErrMissingKey", json_false());
    def(t, "Uid", json_integer(-1));
    def(t, "Gid", json_integer(-1));
    json_t *cs = oget(t, "ChangeScript");
    if (json_is_object(cs)) {
        def(cs, "Args", json_array());
        def(cs, "Timeout", json_integer(5 * SECOND));
        def(cs, "FailOnError", json_false());
    }
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
