/* consul.h - keeps Consul's agent in line with what this node should have
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
#ifndef NOMCLIENT_CONSUL_H
#define NOMCLIENT_CONSUL_H

#include <jansson.h>
#include <uv.h>

#include "config.h"
#include "node.h"
#include "services.h"
#include "util.h"

struct consul_sync;

/* Starts the sync loop against the consul block of cfg (address http://,
 * https:// or unix://, token, TLS files, ssl/verify_ssl; CONSUL_HTTP_* were
 * applied by config_apply_env). Nothing is sent until the first update. */
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

#endif
