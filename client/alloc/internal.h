/* alloc/internal.h - what the allocation runner's files share; not a
 * public API (client/alloc/alloc.h is).
 *
 *   alloc_runner.c  the manager: open/close, persistence, ports, creation,
 *                   stop, re-attach after a restart, leftovers
 *   task_runner.c   a task's life through its driver: start, release,
 *                   exit, the allocation's status, signal and restart
 *   restart.c       restart and reschedule policies
 *   network.c       the bridge/CNI phase and the dirs made beside it
 *   lifecycle.c     the task coordinator: lifecycle stages, phases, kills
 *   artifact.c      artifacts fetched into the task dir before it starts
 *   artifact_get.c  its pieces: checksums, URL, writing and unpacking
 *   gc.c            garbage collection of terminal allocations */
#ifndef NOMCLIENT_ALLOC_INTERNAL_H
#define NOMCLIENT_ALLOC_INTERNAL_H

#include "client/alloc/alloc.h"
#include "client/drivers/driver.h"

/* alloc_runner.c */
void alloc_handle_closed(uv_handle_t *h); /* frees a closed handle */
/* Saves the allocation (on the thread pool); durable: fsync'd. */
void alloc_save_as(struct alloc *a, bool durable);
void alloc_save(struct alloc *a);
void alloc_set_str(char **field, const char *v);
struct alloc *alloc_create(struct alloc_manager *m, const struct job *job,
                           const struct task_group *g, int index,
                           uint64_t version);
void alloc_start(struct alloc *a);
/* Takes the allocation out of the manager (its state file's writer
 * released, its drivers' handles detached); the caller owns it then and
 * frees it with alloc_free. For the garbage collector. */
void alloc_manager_remove(struct alloc_manager *m, struct alloc *a);
/* Whether a save of the allocation is still on its way to disk. */
bool alloc_save_pending(const struct alloc *a);

/* task_runner.c */
/* The driver's env of the manager's allocations (driver_env.exited is
 * alloc_task_exited). */
void alloc_driver_env_init(struct alloc_manager *m);
/* Starts the task through its driver; with wait_net it is prepared beside
 * the network set-up and runs on alloc_task_release. */
void alloc_task_spawn(struct alloc_task *t, bool wait_net);
void alloc_task_start(struct alloc_task *t);
void alloc_task_release(struct alloc_task *t);
/* The network will not come: the prepared task ends without running. */
void alloc_task_abort_wait(struct alloc_task *t);
/* The task failed before running: `type` event, dead, failed. */
void alloc_task_fail(struct alloc_task *t, const char *type, const char *msg);
/* Sends the task its driver's stop (kill_signal, then kill_timeout). */
void alloc_task_stop(struct alloc_task *t);
void alloc_update_status(struct alloc *a);

/* restart.c */
/* After an exit the allocation does not stop for: restarts the task as
 * its restart policy says, or marks it dead and failed. */
void alloc_task_apply_restart_policy(struct alloc_task *t, bool failed_start);
void alloc_task_schedule_restart(struct alloc_task *t, int64_t delay_ns,
                                 const char *why);
void alloc_maybe_reschedule(struct alloc *a);

/* network.c */
bool alloc_bridged(const struct alloc *a);
/* A process runs for the task, or its driver is starting it. */
bool alloc_task_active(const struct alloc_task *t);
void alloc_net_setup(struct alloc *a);
void alloc_net_teardown(struct alloc *a);
/* Runs the step the network phase asks for (set-up, teardown) once a
 * helper slot is free; a set-up whose namespace a driver holds asks that
 * driver's net_create first. */
void alloc_net_schedule(struct alloc *a);
/* The driver of the group's tasks that holds its namespace (the first
 * with net_create), or NULL: with err set when two different drivers
 * would (-EINVAL), else the netns helper makes it. */
const struct driver *alloc_net_holder_driver(const struct alloc *a,
                                             struct nc_error *err);
void alloc_make_dirs(struct alloc *a);
int alloc_make_task_dirs(struct alloc_task *t);
/* Starts (or releases) the tasks still pending; how many it tried. */
size_t alloc_start_tasks(struct alloc *a);
void alloc_fail_all_tasks(struct alloc *a, const char *fmt, const char *msg);
/* Forgets the manager's set-ups whose dirs are being made (closing). */
void alloc_net_forget(struct alloc_manager *m);

/* lifecycle.c: Nomad's task coordinator, as pure decisions on a view of
 * the tasks; task_runner.c applies them. */
