/* http_api_exec.c - GET /v1/client/allocation/:id/exec?task=T&tty=B&
 * command=<JSON array>: a command in a running task over a websocket, in
 * Nomad's frames (JSON text messages):
 *
 *   client -> agent  {"stdin":{"data":"<base64>"}}  {"stdin":{"close":true}}
 *                    {"tty_size":{"height":H,"width":W}}  {} (heartbeat)
 *   agent -> client  {"stdout":{"data":"<base64>"}}  {"stdout":{"close":true}}
 *                    (stderr alike)  {"exited":true,"result":{"exit_code":N}}
 *
 * then a normal close. Refusals known before the upgrade (no such
 * allocation or task, a bad command, the ACL) are answered as the other
 * routes answer them, 4xx with {"error"}; a command that cannot start,
 * and any failure once the websocket is open, close it with Nomad's codes
 * (1011 for an internal error, 1008 otherwise) and the reason, which
 * Nomad's CLI prints as it is. With ws_handshake=true (Nomad's web UI) the
 * token comes in the first message, {"version":1,"auth_token":"..."},
 * and is checked then.
 *
 * Pacing: output is read from the command only while less than
 * EXEC_OUT_HIGH bytes wait for the client, and the client is read only
 * while less than EXEC_IN_HIGH bytes wait for the command's stdin. A
 * client silent for two keepalive periods (no heartbeat, no pong to our
 * pings) is taken for gone and the command is killed, as when it closes. */
#include "client/api/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/acl/acl.h"
#include "client/agent.h"
#include "client/alloc/alloc.h"
#include "client/api/websocket.h"
#include "client/drivers/driver.h"

#define EXEC_OUT_HIGH (256u << 10)
#define EXEC_IN_HIGH (256u << 10)
#define EXEC_KEEPALIVE_MS 30000
#define EXEC_CLOSE_WAIT_MS 5000
#define EXEC_MAX_MESSAGE (1u << 20)

struct exec_ws {
    struct agent *a;
    struct http_stream *st;    /* NULL once ended or gone */
    struct driver_session *ds; /* NULL before the start and after the end */
    struct ws_reader rd;
    uv_timer_t *timer; /* keepalive, then the wait for the client's close */
    char *alloc_id, *task, *command, *ns;
    char **argv;
    bool tty;
    bool handshake_pending; /* ws_handshake: the token comes first */
    bool close_sent, out_paused, in_paused;
    int idle_ticks;
    size_t out_queued;
};

/* ---- life and death ------------------------------------------------------ */

static void exec_ws_free(struct exec_ws *x)
{
    for (size_t i = 0; x->argv && x->argv[i]; i++)
        free(x->argv[i]);
    free(x->argv);
    free(x->alloc_id);
    free(x->task);
    free(x->command);
    free(x->ns);
    ws_reader_free(&x->rd);
    free(x);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct exec_ws *x = h->data;
    free(h);
    x->timer = NULL;
    if (!x->st && !x->ds)
        exec_ws_free(x);
}

/* Frees x once the client's connection and the command are both done. */
static void exec_ws_maybe_free(struct exec_ws *x)
{
    if (x->st || x->ds)
        return;
    if (x->timer) {
        if (!uv_is_closing((uv_handle_t *)x->timer))
            uv_close((uv_handle_t *)x->timer, on_timer_closed);
        return;
    }
    exec_ws_free(x);
}

static void exec_ws_end(struct exec_ws *x)
{
    if (x->st) {
        http_stream_end(x->st);
        x->st = NULL;
    }
    if (x->ds) {
        x->ds->ops->cancel(x->ds);
        x->ds = NULL;
    }
    exec_ws_maybe_free(x);
}

static void send_frame(struct exec_ws *x, int opcode, const char *p, size_t n)
{
    if (!x->st || x->close_sent)
        return;
    struct nc_buf f = {0};
    ws_frame_append(&f, opcode, p, n, false);
    long q = http_stream_write(x->st, f.data, f.len);
    nc_buf_free(&f);
    if (q > 0)
        x->out_queued = (size_t)q;
}

