/* drivers/docker_api.h - an asynchronous client of the Docker Engine API
 * (v1.41, Debian 12's docker.io 20.10) over the daemon's unix socket or
 * TCP, on the agent's loop, through client/curl_uv.h (libcurl dlopen'd).
 *
 * One struct docker_api per endpoint holds one libcurl multi handle; many
 * calls may be in flight at once (a long POST /containers/{id}/wait per
 * running container), each on its own connection to the daemon, reused
 * once it is done. A call ends in exactly one docker_done_fn callback,
 * never from within docker_call, unless it is cancelled or the client is
 * closed first. Streams (logs, attach, events, pull progress) hand the
 * answer's body to docker_data_fn as it arrives and keep nothing; the
 * parsers below (docker_demux_*, docker_progress_*) read those streams
 * piece by piece.
 *
 * Also here, free of any loop: the multiplexed stdout/stderr framing of a
 * non-tty container, the JSON-lines progress of pulls and loads, the
 * X-Registry-Auth header, query escaping, and a blocking call for the CLI
 * and tests. */
#ifndef NOMCLIENT_DRIVERS_DOCKER_API_H
#define NOMCLIENT_DRIVERS_DOCKER_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "client/util.h"

#define DOCKER_API_VERSION "v1.41"
#define DOCKER_DEFAULT_ENDPOINT "unix:///var/run/docker.sock"

struct docker_api;
struct docker_call;

/* How a call ended. Pointers are valid during the callback only. */
struct docker_reply {
    long status;        /* HTTP status; 0: no answer (error says why) */
    const json_t *json; /* the body parsed when it is JSON, else NULL */
    const char *body;   /* "" for a streamed 2xx answer (see on_data) */
    size_t body_len;
    /* NULL exactly when the call succeeded: a complete 2xx answer. Else
     * the daemon's "message" for an API error ("No such container: x"),
     * or why the call failed, worded for an operator: "cannot connect to
     * the Docker daemon at unix:///x.sock: No such file or directory",
     * "Docker API call POST /containers/create timed out after 5s",
     * "Docker daemon answered 500 with a body that is not JSON". A 2xx
     * whose body was cut short has error set and its status kept: test
     * error, not status, for success. */
    const char *error;
    bool timed_out; /* timeout_ms or idle_timeout_ms passed */
    uint64_t duration_ns; /* the call's wall time, from docker_call */
    const char *what;     /* "POST /containers/<id>/start", no query */
};

typedef void (*docker_done_fn)(void *arg, const struct docker_reply *r);
typedef void (*docker_data_fn)(void *arg, const char *data, size_t len);

struct docker_call_opts {
    const char *method; /* NULL: GET */
    /* "/containers/create?name=web-<id>", without the version; query
     * values escaped by the caller with docker_query_escape. Must start
     * with '/' and hold no space or control character. */
    const char *path;
    const json_t *body; /* JSON body (Content-Type: application/json) */
    /* or: a raw body streamed from this regular file (Content-Type:
     * application/x-tar), POST /images/load of a tarball */
    const char *body_file;
    const char *const *headers; /* extra "Name: value", NULL-terminated
                                   (X-Registry-Auth); no CR or LF */
    long timeout_ms;      /* whole call; 0: none (wait, logs follow, events) */
    long idle_timeout_ms; /* no byte in or out for this long: fail (pulls) */
    /* Streaming: the body of a 2xx answer goes here as it comes and is
     * not kept (the reply's body is then ""). An error status's body is
     * kept as usual, so the reply still carries the daemon's message.
     * on_data may call docker_call, docker_call_cancel (its own call too)
     * and docker_api_close; a cancelled call gets no more data. */
    docker_data_fn on_data;
    void *data_arg;
};

/* Makes a client of `endpoint`: "unix:///abs/path.sock" or
 * "tcp://host:port" (host a name, IPv4 or [IPv6]); NULL or "" means
 * DOCKER_DEFAULT_ENDPOINT. Nothing is connected yet. Returns 0, -EINVAL
 * for another form (err says which forms are taken) or -ENOENT when
 * libcurl cannot be loaded. */
int docker_api_open(struct docker_api **out, uv_loop_t *loop,
                    const char *endpoint, struct nc_error *err);

/* Abandons the calls in flight (no callbacks) and frees the client; its
 * last memory goes once the loop ran the libuv handles' close callbacks.
 * Safe on NULL and from within any callback of this client. */
void docker_api_close(struct docker_api *api);

/* The endpoint as given ("unix:///var/run/docker.sock"). */
const char *docker_api_endpoint(const struct docker_api *api);

