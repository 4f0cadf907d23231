/* probe_tcp.c - the tcp probe: passing once a non-blocking connect
 * completes, then an RST close. Outputs as Consul's TCP check:
 * "TCP connect 127.0.0.1:8080: Success", or the dial error. */
#include "checks/checks_internal.h"

#include <errno.h>
#include <sys/epoll.h>

static void tcp_conclude(struct chk *c, int err)
{
    chk_net_drop(c);
    c->output.len = 0;
    if (err == 0) {
        nc_buf_puts(&c->output, "TCP connect ");
        nc_buf_puts(&c->output, c->target);
        nc_buf_puts(&c->output, ": Success");
        chk_probe_finish(c, CHK_PASSING, 0, false);
    } else {
        chk_net_format_error(c, "connect", err, &c->output);
        chk_probe_finish(c, CHK_CRITICAL, 0, false);
    }
}

static int tcp_start(struct chk *c)
{
    bool connected;
    int r = chk_net_connect(c, &connected);
    if (r < 0)
        return r;
    if (!connected) {
        /* On loopback (and any target nearer than the syscall) the
         * handshake is done when connect returns: a zero-length send says
         * so (0), or that it failed (-errno), or EAGAIN: still going. That
         * spares the epoll registration and a loop wake-up. */
        ssize_t n = send(c->fd, NULL, 0, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == 0)
            connected = true;
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            tcp_conclude(c, -errno);
            return 0;
        }
    }
    if (connected) {
        tcp_conclude(c, 0);
        return 0;
    }
    if ((r = chk_net_watch(c, EPOLLOUT)) < 0) {
        chk_net_drop(c);
        return r;
    }
    return 0;
}

static void tcp_on_event(struct chk *c, uint32_t events)
{
    int err = 0;
    if (events & (EPOLLERR | EPOLLHUP)) {
        err = chk_net_socket_error(c);
        if (err == 0)
            err = -ECONNRESET;
    }
    tcp_conclude(c, err);
}

static void tcp_abort(struct chk *c)
{
    chk_net_drop(c);
}

const struct chk_probe_ops chk_tcp_ops = {
    .name = "tcp",
    .start = tcp_start,
    .abort = tcp_abort,
    .on_event = tcp_on_event,
};
