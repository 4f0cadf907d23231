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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/internal.h"

#define S(x) ((x) ? (x) : "")
#define SECOND 1000000000LL

struct jv_mark jv_mark(const struct jv_ctx *v)
{
    return (struct jv_mark){v->h.len, v->j.len};
}

void jv_restore(struct jv_ctx *v, struct jv_mark m)
{
    js_buf_truncate(&v->h, m.h);
    js_buf_truncate(&v->j, m.j);
}

void jv_err(struct jv_ctx *v, const char *jsuffix, const char *fmt, ...)
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

const char *jv_dur(int64_t ns, char *buf, size_t len)
{
    nc_format_duration(ns, buf, len);
    return buf;
}

bool jv_one_of(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(S(s), list[i]) == 0)
            return true;
    return false;
}

bool jv_is_numeric(const char *s)
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

/* ---- policies ---- */

static void validate_restart(struct jv_ctx *v, const struct restart_policy *r)
{
    char a[64], b[64];
    if (!JV_ONE_OF(r->mode, "delay", "fail"))
        jv_err(v, ".Mode", "Unsupported restart mode: \"%s\"", S(r->mode));
    if (r->attempts == 0 && !nc_streq(r->mode, "fail"))
        jv_err(v, ".Attempts", "Restart policy \"%s\" with %d attempts is "
             "ambiguous", S(r->mode), r->attempts);
    if (r->attempts < 0)
        jv_err(v, ".Attempts", "attempts must be >= 0; got %d", r->attempts);
    if (r->interval < 5 * SECOND)
        jv_err(v, ".Interval", "Interval can not be less than 5s (got %s)",
             jv_dur(r->interval, a, sizeof(a)));
    if (r->attempts > 0 && r->delay > 0 && r->delay > r->interval / r->attempts)
        jv_err(v, NULL,
             "Nomad can't restart the TaskGroup %d times in an interval of %s "
             "with a delay of %s",
             r->attempts, jv_dur(r->interval, a, sizeof(a)),
             jv_dur(r->delay, b, sizeof(b)));
}

static void validate_reschedule(struct jv_ctx *v,
                                const struct reschedule_policy *r)
{
    char a[64], b[64];
    if (!(r->attempts > 0 || r->unlimited))
        return; /* disabled: Nomad ignores the rest */
    if (r->attempts > 0) {
        if (r->interval <= 0)
            jv_err(v, ".Interval",
                 "Interval must be a non zero value if Attempts > 0");
        if (r->unlimited)
            jv_err(v, ".Unlimited",
                 "If Attempts >0, Unlimited cannot also be set to true");
    }
    if (r->delay < 5 * SECOND)
        jv_err(v, ".Delay", "Delay cannot be less than 5s (got %s)",
             jv_dur(r->delay, a, sizeof(a)));
    if (!JV_ONE_OF(r->delay_function, "constant", "exponential", "fibonacci"))
        jv_err(v, ".DelayFunction",
             "Invalid delay function \"%s\", must be one of [\"constant\" "
             "\"exponential\" \"fibonacci\"]",
             S(r->delay_function));
    else if (!nc_streq(r->delay_function, "constant")) {
        if (r->max_delay < 5 * SECOND)
            jv_err(v, ".MaxDelay", "Max Delay cannot be less than 5s (got %s)",
                 jv_dur(r->max_delay, a, sizeof(a)));
        else if (r->max_delay < r->delay)
            jv_err(v, ".MaxDelay", "Max Delay cannot be less than Delay %s "
                 "(got %s)", jv_dur(r->delay, a, sizeof(a)),
                 jv_dur(r->max_delay, b, sizeof(b)));
    }
    if (!r->unlimited && r->interval < 15 * SECOND)
        jv_err(v, ".Interval", "Interval cannot be less than 15s (got %s)",
             jv_dur(r->interval, a, sizeof(a)));
}

