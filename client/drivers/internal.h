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

/* Reads the counters of the task cgroup `name` ("/a/b": that path below
 * the hierarchy's root instead); -ENOENT when absent. */
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

/* ---- docker ------------------------------------------------------------
 * The docker driver (docker*.c) talks to the Engine API (docker_api.h) on
 * the agent's loop: one client per agent, one handle per task
 * (docker_task.c), images shared and reference-counted across tasks
 * (docker_image.c), each task's output copied from the Engine's log
 * stream into the same rotated files as exec's (docker_logs.c), the
 * pause container of a bridge allocation (docker_net.c), usage from the
 * container's cgroup (docker_stats.c), script checks through the
 * Engine's exec API (docker_run.c), and the dangling containers' reaper
 * and leftovers (docker_reap.c). Every state is the loop's: no locks. */

struct docker_api;
struct docker_call;
struct docker_task;
struct docker_reply;
struct docker_pause;
struct docker_image_req;

/* The label every container of ours carries (Nomad's). */
#define DOCKER_LABEL_ALLOC_ID "com.hashicorp.nomad.alloc_id"
#define DOCKER_PAUSE_PREFIX "nomad_init_"

/* What holds a container name an allocation wanted (the inspect after a
 * 409 on create): nothing any more, another allocation's container, or
 * this allocation's, running, made but never started, or dead. A failed
 * inspect other than 404 is the caller's to report first. *id: the
 * container's id (borrowed from r). */
enum docker_name_holder {
    DOCKER_NAME_GONE,
    DOCKER_NAME_FOREIGN,
    DOCKER_NAME_RUNNING,
    DOCKER_NAME_CREATED,
    DOCKER_NAME_DEAD,
};
enum docker_name_holder docker_name_holder(const struct docker_reply *r,
                                           const char *alloc_id,
                                           const char **id);
/* a bounded wait for an ordinary call (inspect, kill, remove); create and
 * start may copy a root filesystem (vfs) and get longer */
#define DOCKER_CALL_TIMEOUT_MS 30000
#define DOCKER_CREATE_TIMEOUT_MS 120000

/* What the driver takes from the plugin config (docker_config.h), read in
 * one place (docker.c). */
struct docker_settings {
    const char *endpoint;
    bool gc_image, gc_container;
    int64_t image_delay_ns;
    bool dangling_enabled, dangling_dry_run;
    int64_t dangling_period_ns, dangling_grace_ns;
    const char *infra_image;
    int64_t infra_pull_timeout_ns;
    int64_t pull_activity_timeout_ns;
    bool volumes_enabled, allow_privileged;
};

/* The driver's state, one per agent process. */
struct docker_driver {
    uv_loop_t *loop;
    const struct agent_config *cfg;
    struct node *node;       /* the agent's, for the fingerprint; or NULL */
    struct docker_api *api;  /* opened on first use */
    struct docker_settings set;
    bool closing;
    struct docker_task *tasks;   /* every task handle */
    struct docker_pause *pauses; /* docker_net.c */
    void *images;                /* docker_image.c */
    void *fp;                    /* docker.c: the periodic fingerprint */
    void *reaper;                /* docker_reap.c */
};
extern struct docker_driver docker_driver_state;

/* docker.c: makes the driver's state for this loop and config (the first
 * caller wins; a later one with another loop is refused); fills err. */
int docker_driver_setup(uv_loop_t *loop, const struct agent_config *cfg,
                        struct nc_error *err);
/* The Engine API client, opened on first use; NULL with err set. */
struct docker_api *docker_api_get(struct nc_error *err);
/* Whether the last fingerprint reached the daemon (or none ran yet). */
bool docker_driver_healthy(void);
/* A call's reply that tells the daemon went away (or came back) while the
 * node says otherwise: the fingerprint runs now rather than in 30 s. */
struct docker_reply;
void docker_driver_saw(const struct docker_reply *r);
/* Starts the fingerprint timer and the reaper (drivers_start), and stops
 * them and every call in flight (drivers_stop). */
void docker_driver_start(uv_loop_t *loop, const struct agent_config *cfg,
                         struct node *n);
void docker_driver_stop(void);
/* "unix:///x" endpoints: whether something accepts connections there now
 * (a non-blocking connect, no libcurl); true for other endpoints. why
 * gets strerror on false. */
bool docker_endpoint_listening(const char *endpoint, char *why, size_t whylen);

