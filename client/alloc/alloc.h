/* alloc/alloc.h - allocations on this node: the model (one per group
 * instance of a placed job, with its tasks, events, ports, network phase
 * and durable state file), the runner that creates, starts, restarts,
 * signals and stops them on the agent's loop through the task drivers
 * (client/drivers/driver.h), and their resource usage.
 *
 * Below: the model (alloc_*), the runner (alloc_manager_*), stats. */
#ifndef NOMCLIENT_ALLOC_ALLOC_H
#define NOMCLIENT_ALLOC_ALLOC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "client/job/job.h"
#include "client/node/node.h"
#include "client/util.h"
#include "client/config.h"
#include "netns/netns.h"

/* allocations on this node: one per group instance of a placed
 * job, each with its task directory tree, network, tasks under supervisors,
 * restart policy and a durable state file (data_dir/client/allocs/<id>.json,
 * written atomically on every change).
 *
 * Life of an allocation: pending -> running -> complete | failed. Each task
 * runs under `nomclient supervise` (client/drivers/supervisor.c), started detached, so it
 * outlives agent restarts; the agent watches supervisors through pidfds and
 * re-attaches to them after a restart instead of starting tasks again. A
 * supervisor holds an flock on its lock file for its whole life, which is
 * how a restarted agent tells a live task from a dead one even when it was
 * killed between spawning the supervisor and recording its pid. */

#define ALLOC_MAX_EVENTS 10

struct alloc_event {
    int64_t time; /* unix ns */
    char *type;   /* "Received", "Task Setup", "Started", "Terminated",
                     "Restarting", "Not Restarting", "Killing", "Killed",
                     "Driver Failure", "Setup Failure", ... as Nomad */
    char *message;
};

struct alloc_task {
    char *name;
    char *state; /* "pending", "running", "dead" */
    bool failed;
    int restarts;
    int64_t started_at, finished_at, last_restart; /* unix ns, 0 = never */
    struct alloc_event events[ALLOC_MAX_EVENTS]; /* oldest first */
    size_t nevents;
    /* the process the task's driver watches (exec, raw_exec: the task's
     * supervisor); 0 when none runs */
    int supervisor_pid;
    int exit_code, signal;
    /* what the task's driver records to find the task again after an
     * agent restart (docker: the container's id), persisted; or NULL */
    json_t *driver_state;

    /* runtime, not persisted */
    struct alloc *alloc;
    void *handle;          /* the driver's (client/drivers/driver.h) */
    uv_timer_t *timer;     /* restart delay */
    /* started while the allocation's network is set up: prepared, it waits
     * for the driver's release before the task joins the namespace */
    bool net_waiting;
    bool aborting; /* it ends without starting the task */
    /* its driver is starting it (docker: pulling, creating): the driver
     * reports started or exited later */
    bool starting;
    /* a user's `alloc restart` killed it: started again at once, not
     * counted against the restart policy */
    bool user_restart;
    /* killed with its allocation: a sidecar's stop waits for the other
     * tasks to be dead (stop_deferred), then it is sent (stop_sent) */
    bool stop_deferred, stop_sent;
    /* artifact.c: its artifacts are in place (kept across restarts, as
     * Nomad's hook state), or being fetched */
    bool artifacts_done;
    void *artifacts_fetch;
    /* template_hook.c: the env = true templates' variables (over the
     * task's env), the first render waiting for a dependency, and a kill
     * that fails the task (change_script's fail_on_error) */
    struct kvlist template_env;
    bool templates_blocked, kill_fails;
    int restarts_in_interval;
    int64_t interval_start;
    /* last CPU sample for alloc_stats (cumulative ns, monotonic time) */
    uint64_t sample_cpu_ns, sample_user_ns, sample_sys_ns, sample_mono_ns;
    double cpu_pct, user_pct, sys_pct;
};

struct alloc_port {
    char *label;
    int value;  /* host port */
    int to;     /* port inside the namespace (bridge), else = value */
    char *host_ip;
};

struct alloc_manager;
struct alloc_gc;
struct driver_env;

