/*
 * pause: the infra container's only process, like Kubernetes' pause. It
 * holds the allocation's network namespace open and does nothing else:
 * sleeps in sigsuspend() (pause() with the signals blocked in between, so
 * a SIGTERM that lands between the check and the sleep is not lost), reaps any
 * child that is reparented to it (it is PID 1 of its PID namespace when the
 * task containers share it), and exits 0 on SIGTERM or SIGINT so `docker stop`
 * returns at once instead of waiting for the kill timeout (PID 1 has no default
 * signal actions).
 *
 * Built by the tests, never committed as a binary:
 *   cc -static -Os -s -o $BUILD/docker/pause tests/docker/pause.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_child(int sig)
{
    int saved = errno;
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        static const char v[] = "nctest pause 1\n";
        return write(1, v, sizeof(v) - 1) == (ssize_t)(sizeof(v) - 1) ? 0 : 1;
    }

    sigset_t block, wait_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &block, &wait_mask) < 0)
        return 1;
    sigdelset(&wait_mask, SIGTERM);
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGCHLD);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
        return 1;
    sa.sa_handler = on_child;
    sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        return 1;

    while (!stop_requested)
        sigsuspend(&wait_mask);
    return 0;
}
