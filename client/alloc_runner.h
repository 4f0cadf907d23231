/* alloc_runner.h - runs this node's allocations on the agent's loop:
 * creates them for placed jobs, sets up directories, ports and networks,
 * starts each task under a detached supervisor, watches supervisors through
 * pidfds, applies restart and reschedule policies, stops allocations, and
 * re-attaches to live supervisors after an agent restart. */
#ifndef NOMCLIENT_ALLOC_RUNNER_H
#define NOMCLIENT_ALLOC_RUNNER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "alloc.h"
#include "config.h"
#include "jobspec.h"
#include "netns/netns.h"
#include "node.h"
#include "util.h"

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
    struct alloc **allocs;
    size_t nallocs, cap;
    uint64_t index;
    bool closing;
};

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

/* Finds an allocation by full id or unique prefix (NULL if none or
 * ambiguous; *ambiguous set when several match). */
struct alloc *alloc_manager_find(const struct alloc_manager *m,
                                 const char *id, bool *ambiguous);

/* Restarts a running task (check_restart): the kill signal now, then the
 * task's restart policy decides, as for any exit. `why` becomes the
 * "Restart Signaled" event. Returns 0, or -ENOENT. */
int alloc_manager_restart_task(struct alloc_manager *m, const char *alloc_id,
                               const char *task, const char *why);

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

#endif
