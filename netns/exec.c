/* exec.c - run one program with piped stdin/stdout/stderr and a deadline.
 * Used by the helper for CNI plugins and iptables, where blocking is the
 * point; never from the agent's loop. posix_spawn (vfork-like in glibc)
 * keeps the cost per plugin at the exec itself. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns/netns_internal.h"

extern char **environ;

static void close_pair(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0) {
            close(p[i]);
            p[i] = -1;
        }
}

/* Reads what is available on fd into b (up to max); false at EOF/error. */
static bool drain(int fd, struct nc_buf *b, size_t max)
{
    char chunk[16384];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0)
        return false;
    if (b->len < max)
        nc_buf_append(b, chunk,
                      (size_t)n < max - b->len ? (size_t)n : max - b->len);
    return true;
}

int netns_exec_start(struct netns_exec *x)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    memset(&x->out, 0, sizeof(x->out));
    memset(&x->err, 0, sizeof(x->err));
    x->status = -1;
    x->timed_out = false;
    x->pid = 0;
    x->in_fd = x->out_fd = x->err_fd = -1;
    x->written = 0;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
        pipe2(err, O_CLOEXEC) < 0) {
        int e = -errno;
        close_pair(in);
        close_pair(out);
        close_pair(err);
        return e;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawnattr_init(&attr);
    /* own process group, so a timeout takes the plugin's iptables too;
     * default signal dispositions and an empty mask, whatever ours are */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                        POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int r = posix_spawn(&pid, x->path, &fa, &attr, x->argv,
                        x->envp ? x->envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (r != 0) {
        close(in[1]);
        close(out[0]);
        close(err[0]);
        return -r;
    }
    x->pid = pid;
    x->in_fd = in[1];
    x->out_fd = out[0];
    x->err_fd = err[0];
    fcntl(x->in_fd, F_SETFL, O_NONBLOCK);
    if (!x->input || x->input_len == 0) {
        close(x->in_fd);
        x->in_fd = -1;
    }
    x->deadline_us = netns_now_us() + (int64_t)x->timeout_ms * 1000;
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

void netns_exec_wait(struct netns_exec *x)
{
    if (x->pid <= 0)
        return;
    size_t max = x->max_output ? x->max_output : NETNS_MAX_OUTPUT;
    while (x->out_fd >= 0 || x->err_fd >= 0) {
        struct pollfd p[3];
        int np = 0, io = -1, iout = -1, ierr = -1;
        if (x->in_fd >= 0) {
            p[np] = (struct pollfd){.fd = x->in_fd, .events = POLLOUT};
            io = np++;
        }
        if (x->out_fd >= 0) {
            p[np] = (struct pollfd){.fd = x->out_fd, .events = POLLIN};
            iout = np++;
        }
        if (x->err_fd >= 0) {
            p[np] = (struct pollfd){.fd = x->err_fd, .events = POLLIN};
            ierr = np++;
        }
        int64_t left = x->deadline_us - netns_now_us();
        if (left <= 0) {
            x->timed_out = true;
            kill(-x->pid, SIGKILL);
            break;
        }
        int n = poll(p, (nfds_t)np, (int)((left + 999) / 1000));
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0)
            continue;
        if (io >= 0 && p[io].revents) {
            ssize_t w = write(x->in_fd, x->input + x->written,
                              x->input_len - x->written);
            if (w > 0)
                x->written += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
                x->written == x->input_len)
                close_fd(&x->in_fd);
        }
        if (iout >= 0 && p[iout].revents && !drain(x->out_fd, &x->out, max))
            close_fd(&x->out_fd);
        if (ierr >= 0 && p[ierr].revents && !drain(x->err_fd, &x->err, 65536))
            close_fd(&x->err_fd);
    }
    close_fd(&x->in_fd);
    close_fd(&x->out_fd);
    close_fd(&x->err_fd);
    int st = 0;
    while (waitpid(x->pid, &st, 0) < 0 && errno == EINTR)
        ;
    x->pid = 0;
    x->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (!x->out.data)
        nc_buf_append(&x->out, "", 0);
    if (!x->err.data)
        nc_buf_append(&x->err, "", 0);
}

int netns_exec_run(struct netns_exec *x)
{
    int r = netns_exec_start(x);
    if (r == 0)
        netns_exec_wait(x);
    return r;
}

void netns_exec_free(struct netns_exec *x)
{
    nc_buf_free(&x->out);
    nc_buf_free(&x->err);
}
