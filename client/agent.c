/* agent.c - start-up, the event loop and shutdown of the agent. */
#include "client/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include "client/drivers/driver.h"
#include "client/services/services.h"
#include "client/alloc/alloc.h"
#include "client/node/node.h"
#include "client/api/api.h"
#include "client/tls.h"

/* One agent per data_dir: two would fight over the same tasks and state. */
static int lock_data_dir(struct agent *a, struct nc_error *err)
{
    char *dir = xasprintf("%s/client", a->cfg->data_dir);
    int r = nc_mkdir_p(dir, 0700);
    if (r < 0) {
        nc_error_set(err, r, "create data dir %s: %s", dir, strerror(-r));
        free(dir);
        return r;
    }
    char *path = xasprintf("%s/agent.lock", dir);
    free(dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = -errno;
        nc_error_set(err, r, "open %s: %s", path, strerror(errno));
        free(path);
        return r;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        r = -errno;
        nc_error_set(err, r,
                     "data_dir %s is in use by another nomclient agent "
                     "(lock %s held)",
                     a->cfg->data_dir, path);
        close(fd);
        free(path);
        return r;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0)
        LOG_DEBUG("agent", "write %s: %s", path, strerror(errno));
    free(path);
    a->lock_fd = fd;
    return 0;
}

void agent_allocated(const struct agent *a, const char *except_id,
                     int *cpu_mhz, int64_t *memory_mb, int64_t *disk_mb,
                     struct strlist *ports)
{
    *cpu_mhz = 0;
    *memory_mb = *disk_mb = 0;
    const struct alloc_manager *m = a->allocs;
    /* what the allocations that are not terminal hold, as Nomad counts a
     * node's resources (Allocation.TerminalStatus: desired stop, or
     * complete or failed): a finished batch allocation frees its share */
    for (size_t i = 0; m && i < m->nallocs; i++) {
        const struct alloc *al = m->allocs[i];
        if (nc_streq(al->desired_status, "stop") ||
            nc_streq(al->client_status, "complete") ||
            nc_streq(al->client_status, "failed") ||
            (except_id && strcmp(al->job_id, except_id) == 0))
            continue;
        const struct task_group *tg = al->job ? alloc_group(al) : NULL;
        if (!tg)
            continue;
        for (size_t t = 0; t < tg->ntasks; t++) {
            *cpu_mhz += tg->tasks[t].resources.cpu;
            *memory_mb += tg->tasks[t].resources.memory_mb;
        }
        *disk_mb += tg->ephemeral_disk.mb;
        for (size_t n = 0; ports && n < tg->nnetworks; n++) {
            for (size_t p = 0; p < tg->networks[n].nreserved_ports; p++) {
                char num[16];
                snprintf(num, sizeof(num), "%d",
                         tg->networks[n].reserved_ports[p].value);
                if (!strlist_contains(ports, num))
                    strlist_add(ports, num);
            }
        }
    }
}

static void on_handle_closed(uv_handle_t *h) { (void)h; }

/* The desired registrations changed: each registry brings itself in line
 * (Consul's sync loop, the built-in catalog). */
void agent_services_changed(struct agent *a)
{
    if (a->catalog)
        catalog_update(a->catalog, &a->services);
    if (a->catalog && a->allocs) /* templates reading nomadService */
        alloc_manager_services_changed(a->allocs);
    if (a->consul)
        consul_sync_update(a->consul, &a->services);
}

/* The built-in catalog for templates (alloc_manager_config.catalog_lookup). */
static json_t *agent_catalog_lookup(void *arg, const char *service)
{
    struct agent *a = arg;
    if (!a->catalog)
        return NULL;
    return service ? catalog_service_json(a->catalog, service)
                   : catalog_list_json(a->catalog);
}

static void on_consul_flushed(void *arg, const char *alloc_id)
{
    struct agent *a = arg;
    if (a->allocs)
        alloc_manager_deregistered(a->allocs, alloc_id);
}

/* Rebuilds the desired registrations and hands them to the registries. */
static void on_services_timer(uv_timer_t *t)
{
    struct agent *a = t->data;
    a->services_dirty = false;
    if (!a->allocs)
        return;
    services_rebuild(&a->services, a->allocs->allocs, a->allocs->nallocs,
                     &a->node, a->checks);
    agent_services_changed(a);
}

