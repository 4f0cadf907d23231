/* nsfs.c - named network namespaces, made the way `ip netns add` makes
 * them so iproute2, Nomad and the task supervisor all find them: an empty
 * file /run/netns/NAME with the namespace's nsfs inode bind-mounted on it,
 * /run/netns itself a shared mount so later mount namespaces see new ones.
 *
 * A thread unshares a new network namespace, opens it, and setns()es back
 * into its own: no fork, and the plugins run next start in the host
 * namespace as they must; the namespace is then mounted from its fd. A network namespace is per thread,
 * so the other threads of the server never see the new one: all here goes
 * through /proc/thread-self, never /proc/self (the main thread's).
 *
 * A namespace another process holds (docker's pause container) is
 * mounted the same way, from an fd of /proc/<pid>/ns/net opened here, in
 * this mount namespace: never from a path the holder's runtime names
 * (docker's SandboxKey lives in its own mount namespace when dockerd runs
 * in one, nomad#8371), and never the host's own namespace. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/nsfs.h>
#include <unistd.h>

#include "netns/netns_internal.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

/* /run/netns as a shared mount point, as iproute2 sets it up: if it is not
 * a mount point yet (EINVAL), bind it onto itself first. */
static int make_run_dir_shared(struct nc_error *err)
{
    if (mkdir(NETNS_RUN_DIR, 0755) < 0 && errno != EEXIST)
        return nc_error_set(err, -errno, "create %s: %s", NETNS_RUN_DIR,
                            strerror(errno));
    bool bound = false;
    while (mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) < 0) {
        if (errno != EINVAL || bound)
            return nc_error_set(err, -errno, "make %s a shared mount: %s",
                                NETNS_RUN_DIR, strerror(errno));
        if (mount(NETNS_RUN_DIR, NETNS_RUN_DIR, "none", MS_BIND | MS_REC,
                  NULL) < 0)
            return nc_error_set(err, -errno, "bind-mount %s onto itself: %s",
                                NETNS_RUN_DIR, strerror(errno));
        bound = true;
    }
    return 0;
}

/* A new network namespace for the calling thread to hand out: its fd, or
 * -errno. The thread is back in its own namespace on return. */
static int new_namespace(struct nc_error *err)
{
    cleanup_close int self =
        open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0)
        return nc_error_set(err, -errno, "open /proc/thread-self/ns/net: %s",
                            strerror(errno));
    if (unshare(CLONE_NEWNET) < 0)
        return nc_error_set(err, -errno, "unshare a network namespace: %s",
                            strerror(errno));
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int e = errno;
    if (setns(self, CLONE_NEWNET) < 0) {
        /* cannot happen as root; carrying on in the wrong namespace would
         * make the plugins build the bridge inside the allocation */
        e = errno;
        if (fd >= 0)
            close(fd);
        return nc_error_set(err, -e,
                            "return to the host network namespace: %s",
                            strerror(e));
    }
    if (fd < 0)
        return nc_error_set(err, -e, "open the new namespace: %s",
                            strerror(e));
    return fd;
}

/* ---- a namespace made ahead ----------------------------------------------
 * Making a network namespace costs the kernel 0.6-1 ms. The helper server
 * keeps SPARES made ahead, held only by an fd (so it vanishes with the
 * process, never leaks), hands one to each set-up and makes the next
 * on a thread of its own once that set-up is done. */
#define SPARES 2 /* set-ups often start in twos and threes */

static pthread_mutex_t spare_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t spare_wanted = PTHREAD_COND_INITIALIZER;
static int spares[SPARES];
static int nspares;
static bool spare_on;

/* The thread that makes spares: up to SPARES at start, and again each
 * time netns_ns_refill asks (after a set-up, off its path: making one
 * holds a CPU in the kernel for most of a millisecond). */
static void *spare_maker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&spare_mu);
    for (;;) {
        while (nspares < SPARES) {
            pthread_mutex_unlock(&spare_mu);
            struct nc_error err = {0};
            int fd = new_namespace(&err);
            pthread_mutex_lock(&spare_mu);
            if (fd < 0) {
                /* no spares then: each set-up makes its own */
                LOG_WARN("netns", "%s", err.msg);
                spare_on = false;
                pthread_mutex_unlock(&spare_mu);
                return NULL;
            }
            spares[nspares++] = fd;
        }
        pthread_cond_wait(&spare_wanted, &spare_mu);
    }
}

void netns_ns_keep_spare(void)
{
    pthread_mutex_lock(&spare_mu);
    if (!spare_on) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        spare_on = pthread_create(&th, &attr, spare_maker, NULL) == 0;
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_unlock(&spare_mu);
}

void netns_ns_refill(void)
{
    pthread_mutex_lock(&spare_mu);
    if (nspares < SPARES)
        pthread_cond_signal(&spare_wanted);
    pthread_mutex_unlock(&spare_mu);
}

static int take_namespace(struct nc_error *err)
{
    pthread_mutex_lock(&spare_mu);
    int fd = nspares ? spares[--nspares] : -1;
    pthread_mutex_unlock(&spare_mu);
    return fd >= 0 ? fd : new_namespace(err);
}

/* Runs fn inside the namespace ns on this thread, which goes in and
 * comes back (a network namespace is per thread, see above). */
static int in_namespace(int ns, int (*fn)(void *arg, struct nc_error *err),
                        void *arg, struct nc_error *err)
{
    cleanup_close int self =
        open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0)
        return nc_error_set(err, -errno, "open /proc/thread-self/ns/net: %s",
                            strerror(errno));
    if (setns(ns, CLONE_NEWNET) < 0)
        return nc_error_set(err, -errno, "enter the namespace: %s",
                            strerror(errno));
    int r = fn(arg, err);
    if (setns(self, CLONE_NEWNET) < 0) /* cannot happen as root */
        r = nc_error_set(err, -errno,
                         "return to the host network namespace: %s",
                         strerror(errno));
    return r;
}

