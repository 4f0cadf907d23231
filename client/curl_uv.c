/* curl_uv.c - see curl_uv.h. Function pointers are typed from
 * <curl/curl.h> with __typeof__, so a header/ABI mismatch fails to build. */
#define CURL_DISABLE_TYPECHECK 1 /* curl_easy_setopt as a plain function */
#include "client/curl_uv.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* No dlclose: curl's global state and OpenSSL's atexit handlers outlive
 * any handle. curl_global_init counts its callers, so another module
 * loading libcurl the same way is harmless. */
static bool lib_load(void)
{
    if (lib_state)
        return lib_state > 0;
    lib_state = -1;
    static const char *const names[] = {"libcurl.so.4", NULL};
    static const struct nc_dlsym syms[] = {CURL_FUNCTIONS(NC_DLSYM)};
    if (!nc_dlopen_symbols("NOMCLIENT_LIBCURL", names, "libcurl", syms,
                           NC_ARRAY_LEN(syms), lib_error, sizeof(lib_error)))
        return false;
    if (lib.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(lib_error, sizeof(lib_error), "curl_global_init failed");
        return false;
    }
    lib_state = 1;
    return true;
}

bool curl_uv_available(char *why, size_t whylen)
{
    bool ok = lib_load();
    if (!ok && why && whylen)
        snprintf(why, whylen, "%s", lib_error);
    return ok;
}

/* ---- state ---- */

struct curl_uv_sock {
    uv_poll_t poll;
    struct curl_uv *m; /* kept until the close callback: m outlives it */
    curl_socket_t fd;
    int events;                       /* what the poll handle waits for */
    struct curl_uv_sock *prev, *next; /* open sockets, for the close */
};

/* An idle_timeout_ms timer: apart from its transfer, because a transfer
 * is freed at once and a uv handle only in its close callback. */
struct curl_uv_idle {
    uv_timer_t timer;
    struct curl_uv *m;
    struct curl_uv_xfer *x; /* NULL once the transfer is gone */
};

/* What a transfer still needs once libcurl returned (see curl_uv.h). */
enum curl_uv_later { LATER_NONE, LATER_ADD, LATER_FREE, LATER_EXPIRE };

struct curl_uv_xfer {
    struct curl_uv *m;
    CURL *easy;
    struct curl_slist *headers;
    struct nc_buf body;
    struct nc_buf header_lines; /* keep_headers */
    bool keep_headers;
    size_t max_body;
    bool capped;
    char reason[64];
    char errbuf[CURL_ERROR_SIZE];
    curl_uv_done_fn done;
    void *arg;
    uint64_t start_ns;
    curl_uv_data_fn on_data;
    void *data_arg;
    int streaming;   /* 0 undecided, 1 body to on_data, -1 kept */
    int body_fd;     /* body_file, or -1 */
    bool in_multi;   /* added to the multi handle */
    bool idle_fired; /* ended by idle_timeout_ms */
    struct curl_uv_idle *idle;
    uint64_t idle_ms;
    uint64_t last_activity; /* uv_now() of the last byte in or out */
    enum curl_uv_later later;
    struct curl_uv_xfer *later_next;
    struct curl_uv_xfer *prev, *next;
};

struct curl_uv {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct curl_uv_xfer *xfers;
    struct curl_uv_sock *socks;
    size_t nxfers;
    size_t open_handles; /* the timer and every poll handle */
    int sock_error;      /* SO_ERROR of the last socket that failed */
    int busy;            /* inside curl_multi_socket_action */
    struct curl_uv_xfer *later, *later_tail; /* to do when not busy */
    bool closing;
    bool close_later; /* curl_uv_close was called while busy */
    void (*closed)(void *arg);
    void *closed_arg;
};

static void xfer_unlink(struct curl_uv *m, struct curl_uv_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        m->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
    m->nxfers--;
}

static void on_idle_closed(uv_handle_t *h);

