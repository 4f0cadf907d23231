/* api/internal.h - what the route files of the HTTP API share: request
 * helpers, the handlers the dispatcher in http_api.c names, and the
 * allocation list they all print. Not for use outside client/api/. */
#ifndef NOMCLIENT_API_INTERNAL_H
#define NOMCLIENT_API_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "client/api/api.h"

struct agent;

/* ---- helpers (http_api.c) ---- */

/* Whether `method` is in the comma-separated `allowed` (HEAD counts as
 * GET). */
bool http_api_method_allowed(const char *method, const char *allowed);
bool http_api_method_is(const struct http_request *req, const char *m);
/* Answers 405 with an Allow header. */
void http_api_method_not_allowed(struct http_response *resp,
                                 const char *allow);
/* The body as a JSON object (new reference), or NULL after answering 400. */
json_t *http_api_parse_body(const struct http_request *req,
                            struct http_response *resp);
/* Nomad's blocking-query headers: X-Nomad-Index and the leader ones. */
void http_api_set_index(struct http_response *resp, uint64_t index);
/* New reference. */
json_t *http_api_strlist_to_json(const struct strlist *l);
/* Go's time.Time in JSON (RFC 3339, nanoseconds, UTC; 0 is Go's zero
 * time), new reference (http_api_node.c). */
json_t *http_api_time_json(int64_t unix_ns);

/* ---- allocations (http_api_allocs.c) ---- */

/* A field of a request body (borrowed, NULL if absent): names match
 * regardless of case, as Go's encoding/json matches them for Nomad. */
json_t *http_api_body_field(const json_t *doc, const char *name);
/* A string field: absent or null reads as "". Returns false after
 * answering 400. */
bool http_api_body_string(const json_t *doc, const char *name,
                          const char **out, struct http_response *resp);
/* The same for a boolean field (absent or null: false). */
bool http_api_body_bool(const json_t *doc, const char *name, bool *out,
                        struct http_response *resp);

/* Allocation stubs of this node, newest first, optionally of one job (new
 * reference). */
json_t *http_api_alloc_list_json(struct agent *a, const char *job_id);

/* ---- handlers: routes matched by exact path get (a, req, resp), routes
 * matched by prefix also the rest of the path after the prefix ---- */

void http_api_agent_self(struct agent *a, const struct http_request *req,
                         struct http_response *resp);
void http_api_agent_health(struct agent *a, const struct http_request *req,
                           struct http_response *resp);
void http_api_nodes(struct agent *a, const struct http_request *req,
                    struct http_response *resp);
void http_api_client_stats(struct agent *a, const struct http_request *req,
                           struct http_response *resp);
void http_api_node(struct agent *a, const struct http_request *req,
                   struct http_response *resp, const char *id);
void http_api_client_gc(struct agent *a, const struct http_request *req,
                        struct http_response *resp);

void http_api_jobs(struct agent *a, const struct http_request *req,
                   struct http_response *resp);
void http_api_jobs_parse(struct agent *a, const struct http_request *req,
                         struct http_response *resp);
void http_api_validate_job(struct agent *a, const struct http_request *req,
                           struct http_response *resp);
void http_api_job(struct agent *a, const struct http_request *req,
                  struct http_response *resp, const char *rest);

void http_api_allocations(struct agent *a, const struct http_request *req,
                          struct http_response *resp);
void http_api_allocation(struct agent *a, const struct http_request *req,
                         struct http_response *resp, const char *id);
void http_api_client_allocation(struct agent *a,
                                const struct http_request *req,
                                struct http_response *resp, const char *rest);
/* GET /v1/client/allocation/:id/exec, a websocket (http_api_exec.c);
 * `rest` is "<id>/exec". */
void http_api_alloc_exec(struct agent *a, const struct http_request *req,
                         struct http_response *resp, const char *rest);
/* Whether the request is an exec whose token comes in its first websocket
 * message (ws_handshake=true): the dispatcher leaves its ACL check to it. */
bool http_api_exec_token_later(const struct http_request *req);
void http_api_fs_logs(struct agent *a, const struct http_request *req,
                      struct http_response *resp, const char *id);
/* /v1/client/fs/{ls,stat,cat,readat,stream}/:alloc (http_api_fs.c);
 * `rest` starts at the operation. */
void http_api_fs(struct agent *a, const struct http_request *req,
                 struct http_response *resp, const char *rest);
void http_api_leftovers(struct agent *a, const struct http_request *req,
                        struct http_response *resp);

void http_api_agent_checks(struct agent *a, const struct http_request *req,
                           struct http_response *resp);
void http_api_services(struct agent *a, const struct http_request *req,
                       struct http_response *resp);
void http_api_service(struct agent *a, const struct http_request *req,
                      struct http_response *resp, const char *name);
void http_api_registrations(struct agent *a, const struct http_request *req,
                            struct http_response *resp);
void http_api_registration(struct agent *a, const struct http_request *req,
                           struct http_response *resp, const char *id);
void http_api_metrics(struct agent *a, const struct http_request *req,
                      struct http_response *resp);

/* ---- ACL (http_api_acl.c) ---- */

/* Whether the request's token grants what its route needs; otherwise
 * answers 400/403 in Nomad's words and returns false. Only called with
 * ACLs enabled. */
bool http_api_acl_check(struct agent *a, const struct http_request *req,
                        struct http_response *resp);
void http_api_acl_bootstrap(struct agent *a, const struct http_request *req,
                            struct http_response *resp);
void http_api_acl_tokens(struct agent *a, const struct http_request *req,
                         struct http_response *resp);
void http_api_acl_token_create(struct agent *a, const struct http_request *req,
                               struct http_response *resp);
void http_api_acl_token(struct agent *a, const struct http_request *req,
                        struct http_response *resp, const char *accessor);
void http_api_acl_policies(struct agent *a, const struct http_request *req,
                           struct http_response *resp);
void http_api_acl_policy(struct agent *a, const struct http_request *req,
                         struct http_response *resp, const char *name);

#endif
