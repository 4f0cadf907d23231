/* docker_image.c - the images of docker tasks and pause containers, as
 * Nomad's coordinator (drivers/docker/coordinator.go) handles them: an
 * image with a tag other than "latest" is inspected first and used when
 * present; else it is loaded from the task dir (`load`) or pulled, one
 * pull per image for every task that asks meanwhile, with the registry
 * credentials looked up on the thread pool (a file, maybe a helper
 * process), pull_activity_timeout as the longest silence and
 * image_pull_timeout as the whole. A failed pull of an image present
 * locally goes on with it and a warning event (Nomad fails there:
 * nomad#2379, #11176). Images are counted by id across their users and
 * removed image_delay after the last one is gone, with gc.image; the
 * counts live in memory only (a restarted agent counts again from the
 * tasks it re-attaches). */
#include "client/drivers/driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/drivers/docker_api.h"
#include "client/drivers/docker_config.h"
#include "client/drivers/internal.h"

#define dk docker_driver_state

/* Nomad's report of a slow pull, as an event (coordinator.go) */
#define SLOW_PULL_REPORT_MS (2 * 60 * 1000)

enum step { INSPECT, LOAD, AUTH, PULL, INSPECT_AFTER, INSPECT_LOCAL, DONE };

struct pull;

struct docker_image_req {
    struct docker_image_req *next_waiter; /* on its pull */
    int step;
    char *image, *owner, *repo, *tag, *load_path;
    bool force_pull;
    int64_t pull_timeout_ns;
    struct task *spec; /* a copy of what the auth lookup reads, or NULL */
    void (*event)(void *arg, const char *type, const char *msg);
    docker_image_done_fn done;
    void *arg;
    struct docker_call *call;
    struct pull *pull;
    struct docker_progress progress; /* of a load */
    uv_work_t auth_work;
    bool auth_running, cancelled;
    int auth_result;
    struct docker_auth auth;
    struct nc_error auth_err;
    char *pull_error;  /* "Failed to pull `x`: why", for the local fallback */
    uv_timer_t *later; /* a failure known at once, reported from the loop */
    char *later_error;
};

/* One pull of an image and who waits for it. */
struct pull {
    struct pull *next;
    char *image; /* as asked, with its tag */
    struct docker_call *call;
    struct docker_progress progress;
    struct docker_image_req *waiters;
    uv_timer_t *report; /* slow pull progress */
    char *status;       /* the last progress line */
};

/* An image in use, by id. */
struct image_entry {
    struct image_entry *next;
    char *id;
    struct strlist owners;
    uv_timer_t *remove_timer;
    struct docker_call *remove_call;
};

struct images {
    struct image_entry *entries;
    struct pull *pulls;
};