static void xfer_free(struct curl_uv_xfer *x)
{
    if (x->idle) {
        x->idle->x = NULL;
        uv_close((uv_handle_t *)&x->idle->timer, on_idle_closed);
    }
    if (x->body_fd >= 0)
        close(x->body_fd);
    if (x->easy)
        lib.curl_easy_cleanup(x->easy);
    if (x->headers)
        lib.curl_slist_free_all(x->headers);
    nc_buf_free(&x->body);
    nc_buf_free(&x->header_lines);
    free(x);
}

static void handle_closed(struct curl_uv *m)
{
    if (--m->open_handles || !m->closing)
        return;
    void (*closed)(void *) = m->closed;
    void *arg = m->closed_arg;
    free(m);
    if (closed)
        closed(arg);
}

/* ---- completion ---- */

static void finish(struct curl_uv *m, struct curl_uv_xfer *x, CURLcode res)
{
    struct curl_uv_response r = {0};
    long code = 0, os_errno = 0;
    char *redirect = NULL;
    lib.curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    lib.curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno);
    lib.curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_URL, &redirect);
    r.status = code;
    r.reason = x->reason;
    if (!x->body.data)
        nc_buf_append(&x->body, "", 0);
    r.body = x->body.data;
    r.body_len = x->body.len;
    r.capped = x->capped;
    r.truncated = res == CURLE_RECV_ERROR || res == CURLE_PARTIAL_FILE;
    r.curl_code = (int)res;
    r.os_errno = res == CURLE_OK ? 0 : (int)os_errno;
    /* a failed poll ends in "select/poll returned error": say why */
    if (res != CURLE_OK && !r.os_errno && m->sock_error)
        r.os_errno = m->sock_error;
    if (res != CURLE_OK)
        m->sock_error = 0;
    r.timed_out = res == CURLE_OPERATION_TIMEDOUT;
    r.idle = x->idle_fired;
    r.error = res == CURLE_OK ? ""
              : x->errbuf[0]  ? x->errbuf
                              : lib.curl_easy_strerror(res);
    r.redirect_url = redirect;
    r.duration_ns = nc_now_mono_ns() - x->start_ns;
    nc_buf_append(&x->header_lines, "", 0);
    r.headers = x->header_lines.data ? x->header_lines.data : "";
    r.headers_len = x->header_lines.len;
    x->done(x->arg, &r); /* may start, cancel or close: x is ours alone */
    xfer_free(x);
}