static void validate_update(struct jv_ctx *v, const struct update_strategy *u)
{
    char a[64], b[64];
    if (!JV_ONE_OF(u->health_check, "checks", "task_states", "manual"))
        jv_err(v, ".HealthCheck", "Invalid health check given: \"%s\"",
             S(u->health_check));
    if (u->max_parallel < 0)
        jv_err(v, ".MaxParallel",
             "Max parallel can not be less than zero: %d < 0",
             u->max_parallel);
    if (u->canary < 0)
        jv_err(v, ".Canary", "Canary count can not be less than zero: %d < 0",
             u->canary);
    if (u->canary == 0 && u->auto_promote)
        jv_err(v, ".AutoPromote",
             "Auto Promote requires a Canary count greater than zero");
    if (u->min_healthy_time < 0)
        jv_err(v, ".MinHealthyTime",
             "Minimum healthy time may not be less than zero: %s",
             jv_dur(u->min_healthy_time, a, sizeof(a)));
    if (u->healthy_deadline <= 0)
        jv_err(v, ".HealthyDeadline",
             "Healthy deadline must be greater than zero: %s",
             jv_dur(u->healthy_deadline, a, sizeof(a)));
    if (u->progress_deadline < 0)
        jv_err(v, ".ProgressDeadline",
             "Progress deadline must be zero or greater: %s",
             jv_dur(u->progress_deadline, a, sizeof(a)));
    if (u->min_healthy_time >= u->healthy_deadline)
        jv_err(v, ".MinHealthyTime",
             "Minimum healthy time must be less than healthy deadline: %s > "
             "%s",
             jv_dur(u->min_healthy_time, a, sizeof(a)),
             jv_dur(u->healthy_deadline, b, sizeof(b)));
    if (u->progress_deadline != 0 &&
        u->healthy_deadline >= u->progress_deadline)
        jv_err(v, ".HealthyDeadline",
             "Healthy deadline must be less than progress deadline: %s > %s",
             jv_dur(u->healthy_deadline, a, sizeof(a)),
             jv_dur(u->progress_deadline, b, sizeof(b)));
    if (u->stagger <= 0)
        jv_err(v, ".Stagger", "Stagger must be greater than zero: %s",
             jv_dur(u->stagger, a, sizeof(a)));
}

static void validate_migrate(struct jv_ctx *v, const struct migrate_strategy *m)
{
    char a[64];
    if (m->max_parallel < 0)
        jv_err(v, ".MaxParallel", "MaxParallel must be >= 0 but found %d",
             m->max_parallel);
    if (!m->health_check || !*m->health_check) {
        if (m->max_parallel > 0)
            jv_err(v, ".HealthCheck", "Missing HealthCheck");
    } else if (!JV_ONE_OF(m->health_check, "checks", "task_states")) {
        jv_err(v, ".HealthCheck", "Invalid HealthCheck: \"%s\"",
             m->health_check);
    }
    if (m->min_healthy_time < 0)
        jv_err(v, ".MinHealthyTime", "MinHealthyTime is %s and must be >= 0",
             jv_dur(m->min_healthy_time, a, sizeof(a)));
    if (m->healthy_deadline < 0)
        jv_err(v, ".HealthyDeadline", "HealthyDeadline is %s and must be >= 0",
             jv_dur(m->healthy_deadline, a, sizeof(a)));
    if (m->min_healthy_time > m->healthy_deadline)
        jv_err(v, NULL, "MinHealthyTime must be less than HealthyDeadline");
}

