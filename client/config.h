/* config.h - the agent configuration: HCL files or directories of them,
 * merged in order as Nomad merges them (later files win for scalars, maps
 * are merged key by key, host volumes by name), plus -dev defaults. */
#ifndef NOMCLIENT_CONFIG_H
#define NOMCLIENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/util.h"

struct host_volume_config {
    char *name;
    char *path;
    bool read_only;
};

struct reserved_resources {
    int cpu;        /* MHz */
    int cores;
    int memory_mb;
    int disk_mb;
    char *reserved_ports; /* "22,80,8000-8100" as Nomad writes it */
};

/* The docker driver's plugin config, Nomad's keys (drivers/docker/config.go
 * configSpec) with Nomad's defaults; durations in nanoseconds. */
struct docker_plugin_config {
    char *endpoint; /* "unix:///var/run/docker.sock" */
    struct {
        char *config; /* a Docker config.json with "auths", "credHelpers" */
        char *helper; /* docker-credential-<helper> */
    } auth;
    struct {
        char *cert, *key, *ca; /* accepted, for a tcp:// endpoint */
    } tls;
    struct {
        bool image;              /* true: remove unused images */
        int64_t image_delay_ns;  /* 3m after the last task using it */
        bool container;          /* true: remove containers that ended */
        struct {
            bool enabled;              /* true */
            int64_t period_ns;         /* 5m */
            int64_t creation_grace_ns; /* 5m, at least 1m */
            bool dry_run;              /* false */
        } dangling_containers;
    } gc;
    struct {
        bool enabled;       /* false: no host paths outside the alloc dir */
        char *selinuxlabel; /* appended to every bind ("z", "Z") */
    } volumes;
    bool allow_privileged;
    struct strlist allow_caps;     /* Nomad's default set */
    struct strlist allow_runtimes; /* ["runc", "nvidia"] */
    char *nvidia_runtime;          /* "nvidia" */
    char *infra_image;             /* the pause image of bridge groups */
    int64_t infra_image_pull_timeout_ns; /* 5m */
    int64_t pull_activity_timeout_ns;    /* 2m, at least 1m */
    int pids_limit;                      /* 0: none; a task's may not exceed */
    bool disable_log_collection;
    struct strlist extra_labels;   /* globs of Nomad's label names */
    struct {
        char *type;          /* NULL with no config: json-file as Nomad */
        struct kvlist config;
    } logging;
};

struct agent_config {
    bool dev_mode;
    char *data_dir;   /* default /var/lib/nomclient, dev: a temp dir */
    char *name;       /* default: hostname */
    char *datacenter; /* "dc1" */
    char *region;     /* "global" */
    char *bind_addr;  /* "127.0.0.1" in dev; "0.0.0.0" otherwise */
    int http_port;    /* ports { http }, 4646 */
    char *log_level;  /* "INFO" */
    bool log_json;
    char *plugin_dir;
    struct {
        char *http; /* addresses { http }: NULL = bind_addr */
    } addresses;
    struct {
        char *http; /* advertise { http }: "host[:port]", NULL = derived */
    } advertise;

    struct {
        bool enabled;
        char *node_class;
        char *node_pool;
        struct kvlist meta;
        struct host_volume_config *host_volumes;
        size_t nhost_volumes;
        char *cni_path;              /* "/usr/lib/cni" (Debian's location) */
        char *cni_config_dir;        /* "/etc/cni/net.d" */
        char *bridge_network_name;   /* "nomad" */
        char *bridge_network_subnet; /* "172.26.64.0/20" */
        bool bridge_network_hairpin_mode; /* true */
        bool disable_remote_exec; /* `alloc exec` refused (403), as Nomad's */
        int min_dynamic_port;        /* 20000 */
        int max_dynamic_port;        /* 32000 */
        struct reserved_resources reserved;
        char *network_interface;
        int cpu_total_compute;       /* override, 0 = detect */
        int memory_total_mb;         /* override, 0 = detect */
        struct kvlist options;       /* client { options { ... } } */
        struct kvlist chroot_env;    /* host path -> path in the chroot */
        /* the drivers' plugin config (keys declared in client/drivers/):
         * raw_exec's enabled; exec's allow_caps, what cap_add may ask for
         * (Nomad's defaults unless set) */
        bool raw_exec_enabled;
        struct strlist exec_allow_caps;
        bool exec_allow_caps_set;
        /* exec's default_pid_mode / default_ipc_mode: "private" (the
         * default) or "host"; a task's pid_mode / ipc_mode overrides */
        char *exec_default_pid_mode, *exec_default_ipc_mode;
        /* plugin "docker" { config { ... } } (client/drivers/
         * docker_config.c declares the keys and their defaults) */
        struct docker_plugin_config docker;
        struct strlist servers;
        /* client garbage collection of terminal allocations, as Nomad's
         * gc_* keys (client/alloc/gc.c); -dev: 10m, 99, 99 as `nomad
         * agent -dev` */
        int64_t gc_interval_ns;          /* 1m */
        double gc_disk_usage_threshold;  /* 80 (percent of data_dir's fs) */
        double gc_inode_usage_threshold; /* 70 */
        int gc_max_allocs;               /* 50 */
        int gc_parallel_destroys;        /* 2 */
    } client;

