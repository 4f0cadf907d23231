/* consul_request.c - requests to Consul: how an answer came out and the
 * record kept of it, and the queue that builds each request when it is
 * sent, max_in_flight at a time. */
#include "client/services/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_BODY_KEEP 2048    /* of each answer, for the debugging view */
#define GET_MAX_BODY (64u << 20) /* a Consul agent with ~100k services */
#define WRITE_MAX_BODY (64u << 10)

/* ---- how an answer came out ---- */

void consul_answer_clear(struct cs_answer *a)
{
    free(a->path);
    free(a->body);
    free(a->error);
    memset(a, 0, sizeof(*a));
}

static const char *transport_kind(const struct curl_uv_response *r)
{
    if (r->timed_out || r->os_errno == ETIMEDOUT)
        return "timeout";
    switch (r->os_errno) {
    case ECONNREFUSED:
        return "connection refused";
    case ENOENT:
        return "no such socket";
    case EACCES:
    case EPERM:
        return "permission denied";
    case ECONNRESET:
        return "connection reset";
    case EHOSTUNREACH:
    case ENETUNREACH:
        return "unreachable";
    default:
        return r->capped ? "answer too large" : "transport error";
    }
}

enum outcome consul_classify(const struct curl_uv_response *r)
{
    if (r->status == 0 || (r->curl_code != 0 && !r->capped))
        return OUT_TRANSPORT;
    if (r->status >= 200 && r->status < 300)
        return r->capped ? OUT_TRANSPORT : OUT_OK;
    if (r->status == 404)
        return OUT_NOT_FOUND;
    if (r->status >= 400 && r->status < 500)
        return OUT_REJECTED;
    return OUT_SERVER;
}

/* "timeout: Operation timed out after 10001 milliseconds..." or
 * "HTTP 403: Permission denied" */
void consul_outcome_text(const struct curl_uv_response *r, char *out,
                         size_t outlen)
{
    if (consul_classify(r) == OUT_TRANSPORT) {
        snprintf(out, outlen, "%s: %s", transport_kind(r),
                 r->error && *r->error ? r->error : "no answer");
        return;
    }
    char *body = consul_utf8_clean(r->body, r->body_len, 300);
    size_t bl = strlen(body);
    while (bl && (body[bl - 1] == '\n' || body[bl - 1] == '\r'))
        body[--bl] = '\0';
    snprintf(out, outlen, "HTTP %ld%s%s", r->status, *body ? ": " : "", body);
    free(body);
}

void consul_answer_set(struct cs_answer *a, const char *method,
                       const char *path, const struct curl_uv_response *r)
{
    consul_answer_clear(a);
    a->time_ns = nc_now_unix_ns();
    a->method = method;
    a->path = xstrdup(path);
    a->status = consul_classify(r) == OUT_TRANSPORT ? 0 : r->status;
    a->body = consul_utf8_clean(r->body ? r->body : "", r->body_len,
                                ANSWER_BODY_KEEP);
    if (consul_classify(r) == OUT_TRANSPORT) {
        char text[600];
        consul_outcome_text(r, text, sizeof(text));
        a->error = xstrdup(text);
    }
}

/* ---- the request queue ---- */

static void list_push(struct op_list *l, struct op *op, bool front)
{
    op->prev = op->next = NULL;
    if (!l->head) {
        l->head = l->tail = op;
    } else if (front) {
        op->next = l->head;
        l->head->prev = op;
        l->head = op;
    } else {
        op->prev = l->tail;
        l->tail->next = op;
        l->tail = op;
    }
    l->n++;
}

void consul_list_unlink(struct op_list *l, struct op *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        l->head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        l->tail = op->prev;
    op->prev = op->next = NULL;
    l->n--;
}

void consul_op_free(struct op *op)
{
    free(op->id);
    free(op->service_id);
    free(op->status);
    free(op->output);
    free(op->path);
    json_decref(op->sent);
    free(op);
}

struct op *consul_op_new(struct consul_sync *s, enum op_kind kind,
                         const char *id, bool in_pass)
{
    struct op *op = xcalloc(1, sizeof(*op));
    op->s = s;
    op->kind = kind;
    op->id = xstrdup(id);
    op->in_pass = in_pass;
    if (in_pass)
        s->pass_pending++;
    return op;
}

static void flush_op_done(struct consul_sync *s, struct flush *f)
{
    if (--f->pending)
        return;
    if (f->prev)
        f->prev->next = f->next;
    else
        s->flushes = f->next;
    if (f->next)
        f->next->prev = f->prev;
    f->done(f->arg, f->alloc_id);
    free(f->alloc_id);
    free(f);
}

void consul_enqueue(struct consul_sync *s, struct op *op, bool front)
{
    list_push(&s->queue, op, front);
}

/* Ends an op that was answered, failed to start or is no longer wanted:
 * the pass and the flush it belongs to learn of it. */
void consul_op_finish(struct consul_sync *s, struct op *op)
{
    bool in_pass = op->in_pass;
    struct flush *f = op->flush;
    consul_op_free(op);
    if (f)
        flush_op_done(s, f);
    if (in_pass)
        consul_pass_op_done(s);
}

