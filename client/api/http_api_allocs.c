/* http_api_allocs.c - allocations: lists, one allocation, its stats,
 * checks and logs, signal and restart, and the leftovers of gone ones. */
#include "client/api/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client/agent.h"
#include "client/alloc/alloc.h"
#include "client/job/job.h"
#include "client/node/node.h"
#include "client/services/services.h"

json_t *http_api_alloc_list_json(struct agent *a, const char *job_id)
{
    json_t *list = json_array();
    for (size_t i = a->allocs ? a->allocs->nallocs : 0; i-- > 0;) {
        const struct alloc *al = a->allocs->allocs[i];
        if (!job_id || strcmp(al->job_id, job_id) == 0)
            json_array_append_new(list, alloc_stub_to_json(al));
    }
    return list;
}

void http_api_allocations(struct agent *a, const struct http_request *req,
                          struct http_response *resp)
{
    http_response_json(resp, 200, http_api_alloc_list_json(a, NULL));
}

/* The allocation `id` (full or a unique prefix) names, or NULL after
 * answering 400 (ambiguous) or 404. */
static struct alloc *find_alloc(struct agent *a, const char *id,
                                struct http_response *resp)
{
    bool ambiguous = false;
    struct alloc *al = a->allocs ? alloc_manager_find(a->allocs, id, &ambiguous)
                                 : NULL;
    if (ambiguous)
        http_response_error(resp, 400, "allocation ID prefix \"%s\" matches "
                                       "several allocations", id);
    else if (!al)
        http_response_error(resp, 404, "allocation not found: %s", id);
    return al;
}

/* PUT|POST /v1/allocation/:id/stop[?no_shutdown_delay=true]: Nomad's
 * AllocStopResponse. The allocation stops in Nomad's order; its
 * replacement is placed here once it is stopped (Nomad's scheduler would
 * place it on any node), unless this node is draining or ineligible. */
static void alloc_stop_route(struct agent *a, const struct http_request *req,
                             struct http_response *resp, const char *id)
{
    if (!http_api_method_allowed(req->method, "PUT, POST")) {
        http_api_method_not_allowed(resp, "PUT, POST");
        return;
    }
    struct alloc *al = find_alloc(a, id, resp);
    if (!al)
        return;
    bool replaced = false;
    bool no_delay = nc_streq(kv_get(&req->query, "no_shutdown_delay"), "true");
    if (alloc_manager_stop_alloc(a->allocs, al, no_delay, &replaced) == 0)
        LOG_INFO("api", "allocation %s: stop%s", al->id,
                 replaced ? ", replacement follows" : "");
    char eval[37];
    nc_uuid(eval);
    http_response_json(resp, 200,
                       json_pack("{s:s, s:I}", "EvalID", eval, "Index",
                                 (json_int_t)al->modify_index));
}

/* GET /v1/allocation/:id (full id or unique prefix); /v1/allocation/:id/stop */
void http_api_allocation(struct agent *a, const struct http_request *req,
                         struct http_response *resp, const char *id)
{
    if (nc_str_has_suffix(id, "/stop")) {
        char *bare = xstrndup(id, strlen(id) - strlen("/stop"));
        alloc_stop_route(a, req, resp, bare);
        free(bare);
        return;
    }
    if (!http_api_method_allowed(req->method, "GET")) {
        http_api_method_not_allowed(resp, "GET");
        return;
    }
    struct alloc *al = find_alloc(a, id, resp);
    if (al)
        http_response_json(resp, 200, alloc_to_json(al));
}

/* A field of a request body (borrowed, NULL if absent): names match
 * regardless of case, as Go's encoding/json matches them for Nomad. */
json_t *http_api_body_field(const json_t *doc, const char *name)
{
    json_t *found = json_object_get(doc, name);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)doc, key, v)
    {
        if (!found && strcasecmp(key, name) == 0)
            found = v;
    }
    return found;
}

/* A string field: absent or null reads as "" (Nomad's decoder leaves the
 * field empty). Returns false after answering 400. */
bool http_api_body_string(const json_t *doc, const char *name,
                          const char **out, struct http_response *resp)
{
    json_t *found = http_api_body_field(doc, name);
    *out = json_string_value(found);
    if (*out || !found || json_is_null(found)) {
        *out = *out ? *out : "";
        return true;
    }
    http_response_error(resp, 400, "%s must be a string", name);
    return false;
}

/* The same for a boolean field. */
bool http_api_body_bool(const json_t *doc, const char *name, bool *out,
                        struct http_response *resp)
{
    json_t *found = http_api_body_field(doc, name);
    *out = json_is_true(found);
    if (!found || json_is_null(found) || json_is_boolean(found))
        return true;
    http_response_error(resp, 400, "%s must be a boolean", name);
    return false;
}

