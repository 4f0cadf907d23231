/* api/api.h - the agent's HTTP face: the HTTP/1.1 server with
 * streaming responses, the /v1 routes in Nomad's shapes, the CLI's client
 * for them, log following for `alloc logs -f`, and /v1/metrics.
 *
 * Below: the server (http_*), the routes (http_api_handle), the client
 * (api_*), log following (log_follow_*), metrics (metrics_*). */
#ifndef NOMCLIENT_API_API_H
#define NOMCLIENT_API_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "client/util.h"
#include "client/alloc/alloc.h"
#include "client/node/node.h"

/* a small HTTP/1.1 server on libuv + http-parser for the
 * agent's API: keep-alive, pipelining (one request handled at a time, reading
 * paused while a response is written), and bounded headers, bodies, request
 * time and idle time. Errors are answered as JSON {"error": "..."}. */

struct http_request {
    const char *method;
    const char *path;    /* percent-decoded, without the query */
    const char *raw_url;
    struct kvlist query; /* decoded; '+' is a space */
    struct kvlist headers; /* names lower-cased */
    const char *body;
    size_t body_len;
    const char *remote_addr;
};

struct http_stream;
struct tls_ctx;

struct http_response {
    int status;
    struct kvlist headers;
    struct nc_buf body;
    bool pretty; /* ?pretty on the request: indent JSON */
    struct http_stream *stream; /* set by http_response_stream */
};

void http_response_set_status(struct http_response *r, int status);
void http_response_set_header(struct http_response *r, const char *name,
                              const char *value);
void http_response_set_body(struct http_response *r, const char *body,
                            size_t len, const char *content_type);
/* Sets a JSON body (reference stolen; NULL gives a 500). */
void http_response_json(struct http_response *r, int status, json_t *json);
/* Sets {"error": "<message>"} with the status. */
void http_response_error(struct http_response *r, int status, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));

/* Turns the response into a chunked stream that outlives the handler: the
 * status and headers go out when the handler returns, then whatever is
 * passed to http_stream_write, until http_stream_end (which closes the
 * connection). on_drain (may be NULL) is called each time everything queued
 * has been written, so a producer can pull at the client's pace; on_closed
 * is called once if the client goes away first. The connection owns the
 * stream: after http_stream_end or on_closed, do not use it again. */
struct http_stream *http_response_stream(struct http_response *r,
                                         const char *content_type,
                                         void (*on_drain)(void *arg),
                                         void (*on_closed)(void *arg),
                                         void *arg);
/* Queues data; returns the bytes now queued (not yet written), or -EPIPE
 * when the stream has ended or its client is gone. */
long http_stream_write(struct http_stream *s, const void *data, size_t len);
void http_stream_end(struct http_stream *s);

/* Takes the connection over (websockets): once the handler returns, "101
 * Switching Protocols" goes out with the headers the handler set, and the
 * connection is the caller's, through HTTPS too: what the client sends
 * goes to on_data as it arrives (bytes after the request included),
 * http_stream_write sends bytes as they are, on_drain and on_closed are
 * as for a stream, and http_stream_end closes once the queued bytes are
 * out. No idle timeout applies: the protocol keeps itself alive. */
struct http_stream *http_response_upgrade(
    struct http_response *r,
    void (*on_data)(void *arg, const char *data, size_t len),
    void (*on_drain)(void *arg), void (*on_closed)(void *arg), void *arg);
/* An upgraded connection: stops (true) or resumes reading the client, so a
 * slow consumer of on_data is not flooded. */
void http_stream_pause_input(struct http_stream *s, bool pause);

typedef void (*http_handler_fn)(void *ctx, const struct http_request *req,
                                struct http_response *resp);

struct http_server_config {
    const char *bind_addr;
    int port;                    /* 0 picks a free port */
    size_t max_header_bytes;     /* 0 = 16 KiB */
    size_t max_body_bytes;       /* 0 = 4 MiB */
    uint64_t idle_timeout_ms;    /* 0 = 60 s */
    uint64_t request_timeout_ms; /* 0 = 30 s for a whole request */
    int max_connections;         /* 0 = 1024 */
    /* limits { http_max_conns_per_client }: open connections one client
     * IP may hold; more are answered 429 (plain) or closed (TLS) at once.
     * 0 = no limit. */
    int max_conns_per_client;
    /* HTTPS: taken by the server (freed at stop or replaced by
     * http_server_set_tls); NULL serves plain HTTP */
    struct tls_ctx *tls;
    uint64_t handshake_timeout_ms; /* limits.https_handshake_timeout; 0 = 5 s */
};

