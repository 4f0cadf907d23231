/* checks.h - the health-check engine: HTTP, HTTPS, TCP, gRPC and script
 * probes run on
 * their interval and timeout on a caller's libuv loop, with Consul's
 * status thresholds and Nomad's check_restart. Knows nothing of jobs: a
 * check is a definition, a target address and an opaque owner pointer.
 *
 * Probes:
 *   - tcp: non-blocking connect within the timeout; passing on connect;
 *     the socket is then closed with SO_LINGER 0 (RST, no TIME_WAIT).
 *   - http: our own lean client (raw non-blocking socket, one epoll set the
 *     engine registers into the loop with a single uv_poll, http-parser):
 *     fresh connection per probe, request bytes built once per definition,
 *     "Connection: close", RST close once the answer is in.
 *   - https: libcurl, loaded with dlopen("libcurl.so.4") on the first HTTPS
 *     check (the binary never links it; $NOMCLIENT_LIBCURL names another
 *     file), one multi handle driven by the loop. Without it the check is
 *     critical: "HTTPS checks need libcurl (Debian package libcurl4): ...".
 *   - grpc: grpc.health.v1.Health/Check over HTTP/2 through the same
 *     dlopen'd libcurl (h2c with prior knowledge, or h2 over TLS with
 *     grpc_use_tls); the request frame is built and the answer's message
 *     and grpc-status parsed here. SERVING is passing, anything else
 *     critical, as Consul's gRPC check.
 *   - script: the caller runs the command (chk_callbacks.script_start:
 *     inside the task, through its driver) and hands back the exit code
 *     and output: 0 passing, 1 warning, anything else critical, as
 *     Nomad's script checks; at the deadline the run is cancelled
 *     ("context deadline exceeded", critical).
 * Redirects (301, 302, 303, 307, 308), as Consul's Go client: followed up
 * to CHK_MAX_REDIRECTS, each on a fresh connection, all within the one
 * probe deadline; then "stopped after 10 redirects" (critical), so a
 * redirect loop ends critical well inside the timeout. Only redirects back
 * to the check's own scheme://address:port are followed (no name
 * resolution here); one elsewhere leaves its 3xx as the result (critical).
 * Body: at most CHK_OUTPUT_MAX bytes are kept; the probe stops reading as
 * soon as it has the status and that much body (an endless body costs one
 * read, not the timeout), and the status code decides, as in Consul.
 *
 * Status of a result: HTTP 2xx passing, 429 warning, anything else, a
 * connection error or a timeout critical. The check's reported status
 * follows Consul's thresholds (success_before_passing,
 * failures_before_warning, failures_before_critical); see chk_threshold_apply.
 *
 * Memory: HTTP and TCP probes reuse per-check state (socket, parser,
 * buffers, timers shared per time slot); nothing is allocated per probe
 * except the first time a buffer grows. An HTTPS probe is one libcurl
 * request (client/curl_uv.h) with a full TLS handshake each time, as
 * Consul's client does: it re-checks the certificate on every probe. */
#ifndef NOMCLIENT_CHECKS_H
#define NOMCLIENT_CHECKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "client/util.h"

#define CHK_OUTPUT_MAX 4096              /* body bytes kept, as Consul */
#define CHK_HISTORY 10                   /* results kept per check */
#define CHK_MAX_REDIRECTS 10             /* as Go's http.Client (Consul) */
#define CHK_MIN_INTERVAL_NS 1000000000LL /* Nomad's minimum interval, 1s */
#define CHK_MIN_TIMEOUT_NS 1000000000LL  /* Nomad's minimum timeout, 1s */
#define CHK_STAGGER_CAP_NS                                                     \
    5000000000LL /* first run within min(interval, 5s)                         \
                  */

enum chk_type {
    CHK_TYPE_NONE = 0,
    CHK_TYPE_HTTP,
    CHK_TYPE_TCP,
    CHK_TYPE_GRPC,
    CHK_TYPE_SCRIPT
};
enum chk_protocol { CHK_PROTO_HTTP = 0, CHK_PROTO_HTTPS };
/* Zero is critical so a zeroed definition starts critical, as Nomad. */
enum chk_status { CHK_CRITICAL = 0, CHK_WARNING, CHK_PASSING };

