/* drivers/logfile.h - a task's rotated output files, as Nomad names them:
 * <dir>/<task>.<stream>.<index> (stream "stdout" or "stderr"), at most
 * max_files of max_bytes each, the oldest removed as a new one opens, a
 * restarted task appending after the highest index found. Written by the
 * exec supervisor (its pipes) and the docker driver (the Engine's log
 * stream), read unchanged by `alloc logs [-f]`. No allocation: the
 * strings are borrowed and must outlive the struct. */
#ifndef NOMCLIENT_DRIVERS_LOGFILE_H
#define NOMCLIENT_DRIVERS_LOGFILE_H

#include <stddef.h>
#include <stdint.h>

struct logfile {
    const char *dir, *task, *stream; /* borrowed */
    int max_files;
    int64_t max_bytes;
    int fd; /* -1 when closed */
    int index;
    int64_t size;
};

/* Opens the stream's current file: the highest existing index (created
 * as index 0 when none). max_files < 1 is 10, max_bytes < 1 is 10 MiB,
 * Nomad's defaults. 0, or -errno (fd stays -1). */
int logfile_open(struct logfile *l, const char *dir, const char *task,
                 const char *stream, int max_files, int64_t max_bytes);
/* Appends n bytes, rotating to the next index when the file is full. A
 * failed write (disk full) drops the rest: the task never waits on its
 * logs. */
void logfile_write(struct logfile *l, const void *buf, size_t n);
/* Closes the file (safe when closed or never opened). */
void logfile_close(struct logfile *l);

#endif
