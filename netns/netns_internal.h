/* Shared between the files of netns/ (and its tests); not the module's API.
 *
 *   conf.c      config defaults and validation, conflists, CNI JSON shapes,
 *               helper request/response encoding
 *   exec.c      running a program with stdin/stdout/stderr pipes and a
 *               timeout (plugins, iptables), synchronously
 *   nsfs.c      named namespaces under /run/netns
 *   state.c     per-allocation state and lock files
 *   iptables.c  iptables-save parsing, sweeps, the NOMAD-ADMIN rule
 *   helper.c    `nomclient netns-helper`: ADD, DEL, CHECK
 *   async.c     netns_add / netns_del on a libuv loop
 *   leftovers.c netns_leftovers */
#ifndef NOMCLIENT_NETNS_INTERNAL_H
#define NOMCLIENT_NETNS_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "netns/netns.h"

#define NETNS_DEFAULT_CNI_PATH "/usr/lib/cni"
#define NETNS_DEFAULT_TIMEOUT_MS 60000
#define NETNS_IPAM_DIR "/var/lib/cni/networks"
#define NETNS_MAX_PLUGINS 32
#define NETNS_MAX_OUTPUT (4u << 20) /* a plugin's stdout */
#define NETNS_STATE_VERSION 1
#define NETNS_PID_MAX 4194304 /* the kernel's PID_MAX_LIMIT */

/* ---- conf.c -------------------------------------------------------------- */

const char *netns_cfg_bridge(const struct netns_config *cfg);
const char *netns_cfg_subnet(const struct netns_config *cfg);
const char *netns_cfg_network(const struct netns_config *cfg);
const char *netns_cfg_cni_path(const struct netns_config *cfg);
int netns_cfg_timeout_ms(const struct netns_config *cfg);

/* "a.b.c.d/n" -> host-order network address and prefix; -EINVAL. */
int netns_parse_cidr(const char *s, uint32_t *addr, int *prefix);
/* Whether dotted-quad ip (optionally "/n") lies inside the CIDR subnet. */
bool netns_ip_in_subnet(const char *ip, const char *subnet);

/* CNI container ids, network names, netns names and plugin types: 1..128
 * of [A-Za-z0-9_.-], not starting with '.' or '-'. */
bool netns_name_valid(const char *s);

/* Parses one config file's text: a conflist, or (single=true) a single
 * plugin config turned into a one-plugin list. origin names the file in
 * errors. *out is a new reference. */
int netns_conflist_parse(const char *text, size_t len, const char *origin,
                         bool single, json_t **out, struct nc_error *err);
/* Checks the shape of a conflist: name, cniVersion, 1..32 plugins each
 * with a safe "type". */
int netns_conflist_validate(const json_t *list, const char *origin,
                            struct nc_error *err);

/* [{hostPort, containerPort, protocol, hostIP?}], protocol-less entries
 * doubled into tcp and udp. New reference. -EINVAL for a port out of range
 * or an unknown protocol (message in err). */
int netns_port_mappings_json(const struct netns_port_mapping *ports, size_t n,
                             json_t **out, struct nc_error *err);

/* The stdin of plugin i of list: its config plus the list's cniVersion
 * and name, prevResult (when not NULL) and runtimeConfig holding those
 * capability_args whose capability the plugin declares true. New ref. */
json_t *netns_plugin_config(const json_t *list, size_t i,
                            const json_t *prev_result,
                            const json_t *capability_args);

/* A failing plugin's output to "<msg>: <details> (CNI code N)" or, when
 * stdout holds no CNI error, the last line of stderr or the exit status.
 * Returns the CNI code, or -1 when none was found. */
int netns_plugin_error(const char *out, size_t outlen, const char *errout,
                       int exit_status, char *msg, size_t msglen);

/* Parses a plugin's successful stdout into a result object. */
int netns_result_parse(const char *out, size_t len, json_t **result, char *msg,
                       size_t msglen);

/* The allocation's IPv4 (no prefix) from a CNI result: the first address
 * on a sandbox interface named ifname, else on any sandbox interface, else
 * the first address, as Nomad picks it. -ENOENT if none. */
int netns_result_ip(const json_t *result, const char *ifname, char *ip,
                    size_t iplen);