struct chk_header {
    const char *name;
    const char *value;
};

/* check_restart: after `grace` from the check's (re)start, `limit`
 * consecutive unhealthy statuses (critical; warning too unless
 * ignore_warnings) call on_restart. limit 0 disables it. */
struct chk_restart_def {
    int limit;
    int64_t grace_ns;
    bool ignore_warnings;
};

/* A check definition. Every pointer is the caller's: chk_add/chk_update
 * copy what they keep. */
struct chk_def {
    const char *id;   /* caller-chosen, unique in the engine */
    const char *name; /* optional, shown in JSON */
    enum chk_type type;
    const char *address; /* IPv4 or IPv6 literal; hostnames are rejected
                            (not used by script checks) */
    int port;            /* 1-65535 */
    enum chk_protocol protocol;
    const char *method;               /* NULL = GET */
    const char *path;                 /* required for http: "/health?x=1" */
    const struct chk_header *headers; /* a name may repeat (multi-valued) */
    size_t nheaders;
    const char *body; /* NULL = none; sent with Content-Length */
    bool tls_skip_verify; /* https, and grpc with grpc_use_tls */
    const char *grpc_service; /* grpc: the service asked about, "" = all */
    bool grpc_use_tls;
    const char *command;       /* script: argv[0] */
    const char *const *args;   /* script: the rest of argv */
    size_t nargs;
    int64_t interval_ns; /* >= 1s */
    int64_t timeout_ns;  /* >= 1s; the whole probe */
    int success_before_passing;
    int failures_before_critical;
    int failures_before_warning; /* 0 = failures_before_critical */
    enum chk_status initial_status;
    const char *on_update; /* require_healthy (default), ignore_warnings,
                              ignore: kept and reported, not acted on */
    struct chk_restart_def check_restart;
    void *owner; /* opaque, returned by chk_owner */
};

/* One probe's outcome. `output` is valid during the callback; afterwards
 * the check's last result holds a copy until the next probe. */
struct chk_result {
    enum chk_status status; /* of this probe, before thresholds */
    const char *output;
    int http_code; /* 0 for tcp or when no status line arrived */
    bool timed_out;
    int64_t time_unix_ns; /* when the probe started */
    int64_t latency_ns;   /* probe start to result */
    int64_t lateness_ns;  /* probe start minus its scheduled time */
};

struct chk; /* a check in an engine, owned by the engine */
struct chk_engine;

/* How a script check's command ended (script_start's `done`): exit_code
 * 0/1/other, or error set when it could not run (critical, error as the
 * output). Output bytes need not be text. */
typedef void (*chk_script_done_fn)(void *ctx, int exit_code,
                                   const char *output, size_t output_len,
                                   const char *error);

struct chk_callbacks {
    /* every probe; `check` is valid until chk_remove */
    void (*on_result)(void *arg, struct chk *check,
                      const struct chk_result *result);
    /* the reported status changed (after thresholds) */
    void (*on_status_change)(void *arg, struct chk *check,
                             enum chk_status old_status,
                             enum chk_status new_status);
    /* check_restart reached its limit: the caller restarts the task and
     * should call chk_reset_grace once it runs again */
    void (*on_restart)(void *arg, struct chk *check);
    /* Runs a script check's argv (NULL-terminated) for `check`, killing it
     * after timeout_ns; `done(ctx, ...)` later, never from within. *run
     * is the caller's handle for script_cancel. 0, or -errno with err
     * (critical, err's text as the output). NULL: script checks are
     * critical ("script checks cannot run here"). */
    int (*script_start)(void *arg, struct chk *check, char *const argv[],
                        int64_t timeout_ns, chk_script_done_fn done,
                        void *ctx, void **run, struct nc_error *err);
    /* Kills a run; its done is not called afterwards. */
    void (*script_cancel)(void *arg, void *run);
};

/* Creates an engine on `loop` (never the default loop unless passed). Any
 * callback may be NULL; callbacks may call chk_update/chk_remove/
 * chk_engine_close. Returns 0 or -errno. */
