/* Shared between the files of volumes/ only; not part of the module's API. */
#ifndef NOMCLIENT_VOL_INTERNAL_H
#define NOMCLIENT_VOL_INTERNAL_H

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "volumes/volumes.h"

/* Scope-bound release, as crun does: the variable is freed / closed on
 * every return path; hand ownership out with `r = fd; fd = -1;`. */
static inline void vol_freep(void *p)
{
    free(*(void **)p);
}

static inline void vol_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}

#define cleanup_free __attribute__((cleanup(vol_freep)))
#define cleanup_close __attribute__((cleanup(vol_closep)))

/* Writes "<fmt...>: strerror(errnum)" into err and returns -errnum. */
int vol_fail(char *err, size_t errlen, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "<fmt...>" without an errno text; returns -errnum. */
int vol_failx(char *err, size_t errlen, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Feature bits currently usable (probed minus forced); a runtime ENOSYS
 * clears a bit for the rest of the process. */
bool vol_have(unsigned feature);
void vol_mark_missing(unsigned feature);

void vol_run_hook(enum vol_hook_point point);

/* "/proc/self/fd/N" into buf (at least 32 bytes). */
const char *vol_fd_path(char *buf, size_t len, int fd);

enum {
    VOL_WALK_NO_SYMLINKS = 1u << 0, /* refuse symlinks instead of confining */
};

/* The component-by-component walk behind vol_open_in_root (and used with
 * VOL_WALK_NO_SYMLINKS to reach mount points for unmounting). Returns an
 * O_PATH fd or -errno; "what" names the path in messages. */
int vol_walk(int root_fd, const char *path, enum vol_create create,
             unsigned flags, const char *what, char *err, size_t errlen);

/* vol_open_in_root, with "what" naming the path in messages. */
int vol_resolve_in_root(int root_fd, const char *path, enum vol_create create,
                        const char *what, char *err, size_t errlen);

#endif