/* Answers what alloc_manager_signal or _restart returned: Nomad's
 * {"Index": 0} on success (logged as "<what> for <whom>"). A refusal is
 * the caller's to fix, so it is a 4xx with the message (Nomad answers 500
 * to all of them): 404 an unknown task, 400 a signal that is not one or a
 * task named with AllTasks, 409 a task that is not running. */
static void answer_lifecycle(struct http_response *resp, int r,
                             const struct nc_error *err, const char *alloc_id,
                             const char *what, const char *whom)
{
    if (r == 0) {
        LOG_INFO("api", "allocation %s: %s for %s", alloc_id, what, whom);
        http_response_json(resp, 200, json_pack("{s:i}", "Index", 0));
        return;
    }
    int code = r == -ENOENT                     ? 404
               : r == -EINVAL                   ? 400
               : r == -ESRCH || r == -ENOTSUP   ? 409
                                                : 500;
    http_response_error(resp, code, "%s", err->msg[0] ? err->msg : strerror(-r));
}

/* POST|PUT /v1/client/allocation/:id/signal {"Task": "", "Signal": ""}:
 * the body is required, as Nomad's decoder requires it. */
static void alloc_signal(struct agent *a, const struct http_request *req,
                         struct http_response *resp, const char *id)
{
    json_t *doc = http_api_parse_body(req, resp);
    if (!doc)
        return;
    const char *task = NULL, *sig = NULL;
    struct alloc *al = NULL;
    if (http_api_body_string(doc, "Task", &task, resp) &&
        http_api_body_string(doc, "Signal", &sig, resp) &&
        (al = find_alloc(a, id, resp))) {
        struct nc_error err = {0};
        int r = alloc_manager_signal(a->allocs, al, task, sig, &err);
        answer_lifecycle(resp, r, &err, al->id, *sig ? sig : "SIGKILL",
                         *task ? task : "every running task");
    }
    json_decref(doc);
}

/* POST|PUT /v1/client/allocation/:id/restart {"TaskName": "", "AllTasks":
 * false}: an empty body restarts the running tasks, as with Nomad. */
static void alloc_restart(struct agent *a, const struct http_request *req,
                          struct http_response *resp, const char *id)
{
    json_t *doc = req->body_len ? http_api_parse_body(req, resp) : json_object();
    if (!doc)
        return;
    const char *task = NULL;
    bool all = false;
    struct alloc *al = NULL;
    if (http_api_body_string(doc, "TaskName", &task, resp) &&
        http_api_body_bool(doc, "AllTasks", &all, resp) &&
        (al = find_alloc(a, id, resp))) {
        struct nc_error err = {0};
        int r = alloc_manager_restart(a->allocs, al, task, all, &err);
        answer_lifecycle(resp, r, &err, al->id, "restart",
                         *task ? task : all ? "every task" : "the running tasks");
    }
    json_decref(doc);
}

static void alloc_stats(struct agent *a, const struct http_request *req,
                        struct http_response *resp, const char *id)
{
    struct alloc *al = find_alloc(a, id, resp);
    if (al)
        http_response_json(resp, 200, alloc_stats_json(al, &a->node));
}

static void alloc_checks(struct agent *a, const struct http_request *req,
                         struct http_response *resp, const char *id)
{
    struct alloc *al = find_alloc(a, id, resp);
    if (al)
        http_response_json(resp, 200,
                           alloc_checks_alloc_json(a->checks, al->id));
}

/* GET|PUT /v1/client/allocation/:id/gc: destroys the terminal allocation
 * `id` (its full ID, as Nomad requires); 200 with no body. Nomad's status
 * words otherwise: 404 `Unknown allocation "<id>"`; 409 for one still
 * running (or already being collected), where Nomad answers 500: the
 * caller's to wait for, as with signal and restart. */
static void alloc_gc(struct agent *a, const struct http_request *req,
                     struct http_response *resp, const char *id)
{
    struct alloc *al = a->allocs ? alloc_manager_find(a->allocs, id, NULL)
                                 : NULL;
    if (!al || strcmp(al->id, id) != 0) {
        http_response_error(resp, 404, "Unknown allocation \"%s\"", id);
        return;
    }
    struct nc_error err = {0};
    if (alloc_gc_collect(a->allocs, al, &err) < 0)
        http_response_error(resp, 409, "%s", err.msg);
}

/* /v1/client/allocation/:id/<action>: stats, checks (GET), signal and
 * restart (POST or PUT, as Nomad's API client sends PUT). */
