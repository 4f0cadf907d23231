/* artifact.c - a task's artifact blocks, fetched into its task dir before
 * it starts, for every driver, as Nomad's artifact hook and go-getter do:
 * http and https sources (other getters are refused), options{} merged
 * into the URL's query, `checksum` (md5, sha1, sha256, sha512) verified,
 * archives (by extension, or options.archive) unpacked, `mode` any, file
 * or dir, `headers`, `chown`, and a destination inside the allocation dir.
 *
 * The download runs on the loop through client/curl_uv.c (libcurl
 * dlopen'd on first use); the checksum, the writing and the unpacking run
 * on a worker thread (artifact_get.c). A failure is Nomad's "Failed
 * Artifact Download" event and goes to the task's restart policy. */
#include "client/alloc/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/curl_uv.h"

/* Bodies are held in memory between the download and the worker. */
#define ARTIFACT_MAX_BYTES ((size_t)256 << 20)
#define ARTIFACT_TIMEOUT_MS (30L * 60 * 1000) /* Nomad's http_read_timeout */
#define ARTIFACT_MAX_REDIRECTS 10

/* ---- the fetch of a task's artifacts, one after the other ---- */

/* chown = true: what was written becomes the task user's, as Nomad. */
static uid_t chown_uid;
static gid_t chown_gid;
static uv_mutex_t chown_lock;
static uv_once_t chown_once = UV_ONCE_INIT;

static void chown_init(void)
{
    uv_mutex_init(&chown_lock);
}

static int chown_one(const char *path, const struct stat *st, int flag,
                     struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return lchown(path, chown_uid, chown_gid) < 0 ? -1 : 0;
}

