/* metrics.c - see client/api/api.h. */
#include "client/api/api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the set of families --------------------------------------------- */

struct series {
    struct kvlist labels; /* sorted by name */
    double value;
};

struct family {
    char *name; /* dotted, as go-metrics keys */
    char *help;
    bool counter;
    struct series *series;
    size_t n, cap;
};

struct metrics {
    int64_t now;
    struct family *families; /* in the order first seen */
    size_t n, cap;
};

struct metrics *metrics_new(int64_t now)
{
    struct metrics *m = xcalloc(1, sizeof(*m));
    m->now = now ? now : nc_now_unix_ns();
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        struct family *f = &m->families[i];
        for (size_t k = 0; k < f->n; k++)
            kv_free(&f->series[k].labels);
        free(f->series);
        free(f->name);
        free(f->help);
    }
    free(m->families);
    free(m);
}

static bool same_labels(const struct kvlist *a, const struct kvlist *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->items[i].key, b->items[i].key) != 0 ||
            !nc_streq(a->items[i].value, b->items[i].value))
            return false;
    return true;
}

/* A label name as Prometheus allows: [a-zA-Z_][a-zA-Z0-9_]*. */
static char *label_name(const char *s)
{
    char *out = xasprintf("%s%s", *s >= '0' && *s <= '9' ? "_" : "", s);
    for (char *p = out; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_'))
            *p = '_';
    return out;
}

static void add(struct metrics *m, const char *name, const char *help,
                bool counter, const struct kvlist *labels, double value)
{
    struct family *f = NULL;
    for (size_t i = 0; i < m->n && !f; i++)
        if (strcmp(m->families[i].name, name) == 0)
            f = &m->families[i];
    if (f && f->counter != counter)
        return;
    if (!f) {
        nc_grow((void **)&m->families, &m->cap, m->n + 1, sizeof(*f));
        f = &m->families[m->n++];
        memset(f, 0, sizeof(*f));
        f->name = xstrdup(name);
        f->help = xstrdup(help);
        f->counter = counter;
    }
    struct kvlist l = {0};
    for (size_t i = 0; labels && i < labels->n; i++) {
        char *k = label_name(labels->items[i].key);
        kv_set(&l, k, labels->items[i].value ? labels->items[i].value : "");
        free(k);
    }
    kv_sort(&l);
    for (size_t i = 0; i < f->n; i++) {
        if (same_labels(&f->series[i].labels, &l)) {
            f->series[i].value = value;
            kv_free(&l);
            return;
        }
    }
    nc_grow((void **)&f->series, &f->cap, f->n + 1, sizeof(*f->series));
    f->series[f->n++] = (struct series){.labels = l, .value = value};
}

void metrics_gauge(struct metrics *m, const char *name, const char *help,
                   const struct kvlist *labels, double value)
{
    add(m, name, help, false, labels, value);
}

void metrics_counter(struct metrics *m, const char *name, const char *help,
                     const struct kvlist *labels, double value)
{
    add(m, name, help, true, labels, value);
}

/* ---- output ---------------------------------------------------------- */

static char *prom_name(const struct family *f)
{
    char *out = label_name(f->name);
    for (char *p = out; *p; p++)
        if (*p == '.' || *p == '-')
            *p = '_';
    if (f->counter && !nc_str_has_suffix(out, "_total")) {
        char *t = xasprintf("%s_total", out);
        free(out);
        out = t;
    }
    return out;
}

/* Prometheus' escapes: \ and newline in HELP, and " too in label values. */
static void escaped(struct nc_buf *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            nc_buf_puts(b, "\\\\");
        else if (*s == '\n')
            nc_buf_puts(b, "\\n");
        else if (*s == '"' && quote)
            nc_buf_puts(b, "\\\"");
        else
            nc_buf_putc(b, *s);
    }
}

