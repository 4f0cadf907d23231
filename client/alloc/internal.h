/* alloc/internal.h - what the allocation runner's files share; not a
 * public API (client/alloc/alloc.h is).
 *
 *   alloc_runner.c  the manager: open/close, persistence, ports, creation,
 *                   stop, re-attach after a restart, leftovers
 *   task_runner.c   a task's life through its driver: start, release,
 *                   exit, the allocation's status, signal and restart
 *   restart.c       restart and reschedule policies
 *   network.c       the bridge/CNI phase and the dirs made beside it
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
void alloc_net_setup(struct alloc *a);
void alloc_net_teardown(struct alloc *a);
void alloc_net_schedule(struct alloc *a);
void alloc_make_dirs(struct alloc *a);
int alloc_make_task_dirs(struct alloc_task *t);
/* Starts (or releases) the tasks still pending; how many it tried. */
size_t alloc_start_tasks(struct alloc *a);
void alloc_fail_all_tasks(struct alloc *a, const char *fmt, const char *msg);
/* Forgets the manager's set-ups whose dirs are being made (closing). */
void alloc_net_forget(struct alloc_manager *m);

#endif
