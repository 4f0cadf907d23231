/* job/job.h - jobs: the model Nomad's job files and API JSON decode
 * into (HCL or JSON, validated with file:line:col errors), placement of a
 * job's groups against this node (constraints, resources, ports, with
 * Nomad's wording when nothing fits), and the agent's durable job store.
 *
 * Below: the model and parsers (job_*), placement (placement_*), the job
 * store (state_*). */
#ifndef NOMCLIENT_JOB_JOB_H
#define NOMCLIENT_JOB_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/util.h"
#include "client/node/node.h"

/* the validated job model, decoded from HCL job files or from
 * Nomad's JSON API form ({"Job": {...}}), with Nomad's defaults applied, and
 * encoded back to that JSON form.
 *
 * Field names follow Nomad's structs (nomad/structs/structs.go) in
 * snake_case. Durations are int64 nanoseconds. Strings may hold
 * "${...}" interpolations, kept verbatim for run time.
 * Every struct is owned by its parent; free the whole tree with
 * jobspec_free(). */

struct constraint {
    char *ltarget; /* "${attr.cpu.arch}" */
    char *rtarget; /* "amd64" */
    char *operand; /* "=", "!=", "<", "regexp", "set_contains", ... */
};

struct affinity {
    char *ltarget, *rtarget, *operand;
    int weight;
};

struct spread_target {
    char *value;
    int percent;
};

struct spread {
    char *attribute;
    int weight;
    struct spread_target *targets;
    size_t ntargets;
};

struct port {
    char *label;
    int value;         /* static host port, 0 when dynamic */
    int to;            /* port inside the namespace, 0 = same as host */
    char *host_network; /* "default" */
};

struct network {
    char *mode; /* "host" (default), "bridge", "none", "cni/<name>" */
    struct port *reserved_ports; /* ports with a static value */
    size_t nreserved_ports;
    struct port *dynamic_ports;  /* ports without one */
    size_t ndynamic_ports;
    int mbits;
    char *hostname;
    struct strlist dns_servers, dns_searches, dns_options;
};

struct check_restart {
    int limit;
    int64_t grace; /* ns, default 1s */
    bool ignore_warnings;
};

struct check {
    char *name;
    char *type; /* "http", "tcp", "script", "grpc" */
    char *command;
    struct strlist args;
    char *path;
    char *protocol; /* "http" or "https" */
    char *port_label;
    char *address_mode;
    char *method;
    char *body;
    struct kvlist header; /* name -> values joined by "\x1f" when several */
    int64_t interval;     /* ns */
    int64_t timeout;      /* ns */
    char *initial_status;
    bool tls_skip_verify;
    char *task_name;
    int success_before_passing;
    int failures_before_critical;
    int failures_before_warning;
    char *on_update; /* "require_healthy" (default), "ignore_warnings", "ignore" */
    bool expose;
    struct check_restart *check_restart; /* NULL when absent */
    char *grpc_service;
    bool grpc_use_tls;
};

struct service {
    char *name;
    char *task_name; /* set for task-level services */
    char *port_label;
    char *address_mode; /* "auto" (default), "host", "alloc", "driver" */
    char *address;
    char *provider;     /* "consul" (default) or "nomad" */
    bool enable_tag_override;
    struct strlist tags, canary_tags;
    struct kvlist meta, canary_meta;
    struct check *checks;
    size_t nchecks;
    json_t *connect; /* kept as Nomad API JSON (ConsulConnect), NULL if none */
    char *on_update;
};

struct resources {
    int cpu;        /* MHz, default 100 */
    int cores;
    int memory_mb;  /* default 300 */
    int memory_max_mb;
    int disk_mb;
    json_t *devices; /* Nomad API JSON array of RequestedDevice, or NULL */
};

struct restart_policy {
    int attempts;
    int64_t interval, delay;
    char *mode; /* "fail" or "delay" */
    bool render_templates;
};

struct reschedule_policy {
    int attempts;
    int64_t interval, delay, max_delay;
    char *delay_function; /* "constant", "exponential", "fibonacci" */
    bool unlimited;
};

struct update_strategy {
    int max_parallel;
    char *health_check; /* "checks", "task_states", "manual" */
    int64_t min_healthy_time, healthy_deadline, progress_deadline, stagger;
    bool auto_revert, auto_promote;
    int canary;
};

