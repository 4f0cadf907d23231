/* exec_session.c - `alloc exec` in exec and raw_exec tasks: an interactive
 * command in the running task, planned and started as exec.c's script
 * checks are (the task's namespaces, root, cgroups, credentials,
 * capabilities and environment, through exec_plan_*), with its stdio as
 * three pipes, or with a pseudo-terminal whose slave becomes its
 * controlling terminal. The agent watches the command with a pidfd and
 * its pipes (or the terminal's master) on the loop.
 *
 * Pacing: output is read only while the caller wants it (pause_output),
 * so a slow client stops the command at its next write instead of growing
 * a buffer here; stdin queues in the loop's write requests and `write`
 * returns how much is waiting, so the caller can stop reading its client.
 *
 * The end: once the command is reaped, what is left in its process group
 * is killed (as for script checks) and the output is read to its end; a
 * process that left the group and keeps the output open is given
 * SESSION_EOF_WAIT_MS. The working directory is / for both drivers, as
 * Nomad's executors run exec'd commands. */
#include "client/drivers/driver.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "client/drivers/internal.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define SESSION_EOF_WAIT_MS 500
#define SESSION_READ_SIZE 4096

struct exec_session {
    struct driver_session base;
    const struct driver_session_cb *cb;
    void *arg;
    bool tty;
    int pid, pidfd, master_fd;
    uv_poll_t watch;
    uv_pipe_t in;  /* stdin's write end (not with tty) */
    uv_pipe_t out; /* stdout, or the terminal's master (both ways) */
    uv_pipe_t err; /* stderr (not with tty) */
    uv_timer_t timer;
    int open_handles;
    bool exited, out_eof, err_eof, paused, cancelled, reported;
    bool in_closed, in_close_pending;
    bool force_due; /* the EOF wait ran out while output was paused */
    int exit_code;
    size_t queued; /* stdin bytes handed to the loop, not yet written */
    char obuf[SESSION_READ_SIZE], ebuf[SESSION_READ_SIZE];
};

struct session_write {
    uv_write_t req;
    struct exec_session *s;
    size_t n;
    char data[];
};

static void on_session_closed(uv_handle_t *h)
{
    struct exec_session *s = h->data;
    if (--s->open_handles == 0) {
        close(s->pidfd);
        free(s);
    }
}

static void close_handle(struct exec_session *s, uv_handle_t *h)
{
    if (h->data && !uv_is_closing(h))
        uv_close(h, on_session_closed);
}

static void session_close(struct exec_session *s)
{
    close_handle(s, (uv_handle_t *)&s->watch);
    close_handle(s, (uv_handle_t *)&s->out);
    close_handle(s, (uv_handle_t *)&s->timer);
    if (!s->tty) {
        close_handle(s, (uv_handle_t *)&s->in);
        close_handle(s, (uv_handle_t *)&s->err);
    }
}

/* Reports the end once the command was reaped and its output has ended
 * (or `force`: the wait for the output is over). */
static void session_report(struct exec_session *s, bool force)
{
    if (s->reported || !s->exited)
        return;
    bool eof = s->out_eof && (s->tty || s->err_eof);
    if (!eof && !force)
        return;
    s->reported = true;
    if (!s->cancelled)
        s->cb->exited(s->arg, s->exit_code, NULL);
    session_close(s);
}

static void on_session_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    struct exec_session *s = h->data;
    if (h == (uv_handle_t *)&s->err)
        *buf = uv_buf_init(s->ebuf, sizeof(s->ebuf));
    else
        *buf = uv_buf_init(s->obuf, sizeof(s->obuf));
}

static void on_session_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct exec_session *s = st->data;
    int stream = st == (uv_stream_t *)&s->err ? 2 : 1;
    if (n == 0 || s->cancelled || s->reported)
        return;
    if (n > 0) {
        s->cb->output(s->arg, stream, buf->base, (size_t)n);
        return;
    }
    /* the end: EOF, or EIO from a terminal's master once the slave's last
     * holder is gone */
    uv_read_stop(st);
    if (stream == 2)
        s->err_eof = true;
    else
        s->out_eof = true;
    s->cb->output(s->arg, stream, "", 0);
    if (!s->reported && !s->cancelled)
        session_report(s, false);
}

static void on_session_timer(uv_timer_t *t)
{
    struct exec_session *s = t->data;
    if (s->paused) {
        s->force_due = true; /* the client has not taken what is read */
        return;
    }
    session_report(s, true);
}