void agent_services_dirty(struct agent *a)
{
    if (a->services_dirty || a->stopping)
        return;
    a->services_dirty = true;
    /* coalesce a burst (a job of 50 allocations, checks settling) into one
     * rebuild */
    uv_timer_start(&a->services_timer, on_services_timer, 5, 0);
}

/* ---- node drain and eligibility ---------------------------------------- */

static char *node_drain_path(const struct agent *a)
{
    return xasprintf("%s/client/node-drain.json", a->cfg->data_dir);
}

static void node_drain_save(const struct agent *a)
{
    const struct node *n = &a->node;
    json_t *j = json_pack(
        "{s:s, s:b, s:{s:I, s:b, s:I, s:I}}", "SchedulingEligibility",
        n->eligible ? "eligible" : "ineligible", "Drain", n->drain,
        "DrainStrategy", "Deadline", (json_int_t)n->drain_strategy.deadline_ns,
        "IgnoreSystemJobs", n->drain_strategy.ignore_system, "ForceDeadline",
        (json_int_t)n->drain_strategy.force_deadline, "StartedAt",
        (json_int_t)n->drain_strategy.started_at);
    char *txt = json_dumps(j, JSON_COMPACT);
    char *path = node_drain_path(a);
    int r = nc_write_file_atomic(path, txt, strlen(txt), 0600);
    if (r < 0)
        LOG_ERROR("agent", "saving %s: %s", path, strerror(-r));
    free(path);
    free(txt);
    json_decref(j);
}

/* The drain stopped everything it had to: the node stays ineligible, as
 * Nomad leaves a drained node. */
static void on_node_drained(void *arg)
{
    struct agent *a = arg;
    a->node.drain = false;
    memset(&a->node.drain_strategy, 0, sizeof(a->node.drain_strategy));
    node_drain_save(a);
}

static void drain_resume(struct agent *a)
{
    const struct node *n = &a->node;
    int64_t ms = 0;
    if (n->drain_strategy.deadline_ns < 0)
        ms = -1;
    else if (n->drain_strategy.force_deadline > 0) {
        ms = (n->drain_strategy.force_deadline - nc_now_unix_ns()) / 1000000;
        if (ms <= 0)
            ms = -1; /* passed while the agent was away */
    }
    alloc_manager_drain_start(a->allocs, ms, n->drain_strategy.ignore_system,
                              on_node_drained, a);
}

/* The node takes placements again: what the stored jobs miss is placed,
 * as Nomad's blocked evaluations are once a node becomes eligible. */
static void placements_resume(struct agent *a)
{
    struct nc_error err = {0};
    for (size_t i = 0; i < a->store->njobs; i++) {
        const struct job_entry *e = a->store->jobs[i];
        if (!e->stop &&
            alloc_manager_run_job(a->allocs, e->job, e->version, &err) < 0)
            LOG_ERROR("agent", "job %s: %s", e->job->id, err.msg);
    }
    alloc_manager_placements_resumed(a->allocs);
}

int agent_node_drain(struct agent *a, bool enable, int64_t deadline_ns,
                     bool ignore_system, bool mark_eligible)
{
    struct node *n = &a->node;
    if (enable) {
        n->drain = true;
        n->eligible = false;
        n->drain_strategy.deadline_ns = deadline_ns;
        n->drain_strategy.ignore_system = ignore_system;
        n->drain_strategy.started_at = nc_now_unix_ns();
        n->drain_strategy.force_deadline =
            deadline_ns > 0 ? n->drain_strategy.started_at + deadline_ns : 0;
        LOG_INFO("agent", "node drain enabled");
        drain_resume(a);
    } else {
        bool was = n->drain;
        n->drain = false;
        memset(&n->drain_strategy, 0, sizeof(n->drain_strategy));
        alloc_manager_drain_cancel(a->allocs);
        if (was)
            LOG_INFO("agent", "node drain disabled");
        if (mark_eligible && !n->eligible) {
            n->eligible = true;
            placements_resume(a);
        }
    }
    node_drain_save(a);
    return 0;
}