/* What the agent asks the helper. */
struct netns_request {
    char *command; /* ADD, DEL, CHECK */
    char *alloc_id;
    char *netns; /* /run/netns/<name> */
    char *ifname;
    char *mode;
    char *state_dir;
    char *cni_path;
    json_t *conflist;    /* NULL: the recorded one (DEL, CHECK) */
    json_t *ports;       /* port mappings array, never NULL */
    json_t *prev_result; /* NULL: the recorded one */
    json_t *admin_rule;  /* {"Chain","Bridge","Subnet"}: bridge mode only */
    int holder_pid; /* ADD: the namespace is this process's; 0: a new one */
    int timeout_ms;
    int64_t sent_us; /* the sender's monotonic clock at spawn, 0: unknown */
};
int netns_request_from_json(const json_t *j, struct netns_request *r,
                            struct nc_error *err);
json_t *netns_request_to_json(const struct netns_request *r);
void netns_request_free(struct netns_request *r);
/* Builds the request for cmd from cfg and setup (conflist borrowed). */
int netns_request_build(struct netns_request *r, const char *cmd,
                        const struct netns_config *cfg,
                        const struct netns_setup *setup, const json_t *conflist,
                        const json_t *prev_result, struct nc_error *err);

/* What the helper answers (one JSON object on stdout). */
struct netns_response {
    bool ok;
    int code;
    char *error;
    char *command;
    char *alloc_id;
    char *ip;
    char *netns;
    bool reused;
    json_t *result;  /* may be NULL */
    json_t *timings; /* never NULL after a successful parse */
};
int netns_response_parse(const char *text, size_t len, struct netns_response *r,
                         struct nc_error *err);
/* The same from a parsed object (any object: missing fields are a
 * failure without a message). */
void netns_response_from_json(const json_t *j, struct netns_response *r);
json_t *netns_response_to_json(const struct netns_response *r);
void netns_response_free(struct netns_response *r);

/* The host-local lease dir of a conflist (ipam.dataDir or the default,
 * plus the network name); NULL without host-local. Caller frees. */
char *netns_ipam_dir(const json_t *conflist);
/* Calls fn for every host-local lease under dir: a file named by the IP
 * holding "<container id>\r\n<ifname>". */
typedef void (*netns_lease_fn)(const char *ip, const char *container_id,
                               const char *path, void *arg);
void netns_ipam_leases(const char *dir, netns_lease_fn fn, void *arg);
/* IPs leased under dir to container_id. */
void netns_ipam_leases_of(const char *dir, const char *container_id,
                          struct strlist *ips);

/* ---- exec.c -------------------------------------------------------------- */

struct netns_exec {
    /* in */
    const char *path;
    char *const *argv;
    char *const *envp; /* NULL: inherit */
    const char *input;
    size_t input_len;
    int timeout_ms;
    size_t max_output; /* 0: NETNS_MAX_OUTPUT */
    /* out (free with netns_exec_free) */
    struct nc_buf out, err;
    int status;     /* exit status, or 128+signal */
    bool timed_out; /* killed after timeout_ms */
    /* between start and wait */
    int pid, in_fd, out_fd, err_fd;
    size_t written;
    int64_t deadline_us;
};
/* Runs path in its own process group, feeding input and collecting
 * stdout/stderr; kills the group after timeout_ms. Returns 0 when it ran
 * (see status), -errno when it could not be started. */
int netns_exec_run(struct netns_exec *x);
/* The same in two halves, so one program can run while others do: start
 * spawns it, wait feeds, collects and reaps it. After a failed start there
 * is nothing to wait for. The child's output must fit the pipes meanwhile
 * (64 KiB each), as it does for `iptables -C`. */
int netns_exec_start(struct netns_exec *x);
void netns_exec_wait(struct netns_exec *x);
void netns_exec_free(struct netns_exec *x);

/* ---- nsfs.c -------------------------------------------------------------- */

/* Creates the named namespace at path (under /run/netns, made a shared
 * mount as iproute2 does), with lo up if lo_up (mode none; a chain's
 * loopback plugin does it otherwise). -EEXIST if path exists. */
int netns_ns_create(const char *path, bool lo_up, struct nc_error *err);
/* From now on keep namespaces made ahead for the next netns_ns_create
 * (the helper server's choice: a one-shot helper makes its own). */
void netns_ns_keep_spare(void);
/* Makes up for the spares taken, on the spare thread: called once a
 * request is answered. */
void netns_ns_refill(void);
/* Mounts the network namespace ns (an fd, borrowed) at path as
 * netns_ns_create does (lo up if lo_up). -EEXIST if path exists. */
int netns_ns_attach(const char *path, int ns, bool lo_up, struct nc_error *err);
/* Opens the network namespace of process pid, the holder of an
 * allocation's namespace: its fd (the caller closes it), or -ESRCH when
 * the process is gone, -EPERM when it is in the host's namespace (ours or
 * pid 1's), -EINVAL when the link is no network namespace; err says which
 * process and why. */