struct http_server;

int http_server_start(struct http_server **out, uv_loop_t *loop,
                      const struct http_server_config *cfg,
                      http_handler_fn handler, void *ctx,
                      struct nc_error *err);
int http_server_port(const struct http_server *s);
/* Certificate reload: connections accepted from now on use `tls` (taken);
 * open ones keep the session they have. The old context is freed. */
void http_server_set_tls(struct http_server *s, struct tls_ctx *tls);
/* Closes the listener and every connection; frees itself once all close
 * callbacks ran, then calls on_closed (if not NULL). */
void http_server_stop(struct http_server *s, void (*on_closed)(void *arg),
                      void *arg);

/* For tests and fuzzing: runs the request parser, limits and response
 * writer over `data` without sockets, appending what would be sent to
 * `out`. Returns 0, or -EPROTO when the connection would be closed. */
int http_server_feed_for_test(const char *data, size_t len,
                              http_handler_fn handler, void *ctx,
                              struct nc_buf *out);

/* routes of the agent's HTTP API (Nomad's /v1 shapes). */

struct http_request;
struct http_response;

/* The http_server handler; ctx is the struct agent. */
void http_api_handle(void *ctx, const struct http_request *req,
                     struct http_response *resp);

/* the CLI's side of the HTTP API (HTTP/1.1 over a socket, HTTPS for an
 * https:// address): one request at a time, with the agent address from
 * -address, NOMCLIENT_ADDR, NOMAD_ADDR, or http://127.0.0.1:4646. */

struct tls_ctx;

/* HTTPS settings: flags, else NOMAD_CACERT, NOMAD_CLIENT_CERT,
 * NOMAD_CLIENT_KEY, NOMAD_SKIP_VERIFY. */
struct api_client_tls {
    char *ca_cert, *client_cert, *client_key;
    bool skip_verify;
    struct tls_ctx *ctx; /* made at the first https request */
};

struct api_client {
    char *address; /* "http://127.0.0.1:4646", no trailing slash */
    struct api_client_tls tls;
};

/* The ACL token every request sends as X-Nomad-Token (copied; NULL or ""
 * goes back to $NOMAD_TOKEN). */
void api_client_set_token(const char *token);
/* The CLI's -ca-cert, -client-cert, -client-key and -tls-skip-verify
 * (strings borrowed until exit); they beat the environment in every
 * api_client_init after. */
struct api_tls_flags {
    const char *ca_cert, *client_cert, *client_key;
    bool skip_verify, skip_verify_set;
};
void api_client_set_tls_flags(const struct api_tls_flags *f);

/* Picks the address: explicit flag, then $NOMCLIENT_ADDR, $NOMAD_ADDR,
 * then the default; and the HTTPS settings. */
void api_client_init(struct api_client *c, const char *flag_address);
void api_client_free(struct api_client *c);

/* Sends a request with an optional JSON body (borrowed). On a 2xx answer
 * *out gets the decoded JSON (new reference; NULL for an empty body).
 * On a non-2xx answer returns -EPROTO with err holding the agent's error
 * text and the status; on a transport failure returns -ECONNREFUSED or
 * similar with err naming the URL. *status (optional) gets the code. */
int api_request(struct api_client *c, const char *method, const char *path,
                const json_t *body, json_t **out, long *status,
                struct nc_error *err);

/* GETs a plain-text resource (logs); *out is NUL-terminated, caller frees. */
int api_get_text(struct api_client *c, const char *path, char **out,
                 size_t *len, struct nc_error *err);

/* GETs a streamed resource (`alloc logs -f`), handing the body to `sink`
 * as it arrives until the agent ends it; no read timeout. */