int agent_node_eligibility(struct agent *a, bool eligible, struct nc_error *err)
{
    struct node *n = &a->node;
    if (eligible && n->drain)
        return nc_error_set(err, -EINVAL,
                            "can not set node's scheduling eligibility to "
                            "eligible while it is draining");
    bool was = n->eligible;
    n->eligible = eligible;
    if (was != eligible) {
        LOG_INFO("agent", "node scheduling eligibility: %s",
                 eligible ? "eligible" : "ineligible");
        node_drain_save(a);
        if (eligible)
            placements_resume(a);
    }
    return 0;
}

/* What the last agent left: ineligible, or draining (which goes on). */
static void node_drain_load(struct agent *a)
{
    char *path = node_drain_path(a);
    size_t len = 0;
    char *txt = nc_read_file(path, &len, 1 << 16);
    json_t *j = txt ? json_loadb(txt, len, 0, NULL) : NULL;
    if (txt && !json_is_object(j))
        LOG_ERROR("agent", "%s is not a JSON object; the node stays eligible",
                  path);
    if (json_is_object(j)) {
        struct node *n = &a->node;
        json_t *ds = json_object_get(j, "DrainStrategy");
        n->eligible = !nc_streq(
            json_string_value(json_object_get(j, "SchedulingEligibility")),
            "ineligible");
        n->drain = json_is_true(json_object_get(j, "Drain"));
        n->drain_strategy.deadline_ns =
            json_integer_value(json_object_get(ds, "Deadline"));
        n->drain_strategy.ignore_system =
            json_is_true(json_object_get(ds, "IgnoreSystemJobs"));
        n->drain_strategy.force_deadline =
            json_integer_value(json_object_get(ds, "ForceDeadline"));
        n->drain_strategy.started_at =
            json_integer_value(json_object_get(ds, "StartedAt"));
        if (n->drain)
            n->eligible = false;
    }
    json_decref(j);
    free(txt);
    free(path);
}

/* Every saved change of an allocation: wake what watches it. */
static void on_alloc_change(struct alloc *al, void *arg)
{
    struct agent *a = arg;
    log_follow_poke(&a->follows, al->id);
    if (a->checks)
        alloc_checks_sync(a->checks, al);
    agent_services_dirty(a);
    if (a->allocs)
        alloc_gc_changed(a->allocs, al); /* an end may allow a collection */
}

/* An allocation with services is stopping: its services leave the
 * registries before its tasks are killed. */
static void on_alloc_stopping(struct alloc *al, void *arg)
{
    struct agent *a = arg;
    services_rebuild(&a->services, a->allocs->allocs, a->allocs->nallocs,
                     &a->node, a->checks);
    agent_services_changed(a);
    if (a->consul)
        consul_sync_flush_alloc(a->consul, al->id, on_consul_flushed, a);
    else
        alloc_manager_deregistered(a->allocs, al->id);
}

static void on_check_status(void *arg, const char *alloc_id)
{
    agent_services_dirty(arg);
}

static void on_output_timer(uv_timer_t *t)
{
    struct agent *a = t->data;
    a->output_dirty = false;
    agent_services_dirty(a);
}

/* A check's output changed but not its status: the registries show the
 * newer text within a second, without a rebuild per probe. */
static void on_check_output(void *arg, const char *alloc_id)
{
    struct agent *a = arg;
    if (a->output_dirty || a->stopping)
        return;
    a->output_dirty = true;
    uv_timer_start(&a->output_timer, on_output_timer, 1000, 0);
}

static void on_check_restart(void *arg, const char *alloc_id, const char *task,
                             const char *why)
{
    struct agent *a = arg;
    if (a->allocs)
        alloc_manager_restart_task(a->allocs, alloc_id, task, why);
}

/* A script check's command, run inside its task by the task's driver. */
static int on_check_exec(void *arg, const char *alloc_id, const char *task,
                         char *const argv[], int64_t timeout_ns,
                         alloc_checks_exec_done_fn done, void *done_arg,
                         void **run, struct nc_error *err)
{
    struct agent *a = arg;
    struct alloc *al =
        a->allocs ? alloc_manager_find(a->allocs, alloc_id, NULL) : NULL;
    struct alloc_task *t = NULL;
    for (size_t i = 0; al && task && i < al->ntasks; i++)
        if (strcmp(al->tasks[i].name, task) == 0)
            t = &al->tasks[i];
    const struct driver *d = t ? driver_of(alloc_task_spec(t)) : NULL;
    if (!t || !d)
        return nc_error_set(err, -ESRCH, "task \"%s\" is not running",
                            task ? task : "");
    if (!d->exec)
        return nc_error_set(err, -ENOTSUP,
                            "the %s driver cannot run commands in its tasks",
                            d->name);
    struct driver_exec *x = NULL;
    int r = d->exec(al->mgr->drv, t, argv, timeout_ns, done, done_arg, &x, err);
    *run = x;
    return r;
}

