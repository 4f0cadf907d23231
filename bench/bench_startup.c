// deps: client/util.c
/* Time from exec of `nomclient agent -dev` to the first accepted TCP
 * connection on its API port, over several runs, plus the agent's idle RSS
 * and PSS after it settles. Usage: bench_startup NOMCLIENT PORT RUNS */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/util.h"

static int try_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    return r;
}

static long status_kb(pid_t pid, const char *file, const char *key)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    char *s = nc_read_file(path, NULL, 0);
    if (!s)
        return -1;
    char *p = strstr(s, key);
    long v = p ? strtol(p + strlen(key), NULL, 10) : -1;
    free(s);
    return v;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_startup NOMCLIENT PORT RUNS\n");
        return 1;
    }
    const char *bin = argv[1];
    int port = atoi(argv[2]), runs = atoi(argv[3]);
    if (runs < 1 || runs > 1000)
        runs = 10;
    uint64_t *t = xcalloc((size_t)runs, sizeof(*t));
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    long rss = -1, pss = -1;
    for (int i = 0; i < runs; i++) {
        char dir[] = "/tmp/nomclient-bench-XXXXXX";
        if (!mkdtemp(dir))
            return 1;
        uint64_t start = nc_now_mono_ns();
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 2);
            execl(bin, bin, "agent", "-dev", "-data-dir", dir, "-http-port",
                  portstr, "-log-level", "warn", (char *)NULL);
            _exit(127);
        }
        int ok = 0;
        for (int spin = 0; spin < 200000; spin++) {
            if (try_connect(port) == 0) {
                ok = 1;
                break;
            }
            struct timespec ts = {0, 50000}; /* 50 us between attempts */
            nanosleep(&ts, NULL);
        }
        t[i] = nc_now_mono_ns() - start;
        if (i == runs - 1 && ok) {
            sleep(2); /* let the first stats samples run: idle state */
            rss = status_kb(pid, "status", "VmRSS:");
            pss = status_kb(pid, "smaps_rollup", "Pss:");
        }
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cleanup of %s failed\n", dir);
        if (!ok) {
            fprintf(stderr, "agent did not serve on port %d\n", port);
            return 1;
        }
    }
    qsort(t, (size_t)runs, sizeof(*t), cmp_u64);
    printf("start to serving the API: median %.1f ms, min %.1f ms, max %.1f ms "
           "over %d runs (goal: under 20 ms)\n",
           (double)t[runs / 2] / 1e6, (double)t[0] / 1e6,
           (double)t[runs - 1] / 1e6, runs);
    printf("idle agent memory: RSS %ld KiB, PSS %ld KiB (goal: RSS under 5 MB)\n",
           rss, pss);
    free(t);
    return 0;
}
