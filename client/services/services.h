/* services/services.h - services of running allocations: the
 * desired registrations (Nomad's IDs, addresses and ports with the reason
 * they were chosen), their health checks on the checks/ engine, and the
 * registries they go to: the built-in catalog (no Consul, or provider
 * "nomad") and the Consul sync loop; plus the registrations debugging view
 * that says why a service is or is not registered. */
#ifndef NOMCLIENT_SERVICES_SERVICES_H
#define NOMCLIENT_SERVICES_SERVICES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "client/alloc/alloc.h"
#include "client/node/node.h"
#include "client/util.h"
#include "client/config.h"

/* what this node should have registered: one entry per
 * service of every running allocation (group services while the
 * allocation runs, task services while their task runs), with Nomad's
 * service ID scheme, the interpolated name, tags and meta, the address and
 * port its address_mode gives, and its checks with their live status.
 *
 * The desired state is rebuilt from the allocations on every change
 * (services_rebuild); registries (Consul's sync, the built-in catalog) diff
 * it against what they hold. Each entry also carries how its address and
 * port were chosen, for the registration debugging view. */

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

/* the agent's built-in service catalog: services with
 * provider = "nomad", and every service when no consul block is configured
 * (dev mode), served in Nomad's shape at /v1/services and
 * /v1/service/:name, with their check status.
 *
 * Each registration keeps its CreateIndex and ModifyIndex for as long as
 * nothing Nomad's ServiceRegistration carries changes (check status is not
 * part of it), so clients comparing indexes see only real changes. Check
 * health is added as two fields Nomad's API clients ignore: "Health" (the
 * worst check status, "passing" without checks) and "Checks". */

struct catalog;

/* all_providers: take every service (no Consul), else provider "nomad"
 * only. */
struct catalog *catalog_new(const struct node *node, bool all_providers);
void catalog_free(struct catalog *c);

/* The desired state changed: the catalog takes the entries it serves. */
void catalog_update(struct catalog *c, const struct svc_set *desired);

/* Whether the catalog serves this registration (provider rules above). */
bool catalog_serves(const struct catalog *c, const struct svc_reg *r);

/* /v1/services: [{"Namespace", "Services": [{"ServiceName", "Tags"}]}] */
json_t *catalog_list_json(const struct catalog *c);
/* /v1/service/:name: [ServiceRegistration, ...] (empty array if none) */
json_t *catalog_service_json(const struct catalog *c, const char *name);
/* For the debugging view: {"State": "in sync", "Since": time} for a
 * registration the catalog holds. New reference, NULL if not held. */
json_t *catalog_describe(const struct catalog *c, const char *service_id);

/* ---- extensions ------------------------------------------------------ */

/* What a /v1/services or /v1/service/:name request may narrow. */
struct catalog_query {
    const char *namespace_; /* NULL: "default", as Nomad; "*": every one */
    const char *choose;     /* Nomad's "<n>|<key>": n registrations chosen
                               by rendezvous hashing on key; NULL: all */
    bool passing;           /* only those whose checks all pass */
};

/* catalog_list_json of one namespace (q->namespace_ rules). New ref. */
json_t *catalog_list_query_json(const struct catalog *c,
                                const struct catalog_query *q);
/* catalog_service_json narrowed by q. Returns 0 with *out a new array, or
 * -EINVAL with err holding Nomad's message for a malformed choose. */
int catalog_service_query(const struct catalog *c, const char *name,
                          const struct catalog_query *q, json_t **out,
                          struct nc_error *err);

/* The highest index the catalog has given (X-Nomad-Index): raised by every
 * registration added, changed or removed. */
uint64_t catalog_index(const struct catalog *c);
/* Registrations served (rejected ones not counted). */
size_t catalog_count(const struct catalog *c);
bool catalog_all_providers(const struct catalog *c);

/* the HTTP and TCP checks of the services of this node's
 * allocations, run by the check engine (checks/checks.h).
 *
 * On every change of an allocation, its desired checks are rebuilt: group
 * service checks while the allocation runs, task service checks while
 * their task runs, none once it stops. Each check's target follows Nomad's
 * address_mode: "host" (default) probes the node's address on the mapped
 * host port, "alloc" the allocation's own IP on the port inside its
 * namespace. check_restart asks the allocation runner to restart the
 * task, which then goes through its restart policy, as in Nomad. */

struct alloc_checks;

/* How a command started by exec_task ended (as driver_exec_done_fn). */
typedef void (*alloc_checks_exec_done_fn)(void *arg, int exit_code, int signal,
                                          bool timed_out, const char *output,
                                          size_t output_len, const char *error);

/* Called when check_restart wants `task` of `alloc_id` restarted, and on
 * every status change (for the service registry). */
