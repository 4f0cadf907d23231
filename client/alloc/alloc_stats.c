/* alloc_stats.c - resource usage of an allocation and its tasks (see alloc.h). */
#include "client/alloc/alloc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/drivers/driver.h"

#define MIN_SAMPLE_NS 100000000ULL

/* Updates the task's percentages from the counters' growth since the last
 * sample (when enough time has passed to make the figure meaningful). */
static void sample_cpu(struct alloc_task *t, const struct driver_usage *st)
{
    uint64_t now = nc_now_mono_ns();
    if (t->sample_mono_ns && now - t->sample_mono_ns < MIN_SAMPLE_NS)
        return;
    if (t->sample_mono_ns && st->cpu_ns >= t->sample_cpu_ns) {
        double wall = (double)(now - t->sample_mono_ns);
        t->cpu_pct = (double)(st->cpu_ns - t->sample_cpu_ns) / wall * 100.0;
        t->user_pct = st->user_ns >= t->sample_user_ns
                          ? (double)(st->user_ns - t->sample_user_ns) / wall * 100.0
                          : 0;
        t->sys_pct = st->system_ns >= t->sample_sys_ns
                         ? (double)(st->system_ns - t->sample_sys_ns) / wall * 100.0
                         : 0;
    }
    t->sample_cpu_ns = st->cpu_ns;
    t->sample_user_ns = st->user_ns;
    t->sample_sys_ns = st->system_ns;
    t->sample_mono_ns = now;
}

static json_t *usage_json(const struct driver_usage *st, double pct,
                          double user, double sys, double mhz_per_core)
{
    json_t *mem_measured = json_array(), *cpu_measured = json_array();
    if (st->have_mem) {
        static const char *const m[] = {"RSS", "Cache", "Swap", "Usage",
                                        "Max Usage"};
        for (size_t i = 0; i < NC_ARRAY_LEN(m); i++)
            json_array_append_new(mem_measured, json_string(m[i]));
    }
    if (st->have_cpu) {
        static const char *const c[] = {"System Mode", "User Mode", "Percent"};
        for (size_t i = 0; i < NC_ARRAY_LEN(c); i++)
            json_array_append_new(cpu_measured, json_string(c[i]));
    }
    return json_pack(
        "{s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}, "
        "s:{s:f, s:f, s:f, s:I, s:I, s:f, s:o}, s:n}",
        "MemoryStats", "RSS", (json_int_t)st->mem_rss, "Cache",
        (json_int_t)st->mem_cache, "Swap", (json_int_t)st->mem_swap, "Usage",
        (json_int_t)st->mem_usage, "MaxUsage", (json_int_t)st->mem_max_usage,
        "KernelUsage", (json_int_t)0, "KernelMaxUsage", (json_int_t)0,
        "Measured", mem_measured, "CpuStats", "SystemMode", sys, "UserMode",
        user, "TotalTicks", pct / 100.0 * mhz_per_core, "ThrottledPeriods",
        (json_int_t)0, "ThrottledTime", (json_int_t)0, "Percent", pct,
        "Measured", cpu_measured, "DeviceStats");
}

json_t *alloc_stats_json(struct alloc *a, const struct node *n)
{
    const char *total = kv_get(&n->attributes, "cpu.totalcompute");
    const char *cores = kv_get(&n->attributes, "cpu.numcores");
    double mhz = total ? atof(total) : 0;
    if (cores && atoi(cores) > 0)
        mhz /= atoi(cores);
    json_t *tasks = json_object();
    struct driver_usage sum = {0};
    double pct = 0, user = 0, sys = 0;
    int64_t now = nc_now_unix_ns();
    for (size_t i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];
        struct driver_usage st = {0};
        bool live = nc_streq(t->state, "running");
        const struct driver *d = live ? driver_of(alloc_task_spec(t)) : NULL;
        if (d && d->stats)
            d->stats(a->mgr->drv, t, &st);
        if (live)
            sample_cpu(t, &st);
        else
            t->cpu_pct = t->user_pct = t->sys_pct = 0;
        json_object_set_new(
            tasks, t->name,
            json_pack("{s:o, s:I, s:n}", "ResourceUsage",
                      usage_json(&st, t->cpu_pct, t->user_pct, t->sys_pct, mhz),
                      "Timestamp", (json_int_t)now, "Pids"));
        sum.mem_rss += st.mem_rss;
        sum.mem_cache += st.mem_cache;
        sum.mem_swap += st.mem_swap;
        sum.mem_usage += st.mem_usage;
        sum.mem_max_usage += st.mem_max_usage;
        sum.have_cpu |= st.have_cpu;
        sum.have_mem |= st.have_mem;
        pct += t->cpu_pct;
        user += t->user_pct;
        sys += t->sys_pct;
    }
    return json_pack("{s:o, s:o, s:I}", "ResourceUsage",
                     usage_json(&sum, pct, user, sys, mhz), "Tasks", tasks,
                     "Timestamp", (json_int_t)now);
}
