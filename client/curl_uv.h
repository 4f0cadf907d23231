/* curl_uv.h - one libcurl multi handle driven by a libuv loop, for one-shot
 * HTTP requests that end in a completion callback.
 *
 * libcurl is loaded with dlopen("libcurl.so.4") on first use (or the path
 * in NOMCLIENT_LIBCURL): the binary does not link it, because linking maps
 * ~35 libraries and ~6 MB RSS into every process and the same binary runs
 * as a small task supervisor. Nothing of <curl/curl.h> leaks through this
 * header.
 *
 * The multi handle follows curl's multi-uv.c example, minding what it gets
 * wrong: a timer timeout of -1 stops the uv_timer; a negative poll status
 * is passed on as CURL_CSELECT_ERR; curl_multi_info_read is drained after
 * every curl_multi_socket_action, whatever the running count; a poll
 * handle is freed only in its uv_close callback. Connections are reused
 * between requests unless a request asks for a fresh one.
 *
 * Streams: a request may hand its answer's body to a callback as it
 * arrives (on_data), upload its body from a file (body_file), and fail
 * when no byte moved for a while (idle_timeout_ms). libcurl forbids
 * adding or removing transfers from inside its callbacks, so what on_data
 * asks for (start, cancel, expire, close) is queued and done as soon as
 * libcurl returns to us, before the loop polls again. */
#ifndef NOMCLIENT_CURL_UV_H
#define NOMCLIENT_CURL_UV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "client/util.h"

struct curl_uv;
struct curl_uv_xfer;

/* Body bytes of a streamed answer, in order, as they arrive. */
typedef void (*curl_uv_data_fn)(void *arg, const char *data, size_t len);

struct curl_uv_tls {
    const char *ca_file;   /* PEM bundle to verify the server, or NULL */
    const char *cert_file; /* client certificate (PEM), or NULL */
    const char *key_file;  /* its key (PEM), or NULL */
    bool insecure;         /* no peer nor host name verification */
};

/* One request. Everything is copied by curl_uv_start: the caller may free
 * it as soon as that returns. */
struct curl_uv_request {
    const char *method;         /* "GET" when NULL */
    const char *url;            /* http:// or https:// */
    const char *unix_socket;    /* connect to this socket path, or NULL */
    const char *const *headers; /* "Name: value" lines, NULL-terminated */
    const char *body;           /* request body, or NULL */
    size_t body_len;
    const struct curl_uv_tls *tls; /* NULL: curl's defaults (verify) */
    long timeout_ms;               /* whole transfer; 0 = none */
    long connect_timeout_ms;       /* 0 = curl's default */
    size_t max_body;               /* answer bytes kept; 0 = CURL_UV_MAX_BODY */
    bool fresh_connect;            /* a new connection, closed afterwards */
    const char *protocols; /* allowed schemes ("https"); NULL = http,https */
    bool http2;            /* HTTP/2 only: h2 over TLS, h2c with prior
                              knowledge over http:// (gRPC) */
    bool keep_headers;     /* the response's header and trailer lines go
                              to curl_uv_response.headers */
    /* Streaming. When on_data is set, the body of a 2xx answer goes to it
     * as it arrives, after the headers (so the status is 2xx whenever it
     * is called), and is not kept: the response's body is then "". The
     * body of any other status (an error's text) is kept as without
     * on_data, up to max_body. on_data may start, cancel or expire
     * requests (its own too) and close the handle; these take effect as
     * soon as it returns (a cancelled or closed transfer gets no more
     * data). */
    curl_uv_data_fn on_data;
    void *data_arg;
    /* The request body is read from this file as curl sends it (a
     * regular file; Content-Length is its size at the start); `body` is
     * ignored then. A method other than POST is sent with the same body.
     * The reads are plain read()s on the loop's thread: for local files
     * in the page cache, not for slow or network filesystems. */
    const char *body_file;
    /* When no byte was received or sent for this long (from the start:
     * connect and waiting for the status count), the transfer ends with
     * timed_out and idle set and the error "no data for 2m0s". 0 = no
     * such limit. A uv timer of the transfer's own, rearmed lazily: no
     * timer work per chunk. */
    long idle_timeout_ms;
};

#define CURL_UV_MAX_BODY ((size_t)16 << 20)

/* What came back. Pointers are valid during the callback only. */
struct curl_uv_response {
    long status;        /* HTTP status, 0 when no status line was read */
    const char *reason; /* the status line's text ("Not Found") or "" */
    const char *body;   /* NUL-terminated (the body may hold NULs too) */
    size_t body_len;
    bool capped;    /* the body was longer than max_body: cut there */
    bool truncated; /* the peer failed or closed the connection before the
                       answer was complete (CURLE_RECV_ERROR,
                       CURLE_PARTIAL_FILE): status and body are what came */
    int curl_code;  /* CURLcode; 0 = complete */
    int os_errno;   /* errno of a failed connect, else 0 */
    bool timed_out;
    bool idle;                /* timed out by idle_timeout_ms */
    const char *error;        /* "" when complete, else curl's message */
    const char *redirect_url; /* an absolute Location, or NULL */
    uint64_t duration_ns;     /* from curl_uv_start to completion */
    /* with keep_headers: every header line then every trailer line as
     * received ("grpc-status: 0\r\n"), NUL-terminated; else "" */
    const char *headers;
    size_t headers_len;
};

/* Called once per started request, unless it was cancelled or the handle
 * closed first. It may start new requests, cancel others or close the
 * handle. */
typedef void (*curl_uv_done_fn)(void *arg, const struct curl_uv_response *r);

/* Loads libcurl if needed and makes a multi handle on `loop`. Returns 0, or
 * -ENOENT (libcurl missing: err says so) or -ENOMEM. */
int curl_uv_open(struct curl_uv **out, uv_loop_t *loop, struct nc_error *err);

/* Abandons every request in flight (no callbacks) and frees the handle once
 * libuv closed its handles; `closed` (may be NULL) is called then. */
void curl_uv_close(struct curl_uv *m, void (*closed)(void *arg), void *arg);

/* Starts a request; `done` gets the answer later, never from within this
 * call. *out (may be NULL) receives a pointer for curl_uv_cancel, valid
 * until the callback runs. Returns 0 or a negative errno (-EINVAL; a
 * body_file that cannot be opened: open()'s errno, or -EINVAL when it is
 * not a regular file). */
int curl_uv_start(struct curl_uv *m, const struct curl_uv_request *req,
                  curl_uv_done_fn done, void *arg, struct curl_uv_xfer **out);

/* Stops a request before its callback ran; the callback will not run. */
void curl_uv_cancel(struct curl_uv *m, struct curl_uv_xfer *x);

/* Ends a request now as if its timeout had passed: the callback runs from
 * within this call with what was read so far (status, reason, body),
 * timed_out set. For a caller whose own deadline decides, not curl's.
 * (From within an on_data callback: right after that returns.) */
void curl_uv_expire(struct curl_uv *m, struct curl_uv_xfer *x);

/* Requests started whose callback has not run yet. */
size_t curl_uv_in_flight(const struct curl_uv *m);

/* Whether libcurl can be loaded; why not in `why` (may be NULL). */
bool curl_uv_available(char *why, size_t whylen);

#endif