struct alloc_checks_hooks {
    void (*restart_task)(void *arg, const char *alloc_id, const char *task,
                         const char *why);
    void (*status_changed)(void *arg, const char *alloc_id);
    /* a probe's output differs from the previous one (status unchanged) */
    void (*output_changed)(void *arg, const char *alloc_id);
    /* Script checks: starts argv inside `task` of `alloc_id` as its
     * driver's exec does (client/drivers/driver.h: same callback, same
     * contract); *run is for exec_cancel. NULL: script checks end
     * critical, saying they cannot run. */
    int (*exec_task)(void *arg, const char *alloc_id, const char *task,
                     char *const argv[], int64_t timeout_ns,
                     alloc_checks_exec_done_fn done, void *done_arg,
                     void **run, struct nc_error *err);
    void (*exec_cancel)(void *arg, void *run);
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

/* keeps Consul's agent in line with what this node should have
 * registered (services.h): registers what is missing or different,
 * deregisters services with Nomad's "_nomad-" prefix that no allocation of
 * this node owns, and pushes each check's status to its TTL check, all from
 * one sync loop on the agent's libuv loop (libcurl, loaded on first use).
 *
 * A reconcile pass diffs the desired state against Consul's
 * /v1/agent/services and /v1/agent/checks on every change and every 30 s;
 * failures back off exponentially (capped, with jitter) and nothing is lost
 * while Consul is down. Check status goes out on a change and as a
 * keep-alive well inside the TTL, never on every probe. Every registration
 * keeps the last payload sent, Consul's last answer or error and the next
 * retry, for the registration debugging view. */

struct consul_sync;

/* Starts the sync loop against the consul block of cfg (address http://,
 * https:// or unix://, token, TLS files, ssl/verify_ssl; CONSUL_HTTP_* were
 * applied by config_apply_env). Nothing is sent until the first update,
 * or 10 s after opening without one (an agent with no allocation left
 * still removes the stale services of its previous run). */
int consul_sync_open(struct consul_sync **out, uv_loop_t *loop,
                     const struct agent_config *cfg, const struct node *node,
                     struct nc_error *err);
/* Stops the loop; in-flight requests are abandoned; frees itself once its
 * handles are closed. Registrations stay in Consul (a restarted agent
 * reconciles them). */
void consul_sync_close(struct consul_sync *s);

/* The desired state changed (services or check status): the entries with
 * provider "consul" are copied and a reconcile pass is scheduled. */
void consul_sync_update(struct consul_sync *s, const struct svc_set *desired);

/* Deregisters the services of alloc_id now (they are already gone from the
 * last update) and calls done once Consul answered every request, success
 * or not, or at once when it had none. */
void consul_sync_flush_alloc(struct consul_sync *s, const char *alloc_id,
                             void (*done)(void *arg, const char *alloc_id),
                             void *arg);

/* For the debugging view, all new references:
 * describe: one desired registration as the registry sees it:
 *   {"State": "in sync"|"missing"|"different"|"pending"|"rejected"|
 *             "unreachable", "Differences": ["Port: Consul has 8080, this
 *    node wants 25123", ...], "LastPayload": {...}, "LastAnswer":
 *   {"Time", "Method", "Path", "Status", "Body", "Error"}, "NextRetry",
 *   "Attempts"}
 * stale: services with our prefix Consul holds that nothing here wants:
 *   [{"ID", "Name", "Address", "Port", "Reason"}]
 * status: {"Address", "Reachable", "LastSync", "LastSyncDuration",
 *   "LastError", "NextRetry", "Backoff", "Counters": {"Registrations",
 *   "Deregistrations", "CheckUpdates", "Errors", "Passes"}} */
json_t *consul_sync_describe(const struct consul_sync *s,
                             const char *service_id);
json_t *consul_sync_stale(const struct consul_sync *s);
json_t *consul_sync_status(const struct consul_sync *s);
/* Notes on the above, as built. describe returns NULL for an ID that is
 * not a desired Consul registration; its object also has "ServiceID",
 * "Name", "Error" (why it cannot be sent, as services.c said, or the
 * loop's error while Consul cannot be reached), "Repaired" (the
 * differences the last registration fixed) and "Checks": [{"CheckID",
 * "Name", "Status" (this node's), "ConsulStatus" (null: unknown), "TTL",
 * "LastUpdate" (the last TTL update's answer, shaped as LastAnswer),
 * "NextKeepAlive", "Updates"}]. Stale entries may carry "LastAnswer" (a failed
 * deregistration). status's "LastError" is the failure of the last pass,
 * null again once a pass succeeds ("LastErrorTime" keeps when it was);
 * status also has "LastPass": {"DurationNs", "DiffNs", "ReadBytes",
 * "Writes", "Services", "Checks"}, "InFlight", "Queued", "Stale" and
 * Counters "Requests" and "Writes". Times are RFC 3339 (nc_format_time) or
 * null; durations Go-style strings ("1.5s"). */

/* ---- tuning, for tests and the bench ---- */

struct consul_sync_tuning {
    uint64_t periodic_ns;     /* full pass every 30 s */
    uint64_t coalesce_ns;     /* updates within 20 ms make one pass */
    uint64_t backoff_base_ns; /* 1 s, doubled per failed pass ... */
    uint64_t backoff_cap_ns;  /* ... up to 60 s, then jittered */
    unsigned max_in_flight;   /* requests at once (8) */
    long request_timeout_ms;  /* per request (10000) */
    /* called after every pass, ok = Consul answered it all */
    void (*on_pass)(void *arg, bool ok);
    void *arg;
};
/* Fills t with what s uses now. */
void consul_sync_get_tuning(const struct consul_sync *s,
                            struct consul_sync_tuning *t);
void consul_sync_set_tuning(struct consul_sync *s,
                            const struct consul_sync_tuning *t);
/* Starts a pass now unless one runs (then one follows it). */
void consul_sync_reconcile_now(struct consul_sync *s);

/* ---- the pure parts, exposed for tests, the fuzz target and the bench ---- */

/* The consul block's address as curl wants it. */
struct consul_addr {
    char *base_url;    /* "http://127.0.0.1:8500", "https://[::1]:8501";
                          "http://localhost" for a unix socket */
    char *unix_socket; /* the socket path of unix:///path, else NULL */
    bool https;
};
/* Accepts host:port, host (port 8500), http://host:port, https://host:port
 * (https whatever ssl says), unix:///absolute/path, [v6]:port; `ssl` turns
 * a scheme-less address into https. Returns 0 or -EINVAL with err set. */
int consul_addr_parse(const char *address, bool ssl, struct consul_addr *out,
                      struct nc_error *err);
void consul_addr_free(struct consul_addr *a);

/* The wait before retry `failures` (1 = after the first failure):
 * base * 2^(failures-1) capped at cap, then jittered into [d/2, d] by
 * random01 in [0, 1). 0 failures is 0. */
uint64_t consul_backoff_ns(unsigned failures, uint64_t base_ns, uint64_t cap_ns,
                           double random01);

/* When a TTL check last reset at last_write_ns (monotonic) wants its
 * keep-alive: half its TTL later, well before it expires. 0 (unknown,
 * e.g. after an agent restart) is due at once. */
uint64_t consul_keepalive_due_ns(uint64_t last_write_ns, int64_t ttl_ns);

/* What Consul's agent holds, from GET /v1/agent/services and
 * /v1/agent/checks: a copy of both answers scanned once, the fields the
 * diff needs kept as pointers into it. Entries of the wrong shape are kept
 * and reported as differences, never trusted. */
struct consul_view;
/* Parses both answers (either may be NULL: then empty). Returns 0 with
 * *out set (free with consul_view_free), or -EINVAL with err naming the
 * endpoint and what is wrong. */
int consul_view_parse(struct consul_view **out, const char *services,
                      size_t services_len, const char *checks,
                      size_t checks_len, struct nc_error *err);
void consul_view_free(struct consul_view *v);
/* Services it holds (duplicates counted once); *checks (may be NULL) gets
 * the number of check entries. */
size_t consul_view_count(const struct consul_view *v, size_t *checks);
/* Whether it holds service id, and its Service, Address, Port ("" and 0
 * when of the wrong type). Any out-pointer may be NULL. */
bool consul_view_service(const struct consul_view *v, const char *id,
                         const char **name, const char **address,
                         long long *port);
/* Drops a service from the view (it was deregistered). */
void consul_view_forget(struct consul_view *v, const char *id);
/* IDs of the services starting with prefix, appended to out if not there. */
void consul_view_with_prefix(const struct consul_view *v, const char *prefix,
                             struct strlist *out);

enum consul_diff_state { CONSUL_IN_SYNC, CONSUL_MISSING, CONSUL_DIFFERENT };
/* Compares one payload (services_consul_payload) with what v holds:
 * Service, Tags (as a set), Address, Port, Meta, EnableTagOverride, and
 * each check present as a TTL check of this service with this TTL (when
 * Consul reports one), and no other check on the service. Appends one
 * line per difference to diffs (may be NULL). */
enum consul_diff_state consul_diff(const json_t *payload,
                                   const struct consul_view *v,
                                   struct strlist *diffs);
/* A check's Status in v (NULL if absent or not a string); *output gets its
 * Output ("" if none) when output is not NULL. */
const char *consul_view_check_status(const struct consul_view *v,
                                     const char *check_id, const char **output);
/* IDs in v with Nomad's task prefix "_nomad-task-" for which wanted says
 * false, appended to out in Consul's order. */
void consul_view_stale(const struct consul_view *v,
                       bool (*wanted)(void *arg, const char *id), void *arg,
                       struct strlist *out);
bool consul_is_nomad_task_id(const char *id);

/* the registration debugging view: for every service this
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

struct registrations_source {
    const struct svc_set *desired;
    const struct node *node;
    const struct catalog *catalog; /* the built-in catalog, or NULL */
    /* Consul, when a consul block is configured (consul_describe NULL
     * otherwise): consul_sync_describe, consul_sync_stale and
     * consul_sync_status (above), in their shapes. */
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
