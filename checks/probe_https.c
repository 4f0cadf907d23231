/* probe_https.c - the HTTPS probe through libcurl, loaded with
 * dlopen("libcurl.so.4") on the first HTTPS probe: the binary does not link
 * it (it maps ~35 libraries and ~6 MB RSS into every process, and the same
 * binary runs as a small task supervisor). Function pointers are typed from
 * <curl/curl.h> with __typeof__, so a header/ABI mismatch fails to build.
 *
 * One multi handle per engine, driven by the loop as curl's multi-uv.c
 * example, minding its pitfalls: a timer timeout of -1 stops the uv_timer;
 * a negative poll status is passed on as CURL_CSELECT_ERR;
 * curl_multi_info_read is drained after every curl_multi_socket_action,
 * whatever the running count; a poll handle is freed only in its uv_close
 * callback. Each check keeps one easy handle with its options set once;
 * FRESH_CONNECT + FORBID_REUSE give a new connection per probe. */
#define CURL_DISABLE_TYPECHECK 1 /* curl_easy_setopt as a plain function */
#include "checks/checks_internal.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the library, loaded once per process ---- */

#define CURL_FUNCTIONS(X)                                                      \
    X(curl_global_init)                                                        \
    X(curl_easy_init)                                                          \
    X(curl_easy_setopt)                                                        \
    X(curl_easy_getinfo)                                                       \
    X(curl_easy_cleanup)                                                       \
    X(curl_easy_strerror)                                                      \
    X(curl_multi_init)                                                         \
    X(curl_multi_setopt)                                                       \
    X(curl_multi_add_handle)                                                   \
    X(curl_multi_remove_handle)                                                \
    X(curl_multi_socket_action)                                                \
    X(curl_multi_info_read)                                                    \
    X(curl_multi_assign)                                                       \
    X(curl_multi_cleanup)                                                      \
    X(curl_slist_append)                                                       \
    X(curl_slist_free_all)

static struct {
#define X(name) __typeof__(name) *name;
    CURL_FUNCTIONS(X)
#undef X
} lib;
static int lib_state; /* 0 not tried, 1 loaded, -1 failed */
static char lib_error[512];

/* Loads libcurl once; the process keeps it (no dlclose: curl's global
 * state and OpenSSL's atexit handlers outlive any engine). */
