/* metrics.h - the agent's metrics, computed when asked (no sampling loop of
 * its own): host and per-task resource usage under Nomad's names and
 * labels, allocation counts, and this agent's own counters (checks,
 * registrations, Consul sync). Served at /v1/metrics in Nomad's JSON shape
 * and, with ?format=prometheus, as Prometheus text exposition 0.0.4.
 *
 * Names are kept dotted, as go-metrics keys ("nomad.client.host.memory.
 * total"); Prometheus gets them with every character outside
 * [a-zA-Z0-9_:] turned into '_', and counters get a "_total" suffix.
 * Nomad's labels: per task job, task_group, alloc_id, task, namespace and
 * host; for the node node_id, datacenter, node_class ("none" when unset),
 * node_pool, node_status, node_scheduling_eligibility and host. */
#ifndef NOMCLIENT_METRICS_H
#define NOMCLIENT_METRICS_H

#include <jansson.h>
#include <stdint.h>

#include "alloc.h"
#include "hoststats.h"
#include "node.h"
#include "util.h"

struct metrics_source {
    const struct node *node;
    const char *hostname;          /* the "host" label; NULL: gethostname */
    const struct host_stats *host; /* NULL before the first sample */
    struct alloc *const *allocs;
    size_t nallocs;
    /* one allocation's usage in alloc_stats_json's shape (new reference,
     * NULL to skip it); NULL: no per-task metrics */
    json_t *(*alloc_stats)(void *arg, struct alloc *a);
    void *alloc_stats_arg;
    const json_t *checks;        /* alloc_checks_agent_json, or NULL */
    const json_t *consul_status; /* consul_sync_status; NULL: no Consul */
    const json_t *registrations; /* registrations_json's view, or NULL */
    int64_t now;                 /* unix ns; 0 for the current time */
};

struct metrics;

/* Gathers every metric the source has. Caller frees with metrics_free. */
struct metrics *metrics_collect(const struct metrics_source *src);
void metrics_free(struct metrics *m);

/* Prometheus text format 0.0.4: one HELP and TYPE per family, each series
 * once, labels sorted by name. Caller frees. */
char *metrics_prometheus(const struct metrics *m);
/* Nomad's /v1/metrics: {"Timestamp", "Gauges": [{"Name", "Value",
 * "Labels"}], "Points": [], "Counters": [{"Name", "Count", "Rate", "Sum",
 * "Min", "Max", "Mean", "Stddev", "Labels"}], "Samples": []}. Counters
 * are totals since the agent started (Count and Sum hold the total), not
 * go-metrics' per-interval aggregates. New reference. */
json_t *metrics_json(const struct metrics *m);

/* The builder underneath, for tests and for callers adding their own.
 * `labels` are copied (NULL for none); a series whose labels repeat one
 * already added replaces its value, so no series appears twice. A name
 * used with both types keeps its first. */
struct metrics *metrics_new(int64_t now);
void metrics_gauge(struct metrics *m, const char *name, const char *help,
                   const struct kvlist *labels, double value);
void metrics_counter(struct metrics *m, const char *name, const char *help,
                     const struct kvlist *labels, double value);

#endif
