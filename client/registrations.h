/* registrations.h - the registration debugging view: for every service this
 * node should have registered, where it came from (job, group, allocation,
 * task, the service block), how its address and port were chosen, what was
 * sent to which registry, what the registry answered and whether it agrees,
 * and what its checks have been saying. Served at /v1/agent/registrations
 * and printed by `nomclient services [-explain NAME]`.
 *
 * The view is built from plain inputs (the desired state, the catalog,
 * Consul's descriptions, the check engine's JSON), so it can be tested
 * without an agent, Consul or sockets; the HTTP handler gathers them. Each
 * registration states its problem first, as one sentence an operator can
 * act on ("Consul rejected this registration: 400 Invalid service
 * address"), then a hint, then the details. */
#ifndef NOMCLIENT_REGISTRATIONS_H
#define NOMCLIENT_REGISTRATIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "alloc.h"
#include "catalog.h"
#include "node.h"
#include "services.h"

struct registrations_source {
    const struct svc_set *desired;
    const struct node *node;
    const struct catalog *catalog; /* the built-in catalog, or NULL */
    /* Consul, when a consul block is configured (consul_describe NULL
     * otherwise): consul_sync_describe, consul_sync_stale and
     * consul_sync_status of consul.h, in their shapes. */
    json_t *(*consul_describe)(void *arg, const char *service_id);
    void *consul_arg;
    const json_t *consul_stale;
    const json_t *consul_status;
    /* alloc_checks_agent_json: each check's live state by check ID (NULL:
     * statuses only, from the desired state) */
    const json_t *checks;
    /* the allocations, for their status, ports and the job's service
     * block (may be empty) */
    struct alloc *const *allocs;
    size_t nallocs;
    int64_t now; /* unix ns; 0 for the current time */
};

/* Which registrations to show: all (both NULL), those whose service name
 * is `service` or whose ID starts with it, or the one with ID (or unique
 * ID prefix) `id`. `detail` adds the service block, the allocation's ports
 * and each check's recent results. */
struct registrations_filter {
    const char *service;
    const char *id;
    bool detail;
};

/* The view, a new reference:
 * {"Time", "Node": {"ID", "Name", "Datacenter"},
 *  "Registries": {"Consul": status + "Problem" | null,
 *                 "Catalog": {"Enabled", "AllProviders", "Registrations",
 *                             "Index"} | null},
 *  "Summary": {"Registrations", "InSync", "Problems", "Unhealthy",
 *              "Stale"},
 *  "Registrations": [{"ID", "ServiceName", "Provider", "Registry",
 *      "Namespace", "JobID", "Group", "Task", "AllocID", "AllocStatus",
 *      "Address", "Port", "AddressMode", "AddressWhy", "Error", "Tags",
 *      "State", "RegistryState", "Problem", "Hint", "CheckProblem",
 *      "Differences", "Since", "Payload", "PayloadSent", "LastAnswer",
 *      "NextRetry", "Attempts", "CheckStatus", "Checks": [...],
 *      detail: "Source": {...}}],
 *  "Stale": [{"ID", "Name", "Address", "Port", "Reason", "Problem"}]}
 * State is one of "in sync", "missing", "different", "pending",
 * "rejected", "unreachable", "invalid" (cannot be registered at all) or
 * "unregistered" (no registry takes its provider). */
json_t *registrations_json(const struct registrations_source *src,
                           const struct registrations_filter *f);

/* `nomclient services`: registries, problems, then one line per
 * registration and the stale entries. */
void registrations_print(FILE *out, const json_t *view);
/* `nomclient services -explain NAME`: each registration walked from the
 * job file to the registry (a detail view). */
void registrations_print_explain(FILE *out, const json_t *view);

/* The API path of the view: every registration, or (service not NULL)
 * the detail view of one service, percent-encoded. Caller frees. */
char *registrations_api_path(const char *service);

#endif