static void on_close_wait(uv_timer_t *t)
{
    exec_ws_end(t->data); /* the client did not answer our close */
}

/* Sends a close frame, then waits (briefly) for the client's answer, so
 * the connection is not reset with its last frames unread. The command,
 * if it still runs, is killed. */
static void exec_ws_close(struct exec_ws *x, int code, const char *reason)
{
    if (x->ds) {
        x->ds->ops->cancel(x->ds);
        x->ds = NULL;
    }
    if (!x->st || x->close_sent) {
        exec_ws_maybe_free(x);
        return;
    }
    struct nc_buf f = {0};
    ws_close_append(&f, code, reason, false);
    http_stream_write(x->st, f.data, f.len);
    nc_buf_free(&f);
    x->close_sent = true;
    if (x->in_paused) {
        x->in_paused = false;
        http_stream_pause_input(x->st, false);
    }
    if (x->timer)
        uv_timer_start(x->timer, on_close_wait, EXEC_CLOSE_WAIT_MS, 0);
    else
        exec_ws_end(x);
}

static void send_json(struct exec_ws *x, json_t *j)
{
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (txt)
        send_frame(x, WS_TEXT, txt, strlen(txt));
    free(txt);
}

/* ---- the command's side ------------------------------------------------- */

static void on_output(void *arg, int stream, const char *p, size_t n)
{
    struct exec_ws *x = arg;
    const char *name = stream == 2 ? "stderr" : "stdout";
    json_t *op;
    if (n) {
        char *b64 = nc_base64_encode(p, n, false);
        op = json_pack("{s:s}", "data", b64);
        free(b64);
    } else {
        op = json_pack("{s:b}", "close", true);
    }
    send_json(x, json_pack("{s:o}", name, op));
    if (x->ds && !x->out_paused && x->out_queued > EXEC_OUT_HIGH) {
        x->out_paused = true;
        x->ds->ops->pause_output(x->ds, true);
    }
}

static void on_exited(void *arg, int exit_code, const char *error)
{
    struct exec_ws *x = arg;
    x->ds = NULL; /* the driver frees it after this returns */
    LOG_INFO("api", "allocation %s task %s: exec session ended (%s%s%d)",
             x->alloc_id, x->task, error ? error : "exit code ",
             error ? " " : "", error ? -1 : exit_code);
    if (error) {
        exec_ws_close(x, WS_CLOSE_INTERNAL_ERROR, error);
        return;
    }
    send_json(x, json_pack("{s:b, s:{s:i}}", "exited", true, "result",
                           "exit_code", exit_code));
    exec_ws_close(x, WS_CLOSE_NORMAL, "");
}

static void on_stdin_drained(void *arg)
{
    struct exec_ws *x = arg;
    if (x->in_paused && x->st) {
        x->in_paused = false;
        http_stream_pause_input(x->st, false);
    }
}

static const struct driver_session_cb session_cb = {
    .output = on_output,
    .exited = on_exited,
    .drained = on_stdin_drained,
};

/* ---- finding the task, the ACL ------------------------------------------ */

/* Nomad's checks of an exec request, in its order and words; *status the
 * HTTP status of a refusal. Returns the task, or NULL with msg set. */