static bool lib_load(void)
{
    if (lib_state)
        return lib_state > 0;
    lib_state = -1;
    const char *path = getenv("NOMCLIENT_LIBCURL");
    void *h =
        dlopen(path && *path ? path : "libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(lib_error, sizeof(lib_error), "%s", dlerror());
        return false;
    }
#define X(name)                                                                \
    if (!(lib.name = (__typeof__(name) *)dlsym(h, #name))) {                   \
        snprintf(lib_error, sizeof(lib_error), "libcurl has no %s", #name);    \
        return false;                                                          \
    }
    CURL_FUNCTIONS(X)
#undef X
    if (lib.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(lib_error, sizeof(lib_error), "curl_global_init failed");
        return false;
    }
    lib_state = 1;
    return true;
}

/* ---- multi handle on the loop ---- */

struct chk_curl {
    struct chk_engine *e;
    CURLM *multi;
    uv_timer_t timer;
    bool closing;
};

struct curl_sock {
    uv_poll_t poll;
    struct chk_curl *cc;
    struct chk_engine *e; /* close callbacks may run after cc is freed */
    curl_socket_t fd;
};

struct chk_curl_transfer {
    CURL *easy;
    struct curl_slist *headers;
    bool added;      /* in the multi handle */
    bool capped;     /* the write callback stopped the body at the cap */
    bool dirty;      /* a redirect changed the method: set options again */
    char reason[38]; /* as chk_http_state's */
    char errbuf[CURL_ERROR_SIZE];
};

static void https_conclude(struct chk *c, CURLcode res);
static int transfer_add(struct chk *c, struct chk_curl *cc,
                        struct chk_curl_transfer *t);

static void drain(struct chk_curl *cc)
{
    CURLMsg *msg;
    int left;
    while (!cc->closing && (msg = lib.curl_multi_info_read(cc->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode res = msg->data.result;
        struct chk *c = NULL;
        lib.curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
        lib.curl_multi_remove_handle(cc->multi, easy);
        if (c && c->curl) {
            c->curl->added = false;
            https_conclude(c, res); /* may close the engine: checked above */
        }
    }
}

static void socket_action(struct chk_curl *cc, curl_socket_t fd, int flags)
{
    int running = 0;
    lib.curl_multi_socket_action(cc->multi, fd, flags, &running);
    drain(cc); /* whatever `running` says: a finished transfer may wait */
}

static void on_curl_poll(uv_poll_t *h, int status, int events)
{
    struct curl_sock *cs = h->data;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    socket_action(cs->cc, cs->fd, flags);
}

static void on_curl_sock_closed(uv_handle_t *h)
{
    struct curl_sock *cs = h->data;
    struct chk_engine *e = cs->e;
    free(cs);
    chk_engine_handle_closed(e);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
                          void *socketp)
{
    (void)easy;
    struct chk_curl *cc = userp;
    struct curl_sock *cs = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (cs) {
            lib.curl_multi_assign(cc->multi, fd, NULL);
            uv_poll_stop(&cs->poll);
            uv_close((uv_handle_t *)&cs->poll, on_curl_sock_closed);
        }
        return 0;
    }
    if (!cs) {
        cs = xcalloc(1, sizeof(*cs));
        if (uv_poll_init_socket(cc->e->loop, &cs->poll, fd) < 0) {
            free(cs);
            return -1;
        }
        cs->cc = cc;
        cs->e = cc->e;
        cs->fd = fd;
        cs->poll.data = cs;
        cc->e->open_handles++;
        lib.curl_multi_assign(cc->multi, fd, cs);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&cs->poll, ev, on_curl_poll);
    return 0;
}

static void on_curl_timer(uv_timer_t *t)
{
    socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct chk_curl *cc = userp;
    if (timeout_ms < 0) /* -1: delete the timer */
        uv_timer_stop(&cc->timer);
    else /* 0 too goes through the loop: never call back into curl here */
        uv_timer_start(&cc->timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static struct chk_curl *engine_curl(struct chk_engine *e)
{
    if (e->curl)
        return e->curl;
    CURLM *multi = lib.curl_multi_init();
    if (!multi)
        return NULL;
    struct chk_curl *cc = xcalloc(1, sizeof(*cc));
    cc->e = e;
    cc->multi = multi;
    uv_timer_init(e->loop, &cc->timer);
    cc->timer.data = cc;
    e->open_handles++;
    lib.curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    lib.curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, cc);
    lib.curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_curl_timer_set);
    lib.curl_multi_setopt(multi, CURLMOPT_TIMERDATA, cc);
    e->curl = cc;
    return cc;
}

static void on_curl_timer_closed(uv_handle_t *h)
{
    struct chk_curl *cc = h->data;
    struct chk_engine *e = cc->e;
    free(cc);
    chk_engine_handle_closed(e);
}

void chk_curl_engine_close(struct chk_engine *e)
{
    struct chk_curl *cc = e->curl;
    if (!cc)
        return;
    e->curl = NULL;
    cc->closing = true;
    /* every transfer was removed by the checks' abort; the cleanup closes
     * curl's remaining sockets through on_curl_socket */
    lib.curl_multi_cleanup(cc->multi);
    uv_timer_stop(&cc->timer);
    uv_close((uv_handle_t *)&cc->timer, on_curl_timer_closed);
}

/* ---- one check's transfer ---- */

static size_t on_write(char *data, size_t size, size_t n, void *userp)
{
    struct chk *c = userp;
    size_t len = size * n;
    size_t room = CHK_OUTPUT_MAX - c->body.len;
    if (len > room) {
        /* Enough to decide. A short count aborts the transfer with
         * CURLE_WRITE_ERROR; https_conclude then reports the status code
         * read, so an endless 200 body stays passing. */
        nc_buf_append(&c->body, data, room);
        c->curl->capped = true;
        return 0;
    }
    nc_buf_append(&c->body, data, len);
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
    struct chk *c = userp;
    size_t len = size * n;
    /* the status line "HTTP/1.1 503 Service Unavailable": keep the reason
     * (the last one wins, as a 1xx is followed by the real answer) */
    if (len > 9 && strncmp(data, "HTTP/", 5) == 0) {
        const char *sp = memchr(data, ' ', len);
        const char *end = data + len;
        if (sp && sp + 4 < end) {
            const char *r = sp + 4;
            while (r < end && *r == ' ')
                r++;
            size_t rl = (size_t)(end - r);
            while (rl && (r[rl - 1] == '\r' || r[rl - 1] == '\n'))
                rl--;
            if (rl >= sizeof(c->curl->reason))
                rl = sizeof(c->curl->reason) - 1;
            memcpy(c->curl->reason, r, rl);
            c->curl->reason[rl] = '\0';
        }
    }
    return len;
}

static void emit_header(void *arg, const char *name, const char *value)
{
    struct curl_slist **l = arg;
    /* "Name;" is how curl sends a header with an empty value */
    char *line =
        *value ? xasprintf("%s: %s", name, value) : xasprintf("%s;", name);
    *l = lib.curl_slist_append(*l, line);
    free(line);
}

static bool transfer_setup(struct chk *c, struct chk_curl_transfer *t)
{
    const struct chk_def *d = &c->def;
    CURL *h = t->easy;
    long timeout = (long)c->timeout_ms;
    lib.curl_easy_setopt(h, CURLOPT_URL, c->url);
    lib.curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)c);
    lib.curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    lib.curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
    lib.curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    lib.curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    lib.curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t->errbuf);
    lib.curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    lib.curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    lib.curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    lib.curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    lib.curl_easy_setopt(
        h, CURLOPT_PROTOCOLS_STR,
        "https"); /* redirects are followed by hand, as the plain probe does
                   * (same target only, CHK_MAX_REDIRECTS, one deadline) */
    lib.curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    lib.curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER,
                         d->tls_skip_verify ? 0L : 1L);
    lib.curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST,
                         d->tls_skip_verify ? 0L : 2L);
    lib.curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL);
    if (strcmp(d->method, "HEAD") == 0)
        lib.curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(d->method, "GET") != 0)
        lib.curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, d->method);
    if (d->body) {
        lib.curl_easy_setopt(h, CURLOPT_POSTFIELDS, d->body);
        lib.curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(d->body));
    }
    if (t->headers)
        lib.curl_slist_free_all(t->headers);
    t->headers = NULL;
    t->dirty = false;
    struct curl_slist *l = lib.curl_slist_append(NULL, "Expect:");
    chk_http_header_lines(c, emit_header, &l); /* no 100-continue wait */
    t->headers = l;
    lib.curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    return true;
}