static void drain(struct curl_uv *m)
{
    CURLMsg *msg;
    int left;
    while (!m->closing && (msg = lib.curl_multi_info_read(m->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode res = msg->data.result;
        struct curl_uv_xfer *x = NULL;
        lib.curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        lib.curl_multi_remove_handle(m->multi, easy);
        if (!x)
            continue;
        xfer_unlink(m, x);
        finish(m, x, res);
    }
}

/* Queues what a transfer needs once libcurl returned; a later wish
 * replaces an earlier one (a start then a cancel: just freed). */
static void later(struct curl_uv *m, struct curl_uv_xfer *x,
                  enum curl_uv_later what)
{
    if (x->later == LATER_NONE) {
        x->later_next = NULL;
        if (m->later_tail)
            m->later_tail->later_next = x;
        else
            m->later = x;
        m->later_tail = x;
    }
    x->later = what;
}

static void really_close(struct curl_uv *m);
static void expire_now(struct curl_uv *m, struct curl_uv_xfer *x);

/* Does what callbacks inside libcurl asked for, in the order asked. */
static void run_later(struct curl_uv *m)
{
    while (m->later && !m->closing) {
        struct curl_uv_xfer *x = m->later;
        m->later = x->later_next;
        if (!m->later)
            m->later_tail = NULL;
        enum curl_uv_later what = x->later;
        x->later = LATER_NONE;
        switch (what) {
        case LATER_FREE: /* already unlinked */
            if (x->in_multi)
                lib.curl_multi_remove_handle(m->multi, x->easy);
            xfer_free(x);
            break;
        case LATER_ADD:
            if (lib.curl_multi_add_handle(m->multi, x->easy) == CURLM_OK) {
                x->in_multi = true;
            } else {
                xfer_unlink(m, x);
                snprintf(x->errbuf, sizeof(x->errbuf),
                         "curl_multi_add_handle failed");
                finish(m, x, CURLE_FAILED_INIT);
            }
            break;
        case LATER_EXPIRE:
            expire_now(m, x);
            break;
        case LATER_NONE:
            break;
        }
    }
    if (m->close_later) {
        m->close_later = false;
        really_close(m);
    }
}

static void socket_action(struct curl_uv *m, curl_socket_t fd, int flags)
{
    int running = 0;
    m->busy++;
    lib.curl_multi_socket_action(m->multi, fd, flags, &running);
    m->busy--;
    run_later(m);
    drain(m); /* whatever `running` says: a finished transfer may wait */
}

/* ---- sockets and the timer ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct curl_uv_sock *cs = h->data;
    int flags = 0;
    if (status < 0) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(cs->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
            cs->m->sock_error = err;
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    if (!cs->m->closing)
        socket_action(cs->m, cs->fd, flags);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct curl_uv_sock *cs = h->data;
    struct curl_uv *m = cs->m;
    free(cs);
    handle_closed(m);
}

static void sock_close(struct curl_uv *m, struct curl_uv_sock *cs)
{
    if (cs->prev)
        cs->prev->next = cs->next;
    else
        m->socks = cs->next;
    if (cs->next)
        cs->next->prev = cs->prev;
    cs->prev = cs->next = NULL;
    uv_poll_stop(&cs->poll);
    uv_close((uv_handle_t *)&cs->poll, on_sock_closed);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
                     void *socketp)
{
    (void)easy;
    struct curl_uv *m = userp;
    struct curl_uv_sock *cs = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (cs) {
            lib.curl_multi_assign(m->multi, fd, NULL);
            sock_close(m, cs);
        }
        return 0;
    }
    if (!cs) {
        cs = xcalloc(1, sizeof(*cs));
        if (uv_poll_init_socket(m->loop, &cs->poll, fd) < 0) {
            free(cs);
            return -1;
        }
        cs->m = m;
        cs->fd = fd;
        cs->poll.data = cs;
        cs->next = m->socks;
        if (m->socks)
            m->socks->prev = cs;
        m->socks = cs;
        m->open_handles++;
        lib.curl_multi_assign(m->multi, fd, cs);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    if (ev == cs->events && uv_is_active((uv_handle_t *)&cs->poll))
        return 0; /* uv_poll_start would cost epoll_ctl calls for nothing */
    cs->events = ev;
    return uv_poll_start(&cs->poll, ev, on_poll) < 0 ? -1 : 0;
}

static void on_timer(uv_timer_t *t)
{
    struct curl_uv *m = t->data;
    if (!m->closing)
        socket_action(m, CURL_SOCKET_TIMEOUT, 0);
}

static int on_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct curl_uv *m = userp;
    if (timeout_ms < 0) /* -1: delete the timer */
        uv_timer_stop(&m->timer);
    else /* 0 too goes through the loop: never call back into curl here */
        uv_timer_start(&m->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- the handle ---- */

int curl_uv_open(struct curl_uv **out, uv_loop_t *loop, struct nc_error *err)
{
    *out = NULL;
    if (!lib_load())
        return nc_error_set(err, -ENOENT,
                            "libcurl cannot be loaded (Debian package "
                            "libcurl4): %s",
                            lib_error);
    CURLM *multi = lib.curl_multi_init();
    if (!multi)
        return nc_error_set(err, -ENOMEM, "curl_multi_init failed");
    struct curl_uv *m = xcalloc(1, sizeof(*m));
    m->loop = loop;
    m->multi = multi;
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    m->open_handles = 1;
    lib.curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    lib.curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, m);
    lib.curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
    lib.curl_multi_setopt(multi, CURLMOPT_TIMERDATA, m);
    *out = m;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void on_idle_closed(uv_handle_t *h)
{
    struct curl_uv_idle *idle = h->data;
    struct curl_uv *m = idle->m;
    free(idle);
    handle_closed(m);
}

static void really_close(struct curl_uv *m)
{
    /* transfers cancelled from a callback are no longer listed */
    while (m->later) {
        struct curl_uv_xfer *x = m->later;
        m->later = x->later_next;
        if (x->later == LATER_FREE) {
            if (x->in_multi)
                lib.curl_multi_remove_handle(m->multi, x->easy);
            xfer_free(x);
        } else {
            x->later = LATER_NONE;
        }
    }
    m->later_tail = NULL;
    while (m->xfers) {
        struct curl_uv_xfer *x = m->xfers;
        xfer_unlink(m, x);
        if (x->in_multi)
            lib.curl_multi_remove_handle(m->multi, x->easy);
        xfer_free(x);
    }
    /* closes curl's cached connections, through on_socket for most */
    lib.curl_multi_cleanup(m->multi);
    m->multi = NULL;
    while (m->socks)
        sock_close(m, m->socks);
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->timer, on_timer_closed);
}

void curl_uv_close(struct curl_uv *m, void (*closed)(void *arg), void *arg)
{
    if (!m || m->closing)
        return;
    m->closing = true;
    m->closed = closed;
    m->closed_arg = arg;
    if (m->busy)
        m->close_later = true; /* run_later, once libcurl returned */
    else
        really_close(m);
}

/* A transfer that must get no more bytes: cancelled, expiring or its
 * handle closing, from a callback. */
static bool xfer_stopped(const struct curl_uv_xfer *x)
{
    return x->later == LATER_FREE || x->later == LATER_EXPIRE || x->m->closing;
}

static size_t on_write(char *data, size_t size, size_t n, void *userp)
{
    struct curl_uv_xfer *x = userp;
    size_t len = size * n;
    if (xfer_stopped(x))
        return 0; /* ends the transfer; no callback will tell */
    x->last_activity = uv_now(x->m->loop);
    if (x->on_data && !x->streaming) {
        long code = 0;
        lib.curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        x->streaming = code >= 200 && code <= 299 ? 1 : -1;
    }
    if (x->streaming > 0) {
        if (len)
            x->on_data(x->data_arg, data, len);
        return xfer_stopped(x) ? 0 : len;
    }
    size_t room = x->max_body - x->body.len;
    if (len > room) {
        /* a short count ends the transfer with CURLE_WRITE_ERROR; the
         * status already read is still reported */
        nc_buf_append(&x->body, data, room);
        x->capped = true;
        return 0;
    }
    nc_buf_append(&x->body, data, len);
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
    struct curl_uv_xfer *x = userp;
    size_t len = size * n;
    if (xfer_stopped(x))
        return 0;
    x->last_activity = uv_now(x->m->loop);
    /* headers and trailers alike, bounded as the body is */
    if (x->keep_headers && x->header_lines.len + len <= 65536)
        nc_buf_append(&x->header_lines, data, len);
    /* "HTTP/1.1 404 Not Found": keep the text; the last status line wins
     * (a 1xx comes before the real answer) */
    if (len > 9 && strncmp(data, "HTTP/", 5) == 0) {
        const char *sp = memchr(data, ' ', len);
        const char *end = data + len;
        x->reason[0] = '\0';
        if (sp && sp + 4 < end) {
            const char *r = sp + 4;
            while (r < end && *r == ' ')
                r++;
            size_t rl = (size_t)(end - r);
            while (rl && (r[rl - 1] == '\r' || r[rl - 1] == '\n'))
                rl--;
            if (rl >= sizeof(x->reason))
                rl = sizeof(x->reason) - 1;
            memcpy(x->reason, r, rl);
            x->reason[rl] = '\0';
        }
    }
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *userp)
{
    struct curl_uv_xfer *x = userp;
    if (xfer_stopped(x))
        return CURL_READFUNC_ABORT;
    ssize_t got;
    do
        got = read(x->body_fd, buf, size * n);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
        snprintf(x->errbuf, sizeof(x->errbuf), "reading the body file: %s",
                 strerror(errno));
        return CURL_READFUNC_ABORT;
    }
    x->last_activity = uv_now(x->m->loop);
    return (size_t)got;
}