static void validate_scaling(struct jv_ctx *v, const struct scaling_policy *p,
                             const struct task_group *g)
{
    if (g && !nc_streq(p->type, "horizontal"))
        jv_err(v, ".Type", "group scaling policy type must be \"horizontal\"; "
             "got \"%s\"", S(p->type));
    if (!g && !JV_ONE_OF(p->type, "horizontal", "vertical_cpu", "vertical_mem"))
        jv_err(v, ".Type", "invalid scaling policy type \"%s\"", S(p->type));
    if (p->max < 0)
        jv_err(v, ".Max", "maximum count must be specified and non-negative");
    else if (p->max < p->min)
        jv_err(v, ".Max", "maximum count must not be less than minimum count");
    if (p->min < 0)
        jv_err(v, ".Min", "minimum count must be specified and non-negative");
    if (g && p->max >= 0 && p->max < g->count)
        jv_err(v, ".Max", "task group count must not be greater than maximum "
             "count in scaling policy");
    if (g && g->count < p->min)
        jv_err(v, ".Min", "task group count must not be less than minimum "
             "count in scaling policy");
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

static void validate_templates(struct jv_ctx *v, const struct task *t)
{
    for (size_t i = 0; i < t->ntemplates; i++) {
        const struct template_spec *tp = &t->templates[i];
        struct jv_mark m = jv_mark(v);
        nc_buf_printf(&v->j, ".Templates[%zu]", i);
        js_seg_index(&v->h, "template", i, t->ntemplates);
        if ((!tp->source_path || !*tp->source_path) &&
            (!tp->embedded_tmpl || !*tp->embedded_tmpl))
            jv_err(v, NULL, "Must specify a source path or have an embedded "
                 "template");
        if (!tp->dest_path || !*tp->dest_path)
            jv_err(v, ".DestPath", "Must specify a destination for the template");
        else if (escapes_alloc(tp->dest_path))
            jv_err(v, ".DestPath", "destination escapes allocation directory");
        const char *cm = S(tp->change_mode);
        if (strcmp(cm, "signal") == 0) {
            if (!tp->change_signal || !*tp->change_signal)
                jv_err(v, ".ChangeSignal",
                     "Must specify signal value when change mode is signal");
            if (tp->envvars)
                jv_err(v, ".Envvars", "cannot use signals with env var "
                     "templates");
        } else if (strcmp(cm, "script") == 0) {
            if (!tp->script_command || !*tp->script_command)
                jv_err(v, ".ChangeMode", "must specify change script configuration "
                 "value when change mode is script");
        } else if (!JV_ONE_OF(cm, "noop", "restart")) {
            jv_err(v, ".ChangeMode", "Invalid change mode (\"%s\"); must be one "
                 "of \"noop\", \"restart\", \"signal\", \"script\"", cm);
        }
        if (tp->splay < 0)
            jv_err(v, ".Splay", "Must specify positive splay value");
        if (tp->perms && *tp->perms) {
            char *end;
            errno = 0;
            unsigned long mode = strtoul(tp->perms, &end, 8);
            if (*end || errno || mode > 07777 || tp->perms[0] == '-')
                jv_err(v, ".Perms", "Failed to parse \"%s\" as octal",
                     tp->perms);
        }
        for (size_t o = 0; o < i; o++) {
            if (nc_streq(S(t->templates[o].dest_path), S(tp->dest_path))) {
                jv_err(v, ".DestPath", "Template %zu has same destination as "
                     "%zu", i + 1, o + 1);
                break;
            }
        }
        jv_restore(v, m);
    }
}

static void validate_resources(struct jv_ctx *v, const struct task *t,
                               const struct task_group *g)
{
    const struct resources *r = &t->resources;
    struct jv_mark m = jv_mark(v);
    nc_buf_puts(&v->j, ".Resources");
    js_seg_named(&v->h, "resources", NULL);
    if (r->cores > 0 && r->cpu > 0)
        jv_err(v, NULL, "Task can only ask for 'cpu' or 'cores' resource, not "
             "both.");
    if (r->cores < 0)
        jv_err(v, ".Cores", "cores value (%d) cannot be negative", r->cores);
    if (r->cores == 0 && r->cpu < 1)
        jv_err(v, ".CPU", "minimum CPU value is 1; got %d", r->cpu);
    if (r->memory_mb < 10)
        jv_err(v, ".MemoryMB", "minimum MemoryMB value is 10; got %d",
             r->memory_mb);
    if (r->memory_max_mb != 0 && r->memory_max_mb != -1 &&
        r->memory_max_mb < r->memory_mb)
        jv_err(v, ".MemoryMaxMB", "MemoryMaxMB value (%d) should be larger "
             "than MemoryMB value (%d)", r->memory_max_mb, r->memory_mb);
    if (r->disk_mb < 0)
        jv_err(v, ".DiskMB", "DiskMB value (%d) cannot be negative", r->disk_mb);
    jv_restore(v, m);

    m = jv_mark(v);
    nc_buf_puts(&v->j, ".LogConfig");
    js_seg_named(&v->h, "logs", NULL);
    if (t->logs.max_files < 1)
        jv_err(v, ".MaxFiles", "minimum number of files is 1; got %d",
             t->logs.max_files);
    if (t->logs.max_file_size_mb < 1)
        jv_err(v, ".MaxFileSizeMB", "minimum file size is 1MB; got %d",
             t->logs.max_file_size_mb);
    long long usage =
        (long long)t->logs.max_files * (long long)t->logs.max_file_size_mb;
    if (!t->logs.disabled && g->ephemeral_disk.mb <= usage)
        jv_err(v, NULL, "log storage (%lld MB) must be less than requested disk "
             "capacity (%d MB)", usage, g->ephemeral_disk.mb);
    jv_restore(v, m);
}

bool jobspec_path_escapes_alloc(const char *rel)
{
    /* as filepath.Clean("task/" + rel) starting with "..": the task dir is
     * one level below the allocation dir, and once above it a path never
     * comes back (a leading "/" is relative too, as filepath.Join has it) */
    int depth = 1;
    for (const char *p = rel ? rel : ""; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return true;
        } else if (n && !(n == 1 && p[0] == '.')) {
            depth++;
        }
        p += n;
        p += *p == '/';
    }
    return false;
}