static void https_release(struct chk *c)
{
    struct chk_curl_transfer *t = c->curl;
    if (!t)
        return;
    if (t->added && c->e->curl)
        lib.curl_multi_remove_handle(c->e->curl->multi, t->easy);
    if (t->easy)
        lib.curl_easy_cleanup(t->easy);
    if (t->headers)
        lib.curl_slist_free_all(t->headers);
    free(t);
    c->curl = NULL;
}

static int https_start(struct chk *c)
{
    struct chk_curl *cc = NULL;
    if (!lib_load() || !(cc = engine_curl(c->e))) {
        chk_probe_finishf(c, CHK_CRITICAL, 0, false,
                          "HTTP %s %s: HTTPS checks need libcurl (Debian "
                          "package libcurl4): %s",
                          c->def.method, c->url,
                          lib_error[0] ? lib_error : "curl_multi_init failed");
        return 0;
    }
    struct chk_curl_transfer *t = c->curl;
    if (!t) {
        t = c->curl = xcalloc(1, sizeof(*t));
        if (!(t->easy = lib.curl_easy_init())) {
            https_release(c);
            return -ENOMEM;
        }
        transfer_setup(c, t);
    } else if (t->dirty) {
        transfer_setup(c, t);
    } else {
        lib.curl_easy_setopt(t->easy, CURLOPT_URL, c->url);
    }
    c->redirects = 0;
    return transfer_add(c, cc, t);
}