static void on_check_exec_cancel(void *arg, void *run)
{
    struct driver_exec *x = run;
    if (x)
        x->cancel(x);
}

/* The end of a stop, once a dev agent's allocations are gone. */
static void close_signals(struct agent *a)
{
    if (uv_is_closing((uv_handle_t *)&a->sig_int))
        return;
    uv_signal_stop(&a->sig_int);
    uv_signal_stop(&a->sig_term);
    uv_signal_stop(&a->sig_hup);
    uv_close((uv_handle_t *)&a->sig_int, on_handle_closed);
    uv_close((uv_handle_t *)&a->sig_term, on_handle_closed);
    uv_close((uv_handle_t *)&a->sig_hup, on_handle_closed);
}

static void agent_finish_stop(struct agent *a)
{
    close_signals(a);
    if (a->draining) {
        a->draining = false;
        uv_timer_stop(&a->drain_timer);
    }
    uv_close((uv_handle_t *)&a->drain_timer, on_handle_closed);
    uv_close((uv_handle_t *)&a->services_timer, on_handle_closed);
    uv_close((uv_handle_t *)&a->output_timer, on_handle_closed);
    alloc_checks_close(a->checks);
    a->checks = NULL;
    consul_sync_close(a->consul);
    a->consul = NULL;
    catalog_free(a->catalog);
    a->catalog = NULL;
    alloc_gc_stop(a->allocs);
    alloc_manager_close(a->allocs);
    a->allocs = NULL;
    drivers_stop(); /* after the tasks were detached */
}

static void on_drained(void *arg)
{
    struct agent *a = arg;
    if (a->draining)
        LOG_INFO("agent", "every allocation stopped and its network removed");
    agent_finish_stop(a);
}

static void on_drain_timeout(uv_timer_t *t)
{
    struct agent *a = t->data;
    LOG_WARN("agent", "allocations still stopping after 30s; exiting anyway "
                      "(`nomclient leftovers -clean` removes what remains)");
    a->allocs->idle_cb = NULL;
    agent_finish_stop(a);
}

static void agent_stop(struct agent *a, const char *why)
{
    if (a->stopping)
        return;
    a->stopping = true;
    LOG_INFO("agent", "%s: shutting down", why);
    log_follow_stop_all(&a->follows);
    if (a->http)
        http_server_stop(a->http, NULL, NULL);
    a->http = NULL;
    if (a->stats)
        hoststats_stop(a->stats);
    fingerprint_cni_stop(a->cni);
    a->cni = NULL;
    /* Tasks keep running under their supervisors, so an agent restart or
     * upgrade does not touch them; a dev agent's data dir is throw-away,
     * so its tasks are stopped with it (each supervisor applies the task's
     * kill_signal and kill_timeout on its own) and their networks removed
     * before it exits. */
    if (a->cfg->dev_mode && a->allocs && a->store) {
        for (size_t i = 0; i < a->store->njobs; i++)
            alloc_manager_stop_job(a->allocs, a->store->jobs[i]->job->id);
        a->draining = true;
        uv_timer_start(&a->drain_timer, on_drain_timeout, 30000, 0);
        alloc_manager_when_idle(a->allocs, on_drained, a);
        return;
    }
    agent_finish_stop(a);
}

/* The HTTPS context from the tls block's files (read now), or NULL with
 * tls.http off. */
