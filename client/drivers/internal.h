/* drivers/internal.h - what the drivers' files share; not a public
 * API (client/drivers/driver.h is): the task supervisor's spec and entry
 * point, task cgroups, and the exec driver's capabilities. */
#ifndef NOMCLIENT_DRIVERS_INTERNAL_H
#define NOMCLIENT_DRIVERS_INTERNAL_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "client/drivers/driver.h"
#include "client/util.h"

/* the small process that runs one task, as a container
 * runtime's shim does. The agent starts `nomclient supervise SPEC` detached;
 * the supervisor outlives agent restarts, so tasks keep running while the
 * agent is upgraded or crashes.
 *
 * SPEC is a JSON file written by the agent (see supervisor_spec below for the
 * fields). The supervisor:
 *   - becomes a session leader and child subreaper;
 *   - places the task in its own cgroup with the spec's limits;
 *   - forks the task, which joins the allocation's network namespace,
 *     unshares a mount namespace (and IPC, UTS), builds its chroot (exec
 *     isolation), drops capabilities, switches user and execs; with a
 *     private PID namespace the forked child is its PID 1 and stays as a
 *     small init, the task its child;
 *   - copies stdout/stderr into rotated files under the alloc's logs dir;
 *   - forwards SIGTERM/SIGINT as the task's kill signal and sends SIGKILL to
 *     the whole cgroup after the kill timeout;
 *   - writes the exit status atomically to StatusFile, then exits.
 * It links nothing the agent's event loop needs and allocates only at
 * start, so it stays well under 1 MB of private memory. */

/* Sent to a supervisor with a signal's number as its value (sigqueue):
 * the supervisor passes that signal to the task. A supervisor that does
 * writes this word after its pid in its lock file. */
#define SUPERVISOR_SIGNAL_FORWARD (SIGRTMIN + 1)
#define SUPERVISOR_FORWARDS_MARK "signals"

struct supervisor_mount {
    char *source;      /* host path */
    char *destination; /* inside the task root */
    bool read_only;
};

struct supervisor_spec {
    char *alloc_id, *task;
    char *command;
    struct strlist args;
    struct kvlist env;
    char *user;       /* NULL: run as the agent's user */
    char *task_dir;   /* absolute; the chroot for exec isolation */
    char *alloc_dir;  /* shared alloc/ dir, mounted at /alloc */
    char *status_file; /* where the exit status goes, outside the task's view */
    bool chroot;      /* exec (true) or raw_exec (false) */
    struct kvlist chroot_env; /* host path -> path inside the chroot */
    char *netns;      /* /run/netns/NAME, or NULL for the host's */
    int wait_fd;      /* >= 0: an inherited pipe; the task waits for a byte
                         on it (network ready) before joining netns and
                         exec; EOF aborts it. -1: no wait */
    struct supervisor_mount *mounts;
    size_t nmounts;
    char *cgroup;     /* relative name, e.g. "nomclient/<alloc>.<task>" */
    int cpu_shares;   /* MHz from resources.cpu, used as relative weight */
    int64_t memory_mb, memory_max_mb;
    struct strlist caps; /* "CAP_CHOWN", ...: the set the task keeps */
    char *log_dir;
    int log_max_files;
    int64_t log_max_file_bytes;
    int kill_signal;
    int64_t kill_timeout_ns;
    /* exec isolation beyond the chroot, as Nomad's exec gives it */
    bool pid_private;   /* "PidMode" "private": the task under a small init,
                           PID 1 of a PID namespace of its own */
    bool ipc_private;   /* "IpcMode" "private": an IPC namespace of its own */
    bool logs_disabled; /* logs { disabled }: output to /dev/null, no files */
    char *hostname;     /* NULL: the host's; else a UTS namespace with it */
    char *hosts_address; /* with hostname: /etc/hosts as Nomad writes it,
                            naming this address (the allocation's) */
    bool dns;           /* the group's dns block: /etc/resolv.conf from it */
    struct strlist dns_servers, dns_searches, dns_options;
};