static struct alloc_task *exec_task(struct agent *a, const char *alloc_id,
                                    const char *task, bool have_cmd,
                                    int *status, char *msg, size_t msglen)
{
    if (a->cfg->client.disable_remote_exec) {
        *status = 403; /* Nomad's check comes first */
        snprintf(msg, msglen, "Permission denied");
        return NULL;
    }
    struct alloc *al =
        a->allocs ? alloc_manager_find(a->allocs, alloc_id, NULL) : NULL;
    if (!al || strcmp(al->id, alloc_id) != 0) {
        *status = 404;
        snprintf(msg, msglen, "Unknown allocation \"%s\"", alloc_id);
        return NULL;
    }
    if (!*task) {
        *status = 400;
        snprintf(msg, msglen, "must provide a valid task name");
        return NULL;
    }
    if (!have_cmd) {
        *status = 400;
        snprintf(msg, msglen, "command is not present");
        return NULL;
    }
    struct alloc_task *t = NULL;
    for (size_t i = 0; i < al->ntasks; i++)
        if (strcmp(al->tasks[i].name, task) == 0)
            t = &al->tasks[i];
    if (!t) {
        *status = 404;
        snprintf(msg, msglen, "task not found");
        return NULL;
    }
    if (!t->started_at) {
        *status = 404;
        snprintf(msg, msglen, "task \"%s\" not started yet.", task);
        return NULL;
    }
    if (!nc_streq(t->state, "running")) {
        *status = 404;
        snprintf(msg, msglen, "task \"%s\" is not running.", task);
        return NULL;
    }
    const struct driver *d = driver_of(alloc_task_spec(t));
    if (!d || !d->exec_session) {
        *status = 400;
        snprintf(msg, msglen, "the %s driver does not support exec",
                 d ? d->name : "task's");
        return NULL;
    }
    return t;
}

/* alloc-exec in the allocation's namespace, and alloc-node-exec too for a
 * task that sees the host's filesystem. Returns true, or false with the
 * status and Nomad's words. */
static bool exec_allowed(struct agent *a, const char *secret, const char *ns,
                         const struct alloc_task *t, const char **accessor,
                         int *status, char *msg, size_t msglen)
{
    *accessor = "";
    if (!a->acl)
        return true;
    const struct acl *acl;
    const struct acl_token *token;
    switch (acl_store_resolve(a->acl, secret, &acl, &token)) {
    case ACL_TOKEN_INVALID:
        *status = 400;
        snprintf(msg, msglen, "ACL token is invalid");
        return false;
    case ACL_TOKEN_NOT_FOUND:
        *status = 403;
        snprintf(msg, msglen, "ACL token not found");
        return false;
    case ACL_RESOLVED:
        break;
    }
    const struct driver *d = driver_of(alloc_task_spec(t));
    bool ok = acl_allow_ns(acl, ns, ACL_NS_ALLOC_EXEC) &&
              (!d || !d->no_fs_isolation ||
               acl_allow_ns(acl, ns, ACL_NS_ALLOC_NODE_EXEC));
    if (!ok) {
        *status = 403;
        snprintf(msg, msglen, "Permission denied");
        return false;
    }
    *accessor = token ? token->accessor_id : "anonymous";
    return true;
}

/* Starts the command. 0, or the HTTP status of the refusal with msg. */
static int exec_ws_start(struct exec_ws *x, const char *secret, char *msg,
                         size_t msglen)
{
    int status = 0;
    const char *accessor;
    struct alloc_task *t =
        exec_task(x->a, x->alloc_id, x->task, true, &status, msg, msglen);
    if (!t ||
        !exec_allowed(x->a, secret, x->ns, t, &accessor, &status, msg, msglen))
        return status;
    const struct driver *d = driver_of(alloc_task_spec(t));
    struct nc_error err = {0};
    int r = d->exec_session(t->alloc->mgr->drv, t, x->argv, x->tty, &session_cb,
                            x, &x->ds, &err);
    if (r < 0) {
        x->ds = NULL;
        if (r == -ESRCH) {
            snprintf(msg, msglen, "task \"%s\" is not running.", x->task);
            return 404;
        }
        snprintf(msg, msglen, "failed to start command: %.900s",
                 err.msg[0] ? err.msg : strerror(-r));
        return 500;
    }
    LOG_INFO("api",
             "allocation %s task %s: exec session starting: command "
             "%s, tty %s, token %s",
             x->alloc_id, x->task, x->command, x->tty ? "true" : "false",
             *accessor ? accessor : "(ACL disabled)");
    return 0;
}

/* ---- the client's side -----------------------------------------------------
 */