static void validate_task(struct jv_ctx *v, const struct task *t,
                          const struct task_group *g)
{
    char a[64], b[64];
    const char *name = S(t->name);
    if (!*name)
        jv_err(v, ".Name", "Missing task name");
    if (strcmp(name, "alloc") == 0)
        jv_err(v, ".Name", "Task cannot be named \"alloc\"");
    if (strpbrk(name, "/\\"))
        jv_err(v, ".Name", "Task name cannot include slashes");
    if (!t->driver || !*t->driver)
        jv_err(v, ".Driver", "Missing task driver");
    if (t->kill_timeout < 0)
        jv_err(v, ".KillTimeout", "KillTimeout must be a positive value");
    else if (nc_streq(v->job->type, "service") && g->update &&
             g->update->progress_deadline > 0 &&
             t->kill_timeout > g->update->progress_deadline)
        jv_err(v, ".KillTimeout",
             "KillTimeout (%s) longer than the group's ProgressDeadline (%s)",
             jv_dur(t->kill_timeout, a, sizeof(a)),
             jv_dur(g->update->progress_deadline, b, sizeof(b)));
    if (t->shutdown_delay < 0)
        jv_err(v, ".ShutdownDelay", "ShutdownDelay must be a positive value");
    validate_resources(v, t, g);
    jv_validate_constraints(v, t->constraints, t->nconstraints, true);
    jv_validate_affinities(v, t->affinities, t->naffinities);
    jv_validate_services(v, t->services, t->nservices, t, g);
    validate_templates(v, t);
    for (size_t i = 0; i < t->nvolume_mounts; i++) {
        const struct volume_mount *vm = &t->volume_mounts[i];
        struct jv_mark m = jv_mark(v);
        nc_buf_printf(&v->j, ".VolumeMounts[%zu]", i);
        js_seg_index(&v->h, "volume_mount", i, t->nvolume_mounts);
        bool found = false;
        for (size_t k = 0; k < g->nvolumes; k++)
            if (nc_streq(S(g->volumes[k].name), S(vm->volume)))
                found = true;
        if (!found)
            jv_err(v, ".Volume", "references undefined volume \"%s\"",
                 S(vm->volume));
        if (!vm->destination || !*vm->destination)
            jv_err(v, ".Destination", "volume_mount needs a destination");
        if (!JV_ONE_OF(vm->propagation_mode, "", "private", "host-to-task",
                    "bidirectional"))
            jv_err(v, ".PropagationMode",
                 "invalid propagation mode \"%s\": must be \"private\", "
                 "\"host-to-task\" or \"bidirectional\"",
                 S(vm->propagation_mode));
        jv_restore(v, m);
    }
    for (size_t i = 0; i < t->nartifacts; i++) {
        const struct artifact *ar = &t->artifacts[i];
        struct jv_mark m = jv_mark(v);
        nc_buf_printf(&v->j, ".Artifacts[%zu]", i);
        js_seg_index(&v->h, "artifact", i, t->nartifacts);
        if (!ar->source || !*ar->source)
            jv_err(v, ".GetterSource", "source must be specified");
        if (!JV_ONE_OF(ar->mode, "", "any", "file", "dir"))
            jv_err(v, ".GetterMode",
                   "invalid artifact mode \"%s\"; must be one of: any, "
                   "file, dir", S(ar->mode));
        if (jobspec_path_escapes_alloc(ar->destination))
            jv_err(v, ".RelativeDest", "destination escapes allocation directory");
        jv_restore(v, m);
    }
    if (t->lifecycle) {
        struct jv_mark m = jv_mark(v);
        nc_buf_puts(&v->j, ".Lifecycle");
        js_seg_named(&v->h, "lifecycle", NULL);
        if (!t->lifecycle->hook || !*t->lifecycle->hook)
            jv_err(v, ".Hook", "no lifecycle hook provided");
        else if (!JV_ONE_OF(t->lifecycle->hook, "prestart", "poststart",
                         "poststop"))
            jv_err(v, ".Hook", "invalid hook: %s", t->lifecycle->hook);
        jv_restore(v, m);
    }
    if (t->restart) {
        struct jv_mark m = jv_mark(v);
        nc_buf_puts(&v->j, ".RestartPolicy");
        js_seg_named(&v->h, "restart", NULL);
        validate_restart(v, t->restart);
        jv_restore(v, m);
    }
    for (size_t i = 0; i < t->nscaling_policies; i++) {
        struct jv_mark m = jv_mark(v);
        nc_buf_printf(&v->j, ".ScalingPolicies[%zu]", i);
        js_seg_index(&v->h, "scaling", i, t->nscaling_policies);
        validate_scaling(v, &t->scaling_policies[i], NULL);
        jv_restore(v, m);
    }
}

