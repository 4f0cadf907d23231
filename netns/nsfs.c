/* nsfs.c - named network namespaces, made the way `ip netns add` makes
 * them so iproute2, Nomad and the task supervisor all find them: an empty
 * file /run/netns/NAME with the namespace's nsfs inode bind-mounted on it,
 * /run/netns itself a shared mount so later mount namespaces see new ones.
 *
 * The helper's thread unshares a new network namespace, mounts it, and
 * setns()es back into its own: no fork, and the plugins it runs next start
 * in the host namespace as they must. A network namespace is per thread,
 * so the other threads of the server never see the new one: all here goes
 * through /proc/thread-self, never /proc/self (the main thread's). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
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

int netns_ns_create(const char *path, struct nc_error *err)
{
    /* one thread at a time: two binding it onto itself would stack */
    static pthread_mutex_t run_dir = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&run_dir);
    int r = make_run_dir_shared(err);
    pthread_mutex_unlock(&run_dir);
    if (r < 0)
        return r;
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0)
        return nc_error_set(err, -errno, "create %s: %s", path,
                            strerror(errno));
    close(fd);
    cleanup_close int self =
        open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0) {
        r = nc_error_set(err, -errno, "open /proc/thread-self/ns/net: %s",
                         strerror(errno));
        unlink(path);
        return r;
    }
    if (unshare(CLONE_NEWNET) < 0) {
        r = nc_error_set(err, -errno, "unshare a network namespace: %s",
                         strerror(errno));
        unlink(path);
        return r;
    }
    if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0)
        r = nc_error_set(err, -errno, "bind-mount the new namespace on %s: %s",
                         path, strerror(errno));
    if (setns(self, CLONE_NEWNET) < 0) {
        /* cannot happen as root; carrying on in the wrong namespace would
         * make the plugins build the bridge inside the allocation */
        r = nc_error_set(err, -errno,
                         "return to the host network namespace: %s",
                         strerror(errno));
        umount2(path, MNT_DETACH);
        unlink(path);
        return r;
    }
    if (r < 0)
        unlink(path);
    return r;
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