struct migrate_strategy {
    int max_parallel;
    char *health_check;
    int64_t min_healthy_time, healthy_deadline;
};

struct volume_request {
    char *name; /* block label */
    char *type; /* "host" or "csi" */
    char *source;
    bool read_only;
    bool per_alloc;
    char *access_mode, *attachment_mode;
};

struct volume_mount {
    char *volume;
    char *destination;
    bool read_only;
    char *propagation_mode;
};

struct template_spec {
    char *source_path, *dest_path, *embedded_tmpl;
    char *change_mode, *change_signal;
    int64_t splay;
    char *perms;
    char *left_delim, *right_delim;
    bool envvars;
    bool err_missing_key;   /* ErrMissingKey: error_on_missing_key */
    int uid, gid;           /* Uid, Gid: -1 = the agent's (Nomad's default) */
    int64_t wait_min, wait_max; /* Wait {Min, Max}; 0: no wait */
    /* ChangeScript (change_mode = "script"): NULL command when absent */
    char *script_command;
    struct strlist script_args;
    int64_t script_timeout; /* default 5 s */
    bool script_fail_on_error;
};

struct log_config {
    int max_files;        /* default 10 */
    int max_file_size_mb; /* default 10 */
    bool disabled;
};

struct lifecycle {
    char *hook; /* "prestart", "poststart", "poststop" */
    bool sidecar;
};

/* An artifact block (Nomad's TaskArtifact): fetched into the task dir
 * before the task starts (client/alloc/artifact.c). */
struct artifact {
    char *source;        /* GetterSource */
    char *destination;   /* RelativeDest, relative to the task dir */
    char *mode;          /* GetterMode: "any", "file", "dir" */
    struct kvlist options; /* GetterOptions: checksum, archive, query */
    struct kvlist headers; /* GetterHeaders */
    bool insecure, chown;
};

struct task {
    char *name;
    char *driver;
    char *user;
    json_t *config; /* driver config, kept as JSON object */
    struct kvlist env;
    struct kvlist meta;
    struct resources resources;
    struct service *services;
    size_t nservices;
    struct constraint *constraints;
    size_t nconstraints;
    struct affinity *affinities;
    size_t naffinities;
    struct template_spec *templates;
    size_t ntemplates;
    json_t *vault; /* Nomad API JSON (Vault), NULL if none */
    struct volume_mount *volume_mounts;
    size_t nvolume_mounts;
    int64_t kill_timeout; /* default 5s */
    char *kill_signal;
    int64_t shutdown_delay;
    struct log_config logs;
    struct lifecycle *lifecycle; /* NULL when absent */
    bool leader;
    struct restart_policy *restart; /* task-level override, or NULL */
    struct artifact *artifacts;
    size_t nartifacts;
    struct scaling_policy *scaling_policies; /* task-level scaling blocks */
    size_t nscaling_policies;
};

struct scaling_policy {
    bool enabled;
    int64_t min, max; /* max is -1 when not given */
    json_t *policy; /* opaque autoscaler policy, NULL if none */
    char *type;     /* "horizontal", "vertical_cpu", "vertical_mem" */
};

struct task_group {
    char *name;
    int count; /* default 1 */
    struct constraint *constraints;
    size_t nconstraints;
    struct affinity *affinities;
    size_t naffinities;
    struct spread *spreads;
    size_t nspreads;
    struct network *networks;
    size_t nnetworks;
    struct service *services;
    size_t nservices;
    struct volume_request *volumes;
    size_t nvolumes;
    struct restart_policy restart;
    /* Reschedule, update and migrate are merged with the job's blocks and
     * defaulted as Nomad's api Canonicalize does: reschedule is NULL only
     * for system/sysbatch jobs, migrate is set for service jobs, update is
     * NULL unless the group or the job has an update block. */
    struct reschedule_policy *reschedule;
    struct update_strategy *update;
    struct migrate_strategy *migrate;
    struct scaling_policy *scaling;       /* NULL when absent */
    struct kvlist meta;
    struct task *tasks;
    size_t ntasks;
    int64_t shutdown_delay;
    int64_t stop_after_client_disconnect;
    struct {
        int mb;
        bool migrate, sticky;
    } ephemeral_disk;
};

