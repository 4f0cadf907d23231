/* internal.h - what the files of client/services/ share among
 * themselves. Not a public header: code outside this folder includes
 * services.h only.
 *
 * The Consul client is split by concern:
 *   consul_view.c     what Consul holds: its listings, scanned in place
 *   consul_diff.c     desired vs. registered, field by field
 *   consul_request.c  the request queue, and how an answer came out
 *   consul_loop.c     backoff, what answers change, check pushes and
 *                     keep-alives, passes
 *   consul_sync.c     the address, the registrations' state, the desired
 *                     state, open, close and tuning
 *   consul_status.c   the debugging view
 *
 * The loop in a few lines. consul_sync_update copies the desired
 * registrations (provider "consul"); a change of what is registered
 * schedules a pass, a change of check status only a push of those checks.
 * A pass GETs /v1/agent/services and /v1/agent/checks, diffs every desired
 * registration against them, queues a registration for what is missing or
 * different, a deregistration for every "_nomad-task-" service nothing
 * here wants, and a TTL update for every check whose status Consul does
 * not have; the pass ends when the queue answered. A pass that could not
 * talk to Consul is retried after an exponential, capped, jittered
 * backoff (no request goes out meanwhile but a stopping allocation's
 * deregistrations); a good one is followed by the next in 30 s. Check
 * status goes out on a change and as a keep-alive at half the TTL, from
 * one timer armed at the earliest keep-alive due. At most max_in_flight
 * requests run at once over reused connections. */
#ifndef NOMCLIENT_SERVICES_INTERNAL_H
#define NOMCLIENT_SERVICES_INTERNAL_H

#include "client/services/services.h"

#include "client/curl_uv.h"

#define NOMAD_TASK_PREFIX "_nomad-task-"
#define SEC 1000000000ull
#define MS 1000000ull

/* ---- what Consul holds (consul_view.c) ---- */

/* how a field of Consul's entry came: absent, null, as expected, or not */
enum fkind { FIELD_ABSENT, FIELD_NULL, FIELD_OK, FIELD_BAD };

struct span {
    const char *p;
    size_t len;
};

struct cv_service {
    const char *id;
    bool is_object, forgotten;
    enum fkind service_k, tags_k, address_k, port_k, meta_k, eto_k;
    const char *service, *address;
    long long port;
    bool eto;
    size_t tags_first, ntags; /* into strs */
    size_t meta_first, nmeta; /* key/value pairs into strs */
    /* raw text of values of the wrong type, for the differences */
    struct span service_raw, tags_raw, address_raw, port_raw, meta_raw, eto_raw;
    long first_check; /* its checks in chks, linked by next; -1 none */
};

struct cv_check {
    const char *id, *service_id, *status, *output, *type;
    bool is_object;
    bool has_ttl;
    int64_t ttl_ns;
    long next;
};

struct consul_view {
    char *stext, *ctext; /* copies of the answers, decoded in place */
    struct cv_service *svcs;
    size_t nsvcs, svcs_cap;
    struct cv_check *chks;
    size_t nchks, chks_cap;
    const char **strs;
    size_t nstrs, strs_cap;
    uint32_t *svc_index, *chk_index; /* open addressing: slot + 1 */
    size_t svc_mask, chk_mask;
};

/* Parses answers it takes ownership of (NUL-terminated at len). */
int consul_view_parse_owned(struct consul_view **out, char *stext, size_t slen,
                            char *ctext, size_t clen, struct nc_error *err);
/* FNV-1a of s, the hash of the views' ID indexes. */
uint64_t consul_hash_str(const char *s);
/* The entry of ID id in an index (-1 none), hash being consul_hash_str(id). */
long consul_index_find_hashed(const uint32_t *table, size_t mask,
                              const char *id, uint64_t hash,
                              const char *(*id_at)(const struct consul_view *,
                                                   size_t),
                              const struct consul_view *v);
/* The same, hashing id itself. */
long consul_index_find(const uint32_t *table, size_t mask, const char *id,
                       const char *(*id_at)(const struct consul_view *, size_t),
                       const struct consul_view *v);
/* The ID of service i, for the service index. */
const char *consul_svc_id_at(const struct consul_view *v, size_t i);
/* The ID of check i, for the check index. */
const char *consul_chk_id_at(const struct consul_view *v, size_t i);

/* ---- the diff (consul_diff.c) ---- */

/* What a payload asks for, taken out of its JSON once: the diff of a
 * registration in sync is then a few string compares. Strings point into
 * the payload, which must outlive it. */
struct want_check {
    const char *id, *name;
    int64_t ttl_ns;
    bool has_ttl;
    uint64_t hash;
};

