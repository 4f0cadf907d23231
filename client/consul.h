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

#endif