static int transfer_add(struct chk *c, struct chk_curl *cc,
                        struct chk_curl_transfer *t)
{
    c->body.len = 0;
    t->capped = false;
    t->reason[0] = '\0';
    t->errbuf[0] = '\0';
    if (lib.curl_multi_add_handle(cc->multi, t->easy) != CURLM_OK)
        return -EIO;
    t->added = true;
    return 0;
}

static void https_abort(struct chk *c)
{
    struct chk_curl_transfer *t = c->curl;
    if (t && t->added && c->e->curl)
        lib.curl_multi_remove_handle(c->e->curl->multi, t->easy);
    if (t)
        t->added = false;
}

/* Follows a 3xx back to the same target: true when a new transfer runs. */
static bool https_follow(struct chk *c, long code)
{
    struct chk_curl_transfer *t = c->curl;
    char *next = NULL;
    lib.curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_URL, &next);
    if (!next || !chk_redirect_path(c, next) || !c->e->curl)
        return false;
    if (chk_redirect_limit(c, (int)code))
        return true;
    if (strcmp(chk_redirect_method(c, (int)code), c->def.method) != 0) {
        lib.curl_easy_setopt(t->easy, CURLOPT_CUSTOMREQUEST, NULL);
        lib.curl_easy_setopt(t->easy, CURLOPT_HTTPGET, 1L);
        t->dirty = true;
    }
    lib.curl_easy_setopt(t->easy, CURLOPT_URL, next); /* curl copies it */
    c->redirects++;
    if (transfer_add(c, c->e->curl, t) < 0)
        chk_probe_finishf(c, CHK_CRITICAL, 0, false,
                          "HTTP %s %s: curl_multi_add_handle failed",
                          c->def.method, c->url);
    return true;
}

static void https_conclude(struct chk *c, CURLcode res)
{
    struct chk_curl_transfer *t = c->curl;
    long code = 0;
    lib.curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    if (res == CURLE_OK && chk_http_is_redirect((int)code) &&
        https_follow(c, code))
        return;
    /* a status line was read: Consul judges by it even if the body then
     * failed (our own cap, a reset, the deadline) */
    if (code > 0 && (res == CURLE_OK || res == CURLE_WRITE_ERROR ||
                     res == CURLE_OPERATION_TIMEDOUT ||
                     res == CURLE_RECV_ERROR || res == CURLE_PARTIAL_FILE)) {
        struct chk_http_state h = {.code = (int)code, .headers_done = true};
        memcpy(h.reason, t->reason, sizeof(h.reason));
        h.reason_len = (uint8_t)strlen(h.reason);
        enum chk_status st =
            chk_http_conclude(&h, c->prefix, &c->body, &c->output);
        chk_probe_finish(c, st, (int)code, false);
        return;
    }
    bool timed_out = res == CURLE_OPERATION_TIMEDOUT;
    if (timed_out) {
        chk_output_timeout(c);
    } else {
        chk_output_begin(c);
        nc_buf_puts(&c->output,
                    t->errbuf[0] ? t->errbuf : lib.curl_easy_strerror(res));
    }
    chk_probe_finish(c, CHK_CRITICAL, 0, timed_out);
}

static void https_expire(struct chk *c)
{
    https_abort(c);
    long code = 0;
    if (c->curl)
        lib.curl_easy_getinfo(c->curl->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code > 0)
        https_conclude(c, CURLE_OPERATION_TIMEDOUT);
}

const struct chk_probe_ops chk_https_ops = {
    .name = "https",
    .start = https_start,
    .abort = https_abort,
    .expire = https_expire,
    .release = https_release,
};
