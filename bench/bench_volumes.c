// deps: volumes/volumes.c volumes/path.c volumes/bind.c volumes/mounts.c
/* volumes/ figures, printed, not asserted:
 *   - resolving a 12-component path inside a root: openat2 vs the walk;
 *   - parsing a 5,000-line mountinfo (a busy node) and sorting what lies
 *     under a data_dir;
 *   - as root: bind + unmount cycles in a private mount namespace, new
 *     mount API vs mount(2) + remount.
 * Run: make build/bench/bench_volumes && build/bench/bench_volumes */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "volumes/volumes.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void bench_resolve(int root_fd, const char *path, const char *label)
{
    char err[256];
    int n = 0;
    double start = now(), t = 0;
    do {
        for (int i = 0; i < 1000; i++, n++) {
            int fd = vol_open_in_root(root_fd, path, VOL_CREATE_NONE, err,
                                      sizeof err);
            if (fd < 0) {
                fprintf(stderr, "%s\n", err);
                return;
            }
            close(fd);
        }
    } while ((t = now() - start) < 0.5);
    printf("resolve %-34s %8.2f us per path\n", label, t / n * 1e6);
}

static void bench_mountinfo(void)
{
    size_t cap = 5000 * 160, len = 0;
    char *text = malloc(cap);
    if (!text)
        return;
    for (int i = 0; i < 5000; i++)
        len += (size_t)snprintf(
            text + len, cap - len,
            "%d 27 0:%d / /var/lib/nomclient/alloc/%08x-alloc/task%d/"
            "data\\040dir rw,nosuid,nodev,relatime shared:%d - tmpfs tmpfs "
            "rw,size=1024k\n",
            100 + i, 40 + i, (unsigned)i * 2654435761u, i % 7, i);
    struct vol_mount_table t;
    char **paths;
    size_t np = 0;
    int n = 0;
    double start = now(), el = 0;
    do {
        if (vol_mountinfo_parse(text, &t, NULL, 0) < 0) {
            free(text);
            return;
        }
        if (vol_mounts_under(&t, "/var/lib/nomclient", &paths, &np) == 0)
            vol_paths_free(paths, np);
        vol_mount_table_free(&t);
        n++;
    } while ((el = now() - start) < 0.5);
    printf("mountinfo: 5000 lines parsed + %zu sorted:  %8.2f ms\n", np,
           el / n * 1e3);
    free(text);
}

/* In a child with a private mount namespace. */
static void bench_bind(const char *base, unsigned fallbacks, const char *label)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid != 0) {
        waitpid(pid, NULL, 0);
        return;
    }
    if (unshare(CLONE_NEWNS) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        perror("unshare");
        _exit(1);
    }
    vol_force_fallbacks(fallbacks);
    char root[PATH_MAX], src[PATH_MAX], err[512];
    snprintf(root, sizeof root, "%s/root", base);
    snprintf(src, sizeof src, "%s/src", base);
    int root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int n = 0;
    double start = now(), t = 0;
    do {
        if (vol_bind_mount(root_fd, src, "srv/data", n % 2, err, sizeof err) <
                0 ||
            vol_unmount_under(root, NULL, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            _exit(1);
        }
        n++;
    } while ((t = now() - start) < 0.5);
    printf("bind + unmount %-30s %8.2f us per cycle\n", label, t / n * 1e6);
    fflush(stdout);
    _exit(0);
}

int main(void)
{
    char base[] = "/tmp/nomclient-bench-vol.XXXXXX";
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/root/a/b/c/d/e/f/g/h/i/j/k/l", base);
    for (char *s = p + strlen(base) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        mkdir(p, 0755);
        *s = '/';
    }
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/src", base);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/root/link", base);
    symlink("/a/b/c/d/e/f", p);
    snprintf(p, sizeof p, "%s/root", base);
    int root_fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);

    unsigned f = vol_kernel_features();
    printf("kernel features: openat2 %s, new mount API %s\n",
           f & VOL_FEATURE_OPENAT2 ? "yes" : "no",
           f & VOL_FEATURE_MOUNT_API ? "yes" : "no");
    bench_resolve(root_fd, "a/b/c/d/e/f/g/h/i/j/k/l", "(openat2)");
    bench_resolve(root_fd, "link/g/h/i/j/k/l", "via a symlink (openat2)");
    vol_force_fallbacks(VOL_FEATURE_OPENAT2);
    bench_resolve(root_fd, "a/b/c/d/e/f/g/h/i/j/k/l", "(walk)");
    bench_resolve(root_fd, "link/g/h/i/j/k/l", "via a symlink (walk)");
    vol_force_fallbacks(0);
    close(root_fd);

    bench_mountinfo();

    if (geteuid() == 0) {
        bench_bind(base, 0, "(new mount API)");
        bench_bind(base, VOL_FEATURE_MOUNT_API, "(mount + remount)");
    } else {
        printf("bind + unmount: skipped (not root)\n");
    }
    nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