/* ---- groups and job ---- */

static void validate_volumes(struct jv_ctx *v, const struct task_group *g)
{
    const char *type = S(v->job->type);
    for (size_t i = 0; i < g->nvolumes; i++) {
        const struct volume_request *vr = &g->volumes[i];
        struct jv_mark m = jv_mark(v);
        nc_buf_printf(&v->j, ".Volumes[\"%s\"]", S(vr->name));
        js_seg_named(&v->h, "volume", S(vr->name));
        for (size_t o = 0; o < i; o++)
            if (nc_streq(S(g->volumes[o].name), S(vr->name)))
                jv_err(v, NULL, "duplicate volume \"%s\"", S(vr->name));
        if (!JV_ONE_OF(vr->type, "host", "csi")) {
            jv_err(v, ".Type", "volume has unrecognized type %s", S(vr->type));
            jv_restore(v, m);
            continue;
        }
        if (!vr->source || !*vr->source)
            jv_err(v, ".Source", "volume has an empty source");
        if (vr->per_alloc) {
            if (JV_ONE_OF(type, "system", "sysbatch"))
                jv_err(v, ".PerAlloc", "volume cannot be per_alloc for system "
                     "or sysbatch jobs");
            if (g->update && g->update->canary > 0)
                jv_err(v, ".PerAlloc", "volume cannot be per_alloc when "
                     "canaries are in use");
        }
        const char *am = S(vr->access_mode);
        if (strcmp(S(vr->type), "host") == 0) {
            if (strcmp(am, "single-node-reader-only") == 0) {
                if (!vr->read_only)
                    jv_err(v, ".AccessMode", "%s volumes must be read-only", am);
            } else if (!JV_ONE_OF(am, "", "single-node-writer",
                               "single-node-single-writer",
                               "single-node-multi-writer")) {
                jv_err(v, ".AccessMode",
                     "host volumes cannot be mounted with %s access mode", am);
            }
        } else {
            if (!vr->attachment_mode || !*vr->attachment_mode)
                jv_err(v, ".AttachmentMode",
                     "CSI volumes must have an attachment mode");
            if (!*am)
                jv_err(v, ".AccessMode", "CSI volumes must have an access mode");
        }
        jv_restore(v, m);
    }
}

