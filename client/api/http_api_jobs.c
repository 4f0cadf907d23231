/* http_api_jobs.c - jobs: register, read, stop, parse and validate, in
 * Nomad's /v1/jobs and /v1/job/:id shapes. */
#include "client/api/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/agent.h"
#include "client/alloc/alloc.h"
#include "client/drivers/driver.h"
#include "client/job/job.h"
#include "client/node/node.h"
#include "client/services/services.h"

static char *format_warnings(const struct strlist *w)
{
    if (!w->n)
        return xstrdup("");
    struct nc_buf b = {0};
    nc_buf_printf(&b, "%zu warning%s:\n", w->n, w->n == 1 ? "" : "s");
    for (size_t i = 0; i < w->n; i++)
        nc_buf_printf(&b, "\n* %s", w->items[i]);
    return nc_buf_take(&b);
}

static json_t *job_summary_json(const struct job_entry *e)
{
    json_t *summary = json_object();
    bool per_node = nc_streq(e->job->type, "system") ||
                    nc_streq(e->job->type, "sysbatch");
    for (size_t g = 0; g < e->job->ngroups; g++) {
        const struct task_group *tg = &e->job->groups[g];
        int queued = e->stop ? 0 : (per_node ? 1 : tg->count);
        json_object_set_new(summary, tg->name,
                            json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i}",
                                      "Queued", queued, "Complete", 0,
                                      "Failed", 0, "Running", 0, "Starting", 0,
                                      "Lost", 0, "Unknown", 0));
    }
    return json_pack("{s:s, s:s, s:o, s:{s:i, s:i, s:i}, s:I, s:I}", "JobID",
                     e->job->id, "Namespace", e->job->namespace, "Summary",
                     summary, "Children", "Pending", 0, "Running", 0, "Dead",
                     0, "CreateIndex", (json_int_t)e->create_index,
                     "ModifyIndex", (json_int_t)e->modify_index);
}

static json_t *job_stub_json(const struct job_entry *e)
{
    const struct job *j = e->job;
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:i, s:b, s:b, s:b, s:s, s:s, "
        "s:o, s:I, s:I, s:I, s:I}",
        "ID", j->id, "ParentID", "", "Name", j->name, "Namespace", j->namespace,
        "Datacenters", http_api_strlist_to_json(&j->datacenters), "NodePool",
        j->node_pool ? j->node_pool : "default", "Type", j->type, "Priority",
        j->priority, "Periodic", j->periodic != NULL, "ParameterizedJob",
        j->parameterized != NULL, "Stop", e->stop, "Status",
        state_job_status(e), "StatusDescription", "", "JobSummary",
        job_summary_json(e), "CreateIndex", (json_int_t)e->create_index,
        "ModifyIndex", (json_int_t)e->modify_index, "JobModifyIndex",
        (json_int_t)e->job_modify_index, "SubmitTime",
        (json_int_t)e->submit_time);
}

static json_t *job_full_json(const struct job_entry *e)
{
    json_t *o = jobspec_to_json(e->job);
    json_object_set_new(o, "Stop", json_boolean(e->stop));
    json_object_set_new(o, "Status", json_string(state_job_status(e)));
    json_object_set_new(o, "StatusDescription", json_string(""));
    json_object_set_new(o, "Stable", json_false());
    json_object_set_new(o, "Version", json_integer((json_int_t)e->version));
    json_object_set_new(o, "SubmitTime", json_integer(e->submit_time));
    json_object_set_new(o, "CreateIndex", json_integer((json_int_t)e->create_index));
    json_object_set_new(o, "ModifyIndex", json_integer((json_int_t)e->modify_index));
    json_object_set_new(o, "JobModifyIndex",
                        json_integer((json_int_t)e->job_modify_index));
    return o;
}