/* The shortest text that reads back as the same double, as Go writes. */
static void number(struct nc_buf *b, double v)
{
    if (isnan(v)) {
        nc_buf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        nc_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char s[40];
    if (v == floor(v) && fabs(v) < 1e15) {
        nc_buf_printf(b, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(s, sizeof(s), "%.*g", prec, v);
        if (strtod(s, NULL) == v)
            break;
    }
    nc_buf_puts(b, s);
}

char *metrics_prometheus(const struct metrics *m)
{
    struct nc_buf b = {0};
    for (size_t i = 0; i < m->n; i++) {
        const struct family *f = &m->families[i];
        char *name = prom_name(f);
        nc_buf_printf(&b, "# HELP %s ", name);
        escaped(&b, f->help && *f->help ? f->help : f->name, false);
        nc_buf_printf(&b, "\n# TYPE %s %s\n", name,
                      f->counter ? "counter" : "gauge");
        for (size_t k = 0; k < f->n; k++) {
            const struct kvlist *l = &f->series[k].labels;
            nc_buf_puts(&b, name);
            for (size_t j = 0; j < l->n; j++) {
                nc_buf_printf(&b, "%s%s=\"", j ? "," : "{", l->items[j].key);
                escaped(&b, l->items[j].value, true);
                nc_buf_putc(&b, '"');
            }
            nc_buf_puts(&b, l->n ? "} " : " ");
            number(&b, f->series[k].value);
            nc_buf_putc(&b, '\n');
        }
        free(name);
    }
    return nc_buf_take(&b);
}

static json_t *labels_json(const struct kvlist *l)
{
    json_t *o = json_object();
    for (size_t i = 0; i < l->n; i++)
        json_object_set_new(o, l->items[i].key, json_string(l->items[i].value));
    return o;
}

json_t *metrics_json(const struct metrics *m)
{
    json_t *gauges = json_array(), *counters = json_array();
    for (size_t i = 0; i < m->n; i++) {
        const struct family *f = &m->families[i];
        for (size_t k = 0; k < f->n; k++) {
            double v = f->series[k].value;
            json_t *labels = labels_json(&f->series[k].labels);
            if (!f->counter) {
                /* JSON has no NaN or Inf: null keeps the series */
                json_array_append_new(
                    gauges,
                    json_pack("{s:s, s:o, s:o}", "Name", f->name, "Value",
                              isfinite(v) ? json_real(v) : json_null(),
                              "Labels", labels));
                continue;
            }
            /* a total of v events of one each */
            if (!isfinite(v) || v < 0)
                v = 0;
            double one = v > 0 ? 1 : 0;
            json_array_append_new(
                counters,
                json_pack("{s:s, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:o}",
                          "Name", f->name, "Count", (json_int_t)v, "Rate", 0.0,
                          "Sum", v, "Min", one, "Max", one, "Mean", one,
                          "Stddev", 0.0, "Labels", labels));
        }
    }
    /* go-metrics' interval time, as Go prints a UTC time.Time */
    char ts[64];
    time_t secs = (time_t)(m->now / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S +0000 UTC", &tm);
    return json_pack("{s:s, s:o, s:[], s:o, s:[]}", "Timestamp", ts, "Gauges",
                     gauges, "Points", "Counters", counters, "Samples");
}

/* ---- what the agent knows -------------------------------------------- */

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static double jnum(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static void node_labels(const struct metrics_source *src, const char *host,
                        struct kvlist *l)
{
    const struct node *n = src->node;
    kv_set(l, "node_id", n->id ? n->id : "");
    kv_set(l, "datacenter", n->datacenter ? n->datacenter : "");
    kv_set(l, "node_class",
           n->node_class && *n->node_class ? n->node_class : "none");
    kv_set(l, "node_pool", n->node_pool ? n->node_pool : "default");
    kv_set(l, "node_status", n->status ? n->status : "ready");
    kv_set(l, "node_scheduling_eligibility",
           n->eligible ? "eligible" : "ineligible");
    kv_set(l, "host", host);
}

/* One gauge with the base labels plus one more (key NULL: none). */
static void gauge1(struct metrics *m, const char *name, const char *help,
                   const struct kvlist *base, const char *key,
                   const char *value, double v)
{
    struct kvlist l = {0};
    kv_copy(&l, base);
    if (key)
        kv_set(&l, key, value);
    metrics_gauge(m, name, help, &l, v);
    kv_free(&l);
}

static void host_metrics(struct metrics *m, const struct metrics_source *src,
                         const struct kvlist *base)
{
    const struct host_stats *s = src->host;
    static const struct {
        const char *name, *help;
        size_t offset;
    } mem[] = {
        {"nomad.client.host.memory.total", "Memory of the host, bytes",
         offsetof(struct host_stats, mem_total)},
        {"nomad.client.host.memory.available",
         "Memory available to new work (MemAvailable), bytes",
         offsetof(struct host_stats, mem_available)},
        {"nomad.client.host.memory.used", "Memory in use, bytes",
         offsetof(struct host_stats, mem_used)},
        {"nomad.client.host.memory.free", "Memory not used at all, bytes",
         offsetof(struct host_stats, mem_free)},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(mem); i++)
        gauge1(m, mem[i].name, mem[i].help, base, NULL, NULL,
               (double)*(const uint64_t *)((const char *)s + mem[i].offset));
    gauge1(m, "nomad.client.uptime", "Seconds since the host booted", base,
           NULL, NULL, (double)s->uptime);
    const char *total = kv_get(&src->node->attributes, "cpu.totalcompute");
    const char *cores = kv_get(&src->node->attributes, "cpu.numcores");
    double mhz = total ? atof(total) : 0;
    if (cores && atoi(cores) > 0)
        mhz /= atoi(cores);
    for (int i = 0; i < s->ncpus; i++) {
        char cpu[16];
        snprintf(cpu, sizeof(cpu), "cpu%d", i);
        const struct host_cpu_stats *c = &s->cpu[i];
        gauge1(m, "nomad.client.host.cpu.total",
               "CPU busy, percent (kept for older consumers)", base, "cpu", cpu,
               c->total);
        gauge1(m, "nomad.client.host.cpu.total_percent", "CPU busy, percent",
               base, "cpu", cpu, c->total);
        gauge1(m, "nomad.client.host.cpu.total_ticks",
               "CPU busy, MHz (percent of the core's clock)", base, "cpu", cpu,
               c->total / 100.0 * mhz);
        gauge1(m, "nomad.client.host.cpu.user", "CPU in user mode, percent",
               base, "cpu", cpu, c->user);
        gauge1(m, "nomad.client.host.cpu.idle", "CPU idle, percent", base,
               "cpu", cpu, c->idle);
        gauge1(m, "nomad.client.host.cpu.system", "CPU in system mode, percent",
               base, "cpu", cpu, c->system);
    }
    const char *dev = s->device[0] ? s->device : "unknown";
    gauge1(m, "nomad.client.host.disk.size",
           "Size of the filesystem holding data_dir, bytes", base, "disk", dev,
           (double)s->disk_size);
    gauge1(m, "nomad.client.host.disk.used", "Used on that filesystem, bytes",
           base, "disk", dev, (double)s->disk_used);
    gauge1(m, "nomad.client.host.disk.available",
           "Available on that filesystem, bytes", base, "disk", dev,
           (double)s->disk_available);
    gauge1(m, "nomad.client.host.disk.used_percent",
           "Used on that filesystem, percent", base, "disk", dev,
           s->disk_used_percent);
    gauge1(m, "nomad.client.host.disk.inodes_percent",
           "Inodes used on that filesystem, percent", base, "disk", dev,
           s->inodes_used_percent);
}

static const struct task_group *group_of(const struct alloc *a)
{
    for (size_t i = 0; a->job && i < a->job->ngroups; i++)
        if (nc_streq(a->job->groups[i].name, a->group))
            return &a->job->groups[i];
    return NULL;
}

static const struct task *task_of(const struct task_group *g, const char *name)
{
    for (size_t i = 0; g && i < g->ntasks; i++)
        if (nc_streq(g->tasks[i].name, name))
            return &g->tasks[i];
    return NULL;
}

static bool terminal(const struct alloc *a)
{
    return nc_streq(a->client_status, "complete") ||
           nc_streq(a->client_status, "failed");
}

/* Counts and reserved resources, as Nomad's emitClientMetrics. */
static void alloc_counts(struct metrics *m, const struct metrics_source *src,
                         const struct kvlist *base)
{
    double pending = 0, running = 0, term = 0, tpend = 0, trun = 0, tdead = 0;
    double cpu = 0, mem = 0, mem_max = 0, disk = 0;
    for (size_t i = 0; i < src->nallocs; i++) {
        const struct alloc *a = src->allocs[i];
        if (nc_streq(a->client_status, "pending"))
            pending++;
        else if (nc_streq(a->client_status, "running"))
            running++;
        else if (terminal(a))
            term++;
        for (size_t k = 0; k < a->ntasks; k++) {
            tpend += nc_streq(a->tasks[k].state, "pending");
            trun += nc_streq(a->tasks[k].state, "running");
            tdead += nc_streq(a->tasks[k].state, "dead");
        }
        const struct task_group *g = group_of(a);
        if (terminal(a) || !g)
            continue;
        for (size_t k = 0; k < g->ntasks; k++) {
            const struct resources *r = &g->tasks[k].resources;
            cpu += r->cpu;
            mem += r->memory_mb;
            mem_max += r->memory_max_mb > r->memory_mb ? r->memory_max_mb
                                                       : r->memory_mb;
        }
        disk += g->ephemeral_disk.mb;
    }
    static const char *const help_a = "Allocations of this node by state";
    gauge1(m, "nomad.client.allocations.migrating", help_a, base, 0, 0, 0);
    gauge1(m, "nomad.client.allocations.blocked", help_a, base, 0, 0, 0);
    gauge1(m, "nomad.client.allocations.pending", help_a, base, 0, 0, pending);
    gauge1(m, "nomad.client.allocations.running", help_a, base, 0, 0, running);
    gauge1(m, "nomad.client.allocations.terminal", help_a, base, 0, 0, term);
    static const char *const help_t = "Tasks of this node by state";
    gauge1(m, "nomad.client.tasks.pending", help_t, base, 0, 0, tpend);
    gauge1(m, "nomad.client.tasks.running", help_t, base, 0, 0, trun);
    gauge1(m, "nomad.client.tasks.dead", help_t, base, 0, 0, tdead);
    const struct node *n = src->node;
    gauge1(m, "nomad.client.allocated.memory",
           "Memory reserved by live allocations, MB", base, 0, 0, mem);
    gauge1(m, "nomad.client.allocated.max_memory",
           "Memory live allocations may burst to, MB", base, 0, 0, mem_max);
    gauge1(m, "nomad.client.allocated.disk",
           "Ephemeral disk reserved by live allocations, MB", base, 0, 0, disk);
    gauge1(m, "nomad.client.allocated.cpu",
           "CPU reserved by live allocations, MHz", base, 0, 0, cpu);
    gauge1(m, "nomad.client.unallocated.memory",
           "Memory left for new allocations, MB", base, 0, 0,
           (double)(n->resources.memory_mb - n->reserved.memory_mb) - mem);
    gauge1(m, "nomad.client.unallocated.disk",
           "Disk left for new allocations, MB", base, 0, 0,
           (double)(n->resources.disk_mb - n->reserved.disk_mb) - disk);
    gauge1(m, "nomad.client.unallocated.cpu",
           "CPU left for new allocations, MHz", base, 0, 0,
           (double)(n->resources.cpu_mhz - n->reserved.cpu_mhz) - cpu);
}

static bool measured(const json_t *stats, const char *what)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(stats, "Measured"), i, v)
    {
        if (nc_streq(json_string_value(v), what))
            return true;
    }
    return false;
}

/* A task's usage, as Nomad's task runner emits it (setGaugeForMemory,
 * setGaugeForCPU): memory values only when measured or non-zero. */
static void task_metrics(struct metrics *m, const struct kvlist *l,
                         const json_t *usage, const struct task *t)
{
    const json_t *ms = json_object_get(usage, "MemoryStats");
    static const struct {
        const char *key, *measured, *name, *help;
    } mem[] = {
        {"RSS", "RSS", "nomad.client.allocs.memory.rss",
         "Resident memory of the task, bytes"},
        {"Cache", "Cache", "nomad.client.allocs.memory.cache",
         "Page cache charged to the task, bytes"},
        {"Swap", "Swap", "nomad.client.allocs.memory.swap",
         "Swap used by the task, bytes"},
        {"Usage", "Usage", "nomad.client.allocs.memory.usage",
         "Memory charged to the task's cgroup, bytes"},
        {"MaxUsage", "Max Usage", "nomad.client.allocs.memory.max_usage",
         "Peak memory of the task's cgroup, bytes"},
        {"KernelUsage", "Kernel Usage",
         "nomad.client.allocs.memory.kernel_usage",
         "Kernel memory of the task, bytes"},
        {"KernelMaxUsage", "Kernel Max Usage",
         "nomad.client.allocs.memory.kernel_max_usage",
         "Peak kernel memory of the task, bytes"},
    };
    for (size_t i = 0; ms && i < NC_ARRAY_LEN(mem); i++) {
        double v = jnum(ms, mem[i].key);
        if (v != 0 || measured(ms, mem[i].measured))
            metrics_gauge(m, mem[i].name, mem[i].help, l, v);
    }
    if (t && t->resources.memory_mb > 0)
        metrics_gauge(m, "nomad.client.allocs.memory.allocated",
                      "Memory reserved for the task, bytes", l,
                      t->resources.memory_mb * 1048576.0);
    if (t && t->resources.memory_max_mb > 0)
        metrics_gauge(m, "nomad.client.allocs.memory.max_allocated",
                      "Memory the task may burst to, bytes", l,
                      t->resources.memory_max_mb * 1048576.0);
    const json_t *cs = json_object_get(usage, "CpuStats");
    static const struct {
        const char *key, *name, *help;
    } cpu[] = {
        {"Percent", "nomad.client.allocs.cpu.total_percent",
         "CPU used by the task, percent of one core"},
        {"SystemMode", "nomad.client.allocs.cpu.system",
         "CPU used by the task in system mode, percent"},
        {"UserMode", "nomad.client.allocs.cpu.user",
         "CPU used by the task in user mode, percent"},
        {"ThrottledTime", "nomad.client.allocs.cpu.throttled_time",
         "Time the task's cgroup was throttled, ns"},
        {"ThrottledPeriods", "nomad.client.allocs.cpu.throttled_periods",
         "Periods the task's cgroup was throttled"},
        {"TotalTicks", "nomad.client.allocs.cpu.total_ticks",
         "CPU used by the task, MHz"},
    };
    if (!cs)
        return;
    for (size_t i = 0; i < NC_ARRAY_LEN(cpu); i++)
        metrics_gauge(m, cpu[i].name, cpu[i].help, l, jnum(cs, cpu[i].key));
    if (t && t->resources.cpu > 0)
        metrics_gauge(m, "nomad.client.allocs.cpu.allocated",
                      "CPU reserved for the task, MHz", l, t->resources.cpu);
}

static void alloc_metrics(struct metrics *m, const struct metrics_source *src,
                          const char *host)
{
    for (size_t i = 0; src->alloc_stats && i < src->nallocs; i++) {
        struct alloc *a = src->allocs[i];
        bool any = false;
        for (size_t k = 0; k < a->ntasks; k++)
            any |= nc_streq(a->tasks[k].state, "running");
        if (!any || terminal(a))
            continue;
        json_t *stats = src->alloc_stats(src->alloc_stats_arg, a);
        const struct task_group *g = group_of(a);
        for (size_t k = 0; k < a->ntasks; k++) {
            const struct alloc_task *t = &a->tasks[k];
            json_t *usage = json_object_get(
                json_object_get(json_object_get(stats, "Tasks"), t->name),
                "ResourceUsage");
            if (!nc_streq(t->state, "running") || !usage)
                continue;
            struct kvlist l = {0};
            kv_set(&l, "job",
                   a->job && a->job->name ? a->job->name : a->job_id);
            kv_set(&l, "task_group", a->group);
            kv_set(&l, "alloc_id", a->id);
            kv_set(&l, "task", t->name);
            kv_set(&l, "namespace", a->namespace);
            kv_set(&l, "host", host);
            task_metrics(m, &l, usage, task_of(g, t->name));
            kv_free(&l);
        }
        json_decref(stats);
    }
}

static const struct alloc *find_alloc(const struct metrics_source *src,
                                      const char *id)
{
    for (size_t i = 0; i < src->nallocs; i++)
        if (nc_streq(src->allocs[i]->id, id))
            return src->allocs[i];
    return NULL;
}

static const char *const statuses[] = {"passing", "warning", "critical"};

/* Each check's live state: status as a state set, its counters, and how
 * long its last probe took; then how many checks are in each status. */
static void check_metrics(struct metrics *m, const struct metrics_source *src,
                          const struct kvlist *base, const char *host)
{
    double by_status[3] = {0};
    const char *id;
    json_t *c;
    json_object_foreach((json_t *)src->checks, id, c)
    {
        const struct alloc *a = find_alloc(src, jstr(c, "AllocID"));
        struct kvlist l = {0};
        kv_set(&l, "namespace", a ? a->namespace : "");
        kv_set(&l, "job",
               a ? (a->job && a->job->name ? a->job->name : a->job_id) : "");
        kv_set(&l, "task_group", jstr(c, "Group"));
        kv_set(&l, "alloc_id", jstr(c, "AllocID"));
        kv_set(&l, "task", jstr(c, "Task"));
        kv_set(&l, "service", jstr(c, "ServiceName"));
        kv_set(&l, "check", jstr(c, "Name"));
        kv_set(&l, "check_id", id);
        kv_set(&l, "type", jstr(c, "Type"));
        kv_set(&l, "host", host);
        const char *st = jstr(c, "Status");
        for (size_t i = 0; i < NC_ARRAY_LEN(statuses); i++) {
            gauge1(m, "nomclient.check.status",
                   "1 for the check's status after thresholds, 0 for the "
                   "others",
                   &l, "status", statuses[i], nc_streq(st, statuses[i]));
            by_status[i] += nc_streq(st, statuses[i]);
        }
        const json_t *k = json_object_get(c, "Counters");
        metrics_counter(m, "nomclient.check.probes", "Probes run", &l,
                        jnum(k, "Probes"));
        static const char *const keys[] = {"Passing", "Warning", "Critical"};
        for (size_t i = 0; i < NC_ARRAY_LEN(keys); i++) {
            struct kvlist r = {0};
            kv_copy(&r, &l);
            kv_set(&r, "result", statuses[i]);
            metrics_counter(m, "nomclient.check.results",
                            "Probe results by status (before thresholds)", &r,
                            jnum(k, keys[i]));
            kv_free(&r);
        }
        metrics_counter(m, "nomclient.check.timeouts",
                        "Probes that ran out of time", &l, jnum(k, "Timeouts"));
        metrics_counter(m, "nomclient.check.skipped",
                        "Probes skipped (the previous one still running)", &l,
                        jnum(k, "Skipped"));
        metrics_counter(m, "nomclient.check.restarts",
                        "Task restarts asked by check_restart", &l,
                        jnum(k, "Restarts"));
        metrics_gauge(m, "nomclient.check.latency_seconds",
                      "Duration of the last probe, seconds", &l,
                      jnum(c, "Latency") / 1e9);
        kv_free(&l);
    }
    for (size_t i = 0; i < NC_ARRAY_LEN(statuses); i++)
        gauge1(m, "nomclient.checks", "Checks of this node by status", base,
               "status", statuses[i], by_status[i]);
}

static void consul_metrics(struct metrics *m, const json_t *st,
                           const struct kvlist *base)
{
    const json_t *k = json_object_get(st, "Counters");
    static const struct {
        const char *key, *name, *help;
    } counters[] = {
        {"Registrations", "nomclient.consul.registrations",
         "Services registered with Consul"},
        {"Deregistrations", "nomclient.consul.deregistrations",
         "Services deregistered from Consul"},
        {"CheckUpdates", "nomclient.consul.check_updates",
         "Check status updates sent to Consul"},
        {"Errors", "nomclient.consul.errors",
         "Consul requests that failed or were refused"},
        {"Passes", "nomclient.consul.sync_passes",
         "Reconcile passes against Consul"},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(counters); i++)
        metrics_counter(m, counters[i].name, counters[i].help, base,
                        jnum(k, counters[i].key));
    gauge1(m, "nomclient.consul.reachable",
           "1 when the last request reached Consul", base, NULL, NULL,
           json_is_true(json_object_get(st, "Reachable")));
    const json_t *d = json_object_get(st, "LastSyncDuration");
    int64_t ns = 0;
    if (json_is_integer(d))
        ns = json_integer_value(d);
    else if (json_is_string(d) && nc_parse_duration(json_string_value(d), &ns))
        ns = 0;
    gauge1(m, "nomclient.consul.last_sync_duration_seconds",
           "How long the last reconcile pass took, seconds", base, NULL, NULL,
           (double)ns / 1e9);
}

/* Registrations by registry and state, every known state of a registry in
 * use present (0 when none), so alerts on a state have a series. */
static void registration_metrics(struct metrics *m, const json_t *view,
                                 const struct kvlist *base)
{
    static const char *const states[] = {"in sync", "missing",  "different",
                                         "pending", "rejected", "unreachable",
                                         "invalid"};
    const json_t *regs = json_object_get(view, "Registries");
    struct kvlist l = {0};
    kv_copy(&l, base);
    const char *registries[] = {"nomad", "consul"};
    const char *keys[] = {"Catalog", "Consul"};
    for (size_t r = 0; r < 2; r++) {
        if (!json_is_object(json_object_get(regs, keys[r])))
            continue;
        kv_set(&l, "registry", registries[r]);
        for (size_t s = 0; s < NC_ARRAY_LEN(states); s++) {
            kv_set(&l, "state", states[s]);
            metrics_gauge(m, "nomclient.registrations",
                          "Registrations this node wants, by registry and "
                          "whether it agrees",
                          &l, 0);
        }
    }
    size_t i;
    json_t *reg;
    struct kvlist seen = {0};
    json_array_foreach(json_object_get(view, "Registrations"), i, reg)
    {
        const char *registry = jstr(reg, "Registry");
        char *key = xasprintf("%s\x1f%s", *registry ? registry : "none",
                              jstr(reg, "State"));
        const char *had = kv_get(&seen, key);
        char count[32];
        snprintf(count, sizeof(count), "%d", had ? atoi(had) + 1 : 1);
        kv_set(&seen, key, count);
        free(key);
    }
    for (size_t k = 0; k < seen.n; k++) {
        char *sep = strchr(seen.items[k].key, '\x1f');
        *sep = '\0';
        kv_set(&l, "registry", seen.items[k].key);
        kv_set(&l, "state", sep + 1);
        metrics_gauge(m, "nomclient.registrations", "", &l,
                      atof(seen.items[k].value));
    }
    kv_free(&seen);
    kv_free(&l);
    const json_t *sum = json_object_get(view, "Summary");
    gauge1(m, "nomclient.registrations.unhealthy",
           "Registrations with a failing check", base, NULL, NULL,
           jnum(sum, "Unhealthy"));
    gauge1(m, "nomclient.registrations.stale",
           "Services Consul holds under this node's prefix that nothing here "
           "wants",
           base, NULL, NULL, jnum(sum, "Stale"));
}

struct metrics *metrics_collect(const struct metrics_source *src)
{
    struct metrics *m = metrics_new(src->now);
    char host[256] = "";
    if (src->hostname)
        snprintf(host, sizeof(host), "%s", src->hostname);
    else if (gethostname(host, sizeof(host) - 1) < 0)
        snprintf(host, sizeof(host), "unknown");
    struct kvlist base = {0};
    node_labels(src, host, &base);
    if (src->host)
        host_metrics(m, src, &base);
    alloc_counts(m, src, &base);
    alloc_metrics(m, src, host);
    if (src->checks)
        check_metrics(m, src, &base, host);
    if (src->consul_status)
        consul_metrics(m, src->consul_status, &base);
    if (src->registrations)
        registration_metrics(m, src->registrations, &base);
    kv_free(&base);
    return m;
}