static void escape_path(struct nc_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
            *p == '~') {
            nc_buf_putc(b, (char)*p);
        } else {
            nc_buf_putc(b, '%');
            nc_buf_putc(b, hex[*p >> 4]);
            nc_buf_putc(b, hex[*p & 15]);
        }
    }
}

static char *op_path(const char *prefix, const char *id, const char *suffix)
{
    struct nc_buf b = {0};
    nc_buf_puts(&b, prefix);
    if (id)
        escape_path(&b, id);
    if (suffix)
        nc_buf_puts(&b, suffix);
    return nc_buf_take(&b);
}

/* The registration body: the stored payload with each check's current
 * status, so Consul starts the TTL check where this node stands. */
static json_t *register_body(const struct cs_reg *r)
{
    json_t *body = json_deep_copy(r->payload);
    json_t *checks = json_object_get(body, "Checks");
    size_t i;
    json_t *c;
    json_array_foreach(checks, i, c)
    {
        if (i < r->nchecks)
            json_object_set_new(c, "Status", json_string(r->checks[i].status));
    }
    return body;
}

/* Fills in what an op sends, from the state at sending time: false when
 * there is nothing to send any more. */
static bool op_prepare(struct consul_sync *s, struct op *op,
                       const char **method, char **body)
{
    *body = NULL;
    switch (op->kind) {
    case OP_GET_SERVICES:
        *method = "GET";
        op->path = xstrdup("/v1/agent/services");
        return true;
    case OP_GET_CHECKS:
        *method = "GET";
        op->path = xstrdup("/v1/agent/checks");
        return true;
    case OP_DEREGISTER:
        *method = "PUT";
        op->path = op_path("/v1/agent/service/deregister/", op->id, NULL);
        return true;
    case OP_REGISTER: {
        struct cs_reg *r = consul_reg_find(s, op->id);
        if (!r || r->error || !r->payload)
            return false;
        *method = "PUT";
        op->path = xstrdup(r->in_consul ? "/v1/agent/service/register"
                                          "?replace-existing-checks=true"
                                        : "/v1/agent/service/register");
        op->sent = register_body(r);
        op->gen = r->gen;
        *body = json_dumps(op->sent, JSON_COMPACT);
        json_decref(r->last_sent);
        r->last_sent = json_incref(op->sent);
        r->attempts++;
        return *body != NULL;
    }
    case OP_CHECK_UPDATE: {
        struct cs_check *c =
            consul_check_find(consul_reg_find(s, op->service_id), op->id);
        if (!c)
            return false;
        *method = "PUT";
        op->path = op_path("/v1/agent/check/update/", op->id, NULL);
        op->status = xstrdup(c->status);
        op->output = xstrdup(c->output);
        json_t *j =
            json_pack("{s:s, s:s}", "Status", c->status, "Output", c->output);
        *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        return *body != NULL;
    }
    }
    return false;
}

static void op_start(struct consul_sync *s, struct op *op)
{
    const char *method = "GET";
    char *body = NULL;
    if (!op_prepare(s, op, &method, &body)) {
        free(body);
        if (op->kind == OP_CHECK_UPDATE) {
            struct cs_check *c =
                consul_check_find(consul_reg_find(s, op->service_id), op->id);
            if (c)
                c->queued = false;
        } else if (op->kind == OP_REGISTER) {
            struct cs_reg *r = consul_reg_find(s, op->id);
            if (r)
                r->queued = false;
        }
        consul_op_finish(s, op);
        return;
    }
    char *url = xasprintf("%s%s", s->addr.base_url, op->path);
    struct curl_uv_request req = {
        .method = method,
        .url = url,
        .unix_socket = s->addr.unix_socket,
        .headers = body ? s->json_headers : s->headers,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .tls = &s->tls,
        .timeout_ms = s->tune.request_timeout_ms,
        .connect_timeout_ms = s->tune.request_timeout_ms < 3000
                                  ? s->tune.request_timeout_ms
                                  : 3000,
        .max_body = strcmp(method, "GET") == 0 ? GET_MAX_BODY : WRITE_MAX_BODY,
    };
    op->sent_ns = nc_now_mono_ns();
    s->n_requests++;
    if (strcmp(method, "GET") != 0)
        s->n_writes++;
    list_push(&s->inflight, op, false);
    int rc = curl_uv_start(s->http, &req, consul_on_answer, op, &op->xfer);
    free(url);
    free(body);
    if (rc < 0) { /* consul_on_answer unlinks it */
        struct curl_uv_response r = {.error = "cannot start the request",
                                     .curl_code = -1};
        consul_on_answer(op, &r);
    }
}

/* Sends what the queue holds, max_in_flight at a time. */
void consul_pump(struct consul_sync *s)
{
    if (s->pumping || s->closing)
        return;
    s->pumping = true;
    while (s->queue.head && s->inflight.n < s->tune.max_in_flight &&
           !s->closing) {
        struct op *op = s->queue.head;
        consul_list_unlink(&s->queue, op);
        op_start(s, op);
    }
    s->pumping = false;
    if (!s->closing && !s->queue.head && !s->inflight.n)
        consul_arm_keepalive(s);
}