/* POST /v1/jobs and POST /v1/job/:id */
static void handle_job_register(struct agent *a, const struct http_request *req,
                                struct http_response *resp, const char *path_id)
{
    json_t *doc = http_api_parse_body(req, resp);
    if (!doc)
        return;
    json_t *jj = json_object_get(doc, "Job");
    if (!json_is_object(jj)) {
        json_decref(doc);
        http_response_error(resp, 400, "Job must be specified");
        return;
    }
    struct job *job = NULL;
    struct nc_error err = {0};
    if (jobspec_from_json(jj, &job, &err) < 0 ||
        drivers_validate_job(a->cfg, job, &err) < 0) {
        json_decref(doc);
        jobspec_free(job);
        http_response_error(resp, 400, "%s", err.msg);
        return;
    }
    if (path_id && strcmp(path_id, job->id) != 0) {
        json_decref(doc);
        jobspec_free(job);
        http_response_error(resp, 400, "Job ID does not match name");
        return;
    }
    struct job_entry *old = state_get_job(a->store, job->id);
    if (json_is_true(json_object_get(doc, "EnforceIndex"))) {
        json_t *want = json_object_get(doc, "JobModifyIndex");
        json_int_t w = json_is_integer(want) ? json_integer_value(want) : 0;
        json_int_t have = old ? (json_int_t)old->job_modify_index : 0;
        if (w != have) {
            json_decref(doc);
            jobspec_free(job);
            http_response_error(resp, 409,
                                "Enforcing job modify index %lld: job %s with "
                                "conflicting job modify index: %lld",
                                (long long)w, have ? "exists" : "does not exist",
                                (long long)have);
            return;
        }
    }
    json_decref(doc);

    struct placement_usage used = {0};
    agent_allocated(a, job->id, &used.cpu_mhz, &used.memory_mb, &used.disk_mb,
                    &used.used_ports);
    struct placement_result pr = {0};
    placement_check(job, &a->node, &used, &pr);
    strlist_free(&used.used_ports);
    if (!pr.ok) {
        json_t *failed = json_object();
        for (size_t i = 0; i < pr.ngroups; i++) {
            const struct placement_group_result *g = &pr.groups[i];
            if (g->placed >= g->desired)
                continue;
            json_object_set_new(failed, g->group,
                                json_pack("{s:i, s:i, s:o}", "Desired",
                                          g->desired, "Placed", g->placed,
                                          "Reasons",
                                          http_api_strlist_to_json(&g->reasons)));
        }
        LOG_INFO("api", "job %s refused: %s", job->id, pr.message);
        http_response_json(resp, 422,
                           json_pack("{s:s, s:o}", "error",
                                     pr.message ? pr.message
                                                : "Placement failed",
                                     "FailedTGAllocs", failed));
        placement_result_free(&pr);
        jobspec_free(job);
        return;
    }
    placement_result_free(&pr);

    char *warnings = format_warnings(&job->warnings);
    struct job_entry *e = NULL;
    char *id = xstrdup(job->id);
    if (state_put_job(a->store, job, &e, &err) < 0) {
        http_response_error(resp, 500, "storing job %s: %s", id, err.msg);
        free(id);
        free(warnings);
        return;
    }
    LOG_INFO("api", "job %s registered (version %llu)", id,
             (unsigned long long)e->version);
    if (a->allocs)
        alloc_manager_run_job(a->allocs, e->job, e->version, &err);
    free(id);
    char eval[37];
    nc_uuid(eval);
    http_api_set_index(resp, e->modify_index);
    http_response_json(
        resp, 200,
        json_pack("{s:s, s:I, s:I, s:s, s:I, s:i, s:b}", "EvalID", eval,
                  "EvalCreateIndex", (json_int_t)e->modify_index,
                  "JobModifyIndex", (json_int_t)e->job_modify_index,
                  "Warnings", warnings, "Index", (json_int_t)e->modify_index,
                  "LastContact", 0, "KnownLeader", true));
    free(warnings);
}

/* POST /v1/jobs/parse: {"JobHCL": "...", "Canonicalize": true} */
static void jobs_parse(const struct http_request *req,
                              struct http_response *resp)
{
    json_t *doc = http_api_parse_body(req, resp);
    if (!doc)
        return;
    const char *hcl = json_string_value(json_object_get(doc, "JobHCL"));
    if (!hcl) {
        json_decref(doc);
        http_response_error(resp, 400, "JobHCL must be a string");
        return;
    }
    struct job *job = NULL;
    struct nc_error err = {0};
    int r = jobspec_parse_hcl("input.hcl", hcl, strlen(hcl), &job, &err);
    json_decref(doc);
    if (r < 0) {
        http_response_error(resp, 400, "%s", err.msg);
        return;
    }
    http_response_json(resp, 200, jobspec_to_json(job));
    jobspec_free(job);
}

