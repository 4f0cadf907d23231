/* net.c - raw non-blocking probe sockets for the tcp and http probes.
 *
 * Why not uv_tcp_t or a uv_poll_t per probe: a probe lives for one
 * connection, and libuv binds a poll handle to one fd, so each probe would
 * pay a handle init, a uv_close and its deferred callback, plus libuv's
 * per-fd watcher bookkeeping. Instead the engine owns one epoll set; each
 * probe socket is added to it with the check as its data, and the set
 * itself is watched by a single uv_poll_t on the loop (an epoll fd is
 * pollable). Each check keeps its socket between probes (chk_net_drop):
 * a probe thus costs setsockopt(TCP_QUICKACK), connect, send, epoll_ctl,
 * recv and connect(AF_UNSPEC), and no allocation at all. */
#include "checks/checks_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

static void on_epoll_readable(uv_poll_t *h, int status, int events)
{
    struct chk_engine *e = h->data;
    struct epoll_event evs[256];
    /* drain in batches; a one-shot socket left unread is re-armed by its
     * probe, so this never spins on one check */
    for (int round = 0; round < 64; round++) {
        int n = epoll_wait(e->epfd, evs, (int)NC_ARRAY_LEN(evs), 0);
        if (n <= 0)
            return;
        for (int i = 0; i < n; i++) {
            struct chk *c = evs[i].data.ptr;
            /* a probe can only end during this batch, never start: a
             * stale event finds it not running */
            if (c->running && c->fd >= 0 && c->ops->on_event)
                c->ops->on_event(c, evs[i].events);
        }
        if (n < (int)NC_ARRAY_LEN(evs) || e->closing)
            return;
    }
}

int chk_net_open(struct chk_engine *e)
{
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0)
        return -errno;
    int r = uv_poll_init(e->loop, &e->epoll_watcher, e->epfd);
    if (r < 0) {
        close(e->epfd);
        e->epfd = -1;
        return r;
    }
    e->epoll_watcher.data = e;
    e->open_handles++;
    uv_poll_start(&e->epoll_watcher, UV_READABLE, on_epoll_readable);
    return 0;
}

static void on_epoll_watcher_closed(uv_handle_t *h)
{
    struct chk_engine *e = h->data;
    if (e->epfd >= 0)
        close(e->epfd);
    e->epfd = -1;
    chk_engine_handle_closed(e);
}

void chk_net_close(struct chk_engine *e)
{
    uv_poll_stop(&e->epoll_watcher);
    uv_close((uv_handle_t *)&e->epoll_watcher, on_epoll_watcher_closed);
}

/* How many probe sockets the engine keeps between probes: half the soft
 * fd limit, so the rest of the process keeps room. */
static size_t keep_budget(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return 1024;
    return (size_t)rl.rlim_cur / 2;
}

int chk_net_connect(struct chk *c, bool *connected)
{
    struct chk_engine *e = c->e;
    *connected = false;
    if (c->fd < 0) {
        int fd = socket(c->addr.sa.sa_family,
                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        /* RST on close: no TIME_WAIT left behind by thousands of probes */
        static const struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        c->fd = fd;
        c->in_epoll = false;
        if (e->kept_sockets + 1 >= e->keep_budget)
            e->keep_budget = keep_budget(); /* the limit may have grown */
        c->keep_socket = e->kept_sockets + 1 < e->keep_budget;
        if (c->keep_socket)
            e->kept_sockets++;
    }
    /* Delay the handshake's last ACK (as haproxy's checks do): an http
     * probe's request carries it, and a tcp probe is decided by the
     * SYN-ACK and resets before the ACK leaves, so the target's kernel
     * never queues a connection nobody reads. One packet less each way.
     * (A disconnect turns it back on: set it for every probe.) */
    static const int zero = 0;
    setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof(zero));
    if (connect(c->fd, &c->addr.sa, c->addrlen) == 0) {
        *connected = true;
    } else if (errno != EINPROGRESS) {
        int r = -errno;
        chk_net_drop(c);
        return r;
    }
    return 0;
}

int chk_net_watch(struct chk *c, uint32_t events)
{
    /* one-shot: a kept socket stays in the set between probes, where a
     * disconnected socket would report EPOLLHUP for ever */
    struct epoll_event ev = {.events = events | EPOLLONESHOT, .data.ptr = c};
    int op = c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(c->e->epfd, op, c->fd, &ev) < 0)
        return -errno;
    c->in_epoll = true;
    return 0;
}

int chk_net_socket_error(struct chk *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

void chk_net_release(struct chk *c)
{
    if (c->fd < 0)
        return;
    close(c->fd); /* the only reference: it also leaves the epoll set */
    c->fd = -1;
    c->in_epoll = false;
    if (c->keep_socket)
        c->e->kept_sockets--;
    c->keep_socket = false;
}

void chk_net_drop(struct chk *c)
{
    if (c->fd < 0)
        return;
    /* Keep the socket for the next probe: connect(AF_UNSPEC) resets the
     * connection (an RST, as SO_LINGER 0 on close would) and leaves the
     * socket ready to connect again, sparing socket(), setsockopt() and
     * the kernel's socket set-up and tear-down: about a third of a tcp
     * probe's CPU. It costs the fd (kept within keep_budget). */
    static const struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    if (!c->keep_socket || connect(c->fd, &unspec, sizeof(unspec)) < 0)
        chk_net_release(c);
}

const char *chk_errno_text(int err, char *buf, size_t len)
{
    if (err < 0)
        err = -err;
    snprintf(buf, len, "%s", strerror(err));
    /* Go prints syscall errors in lower case: "connection refused" */
    if (buf[0] >= 'A' && buf[0] <= 'Z' && (buf[1] < 'A' || buf[1] > 'Z'))
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}

void chk_net_format_error(const struct chk *c, const char *op, int err,
                          struct nc_buf *out)
{
    char txt[128];
    nc_buf_printf(out, "dial tcp %s: %s: %s", c->target, op,
                  chk_errno_text(err, txt, sizeof(txt)));
}