static struct images *images(void)
{
    if (!dk.images)
        dk.images = xcalloc(1, sizeof(struct images));
    return dk.images;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void timer_close(uv_timer_t **t)
{
    if (*t) {
        uv_close((uv_handle_t *)*t, on_timer_closed);
        *t = NULL;
    }
}

static uv_timer_t *timer_new(void *data)
{
    uv_timer_t *t = xcalloc(1, sizeof(*t));
    uv_timer_init(dk.loop, t);
    t->data = data;
    return t;
}

/* ---- references ------------------------------------------------------- */

static struct image_entry *entry_find(const char *id, bool make)
{
    struct images *im = images();
    for (struct image_entry *e = im->entries; e; e = e->next)
        if (strcmp(e->id, id) == 0)
            return e;
    if (!make)
        return NULL;
    struct image_entry *e = xcalloc(1, sizeof(*e));
    e->id = xstrdup(id);
    e->next = im->entries;
    im->entries = e;
    return e;
}

static void entry_free(struct image_entry *e)
{
    struct images *im = images();
    for (struct image_entry **p = &im->entries; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    timer_close(&e->remove_timer);
    if (e->remove_call)
        docker_call_cancel(dk.api, e->remove_call);
    free(e->id);
    strlist_free(&e->owners);
    free(e);
}

void docker_image_hold(const char *image_id, const char *owner)
{
    if (!image_id || !*image_id || !owner)
        return;
    struct image_entry *e = entry_find(image_id, true);
    if (e->remove_timer) {
        LOG_DEBUG("docker", "image %s in use again: not removed", image_id);
        timer_close(&e->remove_timer);
    }
    if (!strlist_contains(&e->owners, owner))
        strlist_add(&e->owners, owner);
}

size_t docker_image_refs(const char *image_id)
{
    struct image_entry *e = image_id ? entry_find(image_id, false) : NULL;
    return e ? e->owners.n : 0;
}

static void on_image_removed(void *arg, const struct docker_reply *r)
{
    struct image_entry *e = arg;
    e->remove_call = NULL;
    if (!r->error || r->status == 404)
        LOG_INFO("docker", "removed image %s, unused for the gc image_delay",
                 e->id);
    else if (r->status == 409) /* a container outside Nomad uses it */
        LOG_DEBUG("docker", "image %s still in use: %s", e->id, r->error);
    else
        LOG_WARN("docker", "failed to remove image %s: %s", e->id, r->error);
    if (!e->owners.n)
        entry_free(e);
}

static void on_remove_timer(uv_timer_t *t)
{
    struct image_entry *e = t->data;
    timer_close(&e->remove_timer);
    struct nc_error err = {0};
    struct docker_api *api = docker_api_get(&err);
    char *path = xasprintf("/images/%s?force=true", e->id);
    struct docker_call_opts o = {
        .method = "DELETE", .path = path, .timeout_ms = DOCKER_CALL_TIMEOUT_MS};
    if (!api ||
        docker_call(api, &o, on_image_removed, e, &e->remove_call) < 0) {
        LOG_WARN("docker", "failed to remove image %s: %s", e->id,
                 err.msg[0] ? err.msg : "cannot call the daemon");
        entry_free(e);
    }
    free(path);
}

void docker_image_release(const char *image_id, const char *owner)
{
    struct image_entry *e =
        image_id && owner ? entry_find(image_id, false) : NULL;
    if (!e)
        return;
    for (size_t i = 0; i < e->owners.n; i++)
        if (strcmp(e->owners.items[i], owner) == 0) {
            free(e->owners.items[i]);
            e->owners.items[i] = e->owners.items[--e->owners.n];
            break;
        }
    if (e->owners.n || e->remove_call)
        return;
    if (!dk.set.gc_image || dk.closing || !dk.loop) {
        entry_free(e);
        return;
    }
    uint64_t ms = dk.set.image_delay_ns > 0
                      ? (uint64_t)(dk.set.image_delay_ns / 1000000)
                      : 0;
    e->remove_timer = timer_new(e);
    uv_timer_start(e->remove_timer, on_remove_timer, ms, 0);
}

/* ---- one request ------------------------------------------------------- */

static void req_free(struct docker_image_req *r)
{
    if (r->auth_running) { /* freed once the lookup is back */
        r->cancelled = true;
        return;
    }
    free(r->image);
    free(r->owner);
    free(r->repo);
    free(r->tag);
    free(r->load_path);
    free(r->pull_error);
    free(r->later_error);
    timer_close(&r->later);
    docker_progress_free(&r->progress);
    free(r->progress.error);
    docker_auth_free(&r->auth);
    if (r->spec) {
        free(r->spec->name);
        json_decref(r->spec->config);
        free(r->spec);
    }
    free(r);
}

static void req_finish(struct docker_image_req *r, const char *id,
                       const char *error)
{
    r->step = DONE;
    if (id)
        docker_image_hold(id, r->owner);
    docker_image_done_fn done = r->done;
    void *arg = r->arg;
    char *copy_id = xstrdup(id), *copy_err = xstrdup(error);
    req_free(r);
    done(arg, copy_id, copy_err);
    free(copy_id);
    free(copy_err);
}

static void on_later(uv_timer_t *t)
{
    struct docker_image_req *r = t->data;
    timer_close(&r->later);
    char *e = r->later_error;
    r->later_error = NULL;
    req_finish(r, NULL, e);
    free(e);
}

/* A failure found before any answer: reported from the loop, as done must
 * never run from within docker_image_get. */
static void req_fail_later(struct docker_image_req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void req_fail_later(struct docker_image_req *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct nc_buf b = {0};
    nc_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    free(r->later_error);
    r->later_error = nc_buf_take(&b);
    r->later = timer_new(r);
    uv_timer_start(r->later, on_later, 0, 0);
}

static int req_call(struct docker_image_req *r,
                    const struct docker_call_opts *o, docker_done_fn fn)
{
    struct nc_error err = {0};
    struct docker_api *api = docker_api_get(&err);
    if (!api || docker_call(api, o, fn, r, &r->call) < 0) {
        req_fail_later(r, "%s",
                       err.msg[0] ? err.msg : "cannot call the Docker daemon");
        return -EIO;
    }
    return 0;
}

static void req_next(struct docker_image_req *r);

static void on_inspected(void *arg, const struct docker_reply *rep)
{
    struct docker_image_req *r = arg;
    r->call = NULL;
    docker_driver_saw(rep);
    const char *id = json_string_value(json_object_get(rep->json, "Id"));
    if (!rep->error && id) {
        if (r->step == INSPECT_LOCAL && r->event) {
            char *msg = xasprintf("%s; using the local image", r->pull_error);
            r->event(r->arg, "Driver", msg);
            free(msg);
            LOG_WARN("docker", "%s; using the local image", r->pull_error);
        }
        req_finish(r, id, NULL);
        return;
    }
    if (r->step == INSPECT && rep->status == 404) {
        r->step = r->load_path ? LOAD : AUTH;
        req_next(r);
        return;
    }
    if (r->step == INSPECT_LOCAL) {
        char *e = xstrdup(r->pull_error);
        req_finish(r, NULL, e);
        free(e);
        return;
    }
    char *e = xasprintf("Failed to inspect image %s: %s", r->image,
                        rep->error ? rep->error : "no image id in the answer");
    req_finish(r, NULL, e);
    free(e);
}

static void inspect(struct docker_image_req *r, int step)
{
    r->step = step;
    char *path = xasprintf("/images/%s/json", r->image);
    struct docker_call_opts o = {.path = path,
                                 .timeout_ms = DOCKER_CALL_TIMEOUT_MS};
    req_call(r, &o, on_inspected);
    free(path);
}

/* ---- load --------------------------------------------------------------- */

static void on_progress_line(void *arg, const json_t *obj) {}

static void on_load_data(void *arg, const char *data, size_t len)
{
    struct docker_image_req *r = arg;
    docker_progress_feed(&r->progress, data, len, on_progress_line, r);
}

static void on_loaded(void *arg, const struct docker_reply *rep)
{
    struct docker_image_req *r = arg;
    r->call = NULL;
    docker_progress_feed(&r->progress, NULL, 0, on_progress_line, r);
    const char *why = rep->error ? rep->error : r->progress.error;
    if (why) {
        char *e = xasprintf("unable to load image %s from %s: %s", r->image,
                            r->load_path, why);
        req_finish(r, NULL, e);
        free(e);
        return;
    }
    inspect(r, INSPECT_AFTER);
}

static void load(struct docker_image_req *r)
{
    struct docker_call_opts o = {
        .method = "POST",
        .path = "/images/load?quiet=1",
        .body_file = r->load_path,
        .timeout_ms =
            r->pull_timeout_ns > 0 ? (long)(r->pull_timeout_ns / 1000000) : 0,
        .on_data = on_load_data,
        .data_arg = r};
    struct nc_error err = {0};
    struct docker_api *api = docker_api_get(&err);
    int rc = api ? docker_call(api, &o, on_loaded, r, &r->call) : -EIO;
    if (rc < 0)
        req_fail_later(r, "unable to open image archive %s: %s", r->load_path,
                       api ? strerror(-rc) : err.msg);
}

/* ---- pull -------------------------------------------------------------- */

static struct pull *pull_find(const char *image)
{
    for (struct pull *p = images()->pulls; p; p = p->next)
        if (strcmp(p->image, image) == 0)
            return p;
    return NULL;
}

static void pull_free(struct pull *p)
{
    for (struct pull **pp = &images()->pulls; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    if (p->call)
        docker_call_cancel(dk.api, p->call);
    timer_close(&p->report);
    docker_progress_free(&p->progress);
    free(p->progress.error);
    free(p->image);
    free(p->status);
    free(p);
}

static void on_pull_line(void *arg, const json_t *obj)
{
    struct pull *p = arg;
    const char *status = json_string_value(json_object_get(obj, "status"));
    const char *id = json_string_value(json_object_get(obj, "id"));
    const char *prog = json_string_value(json_object_get(obj, "progress"));
    if (!status)
        return;
    free(p->status);
    p->status = xasprintf("%s%s%s%s%s", id ? id : "", id ? ": " : "", status,
                          prog ? " " : "", prog ? prog : "");
}

static void on_pull_data(void *arg, const char *data, size_t len)
{
    struct pull *p = arg;
    docker_progress_feed(&p->progress, data, len, on_pull_line, p);
}

static void on_pull_report(uv_timer_t *t)
{
    struct pull *p = t->data;
    char *msg = xasprintf("Docker image pull progress: %s",
                          p->status ? p->status : "No progress");
    for (struct docker_image_req *w = p->waiters; w; w = w->next_waiter)
        if (w->event)
            w->event(w->arg, "Driver", msg);
    free(msg);
}

static void on_pulled(void *arg, const struct docker_reply *rep)
{
    struct pull *p = arg;
    p->call = NULL;
    docker_progress_feed(&p->progress, NULL, 0, on_pull_line, p);
    const char *why = rep->error ? rep->error : p->progress.error;
    char *failure =
        why ? xasprintf("Failed to pull `%s`: %s", p->image, why) : NULL;
    if (failure)
        LOG_WARN("docker", "%s", failure);
    else
        LOG_INFO("docker", "pulled image %s", p->image);
    struct docker_image_req *w = p->waiters;
    p->waiters = NULL;
    pull_free(p);
    while (w) {
        struct docker_image_req *next = w->next_waiter;
        w->next_waiter = NULL;
        w->pull = NULL;
        free(w->pull_error);
        w->pull_error = xstrdup(failure);
        inspect(w, failure ? INSPECT_LOCAL : INSPECT_AFTER);
        w = next;
    }
    free(failure);
}

static void pull_join(struct docker_image_req *r)
{
    r->step = PULL;
    if (r->event)
        r->event(r->arg, "Driver", "Downloading image");
    struct pull *p = pull_find(r->image);
    if (p) {
        r->next_waiter = p->waiters;
        p->waiters = r;
        r->pull = p;
        return;
    }
    p = xcalloc(1, sizeof(*p));
    p->image = xstrdup(r->image);
    char *repo = docker_query_escape(r->repo);
    char *tag = docker_query_escape(r->tag ? r->tag : "latest");
    char *path = xasprintf("/images/create?fromImage=%s&tag=%s", repo, tag);
    free(repo);
    free(tag);
    char *auth = r->auth_result > 0 ? docker_auth_header(&r->auth) : NULL;
    char *hdr = auth ? xasprintf("X-Registry-Auth: %s", auth) : NULL;
    const char *headers[] = {hdr, NULL};
    struct docker_call_opts o = {
        .method = "POST",
        .path = path,
        .headers = hdr ? headers : NULL,
        .timeout_ms =
            r->pull_timeout_ns > 0 ? (long)(r->pull_timeout_ns / 1000000) : 0,
        .idle_timeout_ms =
            dk.set.pull_activity_timeout_ns > 0
                ? (long)(dk.set.pull_activity_timeout_ns / 1000000)
                : 0,
        .on_data = on_pull_data,
        .data_arg = p,
    };
    struct nc_error err = {0};
    struct docker_api *api = docker_api_get(&err);
    int rc = api ? docker_call(api, &o, on_pulled, p, &p->call) : -EIO;
    free(path);
    free(auth);
    free(hdr);
    if (rc < 0) {
        free(p->image);
        free(p);
        req_fail_later(r, "Failed to pull `%s`: %s", r->image,
                       err.msg[0] ? err.msg : strerror(-rc));
        return;
    }
    p->next = images()->pulls;
    images()->pulls = p;
    p->waiters = r;
    r->pull = p;
    p->report = timer_new(p);
    uv_timer_start(p->report, on_pull_report, SLOW_PULL_REPORT_MS,
                   SLOW_PULL_REPORT_MS);
}

/* ---- credentials, on the thread pool ---------------------------------- */

static void auth_work(uv_work_t *w)
{
    struct docker_image_req *r = w->data;
    r->auth_result =
        docker_auth_lookup(dk.cfg, r->spec, r->repo, &r->auth, &r->auth_err);
}

static void auth_done(uv_work_t *w, int status)
{
    struct docker_image_req *r = w->data;
    r->auth_running = false;
    if (r->cancelled || dk.closing) {
        req_free(r);
        return;
    }
    bool soft = r->spec && docker_task_bool(r->spec, "auth_soft_fail");
    if (r->auth_result < 0 && !soft) {
        char *e = xasprintf("Failed to find docker auth for repo \"%s\": %s",
                            r->repo, r->auth_err.msg);
        req_finish(r, NULL, e);
        free(e);
        return;
    }
    if (r->auth_result < 0)
        LOG_WARN("docker", "Failed to find docker repo auth for %s: %s",
                 r->repo, r->auth_err.msg);
    pull_join(r);
}

static void auth_start(struct docker_image_req *r)
{
    r->step = AUTH;
    r->auth_work.data = r;
    if (uv_queue_work(dk.loop, &r->auth_work, auth_work, auth_done) < 0) {
        pull_join(r); /* no thread pool: no credentials */
        return;
    }
    r->auth_running = true;
}

static void req_next(struct docker_image_req *r)
{
    switch (r->step) {
    case INSPECT:
    case INSPECT_AFTER:
    case INSPECT_LOCAL:
        inspect(r, r->step);
        break;
    case LOAD:
        load(r);
        break;
    case AUTH:
        auth_start(r);
        break;
    default:
        break;
    }
}

int docker_image_get(const struct docker_image_opts *o,
                     docker_image_done_fn done, void *arg,
                     struct docker_image_req **out, struct nc_error *err)
{
    *out = NULL;
    char *repo = NULL, *tag = NULL, *digest = NULL;
    if (!o->image || !*o->image)
        return nc_error_set(err, -EINVAL,
                            "image name required for docker driver");
    if (docker_parse_image(o->image, &repo, &tag, &digest, err) < 0)
        return err->code ? err->code : -EINVAL;
    if (!dk.loop)
        return nc_error_set(err, -EINVAL, "the docker driver is not set up");
    struct docker_image_req *r = xcalloc(1, sizeof(*r));
    r->image = docker_image_with_tag(o->image);
    r->owner = xstrdup(o->owner);
    r->repo = repo;
    r->tag = digest ? xstrdup(digest) : tag ? xstrdup(tag) : xstrdup("latest");
    bool latest = !digest && nc_streq(tag, "latest");
    free(tag);
    free(digest);
    r->force_pull = o->force_pull;
    r->load_path = xstrdup(o->load_path);
    r->pull_timeout_ns = o->pull_timeout_ns;
    r->event = o->event;
    r->done = done;
    r->arg = arg;
    if (o->spec) {
        r->spec = xcalloc(1, sizeof(*r->spec));
        r->spec->name = xstrdup(o->spec->name);
        r->spec->driver = NULL;
        r->spec->config = json_deep_copy(o->spec->config);
    }
    /* Nomad inspects first unless the tag is "latest" or force_pull */
    r->step = o->force_pull || latest ? (r->load_path ? LOAD : AUTH) : INSPECT;
    req_next(r);
    *out = r;
    return 0;
}

void docker_image_cancel(struct docker_image_req *r)
{
    if (!r)
        return;
    if (r->pull) {
        struct pull *p = r->pull;
        for (struct docker_image_req **w = &p->waiters; *w;
             w = &(*w)->next_waiter)
            if (*w == r) {
                *w = r->next_waiter;
                break;
            }
        if (!p->waiters)
            pull_free(p); /* nobody wants it any more */
        r->pull = NULL;
    }
    if (r->call)
        docker_call_cancel(dk.api, r->call);
    r->call = NULL;
    req_free(r);
}

void docker_images_close(void)
{
    struct images *im = dk.images;
    if (!im)
        return;
    while (im->pulls) {
        struct pull *p = im->pulls;
        while (p->waiters) {
            struct docker_image_req *w = p->waiters;
            p->waiters = w->next_waiter;
            w->pull = NULL;
        }
        pull_free(p);
    }
    while (im->entries)
        entry_free(im->entries);
    free(im);
    dk.images = NULL;
}