/* Starts a call; `done` gets its reply later (never from within this
 * call). *out (may be NULL) receives a handle for docker_call_cancel,
 * valid until `done` runs. Returns 0, -EINVAL (no path, a path or header
 * that is not acceptable) or open()'s -errno for a body_file that cannot
 * be read (-EINVAL: not a regular file). */
int docker_call(struct docker_api *api, const struct docker_call_opts *o,
                docker_done_fn done, void *arg, struct docker_call **out);

/* Stops a call before its callback ran: no callback after. */
void docker_call_cancel(struct docker_api *api, struct docker_call *c);

/* Calls started whose callback has not run. */
size_t docker_api_in_flight(const struct docker_api *api);

/* Blocking, for the CLI (leftovers) and tests: runs its own private loop,
 * never the caller's. Returns 0 when an answer came, whatever its status:
 * *status set, *json the parsed body or NULL (caller decrefs; json may be
 * NULL to ignore it), and for a non-2xx status err holds the reply's
 * error too. Returns -errno with err set when no complete answer came
 * (-ETIMEDOUT, -ECONNREFUSED, -ENOENT, -EIO, -EINVAL). */
int docker_call_sync(const char *endpoint, const char *method, const char *path,
                     const json_t *body, long timeout_ms, long *status,
                     json_t **json, struct nc_error *err);

/* Percent-encodes everything but RFC 3986's unreserved characters, for a
 * query value or a path segment; caller frees. NULL gives NULL. */
char *docker_query_escape(const char *s);

/* The multiplexed stream of a non-tty container's logs, attach or exec:
 * frames of an 8-byte header (stream type, 3 zero bytes, big-endian
 * 32-bit length) and that many payload bytes. Feed bytes as they come, in
 * pieces of any size; out() gets each payload piece with its stream: 1
 * stdout, 2 stderr (0, stdin, is passed as 1), and 3 for the daemon's own
 * error text inside the stream (moby's stdcopy "systemerr", e.g. a logging
 * driver that cannot read). Payloads are passed through as they arrive,
 * never buffered, so frames may be of any length. Returns 0, or -EPROTO on
 * a header that is not one (the stream is not multiplexed, a tty
 * container's, or corrupt: stop reading), and -EPROTO again for anything
 * fed after. Zero-initialize the struct to start. */
struct docker_demux {
    unsigned char hdr[8];
    size_t have;   /* header bytes in hdr */
    uint32_t left; /* payload bytes of the current frame still to come */
    int stream;    /* the current frame's stream; -1 after -EPROTO */
};
int docker_demux_feed(struct docker_demux *d, const char *p, size_t n,
                      void (*out)(void *arg, int stream, const char *p,
                                  size_t n),
                      void *arg);

/* The JSON-lines progress stream of POST /images/create (pull) and
 * /images/load: feed bytes as they come; fn gets each complete line's
 * object (empty lines skipped); pass n = 0 at the end of the stream to
 * take a last line without its newline. An object with "errorDetail" or
 * "error" is the operation's failure: p->error is set to its message
 * (errorDetail.message first), the first one kept; the stream goes on.
 * Returns 0; -EPROTO for a line that is not a JSON object, -EMSGSIZE for
 * a line over DOCKER_PROGRESS_MAX_LINE: then p->error says so (unless a
 * failure came first) and every later feed returns the same. Zero-
 * initialize the struct; p->error is the caller's to free (free() it);
 * docker_progress_free releases the line buffer only. */
#define DOCKER_PROGRESS_MAX_LINE (64 * 1024)
struct docker_progress {
    char *buf; /* the incomplete last line */
    size_t len, cap;
    char *error; /* the failure's message, or NULL; caller frees */
    int failed;  /* 0, or the -errno every feed returns from now on */
};
int docker_progress_feed(struct docker_progress *p, const char *data, size_t n,
                         void (*fn)(void *arg, const json_t *obj), void *arg);
void docker_progress_free(struct docker_progress *p);

/* The X-Registry-Auth header's value: base64url with padding (RFC 4648
 * section 5, Go's base64.URLEncoding, as Docker's) of the JSON object
 * {"username","password","email","serveraddress"}, in that order; fields
 * NULL or "" are left out (Go's omitempty). Caller frees. */
char *docker_registry_auth(const char *username, const char *password,
                           const char *email, const char *server);

/* Appends {"Call": "POST /containers/{id}/start", "Us": N} for the reply
 * to the array `calls` (the id or name after /containers/ and /images/
 * put as {id}); returns the call's microseconds. Nothing on NULL. */
uint64_t docker_timing_add(json_t *calls, const struct docker_reply *r);

/* True when the reply means the daemon itself is away (no socket,
 * connection refused, closed before any answer, timed out before any
 * status), as opposed to an API error: no HTTP status came and an error
 * is set. */
bool docker_reply_unreachable(const struct docker_reply *r);

#endif