static void exec_ws_fail(struct exec_ws *x, int status, const char *msg)
{
    exec_ws_close(
        x, status == 500 ? WS_CLOSE_INTERNAL_ERROR : WS_CLOSE_POLICY_VIOLATION,
        msg);
}

/* {"version":1,"auth_token":"..."}: the token of a ws_handshake session. */
static void on_handshake(struct exec_ws *x, const char *data, size_t len)
{
    x->handshake_pending = false;
    json_error_t jerr;
    json_t *j = json_loadb(data, len, 0, &jerr);
    json_t *v = json_object_get(j, "version");
    const char *tok = json_string_value(json_object_get(j, "auth_token"));
    char msg[512];
    if (!j) {
        snprintf(msg, sizeof(msg), "invalid handshake message: %s", jerr.text);
        exec_ws_fail(x, 400, msg);
    } else if (!json_is_integer(v) || json_integer_value(v) != 1) {
        char *txt = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
        snprintf(msg, sizeof(msg), "unexpected handshake value: %s",
                 txt ? txt : "0");
        free(txt);
        exec_ws_fail(x, 400, msg);
    } else {
        int status = exec_ws_start(x, tok ? tok : "", msg, sizeof(msg));
        if (status)
            exec_ws_fail(x, status, msg);
    }
    json_decref(j);
}

/* One input message of Nomad's ExecStreamingInput. */
static void on_input(struct exec_ws *x, const char *data, size_t len)
{
    json_error_t jerr;
    json_t *j = json_loadb(data, len, 0, &jerr);
    if (!j || !json_is_object(j)) {
        char msg[256];
        snprintf(msg, sizeof(msg), "invalid exec input: %s",
                 j ? "not a JSON object" : jerr.text);
        json_decref(j);
        exec_ws_fail(x, 500, msg);
        return;
    }
    json_t *in = json_object_get(j, "stdin");
    json_t *size = json_object_get(j, "tty_size");
    if (json_is_object(in) && x->ds) {
        json_t *d = json_object_get(in, "data");
        const char *b64 = json_string_value(d);
        if (d && !json_is_null(d) && !b64) {
            exec_ws_fail(x, 500,
                         "invalid exec input: stdin.data is not a "
                         "base64 string");
        } else if (b64 && *b64) {
            struct nc_buf raw = {0};
            if (nc_base64_decode(b64, strlen(b64), &raw) < 0) {
                exec_ws_fail(x, 500,
                             "invalid exec input: stdin.data is not "
                             "base64");
            } else if (raw.len) {
                long q = x->ds->ops->write(x->ds, raw.data, raw.len);
                /* -EPIPE: the command closed its stdin; what it does not
                 * read is dropped, as a pipe drops it */
                if (q > (long)EXEC_IN_HIGH && !x->in_paused && x->st) {
                    x->in_paused = true;
                    http_stream_pause_input(x->st, true);
                }
            }
            nc_buf_free(&raw);
        }
        if (x->ds && json_is_true(json_object_get(in, "close")))
            x->ds->ops->close_stdin(x->ds);
    } else if (json_is_object(size) && x->ds) {
        json_int_t h = json_integer_value(json_object_get(size, "height"));
        json_int_t w = json_integer_value(json_object_get(size, "width"));
        if (h > 0 && w > 0 && h <= 0xffff && w <= 0xffff)
            x->ds->ops->resize(x->ds, (int)w, (int)h);
    }
    /* anything else (setup, {}) is a heartbeat */
    json_decref(j);
}