/* The body streamed from a file: opened now so a missing one fails the
 * start, not the transfer. */
static int set_body_file(struct curl_uv_xfer *x, const char *path,
                         const char *method)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat st;
    int e = fstat(fd, &st) < 0 ? -errno : S_ISREG(st.st_mode) ? 0 : -EINVAL;
    if (e < 0) {
        close(fd);
        return e;
    }
    x->body_fd = fd;
    CURL *h = x->easy;
    lib.curl_easy_setopt(h, CURLOPT_POST, 1L);
    lib.curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)st.st_size);
    lib.curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    lib.curl_easy_setopt(h, CURLOPT_READDATA, x);
    if (strcmp(method, "POST") != 0)
        lib.curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    return 0;
}

static void set_method(CURL *h, const struct curl_uv_request *req)
{
    const char *method = req->method ? req->method : "GET";
    if (strcmp(method, "GET") == 0 && !req->body) {
        lib.curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        return;
    }
    if (strcmp(method, "HEAD") == 0) {
        lib.curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        return;
    }
    /* a body, possibly empty, so a PUT carries Content-Length: 0 */
    lib.curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
    lib.curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
    if (strcmp(method, "POST") != 0)
        lib.curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
}

static void set_tls(CURL *h, const struct curl_uv_tls *tls)
{
    if (!tls)
        return;
    if (tls->ca_file && *tls->ca_file)
        lib.curl_easy_setopt(h, CURLOPT_CAINFO, tls->ca_file);
    if (tls->cert_file && *tls->cert_file)
        lib.curl_easy_setopt(h, CURLOPT_SSLCERT, tls->cert_file);
    if (tls->key_file && *tls->key_file)
        lib.curl_easy_setopt(h, CURLOPT_SSLKEY, tls->key_file);
    lib.curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, tls->insecure ? 0L : 1L);
    lib.curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, tls->insecure ? 0L : 2L);
}

