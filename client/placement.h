/* placement.h - can this node run a job, and how many of each group's
 * allocations fit? The single-node form of Nomad's scheduler feasibility
 * and bin packing (scheduler/feasible/feasible.go, rank.go): constraints,
 * datacenters, node pool, drivers, host volumes, distinct_hosts,
 * distinct_property, ports, cores, cpu, memory and disk. When something
 * does not fit, the result carries Nomad's reasons and a message laid out
 * like `nomad job run`'s evaluation output. */
#ifndef NOMCLIENT_PLACEMENT_H
#define NOMCLIENT_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobspec.h"
#include "node.h"
#include "util.h"

/* What allocations already on this node (other jobs) take. All zero means
 * an empty node. */
struct placement_usage {
    int cpu_mhz;
    int64_t memory_mb;
    int64_t disk_mb;
    struct strlist used_ports; /* host ports: "5432", or ranges "8000-8100";
                                  entries that are not ports are ignored */
    int cores;                 /* whole cores reserved with `cores` */
};

/* Why a group is not (fully) placed. */
enum placement_failure {
    PLACEMENT_FIT,       /* every allocation placed */
    PLACEMENT_FILTERED,  /* the node is excluded: constraint, driver, volume,
                            datacenter, node pool, distinct_* */
    PLACEMENT_EXHAUSTED, /* the node is eligible but out of a resource */
};

struct placement_group_result {
    char *group;
    int desired; /* count, or 1 per node for system and sysbatch jobs */
    int placed;  /* how many of them fit, in order */
    enum placement_failure failure;
    /* Nomad's metric lines, without the "* " bullet, e.g.
     * `Constraint "${attr.cpu.arch} = arm64": 1 nodes excluded by filter`,
     * `Dimension "memory" exhausted on 1 nodes`. Empty when all placed. */
    struct strlist reasons;
};

struct placement_result {
    bool ok;                               /* every group placed fully */
    struct placement_group_result *groups; /* one per job group, job order */
    size_t ngroups;
    /* NULL when ok; otherwise the text shown to users, lines joined by
     * "\n" (no trailing newline), first line "Placement failed: ...":
     *   Placement failed: no nodes satisfied constraints
     *       Task Group "workers" (failed to place 1 allocation):
     *         * Constraint "${meta.storage_type} = ssd": 1 nodes excluded by
     * filter
     */
    char *message;
};

/* Places `job` on `node` after `used` (NULL = nothing placed yet), groups in
 * job order, each taking what earlier groups left. Fills `out` (free it with
 * placement_result_free) and returns 0; out->ok tells whether everything
 * fits. Returns -EINVAL, with out->ok false and out->message saying why,
 * when the node's own reserved_ports setting cannot be parsed. */
int placement_check(const struct job *job, const struct node *node,
                    const struct placement_usage *used,
                    struct placement_result *out);

/* Frees what `r` owns and zeroes it; safe on a zeroed result and NULL. */
void placement_result_free(struct placement_result *r);

/* Resolves a constraint target as Nomad does: a literal (no leading "${")
 * is itself; ${attr.X}, ${meta.X}, ${node.unique.id}, ${node.unique.name},
 * ${node.datacenter}, ${node.region}, ${node.class} and ${node.pool} are
 * the node's values. Returns false, with *out NULL, when the target names a
 * missing attribute or meta key or is not a known form: that is what
 * is_set / is_not_set test. Otherwise *out is a copy the caller frees. */
bool placement_resolve(const struct node *node, const char *target, char **out);

/* Whether `node` satisfies one constraint, with Nomad's semantics for every
 * operator (=, ==, is, !=, not, <, <=, >, >=, regexp, version, semver,
 * set_contains, set_contains_all, set_contains_any, is_set, is_not_set).
 * distinct_hosts and distinct_property are not node properties and always
 * pass here (placement_check applies them). When the constraint itself is
 * malformed (bad regexp, bad version constraint, unknown operator) it
 * fails and, if `why` is not NULL, *why receives an allocated explanation
 * (e.g. `invalid regexp "(": parenthesis not balanced`); otherwise *why
 * is set to NULL. */
bool placement_check_constraint(const struct node *node,
                                const struct constraint *c, char **why);

#endif
