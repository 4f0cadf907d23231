/* alloc_stats.h - resource usage of an allocation's tasks, in Nomad's
 * AllocResourceUsage shape (/v1/client/allocation/:id/stats).
 *
 * exec tasks are measured through their cgroup (cpuacct/cpu.stat and the
 * memory controller), raw_exec tasks through the processes of their
 * supervisor's session, as Nomad measures raw_exec by process tree. CPU
 * percentages are the usage between two reads at least 100 ms apart, kept
 * per task; nothing is sampled in the background. */
#ifndef NOMCLIENT_ALLOC_STATS_H
#define NOMCLIENT_ALLOC_STATS_H

#include <jansson.h>

#include "alloc.h"
#include "node.h"

/* Returns {"ResourceUsage", "Tasks": {name: {"ResourceUsage", "Timestamp",
 * "Pids"}}, "Timestamp"}; updates the tasks' CPU samples. New reference. */
json_t *alloc_stats_json(struct alloc *a, const struct node *n);

#endif
