/* netns - per-allocation network namespaces set up with the CNI plugins,
 * the way Nomad's bridge networking does it.
 *
 * Bridge mode runs Nomad's chain (loopback; bridge with host-local IPAM,
 * ipMasq, hairpin; firewall with the NOMAD-ADMIN chain; portmap) on the
 * `nomad` bridge and 172.26.64.0/20 unless configured otherwise;
 * `cni/<name>` runs the network of that name from cni_config_dir. The CNI
 * container id is the allocation id, the interface is eth0 and the
 * namespace is bind-mounted at /run/netns/<name> (the alloc id by default).
 *
 * The blocking work (namespace creation, plugin runs, iptables) never
 * happens in the caller's process: netns_add / netns_del hand a JSON
 * request to a long-lived `nomclient netns-helper -serve` (one per loop,
 * started on first use or by netns_prestart, in its own session) and read
 * the JSON outcome back; the server runs each request on a thread. For
 * each request the helper:
 *   - holds the allocation's lock for its whole run (an OFD lock on a byte
 *     of <state_dir>/.locks chosen by a hash of the id), so two requests
 *     for one allocation queue up instead of racing;
 *   - writes <state_dir>/<alloc>.json atomically before it creates anything
 *     (intent: conflist, port mappings, netns path) and again after every
 *     plugin with its result, so a DEL after a kill -9 at any point finds
 *     what exists and the best prevResult;
 *   - rolls a failed ADD back completely (DEL of every plugin that ran, the
 *     namespace removed) and reports the failing plugin's CNI error;
 *   - with a holder pid (netns_setup.holder_pid), mounts that process's
 *     namespace instead of a new one and runs the same chain in it; a
 *     recorded complete setup is reused only if it is that namespace,
 *     else undone first;
 *   - runs DEL in reverse order with the ADD result as prevResult and the
 *     ADD's port mappings, treats what is already gone as done, sweeps the
 *     iptables rules the plugins could not find (namespace already gone, no
 *     prevResult), and removes the state file only after a complete DEL.
 *
 * Conventions: 0 or -errno returns, messages in struct nc_error, strings in
 * config structs borrowed for the duration of the call. Single-threaded:
 * call everything from the loop's thread. */
#ifndef NOMCLIENT_NETNS_H
#define NOMCLIENT_NETNS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "client/util.h"

#define NETNS_DEFAULT_BRIDGE "nomad"
#define NETNS_DEFAULT_SUBNET "172.26.64.0/20"
#define NETNS_DEFAULT_NETWORK "nomad"
#define NETNS_ADMIN_CHAIN "NOMAD-ADMIN"
#define NETNS_IFNAME "eth0"
#define NETNS_RUN_DIR "/run/netns"
/* The mode whose namespace has only lo, up: no chain, no address. */
#define NETNS_MODE_NONE "none"

/* What the agent configures. Strings are borrowed; NULL or "" takes the
 * default named beside the field. */
struct netns_config {
    const char *cni_path;       /* colon-separated plugin dirs: /usr/lib/cni */
    const char *cni_config_dir; /* networks for cni/<name>: /etc/cni/net.d */
    const char *bridge_name;    /* "nomad" */
    const char *subnet;         /* IPv4 CIDR, "172.26.64.0/20" */
    const char *network_name;   /* bridge conflist "name": "nomad" */
    const char *state_dir;      /* e.g. <data_dir>/client/netns (required) */
    const char *helper_path;    /* the nomclient binary (required to spawn) */
    bool disable_hairpin;       /* hairpinMode false on the bridge */
    int plugin_timeout_ms;      /* per plugin run; 0: 60000 */
};

/* Checks the bridge name (1..15 bytes, no '/', ':' or white space), the
 * subnet (IPv4 CIDR, host bits zero, prefix 8..30) and that state_dir is
 * absolute. -EINVAL with the field and what to write instead. */
int netns_config_validate(const struct netns_config *cfg, struct nc_error *err);

/* ---- chains (pure: files and JSON only) ---------------------------------- */

/* Nomad's bridge conflist for cfg (new reference; cfg validated first). */
json_t *netns_bridge_conflist(const struct netns_config *cfg);

/* Loads network `name` from dir: *.conflist, *.conf and *.json in name
 * order, the first whose "name" matches; a single-plugin .conf/.json
 * becomes a one-plugin list. *out is a new reference. -ENOENT when the dir
 * or the name is missing, -EINVAL for a broken file; err names dir/file. */
int netns_load_network(const char *dir, const char *name, json_t **out,
                       struct nc_error *err);

/* The conflist for a network mode: "bridge" or "cni/<name>"; "none" has
 * none (*out NULL, 0). */
int netns_conflist_for_mode(const struct netns_config *cfg, const char *mode,
                            json_t **out, struct nc_error *err);

/* Plugin types of conflist that no dir of cni_path holds as an executable,
 * added to missing. Returns how many are missing. */
size_t netns_missing_plugins(const char *cni_path, const json_t *conflist,
                             struct strlist *missing);

/* Whether mode can run here: 0, or -ENOENT / -EINVAL with a message like
 * Nomad's "missing network" reasons (which plugins lack from which dirs,
 * or why the network cannot be loaded). */
int netns_mode_check(const struct netns_config *cfg, const char *mode,
                     struct nc_error *err);

