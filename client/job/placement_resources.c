/* placement_resources.c - cpu, memory, disk and cores: what the node has
 * left and what a group asks (BinPackIterator in Nomad's rank.go). */
#include <stdint.h>
#include <string.h>

#include "client/job/internal.h"

static int64_t sat_add64(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    return a + b;
}

/* total - reserved - used, with nonsense negatives read as 0: the result
 * stays within [-INT64_MAX, INT64_MAX]. */
static int64_t available(int64_t total, int64_t reserved, int64_t used)
{
    if (total < 0)
        total = 0;
    if (reserved < 0)
        reserved = 0;
    if (used < 0)
        used = 0;
    int64_t left = total - reserved; /* both >= 0: cannot overflow */
    if (left < 0 && used > INT64_MAX + left)
        return -INT64_MAX;
    return left - used;
}

void pl_resources_init(struct pl_resources *res, const struct node *node,
                       const struct placement_usage *used)
{
    res->cpu = available(node->resources.cpu_mhz, node->reserved.cpu_mhz,
                         used ? used->cpu_mhz : 0);
    res->memory = available(node->resources.memory_mb,
                            node->reserved.memory_mb,
                            used ? used->memory_mb : 0);
    res->disk = available(node->resources.disk_mb, node->reserved.disk_mb,
                          used ? used->disk_mb : 0);
    res->cores = available(node->resources.cores, node->reserved.cores,
                           used ? used->cores : 0);
    res->mhz_per_core = node->resources.cores > 0 &&
                                node->resources.cpu_mhz > 0
                            ? node->resources.cpu_mhz / node->resources.cores
                            : 0;
}

void pl_resources_ask(const struct pl_resources *res,
                      const struct task_group *tg, struct pl_resources *ask)
{
    memset(ask, 0, sizeof(*ask));
    for (size_t t = 0; t < tg->ntasks; t++) {
        const struct resources *r = &tg->tasks[t].resources;
        if (r->cores > 0) {
            ask->cores = sat_add64(ask->cores, r->cores);
            ask->cpu = sat_add64(ask->cpu, (int64_t)r->cores * res->mhz_per_core);
        } else if (r->cpu > 0) {
            ask->cpu = sat_add64(ask->cpu, r->cpu);
        }
        if (r->memory_mb > 0)
            ask->memory = sat_add64(ask->memory, r->memory_mb);
    }
    ask->disk = tg->ephemeral_disk.mb > 0 ? tg->ephemeral_disk.mb : 0;
}

static void limit_dimension(int64_t avail, int64_t ask, const char *dim,
                            struct pl_limiter *lim)
{
    if (ask <= 0)
        return;
    pl_limit_by(lim, avail > 0 ? avail / ask : 0, PLACEMENT_EXHAUSTED,
                xstrdup(dim));
}

void pl_resources_limit(const struct pl_resources *res,
                        const struct pl_resources *ask, struct pl_limiter *lim)
{
    /* BinPackIterator order: cores, then Superset's cpu, memory, disk. */
    limit_dimension(res->cores, ask->cores, "cores", lim);
    limit_dimension(res->cpu, ask->cpu, "cpu", lim);
    limit_dimension(res->memory, ask->memory, "memory", lim);
    limit_dimension(res->disk, ask->disk, "disk", lim);
}

void pl_resources_take(struct pl_resources *res,
                       const struct pl_resources *ask, int64_t placed)
{
    res->cpu -= placed * ask->cpu; /* placed * ask <= avail: no overflow */
    res->memory -= placed * ask->memory;
    res->disk -= placed * ask->disk;
    res->cores -= placed * ask->cores;
}
