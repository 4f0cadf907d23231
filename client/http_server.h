/* http_server.h - a small HTTP/1.1 server on libuv + http-parser for the
 * agent's API: keep-alive, pipelining (one request handled at a time, reading
 * paused while a response is written), and bounded headers, bodies, request
 * time and idle time. Errors are answered as JSON {"error": "..."}. */
#ifndef NOMCLIENT_HTTP_SERVER_H
#define NOMCLIENT_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util.h"

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
};

struct http_server;

int http_server_start(struct http_server **out, uv_loop_t *loop,
                      const struct http_server_config *cfg,
                      http_handler_fn handler, void *ctx,
                      struct nc_error *err);
int http_server_port(const struct http_server *s);
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

#endif