int chk_engine_new(struct chk_engine **out, uv_loop_t *loop,
                   const struct chk_callbacks *callbacks, void *arg);
/* Stops every probe and closes the engine's handles; the engine frees
 * itself once libuv has closed them all. No callback fires afterwards. */
void chk_engine_close(struct chk_engine *e);

/* Validates and adds a check; first probe after a random stagger within
 * min(interval, CHK_STAGGER_CAP_NS). -EINVAL with err naming the field,
 * -EEXIST for a duplicate id. */
int chk_add(struct chk_engine *e, const struct chk_def *def,
            struct nc_error *err);
/* Replaces the definition of check def->id, keeping its status, threshold
 * and check_restart counts, counters, history and schedule anchor (a new
 * interval re-schedules it, with a fresh stagger). A probe in flight is
 * abandoned without a result; the next one uses the new definition.
 * -EINVAL (the old definition stays), -ENOENT if unknown. */
int chk_update(struct chk_engine *e, const struct chk_def *def,
               struct nc_error *err);
/* Stops and forgets a check (a probe in flight is aborted, no callback).
 * -ENOENT if unknown. */
int chk_remove(struct chk_engine *e, const char *id);
/* Restarts the check_restart grace period and its unhealthy count (after
 * the caller restarted the task). -ENOENT if unknown. */
int chk_reset_grace(struct chk_engine *e, const char *id);

/* The check with that id, or NULL; valid until chk_remove/engine close. */
struct chk *chk_find(struct chk_engine *e, const char *id);
const char *chk_id(const struct chk *c);
void *chk_owner(const struct chk *c); /* the definition's owner pointer */
/* The reported status (after thresholds), as Consul would show it. */
enum chk_status chk_get_status(const struct chk *c);
size_t chk_engine_count(const struct chk_engine *e);

/* Counters of a check, since it was added (kept over chk_update). */
struct chk_counters {
    uint64_t probes, passing, warning, critical, timeouts, skipped, restarts;
};
void chk_get_counters(const struct chk *c, struct chk_counters *out);

/* Live state of one check (new reference, caller owns), for
 * /v1/agent/checks and `nomclient checks`. Durations are integer
 * nanoseconds (as Nomad's API), times RFC 3339 (Go's time.Time):
 *   {"ID": "web-health", "Name": "web-health", "Type": "http",
 *    "Target": "127.0.0.1:8080", "Status": "passing",
 *    "Output": "HTTP GET http://127.0.0.1:8080/health: 200 OK Output: ok",
 *    "Timestamp": "2026-12-01T09:14:40.042198223Z", "Latency": 312000,
 *    "LastResult": {"Status": "passing", "Code": 200, "TimedOut": false,
 *                   "Lateness": 2100000},          (null before a probe)
 *    "History": [{"Status", "Timestamp", "Latency", "Code", "TimedOut"},
 *                ...],                      (newest first, CHK_HISTORY)
 *    "Counters": {"Probes", "Passing", "Warning", "Critical", "Timeouts",
 *                 "Skipped", "Restarts"},
 *    "Interval", "Timeout", "SuccessBeforePassing", "FailuresBeforeWarning",
 *    "FailuresBeforeCritical", "InitialStatus", "OnUpdate", "Running",
 *    "CheckRestart": {"Limit", "Grace", "IgnoreWarnings", "Unhealthy"},
 *    http only: "Protocol", "Method", "URL", "TLSSkipVerify"}
 * Status is the reported one (after thresholds); LastResult.Status the
 * last probe's own. */
json_t *chk_to_json(const struct chk *c);
/* {"<ID>": chk_to_json(...), ...} as Consul's /v1/agent/checks, in the
 * order the checks were added (new reference). */
json_t *chk_engine_to_json(const struct chk_engine *e);

const char *chk_status_name(enum chk_status s); /* passing|warning|critical */
/* Parses passing|warning|critical; -EINVAL else. */
int chk_status_parse(const char *s, enum chk_status *out);

/* Validates a definition without adding it: 0 or -EINVAL with err. */
int chk_validate(const struct chk_def *def, struct nc_error *err);

/* ---- pure pieces, exposed for tests ---------------------------------- */

