/* log_follow.h - `alloc logs -f`: streams a task's log file as it grows,
 * across the supervisor's rotations (<task>.<type>.<n> to <n+1>), until the
 * task is dead and everything written has been sent, or the client goes.
 *
 * Event driven, no polling: a uv_fs_event on the logs directory wakes a
 * follower when the supervisor writes, the HTTP stream's drain callback
 * paces reading to the client, and log_follow_poke wakes followers of an
 * allocation whose state changed (so a task's death ends the stream). */
#ifndef NOMCLIENT_LOG_FOLLOW_H
#define NOMCLIENT_LOG_FOLLOW_H

#include <stdbool.h>
#include <uv.h>

#include "http_server.h"

struct log_follow;

/* The followers of one agent; zero-initialised. */
struct log_follow_list {
    struct log_follow *head;
};

/* Whether the task has finished for good (no more output will come). */
typedef bool (*log_follow_done_fn)(void *arg, const char *alloc_id,
                                   const char *task);

struct log_follow_spec {
    const char *log_dir;  /* the allocation's alloc/logs */
    const char *alloc_id;
    const char *task;
    const char *type;     /* "stdout" or "stderr" */
    int64_t tail_bytes;   /* start this far before the end of the newest
                             file (clamped to its start) */
    log_follow_done_fn done;
    void *done_arg;
};

/* Turns `resp` into a stream of the task's log and starts following. The
 * follower frees itself when the stream ends or the client goes. */
int log_follow_start(struct log_follow_list *list, uv_loop_t *loop,
                     struct http_response *resp,
                     const struct log_follow_spec *spec);

/* Wakes the followers of `alloc_id` (its state changed). */
void log_follow_poke(struct log_follow_list *list, const char *alloc_id);

/* Ends every stream (agent shutdown); followers free themselves once their
 * handles are closed. */
void log_follow_stop_all(struct log_follow_list *list);

#endif