/* The start time of pid (/proc/<pid>/stat field 22, clock ticks since
 * boot): 0 when the process is gone. A recorded pid is the same process
 * only while this matches. */
uint64_t docker_pid_start_time(int pid);

/* docker_image.c: an image for a task or a pause container, inspected,
 * loaded from a tarball or pulled (once for every concurrent asker), its
 * id held by `owner` until released. */
struct docker_image_opts {
    const char *image;      /* "busybox:1", "127.0.0.1:5000/x/y@sha256:..." */
    const char *owner;      /* who holds the reference: "<alloc>/<task>" */
    bool force_pull;
    const char *load_path;  /* a tarball to POST /images/load, or NULL */
    int64_t pull_timeout_ns;   /* image_pull_timeout; 0: none */
    const struct task *spec;   /* for the task's auth block; may be NULL */
    /* "Downloading image", pull progress and the warning of a failed pull
     * that goes on with the local image */
    void (*event)(void *arg, const char *type, const char *msg);
};
/* done: image_id, or error (the task event's message). Called later,
 * never from within docker_image_get, and not after a cancel. */
typedef void (*docker_image_done_fn)(void *arg, const char *image_id,
                                     const char *error);
int docker_image_get(const struct docker_image_opts *o,
                     docker_image_done_fn done, void *arg,
                     struct docker_image_req **out, struct nc_error *err);
void docker_image_cancel(struct docker_image_req *r);
/* Takes a reference (a recovered task's image) / drops one: the image is
 * removed image_delay after its last reference goes, with gc.image. */
void docker_image_hold(const char *image_id, const char *owner);
void docker_image_release(const char *image_id, const char *owner);
/* References held, for tests. */
size_t docker_image_refs(const char *image_id);
void docker_images_close(void);

/* docker_logs.c: copies a container's output into the task's rotated
 * files, following the stream, from the last timestamp it wrote (kept in
 * pos_file) so a reconnect (a daemon or agent restart) neither loses nor
 * repeats lines. ended() runs once the container's stream is over (it
 * stopped) or the copier gave up; never from within start. */
struct docker_logs;
struct docker_logs_opts {
    const char *container_id;
    bool tty;               /* raw stream, else multiplexed */
    const char *log_dir, *task;
    int max_files;
    int64_t max_file_bytes;
    const char *pos_file;   /* where the last timestamp is kept */
    void (*ended)(void *arg);
    void *arg;
};
int docker_logs_start(struct docker_logs **out, const struct docker_logs_opts *o,
                      struct nc_error *err);
/* Stops following (files closed, calls cancelled) and frees it. */
void docker_logs_stop(struct docker_logs *l);
/* Whether the stream is over (the container stopped and all was copied). */
bool docker_logs_done(const struct docker_logs *l);
/* The parser behind it, for tests: feed the stream's bytes; writes the
 * payloads without their timestamps and keeps the newest timestamp. */
struct docker_log_parser {
    bool tty;
    unsigned char hdr[8];
    size_t have;      /* header bytes */
    uint32_t left;    /* payload bytes of the current frame */
    int stream;       /* 1 stdout, 2 stderr, 3 the daemon's own */
    bool at_start[3]; /* the next byte of stream 1/2 starts a message */
    char ts[40];      /* a timestamp being read */
    size_t tslen;
    bool skipping;    /* a message at or before `since`: dropped */
    int64_t last_ts;  /* unix ns of the newest message written */
    int64_t since;    /* messages at or before it were written already */
    void (*out)(void *arg, int stream, const char *p, size_t n);
    void *arg;
};
void docker_log_parser_init(struct docker_log_parser *p, bool tty,
                            int64_t since,
                            void (*out)(void *arg, int stream, const char *p,
                                        size_t n),
                            void *arg);
/* 0, or -EPROTO on a stream that is not what it should be. */
int docker_log_parser_feed(struct docker_log_parser *p, const char *data,
                           size_t n);

/* docker_net.c: the pause container (driver ops net_create/net_destroy);
 * tracked containers for the reaper */
int docker_net_create(const struct driver_env *env, struct alloc *a,
                      void (*done)(struct alloc *a, int pid, const char *error),
                      struct nc_error *err);
void docker_net_destroy(const struct driver_env *env, struct alloc *a);
/* The pause container's id of a bridge allocation a docker task joins, or
 * NULL (none recorded). */
const char *docker_net_pause_id(const struct alloc *a);
bool docker_net_tracked(const char *container_id);
/* The pause container recorded in a->net_driver is this agent's to keep
 * (a restarted agent re-attaching the group's tasks, whose network is
 * ready: net_create is not asked again), for the reaper and the image's
 * reference. */
