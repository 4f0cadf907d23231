/* node/node.h - what this node is and has: identity, attributes,
 * drivers and resources (fingerprinted at start), and host statistics
 * (CPU, memory, disk), sampled for `status -self` and /v1/metrics. */
#ifndef NOMCLIENT_NODE_NODE_H
#define NOMCLIENT_NODE_NODE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/utsname.h>
#include <uv.h>

#include "client/util.h"
#include "client/config.h"

/* what this node is: identity, attributes, resources. Filled by
 * fingerprint.c, read by placement, the HTTP API and the CLI. */

struct node_driver {
    char *name;        /* the driver's name, as jobs give it */
    bool detected;
    bool healthy;
    char *health_description; /* "Healthy", "disabled", ... */
};

struct node_host_volume {
    char *name;
    char *path;
    bool read_only;
};

struct node {
    char *id;        /* persistent UUID, data_dir/client/client-id */
    char *secret_id; /* persistent, data_dir/client/secret-id */
    char *name;
    char *node_class;
    char *node_pool;
    char *datacenter;
    char *region;
    char *http_addr; /* "127.0.0.1:4646" */
    char *status;    /* "ready", "initializing", "down" */
    bool eligible;   /* scheduling eligibility */
    /* `node drain` (Nomad's DrainStrategy, non-NULL while draining) */
    bool drain;
    struct {
        int64_t deadline_ns;    /* DrainSpec.Deadline; -1 force, 0 none */
        bool ignore_system;     /* DrainSpec.IgnoreSystemJobs */
        int64_t force_deadline; /* unix ns; 0 for none */
        int64_t started_at;     /* unix ns */
    } drain_strategy;
    struct kvlist attributes; /* Nomad attribute keys ("cpu.arch", ...) */
    struct kvlist meta;
    struct node_driver *drivers;
    size_t ndrivers;
    struct node_host_volume *host_volumes;
    size_t nhost_volumes;
    struct {
        int cpu_mhz;      /* cpu.totalcompute */
        int cores;
        int64_t memory_mb;
        int64_t disk_mb;  /* free space of data_dir */
    } resources;
    struct {
        int cpu_mhz, cores;
        int64_t memory_mb, disk_mb;
        char *reserved_ports;
    } reserved;
    int64_t start_time_unix_ns;
    /* node events after "Node registered" (a driver's health changed), in
     * Nomad's NodeEvent shape, the newest last; NULL: none */
    json_t *events;
};

void node_free(struct node *n);
/* Nomad's Node.Ready for placement: eligible and not draining (status is
 * always ready while the agent serves). */
static inline bool node_ready(const struct node *n)
{
    return n->eligible && !n->drain;
}
/* Adds a driver's fingerprint (and driver.<name> = 1 when detected), for
 * the drivers (client/drivers/). */
void node_add_driver(struct node *n, const char *name, bool detected,
                     bool healthy, const char *desc);
/* Appends a node event {Message, Subsystem, Details: {detail_key:
 * detail_value}, Timestamp} (detail_key NULL: no details), keeping the
 * last NODE_MAX_EVENTS - 1 beside "Node registered", as Nomad keeps 10. */
#define NODE_MAX_EVENTS 10
void node_add_event(struct node *n, const char *subsystem, const char *message,
                    const char *detail_key, const char *detail_value);
/* Looks up a driver by name, NULL if not fingerprinted. */
const struct node_driver *node_driver_find(const struct node *n,
                                           const char *name);

/* what this node is, with Nomad's attribute keys, read
 * from /proc, /sys, uname, statvfs and os-release. Fast by design (small
 * reads, no processes): the agent serves its API right after. CNI plugin
 * versions need the plugins run, so they are filled in afterwards, on the
 * loop, by fingerprint_cni_start. */

/* Roots for tests; NULL members mean the real /proc, /sys, /etc, uname. */
struct fingerprint_root {
    const char *proc, *sys, *etc;
    const struct utsname *uts;
};

/* Fills *n (zeroed first) from cfg and the host. */
int fingerprint_node(struct node *n, const struct agent_config *cfg,
                     const struct fingerprint_root *root, struct nc_error *err);

/* Reads (creating on first start) the persistent node id and secret id in
 * data_dir/client/client-id and secret-id. A corrupt file is an error naming
 * it, never a silent new identity. Caller frees both. */
int fingerprint_node_id(const char *data_dir, char **id, char **secret_id,
                        struct nc_error *err);

/* Parses the version out of what a CNI plugin prints when run without
 * CNI_COMMAND ("CNI bridge plugin v1.1.1"). 0, or -ENOENT. */
int fingerprint_cni_parse_version(const char *output, char *out, size_t outlen);

/* Runs each plugin of cni_path once, in the background on `loop`, and sets
 * plugins.cni.version.<name> in n->attributes as answers arrive. */
struct fingerprint_cni;
int fingerprint_cni_start(struct fingerprint_cni **out, struct node *n,
                          uv_loop_t *loop, const char *cni_path);
/* Kills plugins still running and closes handles; frees itself once the
 * loop ran the close callbacks. NULL-safe. */
void fingerprint_cni_stop(struct fingerprint_cni *c);

/* host CPU, memory, disk, load and uptime, sampled on a
 * timer. The /proc files stay open and are re-read with pread into fixed
 * buffers: a sample allocates nothing. JSON follows Nomad's HostStats. */

#define HOSTSTATS_MAX_CPUS 256

struct host_cpu_stats {
    double user, system, idle, total; /* percent over the last interval */
};

struct host_stats {
    int ncpus;
    struct host_cpu_stats cpu[HOSTSTATS_MAX_CPUS];
    double cpu_ticks_consumed; /* MHz-seconds used, as Nomad */
    uint64_t mem_total, mem_available, mem_used, mem_free; /* bytes */
    char device[128], mountpoint[256];
    uint64_t disk_size, disk_used, disk_available;
    double disk_used_percent, inodes_used_percent;
    uint64_t uptime; /* seconds */
    double load1, load5, load15;
    int64_t timestamp; /* unix ns */
};

struct hoststats_collector;

/* proc_root NULL means /proc; data_dir is the filesystem reported. */
int hoststats_collector_init(struct hoststats_collector **out,
                             const char *proc_root, const char *data_dir);
int hoststats_collect(struct hoststats_collector *c);
/* NULL before the first sample. */
const struct host_stats *hoststats_latest(const struct hoststats_collector *c);
json_t *hoststats_to_json(const struct host_stats *s);
int hoststats_start(struct hoststats_collector *c, uv_loop_t *loop,
                    uint64_t interval_ms);
/* Closes the timer; free the collector after the loop ran its callback. */
void hoststats_stop(struct hoststats_collector *c);
void hoststats_collector_free(struct hoststats_collector *c);

/* Parsers, exposed for tests. */
int hoststats_parse_cpu(const char *stat, uint64_t (*ticks)[8], int max);
int hoststats_parse_meminfo(const char *meminfo, struct host_stats *s);

#endif