void http_api_client_allocation(struct agent *a, const struct http_request *req,
                                struct http_response *resp, const char *rest)
{
    static const struct {
        const char *name;
        const char *methods;
        void (*fn)(struct agent *a, const struct http_request *req,
                   struct http_response *resp, const char *id);
    } actions[] = {{"stats", "GET", alloc_stats},
                   {"checks", "GET", alloc_checks},
                   {"signal", "POST, PUT", alloc_signal},
                   {"restart", "POST, PUT", alloc_restart},
                   {"gc", "GET, PUT, POST", alloc_gc}};
    const char *slash = strchr(rest, '/');
    const char *what = slash ? slash + 1 : "";
    for (size_t i = 0; i < NC_ARRAY_LEN(actions); i++) {
        if (!nc_streq(what, actions[i].name))
            continue;
        if (!http_api_method_allowed(req->method, actions[i].methods)) {
            http_api_method_not_allowed(resp, actions[i].methods);
            return;
        }
        char *id = xstrndup(rest, (size_t)(slash - rest));
        actions[i].fn(a, req, resp, id);
        free(id);
        return;
    }
    http_response_error(resp, 404, "no such endpoint: %s %s", req->method,
                        req->path);
}

/* Whether a followed task will write no more: dead, or gone. */
static bool task_finished(void *arg, const char *alloc_id, const char *task)
{
    struct agent *a = arg;
    struct alloc *al = a->allocs ? alloc_manager_find(a->allocs, alloc_id, NULL)
                                 : NULL;
    for (size_t i = 0; al && i < al->ntasks; i++)
        if (strcmp(al->tasks[i].name, task) == 0)
            return nc_streq(al->tasks[i].state, "dead");
    return true;
}

/* GET /v1/client/fs/logs/:alloc?task=T&type=stdout|stderr: the newest log
 * file of the task (its last MiB), as text; with follow=true, then what the
 * task writes, until it is dead (chunked). */
void http_api_fs_logs(struct agent *a, const struct http_request *req,
                      struct http_response *resp, const char *id)
{
    bool ambiguous = false;
    struct alloc *al = a->allocs ? alloc_manager_find(a->allocs, id, &ambiguous)
                                 : NULL;
    if (!al) {
        http_response_error(resp, ambiguous ? 400 : 404,
                            ambiguous ? "allocation ID prefix \"%s\" is ambiguous"
                                      : "allocation not found: %s", id);
        return;
    }
    const char *task = kv_get(&req->query, "task");
    const char *type = kv_get(&req->query, "type");
    if (!type)
        type = "stdout";
    if (strcmp(type, "stdout") != 0 && strcmp(type, "stderr") != 0) {
        http_response_error(resp, 400, "type must be stdout or stderr");
        return;
    }
    if (!task && al->ntasks == 1)
        task = al->tasks[0].name;
    bool known = false;
    for (size_t i = 0; task && i < al->ntasks; i++)
        known |= strcmp(al->tasks[i].name, task) == 0;
    if (!known) {
        http_response_error(resp, 400, task ? "allocation %s has no task \"%s\""
                                            : "allocation %s has several tasks; "
                                              "name one with task=%s",
                            al->id, task ? task : "");
        return;
    }
    char *dir = alloc_dir_path(a->allocs, al);
    const char *follow = kv_get(&req->query, "follow");
    if (follow && strcmp(follow, "true") == 0) {
        char *log_dir = xasprintf("%s/alloc/logs", dir);
        struct log_follow_spec fs = {.log_dir = log_dir, .alloc_id = al->id,
                                     .task = task, .type = type,
                                     .tail_bytes = 1 << 20,
                                     .done = task_finished, .done_arg = a};
        log_follow_start(&a->follows, a->loop, resp, &fs);
        free(log_dir);
        free(dir);
        return;
    }
    char *path = NULL;
    for (int i = 0;; i++) {
        char *p = xasprintf("%s/alloc/logs/%s.%s.%d", dir, task, type, i);
        if (access(p, F_OK) < 0) {
            free(p);
            if (path || i > 1000)
                break;
            continue;
        }
        free(path);
        path = p;
    }
    free(dir);
    size_t len = 0;
    char *txt = path ? nc_read_file(path, &len, 0) : NULL;
    free(path);
    size_t keep = len > (1u << 20) ? (1u << 20) : len;
    http_response_set_body(resp, txt ? txt + len - keep : "", keep,
                           "text/plain; charset=utf-8");
    free(txt);
}

/* GET lists what no allocation owns; DELETE removes it. */
void http_api_leftovers(struct agent *a, const struct http_request *req,
                        struct http_response *resp)
{
    bool clean = http_api_method_is(req, "DELETE");
    if (clean)
        LOG_INFO("api", "cleaning leftovers of allocations this node no "
                        "longer runs");
    http_response_json(resp, 200, alloc_manager_leftovers(a->allocs, clean));
}
