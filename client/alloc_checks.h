/* alloc_checks.h - the HTTP and TCP checks of the services of this node's
 * allocations, run by the check engine (checks/checks.h).
 *
 * On every change of an allocation, its desired checks are rebuilt: group
 * service checks while the allocation runs, task service checks while
 * their task runs, none once it stops. Each check's target follows Nomad's
 * address_mode: "host" (default) probes the node's address on the mapped
 * host port, "alloc" the allocation's own IP on the port inside its
 * namespace. check_restart asks the allocation runner to restart the
 * task, which then goes through its restart policy, as in Nomad. */
#ifndef NOMCLIENT_ALLOC_CHECKS_H
#define NOMCLIENT_ALLOC_CHECKS_H

#include <jansson.h>
#include <uv.h>

#include "alloc.h"
#include "node.h"

struct alloc_checks;

/* Called when check_restart wants `task` of `alloc_id` restarted, and on
 * every status change (for the service registry). */
struct alloc_checks_hooks {
    void (*restart_task)(void *arg, const char *alloc_id, const char *task,
                         const char *why);
    void (*status_changed)(void *arg, const char *alloc_id);
    /* a probe's output differs from the previous one (status unchanged) */
    void (*output_changed)(void *arg, const char *alloc_id);
    void *arg;
};

int alloc_checks_open(struct alloc_checks **out, uv_loop_t *loop,
                      const struct node *node,
                      const struct alloc_checks_hooks *hooks);
/* Stops every check; frees itself once the engine's handles are closed. */
void alloc_checks_close(struct alloc_checks *ac);

/* Brings the running checks of `a` to what its state asks for. */
void alloc_checks_sync(struct alloc_checks *ac, const struct alloc *a);

/* Nomad's /v1/client/allocation/:id/checks shape: an object keyed by check
 * ID of {ID, Check, Group, Task, Service, Mode, Status, StatusCode, Output,
 * Timestamp}. New reference. */
json_t *alloc_checks_alloc_json(const struct alloc_checks *ac,
                                const char *alloc_id);
/* Every check with the engine's live state (History, Counters, Latency,
 * target) plus its allocation, service and task: /v1/agent/checks. */
json_t *alloc_checks_agent_json(const struct alloc_checks *ac);

/* The checks running for one service of an allocation (task NULL for a
 * group service): fn gets each check's ID, name, type, interval,
 * timeout, status after thresholds, last output, and whether it is a
 * readiness check (on_update = "ignore"). */
typedef void (*alloc_checks_each_fn)(void *arg, const char *id,
                                     const char *name, const char *type,
                                     int64_t interval_ns, int64_t timeout_ns,
                                     const char *status, const char *output,
                                     bool readiness);
void alloc_checks_each(const struct alloc_checks *ac, const char *alloc_id,
                       const char *task, const char *service,
                       alloc_checks_each_fn fn, void *arg);

/* Status of one service's checks for the registry: "passing" when all pass,
 * else the worst; NULL when the service has none running. */
const char *alloc_checks_service_status(const struct alloc_checks *ac,
                                        const char *alloc_id,
                                        const char *service);

#endif
