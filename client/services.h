/* services.h - what this node should have registered: one entry per
 * service of every running allocation (group services while the
 * allocation runs, task services while their task runs), with Nomad's
 * service ID scheme, the interpolated name, tags and meta, the address and
 * port its address_mode gives, and its checks with their live status.
 *
 * The desired state is rebuilt from the allocations on every change
 * (services_rebuild); registries (Consul's sync, the built-in catalog) diff
 * it against what they hold. Each entry also carries how its address and
 * port were chosen, for the registration debugging view. */
#ifndef NOMCLIENT_SERVICES_H
#define NOMCLIENT_SERVICES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "alloc.h"
#include "node.h"
#include "util.h"

struct alloc_checks;

/* One check of a registration. */
struct svc_check {
    char *id;     /* the engine's ID, "_nomad-check-<hash>": also Consul's */
    char *name;   /* the check's name, or Nomad's default "service: ..." */
    char *type;   /* "http" or "tcp" */
    int64_t interval_ns, timeout_ns;
    char *status; /* "passing", "warning", "critical" (after thresholds) */
    char *output; /* the last probe's output, "" before the first */
    bool readiness; /* on_update = "ignore" */
};

struct svc_reg {
    /* Nomad's IDs: _nomad-task-<alloc>-<task>-<service>-<port label> for a
     * task service, _nomad-task-<alloc>-group-<group>-<service>-<port label>
     * for a group service (Consul's service ID) */
    char *id;
    char *name;     /* interpolated */
    char *provider; /* "consul" or "nomad" */
    char *namespace_, *job_id, *alloc_id, *group;
    char *task;     /* NULL for a group service */
    char *address;  /* what is registered */
    int port;
    char *address_mode; /* the mode that applied: host, alloc, driver */
    char *address_why;  /* how address and port were chosen, one line */
    char *error;        /* why it cannot be registered (e.g. address_mode
                           "alloc" without an allocation network), or NULL */
    struct strlist tags; /* interpolated; canary_tags while a canary */
    struct kvlist meta;  /* interpolated */
    bool enable_tag_override;
    struct svc_check *checks;
    size_t nchecks;
    int64_t shutdown_delay_ns; /* of the task (group: the group's) */
};

/* The whole desired state, sorted by ID. */
struct svc_set {
    struct svc_reg *regs;
    size_t n, cap;
};

/* Rebuilds `set` from every allocation given: running allocations only,
 * group services while any task runs, task services while their task
 * runs. Check status comes from `checks` (may be NULL: all critical). */
void services_rebuild(struct svc_set *set, struct alloc *const *allocs,
                      size_t nallocs, const struct node *node,
                      const struct alloc_checks *checks);

const struct svc_reg *services_find(const struct svc_set *set, const char *id);

/* One registration as Consul's agent service registration body
 * (/v1/agent/service/register: ID, Name, Tags, Address, Port, Meta,
 * EnableTagOverride, Checks as TTL checks with CheckID, Name, TTL a little
 * over the interval, Status, Notes). New reference. */
json_t *services_consul_payload(const struct svc_reg *r);

/* One registration in Nomad's ServiceRegistration shape (/v1/service/:name:
 * ID, ServiceName, Namespace, NodeID, Datacenter, JobID, AllocID, Tags,
 * Address, Port, CreateIndex, ModifyIndex). New reference. */
json_t *services_nomad_json(const struct svc_reg *r, const struct node *node);

/* The TTL registered for a check of this interval (ns): the interval plus
 * 10 s, so a dead agent's checks turn critical soon after it stops
 * updating them. */
int64_t services_ttl_ns(int64_t interval_ns);

void services_clear(struct svc_set *set);

#endif
