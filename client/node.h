/* node.h - what this node is: identity, attributes, resources. Filled by
 * fingerprint.c, read by placement, the HTTP API and the CLI. */
#ifndef NOMCLIENT_NODE_H
#define NOMCLIENT_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct node_driver {
    char *name;        /* "exec", "raw_exec", "docker", ... */
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
};

void node_free(struct node *n);
/* Looks up a driver by name, NULL if not fingerprinted. */
const struct node_driver *node_driver_find(const struct node *n,
                                           const char *name);

#endif
