/* drivers/driver.h - task drivers: how a task of an allocation is run.
 *
 * A driver is a table of operations (struct driver); the allocation runner
 * (client/alloc/) keeps the lifecycle, events, restart policy and network
 * phase, and asks the task's driver to start, recover, signal, stop,
 * measure and clean up the task. Each started task has a handle the driver
 * owns (alloc_task.handle). The driver reports the task's end through
 * driver_env.exited. Code outside this folder finds a driver with
 * driver_find() and never compares a driver's name.
 *
 * exec and raw_exec run the task under `nomclient supervise` (a detached
 * process that outlives the agent); docker talks to the Docker Engine
 * behind the same table. */
#ifndef NOMCLIENT_DRIVERS_DRIVER_H
#define NOMCLIENT_DRIVERS_DRIVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "client/alloc/alloc.h"
#include "client/config.h"
#include "client/node/node.h"
#include "client/util.h"

struct driver;

/* How a task ended, as its driver saw it. */
struct driver_exit {
    bool have_status; /* false: the driver could not tell (no record) */
    int exit_code, signal;
    const char *failure; /* the task could not start: why (else NULL) */
    bool oom_killed;
};

/* What the agent gives every driver; one per allocation manager. */
struct driver_env {
    uv_loop_t *loop;
    const struct agent_config *cfg;
    const struct node *node;
    const char *self_exe;   /* the nomclient binary */
    const char *alloc_root; /* data_dir/alloc */
    /* the task's process is gone (after start or recover); also the end
     * of a start that returned DRIVER_STARTING and failed (res->failure) */
    void (*exited)(struct alloc_task *t, const struct driver_exit *res);
    /* a start (or release) that returned DRIVER_STARTING is done: the task
     * runs (t->supervisor_pid set) */
    void (*started)(struct alloc_task *t);
    /* a task event of the driver's ("Driver": "Downloading image") */
    void (*event)(struct alloc_task *t, const char *type, const char *msg);
};

/* start or release: the driver goes on starting the task in the
 * background (pulling an image, creating a container) and reports
 * env->started or env->exited later. A stop meanwhile cancels the start:
 * the driver then reports exited. */
#define DRIVER_STARTING 1

/* A task's resource usage (cumulative counters). */
struct driver_usage {
    uint64_t cpu_ns, user_ns, system_ns;
    uint64_t mem_usage, mem_max_usage, mem_rss, mem_cache, mem_swap; /* bytes */
    int pids;
    bool have_cpu, have_mem;
};

/* A command run inside a task by a driver's exec (see struct driver).
 * Each driver embeds this first in its own run. cancel kills the
 * command's process group; `done` is then not called; the run is freed by
 * the driver once the process is reaped. */
struct driver_exec {
    void (*cancel)(struct driver_exec *x);
};

#define DRIVER_EXEC_OUTPUT_MAX 4096 /* as Nomad's executor: the last 4 KiB */

/* How a command run by a driver's exec ended: exit_code -1 when it did
 * not exit by itself (killed by `signal`, timed out, or never ran: then
 * `error` says why, else NULL). `output` (NUL-terminated, may hold NULs)
 * is valid during the callback only. */
typedef void (*driver_exec_done_fn)(void *arg, int exit_code, int signal,
                                    bool timed_out, const char *output,
                                    size_t output_len, const char *error);

/* Whether the allocation `alloc_id` runs the task `task` (NULL: any task)
 * right now, for leftovers. */
typedef bool (*driver_owned_fn)(const char *alloc_id, const char *task,
                                void *arg);

/* An interactive command in a running task (`alloc exec`), started by a
 * driver's exec_session in the task's namespaces, root, cgroup, user,
 * capabilities and environment (docker: the Engine's exec), with its
 * stdin, stdout and stderr as pipes, or one terminal with `tty`. Nothing
 * blocks the loop and no callback runs from within exec_session. */