static int set_lo_up(void *arg, struct nc_error *err)
{
    (void)arg;
    int r = 0;
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &ifr) < 0 ||
        (ifr.ifr_flags |= IFF_UP, ioctl(sock, SIOCSIFFLAGS, &ifr) < 0))
        r = nc_error_set(err, -errno, "set lo up in the namespace: %s",
                         strerror(errno));
    if (sock >= 0)
        close(sock);
    return r;
}

/* Sets lo up inside the namespace ns. */
static int loopback_up(int ns, struct nc_error *err)
{
    return in_namespace(ns, set_lo_up, NULL, err);
}

static int find_link(void *arg, struct nc_error *err)
{
    (void)err;
    return if_nametoindex(arg) > 0 ? 1 : 0;
}

int netns_ns_has_link(int ns, const char *ifname, struct nc_error *err)
{
    return in_namespace(ns, find_link, (void *)ifname, err);
}

/* /run/netns made a shared mount, once per process, one thread at a time
 * (two binding it onto itself would stack): a recursive propagation
 * change walks every namespace mounted there and takes the kernel's mount
 * lock, which the supervisors' chroots are using at the same moment. */
static int run_dir_ready(struct nc_error *err)
{
    static pthread_mutex_t run_dir = PTHREAD_MUTEX_INITIALIZER;
    static bool run_dir_shared;
    pthread_mutex_lock(&run_dir);
    int r = run_dir_shared ? 0 : make_run_dir_shared(err);
    run_dir_shared = r == 0;
    pthread_mutex_unlock(&run_dir);
    return r;
}

/* Mounts the namespace ns (an fd) on path, a new empty file; what = the
 * namespace's description for messages. */
static int mount_namespace(const char *path, int ns, bool lo_up,
                           const char *what, struct nc_error *err)
{
    int r = run_dir_ready(err);
    if (r < 0)
        return r;
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0)
        return nc_error_set(err, -errno, "create %s: %s", path,
                            strerror(errno));
    close(fd);
    if (lo_up && (r = loopback_up(ns, err)) < 0) {
        unlink(path);
        return r;
    }
    char src[64];
    snprintf(src, sizeof(src), "/proc/thread-self/fd/%d", ns);
    if (mount(src, path, "none", MS_BIND, NULL) < 0) {
        r = nc_error_set(err, -errno, "bind-mount %s on %s: %s", what, path,
                         strerror(errno));
        unlink(path);
    }
    return r;
}

int netns_ns_create(const char *path, bool lo_up, struct nc_error *err)
{
    cleanup_close int ns = take_namespace(err);
    if (ns < 0)
        return ns;
    return mount_namespace(path, ns, lo_up, "the new namespace", err);
}

int netns_ns_attach(const char *path, int ns, bool lo_up, struct nc_error *err)
{
    return mount_namespace(path, ns, lo_up, "the holder's namespace", err);
}

/* Whether fd is a network namespace: NS_GET_NSTYPE (Linux 4.11), else the
 * file system's magic (the fd came from an ns/net link, so an nsfs one is
 * a network namespace). */
static bool is_net_namespace(int fd)
{
    int type = ioctl(fd, NS_GET_NSTYPE);
    if (type >= 0)
        return type == CLONE_NEWNET;
    struct statfs fs;
    return (errno == ENOTTY || errno == EINVAL) && fstatfs(fd, &fs) == 0 &&
           (unsigned long)fs.f_type == NSFS_MAGIC;
}

/* Whether fd is the same namespace as the one the link at path names;
 * false when path cannot be read. */
static bool same_namespace(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

static int host_namespace_error(int pid, struct nc_error *err)
{
    return nc_error_set(err, -EPERM,
                        "process %d is in the host's network namespace, not "
                        "one of its own: refusing to set up an allocation's "
                        "network in it",
                        pid);
}

int netns_holder_open(int pid, struct nc_error *err)
{
    if (pid <= 0)
        return nc_error_set(err, -EINVAL,
                            "holder pid %d is not a process id", pid);
    /* init's is the host's by definition (and /proc/1/ns may be closed to
     * us where the agent runs in a sandbox) */
    if (pid == 1)
        return host_namespace_error(pid, err);
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ESRCH)
            return nc_error_set(err, -ESRCH,
                                "the process holding the network namespace "
                                "(pid %d) is gone: %s: %s",
                                pid, path, strerror(e));
        return nc_error_set(err, -e, "open %s (the process holding the "
                                     "network namespace): %s",
                            path, strerror(e));
    }
    int r = 0;
    if (!is_net_namespace(fd))
        r = nc_error_set(err, -EINVAL, "%s is not a network namespace", path);
    /* the namespace the plugins run in: the chain would build the bridge
     * and its NAT inside itself, and remove the host's eth0 on DEL */
    else if (same_namespace(fd, "/proc/thread-self/ns/net") ||
             same_namespace(fd, "/proc/1/ns/net"))
        r = host_namespace_error(pid, err);
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

bool netns_ns_is(const char *path, int ns)
{
    return same_namespace(ns, path);
}

bool netns_ns_exists(const char *path)
{
    struct statfs fs;
    return statfs(path, &fs) == 0 && (unsigned long)fs.f_type == NSFS_MAGIC;
}

int netns_ns_remove(const char *path, struct nc_error *err)
{
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        return nc_error_set(err, -errno, "unmount %s: %s", path,
                            strerror(errno));
    if (unlink(path) < 0 && errno != ENOENT)
        return nc_error_set(err, -errno, "remove %s: %s", path,
                            strerror(errno));
    return 0;
}