/* PUT /v1/validate/job: Nomad's shape, errors in the body with 200. */
static void validate_job(struct agent *a, const struct http_request *req,
                         struct http_response *resp)
{
    json_t *doc = http_api_parse_body(req, resp);
    if (!doc)
        return;
    struct job *job = NULL;
    struct nc_error err = {0};
    json_t *jj = json_object_get(doc, "Job");
    int r = json_is_object(jj) ? jobspec_from_json(jj, &job, &err)
                               : nc_error_set(&err, -EINVAL, "Job must be specified");
    if (r == 0)
        r = drivers_validate_job(a->cfg, job, &err);
    json_decref(doc);
    json_t *errors = json_array();
    char *warnings = xstrdup("");
    if (r < 0) {
        json_array_append_new(errors, json_string(err.msg));
    } else {
        free(warnings);
        warnings = format_warnings(&job->warnings);
    }
    http_response_json(resp, 200,
                       json_pack("{s:b, s:o, s:s, s:s}", "DriverConfigValidated",
                                 r == 0, "ValidationErrors", errors, "Error",
                                 r < 0 ? err.msg : "", "Warnings", warnings));
    free(warnings);
    jobspec_free(job);
}

void http_api_job(struct agent *a, const struct http_request *req,
                  struct http_response *resp, const char *rest)
{
    /* Job IDs may contain '/', so sub-resources are matched as suffixes,
     * as Nomad's router does. */
    static const char *subs[] = {"/allocations", "/summary", "/evaluations"};
    char *id = NULL;
    const char *sub = NULL;
    for (size_t i = 0; i < NC_ARRAY_LEN(subs); i++) {
        if (nc_str_has_suffix(rest, subs[i]) && strlen(rest) > strlen(subs[i])) {
            id = xstrndup(rest, strlen(rest) - strlen(subs[i]));
            sub = subs[i] + 1;
            break;
        }
    }
    if (!id)
        id = xstrdup(rest);
    if (!*id) {
        free(id);
        http_response_error(resp, 404, "job ID missing from the path");
        return;
    }
    if (!sub && (http_api_method_is(req, "POST") || http_api_method_is(req, "PUT"))) {
        handle_job_register(a, req, resp, id);
        free(id);
        return;
    }
    struct job_entry *e = state_get_job(a->store, id);
    if (!e) {
        http_response_error(resp, 404, "job not found: %s", id);
        free(id);
        return;
    }
    if (!sub) {
        if (http_api_method_is(req, "GET") || http_api_method_is(req, "HEAD")) {
            http_api_set_index(resp, e->modify_index);
            http_response_json(resp, 200, job_full_json(e));
        } else if (http_api_method_is(req, "DELETE")) {
            bool purge = nc_streq(kv_get(&req->query, "purge"), "true");
            struct nc_error err = {0};
            if (a->allocs)
                alloc_manager_stop_job(a->allocs, id);
            if (state_stop_job(a->store, id, purge, &err) < 0) {
                http_response_error(resp, 500, "stopping job %s: %s", id, err.msg);
            } else {
                char eval[37];
                nc_uuid(eval);
                LOG_INFO("api", "job %s %s", id, purge ? "purged" : "stopped");
                http_api_set_index(resp, a->store->index);
                http_response_json(resp, 200,
                                   json_pack("{s:s, s:I, s:I}", "EvalID", eval,
                                             "EvalCreateIndex",
                                             (json_int_t)a->store->index,
                                             "JobModifyIndex",
                                             (json_int_t)a->store->index));
            }
        } else {
            http_api_method_not_allowed(resp, "GET, POST, PUT, DELETE");
        }
    } else if (!http_api_method_is(req, "GET") && !http_api_method_is(req, "HEAD")) {
        http_api_method_not_allowed(resp, "GET");
    } else if (strcmp(sub, "summary") == 0) {
        http_response_json(resp, 200, job_summary_json(e));
    } else if (strcmp(sub, "allocations") == 0) {
        http_response_json(resp, 200, http_api_alloc_list_json(a, id));
    } else {
        http_response_json(resp, 200, json_array());
    }
    free(id);
}

void http_api_jobs(struct agent *a, const struct http_request *req,
                   struct http_response *resp)
{
    if (http_api_method_is(req, "POST") || http_api_method_is(req, "PUT")) {
        handle_job_register(a, req, resp, NULL);
        return;
    }
    const char *prefix = kv_get(&req->query, "prefix");
    json_t *list = json_array();
    for (size_t i = 0; i < a->store->njobs; i++)
        if (!prefix || nc_str_has_prefix(a->store->jobs[i]->job->id, prefix))
            json_array_append_new(list, job_stub_json(a->store->jobs[i]));
    http_api_set_index(resp, a->store->index);
    http_response_json(resp, 200, list);
}

void http_api_jobs_parse(struct agent *a, const struct http_request *req,
                         struct http_response *resp)
{
    jobs_parse(req, resp);
}

void http_api_validate_job(struct agent *a, const struct http_request *req,
                           struct http_response *resp)
{
    validate_job(a, req, resp);
}