void docker_net_adopt(const struct alloc *a);
void docker_net_close(void);

/* docker_task.c: a task's container */
struct docker_task {
    struct docker_task *next, **pprev; /* docker_driver_state.tasks */
    const struct driver_env *env;
    struct alloc_task *t;
    char *key;           /* "<alloc>/<task>", the image reference's owner */
    char *name;          /* "<task>-<alloc>" */
    char *container_id;  /* once created (or found) */
    char *image, *image_id;
    char *record_path;   /* .nomclient/<task>.docker.json */
    char *pos_path;      /* .nomclient/<task>.docker-logs */
    char *cgroup;        /* "/docker/<id>" under each controller, or NULL */
    int pid;
    uint64_t pid_start;
    bool tty;
    int phase;           /* docker_task.c's enum */
    bool wait_net, released, stop_asked, stop_sent, report_pending;
    bool exit_inspected, removing; /* steps of the exit */
    int attempts;        /* create/start retries */
    char *failure;       /* an image failure before the release */
    struct docker_image_req *image_req;
    struct docker_call *call;      /* the step in flight */
    struct docker_call *wait_call; /* POST /wait */
    struct docker_call *stop_call;
    struct docker_call *signal_call;
    struct docker_logs *logs;
    uv_timer_t *timer;      /* retries, the logs' drain, the report */
    uv_timer_t *kill_timer; /* kill_signal: stop?t=0 after kill_timeout */
    int wait_failures;
    struct driver_exit res;
    char failure_buf[1024];
    /* stats (docker_stats.c): the Engine's answer when no cgroup is read */
    struct driver_usage usage;
    uint64_t usage_at_ns, usage_asked_ns;
    struct docker_call *stats_call;
    json_t *calls; /* the start's Engine calls, timed (docker_task.c) */
    json_t *timings; /* once it runs: DriverState.Timings */
    uint64_t start_ns, release_ns, engine_us;
};
/* The driver's operations (struct driver). */
int docker_start(const struct driver_env *env, struct alloc_task *t,
                 bool wait_net, const char **event, struct nc_error *err);
int docker_release(const struct driver_env *env, struct alloc_task *t,
                   struct nc_error *err);
void docker_abort(struct alloc_task *t);
bool docker_recover(const struct driver_env *env, struct alloc_task *t,
                    bool ran);
int docker_signal(struct alloc_task *t, int sig, struct nc_error *err);
void docker_stop(struct alloc_task *t);
void docker_destroy(const struct driver_env *env, struct alloc_task *t);
void docker_detach(struct alloc_task *t);
/* Whether the container id belongs to a task this agent runs now. */
bool docker_task_tracked(const char *container_id);
/* Whether some task or pause container of allocation `alloc_id` is known
 * to this agent. */
bool docker_alloc_known(const char *alloc_id);
void docker_tasks_close(void);

/* docker_stats.c */
int docker_task_stats(const struct driver_env *env, const struct alloc_task *t,
                      struct driver_usage *u);
/* The container's cgroup path below each v1 controller (or the v2 root)
 * as /proc/<pid>/cgroup names it; NULL when unknown. Caller frees. */
char *docker_cgroup_of(int pid);

/* docker_run.c: a command in a running container (script checks) */
int docker_task_exec(const struct driver_env *env, struct alloc_task *t,
                     char *const argv[], int64_t timeout_ns,
                     driver_exec_done_fn done, void *arg,
                     struct driver_exec **out, struct nc_error *err);

/* `alloc exec` in the task's container: docker_exec_session with the
 * driver's loop, endpoint, the container and the task's user. */
int docker_task_exec_session(const struct driver_env *env, struct alloc_task *t,
                             char *const argv[], bool tty,
                             const struct driver_session_cb *cb, void *arg,
                             struct driver_session **out, struct nc_error *err);

/* docker_reap.c */
void docker_reaper_start(void);
void docker_reaper_stop(void);
void docker_leftovers(const struct driver_env *env, driver_owned_fn owned,
                      void *arg, bool clean, json_t *out);
/* Whether a listed container (GET /containers/json's entry) is one of
 * ours: our label, or a pause container's name. *alloc_id and *task
 * (NULL for a pause container) point into the entry. */
bool docker_container_ours(const json_t *c, const char **alloc_id,
                           char **task);

#endif
