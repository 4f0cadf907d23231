/* alloc_stats.c - see alloc_stats.h. */
#include "client/alloc/alloc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/drivers/internal.h"

#define MIN_SAMPLE_NS 100000000ULL

/* Sums utime/stime and RSS of the processes in session `sid` (the
 * supervisor's: the task and everything it started). */
static void session_usage(int sid, struct cgroup_stats *st)
{
    memset(st, 0, sizeof(*st));
    DIR *d = opendir("/proc");
    if (!d)
        return;
    long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (hz <= 0)
        hz = 100;
    struct dirent *e;
    while ((e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid <= 0 || pid == sid)
            continue; /* the supervisor itself is ours, not the task's */
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        size_t len;
        char *txt = nc_read_file(path, &len, 4096);
        const char *p = txt ? strrchr(txt, ')') : NULL;
        /* after "pid (comm)": state ppid pgrp session ... utime(14) stime(15)
         * ... rss(24) */
        char state;
        int ppid, pgrp, session;
        unsigned long long utime, stime;
        long long rss;
        if (p && sscanf(p + 2,
                        "%c %d %d %d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
                        "%*d %*d %*d %*d %*d %*d %*u %*u %lld",
                        &state, &ppid, &pgrp, &session, &utime, &stime,
                        &rss) == 7 &&
            session == sid) {
            st->user_ns += utime * (1000000000ULL / (unsigned long long)hz);
            st->system_ns += stime * (1000000000ULL / (unsigned long long)hz);
            st->mem_rss += (uint64_t)(rss > 0 ? rss : 0) * (uint64_t)page;
            st->pids++;
        }
        free(txt);
    }
    closedir(d);
    st->cpu_ns = st->user_ns + st->system_ns;
    st->mem_usage = st->mem_rss;
    st->have_cpu = st->have_mem = st->pids > 0;
}

/* Updates the task's percentages from the counters' growth since the last
 * sample (when enough time has passed to make the figure meaningful). */
static void sample_cpu(struct alloc_task *t, const struct cgroup_stats *st)
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

static json_t *usage_json(const struct cgroup_stats *st, double pct,
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
    struct cgroup_stats sum = {0};
    double pct = 0, user = 0, sys = 0;
    int64_t now = nc_now_unix_ns();
    for (size_t i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];
        struct cgroup_stats st = {0};
        char *cg = xasprintf("%s.%s", a->id, t->name);
        bool live = nc_streq(t->state, "running");
        if (live && cgroup_read_stats(cg, &st) < 0 && t->supervisor_pid > 0)
            session_usage(t->supervisor_pid, &st);
        free(cg);
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