static void on_session_exit(uv_poll_t *w, int status, int events)
{
    struct exec_session *s = w->data;
    siginfo_t si = {0};
    if (waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG) < 0 ||
        si.si_pid == 0)
        return;
    uv_poll_stop(w);
    s->exited = true;
    s->exit_code = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
    kill(-s->pid, SIGKILL); /* what it left in its group or session */
    if (s->cancelled) {
        session_report(s, true);
        return;
    }
    uv_timer_start(&s->timer, on_session_timer, SESSION_EOF_WAIT_MS, 0);
    session_report(s, false);
}

static void do_close_stdin(struct exec_session *s)
{
    s->in_close_pending = false;
    s->in_closed = true;
    close_handle(s, (uv_handle_t *)&s->in);
}

static void on_session_write(uv_write_t *req, int status)
{
    struct session_write *w = (struct session_write *)req;
    struct exec_session *s = w->s;
    s->queued -= w->n;
    free(w);
    if (status < 0 && status != UV_ECANCELED)
        s->in_closed = true; /* EPIPE: the command closed its stdin */
    if (s->queued || s->cancelled || s->reported)
        return;
    if (s->in_close_pending)
        do_close_stdin(s);
    if (s->cb->drained)
        s->cb->drained(s->arg);
}

static long session_write(struct driver_session *base, const char *p, size_t n)
{
    struct exec_session *s = (struct exec_session *)base;
    if (s->in_closed || s->in_close_pending || s->exited || s->cancelled)
        return -EPIPE;
    if (n == 0)
        return (long)s->queued;
    uv_stream_t *dst = (uv_stream_t *)(s->tty ? &s->out : &s->in);
    struct session_write *w = xmalloc(sizeof(*w) + n);
    w->s = s;
    w->n = n;
    memcpy(w->data, p, n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, dst, &b, 1, on_session_write) < 0) {
        free(w);
        s->in_closed = true;
        return -EPIPE;
    }
    s->queued += n;
    return (long)s->queued;
}

static void session_close_stdin(struct driver_session *base)
{
    struct exec_session *s = (struct exec_session *)base;
    if (s->in_closed || s->in_close_pending || s->cancelled)
        return;
    if (s->tty) {
        /* a terminal has no end of input but the EOF character */
        struct termios tio;
        char eof = tcgetattr(s->master_fd, &tio) == 0 && tio.c_cc[VEOF]
                       ? (char)tio.c_cc[VEOF]
                       : 4;
        session_write(base, &eof, 1);
        s->in_closed = true;
        return;
    }
    if (s->queued)
        s->in_close_pending = true;
    else
        do_close_stdin(s);
}

static void session_resize(struct driver_session *base, int width, int height)
{
    struct exec_session *s = (struct exec_session *)base;
    if (!s->tty || s->reported || width <= 0 || height <= 0 || width > 0xffff ||
        height > 0xffff)
        return;
    struct winsize ws = {.ws_row = (unsigned short)height,
                         .ws_col = (unsigned short)width};
    ioctl(s->master_fd, TIOCSWINSZ, &ws); /* the kernel sends SIGWINCH */
}

static void session_pause(struct driver_session *base, bool pause)
{
    struct exec_session *s = (struct exec_session *)base;
    if (s->paused == pause || s->reported || s->cancelled)
        return;
    s->paused = pause;
    uv_stream_t *streams[2] = {(uv_stream_t *)&s->out,
                               s->tty ? NULL : (uv_stream_t *)&s->err};
    bool eofs[2] = {s->out_eof, s->err_eof};
    for (int i = 0; i < 2; i++) {
        if (!streams[i] || eofs[i])
            continue;
        if (pause)
            uv_read_stop(streams[i]);
        else
            uv_read_start(streams[i], on_session_alloc, on_session_read);
    }
    if (!pause && s->force_due) {
        s->force_due = false;
        uv_timer_start(&s->timer, on_session_timer, SESSION_EOF_WAIT_MS, 0);
    }
}

static void session_cancel(struct driver_session *base)
{
    struct exec_session *s = (struct exec_session *)base;
    if (s->cancelled)
        return;
    s->cancelled = true;
    if (s->reported)
        return; /* closing already */
    if (s->exited) {
        session_report(s, true);
        return;
    }
    kill(-s->pid, SIGKILL); /* reaped by on_session_exit, then freed */
    uv_read_stop((uv_stream_t *)&s->out);
    if (!s->tty)
        uv_read_stop((uv_stream_t *)&s->err);
}