static int api_tls_load(const struct agent_config *cfg, struct tls_ctx **out,
                        struct nc_error *err)
{
    *out = NULL;
    if (!cfg->tls.http)
        return 0;
    struct tls_settings ts = {.ca_file = cfg->tls.ca_file,
                              .cert_file = cfg->tls.cert_file,
                              .key_file = cfg->tls.key_file,
                              .verify_peer = cfg->tls.verify_https_client,
                              .min_version = cfg->tls.tls_min_version,
                              .cipher_suites = cfg->tls.tls_cipher_suites};
    int r = tls_ctx_new(out, true, &ts, err);
    if (r < 0)
        nc_error_prefix(err, "tls");
    return r;
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct agent *a = h->data;
    if (signum == SIGHUP) {
        /* Nomad reloads its TLS certificates on SIGHUP: new handshakes use
         * the files as they are now, open connections keep theirs. */
        struct tls_ctx *tls = NULL;
        struct nc_error err = {0};
        if (!a->cfg->tls.http) {
            LOG_INFO("agent", "caught SIGHUP: nothing to reload");
        } else if (api_tls_load(a->cfg, &tls, &err) < 0) {
            LOG_ERROR("agent", "caught SIGHUP: keeping the current "
                               "certificates: %s", err.msg);
        } else {
            http_server_set_tls(a->http, tls);
            LOG_INFO("agent", "caught SIGHUP: reloaded the TLS certificates "
                              "(%s)", a->cfg->tls.cert_file);
        }
        return;
    }
    if (a->draining) {
        /* a Ctrl-C reaches every process of the terminal's group, and a
         * wrapper script may pass on a TERM of its own: the tasks and
         * networks are still being removed, which is bounded anyway */
        LOG_INFO("agent", "already stopping: waiting for the allocations' "
                          "tasks and networks to go (at most 30 s)");
        return;
    }
    agent_stop(a, signum == SIGINT ? "caught interrupt" : "caught terminate");
}

