/* gc.c - client garbage collection of terminal allocations, after Nomad's
 * client/gc.go: the selection (which allocations, in which order, given
 * the count and the data_dir's usage), the passes (gc_interval timer, an
 * allocation's end, a new allocation, the API), and the destroys on the
 * thread pool, at most gc_parallel_destroys at once. */
#include "client/alloc/internal.h"

#include <errno.h>
#include <ftw.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "volumes/volumes.h"

/* A pass after an allocation ends waits this long, so a burst of endings
 * (a batch job of 60) costs one pass. */
#define GC_CHANGE_DELAY_MS 100

/* What a collected allocation was placed for (job, group, index,
 * version): not made again while the job keeps that version. */
struct gc_placed {
    char *job_id, *group;
    int index;
    uint64_t version;
};

struct alloc_gc {
    struct alloc_manager *m; /* NULL once stopped */
    struct alloc_gc_limits lim;
    uv_timer_t timer;        /* gc_interval */
    uv_timer_t soon;         /* a pass after changes, coalesced */
    int open_handles;
    struct alloc **queue;    /* FIFO of ALLOC_GC_QUEUED allocations */
    size_t nqueued, qcap;
    int running;             /* destroys on the thread pool */
    bool measure_again;      /* over a usage threshold: a pass after these */
    char last_reason[160];   /* logged once until it changes */
    struct gc_placed *placed;
    size_t nplaced, pcap;
    char *placed_path;       /* data_dir/client/gc.json */
    /* the placed list as JSON, rewritten by the destroys: the newest
     * generation wins, whatever order the threads finish in */
    pthread_mutex_t write_lock;
    uint64_t generation, written_generation;
    bool placed_dirty; /* changed since the last destroy took a copy */
};

struct gc_destroy {
    uv_work_t work;
    struct alloc_gc *gc;
    struct alloc *a; /* taken out of the manager */
    char *dir, *state_file, *net_record;
    char *placed_txt; /* the placed list to write first, or NULL */
    uint64_t generation;
    int64_t started_ns;
    char error[512];
};

/* ---- selection ---------------------------------------------------------- */

static bool is_terminal(const struct alloc *a)
{
    return nc_streq(a->client_status, "complete") ||
           nc_streq(a->client_status, "failed") ||
           nc_streq(a->client_status, "lost");
}

/* Terminal and quiet; its last save may still be on its way (the
 * destroy waits for it: else the write could bring the state file back). */
bool alloc_gc_eligible(const struct alloc *a)
{
    if (!is_terminal(a) || a->stop_timer || a->reschedule_timer ||
        a->net_busy || a->net_queued)
        return false;
    /* bridge and CNI: only once the namespace is gone */
    if (a->net_phase && *a->net_phase && !nc_streq(a->net_phase, "down"))
        return false;
    for (size_t i = 0; i < a->ntasks; i++) {
        const struct alloc_task *t = &a->tasks[i];
        if (!nc_streq(t->state, "dead") || alloc_task_active(t) || t->timer ||
            t->net_waiting)
            return false;
    }
    return true;
}

int64_t alloc_gc_ended(const struct alloc *a)
{
    int64_t end = 0;
    for (size_t i = 0; i < a->ntasks; i++)
        if (a->tasks[i].finished_at > end)
            end = a->tasks[i].finished_at;
    return end ? end : a->modify_time;
}

static int by_end(const void *x, const void *y)
{
    const struct alloc *a = *(struct alloc *const *)x,
                       *b = *(struct alloc *const *)y;
    int64_t ea = alloc_gc_ended(a), eb = alloc_gc_ended(b);
    if (ea != eb)
        return ea < eb ? -1 : 1;
    if (a->create_index != b->create_index)
        return a->create_index < b->create_index ? -1 : 1;
    return strcmp(a->id, b->id);
}

