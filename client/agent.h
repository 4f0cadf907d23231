/* agent.h - the running agent: one libuv loop owning the node identity,
 * the job store, the host stats sampler and the HTTP API. */
#ifndef NOMCLIENT_AGENT_H
#define NOMCLIENT_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "client/config.h"
#include "client/acl/acl.h"
#include "client/api/api.h"
#include "client/node/node.h"
#include "client/services/services.h"
#include "client/job/job.h"
#include "client/util.h"

#ifndef NOMCLIENT_VERSION
#define NOMCLIENT_VERSION "0.1.0"
#endif

struct hoststats_collector;
struct http_server;
struct fingerprint_cni;
struct alloc_manager;
struct alloc_checks;
struct consul_sync;
struct catalog;

struct agent {
    uv_loop_t *loop;
    struct agent_config *cfg;  /* owned by the caller */
    struct node node;
    struct state_store *store;
    struct hoststats_collector *stats;
    struct http_server *http;
    struct fingerprint_cni *cni; /* CNI plugin versions, after start-up */
    struct alloc_manager *allocs;
    struct log_follow_list follows; /* `alloc logs -f` streams */
    struct alloc_checks *checks;    /* service checks of the allocations */
    /* what this node should have registered, rebuilt (coalesced on a
     * short timer) after allocation and check status changes */
    struct svc_set services;
    uv_timer_t services_timer;
    bool services_dirty;
    uv_timer_t output_timer; /* output-only changes: at most once a second */
    bool output_dirty;
    struct consul_sync *consul;     /* NULL without a consul block */
    struct catalog *catalog;        /* the built-in service catalog */
    char self_exe[4096];         /* this binary, run as `supervise` */
    uv_signal_t sig_int, sig_term, sig_hup;
    int lock_fd;               /* flock on data_dir/client/agent.lock */
    uint64_t start_mono_ns;
    int64_t start_unix_ns;
    bool stopping;
    uv_timer_t drain_timer; /* dev mode: bounds the wait for allocations */
    bool draining;
    uint64_t node_index; /* drain and eligibility updates */
    struct acl_store *acl; /* tokens and policies; NULL with acl disabled */
};

/* Starts the agent on `loop` and serves until SIGINT/SIGTERM. Returns 0 on a
 * clean stop, or a negative errno with err filled when start-up failed. */
int agent_run(struct agent_config *cfg, struct nc_error *err);

/* Resources taken by the allocations that are not terminal, but those of
 * job `except_id` (NULL for none): used by placement and shown by
 * `status -self`. */
void agent_allocated(const struct agent *a, const char *except_id,
                     int *cpu_mhz, int64_t *memory_mb, int64_t *disk_mb,
                     struct strlist *ports);

/* `node drain` of this node, as Nomad's servers apply it to a node:
 * enable starts (or replaces) a drain, the node ineligible for new
 * placements, with deadline_ns (> 0 from now, 0 none, -1 force) and
 * ignore_system; disable cancels it and, with mark_eligible, makes the
 * node eligible again, which places what the stored jobs are missing.
 * Saved in data_dir/client/node-drain.json, so a restarted agent goes on
 * draining. Returns 0. */
int agent_node_drain(struct agent *a, bool enable, int64_t deadline_ns,
                     bool ignore_system, bool mark_eligible);
/* `node eligibility`: -EINVAL with Nomad's message when asked to make a
 * draining node eligible. Returns 0 otherwise. */
int agent_node_eligibility(struct agent *a, bool eligible,
                           struct nc_error *err);

/* Marks the desired registrations stale: they are rebuilt from the
 * allocations and check results shortly (bursts coalesce). */
void agent_services_dirty(struct agent *a);
/* Called after each rebuild: hands agent->services to the registries. */
void agent_services_changed(struct agent *a);

#endif