/* The sigqueue value that asks a task's init (pid_private) to pass the
 * signal to the task's process group rather than to the task alone. */
#define SUPERVISOR_INIT_TO_GROUP 1

/* Decodes a spec (as written by supervisor_spec_to_json). */
int supervisor_spec_from_json(const json_t *j, struct supervisor_spec *s,
                              struct nc_error *err);
/* Encodes a spec; returns a new reference. */
json_t *supervisor_spec_to_json(const struct supervisor_spec *s);
void supervisor_spec_free(struct supervisor_spec *s);



/* one cgroup per task, on cgroup v2 (unified) and v1/hybrid
 * hosts. Used by the task supervisor; the agent uses the listing and
 * removal helpers to clean up cgroups no allocation owns. */

/* Root under which every task cgroup lives: <mount>/<CGROUP_PARENT>/<name>. */
#define CGROUP_PARENT "nomclient"

struct cgroup {
    bool v2;
    char *name;            /* "<alloc>.<task>", below CGROUP_PARENT */
    char *paths[5];        /* v2: paths[0]; v1: one per controller */
    size_t npaths;
};

/* Which hierarchy the host uses: "v2" when /sys/fs/cgroup is unified,
 * "v1" otherwise (hybrid hosts keep controllers on v1). */
const char *cgroup_version(void);

/* Creates the task's cgroup with its limits: cpu weight from `cpu_shares`
 * (MHz, as Nomad), memory limit `memory_mb`, or soft `memory_mb` + hard
 * `memory_max_mb` when the latter is set. err gets "what: path: why". */
int cgroup_create(struct cgroup *cg, const char *name, int cpu_shares,
                  int64_t memory_mb, int64_t memory_max_mb, char *err,
                  size_t errlen);
/* Moves `pid` into the cgroup. */
int cgroup_add(struct cgroup *cg, pid_t pid, char *err, size_t errlen);
/* SIGKILLs every process in the cgroup (cgroup.kill where available). */
void cgroup_kill(struct cgroup *cg);
/* Whether the kernel OOM-killed a process of this cgroup. */
bool cgroup_oom_killed(const struct cgroup *cg);
/* Kills what is left, removes the directories and frees cg. */
void cgroup_destroy(struct cgroup *cg);

/* Reads the counters of the task cgroup `name`; -ENOENT when absent. */
int cgroup_read_stats(const char *name, struct driver_usage *st);

/* Removes the cgroup `name` (as created above) if it exists: for cleaning
 * leftovers. Returns 0, -ENOENT when absent, or -errno. */
int cgroup_remove(const char *name);
/* Calls fn for each existing task cgroup name under CGROUP_PARENT. */
int cgroup_list(void (*fn)(const char *name, void *arg), void *arg);

/* the exec driver's Linux capabilities, computed as Nomad does:
 * the task gets (Nomad's defaults ∩ allow_caps) minus cap_drop plus
 * cap_add, and every cap_add must be in allow_caps (the exec plugin's
 * config; Nomad's defaults when unset), so a job cannot grant itself what
 * the operator did not allow. Names are taken in any case, with or without
 * "CAP_"; "all" is every capability the kernel has. */

/* Nomad's default set for exec, as "CAP_X" names, NULL-terminated. */
extern const char *const caps_nomad_defaults[];

/* Parses one name (or "all") into bits of a mask: 0, or -EINVAL. */
int caps_parse(const char *name, uint64_t *mask);
/* A config key's check (struct config_key): a capability caps_parse
 * knows, else -EINVAL with msg saying so. */
int caps_check_name(const char *name, char *msg, size_t msglen);

/* The task's capabilities into out ("CAP_X", in name order). allow NULL:
 * Nomad's defaults. -EPERM with msg "driver does not allow the following
 * capabilities: net_raw, sys_admin" when cap_add asks for more than allow,
 * -EINVAL with msg naming an unknown capability. */
int caps_calculate(const struct strlist *allow, const struct strlist *add,
                   const struct strlist *drop, struct strlist *out, char *msg,
                   size_t msglen);