struct driver_session;
struct driver_session_cb {
    /* Output of stream 1 (stdout; with tty, the terminal) or 2 (stderr);
     * n == 0: that stream has ended. */
    void (*output)(void *arg, int stream, const char *p, size_t n);
    /* The command's end, after all its output: exit_code is its status,
     * 128 + the signal that killed it, or -1 with `error` saying why it
     * could not run or be waited for (else NULL). The session is freed by
     * the driver after this returns. */
    void (*exited)(void *arg, int exit_code, const char *error);
    /* Optional: everything `write` queued has reached the command. */
    void (*drained)(void *arg);
};
struct driver_session_ops {
    /* Queues bytes for the command's stdin: returns the bytes queued and
     * not yet taken (for pacing the sender), or -EPIPE once stdin is
     * closed or the command is gone. */
    long (*write)(struct driver_session *s, const char *p, size_t n);
    /* Ends stdin once what was queued is written (with tty: ^D). */
    void (*close_stdin)(struct driver_session *s);
    /* The terminal's size (tty only; ignored otherwise). */
    void (*resize)(struct driver_session *s, int width, int height);
    /* Stops (true) or resumes reading the command's output, for a client
     * slower than the command; the command then blocks on its writes. */
    void (*pause_output)(struct driver_session *s, bool pause);
    /* Kills the command; no callback after (the driver frees the
     * session once the command is reaped). */
    void (*cancel)(struct driver_session *s);
};
struct driver_session {
    const struct driver_session_ops *ops;
};

struct driver {
    const char *name;
    /* Fills the node's entry for this driver and its driver.* attributes. */
    void (*fingerprint)(const struct driver *d, const struct agent_config *cfg,
                        struct node *n);
    /* Sets the defaults of its plugin config in cfg (dev: `agent -dev`). */
    void (*config_defaults)(struct agent_config *cfg, bool dev);
    /* Keys of plugin "<name>" { config { ... } }; NULL: any (kept opaque). */
    const struct config_key *plugin_keys;
    size_t nplugin_keys;
    /* Checks a task's driver config at submission (unknown keys, types,
     * what the plugin config forbids): 0, or -EINVAL with err saying what
     * and where from the config down ("config > cap_add: ..."). cfg NULL:
     * only what does not depend on the agent's config (the CLI, before
     * the job reaches an agent). NULL: nothing to check. */
    int (*validate)(const struct agent_config *cfg, const struct task *spec,
                    struct nc_error *err);
    /* Files the driver writes for a task before it starts, made ahead on
     * the thread pool with the task's dirs (paths are added to files). */
    void (*task_files)(const struct driver_env *env, const struct alloc_task *t,
                       struct strlist *files);
    /* Starts the task. With wait_net, the task is prepared beside the
     * allocation's network set-up and runs only on release (abort: never).
     * On failure, *event is the task event's type ("Driver Failure",
     * "Setup Failure") and err says why. */
    int (*start)(const struct driver_env *env, struct alloc_task *t,
                 bool wait_net, const char **event, struct nc_error *err);
    /* The network is ready: the prepared task runs, with the final
     * environment (the allocation's address). */
    int (*release)(const struct driver_env *env, struct alloc_task *t,
                   struct nc_error *err);
    /* The network will not come: the prepared task ends without running. */
    void (*abort)(struct alloc_task *t);
    /* After an agent restart: re-attaches to the task if it still runs
     * (true, t->supervisor_pid set). Otherwise false; for a task that
     * was running (`ran`), its end as recorded goes to env->exited. */
    bool (*recover)(const struct driver_env *env, struct alloc_task *t,
                    bool ran);
    /* Sends signal `sig` to the task. 0, or -errno with err set. */
    int (*signal)(struct alloc_task *t, int sig, struct nc_error *err);
    /* Stops the task: its kill_signal, then SIGKILL after kill_timeout
     * (the driver sees to it even if the agent goes away). */
    void (*stop)(struct alloc_task *t);
    /* The task's usage now; -errno when it cannot be read. */
    int (*stats)(const struct driver_env *env, const struct alloc_task *t,
                 struct driver_usage *u);
    /* Removes what the driver left for a task that ended without running. */
    void (*destroy)(const struct driver_env *env, struct alloc_task *t);
    /* Starts argv inside the running task (script checks): its
     * namespaces, root, cgroup, user, capabilities, environment and
     * working dir, stdout and stderr captured together. Never blocks the
     * loop: `done` runs later (never from within) with the exit code and
     * the last DRIVER_EXEC_OUTPUT_MAX bytes of output; after timeout_ns
     * the command's process group is killed (timed_out). *out is the run
     * until `done` runs, for its cancel. 0, or -errno with err set (no
     * callback then). NULL: the driver cannot. */
    int (*exec)(const struct driver_env *env, struct alloc_task *t,
                char *const argv[], int64_t timeout_ns, driver_exec_done_fn done,
                void *arg, struct driver_exec **out, struct nc_error *err);
    /* Forgets the handle's loop resources (the agent is closing; the task
     * keeps running). */
    void (*detach)(struct alloc_task *t);
    /* What this driver left on the host for tasks nobody runs: adds arrays
     * to out (exec: "Cgroups", "Supervisors"); with clean, removes them. */
    void (*leftovers)(const struct driver_env *env, driver_owned_fn owned,
                      void *arg, bool clean, json_t *out);
    /* Nomad's network manager: makes what holds a bridge-mode
     * allocation's namespace (docker: the pause container) before its
     * set-up, records it in a->net_driver ({"Driver": name, ...}) and calls
     * done with the pid whose /proc/<pid>/ns/net the CNI chain runs in, or
     * with an error. Once a->net_driver is recorded, a restarted agent
     * calls it again to find the holder (the same pid, or a new holder
     * when it is gone). NULL: the netns helper makes the namespace. 0, or
     * -errno with err set (done is not called then). */
    int (*net_create)(const struct driver_env *env, struct alloc *a,
                      void (*done)(struct alloc *a, int pid, const char *error),
                      struct nc_error *err);
    /* After the allocation's teardown: removes the holder (a->net_driver). */
    void (*net_destroy)(const struct driver_env *env, struct alloc *a);
    /* An interactive command in the running task (`alloc exec`); see
     * struct driver_session below. NULL: the driver cannot. */
    int (*exec_session)(const struct driver_env *env, struct alloc_task *t,
                        char *const argv[], bool tty,
                        const struct driver_session_cb *cb, void *arg,
                        struct driver_session **out, struct nc_error *err);
    /* The task sees the host's filesystem (raw_exec): `alloc exec` then
     * needs alloc-node-exec beside alloc-exec, as with Nomad. */
    bool no_fs_isolation;
};