size_t alloc_gc_select(struct alloc *const *allocs, size_t n,
                       const struct alloc_gc_limits *lim,
                       const struct alloc_gc_usage *u, size_t incoming,
                       size_t in_flight, struct alloc **out, char *reason,
                       size_t reasonlen)
{
    size_t live = 0, ncand = 0;
    reason[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (allocs[i]->gc_state)
            continue;
        live++;
        if (alloc_gc_eligible(allocs[i]))
            out[ncand++] = allocs[i];
    }
    size_t want = 0, slots = (size_t)lim->parallel > in_flight
                                 ? (size_t)lim->parallel - in_flight
                                 : 0;
    size_t max = lim->max_allocs > 0 ? (size_t)lim->max_allocs : 0;
    /* Nomad's order of reasons: disk, inodes, count */
    if (incoming == 0 && u->known && u->disk_pct > lim->disk_pct) {
        snprintf(reason, reasonlen,
                 "disk usage of %.0f is over gc threshold of %.0f",
                 u->disk_pct, lim->disk_pct);
        want = slots;
    } else if (incoming == 0 && u->known && u->inode_pct > lim->inode_pct) {
        snprintf(reason, reasonlen,
                 "inode usage of %.0f is over gc threshold of %.0f",
                 u->inode_pct, lim->inode_pct);
        want = slots;
    }
    if (live + incoming > max) {
        if (!reason[0] && incoming)
            snprintf(reason, reasonlen, "new allocations and over max (%d)",
                     lim->max_allocs);
        else if (!reason[0])
            snprintf(reason, reasonlen,
                     "number of allocations (%zu) is over the limit (%d)",
                     live, lim->max_allocs);
        if (live + incoming - max > want)
            want = live + incoming - max;
    }
    if (!reason[0] || ncand == 0)
        return 0;
    qsort(out, ncand, sizeof(*out), by_end);
    return want < ncand ? want : ncand;
}

/* ---- what was placed ---------------------------------------------------- */

bool alloc_gc_placed(const struct alloc_manager *m, const char *job_id,
                     const char *group, int index, uint64_t version)
{
    const struct alloc_gc *gc = m->gc;
    for (size_t i = 0; gc && i < gc->nplaced; i++) {
        const struct gc_placed *p = &gc->placed[i];
        if (p->index == index && p->version == version &&
            strcmp(p->job_id, job_id) == 0 && strcmp(p->group, group) == 0)
            return true;
    }
    return false;
}

static char *placed_json(const struct alloc_gc *gc)
{
    json_t *list = json_array();
    for (size_t i = 0; i < gc->nplaced; i++)
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:i, s:I}", "JobID",
                            gc->placed[i].job_id, "Group", gc->placed[i].group,
                            "Index", gc->placed[i].index, "Version",
                            (json_int_t)gc->placed[i].version));
    json_t *doc = json_pack("{s:o}", "Placed", list);
    char *txt = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return txt;
}

static void placed_add(struct alloc_gc *gc, const char *job_id,
                       const char *group, int index, uint64_t version)
{
    nc_grow((void **)&gc->placed, &gc->pcap, gc->nplaced + 1,
            sizeof(*gc->placed));
    gc->placed[gc->nplaced++] = (struct gc_placed){
        xstrdup(job_id), xstrdup(group), index, version};
    gc->placed_dirty = true;
}

static void placed_free(struct gc_placed *p)
{
    free(p->job_id);
    free(p->group);
}

void alloc_gc_forget_job(struct alloc_manager *m, const char *job_id,
                         uint64_t keep_version)
{
    struct alloc_gc *gc = m->gc;
    size_t kept = 0, n = gc ? gc->nplaced : 0;
    for (size_t i = 0; i < n; i++) {
        struct gc_placed *p = &gc->placed[i];
        if (strcmp(p->job_id, job_id) == 0 && p->version != keep_version)
            placed_free(p);
        else
            gc->placed[kept++] = *p;
    }
    if (gc && kept != n) {
        gc->nplaced = kept; /* written with the next destroy */
        gc->placed_dirty = true;
    }
}

static void placed_load(struct alloc_gc *gc)
{
    size_t len;
    char *txt = nc_read_file(gc->placed_path, &len, 0);
    if (!txt)
        return;
    json_error_t jerr;
    json_t *doc = json_loadb(txt, len, 0, &jerr);
    json_t *list = json_object_get(doc, "Placed"), *e;
    size_t i;
    if (!json_is_array(list))
        LOG_ERROR("gc", "%s: not what the collector writes; ignored",
                  gc->placed_path);
    json_array_foreach(list, i, e)
    {
        const char *job = json_string_value(json_object_get(e, "JobID"));
        const char *group = json_string_value(json_object_get(e, "Group"));
        json_t *idx = json_object_get(e, "Index"),
               *ver = json_object_get(e, "Version");
        if (job && group && json_is_integer(idx) && json_is_integer(ver))
            placed_add(gc, job, group, (int)json_integer_value(idx),
                       (uint64_t)json_integer_value(ver));
    }
    json_decref(doc);
    free(txt);
    gc->placed_dirty = false; /* as on disk */
}