static void validate_group(struct jv_ctx *v, const struct task_group *g)
{
    const char *type = S(v->job->type);
    bool sys = JV_ONE_OF(type, "system", "sysbatch");
    if (!g->name || !*g->name)
        jv_err(v, ".Name", "Missing task group name");
    if (g->count < 0)
        jv_err(v, ".Count", "Task group count can't be negative");
    if (g->ntasks == 0)
        jv_err(v, NULL, "Missing tasks for task group");
    if (g->shutdown_delay < 0)
        jv_err(v, ".ShutdownDelay", "ShutdownDelay must be a positive value");
    if (g->stop_after_client_disconnect < 0)
        jv_err(v, ".StopAfterClientDisconnect",
             "stop_after_client_disconnect must be a positive value");
    jv_validate_constraints(v, g->constraints, g->nconstraints, false);
    jv_validate_affinities(v, g->affinities, g->naffinities);
    jv_validate_spreads(v, g->spreads, g->nspreads);

    struct jv_mark m = jv_mark(v);
    nc_buf_puts(&v->j, ".RestartPolicy");
    js_seg_named(&v->h, "restart", NULL);
    validate_restart(v, &g->restart);
    jv_restore(v, m);

    /* Nomad refuses reschedule and migrate blocks, affinities, spreads
     * and a count above 1 in system jobs; on one node they change nothing,
     * so they are warnings here (js_collect_warnings). */
    if (g->reschedule && !sys) {
        nc_buf_puts(&v->j, ".ReschedulePolicy");
        js_seg_named(&v->h, "reschedule", NULL);
        validate_reschedule(v, g->reschedule);
        jv_restore(v, m);
    }
    if (g->ephemeral_disk.mb < 10)
        jv_err(v, ".EphemeralDisk.SizeMB", "minimum DiskMB value is 10; got %d",
             g->ephemeral_disk.mb);
    if (g->update) {
        nc_buf_puts(&v->j, ".Update");
        js_seg_named(&v->h, "update", NULL);
        if (!JV_ONE_OF(type, "service", "system"))
            jv_err(v, NULL, "Job type \"%s\" does not allow update block", type);
        validate_update(v, g->update);
        jv_restore(v, m);
    }
    if (g->migrate) {
        nc_buf_puts(&v->j, ".Migrate");
        js_seg_named(&v->h, "migrate", NULL);
        validate_migrate(v, g->migrate);
        jv_restore(v, m);
    }
    if (g->scaling) {
        nc_buf_puts(&v->j, ".Scaling");
        js_seg_named(&v->h, "scaling", NULL);
        validate_scaling(v, g->scaling, g);
        jv_restore(v, m);
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
                struct jv_mark tm = jv_mark(v);
                nc_buf_printf(&v->j, ".Tasks[%zu]", i);
                jv_err(v, ".Name", "Task %zu redefines '%s' from task %zu", i + 1,
                     t->name, o + 1);
                jv_restore(v, tm);
                break;
            }
        }
    }
    if (leaders > 1)
        jv_err(v, NULL, "Only one task may be marked as leader");
    if (g->ntasks && mains == 0)
        jv_err(v, NULL, "Task group %s must have at least one main task",
             S(g->name));

    validate_volumes(v, g);
    jv_validate_networks(v, g);
    jv_validate_services(v, g->services, g->nservices, NULL, g);
    for (size_t i = 0; i < g->ntasks; i++) {
        struct jv_mark tm = jv_mark(v);
        nc_buf_printf(&v->j, ".Tasks[%zu]", i);
        js_seg_named(&v->h, "task", S(g->tasks[i].name));
        validate_task(v, &g->tasks[i], g);
        jv_restore(v, tm);
    }
}