    struct {
        char *address;     /* "127.0.0.1:8500"; may be "unix:///path" */
        char *token;
        bool ssl;
        bool verify_ssl;   /* default true */
        char *ca_file, *cert_file, *key_file;
        char *auth;
        char *server_service_name, *client_service_name;
        bool auto_advertise;      /* default true, as in Nomad */
        bool checks_use_advertise;
        struct strlist tags;
        bool configured; /* a consul block was present or CONSUL_HTTP_ADDR set */
        unsigned file_set; /* config.c: which fields a file set, so the
                              CONSUL_* environment does not override them */
    } consul;

    struct {
        bool enabled;
        /* cluster mode: how long resolved tokens and policies are cached
         * (0: Nomad's 30 s); unused while tokens are local */
        int64_t token_ttl_ns, policy_ttl_ns;
    } acl;

    /* tls { ... } as Nomad's; `http` serves the API over HTTPS. `rpc` and
     * verify_server_hostname are for the servers' connection (issue 8):
     * kept, not used yet. */
    struct {
        bool http, rpc;
        char *ca_file, *cert_file, *key_file;
        bool verify_https_client, verify_server_hostname;
        char *tls_min_version;   /* "tls12" unless set */
        char *tls_cipher_suites; /* Nomad's names, comma separated */
    } tls;

    /* limits { ... } as Nomad's, for the HTTP API */
    struct {
        int http_max_conns_per_client;      /* 100; 0: no limit */
        int64_t https_handshake_timeout_ns; /* 5s */
    } limits;

    struct strlist files; /* the files that were loaded, in order */
};

/* A key of a driver's `plugin "<name>" { config { ... } }` block, as the
 * driver declares it (client/drivers/driver.h) and the loader decodes it:
 * the same strictness and file:line:col errors as every other key. */
enum config_key_kind {
    CONFIG_KEY_BOOL,
    CONFIG_KEY_STRING,
    CONFIG_KEY_STRLIST,
    CONFIG_KEY_IGNORED_BOOL,   /* Nomad's, accepted and ignored here */
    CONFIG_KEY_IGNORED_STRING,
    CONFIG_KEY_INT,      /* an int */
    CONFIG_KEY_DURATION, /* a Go duration ("5m"), int64_t nanoseconds */
    CONFIG_KEY_STRMAP,   /* name = "value" pairs, a struct kvlist */
};
/* A name with dots is a key of a nested block: "gc.image" is `image` in
 * `gc { ... }`, "gc.dangling_containers.period" one level deeper; the
 * blocks exist because keys name them, and take the block or the
 * attribute form (gc = { ... }). */
struct config_key {
    const char *name;
    enum config_key_kind kind;
    size_t offset; /* into struct agent_config (not for the ignored kinds) */
    /* a string, each item of a list, or a duration as written: 0, or
     * -EINVAL with msg saying what is wrong */
    int (*check)(const char *item, char *msg, size_t msglen);
};

/* Fills cfg with defaults (dev mode picks a fresh data dir under /tmp and
 * binds 127.0.0.1). */
void config_defaults(struct agent_config *cfg, bool dev);

/* Loads and merges one file or every *.hcl / *.json file of a directory
 * (sorted by name) on top of cfg. Errors name file:line:col and the field:
 * `agent.hcl:4:3: client: unknown attribute "enabeld"`. */
int config_load_path(struct agent_config *cfg, const char *path,
                     struct nc_error *err);

/* Parses config text (used by config_load_path and tests). */
int config_load_string(struct agent_config *cfg, const char *filename,
                       const char *src, size_t len, struct nc_error *err);

/* Applies CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_HTTP_SSL,
 * CONSUL_HTTP_SSL_VERIFY, CONSUL_CACERT, CONSUL_CLIENT_CERT,
 * CONSUL_CLIENT_KEY where the files left the field unset. */
void config_apply_env(struct agent_config *cfg);

/* Final checks: port ranges, subnet syntax, host volume paths absolute. */
int config_validate(const struct agent_config *cfg, struct nc_error *err);

void config_free(struct agent_config *cfg);

#endif
