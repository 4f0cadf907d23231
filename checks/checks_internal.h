/* checks_internal.h - what the files of checks/ share: the engine and check
 * structs and the small interface each probe kind implements. Not for use
 * outside checks/ (the public API is checks.h). */
#ifndef NOMCLIENT_CHECKS_INTERNAL_H
#define NOMCLIENT_CHECKS_INTERNAL_H

#include <http_parser.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "checks/checks.h"

#ifndef CHK_TIMER_SLACK_MS
#define CHK_TIMER_SLACK_MS 4 /* wake-ups on a 4 ms grid (timers.c) */
#endif

struct chk_slot;  /* timers.c */
struct chk_https; /* probe_https.c: a check's request lines and transfer */
struct chk_grpc;  /* probe_grpc.c: a check's request and transfer */
struct curl_uv;   /* client/curl_uv.h: the HTTPS probes' multi handle */

/* What a probe kind provides. start returns 0 when the probe runs (its
 * result comes later through chk_probe_finish) or a negative errno when it
 * could not start (the engine reports that as critical). abort stops a
 * running probe silently (timeout, remove, update, close). */
struct chk_probe_ops {
    const char *name;
    int (*start)(struct chk *c);
    void (*abort)(struct chk *c);
    /* deadline reached: conclude with what was read, or leave c->running
     * for the engine to report a timeout (NULL = abort) */
    void (*expire)(struct chk *c);
    void (*on_event)(struct chk *c, uint32_t epoll_events); /* net probes */
    void (*release)(struct chk *c); /* frees per-check probe state */
};

extern const struct chk_probe_ops chk_tcp_ops, chk_http_ops, chk_https_ops,
    chk_grpc_ops, chk_script_ops;

/* Response parsing state of an HTTP probe, reused for every probe. */
struct chk_http_state {
    http_parser parser;
    int code;
    bool head;         /* HEAD request: no body */
    bool headers_done; /* status line and headers parsed */
    bool done;         /* complete, or enough body to decide */
    bool failed;       /* parse error: parser's errno says why */
    bool in_value;     /* last callback was a header value */
    bool in_location;  /* that value is a Location header's */
    uint8_t field_len; /* header name bytes seen, up to sizeof(field) */
    char field[9];
    struct nc_buf *location; /* where a 3xx Location goes (NULL: ignore) */
    uint8_t reason_len;
    char reason[38];     /* status line reason phrase, truncated */
    struct nc_buf *body; /* where on_body appends (capped) */
};

struct chk_history_entry { /* 16 bytes */
    int64_t time_unix_ns;
    uint32_t latency_us;
    int16_t http_code;
    uint8_t status;
    bool timed_out;
};

struct chk {
    struct chk_engine *e;
    struct chk *next, *prev; /* engine order */
    struct chk *hnext;       /* hash chain */
    uint32_t hash;
    const struct chk_probe_ops *ops;

    struct chk_def def; /* owned copies of every string and header */
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;
    socklen_t addrlen;
    char *target;  /* "127.0.0.1:8080", "[::1]:8080" */
    char *url;     /* "http://127.0.0.1:8080/health" (http only) */
    char *prefix;  /* of every http output: "HTTP GET <url>: " ("" for tcp) */
    char *request; /* request bytes, built once per definition */
    size_t request_len;
    const char *req; /* what this probe sends: request, or redirect.data */
    size_t req_len;
    uint64_t interval_ms, timeout_ms; /* schedule, in loop time (uv_now, ms) */
    struct chk_slot *slot;     /* the timer slot it waits in (timers.c) */
    struct chk *snext, *sprev; /* in that slot */
    uint64_t due_ms;           /* next scheduled probe */
    uint64_t deadline_ms;      /* running probe's */
    uint64_t grace_until_ms;
    uint64_t started_hr_ns; /* uv_hrtime at probe start */
    int64_t started_unix_ns;
    int64_t lateness_ns;

    /* running probe */
    bool running;
    bool removed;
    bool keep_socket; /* fd survives the probe (net.c) */
    bool in_epoll;    /* fd is in the engine's epoll set */
    int fd;
    size_t sent;
    struct chk_http_state http;
    struct nc_buf body;      /* response body of the running probe, capped */
    struct nc_buf location;  /* Location of a 3xx answer (allocated on use) */
    struct nc_buf redirect;  /* request of a followed redirect (on use) */
    int redirects;           /* followed in this probe */
    struct chk_https *https; /* https only, made on first probe */
    struct chk_grpc *grpc;   /* grpc only, made on first probe */
    void *script_run;        /* the caller's run of a script probe */

    /* results */
    struct chk_threshold_state ts;
    int restart_unhealthy;
    struct chk_counters counters;
    struct nc_buf output; /* last result's output */
    struct chk_result last;
    bool has_last;
    struct chk_history_entry hist[CHK_HISTORY];
    unsigned hist_n, hist_head;
};

