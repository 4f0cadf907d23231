/* alloc.h - allocations on this node: one per group instance of a placed
 * job, each with its task directory tree, network, tasks under supervisors,
 * restart policy and a durable state file (data_dir/client/allocs/<id>.json,
 * written atomically on every change).
 *
 * Life of an allocation: pending -> running -> complete | failed. Each task
 * runs under `nomclient supervise` (supervisor.h), started detached, so it
 * outlives agent restarts; the agent watches supervisors through pidfds and
 * re-attaches to them after a restart instead of starting tasks again. A
 * supervisor holds an flock on its lock file for its whole life, which is
 * how a restarted agent tells a live task from a dead one even when it was
 * killed between spawning the supervisor and recording its pid. */
#ifndef NOMCLIENT_ALLOC_H
#define NOMCLIENT_ALLOC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "jobspec.h"
#include "node.h"
#include "util.h"

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
    int supervisor_pid;
    int exit_code, signal;

    /* runtime, not persisted */
    struct alloc *alloc;
    uv_poll_t *watch;      /* pidfd of the supervisor */
    uv_process_t *proc;    /* the supervisor, when this agent spawned it */
    uv_timer_t *timer;     /* restart delay */
    /* started while the allocation's network is set up: its supervisor
     * waits for a byte on this pipe before the task joins the namespace */
    int net_go_fd;
    bool net_waiting;
    bool aborting; /* its supervisor exits without starting the task */
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
};

/* Encodes an allocation in Nomad's API shape (Allocation). */
json_t *alloc_to_json(const struct alloc *a);
/* The shorter AllocListStub shape used by list endpoints. */
json_t *alloc_stub_to_json(const struct alloc *a);
/* Decodes what alloc_to_json wrote (the durable state form). */
int alloc_from_json(const json_t *j, struct alloc **out, struct nc_error *err);
void alloc_free(struct alloc *a);

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

#endif