/* ---- destroys ----------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int r = flag == FTW_DP ? rmdir(path) : unlink(path);
    return r < 0 && errno != ENOENT ? -errno : 0;
}

/* rm -rf that neither follows symlinks (a task may plant them) nor
 * crosses into a filesystem still mounted below (FTW_MOUNT). */
static int remove_tree(const char *dir)
{
    int r = nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    if (r < 0 && errno == ENOENT)
        return 0;
    return r > 0 ? -EIO : r < 0 ? -errno : 0;
}

static void destroy_work(uv_work_t *w)
{
    struct gc_destroy *d = w->data;
    struct alloc_gc *gc = d->gc;
    if (d->placed_txt) {
        /* durable before the state file goes: a restarted agent must not
         * make the allocation again */
        pthread_mutex_lock(&gc->write_lock);
        if (d->generation > gc->written_generation) {
            int r = nc_write_file_atomic(gc->placed_path, d->placed_txt,
                                         strlen(d->placed_txt), 0600);
            if (r < 0)
                snprintf(d->error, sizeof(d->error), "write %s: %s",
                         gc->placed_path, strerror(-r));
            else
                gc->written_generation = d->generation;
        }
        pthread_mutex_unlock(&gc->write_lock);
        if (d->error[0])
            return;
    }
    /* task mounts live in the tasks' mount namespaces; one seen here is a
     * leftover, lazily detached before the tree goes */
    size_t unmounted = 0;
    char err[256] = "";
    if (vol_unmount_under(d->dir, &unmounted, err, sizeof(err)) < 0) {
        snprintf(d->error, sizeof(d->error), "unmount under %s: %s", d->dir,
                 err);
        return;
    }
    int r = remove_tree(d->dir);
    if (r < 0) {
        snprintf(d->error, sizeof(d->error), "remove %s: %s", d->dir,
                 strerror(-r));
        return;
    }
    if (unlink(d->net_record) < 0 && errno != ENOENT)
        snprintf(d->error, sizeof(d->error), "remove %s: %s", d->net_record,
                 strerror(errno));
    /* last: until then a restarted agent knows the allocation and
     * collects it again */
    else if (unlink(d->state_file) < 0 && errno != ENOENT)
        snprintf(d->error, sizeof(d->error), "remove %s: %s", d->state_file,
                 strerror(errno));
}

static void gc_pump(struct alloc_gc *gc);
static void gc_pass(struct alloc_gc *gc, size_t incoming);
static void gc_free_if_done(struct alloc_gc *gc);

static void destroy_done(uv_work_t *w, int status)
{
    struct gc_destroy *d = w->data;
    struct alloc_gc *gc = d->gc;
    gc->running--;
    if (d->error[0] || status < 0)
        LOG_ERROR("gc", "allocation %s: destroy failed: %s", d->a->id,
                  d->error[0] ? d->error : uv_strerror(status));
    else
        LOG_DEBUG("gc", "allocation %s garbage collected in %lld us",
                  d->a->id,
                  (long long)(nc_now_mono_ns() - (uint64_t)d->started_ns) /
                      1000);
    alloc_free(d->a);
    free(d->dir);
    free(d->state_file);
    free(d->net_record);
    free(d->placed_txt);
    free(d);
    if (!gc->m) {
        gc_free_if_done(gc);
        return;
    }
    gc_pump(gc);
    if (gc->running == 0 && gc->nqueued == 0) {
        /* a burst of destroys is over: give the freed allocations' memory
         * back to the system (glibc keeps it otherwise: ~1 MB after 50) */
        malloc_trim(0);
        if (gc->measure_again) {
            gc->measure_again = false;
            gc_pass(gc, 0);
        }
    }
}

/* Starts the destroy of a queued allocation. */
static void destroy_start(struct alloc_gc *gc, struct alloc *a)
{
    struct alloc_manager *m = gc->m;
    a->gc_state = ALLOC_GC_DESTROYING;
    struct gc_destroy *d = xcalloc(1, sizeof(*d));
    d->work.data = d;
    d->gc = gc;
    d->a = a;
    d->dir = alloc_dir_path(m, a);
    d->state_file = xasprintf("%s/%s.json", m->state_dir, a->id);
    d->net_record = xasprintf("%s/%s.json", m->netns_dir, a->id);
    d->started_ns = (int64_t)nc_now_mono_ns();
    if (nc_streq(a->desired_status, "run") &&
        !alloc_gc_placed(m, a->job_id, a->group, a->index, a->job_version))
        placed_add(gc, a->job_id, a->group, a->index, a->job_version);
    if (gc->placed_dirty) {
        d->placed_txt = placed_json(gc);
        d->generation = ++gc->generation;
        gc->placed_dirty = false;
    }
    alloc_manager_remove(m, a);
    if (m->c.on_change)
        m->c.on_change(a, m->c.arg); /* gone: the registries, followers */
    gc->running++;
    if (uv_queue_work(m->c.loop, &d->work, destroy_work, destroy_done) < 0) {
        destroy_work(&d->work);
        destroy_done(&d->work, 0);
    }
}