static int chown_tree(const char *path, const char *user, char *err,
                      size_t errlen)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || !res) {
        snprintf(err, errlen, "chown: unknown user \"%s\"", user);
        return -ENOENT;
    }
    uv_once(&chown_once, chown_init);
    uv_mutex_lock(&chown_lock); /* nftw has no argument for its callback */
    chown_uid = pw.pw_uid;
    chown_gid = pw.pw_gid;
    int r = nftw(path, chown_one, 16, FTW_PHYS | FTW_MOUNT);
    int e = errno;
    uv_mutex_unlock(&chown_lock);
    if (r != 0) {
        snprintf(err, errlen, "chown %s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

struct fetch {
    struct alloc_task *t; /* NULL once forgotten (the manager closed) */
    struct alloc_manager *m;
    struct fetch *next; /* the manager's fetches */
    size_t i;           /* the artifact in hand */
    bool wait_net;      /* how the task is spawned once they are in */
    char *src;          /* its interpolated source, for messages */
    struct artifact_url u;
    struct strlist headers; /* "Name: value" */
    char *rel;              /* destination, relative to the allocation dir */
    bool as_file;           /* rel names a file, not a directory */
    int redirects;
    struct curl_uv_xfer *xfer;
    char *body;
    size_t len;
    char *alloc_dir;
    char *chown_user; /* chown = true: the task's user, else NULL */
    uv_work_t work;
    int status;
    char err[1024];
};

static void fetch_next(struct fetch *f);

static void fetch_unlink(struct fetch *f)
{
    struct fetch **pp = (struct fetch **)&f->m->artifact_fetches;
    for (; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
}

static void fetch_reset(struct fetch *f)
{
    free(f->src);
    free(f->rel);
    free(f->body);
    free(f->chown_user);
    f->src = f->rel = f->body = f->chown_user = NULL;
    artifact_url_free(&f->u);
    strlist_free(&f->headers);
    f->redirects = 0;
}

static void fetch_free(struct fetch *f)
{
    fetch_reset(f);
    free(f->alloc_dir);
    free(f);
}

/* The task's artifacts are in place, or one failed (msg). */
static void fetch_end(struct fetch *f, const char *msg)
{
    struct alloc_task *t = f->t;
    fetch_unlink(f);
    if (!t) {
        fetch_free(f);
        return;
    }
    struct alloc *a = t->alloc;
    t->artifacts_fetch = NULL;
    bool wanted = nc_streq(t->state, "pending") && !a->stopping &&
                  !a->lc_killing && !nc_streq(a->desired_status, "stop");
    if (msg) {
        alloc_task_event(t, "Failed Artifact Download",
                         "failed to download artifact \"%s\": %s",
                         f->src ? f->src : "", msg);
        LOG_WARN("alloc", "%s task %s: failed to download artifact \"%s\": %s",
                 a->id, t->name, f->src ? f->src : "", msg);
    } else if (wanted) {
        t->artifacts_done = true;
    }
    bool wait_net = alloc_bridged(a) && !nc_streq(a->net_phase, "ready");
    fetch_free(f);
    if (!wanted) {
        alloc_update_status(a);
        return;
    }
    if (msg) {
        alloc_task_apply_restart_policy(t, true);
        alloc_save(a);
        return;
    }
    alloc_task_spawn(t, wait_net);
}

static void on_work(uv_work_t *w)
{
    struct fetch *f = w->data;
    int dirfd = open(f->alloc_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        f->status = -errno;
        snprintf(f->err, sizeof(f->err), "%s: %s", f->alloc_dir,
                 strerror(errno));
        return;
    }
    char *what = xasprintf("%s/%s", f->alloc_dir, f->rel);
    f->status = 0;
    if (f->u.has_sum)
        f->status = artifact_checksum_verify(&f->u.sum, f->body, f->len, what,
                                             f->err, sizeof(f->err));
    if (f->status == 0 && *f->u.type)
        f->status = artifact_unpack(dirfd, f->rel, f->body, f->len, f->u.type,
                                    f->as_file, f->err, sizeof(f->err));
    else if (f->status == 0)
        f->status = artifact_save_file(dirfd, f->rel, f->body, f->len, f->err,
                                       sizeof(f->err));
    if (f->status == 0 && f->chown_user)
        f->status = chown_tree(what, f->chown_user, f->err, sizeof(f->err));
    free(what);
    close(dirfd);
}

static void on_work_done(uv_work_t *w, int status)
{
    struct fetch *f = w->data;
    if (status < 0 && f->status == 0) {
        f->status = status;
        snprintf(f->err, sizeof(f->err), "%s", uv_strerror(status));
    }
    if (!f->t || f->status < 0) {
        fetch_end(f, f->t ? f->err : NULL);
        return;
    }
    f->i++;
    fetch_reset(f);
    fetch_next(f);
}

static void download(struct fetch *f, const char *url);

static void on_downloaded(void *arg, const struct curl_uv_response *r)
{
    struct fetch *f = arg;
    f->xfer = NULL;
    char msg[1200];
    if (r->status >= 300 && r->status < 400 && r->redirect_url &&
        f->redirects < ARTIFACT_MAX_REDIRECTS) {
        f->redirects++;
        char *next = xstrdup(r->redirect_url);
        download(f, next);
        free(next);
        return;
    }
    if (r->capped) {
        snprintf(msg, sizeof(msg),
                 "artifact larger than %zu MiB, the most "
                 "this node fetches",
                 ARTIFACT_MAX_BYTES >> 20);
    } else if (r->curl_code && !r->status) {
        snprintf(msg, sizeof(msg), "%s",
                 r->error && *r->error ? r->error : "transfer failed");
    } else if (r->status != 200) {
        snprintf(msg, sizeof(msg), "bad response code: %ld",
                 r->status); /* go-getter's */
    } else if (r->curl_code) {
        snprintf(msg, sizeof(msg), "%s", r->error);
    } else {
        f->body = xmalloc(r->body_len + 1);
        memcpy(f->body, r->body, r->body_len);
        f->len = r->body_len;
        f->work.data = f;
        int rr = uv_queue_work(f->m->c.loop, &f->work, on_work, on_work_done);
        if (rr == 0)
            return;
        snprintf(msg, sizeof(msg), "%s", uv_strerror(rr));
    }
    fetch_end(f, msg);
}

static void download(struct fetch *f, const char *url)
{
    const char **hdrs = xcalloc(f->headers.n + 1, sizeof(*hdrs));
    for (size_t i = 0; i < f->headers.n; i++)
        hdrs[i] = f->headers.items[i];
    const struct task *spec = alloc_task_spec(f->t);
    struct curl_uv_tls tls = {.insecure = spec && f->i < spec->nartifacts &&
                                          spec->artifacts[f->i].insecure};
    struct curl_uv_request req = {
        .url = url,
        .headers = hdrs,
        .tls = &tls,
        .timeout_ms = ARTIFACT_TIMEOUT_MS,
        .max_body = ARTIFACT_MAX_BYTES,
    };
    int r =
        curl_uv_start(f->m->artifact_curl, &req, on_downloaded, f, &f->xfer);
    free(hdrs);
    if (r < 0)
        fetch_end(f, strerror(-r));
}

/* The file name go-getter gives a download in a directory: the path's
 * last element (a single-file archive loses its extension). */
static char *file_name(const char *path, const char *type)
{
    const char *slash = strrchr(path, '/');
    const char *b = slash ? slash + 1 : path;
    size_t n = strlen(b);
    if (*type && n > strlen(type) + 1)
        n -= strlen(type) + 1;
    return n ? xstrndup(b, n) : NULL;
}

/* Where the artifact goes, relative to the allocation dir; 0 or -EINVAL. */
static int fetch_place(struct fetch *f, const struct artifact *ar,
                       const char *dest, char *err, size_t errlen)
{
    const char *mode = ar->mode && *ar->mode ? ar->mode : "any";
    const char *type = f->u.type;
    bool single = *type && artifact_archive_single_file(type);
    if (jobspec_path_escapes_alloc(dest)) {
        snprintf(err, errlen,
                 "artifact destination path escapes alloc "
                 "directory");
        return -EINVAL;
    }
    char *base = xasprintf("%s/%s", f->t->name, dest);
    if (strcmp(mode, "file") == 0) {
        f->rel = base;
        f->as_file = true;
        return 0;
    }
    if (strcmp(mode, "dir") == 0 && (!*type || single)) {
        snprintf(err, errlen,
                 "mode \"dir\" needs a tar or zip archive; "
                 "\"%s\" is not one",
                 f->u.path);
        free(base);
        return -EINVAL;
    }
    if (*type && !single) {
        f->rel = base; /* unpacked into the directory */
        return 0;
    }
    char *name = file_name(f->u.path, type);
    if (!name) {
        snprintf(err, errlen,
                 "cannot tell a file name from \"%s\"; use mode "
                 "\"file\" and a destination",
                 f->src);
        free(base);
        return -EINVAL;
    }
    f->rel = xasprintf("%s/%s", base, name);
    f->as_file = true;
    free(name);
    free(base);
    return 0;
}

/* Interpolates artifact f->i and starts its download. */
static void fetch_next(struct fetch *f)
{
    struct alloc_task *t = f->t;
    struct alloc *a = t->alloc;
    const struct task *spec = alloc_task_spec(t);
    if (!spec || f->i >= spec->nartifacts || !nc_streq(t->state, "pending") ||
        a->stopping || a->lc_killing) {
        fetch_end(f, NULL);
        return;
    }
    const struct artifact *ar = &spec->artifacts[f->i];
    const struct node *node = a->mgr->c.node;
    char *task_dir = alloc_task_dir_path(a->mgr, a, t->name);
    struct kvlist env = {0};
    alloc_task_env(a, spec, node, f->alloc_dir, task_dir, false, &env);
    free(task_dir);
    f->src = alloc_interpolate(ar->source ? ar->source : "", &env, node);
    struct kvlist opts = {0};
    for (size_t i = 0; i < ar->options.n; i++) {
        char *v = alloc_interpolate(ar->options.items[i].value, &env, node);
        kv_set(&opts, ar->options.items[i].key, v);
        free(v);
    }
    char err[1024] = "";
    for (size_t i = 0; i < ar->headers.n; i++) {
        const char *k = ar->headers.items[i].key;
        char *v = alloc_interpolate(ar->headers.items[i].value, &env, node);
        if (!*k || k[strcspn(k, ":\r\n \t")] || v[strcspn(v, "\r\n")])
            snprintf(err, sizeof(err),
                     "invalid header \"%s\": names cannot "
                     "hold ':' or spaces, nor values line breaks",
                     k);
        char *line = xasprintf("%s: %s", ar->headers.items[i].key, v);
        strlist_add(&f->headers, line);
        free(line);
        free(v);
    }
    char *dest = alloc_interpolate(
        ar->destination && *ar->destination ? ar->destination : "local/", &env,
        node);
    kv_free(&env);
    int r = *err ? -EINVAL : 0;
    if (r == 0 && !artifact_source_supported(f->src, err, sizeof(err)))
        r = -EINVAL;
    if (r == 0)
        r = artifact_url(f->src, &opts, &f->u, err, sizeof(err));
    if (r == 0)
        r = fetch_place(f, ar, dest, err, sizeof(err));
    kv_free(&opts);
    free(dest);
    if (ar->chown && spec->user && *spec->user)
        f->chown_user = xstrdup(spec->user);
    if (r < 0) {
        fetch_end(f, err);
        return;
    }
    download(f, f->u.url);
}

bool alloc_task_fetch_artifacts(struct alloc_task *t, bool wait_net)
{
    const struct task *spec = alloc_task_spec(t);
    if (!spec || !spec->nartifacts || t->artifacts_done)
        return false;
    if (t->artifacts_fetch)
        return true; /* under way */
    struct alloc *a = t->alloc;
    struct alloc_manager *m = a->mgr;
    alloc_task_event(t, "Downloading Artifacts",
                     "Client is downloading artifacts");
    struct fetch *f = xcalloc(1, sizeof(*f));
    f->t = t;
    f->m = m;
    f->wait_net = wait_net;
    f->alloc_dir = alloc_dir_path(m, a);
    f->next = m->artifact_fetches;
    m->artifact_fetches = f;
    t->artifacts_fetch = f;
    struct nc_error err = {0};
    if (!m->artifact_curl &&
        curl_uv_open(&m->artifact_curl, m->c.loop, &err) < 0) {
        fetch_end(f, err.msg);
        return true;
    }
    alloc_save(a);
    fetch_next(f);
    return true;
}

void alloc_artifacts_forget(struct alloc_manager *m)
{
    struct fetch **pp = (struct fetch **)&m->artifact_fetches;
    while (*pp) {
        struct fetch *f = *pp;
        if (f->t)
            f->t->artifacts_fetch = NULL;
        f->t = NULL;
        if (f->xfer) { /* curl_uv_close drops it without a callback */
            *pp = f->next;
            fetch_free(f);
            continue;
        }
        pp = &f->next;
    }
    if (m->artifact_curl)
        curl_uv_close(m->artifact_curl, NULL, NULL);
    m->artifact_curl = NULL;
}