int netns_holder_open(int pid, struct nc_error *err);
/* Whether the namespace ns (an fd) has an interface called ifname: 1, 0,
 * or -errno. */
int netns_ns_has_link(int ns, const char *ifname, struct nc_error *err);
/* Whether the namespace mounted at path is the namespace ns (an fd). */
bool netns_ns_is(const char *path, int ns);
/* Whether path is a bind-mounted network namespace. */
bool netns_ns_exists(const char *path);
/* Unmounts and unlinks path; a missing path is success. */
int netns_ns_remove(const char *path, struct nc_error *err);

/* ---- state.c ------------------------------------------------------------- */

char *netns_state_path(const char *dir, const char *alloc_id);
#define NETNS_LOCK_FILE ".locks"
off_t netns_lock_offset(const char *alloc_id);
/* Takes the allocation's lock (blocking), a byte of <dir>/.locks; *fd
 * receives the descriptor, whose close releases it. */
int netns_state_lock(const char *dir, const char *alloc_id, int *fd,
                     struct nc_error *err);
/* Reads the state (the intent with every complete update merged over it):
 * -ENOENT if none; an undecodable file is moved aside to .corrupt and
 * reported as -ENOENT with err set. */
int netns_state_read(const char *dir, const char *alloc_id, json_t **out,
                     struct nc_error *err);
/* The same over a file's text; why gets what is wrong (-EINVAL). */
int netns_state_parse(const char *text, size_t len, const char *alloc_id,
                      json_t **out, char *why, size_t whylen);
/* Replaces the state with one intent line, durably (fsync of file and
 * directory). */
int netns_state_write(const char *dir, const char *alloc_id,
                      const json_t *state, struct nc_error *err);
/* The same in two halves: begin makes the file visible (rename) and starts
 * the fsyncs on a thread; end waits for them. Between the two the caller
 * may create what a power loss destroys anyway (namespace, loopback), not
 * what outlives it (IPAM leases on disk). */
struct netns_state_sync {
    pthread_t thread;
    int fd, dirfd, result;
    bool pending, threaded;
};
int netns_state_write_begin(const char *dir, const char *alloc_id,
                            const json_t *state, struct netns_state_sync *s,
                            struct nc_error *err);
int netns_state_write_end(struct netns_state_sync *s, struct nc_error *err);
/* Appends an update line: keys replace the state's, "Results+" appends to
 * "Results". Not fsynced (see state.c). */
int netns_state_append(const char *dir, const char *alloc_id,
                       const json_t *update, struct nc_error *err);
int netns_state_remove(const char *dir, const char *alloc_id);
/* The best prevResult a state holds: "Result", else the last non-null of
 * "Results". Borrowed, or NULL. */
json_t *netns_state_best_result(const json_t *state);

/* ---- iptables.c ---------------------------------------------------------- */

/* One rule of iptables-save output attributed to an allocation. */
struct netns_ipt_rule {
    char *table;
    char *chain;
    char *rule;         /* the "-A CHAIN ..." line */
    char *container_id; /* NULL when attributed by IP only */
    char *ip;           /* the allocation IP the rule names, if any */
};
struct netns_ipt_plan {
    struct netns_ipt_rule *rules;
    size_t nrules, cap;
    struct strlist chains;   /* "table:CHAIN" to flush and delete */
    struct kvlist chain_ids; /* "table:CHAIN" -> the container id it serves */
};
/* Decides, over iptables-save text, what belongs to network `network`:
 * comment-tagged bridge masquerade and portmap rules of container ids that
 * accept_id says yes to (ip: the rule's source address, or NULL), the
 * chains they jump to, and the portmap DNAT chains and CNI-FORWARD rules
 * naming an IP of ips or, when subnet is not NULL, an IP inside subnet that
 * accept_ip says yes to. */
typedef bool (*netns_accept_id_fn)(const char *id, const char *ip, void *arg);
typedef bool (*netns_accept_ip_fn)(const char *ip, void *arg);
void netns_ipt_plan_build(struct netns_ipt_plan *plan, const char *save,
                          const char *network, netns_accept_id_fn accept_id,
                          const struct strlist *ips, const char *subnet,
                          netns_accept_ip_fn accept_ip, void *arg);
/* An iptables-restore --noflush script deleting the plan (caller frees),
 * or NULL when there is nothing to do. */