static void validate_job(struct jv_ctx *v, const struct job *job)
{
    const char *type = S(job->type);
    const char *id = S(job->id);
    if (!*id)
        jv_err(v, ".ID", "Missing job ID");
    else if (strchr(id, ' '))
        jv_err(v, ".ID", "Job ID contains a space");
    if (!job->name || !*job->name)
        jv_err(v, ".Name", "Missing job name");
    if (!job->region || !*job->region)
        jv_err(v, ".Region", "Missing job region");
    if (!job->namespace || !*job->namespace)
        jv_err(v, ".Namespace", "Job must be in a namespace");
    if (!*type)
        jv_err(v, ".Type", "Missing job type");
    else if (!JV_ONE_OF(type, "service", "batch", "system", "sysbatch"))
        jv_err(v, ".Type", "Invalid job type: \"%s\"", type);
    if (job->priority < 1 || job->priority > 100)
        jv_err(v, ".Priority", "job priority must be between [1, 100]");
    if (job->datacenters.n == 0)
        jv_err(v, ".Datacenters", "Missing job datacenters");
    for (size_t i = 0; i < job->datacenters.n; i++)
        if (!job->datacenters.items[i][0]) {
            jv_err(v, ".Datacenters", "Job datacenter must be non-empty string");
            break;
        }
    if (job->ngroups == 0)
        jv_err(v, ".TaskGroups", "Missing job task groups");
    jv_validate_constraints(v, job->constraints, job->nconstraints, false);
    jv_validate_affinities(v, job->affinities, job->naffinities);
    jv_validate_spreads(v, job->spreads, job->nspreads);
    bool batchy = JV_ONE_OF(type, "batch", "sysbatch");
    if (job->periodic &&
        !json_is_false(json_object_get(job->periodic, "Enabled")) && !batchy)
        jv_err(v, ".Periodic", "Periodic can only be used with \"batch\" or "
             "\"sysbatch\" scheduler");
    if (job->parameterized) {
        if (!batchy)
            jv_err(v, ".ParameterizedJob", "Parameterized job can only be used "
                 "with \"batch\" or \"sysbatch\" scheduler");
        const char *payload =
            json_string_value(json_object_get(job->parameterized, "Payload"));
        if (payload && !JV_ONE_OF(payload, "", "optional", "required",
                               "forbidden"))
            jv_err(v, ".ParameterizedJob.Payload",
                 "Unknown payload requirement: \"%s\"", payload);
    }
    for (size_t i = 0; i < job->ngroups; i++) {
        const struct task_group *g = &job->groups[i];
        struct jv_mark m = jv_mark(v);
        nc_buf_printf(&v->j, ".TaskGroups[%zu]", i);
        for (size_t o = 0; o < i; o++) {
            if (g->name && *g->name && nc_streq(job->groups[o].name, g->name)) {
                jv_err(v, ".Name", "Job task group %zu redefines '%s' from "
                     "group %zu", i + 1, g->name, o + 1);
                break;
            }
        }
        /* group paths start at the group, without the job in front */
        js_buf_truncate(&v->h, 0);
        js_seg_named(&v->h, "group", S(g->name));
        validate_group(v, g);
        js_buf_truncate(&v->h, 0);
        js_seg_named(&v->h, "job", S(job->id));
        jv_restore(v, m);
    }
}

int js_validate(struct job *job, const struct js_source *src,
                struct nc_error *err)
{
    struct jv_ctx v = {.e = {.src = src}, .job = job};
    nc_buf_puts(&v.j, "Job");
    js_seg_named(&v.h, "job", S(job->id));
    validate_job(&v, job);
    nc_buf_free(&v.h);
    nc_buf_free(&v.j);
    return js_errors_finish(&v.e, err);
}