static void on_idle(uv_timer_t *t)
{
    struct curl_uv_idle *idle = t->data;
    struct curl_uv_xfer *x = idle->x;
    if (!x || idle->m->closing)
        return;
    uint64_t quiet = uv_now(idle->m->loop) - x->last_activity;
    if (quiet < x->idle_ms) { /* a byte came meanwhile: wait the rest */
        uv_timer_start(t, on_idle, x->idle_ms - quiet, 0);
        return;
    }
    char d[32];
    nc_format_duration((int64_t)x->idle_ms * 1000000, d, sizeof(d));
    snprintf(x->errbuf, sizeof(x->errbuf), "no data for %s", d);
    x->idle_fired = true;
    expire_now(idle->m, x);
}

static void idle_start(struct curl_uv *m, struct curl_uv_xfer *x, long ms)
{
    struct curl_uv_idle *idle = xcalloc(1, sizeof(*idle));
    uv_timer_init(m->loop, &idle->timer);
    idle->timer.data = idle;
    idle->m = m;
    idle->x = x;
    m->open_handles++;
    x->idle = idle;
    x->idle_ms = (uint64_t)ms;
    x->last_activity = uv_now(m->loop);
    uv_timer_start(&idle->timer, on_idle, x->idle_ms, 0);
}

int curl_uv_start(struct curl_uv *m, const struct curl_uv_request *req,
                  curl_uv_done_fn done, void *arg, struct curl_uv_xfer **out)
{
    if (out)
        *out = NULL;
    if (!m || m->closing || !req->url)
        return -EINVAL;
    struct curl_uv_xfer *x = xcalloc(1, sizeof(*x));
    x->body_fd = -1;
    if (!(x->easy = lib.curl_easy_init())) {
        free(x);
        return -ENOMEM;
    }
    x->m = m;
    x->done = done;
    x->arg = arg;
    x->max_body = req->max_body ? req->max_body : CURL_UV_MAX_BODY;
    CURL *h = x->easy;
    lib.curl_easy_setopt(h, CURLOPT_URL, req->url);
    lib.curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)x);
    lib.curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    lib.curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    lib.curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    lib.curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    lib.curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    lib.curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    lib.curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    lib.curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR,
                         req->protocols ? req->protocols : "http,https");
    if (req->timeout_ms > 0)
        lib.curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    if (req->connect_timeout_ms > 0)
        lib.curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                             req->connect_timeout_ms);
    if (req->unix_socket)
        lib.curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, req->unix_socket);
    x->keep_headers = req->keep_headers;
    if (req->http2)
        lib.curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
                             strncmp(req->url, "https:", 6) == 0
                                 ? (long)CURL_HTTP_VERSION_2TLS
                                 : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    if (req->fresh_connect) {
        lib.curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
        lib.curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    }
    if (req->body_file) {
        int r = set_body_file(x, req->body_file,
                              req->method ? req->method : "POST");
        if (r < 0) {
            xfer_free(x);
            return r;
        }
    } else {
        set_method(h, req);
    }
    x->on_data = req->on_data;
    x->data_arg = req->data_arg;
    set_tls(h, req->tls);
    /* no 100-continue round trip for larger bodies */
    x->headers = lib.curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; req->headers && req->headers[i]; i++)
        x->headers = lib.curl_slist_append(x->headers, req->headers[i]);
    lib.curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
    x->start_ns = nc_now_mono_ns();
    if (m->busy) { /* from a callback inside libcurl: add it afterwards */
        later(m, x, LATER_ADD);
    } else if (lib.curl_multi_add_handle(m->multi, h) != CURLM_OK) {
        xfer_free(x);
        return -EIO;
    } else {
        x->in_multi = true;
    }
    if (req->idle_timeout_ms > 0)
        idle_start(m, x, req->idle_timeout_ms);
    x->next = m->xfers;
    if (m->xfers)
        m->xfers->prev = x;
    m->xfers = x;
    m->nxfers++;
    if (out)
        *out = x;
    return 0;
}