int api_stream_text(struct api_client *c, const char *path,
                    void (*sink)(void *arg, const char *data, size_t len),
                    void *arg, struct nc_error *err);

/* Connects to the agent for a protocol of the caller's own (the CLI's
 * websocket for `alloc exec`): dials, runs the TLS handshake for https
 * (errors as api_request words them, for `path`), and gives the
 * non-blocking socket, the session (NULL for plain HTTP; free with
 * tls_conn_free) and the request header lines every request carries
 * (Host, User-Agent, X-Nomad-Token; caller frees). 0 or -errno. */
struct tls_conn;
int api_dial(struct api_client *c, const char *path, int *fd,
             struct tls_conn **tls, char **headers, struct nc_error *err);

/* The decoded JSON of the last non-2xx answer's body, if any (borrowed,
 * valid until the next request). */
const json_t *api_last_error_body(void);

/* `alloc logs -f`: streams a task's log file as it grows,
 * across the supervisor's rotations (<task>.<type>.<n> to <n+1>), until the
 * task is dead and everything written has been sent, or the client goes.
 *
 * Event driven, no polling: a uv_fs_event on the logs directory wakes a
 * follower when the supervisor writes, the HTTP stream's drain callback
 * paces reading to the client, and log_follow_poke wakes followers of an
 * allocation whose state changed (so a task's death ends the stream). */

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

/* the agent's metrics, computed when asked (no sampling loop of
 * its own): host and per-task resource usage under Nomad's names and
 * labels, allocation counts, and this agent's own counters (checks,
 * registrations, Consul sync). Served at /v1/metrics in Nomad's JSON shape
 * and, with ?format=prometheus, as Prometheus text exposition 0.0.4.
 *
 * Names are kept dotted, as go-metrics keys ("nomad.client.host.memory.
 * total"); Prometheus gets them with every character outside
 * [a-zA-Z0-9_:] turned into '_', and counters get a "_total" suffix.
 * Nomad's labels: per task job, task_group, alloc_id, task, namespace and
 * host; for the node node_id, datacenter, node_class ("none" when unset),
 * node_pool, node_status, node_scheduling_eligibility and host. */

struct metrics_source {
    const struct node *node;
    const char *hostname;          /* the "host" label; NULL: gethostname */
    const struct host_stats *host; /* NULL before the first sample */
    struct alloc *const *allocs;
    size_t nallocs;
    /* one allocation's usage in alloc_stats_json's shape (new reference,
     * NULL to skip it); NULL: no per-task metrics */
    json_t *(*alloc_stats)(void *arg, struct alloc *a);
    void *alloc_stats_arg;
    const json_t *checks;        /* alloc_checks_agent_json, or NULL */
    const json_t *consul_status; /* consul_sync_status; NULL: no Consul */
    const json_t *registrations; /* registrations_json's view, or NULL */
    int64_t now;                 /* unix ns; 0 for the current time */
};

struct metrics;

/* Gathers every metric the source has. Caller frees with metrics_free. */
struct metrics *metrics_collect(const struct metrics_source *src);
void metrics_free(struct metrics *m);

/* Prometheus text format 0.0.4: one HELP and TYPE per family, each series
 * once, labels sorted by name. Caller frees. */
char *metrics_prometheus(const struct metrics *m);
/* Nomad's /v1/metrics: {"Timestamp", "Gauges": [{"Name", "Value",
 * "Labels"}], "Points": [], "Counters": [{"Name", "Count", "Rate", "Sum",
 * "Min", "Max", "Mean", "Stddev", "Labels"}], "Samples": []}. Counters
 * are totals since the agent started (Count and Sum hold the total), not
 * go-metrics' per-interval aggregates. New reference. */
json_t *metrics_json(const struct metrics *m);

/* The builder underneath, for tests and for callers adding their own.
 * `labels` are copied (NULL for none); a series whose labels repeat one
 * already added replaces its value, so no series appears twice. A name
 * used with both types keeps its first. */
struct metrics *metrics_new(int64_t now);
void metrics_gauge(struct metrics *m, const char *name, const char *help,
                   const struct kvlist *labels, double value);
void metrics_counter(struct metrics *m, const char *name, const char *help,
                     const struct kvlist *labels, double value);

#endif