enum lifecycle_stage {
    LC_PRESTART,          /* prestart, sidecar = false: runs to completion */
    LC_PRESTART_SIDECAR,  /* prestart, sidecar = true: beside the main tasks */
    LC_MAIN,
    LC_POSTSTART,
    LC_POSTSTART_SIDECAR,
    LC_POSTSTOP,
};
enum lifecycle_phase { /* the coordinator's states; 0 is where it starts */
    LC_PHASE_PRESTART,
    LC_PHASE_MAIN,
    LC_PHASE_POSTSTART,
    LC_PHASE_WAIT_ALLOC,
    LC_PHASE_POSTSTOP,
};
enum lifecycle_state { LC_PENDING, LC_RUNNING, LC_DEAD };
enum lifecycle_kill { /* why the live tasks are killed, if they are */
    LC_KILL_NONE,
    LC_KILL_SIBLING_FAILED,
    LC_KILL_LEADER_DEAD,
    LC_KILL_MAIN_DEAD,
};
struct lifecycle_view {
    enum lifecycle_stage stage;
    enum lifecycle_state state;
    bool failed, leader;
};
enum lifecycle_stage lifecycle_stage_of(const struct task *spec);
bool lifecycle_is_sidecar(enum lifecycle_stage s);
bool lifecycle_allows(enum lifecycle_phase p, enum lifecycle_stage s);
/* The phase the tasks' states lead to from `cur` (never backwards). */
enum lifecycle_phase lifecycle_next(enum lifecycle_phase cur,
                                    const struct lifecycle_view *v, size_t n);
/* Whether a dead task takes the live ones down, and which (*culprit). */
enum lifecycle_kill lifecycle_kill_reason(const struct lifecycle_view *v,
                                          size_t n, size_t *culprit);
/* While killing: whether task i gets its stop now (sidecars wait for the
 * others to be dead; poststop tasks are never killed). */
bool lifecycle_stop_now(const struct lifecycle_view *v, size_t n, size_t i);
/* Whether exit code 0 ends the task instead of restarting it. */
bool lifecycle_done_on_success(enum lifecycle_stage s, bool batch);
/* Nomad's event type for a kill reason (NULL for LC_KILL_NONE). */
const char *lifecycle_kill_event(enum lifecycle_kill k);

/* artifact.c */
/* Whether the task waits for its artifacts: fetches them unless they are
 * in place ("Downloading Artifacts"); once all are, the task is spawned
 * again; a failure is "Failed Artifact Download" and the restart policy. */
bool alloc_task_fetch_artifacts(struct alloc_task *t, bool wait_net);
/* The manager closes: fetches in flight are dropped, the handle closed. */
void alloc_artifacts_forget(struct alloc_manager *m);
/* artifact_get.c: the pieces, pure or on a directory fd, for the worker
 * thread (tests/test_artifact.c). */
struct artifact_checksum {
    char type[8]; /* "md5", "sha1", "sha256", "sha512" */
    unsigned char digest[64];
    size_t len;
};
/* Parses "type:hex" as Nomad validates it; errors in Nomad's words. */
int artifact_checksum_parse(const char *spec, struct artifact_checksum *out,
                            char *err, size_t errlen);
/* 0 when data has the digest; -EBADMSG with go-getter's text if not. */
int artifact_checksum_verify(const struct artifact_checksum *c,
                             const void *data, size_t len, const char *what,
                             char *err, size_t errlen);
/* The archive type a path's extension names (go-getter's list), or "". */
const char *artifact_archive_type(const char *path);
/* A compressed single file (gz, bz2, xz, zst): unpacked as one file. */
bool artifact_archive_single_file(const char *type);
/* http(s) only; a clear refusal for git, hg, s3, gcs and the rest. */
bool artifact_source_supported(const char *src, char *err, size_t errlen);
struct artifact_url {
    char *url;      /* what is fetched: options in the query */
    char *path;     /* the URL's path */
    char *checksum, *archive; /* taken from the options or the query */
    struct artifact_checksum sum;
    bool has_sum;
    char type[8];   /* archive type, "" for none */
};
int artifact_url(const char *src, const struct kvlist *options,
                 struct artifact_url *out, char *err, size_t errlen);
void artifact_url_free(struct artifact_url *u);
/* A relative archive entry without "..": what may be unpacked. */
bool artifact_entry_safe(const char *path);
/* Writes data as the file rel below dirfd (0644), through no symlink. */
int artifact_save_file(int dirfd, const char *rel, const void *data, size_t len,
                       char *err, size_t errlen);
/* Unpacks an archive of `type` into directory rel below dirfd (as_file:
 * a single-file compression into file rel); entries that escape, symlinks
 * and hard links are refused. */
int artifact_unpack(int dirfd, const char *rel, const void *data, size_t len,
                    const char *type, bool as_file, char *err, size_t errlen);

/* task_runner.c: starts the pending tasks the coordinator lets start
 * (releases those prepared beside the network); how many it tried. */
size_t alloc_lifecycle_start(struct alloc *a);

#endif
