/* cgroup.h - one cgroup per task, on cgroup v2 (unified) and v1/hybrid
 * hosts. Used by the task supervisor; the agent uses the listing and
 * removal helpers to clean up cgroups no allocation owns. */
#ifndef NOMCLIENT_CGROUP_H
#define NOMCLIENT_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Root under which every task cgroup lives: <mount>/<CGROUP_PARENT>/<name>. */
#define CGROUP_PARENT "nomclient"

struct cgroup {
    bool v2;
    char *name;            /* "<alloc>.<task>", below CGROUP_PARENT */
    char *paths[5];        /* v2: paths[0]; v1: one per controller */
    size_t npaths;
};

/* Which hierarchy the host uses: "v2" when /sys/fs/cgroup is unified,
 * "v1" otherwise (hybrid hosts keep controllers on v1). */
const char *cgroup_version(void);

/* Creates the task's cgroup with its limits: cpu weight from `cpu_shares`
 * (MHz, as Nomad), memory limit `memory_mb`, or soft `memory_mb` + hard
 * `memory_max_mb` when the latter is set. err gets "what: path: why". */
int cgroup_create(struct cgroup *cg, const char *name, int cpu_shares,
                  int64_t memory_mb, int64_t memory_max_mb, char *err,
                  size_t errlen);
/* Moves `pid` into the cgroup. */
int cgroup_add(struct cgroup *cg, pid_t pid, char *err, size_t errlen);
/* SIGKILLs every process in the cgroup (cgroup.kill where available). */
void cgroup_kill(struct cgroup *cg);
/* Whether the kernel OOM-killed a process of this cgroup. */
bool cgroup_oom_killed(const struct cgroup *cg);
/* Kills what is left, removes the directories and frees cg. */
void cgroup_destroy(struct cgroup *cg);

/* What a task cgroup used, for /v1/client/allocation/:id/stats. */
struct cgroup_stats {
    uint64_t cpu_ns, user_ns, system_ns; /* cumulative */
    uint64_t mem_usage, mem_max_usage, mem_rss, mem_cache, mem_swap; /* bytes */
    int pids;
    bool have_cpu, have_mem;
};
/* Reads the counters of the task cgroup `name`; -ENOENT when absent. */
int cgroup_read_stats(const char *name, struct cgroup_stats *st);

/* Removes the cgroup `name` (as created above) if it exists: for cleaning
 * leftovers. Returns 0, -ENOENT when absent, or -errno. */
int cgroup_remove(const char *name);
/* Calls fn for each existing task cgroup name under CGROUP_PARENT. */
int cgroup_list(void (*fn)(const char *name, void *arg), void *arg);

#endif
