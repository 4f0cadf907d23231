/* logfile.c - see client/drivers/logfile.h. */
#include "client/drivers/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static void logfile_path(const struct logfile *l, int index, char *path,
                         size_t len)
{
    snprintf(path, len, "%s/%s.%s.%d", l->dir, l->task, l->stream, index);
}

static int logfile_open_index(struct logfile *l)
{
    char path[4096];
    logfile_path(l, l->index, path, sizeof(path));
    l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (l->fd < 0)
        return -errno;
    struct stat st;
    l->size = fstat(l->fd, &st) == 0 ? st.st_size : 0;
    /* keep at most max_files: drop the one that fell off the end */
    if (l->index >= l->max_files) {
        logfile_path(l, l->index - l->max_files, path, sizeof(path));
        unlink(path);
    }
    return 0;
}

int logfile_open(struct logfile *l, const char *dir, const char *task,
                 const char *stream, int max_files, int64_t max_bytes)
{
    l->dir = dir;
    l->task = task;
    l->stream = stream;
    l->max_files = max_files >= 1 ? max_files : 10;
    l->max_bytes = max_bytes >= 1 ? max_bytes : (int64_t)10 << 20;
    l->fd = -1;
    l->index = 0;
    l->size = 0;
    /* continue after the highest index (gaps up to max_files tolerated:
     * the older files of a long run were removed) */
    char path[4096];
    for (int i = 0;; i++) {
        logfile_path(l, i, path, sizeof(path));
        if (access(path, F_OK) < 0) {
            if (i > l->index + l->max_files)
                break;
            continue;
        }
        l->index = i;
    }
    return logfile_open_index(l);
}

void logfile_write(struct logfile *l, const void *buf, size_t n)
{
    const char *p = buf;
    if (n > 0 && l->fd < 0 && l->dir && logfile_open_index(l) < 0)
        return; /* a failed open is tried again on the next write */
    while (n > 0) {
        if (l->size >= l->max_bytes) {
            close(l->fd);
            l->fd = -1;
            l->index++;
            if (logfile_open_index(l) < 0)
                return;
        }
        size_t room = (size_t)(l->max_bytes - l->size);
        size_t chunk = n < room ? n : room;
        ssize_t w = write(l->fd, p, chunk);
        if (w <= 0)
            return; /* disk full: the task must not block on its output */
        l->size += w;
        p += w;
        n -= (size_t)w;
    }
}

void logfile_close(struct logfile *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}