struct chk_engine {
    uv_loop_t *loop;
    struct chk_callbacks cb;
    void *arg;
    struct chk *head, *tail;
    size_t n;
    struct chk **buckets;
    size_t nbuckets;
    int epfd;
    uv_poll_t epoll_watcher;
    struct chk_slot **slot_buckets; /* timers.c: slots by wake-up time */
    struct chk_slot *slot_free, *slots;
    struct chk *graveyard; /* removed checks, freed by the reaper */
    uv_timer_t reaper;
    int open_handles;                 /* uv handles not yet closed */
    size_t kept_sockets, keep_budget; /* net.c */
    bool closing;
    struct curl_uv *curl; /* opened by the first HTTPS probe */
    char rbuf[16384];     /* shared read buffer: reads are handled at once */
};

/* Ends the running probe with a result: the probe has already written the
 * output into c->output. Applies thresholds, history, counters and
 * callbacks; the check may be removed by a callback (c->removed). */
void chk_probe_finish(struct chk *c, enum chk_status status, int http_code,
                      bool timed_out);
/* Starts c->output with the check's prefix ("HTTP GET <url>: "). */
void chk_output_begin(struct chk *c);
/* Writes the timeout output: "... timeout after 2s". */
void chk_output_timeout(struct chk *c);
/* Same, formatting the output. */
void chk_probe_finishf(struct chk *c, enum chk_status status, int http_code,
                       bool timed_out, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* net.c: raw non-blocking sockets registered in the engine's epoll set */
int chk_net_open(struct chk_engine *e);
void chk_net_close(struct chk_engine *e);
/* Creates the socket and starts connecting; 0 when connecting or
 * connected (*connected tells), -errno on an immediate failure. */
int chk_net_connect(struct chk *c, bool *connected);
/* Waits (one-shot) for events on the probe socket. */
int chk_net_watch(struct chk *c, uint32_t events);
/* The pending socket error (SO_ERROR), as -errno, or 0. */
int chk_net_socket_error(struct chk *c);
/* Ends the probe's connection with an RST; the socket is kept for the
 * next probe when the fd budget allows, else closed. */
void chk_net_drop(struct chk *c);
/* Closes the check's socket for good (remove, update, engine close). */
void chk_net_release(struct chk *c);
/* "dial tcp 127.0.0.1:8080: connect: connection refused" into out. */
void chk_net_format_error(const struct chk *c, const char *op, int err,
                          struct nc_buf *out);
/* strerror in Go's lower-case spelling ("connection refused"). */
const char *chk_errno_text(int err, char *buf, size_t len);

/* probe_http.c: response handling shared with the fuzz entry point */
void chk_http_begin(struct chk_http_state *h, bool head);
/* Feeds bytes (len 0 = EOF); returns 0, or -EPROTO on a parse error. */
int chk_http_feed(struct chk_http_state *h, struct nc_buf *body,
                  const char *data, size_t len);
/* Writes the Consul-style output of a parsed response and returns its
 * status: "HTTP GET <url>: 200 OK Output: <body>". */
enum chk_status chk_http_conclude(const struct chk_http_state *h,
                                  const char *prefix, const struct nc_buf *body,
                                  struct nc_buf *out);
/* The request headers both http probes send, after Host: User-Agent and
 * Accept unless the definition sets them, the definition's own (framing
 * ones excepted), and Connection: close. */
void chk_http_header_lines(const struct chk *c,
                           void (*emit)(void *arg, const char *name,
                                        const char *value),
                           void *arg);
/* Builds c->request from the definition. */
void chk_http_build_request(struct chk *c);
/* The path to request next when `location` (a 3xx Location) points back
 * to the check's own scheme://target, or NULL (another host, another
 * scheme, or characters that do not belong in a request line). */
const char *chk_redirect_path(const struct chk *c, const char *location);
bool chk_http_is_redirect(int code);
/* The method of the next hop (the definition's own, or "GET"). */
const char *chk_redirect_method(const struct chk *c, int code);
/* Ends the probe critical ("stopped after 10 redirects") when the limit is
 * reached: true then. */
bool chk_redirect_limit(struct chk *c, int code);

/* timers.c */
void chk_timers_init(struct chk_engine *e);
void chk_timers_close(struct chk_engine *e);
/* Wakes the check (chk_check_due) at `when` (loop ms, rounded up to the
 * slack grid); replaces any earlier arming. */
void chk_timer_arm(struct chk *c, uint64_t when);
void chk_timer_disarm(struct chk *c);
/* Frees the (unlinked, stopped) check on a later loop iteration. */
void chk_timers_bury(struct chk *c);
/* checks.c, called from timers.c */
void chk_check_due(struct chk *c);
void chk_check_free(struct chk *c);

/* probe_https.c: closes e->curl (one open handle of the engine's) */
void chk_curl_engine_close(struct chk_engine *e);
/* probe_https.c: the engine's multi handle, opened on first use; NULL
 * with err set when libcurl cannot be loaded */
struct curl_uv *chk_engine_curl(struct chk_engine *e, struct nc_error *err);
/* probe_http.c: appends bytes as valid UTF-8 (NULs and invalid sequences
 * become U+FFFD), for outputs that go into JSON */
void chk_output_append_clean(struct nc_buf *out, const unsigned char *s,
                             size_t n);
/* checks.c: one of e->open_handles is closed */
void chk_engine_handle_closed(struct chk_engine *e);

#endif