/* Consul's threshold counters for one check. */
struct chk_threshold_state {
    enum chk_status status;  /* reported */
    int successes, failures; /* consecutive */
};
struct chk_thresholds {
    int success_before_passing, failures_before_warning,
        failures_before_critical;
};
/* Applies one result, as Consul's StatusHandler: passing/warning results
 * count as successes and change the status once success_before_passing is
 * reached; critical ones reach warning after failures_before_warning and
 * critical after failures_before_critical. Returns the reported status. */
enum chk_status chk_threshold_apply(struct chk_threshold_state *st,
                                    const struct chk_thresholds *t,
                                    enum chk_status result);

/* check_restart counting: returns true when a restart is due (and resets
 * the count). `in_grace` means the grace period has not elapsed. */
bool chk_restart_apply(int *unhealthy, const struct chk_restart_def *r,
                       enum chk_status status, bool in_grace);

/* Maps an HTTP status code to a result status (2xx, 429, else). */
enum chk_status chk_http_status(int code);

/* Maps a script's exit code to a result status (0, 1, else), as Nomad. */
enum chk_status chk_script_status(int exit_code);

/* gRPC health checking (grpc.health.v1), the pieces a probe is made of.
 * The request: a length-prefixed message frame of HealthCheckRequest
 * {service} into out (replacing its contents). */
void chk_grpc_request_frame(const char *service, struct nc_buf *out);
/* Health status values of HealthCheckResponse. */
enum chk_grpc_serving {
    CHK_GRPC_UNKNOWN = 0,
    CHK_GRPC_SERVING = 1,
    CHK_GRPC_NOT_SERVING = 2,
    CHK_GRPC_SERVICE_UNKNOWN = 3
};
/* Parses a response body (one length-prefixed message frame holding a
 * HealthCheckResponse) into *serving (any varint value). 0, or -EPROTO
 * with why (a static string): short frame, compressed, trailing bytes,
 * malformed protobuf. */
int chk_grpc_parse_response(const unsigned char *body, size_t len,
                            uint64_t *serving, const char **why);
/* The grpc-status and grpc-message of header/trailer lines ("name:
 * value\r\n" ...): *code -1 when absent; message (percent-decoded,
 * made valid UTF-8) appended to msg. */
void chk_grpc_trailers(const char *lines, size_t len, int *code,
                       struct nc_buf *msg);
/* "SERVING", "NOT_SERVING", ..., or NULL for another value. */
const char *chk_grpc_serving_name(uint64_t v);
/* gRPC's name of a status code ("Unavailable"), "Code(99)" style into buf
 * for others. */
const char *chk_grpc_code_name(int code, char *buf, size_t len);
/* A whole answer judged as the probe does: the HTTP status, header and
 * trailer lines and body to a result status and Consul's output for
 * target ("127.0.0.1:9090/svc") into out. */
enum chk_status chk_grpc_conclude(const char *target, long http_status,
                                  const char *lines, size_t lines_len,
                                  const unsigned char *body, size_t body_len,
                                  struct nc_buf *out);

/* Scheduling, all in the same monotonic unit (ms in the engine):
 * the first due time is now + stagger, stagger = rnd % min(interval, cap);
 * after a slot `due`, the next slot is the first due + k*interval strictly
 * after `now` (anchored: probe latency never shifts the schedule);
 * `*missed` counts the slots passed over (loop stall). */
uint64_t chk_schedule_first(uint64_t now, uint64_t interval, uint64_t cap,
                            uint64_t rnd);
uint64_t chk_schedule_next(uint64_t due, uint64_t interval, uint64_t now,
                           uint64_t *missed);

/* For tests and fuzzing: runs the HTTP probe's response handling (parser,
 * 4 KiB body cap, status mapping, Consul output wording) over `data`
 * as if read from the socket in chunks of `chunk` bytes (0 = all at once),
 * then EOF. Fills *result (output points into `out`). For a 3xx with a
 * Location, appends " [redirect: <path>]" (or "not followed") as a check
 * on 127.0.0.1:80 would see it. Returns 0. */
int chk_http_feed_for_test(const char *data, size_t len, size_t chunk,
                           struct chk_result *result, struct nc_buf *out);

#endif