char *netns_ipt_plan_script(const struct netns_ipt_plan *plan);
void netns_ipt_plan_free(struct netns_ipt_plan *plan);
/* Runs iptables-save; caller frees. NULL and err set on failure. */
char *netns_ipt_save(int timeout_ms, struct nc_error *err);
/* Feeds a script to iptables-restore --noflush. */
int netns_ipt_restore(const char *script, int timeout_ms, struct nc_error *err);
/* Removes every rule of network for container_id (and the CNI-FORWARD
 * rules of the IPs in ips); *removed counts what went. */
int netns_ipt_sweep(const char *network, const char *container_id,
                    const struct strlist *ips, int timeout_ms, size_t *removed,
                    struct nc_error *err);
/* Nomad's forwarding rule, -A <chain> -o <bridge> -d <subnet> -j ACCEPT,
 * in two halves so the check runs beside the plugin chain: start runs
 * `iptables -C` on a thread of its own (so not even its spawn delays the
 * chain); finish waits for it and, when add and the rule is missing,
 * creates the chain if needed and appends the rule. */
struct netns_ipt_admin {
    struct netns_exec x;
    const char *argv[12];
    char path[64];
    pthread_t thread;
    int run; /* netns_exec_run's return */
    bool started, threaded;
};
int netns_ipt_admin_start(struct netns_ipt_admin *c, const json_t *admin_rule,
                          int timeout_ms, struct nc_error *err);
/* Whether Nomad's forwarding rule for the bridge is in place: 1, 0, or
 * -errno; with remove, every copy of it is deleted. */
int netns_ipt_admin_present(const json_t *admin_rule, bool remove,
                            int timeout_ms, struct nc_error *err);
/* `ip link del BRIDGE`. */
int netns_bridge_delete(const char *bridge, int timeout_ms,
                        struct nc_error *err);
/* lock_path (may be NULL) serialises the re-check and the add between
 * helpers, so concurrent first allocations add the rule once. */
int netns_ipt_admin_finish(struct netns_ipt_admin *c, const json_t *admin_rule,
                           bool add, const char *lock_path, int timeout_ms,
                           struct nc_error *err);

/* portmap's summary chain and its jumps, -A <hook> -m addrtype --dst-type
 * LOCAL -j CNI-HOSTPORT-DNAT from each hook (nat table), as it writes them. */
#define NETNS_HOSTPORT_CHAIN "CNI-HOSTPORT-DNAT"
#define NETNS_HOSTPORT_HOOKS 2
#define NETNS_HOSTPORT_LOCK_FILE "hostport.lock"
extern const char *const netns_hostport_hooks[NETNS_HOSTPORT_HOOKS];
/* The "-A <hook> ..." line of hooks[hook] (caller frees). */
char *netns_hostport_rule(size_t hook);
/* What iptables-save text holds of them. */
struct netns_hostport_count {
    bool chain;                           /* ":CNI-HOSTPORT-DNAT" in *nat */
    unsigned jumps[NETNS_HOSTPORT_HOOKS]; /* copies of each hook's jump */
};
void netns_hostport_count(const char *save, struct netns_hostport_count *c);
/* An iptables-restore --noflush script that appends (add) each missing
 * jump and deletes (remove) all copies but one of each (caller frees), or
 * NULL when there is nothing to do. Never declares the chain: that would
 * flush it. */
char *netns_hostport_script(const struct netns_hostport_count *c, bool add,
                            bool remove);
/* Makes sure the chain and one jump per hook exist before the first portmap
 * of a set-up runs, once per process (until it succeeds), under the lock
 * <state_dir>/hostport.lock between processes: start runs it on a thread of
 * its own (nothing once it has succeeded here); finish waits for it, sets
 * *ran when this call did the work, and returns its outcome. */
struct netns_hostport {
    char *lock_path;
    int timeout_ms;
    pthread_t thread;
    int result;
    struct nc_error err;
    bool started, threaded, ran;
};
void netns_hostport_start(struct netns_hostport *c, const char *state_dir,
                          int timeout_ms);
int netns_hostport_finish(struct netns_hostport *c, bool *ran,
                          struct nc_error *err);
/* Deletes all copies but one of each jump; *removed counts what went. */
int netns_hostport_dedupe(int timeout_ms, size_t *removed,
                          struct nc_error *err);

/* ---- helper.c / leftovers.c ---------------------------------------------- */

/* Runs one helper request in this process's caller (blocking; used by the
 * helper's main and by leftovers -clean through a child). */
int netns_helper_run(const struct netns_request *req,
                     struct netns_response *resp);

/* Monotonic microseconds. */
static inline int64_t netns_now_us(void)
{
    return (int64_t)(nc_now_mono_ns() / 1000);
}

#endif