struct want {
    const json_t *payload;
    const char *id, *name, *address;
    uint64_t hash;
    long long port;
    bool eto;
    const char **tags; /* ntags, then nmeta key/value pairs */
    size_t ntags, nmeta;
    struct want_check *checks;
    size_t nchecks;
};

/* Takes payload apart into w, which points into it (consul_want_free). */
void consul_want_from_payload(struct want *w, const json_t *payload);
/* Frees what consul_want_from_payload allocated; w is zeroed. */
void consul_want_free(struct want *w);
/* consul_diff of a payload already taken apart. */
enum consul_diff_state consul_diff_want(const struct want *w,
                                        const struct consul_view *v,
                                        struct strlist *diffs);
/* A copy that json_string accepts, cut at max bytes; the caller frees. */
char *consul_utf8_clean(const char *s, size_t len, size_t max);

/* ---- the sync loop's state ---- */

enum reg_state {
    REG_PENDING,
    REG_IN_SYNC,
    REG_MISSING,
    REG_DIFFERENT,
    REG_REJECTED,
    REG_UNREACHABLE,
};

/* The last request about one object and what came back. */
struct cs_answer {
    int64_t time_ns;    /* unix; 0 = none yet */
    const char *method; /* static */
    char *path;
    long status; /* 0 = no HTTP answer */
    char *body;  /* cut to ANSWER_BODY_KEEP, valid UTF-8 */
    char *error; /* transport error, or NULL */
};

struct cs_check {
    char *id, *name;
    char *status, *output; /* what this node wants */
    int64_t ttl_ns;
    /* what Consul holds as far as we know (NULL: unknown) */
    char *consul_status, *consul_output;
    uint64_t last_write_ns;  /* monotonic: we last reset its TTL */
    uint64_t retry_after_ns; /* after a failed update */
    unsigned failures;
    bool queued;
    uint64_t updates;
    struct cs_answer last;
};

struct cs_reg {
    char *key; /* reg_key() of what it was made from */
    size_t key_len;
    char *id, *name, *alloc_id;
    char *error;       /* services.c: cannot be registered, why */
    json_t *payload;   /* services_consul_payload() minus checks' Status */
    struct want want;  /* the payload, taken apart for the diff */
    json_t *last_sent; /* the last registration body */
    struct cs_check *checks;
    size_t nchecks;
    enum reg_state state;
    struct strlist diffs;    /* of the last comparison */
    struct strlist repaired; /* what the last registration fixed */
    struct cs_answer last;
    unsigned gen;           /* bumped when the payload changes */
    unsigned attempts;      /* registrations sent for this payload */
    unsigned failures;      /* in a row */
    uint64_t next_retry_ns; /* monotonic, 0 = none */
    bool queued;
    bool in_consul;
};

struct cs_stale {
    char *id, *name, *address, *reason;
    json_int_t port;
    struct cs_answer last;
};

struct cs_departed {
    char *id, *alloc_id;
};

struct flush {
    char *alloc_id;
    size_t pending;
    void (*done)(void *arg, const char *alloc_id);
    void *arg;
    struct flush *prev, *next;
};

enum op_kind {
    OP_GET_SERVICES,
    OP_GET_CHECKS,
    OP_REGISTER,
    OP_DEREGISTER,
    OP_CHECK_UPDATE,
};

struct op {
    struct consul_sync *s;
    enum op_kind kind;
    char *id;              /* service ID; check ID for an update */
    char *service_id;      /* the check's service */
    char *status, *output; /* what an update sent */
    json_t *sent;          /* what a registration sent */
    unsigned gen;          /* of the payload it sent */
    char *path;
    struct flush *flush;
    bool in_pass;
    uint64_t sent_ns;
    struct curl_uv_xfer *xfer;
    struct op *prev, *next;
};

struct op_list {
    struct op *head, *tail;
    size_t n;
};

struct consul_sync {
    uv_loop_t *loop;
    struct curl_uv *http;
    struct consul_addr addr;
    char *display;
    char *token_header;
    const char *headers[4];
    const char *json_headers[5];
    struct curl_uv_tls tls;
    struct consul_sync_tuning tune;

    struct cs_reg *regs; /* sorted by ID */
    size_t nregs;
    struct cs_departed *departed;
    size_t ndeparted, departed_cap;
    struct cs_stale *stale;
    size_t nstale;
    struct consul_view *view; /* of the last good pass */