static void on_gc_timer(uv_timer_t *t);

/* Starts queued destroys while slots are free, in queue order. One no
 * longer collectable (restarted meanwhile) is given back; one whose last
 * save is still on its way stays queued, tried again shortly. */
static void gc_pump(struct alloc_gc *gc)
{
    size_t kept = 0, i = 0;
    bool waiting = false;
    for (; gc->m && i < gc->nqueued && gc->running < gc->lim.parallel; i++) {
        struct alloc *a = gc->queue[i];
        if (!alloc_gc_eligible(a)) {
            a->gc_state = 0; /* the next pass sees it again */
        } else if (alloc_save_pending(a)) {
            gc->queue[kept++] = a;
            waiting = true;
        } else {
            destroy_start(gc, a);
        }
    }
    if (gc->nqueued > i) /* the queue may be NULL when empty */
        memmove(gc->queue + kept, gc->queue + i,
                (gc->nqueued - i) * sizeof(*gc->queue));
    gc->nqueued = kept + gc->nqueued - i;
    if (waiting && gc->m && !uv_is_active((uv_handle_t *)&gc->soon))
        uv_timer_start(&gc->soon, on_gc_timer, GC_CHANGE_DELAY_MS, 0);
}

static void gc_enqueue(struct alloc_gc *gc, struct alloc *a, const char *why)
{
    LOG_INFO("gc", "garbage collecting allocation %s (%s): %s", a->id,
             a->name, why);
    a->gc_state = ALLOC_GC_QUEUED;
    nc_grow((void **)&gc->queue, &gc->qcap, gc->nqueued + 1,
            sizeof(*gc->queue));
    gc->queue[gc->nqueued++] = a;
}

/* ---- passes ------------------------------------------------------------- */

static void measure(const char *dir, struct alloc_gc_usage *u)
{
    struct statvfs v;
    *u = (struct alloc_gc_usage){0};
    if (statvfs(dir, &v) < 0)
        return;
    /* as gopsutil's disk.Usage, which Nomad's AllocDirStats uses */
    double used = (double)(v.f_blocks - v.f_bfree) * (double)v.f_frsize;
    double avail = (double)v.f_bavail * (double)v.f_frsize;
    u->known = true;
    u->disk_pct = used + avail > 0 ? 100.0 * used / (used + avail) : 0;
    u->inode_pct = v.f_files ? 100.0 * (double)(v.f_files - v.f_ffree) /
                                   (double)v.f_files
                             : 0;
}

static void gc_pass(struct alloc_gc *gc, size_t incoming)
{
    struct alloc_manager *m = gc->m;
    if (!m || m->closing)
        return;
    struct alloc_gc_usage u;
    measure(m->alloc_root, &u);
    struct alloc **pick = xcalloc(m->nallocs + 1, sizeof(*pick));
    char reason[160];
    size_t n = alloc_gc_select(m->allocs, m->nallocs, &gc->lim, &u, incoming,
                               (size_t)gc->running + gc->nqueued, pick,
                               reason, sizeof(reason));
    for (size_t i = 0; i < n; i++)
        gc_enqueue(gc, pick[i], reason);
    free(pick);
    if (reason[0] && n == 0 && strcmp(reason, gc->last_reason) != 0)
        nc_log(nc_str_has_prefix(reason, "disk") ||
                       nc_str_has_prefix(reason, "inode")
                   ? NC_LOG_WARN
                   : NC_LOG_INFO,
               "gc", "garbage collection skipped because no terminal "
                     "allocations: %s", reason);
    snprintf(gc->last_reason, sizeof(gc->last_reason), "%s", reason);
    if (incoming == 0 && n && (nc_str_has_prefix(reason, "disk") ||
                               nc_str_has_prefix(reason, "inode")))
        gc->measure_again = true;
    gc_pump(gc);
}

