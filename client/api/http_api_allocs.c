/* http_api_allocs.c - allocations: lists, one allocation, its stats,
 * checks and logs, and the leftovers of gone ones. */
#include "client/api/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* GET /v1/allocation/:id (full id or unique prefix) */
void http_api_allocation(struct agent *a, const struct http_request *req,
                         struct http_response *resp, const char *id)
{
    bool ambiguous = false;
    struct alloc *al = a->allocs ? alloc_manager_find(a->allocs, id, &ambiguous)
                                 : NULL;
    if (!http_api_method_allowed(req->method, "GET"))
        http_api_method_not_allowed(resp, "GET");
    else if (ambiguous)
        http_response_error(resp, 400, "allocation ID prefix \"%s\" matches "
                                       "several allocations", id);
    else if (!al)
        http_response_error(resp, 404, "allocation not found: %s", id);
    else
        http_response_json(resp, 200, alloc_to_json(al));
}

/* GET /v1/client/allocation/:id/stats and /v1/client/allocation/:id/checks */
void http_api_client_allocation(struct agent *a, const struct http_request *req,
                                struct http_response *resp, const char *rest)
{
    const char *slash = strchr(rest, '/');
    const char *what = slash ? slash + 1 : "";
    if (!nc_streq(what, "stats") && !nc_streq(what, "checks")) {
        http_response_error(resp, 404, "no such endpoint: %s %s", req->method,
                            req->path);
        return;
    }
    if (!http_api_method_allowed(req->method, "GET")) {
        http_api_method_not_allowed(resp, "GET");
        return;
    }
    char *id = xstrndup(rest, (size_t)(slash - rest));
    bool ambiguous = false;
    struct alloc *al = a->allocs ? alloc_manager_find(a->allocs, id, &ambiguous)
                                 : NULL;
    if (ambiguous)
        http_response_error(resp, 400, "allocation ID prefix \"%s\" matches "
                                       "several allocations", id);
    else if (!al)
        http_response_error(resp, 404, "allocation not found: %s", id);
    else if (nc_streq(what, "stats"))
        http_response_json(resp, 200, alloc_stats_json(al, &a->node));
    else
        http_response_json(resp, 200, alloc_checks_alloc_json(a->checks, al->id));
    free(id);
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