static void on_data(void *arg, const char *data, size_t len)
{
    struct exec_ws *x = arg;
    x->idle_ticks = 0;
    while (len > 0 && x->st) {
        struct ws_message m;
        int code = 0;
        char why[128];
        long used =
            ws_reader_next(&x->rd, data, len, &m, &code, why, sizeof(why));
        if (used < 0) {
            LOG_DEBUG("api", "allocation %s: exec websocket: %s", x->alloc_id,
                      why);
            if (x->close_sent) {
                exec_ws_end(x);
            } else {
                exec_ws_close(x, code, why);
                exec_ws_end(x); /* a broken peer gets no wait */
            }
            return;
        }
        data += used;
        len -= (size_t)used;
        if (!m.opcode)
            continue;
        if (m.opcode == WS_CLOSE) {
            if (!x->close_sent)
                exec_ws_close(x,
                              m.close_code == WS_CLOSE_NO_STATUS
                                  ? WS_CLOSE_NORMAL
                                  : m.close_code,
                              "");
            exec_ws_end(x);
            return;
        }
        if (x->close_sent)
            continue; /* only the client's close matters now */
        if (m.opcode == WS_PING)
            send_frame(x, WS_PONG, m.data, m.len);
        else if (m.opcode == WS_TEXT || m.opcode == WS_BINARY) {
            if (x->handshake_pending)
                on_handshake(x, m.data, m.len);
            else
                on_input(x, m.data, m.len);
        }
    }
}

static void on_drain(void *arg)
{
    struct exec_ws *x = arg;
    x->out_queued = 0;
    if (x->out_paused && x->ds) {
        x->out_paused = false;
        x->ds->ops->pause_output(x->ds, false);
    }
}

static void on_closed(void *arg)
{
    struct exec_ws *x = arg;
    x->st = NULL;
    LOG_DEBUG("api", "allocation %s task %s: exec client gone", x->alloc_id,
              x->task);
    exec_ws_end(x);
}

static void on_keepalive(uv_timer_t *t)
{
    struct exec_ws *x = t->data;
    if (++x->idle_ticks > 2) {
        LOG_INFO("api",
                 "allocation %s task %s: exec client silent for %d s; "
                 "ending the session",
                 x->alloc_id, x->task, 2 * EXEC_KEEPALIVE_MS / 1000);
        exec_ws_end(x);
        return;
    }
    send_frame(x, WS_PING, "", 0);
}

/* ---- the route ------------------------------------------------------------
 */

/* Nomad's command: a JSON array of strings. Returns a NULL-terminated
 * copy, or NULL with msg in Go's words. */
static char **parse_command(const char *s, char *msg, size_t msglen)
{
    json_error_t jerr;
    json_t *j = json_loads(s ? s : "", JSON_DECODE_ANY, &jerr);
    if (!j) {
        snprintf(msg, msglen, "failed to marshal command into json: %s",
                 !s || !*s ? "unexpected end of JSON input" : jerr.text);
        return NULL;
    }
    const char *kind = json_is_array(j)     ? NULL
                       : json_is_object(j)  ? "object"
                       : json_is_string(j)  ? "string"
                       : json_is_number(j)  ? "number"
                       : json_is_boolean(j) ? "bool"
                                            : NULL;
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v)
    {
        if (!json_is_string(v) && !json_is_null(v))
            kind = json_is_object(v)   ? "object"
                   : json_is_array(v)  ? "array"
                   : json_is_number(v) ? "number"
                                       : "bool";
    }
    if (kind) {
        snprintf(msg, msglen,
                 "failed to marshal command into json: json: "
                 "cannot unmarshal %s into Go value of type "
                 "[]string",
                 kind);
        json_decref(j);
        return NULL;
    }
    size_t n = json_array_size(j);
    char **argv = xcalloc(n + 1, sizeof(*argv));
    json_array_foreach(j, i, v)
    {
        const char *str = json_string_value(v);
        argv[i] = xstrdup(str ? str : "");
    }
    json_decref(j);
    return argv;
}

static bool exec_path(const char *rest, char **alloc_id)
{
    const char *slash = strchr(rest, '/');
    if (!slash || slash == rest || strcmp(slash, "/exec") != 0)
        return false;
    *alloc_id = xstrndup(rest, (size_t)(slash - rest));
    return true;
}

bool http_api_exec_token_later(const struct http_request *req)
{
    const char *p = req->path;
    const char *hv = kv_get(&req->query, "ws_handshake");
    bool on = false;
    return nc_str_has_prefix(p, "/v1/client/allocation/") &&
           nc_str_has_suffix(p, "/exec") && hv && nc_parse_go_bool(hv, &on) &&
           on;
}