struct job {
    char *id;
    char *name;
    char *namespace; /* "default" */
    char *region;    /* "global" */
    char *type;      /* "service" (default), "batch", "system", "sysbatch" */
    int priority;    /* 50 */
    bool all_at_once;
    struct strlist datacenters; /* default ["*"]... Nomad 1.6+: ["*"] */
    char *node_pool;
    struct kvlist meta;
    struct constraint *constraints;
    size_t nconstraints;
    struct affinity *affinities;
    size_t naffinities;
    struct spread *spreads;
    size_t nspreads;
    struct update_strategy *update;
    struct migrate_strategy *migrate;
    struct reschedule_policy *reschedule;
    struct task_group *groups;
    size_t ngroups;
    json_t *periodic;      /* kept as API JSON, NULL if none */
    json_t *parameterized; /* kept as API JSON, NULL if none */
    json_t *vault;         /* job-level vault, NULL if none */

    /* Non-fatal findings, e.g. stanzas this node keeps but does not act on
     * ("group \"frontend\" > service \"frontend\": connect sidecar_service
     * is not supported by this node; kept but ignored"). */
    struct strlist warnings;
};

/* Decodes an HCL job file's text. `filename` is used in messages.
 * On error returns -EINVAL and err holds "file:line:col: path: message",
 * e.g. `job.nomad:12:7: group "api" > task "api": unknown attribute "imgae"`. */
int jobspec_parse_hcl(const char *filename, const char *src, size_t len,
                      struct job **out, struct nc_error *err);

/* Decodes Nomad's API JSON: either {"Job": {...}} or the bare job object. */
int jobspec_from_json(const json_t *root, struct job **out,
                      struct nc_error *err);
int jobspec_parse_json(const char *filename, const char *src, size_t len,
                       struct job **out, struct nc_error *err);

/* Reads a file and picks HCL or JSON from its content (first non-blank
 * character '{' means JSON). */
int jobspec_parse_file(const char *path, struct job **out,
                       struct nc_error *err);

/* Encodes the job in Nomad's API form, the bare job object (callers wrap it
 * in {"Job": ...} where needed). Returns a new reference. */
json_t *jobspec_to_json(const struct job *job);

/* Checks the model (also applied by the parsers): required fields, Nomad's
 * minimums, unique names, port labels referenced by services exist, ... */
int jobspec_validate(struct job *job, struct nc_error *err);

void jobspec_free(struct job *job);

/* can this node run a job, and how many of each group's
 * allocations fit? The single-node form of Nomad's scheduler feasibility
 * and bin packing (scheduler/feasible/feasible.go, rank.go): constraints,
 * datacenters, node pool, drivers, host volumes, distinct_hosts,
 * distinct_property, ports, cores, cpu, memory and disk. When something
 * does not fit, the result carries Nomad's reasons and a message laid out
 * like `nomad job run`'s evaluation output. */

/* What allocations already on this node (other jobs) take. All zero means
 * an empty node. */
struct placement_usage {
    int cpu_mhz;
    int64_t memory_mb;
    int64_t disk_mb;
    struct strlist used_ports; /* host ports: "5432", or ranges "8000-8100";
                                  entries that are not ports are ignored */
    int cores;                 /* whole cores reserved with `cores` */
};

/* Why a group is not (fully) placed. */
enum placement_failure {
    PLACEMENT_FIT,       /* every allocation placed */
    PLACEMENT_FILTERED,  /* the node is excluded: constraint, driver, volume,
                            datacenter, node pool, distinct_* */
    PLACEMENT_EXHAUSTED, /* the node is eligible but out of a resource */
};

struct placement_group_result {
    char *group;
    int desired; /* count, or 1 per node for system and sysbatch jobs */
    int placed;  /* how many of them fit, in order */
    enum placement_failure failure;
    /* Nomad's metric lines, without the "* " bullet, e.g.
     * `Constraint "${attr.cpu.arch} = arm64": 1 nodes excluded by filter`,
     * `Dimension "memory" exhausted on 1 nodes`. Empty when all placed. */
    struct strlist reasons;
};