static int start_signals(struct agent *a)
{
    uv_signal_t *sigs[] = {&a->sig_int, &a->sig_term, &a->sig_hup};
    int nums[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < NC_ARRAY_LEN(sigs); i++) {
        int r = uv_signal_start(sigs[i], on_signal, nums[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

int agent_run(struct agent_config *cfg, struct nc_error *err)
{
    struct agent a = {.cfg = cfg, .lock_fd = -1};
    a.start_mono_ns = nc_now_mono_ns();
    a.start_unix_ns = nc_now_unix_ns();
    uv_loop_t loop;
    int r = uv_loop_init(&loop);
    if (r < 0)
        return nc_error_set(err, r, "event loop: %s", uv_strerror(r));
    a.loop = &loop;
    signal(SIGPIPE, SIG_IGN);
    nc_sched_short_slice(); /* the loop: wake at once, work briefly */
    /* each check keeps its socket between probes, and a burst of hanging
     * targets holds more: the soft fd limit (often 1024) is raised to the
     * hard one, as systemd services usually run with */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
            LOG_DEBUG("agent", "raising the open files limit: %s",
                      strerror(errno));
    }
    /* initialised up front so agent_stop can always close them */
    uv_signal_init(a.loop, &a.sig_int);
    uv_signal_init(a.loop, &a.sig_term);
    uv_signal_init(a.loop, &a.sig_hup);
    uv_timer_init(a.loop, &a.drain_timer);
    uv_timer_init(a.loop, &a.services_timer);
    uv_timer_init(a.loop, &a.output_timer);
    a.sig_int.data = a.sig_term.data = a.sig_hup.data = &a;
    a.drain_timer.data = a.services_timer.data = a.output_timer.data = &a;

    if ((r = lock_data_dir(&a, err)) < 0)
        goto out;

    struct fingerprint_root root = {0};
    if ((r = fingerprint_node(&a.node, cfg, &root, err)) < 0) {
        nc_error_prefix(err, "fingerprint");
        goto out;
    }
    drivers_fingerprint(cfg, &a.node);
    drivers_start(a.loop, cfg, &a.node); /* runs once the loop does */
    if ((r = state_open(&a.store, cfg->data_dir, err)) < 0)
        goto out;
    if (cfg->acl.enabled) {
        char *acl_dir = xasprintf("%s/client/acl", cfg->data_dir);
        r = acl_store_open(&a.acl, acl_dir, err);
        free(acl_dir);
        if (r < 0)
            goto out;
    }
    ssize_t n = readlink("/proc/self/exe", a.self_exe, sizeof(a.self_exe) - 1);
    if (n <= 0) {
        r = nc_error_set(err, -errno, "cannot find this binary: %s",
                         strerror(errno));
        goto out;
    }
    a.self_exe[n] = '\0';
    /* registries before the allocations: re-attached ones register again */
    a.catalog = catalog_new(&a.node, !cfg->consul.configured);
    if (cfg->consul.configured &&
        (r = consul_sync_open(&a.consul, a.loop, cfg, &a.node, err)) < 0) {
        nc_error_prefix(err, "consul");
        goto out;
    }
    struct alloc_checks_hooks hooks = {.restart_task = on_check_restart,
                                       .status_changed = on_check_status,
                                       .output_changed = on_check_output,
                                       .exec_task = on_check_exec,
                                       .exec_cancel = on_check_exec_cancel,
                                       .arg = &a};
    if ((r = alloc_checks_open(&a.checks, a.loop, &a.node, &hooks)) < 0) {
        nc_error_set(err, r, "check engine: %s", strerror(-r));
        goto out;
    }
    struct alloc_manager_config ac = {.loop = a.loop, .cfg = cfg,
                                      .node = &a.node, .self_exe = a.self_exe,
                                      .on_change = on_alloc_change,
                                      .on_stopping = on_alloc_stopping,
                                      .catalog_lookup = agent_catalog_lookup,
                                      .arg = &a};
    if ((r = alloc_manager_open(&a.allocs, &ac, err)) < 0)
        goto out;
    /* before the jobs run: what it collected is not made again */
    if ((r = alloc_gc_start(a.allocs, err)) < 0)
        goto out;
    node_drain_load(&a);
    for (size_t i = 0; i < a.store->njobs; i++) {
        struct job_entry *e = a.store->jobs[i];
        if (e->stop)
            alloc_manager_stop_job(a.allocs, e->job->id);
        else if (node_ready(&a.node)) /* else: no new placements */
            alloc_manager_run_job(a.allocs, e->job, e->version, err);
    }
    if (a.node.drain)
        drain_resume(&a);
    if ((r = hoststats_collector_init(&a.stats, NULL, cfg->data_dir)) < 0) {
        nc_error_set(err, r, "host stats: %s", strerror(-r));
        goto out;
    }
    hoststats_start(a.stats, a.loop, 1000);

    struct http_server_config hc = {
        .bind_addr = cfg->bind_addr,
        .port = cfg->http_port,
        .max_conns_per_client = cfg->limits.http_max_conns_per_client,
        .handshake_timeout_ms =
            (uint64_t)cfg->limits.https_handshake_timeout_ns / 1000000,
    };
    if ((r = api_tls_load(cfg, &hc.tls, err)) < 0)
        goto out;
    if ((r = http_server_start(&a.http, a.loop, &hc, http_api_handle, &a,
                               err)) < 0)
        goto out;
    if ((r = start_signals(&a)) < 0) {
        nc_error_set(err, r, "signals: %s", uv_strerror(r));
        goto out;
    }
    uint64_t ready_us = (nc_now_mono_ns() - a.start_mono_ns) / 1000;
    /* plugin versions need the plugins run: after the API is up */
    if (fingerprint_cni_start(&a.cni, &a.node, a.loop, cfg->client.cni_path) < 0)
        LOG_DEBUG("agent", "no CNI plugins in %s", cfg->client.cni_path);
    alloc_manager_prestart_network(a.allocs);
    LOG_INFO("agent",
             "nomclient %s started: node %s (%s), datacenter %s, data_dir %s, "
             "API on %s://%s:%d, %zu job(s) loaded, ready in %llu us%s",
             NOMCLIENT_VERSION, a.node.id, a.node.name, a.node.datacenter,
             cfg->data_dir, cfg->tls.http ? "https" : "http", cfg->bind_addr,
             http_server_port(a.http),
             a.store->njobs, (unsigned long long)ready_us,
             cfg->dev_mode ? " (dev mode)" : "");
    uv_run(a.loop, UV_RUN_DEFAULT);
    r = 0;

out:
    if (!a.stopping)
        agent_stop(&a, "start-up failed"); /* closes what was opened */
    /* let every close callback run before freeing what they point at */
    uv_run(&loop, UV_RUN_DEFAULT);
    hoststats_collector_free(a.stats);
    services_clear(&a.services);
    state_close(a.store);
    acl_store_free(a.acl);
    node_free(&a.node);
    if (uv_loop_close(&loop) != 0)
        LOG_DEBUG("agent", "loop still had handles at exit");
    if (a.lock_fd >= 0)
        close(a.lock_fd);
    return r;
}