/* ---- a command inside a running exec or raw_exec task (exec.c): script
 * checks (driver.exec) and `alloc exec` (exec_session.c). The plan holds
 * what the command joins (the task's namespaces, root, cgroups,
 * credentials and capabilities, read from /proc/<task>) and its stdio;
 * exec_plan_spawn starts it as the agent's child without copying the
 * agent's memory (see exec.c). ---- */

#define EXEC_MAX_NS 6
#define EXEC_MAX_CG 16
#define EXEC_MAX_GROUPS 64

struct exec_plan {
    int ns_fd[EXEC_MAX_NS], ns_type[EXEC_MAX_NS], nns;
    int root_fd; /* the task's root, or -1 */
    const char *cwd;
    int cg_fd[EXEC_MAX_CG], ncg; /* cgroup.procs files to join */
    bool set_creds, no_new_privs;
    uid_t uid[3];
    gid_t gid[3];
    gid_t groups[EXEC_MAX_GROUPS];
    int ngroups;
    uint64_t cap_bnd, cap_eff, cap_prm, cap_inh, cap_amb;
    int null_fd;  /* /dev/null, opened by exec_plan_prepare */
    int stdio[3]; /* the command's fds 0, 1, 2 (the caller's to close) */
    bool tty;     /* stdio[0] is a terminal: a session with it as its
                     controlling terminal (else a process group) */
    char *const *argv;
    char *const *envp;
    const char *path; /* PATH to search argv[0] in */
    char *stack2;
    /* written by the children */
    volatile int pid;
    volatile int err;
    volatile const char *step;
};

/* The command's interpolated argv and the task's environment, owned. */
struct exec_cmd {
    char **args, **envp;
    size_t argc;
    struct kvlist env;
    char *alloc_dir, *task_dir;
};

/* Plans argv inside the running task t (cwd: / in exec's chroot, the task
 * dir for raw_exec), its ${NOMAD_*} references replaced when `interpolate`
 * (a script check's, as Nomad; not `alloc exec`'s); the caller sets
 * p->stdio (and tty) next. 0, or -errno with err ("task \"x\" is not
 * running"). Release p and cmd in any case. */
int exec_plan_prepare(const struct driver_env *env, struct alloc_task *t,
                      char *const argv[], bool interpolate,
                      struct exec_plan *p, struct exec_cmd *cmd,
                      struct nc_error *err);
/* Starts the planned command: its pid (the agent's child, leading its own
 * process group or session), or -errno with err (what failed, as
 * `exec: "x": executable file not found in $PATH`). */
int exec_plan_spawn(struct exec_plan *p, struct nc_error *err);
void exec_plan_release(struct exec_plan *p, struct exec_cmd *cmd);

/* exec and raw_exec's exec_session (exec_session.c). */
int exec_session_start(const struct driver_env *env, struct alloc_task *t,
                       char *const argv[], bool tty,
                       const struct driver_session_cb *cb, void *arg,
                       struct driver_session **out, struct nc_error *err);

/* `alloc exec` in a docker task (docker_exec.c), through the Engine API
 * at `endpoint` ("unix:///var/run/docker.sock"): POST
 * /containers/{id}/exec, then /exec/{id}/start upgraded to the raw
 * stream on a connection of its own (demultiplexed without tty), resize
 * through /exec/{id}/resize, the exit code from /exec/{id}/json once the
 * stream ends. `user` may be NULL. Failures of the Engine come later
 * through cb->exited's error, in Nomad's words ("failed to create exec
 * object: ..."); only a bad argument or endpoint fails at once. The
 * docker driver's table points exec_session at a wrapper that passes its
 * loop, endpoint, the task's container id and user. */
int docker_exec_session(uv_loop_t *loop, const char *endpoint,
                        const char *container_id, const char *user,
                        char *const argv[], bool tty,
                        const struct driver_session_cb *cb, void *arg,
                        struct driver_session **out, struct nc_error *err);

#endif