static const struct driver_session_ops session_ops = {
    .write = session_write,
    .close_stdin = session_close_stdin,
    .resize = session_resize,
    .pause_output = session_pause,
    .cancel = session_cancel,
};

/* A pseudo-terminal: the master (non-blocking, for the loop) and its
 * slave. 0 or -errno with err. */
static int open_pty(int *master, int *slave, struct nc_error *err)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    char name[64];
    if (m < 0)
        return nc_error_set(err, -errno, "failed to open a tty: %s",
                            strerror(errno));
    if (grantpt(m) < 0 || unlockpt(m) < 0 ||
        ptsname_r(m, name, sizeof(name)) != 0) {
        int e = errno;
        close(m);
        return nc_error_set(err, -e, "failed to open a tty: %s", strerror(e));
    }
    int sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (sl < 0) {
        int e = errno;
        close(m);
        return nc_error_set(err, -e, "failed to open a tty: %s: %s", name,
                            strerror(e));
    }
    *master = m;
    *slave = sl;
    return 0;
}

static void close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

int exec_session_start(const struct driver_env *env, struct alloc_task *t,
                       char *const argv[], bool tty,
                       const struct driver_session_cb *cb, void *arg,
                       struct driver_session **out, struct nc_error *err)
{
    *out = NULL;
    struct exec_plan p;
    struct exec_cmd cmd;
    /* ours: stdin's write end, stdout's and stderr's read ends (or the
     * master); theirs: the other ends (or the slave) */
    int ours[3] = {-1, -1, -1}, theirs[3] = {-1, -1, -1};
    int r = exec_plan_prepare(env, t, argv, false, &p, &cmd, err);
    if (r == 0 && tty) {
        r = open_pty(&ours[1], &theirs[0], err);
        if (r == 0 && p.set_creds)
            (void)!fchown(theirs[0], p.uid[1], (gid_t)-1);
        p.stdio[0] = p.stdio[1] = p.stdio[2] = theirs[0];
        p.tty = true;
    } else if (r == 0) {
        for (int i = 0; i < 3 && r == 0; i++) {
            int fds[2];
            if (pipe2(fds, O_CLOEXEC) < 0) {
                r = nc_error_set(err, -errno, "pipe: %s", strerror(errno));
                break;
            }
            ours[i] = i == 0 ? fds[1] : fds[0];
            theirs[i] = i == 0 ? fds[0] : fds[1];
            p.stdio[i] = theirs[i];
        }
    }
    if (r == 0) {
        p.cwd = "/";
        r = exec_plan_spawn(&p, err);
    }
    close_fds(theirs, 3);
    int pidfd = r > 0 ? (int)syscall(SYS_pidfd_open, r, 0) : -1;
    if (r > 0 && pidfd < 0) {
        int e = errno;
        kill(-r, SIGKILL);
        waitpid(r, NULL, 0);
        r = nc_error_set(err, -e, "pidfd_open: %s", strerror(e));
    }
    if (r > 0) {
        struct exec_session *s = xcalloc(1, sizeof(*s));
        s->base.ops = &session_ops;
        s->cb = cb;
        s->arg = arg;
        s->tty = tty;
        s->pid = r;
        s->pidfd = pidfd;
        s->master_fd = tty ? ours[1] : -1;
        uv_poll_init(env->loop, &s->watch, pidfd);
        uv_timer_init(env->loop, &s->timer);
        uv_pipe_init(env->loop, &s->out, 0);
        uv_pipe_open(&s->out, ours[1]);
        s->watch.data = s->timer.data = s->out.data = s;
        s->open_handles = 3;
        if (!tty) {
            uv_pipe_init(env->loop, &s->in, 0);
            uv_pipe_open(&s->in, ours[0]);
            uv_pipe_init(env->loop, &s->err, 0);
            uv_pipe_open(&s->err, ours[2]);
            s->in.data = s->err.data = s;
            s->open_handles += 2;
            uv_read_start((uv_stream_t *)&s->err, on_session_alloc,
                          on_session_read);
        }
        ours[0] = ours[1] = ours[2] = -1; /* the handles own them */
        uv_poll_start(&s->watch, UV_READABLE, on_session_exit);
        uv_read_start((uv_stream_t *)&s->out, on_session_alloc,
                      on_session_read);
        LOG_DEBUG("exec",
                 "allocation %s task %s: exec session started (pid "
                 "%d, %s)",
                 t->alloc->id, t->name, s->pid, tty ? "tty" : "pipes");
        *out = &s->base;
        r = 0;
    }
    close_fds(ours, 3);
    exec_plan_release(&p, &cmd);
    return r;
}