static void on_gc_timer(uv_timer_t *t) { gc_pass(t->data, 0); }


void alloc_gc_make_room(struct alloc_manager *m, size_t incoming)
{
    if (m->gc && incoming)
        gc_pass(m->gc, incoming);
}

void alloc_gc_changed(struct alloc_manager *m, const struct alloc *a)
{
    struct alloc_gc *gc = m->gc;
    if (!gc || !gc->m || a->gc_state || !is_terminal(a) ||
        uv_is_active((uv_handle_t *)&gc->soon))
        return;
    uv_timer_start(&gc->soon, on_gc_timer, GC_CHANGE_DELAY_MS, 0);
}

size_t alloc_gc_collect_all(struct alloc_manager *m)
{
    struct alloc_gc *gc = m->gc;
    if (!gc)
        return 0;
    struct alloc **pick = xcalloc(m->nallocs + 1, sizeof(*pick));
    size_t n = 0;
    for (size_t i = 0; i < m->nallocs; i++)
        if (!m->allocs[i]->gc_state && alloc_gc_eligible(m->allocs[i]))
            pick[n++] = m->allocs[i];
    qsort(pick, n, sizeof(*pick), by_end);
    for (size_t i = 0; i < n; i++)
        gc_enqueue(gc, pick[i], "forced full node collection");
    free(pick);
    gc_pump(gc);
    return n;
}

int alloc_gc_collect(struct alloc_manager *m, struct alloc *a,
                     struct nc_error *err)
{
    struct alloc_gc *gc = m->gc;
    /* Nomad's words (its client's Allocations.GarbageCollect) for one
     * that is not terminal yet and for one already being collected */
    if (a->gc_state || !gc || !alloc_gc_eligible(a))
        return nc_error_set(err, a->gc_state ? -EALREADY : -EBUSY,
                            "No such allocation on client, or allocation "
                            "not eligible for GC");
    gc_enqueue(gc, a, "forced collection");
    gc_pump(gc);
    return 0;
}

/* ---- life --------------------------------------------------------------- */

int alloc_gc_start(struct alloc_manager *m, struct nc_error *err)
{
    const struct agent_config *cfg = m->c.cfg;
    struct alloc_gc *gc = xcalloc(1, sizeof(*gc));
    gc->m = m;
    gc->lim = (struct alloc_gc_limits){
        .max_allocs = cfg->client.gc_max_allocs,
        .disk_pct = cfg->client.gc_disk_usage_threshold,
        .inode_pct = cfg->client.gc_inode_usage_threshold,
        .parallel = cfg->client.gc_parallel_destroys > 0
                        ? cfg->client.gc_parallel_destroys
                        : 1,
    };
    gc->placed_path = xasprintf("%s/client/gc.json", cfg->data_dir);
    pthread_mutex_init(&gc->write_lock, NULL);
    placed_load(gc);
    uv_timer_init(m->c.loop, &gc->timer);
    uv_timer_init(m->c.loop, &gc->soon);
    gc->timer.data = gc->soon.data = gc;
    gc->open_handles = 2;
    uint64_t every = (uint64_t)(cfg->client.gc_interval_ns / 1000000);
    if (every == 0)
        every = 1;
    uv_timer_start(&gc->timer, on_gc_timer, every, every);
    m->gc = gc;
    (void)err;
    return 0;
}

static void gc_free_if_done(struct alloc_gc *gc)
{
    if (gc->m || gc->running || gc->open_handles)
        return;
    for (size_t i = 0; i < gc->nplaced; i++)
        placed_free(&gc->placed[i]);
    free(gc->placed);
    free(gc->queue);
    free(gc->placed_path);
    pthread_mutex_destroy(&gc->write_lock);
    free(gc);
}

static void on_gc_handle_closed(uv_handle_t *h)
{
    struct alloc_gc *gc = h->data;
    gc->open_handles--;
    gc_free_if_done(gc);
}

void alloc_gc_stop(struct alloc_manager *m)
{
    struct alloc_gc *gc = m ? m->gc : NULL;
    if (!gc)
        return;
    for (size_t i = 0; i < gc->nqueued; i++)
        gc->queue[i]->gc_state = 0; /* still the manager's */
    gc->nqueued = 0;
    gc->m = NULL;
    m->gc = NULL;
    uv_close((uv_handle_t *)&gc->timer, on_gc_handle_closed);
    uv_close((uv_handle_t *)&gc->soon, on_gc_handle_closed);
}