struct alloc {
    char *id, *name, *job_id, *group, *namespace;
    int index;
    uint64_t job_version;
    char *desired_status;    /* "run", "stop" */
    char *client_status;     /* "pending", "running", "complete", "failed" */
    char *client_description;
    struct job *job;         /* owned copy of the job this alloc runs */
    struct alloc_task *tasks;
    size_t ntasks;
    char *network_mode;      /* "host", "bridge", "none", "cni/<name>" */
    char *ip;                /* the alloc's address (bridge) or host IP */
    struct alloc_port *ports;
    size_t nports;
    char *netns;             /* netns name while it exists, else NULL */
    json_t *cni_result;      /* CNI ADD result, passed as prevResult on DEL */
    /* bridge / cni: "" (none yet), "setting-up", "ready", "tearing-down",
     * "down"; written before each step so a restarted agent knows what to
     * finish or undo */
    char *net_phase;
    json_t *net_timings;     /* where the set-up time went (helper's report) */
    /* the driver that holds the allocation's namespace (docker: its pause
     * container), {"Driver": name, ...its own fields}, persisted; or NULL
     * when the netns helper makes the namespace */
    json_t *net_driver;
    int64_t create_time, modify_time;
    uint64_t create_index, modify_index;
    int reschedules;         /* how many allocations this one replaces */
    char *previous_alloc;

    struct alloc_manager *mgr; /* runtime */
    struct alloc_writer *writer; /* the state file's writer (alloc_runner) */
    bool stopping;
    uv_timer_t *stop_timer; /* deregistration wait, then shutdown_delay */
    int stop_phase;  /* 0 deregistering, 1 shutdown delay, 2 killing */
    char *stop_why;
    bool net_busy;   /* a network helper runs for this allocation */
    bool net_queued; /* waiting for a free network helper slot */
    int64_t net_queued_at, net_queued_us; /* since when, and for how long */
    uv_timer_t *reschedule_timer; /* replacement pending after a failure */
    /* `alloc stop` (not persisted): a replacement is placed once this one
     * is stopped, and shutdown_delay may be skipped */
    bool replace_when_stopped;
    bool no_shutdown_delay;
    /* the task coordinator (lifecycle.c): its phase; killing: a dead task
     * took the others down (a failure, the leader, the main tasks) */
    int lc_phase;
    bool lc_killing;
    bool lc_starting, lc_again; /* a start pass runs / must run again */
    int gc_state; /* gc.c: 0, ALLOC_GC_QUEUED or ALLOC_GC_DESTROYING */
};

/* Encodes an allocation in Nomad's API shape (Allocation). */
json_t *alloc_to_json(const struct alloc *a);
/* The shorter AllocListStub shape used by list endpoints. */
json_t *alloc_stub_to_json(const struct alloc *a);
/* Decodes what alloc_to_json wrote (the durable state form). */
int alloc_from_json(const json_t *j, struct alloc **out, struct nc_error *err);
void alloc_free(struct alloc *a);

/* The allocation's group in its job, and a task's definition in it (NULL
 * when the job no longer has them). */
const struct task_group *alloc_group(const struct alloc *a);
const struct task *alloc_task_spec(const struct alloc_task *t);