struct placement_result {
    bool ok;                               /* every group placed fully */
    struct placement_group_result *groups; /* one per job group, job order */
    size_t ngroups;
    /* NULL when ok; otherwise the text shown to users, lines joined by
     * "\n" (no trailing newline), first line "Placement failed: ...":
     *   Placement failed: no nodes satisfied constraints
     *       Task Group "workers" (failed to place 1 allocation):
     *         * Constraint "${meta.storage_type} = ssd": 1 nodes excluded by
     * filter
     */
    char *message;
};

/* Places `job` on `node` after `used` (NULL = nothing placed yet), groups in
 * job order, each taking what earlier groups left. Fills `out` (free it with
 * placement_result_free) and returns 0; out->ok tells whether everything
 * fits. Returns -EINVAL, with out->ok false and out->message saying why,
 * when the node's own reserved_ports setting cannot be parsed. */
int placement_check(const struct job *job, const struct node *node,
                    const struct placement_usage *used,
                    struct placement_result *out);

/* Frees what `r` owns and zeroes it; safe on a zeroed result and NULL. */
void placement_result_free(struct placement_result *r);

/* Resolves a constraint target as Nomad does: a literal (no leading "${")
 * is itself; ${attr.X}, ${meta.X}, ${node.unique.id}, ${node.unique.name},
 * ${node.datacenter}, ${node.region}, ${node.class} and ${node.pool} are
 * the node's values. Returns false, with *out NULL, when the target names a
 * missing attribute or meta key or is not a known form: that is what
 * is_set / is_not_set test. Otherwise *out is a copy the caller frees. */
bool placement_resolve(const struct node *node, const char *target, char **out);

/* Whether `node` satisfies one constraint, with Nomad's semantics for every
 * operator (=, ==, is, !=, not, <, <=, >, >=, regexp, version, semver,
 * set_contains, set_contains_all, set_contains_any, is_set, is_not_set).
 * distinct_hosts and distinct_property are not node properties and always
 * pass here (placement_check applies them). When the constraint itself is
 * malformed (bad regexp, bad version constraint, unknown operator) it
 * fails and, if `why` is not NULL, *why receives an allocated explanation
 * (e.g. `invalid regexp "(": parenthesis not balanced`); otherwise *why
 * is set to NULL. */
bool placement_check_constraint(const struct node *node,
                                const struct constraint *c, char **why);

/* the agent's durable job store: one JSON document per job under
 * data_dir/client/jobs/, each written atomically (temp file, fsync, rename,
 * directory fsync), so a crash at any moment leaves either the old or the
 * new version, never a torn one. */

struct job_entry {
    struct job *job;      /* the validated model (owned) */
    bool stop;            /* stopped by the user */
    int64_t submit_time;  /* unix ns of the last registration */
    uint64_t create_index, modify_index, job_modify_index;
    uint64_t version;     /* bumped when the job's definition changes */
};

struct state_store {
    char *dir;                /* data_dir/client/jobs */
    struct job_entry **jobs;  /* sorted by job id */
    size_t njobs, cap;
    uint64_t index;           /* last index handed out */
};

/* Opens (creating) the store and loads every job. A file that cannot be
 * decoded is renamed to <name>.corrupt and reported in the log, never
 * deleted. */
int state_open(struct state_store **out, const char *data_dir,
               struct nc_error *err);
void state_close(struct state_store *s);

/* Stores a new or updated job, taking ownership of `job` (also on error).
 * *entry_out (optional) points at the stored entry. An update whose JSON
 * form is unchanged and which is not stopped keeps its version. */
int state_put_job(struct state_store *s, struct job *job,
                  struct job_entry **entry_out, struct nc_error *err);
struct job_entry *state_get_job(const struct state_store *s, const char *id);
/* Marks a job stopped (or removes it with purge). -ENOENT if unknown. */
int state_stop_job(struct state_store *s, const char *id, bool purge,
                   struct nc_error *err);

/* "pending", "running" or "dead", as Nomad reports a job's status. */
const char *state_job_status(const struct job_entry *e);

/* Whether a path relative to a task dir leaves its allocation dir
 * (Nomad's PathEscapesAllocViaRelative): an artifact's destination. */
bool jobspec_path_escapes_alloc(const char *rel);

#endif