    uv_timer_t pass_timer, keepalive_timer;
    bool updated; /* the first update came */
    bool pass_running, pass_wanted, pass_diffed, pass_failed;
    bool pass_transport; /* the failure was not an HTTP answer */
    uint64_t pass_start_ns, pass_due_ns, pass_writes;
    size_t pass_pending;
    char *got_services, *got_checks;
    size_t got_services_len, got_checks_len;
    unsigned failures; /* passes in a row */
    uint64_t backoff_ns, backoff_until_ns;
    int reachable;        /* -1 unknown */
    long pass_get_status; /* HTTP status of a failed GET */

    struct op_list queue, inflight;
    struct flush *flushes;
    bool pumping;

    uint64_t n_registrations, n_deregistrations, n_check_updates, n_errors,
        n_passes, n_requests, n_writes;
    int64_t last_sync_unix_ns;
    uint64_t last_pass_ns, last_diff_ns, last_pass_writes, last_read_bytes;
    char last_error[1024];
    int64_t last_error_unix_ns;

    bool closing;
    int open_handles;
};

/* HTTP 2xx/404/other 4xx, 5xx, or no answer at all. */
enum outcome { OUT_OK, OUT_NOT_FOUND, OUT_REJECTED, OUT_SERVER, OUT_TRANSPORT };

/* ---- requests (consul_request.c) ---- */

/* The outcome of an answer. */
enum outcome consul_classify(const struct curl_uv_response *r);
/* The outcome in words, for logs and the status. */
void consul_outcome_text(const struct curl_uv_response *r, char *out,
                         size_t outlen);
/* Records what was asked (method, path) and what came back. */
void consul_answer_set(struct cs_answer *a, const char *method,
                       const char *path, const struct curl_uv_response *r);
/* Frees what an answer record holds; it is zeroed. */
void consul_answer_clear(struct cs_answer *a);
/* Takes op out of the queue or the in-flight list l. */
void consul_list_unlink(struct op_list *l, struct op *op);
/* A new op for service or check id, counted in the pass when in_pass. */
struct op *consul_op_new(struct consul_sync *s, enum op_kind kind,
                         const char *id, bool in_pass);
/* Frees an op that is in no list. */
void consul_op_free(struct op *op);
/* Queues op, at the front or the back. */
void consul_enqueue(struct consul_sync *s, struct op *op, bool front);
/* Ends an op: its pass and its flush learn of it. */
void consul_op_finish(struct consul_sync *s, struct op *op);
/* Sends what the queue holds, max_in_flight at a time. */
void consul_pump(struct consul_sync *s);

/* ---- the loop (consul_loop.c) ---- */

/* Every request's curl_uv callback: what its answer changes. */
void consul_on_answer(void *arg, const struct curl_uv_response *resp);
/* Queues every check update due; outside a pass, none while Consul is down. */
void consul_collect_pushes(struct consul_sync *s, bool in_pass);
/* Arms the keep-alive timer at the earliest keep-alive due. */
void consul_arm_keepalive(struct consul_sync *s);
/* Arms the pass timer for due (monotonic); unless forced, only earlier. */
void consul_schedule_pass_at(struct consul_sync *s, uint64_t due, bool force);
/* A pass soon, never before the backoff of a failure ends. */
void consul_request_pass(struct consul_sync *s);
/* An op of the pass ended: the diff after both GETs, then the pass's end. */
void consul_pass_op_done(struct consul_sync *s);

/* ---- the state (consul_sync.c) ---- */

/* Sets *dst to a copy of src, unless it holds that already. */
void consul_set_str(char **dst, const char *src);
/* Frees what a stale entry holds. */
void consul_stale_free(struct cs_stale *st);
/* The registration of service ID id, or NULL. */
struct cs_reg *consul_reg_find(const struct consul_sync *s, const char *id);
/* The check of r with ID id, or NULL (r may be NULL). */
struct cs_check *consul_check_find(struct cs_reg *r, const char *id);
/* Forgets the departed entry i (the last one takes its place). */
void consul_departed_remove_at(struct consul_sync *s, size_t i);
/* Forgets the departed entry of service ID id, if there is one. */
void consul_departed_remove(struct consul_sync *s, const char *id);

/* ---- the registrations view (registrations.c) ---- */

/* A string member of o, NULL when absent or empty (format_jstr). */
const char *registrations_jstr(const json_t *o, const char *key);
/* A registry's time (RFC 3339, or unix s, ms or ns) in unix ns; 0 absent. */
int64_t registrations_jtime(const json_t *v);
/* t as seen from now: "in 8s", "3m12s ago" or "now". */
void registrations_relative(int64_t t, int64_t now, char *out, size_t len);
/* The first line of s, cut at max bytes, '|' made '/'; the caller frees. */
char *registrations_one_line(const char *s, size_t max);

#endif