/* Appends an event, dropping the oldest beyond ALLOC_MAX_EVENTS. */
void alloc_task_event(struct alloc_task *t, const char *type,
                      const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The environment Nomad gives a task (NOMAD_ALLOC_ID, NOMAD_PORT_<label>,
 * ..., NOMAD_META_*), plus the task's own env, interpolated. `in_chroot`
 * selects task-relative paths (/alloc, /local) over host paths. */
void alloc_task_env(const struct alloc *a, const struct task *t,
                    const struct node *n, const char *alloc_dir,
                    const char *task_dir, bool in_chroot, struct kvlist *env);

/* Replaces ${NOMAD_*}, ${node.*}, ${attr.*}, ${meta.*} and ${env["X"]} in
 * `s` from env and node; unknown references are kept verbatim, as Nomad
 * does. Returns a new string. */
char *alloc_interpolate(const char *s, const struct kvlist *env,
                        const struct node *n);

/* runs this node's allocations on the agent's loop:
 * creates them for placed jobs, sets up directories, ports and networks,
 * starts each task under a detached supervisor, watches supervisors through
 * pidfds, applies restart and reschedule policies, stops allocations, and
 * re-attaches to live supervisors after an agent restart. */

struct alloc_manager_config {
    uv_loop_t *loop;
    const struct agent_config *cfg;
    const struct node *node;
    const char *self_exe; /* the nomclient binary, for `supervise` */
    /* called after any change of an allocation (state already saved) */
    void (*on_change)(struct alloc *a, void *arg);
    /* an allocation with services was told to stop: deregister them and
     * call alloc_manager_deregistered (the runner stops waiting after 5 s);
     * then shutdown_delay passes and the tasks are killed. NULL: no wait. */
    void (*on_stopping)(struct alloc *a, void *arg);
    /* the built-in catalog for templates' nomadService: the registrations
     * of `service` ([ServiceRegistration]), or with service NULL the list
     * ([{"Namespace", "Services": [...]}]); new reference. NULL: none. */
    json_t *(*catalog_lookup)(void *arg, const char *service);
    void *arg;
};

/* Network helpers running at once: the CNI chain takes host-local's and
 * iptables' locks, so more in parallel only queue there (bench-allocs). */
#define ALLOC_NET_PARALLEL 4

struct alloc_manager {
    struct alloc_manager_config c;
    char *state_dir;  /* data_dir/client/allocs */
    char *alloc_root; /* data_dir/alloc */
    char *netns_dir;  /* data_dir/client/netns: the helpers' state */
    struct netns_config net;
    struct alloc **net_queue; /* FIFO of allocations waiting for a helper */
    size_t net_nqueued, net_qcap;
    int net_running;
    void (*idle_cb)(void *arg); /* alloc_manager_when_idle */
    void *idle_arg;
    struct driver_env *drv; /* what the task drivers are given */
    struct alloc **allocs;
    size_t nallocs, cap;
    uint64_t index;
    bool closing;
    /* `node drain`: stops this node's allocations as Nomad's drainer would
     * (alloc_manager_drain_start) */
    struct {
        bool active;
        bool ignore_system;
        bool forced;            /* the deadline passed (or -force) */
        uv_timer_t *deadline;
        void (*done)(void *arg); /* every allocation to drain is stopped */
        void *arg;
    } drain;
    /* drain steps and replacements run here, after the change that called
     * for them, never inside a save */
    uv_timer_t *followup;
    struct curl_uv *artifact_curl; /* opened on the first artifact */
    void *artifact_fetches;        /* artifact.c's, in flight */
    struct alloc_gc *gc; /* gc.c; NULL until alloc_gc_start */
    void *templates;     /* template_hook.c: the tasks' template states */
};

/* The built-in catalog changed: templates that read nomadService render
 * again (template_hook.c). */
void alloc_manager_services_changed(struct alloc_manager *m);

/* Loads every allocation from disk and re-attaches to live supervisors;
 * tasks whose supervisor died while the agent was away are handled as if
 * they had just exited (restart policy), never started twice. */
int alloc_manager_open(struct alloc_manager **out,
                       const struct alloc_manager_config *c,
                       struct nc_error *err);
/* Closes loop handles; tasks keep running (they outlive the agent). The
 * manager is freed once the loop has run the close callbacks. */
void alloc_manager_close(struct alloc_manager *m);

/* Starts the network helper ahead of the first bridge allocation, where
 * bridge networking can run here (its plugins present), so that
 * allocation does not wait for it. */
void alloc_manager_prestart_network(struct alloc_manager *m);

/* Brings the job's allocations on this node to what `job` asks: stops
 * those of older versions or surplus indexes, creates and starts missing
 * ones. `job` is copied. */
int alloc_manager_run_job(struct alloc_manager *m, const struct job *job,
                          uint64_t version, struct nc_error *err);
/* Calls cb(arg) once, when no task runs and no network is set up or being
 * torn down (at once if that is already so): how a dev agent waits for its
 * allocations to be gone before it exits. */
void alloc_manager_when_idle(struct alloc_manager *m, void (*cb)(void *arg),
                             void *arg);

/* The registries no longer list the allocation's services: its stop goes
 * on (shutdown_delay, then the kill signal). */
void alloc_manager_deregistered(struct alloc_manager *m, const char *alloc_id);

/* Stops every allocation of the job. */
void alloc_manager_stop_job(struct alloc_manager *m, const char *job_id);

/* `nomclient alloc stop`: stops the allocation in Nomad's order
 * (deregistration, shutdown_delay unless no_shutdown_delay, kill signal)
 * with "alloc is being migrated"; once it is stopped, a replacement (same
 * group and index, PreviousAllocation set, not counted as a reschedule) is
 * placed on this node as Nomad's scheduler would place it elsewhere,
 * unless the node is draining or ineligible. *replaced (optional) tells
 * whether one will be. Returns 0, or -EALREADY when it is already
 * stopping or stopped (nothing is done). */
int alloc_manager_stop_alloc(struct alloc_manager *m, struct alloc *a,
                             bool no_shutdown_delay, bool *replaced);

/* `nomclient node drain -enable`: stops this node's allocations as Nomad's
 * drainer does: service allocations at most migrate.max_parallel per group
 * at a time (each once the previous ones are stopped), batch allocations
 * left to finish until the deadline, system allocations last (never with
 * ignore_system); at the deadline everything left is stopped at once.
 * deadline_ms: > 0 from now, 0 none, < 0 at once (-force). done(arg) is
 * called once every allocation to drain is stopped. A drain in progress is
 * replaced. */
void alloc_manager_drain_start(struct alloc_manager *m, int64_t deadline_ms,
                               bool ignore_system, void (*done)(void *arg),
                               void *arg);
/* Cancels a drain (`-disable`); what it stopped stays stopped. */
void alloc_manager_drain_cancel(struct alloc_manager *m);
/* The node takes placements again: failed allocations whose replacement
 * was held back get their reschedule policy applied. */
void alloc_manager_placements_resumed(struct alloc_manager *m);

/* Finds an allocation by full id or unique prefix (NULL if none or
 * ambiguous; *ambiguous set when several match). */
struct alloc *alloc_manager_find(const struct alloc_manager *m,
                                 const char *id, bool *ambiguous);

/* Restarts a running task (check_restart): the kill signal now, then the
 * task's restart policy decides, as for any exit. `why` becomes the
 * "Restart Signaled" event. Returns 0, or -ENOENT. */
int alloc_manager_restart_task(struct alloc_manager *m, const char *alloc_id,
                               const char *task, const char *why);

/* `nomclient alloc signal`: sends the signal named `sig` ("SIGUSR1",
 * "USR1"; NULL or "": SIGKILL, as Nomad) to the task `task` of a (every
 * running task when task is NULL or ""), through the task's driver, with a
 * "Signaling" event. Returns 0, or -ENOENT (no such task), -EINVAL (an
 * unknown signal) or -ESRCH (the task is not running), err saying so in
 * Nomad's words. */
int alloc_manager_signal(struct alloc_manager *m, struct alloc *a,
                         const char *task, const char *sig,
                         struct nc_error *err);

/* `nomclient alloc restart`: restarts the task `task` of a in place (every
 * running task when NULL or ""; with all_tasks, every task of the
 * allocation, which excludes naming one): "Restart Signaled" ("User
 * requested task to restart"), the kill signal, and a start at once that
 * does not count against the restart policy. Errors as alloc_manager_signal;
 * -EINVAL for a task together with all_tasks. */
int alloc_manager_restart(struct alloc_manager *m, struct alloc *a,
                          const char *task, bool all_tasks,
                          struct nc_error *err);

/* Host ports in use by live allocations, for placement. */
void alloc_manager_used_ports(const struct alloc_manager *m,
                              struct strlist *ports);

/* What the kernel still holds for allocations this node no longer runs:
 * task cgroups, mounts under data_dir/alloc, and supervisors of unknown or
 * stopped allocations. With `clean`, removes them (SIGKILL, unmount,
 * rmdir). Returns {"Cgroups": [...], "Mounts": [...], "Supervisors":
 * [...], "Cleaned": bool}. */
json_t *alloc_manager_leftovers(struct alloc_manager *m, bool clean);

/* Directory layout. Callers free the strings. */
char *alloc_dir_path(const struct alloc_manager *m, const struct alloc *a);
char *alloc_task_dir_path(const struct alloc_manager *m, const struct alloc *a,
                          const char *task);

/* client garbage collection, as Nomad's client GC (client/gc.go):
 * terminal allocations (complete or failed, every task dead, no restart or
 * replacement pending, network down) are destroyed oldest
 * first (by when they ended): their dir tree with any mount left under it,
 * logs included, their network record and, last, their state file; a
 * running allocation is never touched. A pass runs on the gc_interval
 * timer, after an allocation ends, and before a new allocation is made;
 * it collects while the allocations outnumber gc_max_allocs or the
 * data_dir's filesystem is over gc_disk_usage_threshold or
 * gc_inode_usage_threshold. Destroys run on the thread pool, at most
 * gc_parallel_destroys at once. What a collected allocation of the
 * current job version was placed for is remembered (data_dir/client/
 * gc.json), so it is not made again at the next start. */

#define ALLOC_GC_QUEUED 1
#define ALLOC_GC_DESTROYING 2

struct alloc_gc_limits {
    int max_allocs;             /* gc_max_allocs */
    double disk_pct, inode_pct; /* gc_*_usage_threshold */
    int parallel;               /* gc_parallel_destroys */
};

/* The data_dir filesystem's usage, in percent, as Nomad measures it. */
struct alloc_gc_usage {
    bool known; /* statvfs answered */
    double disk_pct, inode_pct;
};

/* Whether the allocation may be collected (its destroy also waits for a
 * save still on its way, which would bring the state file back). */
bool alloc_gc_eligible(const struct alloc *a);
/* When the allocation ended (its last task's end; unix ns), for the order. */
int64_t alloc_gc_ended(const struct alloc *a);

/* The selection of one pass: fills out (room for n) with the allocations
 * to destroy now, oldest ended first, and returns how many. Counted:
 * allocations not already queued or being destroyed (gc_state 0), plus
 * `incoming` about to be made (then only the count matters, as Nomad's
 * MakeRoomFor). Over the disk or inode threshold, up to the free destroy
 * slots (parallel - in_flight) go, the next pass measuring again. reason
 * gets Nomad's words for why (empty when under every limit). */
size_t alloc_gc_select(struct alloc *const *allocs, size_t n,
                       const struct alloc_gc_limits *lim,
                       const struct alloc_gc_usage *u, size_t incoming,
                       size_t in_flight, struct alloc **out, char *reason,
                       size_t reasonlen);

/* Starts the collector of the manager (limits from its config): loads
 * data_dir/client/gc.json and arms the gc_interval timer. */
int alloc_gc_start(struct alloc_manager *m, struct nc_error *err);
/* Closes the timer; destroys in flight finish on the thread pool, and
 * the collector is freed after the last (safe when never started). */
void alloc_gc_stop(struct alloc_manager *m);
/* PUT /v1/client/gc: queues every terminal allocation; returns how many. */
size_t alloc_gc_collect_all(struct alloc_manager *m);
/* PUT /v1/client/allocation/:id/gc: queues `a`; -EBUSY when it is not
 * terminal yet (err in Nomad's words), -EALREADY when already queued. */
int alloc_gc_collect(struct alloc_manager *m, struct alloc *a,
                     struct nc_error *err);
/* `incoming` allocations are about to be made: collects what puts the
 * count over gc_max_allocs. */
void alloc_gc_make_room(struct alloc_manager *m, size_t incoming);
/* An allocation changed: once it is terminal a pass runs soon (coalesced),
 * as Nomad triggers its collector when an allocation ends. */
void alloc_gc_changed(struct alloc_manager *m, const struct alloc *a);
/* Whether a collected allocation had been placed for this group instance
 * of this job version (so it is not made again). */
bool alloc_gc_placed(const struct alloc_manager *m, const char *job_id,
                     const char *group, int index, uint64_t version);
/* Forgets what was collected of the job, but of `keep_version` (pass
 * UINT64_MAX to forget all). */
void alloc_gc_forget_job(struct alloc_manager *m, const char *job_id,
                         uint64_t keep_version);

/* resource usage of an allocation's tasks, in Nomad's
 * AllocResourceUsage shape (/v1/client/allocation/:id/stats).
 *
 * exec tasks are measured through their cgroup (cpuacct/cpu.stat and the
 * memory controller), raw_exec tasks through the processes of their
 * supervisor's session, as Nomad measures raw_exec by process tree. CPU
 * percentages are the usage between two reads at least 100 ms apart, kept
 * per task; nothing is sampled in the background. */

/* Returns {"ResourceUsage", "Tasks": {name: {"ResourceUsage", "Timestamp",
 * "Pids"}}, "Timestamp"}; updates the tasks' CPU samples. New reference. */
json_t *alloc_stats_json(struct alloc *a, const struct node *n);

#endif