/* The driver called `name`, or NULL when this node has none such. */
const struct driver *driver_find(const char *name);
/* The driver of a task of the job (its `driver` field), or NULL. */
const struct driver *driver_of(const struct task *spec);

/* Fingerprints every driver into n (drivers, driver.* attributes), with
 * an entry for the drivers Nomad has that nomclient lacks. */
void drivers_fingerprint(const struct agent_config *cfg, struct node *n);
/* The agent's loop runs: drivers start what they watch on it (docker:
 * its fingerprint every 30 s, updating n and adding node events when its
 * health changes, and its dangling containers' reaper). drivers_stop
 * ends that and every call in flight, after the allocations were closed
 * (their tasks detached). */
void drivers_start(uv_loop_t *loop, const struct agent_config *cfg,
                   struct node *n);
void drivers_stop(void);
/* Every driver's plugin config defaults into cfg. */
void drivers_config_defaults(struct agent_config *cfg, bool dev);
/* Frees what every driver's plugin keys hold in cfg (config_free). */
void drivers_config_free(struct agent_config *cfg);
/* Runs the validate op of each task's driver (tasks of drivers this node
 * lacks are left to placement). The message names the task as the job
 * validator does: `group "web" > task "nginx" > config: unknown key
 * "comand" (did you mean "command"?)`; several tasks' errors are joined
 * as Nomad's multierror ("2 errors occurred:\n\t* ..."). cfg NULL as
 * for the op. 0, or -EINVAL. */
int drivers_validate_job(const struct agent_config *cfg, const struct job *job,
                         struct nc_error *err);
/* Lists what every driver left behind (see struct driver's leftovers). */
void drivers_leftovers(const struct driver_env *env, driver_owned_fn owned,
                       void *arg, bool clean, json_t *out);

/* Resolves a signal name ("SIGUSR1", "usr1") to its number; -1 if
 * unknown. NULL or "" is SIGTERM. */
int driver_signal_number(const char *name);

/* Entry point of `nomclient supervise SPEC` (the exec drivers' task
 * process); returns the process exit code. */
int supervisor_main(int argc, char **argv);

#endif