/* Fingerprint: {"bridge": {"Available": bool, "Missing": [..]},
 * "cni/<name>": {...}, ...} for bridge mode and every loadable network of
 * cni_config_dir. New reference. */
json_t *netns_fingerprint(const struct netns_config *cfg);

/* ---- setup and teardown (asynchronous) ----------------------------------- */

/* A host port forwarded into the namespace. protocol NULL or "" maps
 * both tcp and udp, as Nomad does; host_ip NULL or "" means all. */
struct netns_port_mapping {
    int host_port;
    int container_port;
    const char *protocol;
    const char *host_ip;
};

struct netns_setup {
    const char *alloc_id;   /* CNI container id; [A-Za-z0-9_.-], required */
    const char *mode;       /* "bridge", "none" or "cni/<name>"; DEL: NULL =
                               recorded */
    const char *netns_name; /* NULL: alloc_id */
    const struct netns_port_mapping *ports;
    size_t nports; /* DEL: 0 = those recorded at ADD */
    /* ADD: the process whose network namespace the allocation gets (a
     * driver's holder, e.g. docker's pause container), bind-mounted at
     * /run/netns/<name> instead of a new namespace; 0: a new one. The
     * helper pins it by an fd of /proc/<pid>/ns/net and refuses the host's
     * namespace or a gone process. DEL never signals it. */
    int holder_pid;
};

/* What a helper run produced. Everything is borrowed and valid only during
 * the callback: copy strings, json_incref the JSON to keep them. */
struct netns_result {
    int status;          /* 0, or -errno of the step that failed */
    const char *message; /* "" on success; else what failed, naming plugin */
    const char *alloc_id;
    const char *ip;         /* alloc IPv4 on eth0, NULL on DEL or failure */
    const char *netns_path; /* /run/netns/<name> */
    json_t *cni_result;     /* final CNI result (ADD), else NULL */
    json_t *timings;        /* {"SpawnUs", "LockUs", "NetnsUs", "Plugins":
                               [{"Type","Us"}], "TotalUs", ...} */
    bool reused;            /* ADD found a complete setup and returned it */
};

typedef void (*netns_done_cb)(const struct netns_result *res, void *arg);

/* Sets up the namespace of setup->alloc_id in a helper process and calls
 * done_cb on loop with the outcome. A non-zero return means nothing was
 * started and done_cb will not be called. The conflist is built (bridge)
 * or loaded (cni/) here, so configuration errors come back at once. */
int netns_add(uv_loop_t *loop, const struct netns_config *cfg,
              const struct netns_setup *setup, netns_done_cb done_cb, void *arg,
              struct nc_error *err);

/* Tears down what ADD made for setup->alloc_id (mode, ports and netns_name
 * only matter when the helper finds no state file). prev_result (borrowed,
 * may be NULL) is used when given, else the recorded result. Idempotent:
 * nothing left to delete is success. */
int netns_del(uv_loop_t *loop, const struct netns_config *cfg,
              const struct netns_setup *setup, json_t *prev_result,
              netns_done_cb done_cb, void *arg, struct nc_error *err);

/* Starts the loop's helper server now rather than on the first request,
 * so that request does not wait for its start. */
int netns_prestart(uv_loop_t *loop, const struct netns_config *cfg,
                   struct nc_error *err);

/* Stops waiting for every request sent on loop: the server's handles are
 * closed and no callback is called. The server finishes what it runs on
 * its own (the state files tell the next agent what it did), then exits
 * as its stdin is closed. Call before closing the loop (then run the loop
 * once more for the close callbacks). */
void netns_abandon_all(uv_loop_t *loop);

/* For a loop run only for netns requests, once they are answered:
 * netns_abandon_all, then the loop run for the close callbacks, so that
 * uv_loop_close can follow. */
void netns_loop_done(uv_loop_t *loop);

/* ---- leftovers ----------------------------------------------------------- */

/* What no allocation of owned_alloc_ids accounts for, on our networks only
 * (the bridge network's name and subnet, or recorded in a state file):
 *   {"Setups":     [{"AllocID","Netns","Phase","IP","Network",
 *                    "HolderPid" (a driver's holder, never signalled)}],
 *    "Namespaces": ["/run/netns/<name>", ...],   named by a state file
 *    "IPAM":       [{"IP","ContainerID","File"}],
 *    "Iptables":   [{"Table","Chain","Rule","ContainerID"}], and one
 *                  {"Table","Chain","Rule","Duplicate":true} per extra copy
 *                  of portmap's jump into CNI-HOSTPORT-DNAT (one stays),
 *    "Cleaned":    bool, "Errors": ["..."]}
 * With clean, every listed allocation is torn down by a helper DEL (run
 * synchronously, up to 4 at a time: this is a user command, it blocks for
 * about 200 ms per allocation) and the lists show what was found. New
 * reference. */
json_t *netns_leftovers(const struct netns_config *cfg,
                        const struct strlist *owned_alloc_ids, bool clean);

/* ---- helper process ------------------------------------------------------ */

/* Entry of `nomclient netns-helper REQUEST.json|-|-serve` (argv[0] is
 * "netns-helper"): runs one request and prints one JSON object, returning
 * the exit code (0 done, 1 failed); or, with -serve, runs every JSON line
 * read from stdin on a thread of its own and prints each answer as a line
 * carrying the request's "ReqID", until EOF and the last answer. */
int netns_helper_main(int argc, char **argv);

#endif