void curl_uv_cancel(struct curl_uv *m, struct curl_uv_xfer *x)
{
    if (!m || !x || m->closing || x->later == LATER_FREE)
        return;
    xfer_unlink(m, x);
    if (m->busy || x->later != LATER_NONE) {
        later(m, x, LATER_FREE); /* a queued start is dropped too */
        return;
    }
    if (x->in_multi)
        lib.curl_multi_remove_handle(m->multi, x->easy);
    xfer_free(x);
}

/* Ends x now with CURLE_OPERATION_TIMEDOUT and the message in errbuf. */
static void expire_now(struct curl_uv *m, struct curl_uv_xfer *x)
{
    xfer_unlink(m, x);
    if (x->in_multi)
        lib.curl_multi_remove_handle(m->multi, x->easy);
    x->in_multi = false;
    finish(m, x, CURLE_OPERATION_TIMEDOUT);
}

void curl_uv_expire(struct curl_uv *m, struct curl_uv_xfer *x)
{
    if (!m || !x || m->closing || x->later == LATER_FREE ||
        x->later == LATER_EXPIRE)
        return;
    snprintf(x->errbuf, sizeof(x->errbuf),
             "Operation timed out after %llu milliseconds with %zu bytes "
             "received",
             (unsigned long long)((nc_now_mono_ns() - x->start_ns) / 1000000),
             x->body.len);
    if (m->busy || x->later == LATER_ADD)
        later(m, x, LATER_EXPIRE); /* inside libcurl: right after */
    else
        expire_now(m, x);
}

size_t curl_uv_in_flight(const struct curl_uv *m)
{
    return m ? m->nxfers : 0;
}