void http_api_alloc_exec(struct agent *a, const struct http_request *req,
                         struct http_response *resp, const char *rest)
{
    char *alloc_id = NULL;
    if (!exec_path(rest, &alloc_id)) {
        http_response_error(resp, 404, "no such endpoint: %s %s", req->method,
                            req->path);
        return;
    }
    char msg[1024];
    const char *task = kv_get(&req->query, "task");
    const char *tty_s = kv_get(&req->query, "tty");
    const char *hs = kv_get(&req->query, "ws_handshake");
    bool tty = false, handshake = false;
    char **argv =
        parse_command(kv_get(&req->query, "command"), msg, sizeof(msg));
    int status = 0;
    if (!argv) {
        status = 400;
    } else if (tty_s && *tty_s && !nc_parse_go_bool(tty_s, &tty)) {
        status = 400;
        snprintf(msg, sizeof(msg),
                 "tty value is not a boolean: "
                 "strconv.ParseBool: parsing \"%s\": invalid "
                 "syntax",
                 tty_s);
    } else if (hs && *hs && !nc_parse_go_bool(hs, &handshake)) {
        status = 400;
        snprintf(msg, sizeof(msg),
                 "ws_handshake value is not a boolean: "
                 "strconv.ParseBool: parsing \"%s\": invalid "
                 "syntax",
                 hs);
    } else {
        status =
            ws_handshake_check(req->method, &req->headers, msg, sizeof(msg));
        if (status == 405)
            http_response_set_header(resp, "Allow", "GET");
        else if (status == 426)
            http_response_set_header(resp, "Sec-WebSocket-Version", "13");
    }
    struct alloc_task *t = NULL;
    if (!status)
        t = exec_task(a, alloc_id, task ? task : "", argv && argv[0], &status,
                      msg, sizeof(msg));
    if (status) {
        http_response_error(resp, status, "%s", msg);
        for (size_t i = 0; argv && argv[i]; i++)
            free(argv[i]);
        free(argv);
        free(alloc_id);
        return;
    }
    struct exec_ws *x = xcalloc(1, sizeof(*x));
    x->a = a;
    x->alloc_id = alloc_id;
    x->task = xstrdup(task);
    x->command = xstrdup(kv_get(&req->query, "command"));
    x->ns = xstrdup(t->alloc->namespace && *t->alloc->namespace
                        ? t->alloc->namespace
                        : "default");
    x->argv = argv;
    x->tty = tty;
    x->handshake_pending = handshake;
    x->rd.server = true;
    x->rd.max_message = EXEC_MAX_MESSAGE;
    if (!handshake) {
        char secret[64];
        acl_token_from_headers(kv_get(&req->headers, "x-nomad-token"),
                               kv_get(&req->headers, "authorization"), secret,
                               sizeof(secret));
        /* a refusal is an HTTP answer; a command that could not start is
         * told as Nomad tells it, closing the websocket with the reason */
        if ((status = exec_ws_start(x, secret, msg, sizeof(msg))) != 0 &&
            status != 500) {
            http_response_error(resp, status, "%s", msg);
            exec_ws_free(x);
            return;
        }
    }
    char accept[29];
    ws_accept_key(kv_get(&req->headers, "sec-websocket-key"), accept);
    x->st = http_response_upgrade(resp, on_data, on_drain, on_closed, x);
    http_response_set_header(resp, "Upgrade", "websocket");
    http_response_set_header(resp, "Connection", "Upgrade");
    http_response_set_header(resp, "Sec-WebSocket-Accept", accept);
    x->timer = xcalloc(1, sizeof(*x->timer));
    uv_timer_init(a->loop, x->timer);
    x->timer->data = x;
    uv_timer_start(x->timer, on_keepalive, EXEC_KEEPALIVE_MS,
                   EXEC_KEEPALIVE_MS);
    if (status == 500)
        exec_ws_fail(x, status, msg);
}
