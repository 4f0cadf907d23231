/* docker.c - the docker driver's table, its state for the agent (one
 * Engine API client, opened on first use), the settings it takes from
 * plugin "docker" { config { ... } }, and the fingerprint: at start a
 * cheap look at the endpoint (a unix socket that accepts is a daemon; no
 * libcurl loaded for a node without one), then every 30 s on the loop
 * GET /version, /info and /networks/bridge for Nomad's driver.docker.*
 * attributes. A daemon that goes away turns the driver unhealthy (and
 * back), with a node event each way, as Nomad's client records them.
 *
 * Why a look at the socket and not the answers at start: the agent
 * fingerprints before its loop runs, and waiting there for a daemon that
 * hangs would delay the API; a daemon that accepts on its socket is up in
 * practice, so the driver is detected at once (jobs submitted in the
 * first milliseconds are placed) and its attributes follow within a few
 * milliseconds from the loop. A tcp:// endpoint is undetected until it
 * answers. */
#include "client/drivers/driver.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client/drivers/docker_api.h"
#include "client/drivers/docker_config.h"
#include "client/drivers/internal.h"

#define FINGERPRINT_PERIOD_MS 30000
#define FINGERPRINT_TIMEOUT_MS 5000
/* Nomad's words (drivers/docker/fingerprint.go) */
#define HEALTHY "Healthy"
#define UNREACHABLE "Failed to connect to docker daemon"

struct docker_driver docker_driver_state;
#define dk docker_driver_state

extern const struct driver driver_docker;

/* ---- settings and the client ------------------------------------------ */

static void settings_load(const struct agent_config *cfg,
                          struct docker_settings *s)
{
    const struct docker_plugin_config *c = &cfg->client.docker;
    s->endpoint =
        c->endpoint && *c->endpoint ? c->endpoint : DOCKER_DEFAULT_ENDPOINT;
    s->gc_image = c->gc.image;
    s->gc_container = c->gc.container;
    s->image_delay_ns = c->gc.image_delay_ns;
    s->dangling_enabled = c->gc.dangling_containers.enabled;
    s->dangling_dry_run = c->gc.dangling_containers.dry_run;
    s->dangling_period_ns = c->gc.dangling_containers.period_ns;
    s->dangling_grace_ns = c->gc.dangling_containers.creation_grace_ns;
    s->infra_image = c->infra_image;
    s->infra_pull_timeout_ns = c->infra_image_pull_timeout_ns;
    s->pull_activity_timeout_ns = c->pull_activity_timeout_ns;
    s->volumes_enabled = c->volumes.enabled;
    s->allow_privileged = c->allow_privileged;
}

int docker_driver_setup(uv_loop_t *loop, const struct agent_config *cfg,
                        struct nc_error *err)
{
    if (dk.loop && loop && dk.loop != loop)
        return nc_error_set(err, -EBUSY,
                            "the docker driver already runs on another loop");
    if (!dk.loop && loop) {
        dk.loop = loop;
        dk.closing = false;
    }
    if (!dk.cfg && cfg) {
        dk.cfg = cfg;
        settings_load(cfg, &dk.set);
    }
    if (!dk.loop || !dk.cfg)
        return nc_error_set(err, -EINVAL, "the docker driver is not set up");
    return 0;
}

struct docker_api *docker_api_get(struct nc_error *err)
{
    if (dk.closing) {
        nc_error_set(err, -ESHUTDOWN, "the agent is shutting down");
        return NULL;
    }
    if (!dk.api && dk.loop && dk.cfg &&
        docker_api_open(&dk.api, dk.loop, dk.set.endpoint, err) < 0)
        dk.api = NULL;
    if (!dk.api && !err->msg[0])
        nc_error_set(err, -EINVAL, "the docker driver is not set up");
    return dk.api;
}

enum docker_name_holder docker_name_holder(const struct docker_reply *r,
                                           const char *alloc_id,
                                           const char **id)
{
    *id = json_string_value(json_object_get(r->json, "Id"));
    if (r->status == 404 || !*id)
        return DOCKER_NAME_GONE;
    const char *owner = json_string_value(json_object_get(
        json_object_get(json_object_get(r->json, "Config"), "Labels"),
        DOCKER_LABEL_ALLOC_ID));
    if (!nc_streq(owner, alloc_id))
        return DOCKER_NAME_FOREIGN;
    json_t *state = json_object_get(r->json, "State");
    if (json_is_true(json_object_get(state, "Running")))
        return DOCKER_NAME_RUNNING;
    if (nc_streq(json_string_value(json_object_get(state, "Status")),
                 "created"))
        return DOCKER_NAME_CREATED;
    return DOCKER_NAME_DEAD;
}

bool docker_endpoint_listening(const char *endpoint, char *why, size_t whylen)
{
    if (!nc_str_has_prefix(endpoint, "unix://"))
        return true;
    const char *path = endpoint + strlen("unix://");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(why, whylen, "socket path too long");
        return false;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return false;
    }
    /* a unix connect does not wait: it is accepted (or queued), refused,
     * or the socket is not there; a full backlog (EAGAIN) is a daemon */
    int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    close(fd);
    if (r == 0 || e == EAGAIN || e == EINPROGRESS)
        return true;
    snprintf(why, whylen, "%s: %s", path, strerror(e));
    return false;
}

uint64_t docker_pid_start_time(int pid)
{
    if (pid <= 0)
        return 0;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    size_t len;
    char *txt = nc_read_file(path, &len, 4096);
    const char *p = txt ? strrchr(txt, ')') : NULL;
    unsigned long long start = 0;
    /* after "pid (comm)": state(3) ... starttime(22) */
    if (p && sscanf(p + 2,
                    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d "
                    "%*d %*d %*d %*d %*d %llu",
                    &start) != 1)
        start = 0;
    free(txt);
    return start;
}

/* ---- fingerprint ------------------------------------------------------- */

struct fingerprint {
    uv_timer_t timer;
    uint64_t last_ms; /* uv_now of the last one started */
    struct docker_call *call;
    int step; /* 0 version, 1 info, 2 bridge network */
    bool ever_detected;
    bool answered; /* a fingerprint on the loop came back */
    char *version, *runtimes, *os_type, *bridge_ip;
};

static struct node_driver *node_entry(struct node *n)
{
    for (size_t i = 0; n && i < n->ndrivers; i++)
        if (strcmp(n->drivers[i].name, driver_docker.name) == 0)
            return &n->drivers[i];
    return NULL;
}

bool docker_driver_healthy(void)
{
    struct node_driver *d = node_entry(dk.node);
    return !d || d->healthy;
}

static void set_attr(struct node *n, const char *key, const char *value)
{
    if (value && *value)
        kv_set(&n->attributes, key, value);
    else
        kv_remove(&n->attributes, key);
}

/* The node's entry and attributes from what the daemon said (healthy) or
 * that it did not answer; a node event when the health changed. */
static void fingerprint_apply(struct fingerprint *fp, bool reached,
                              const char *why)
{
    struct node *n = dk.node;
    struct node_driver *d = node_entry(n);
    if (!n || !d)
        return;
    bool detected = reached || fp->ever_detected || d->detected;
    const char *desc = reached ? HEALTHY : UNREACHABLE;
    if (reached) {
        fp->ever_detected = true;
        kv_set(&n->attributes, "driver.docker", "1");
        set_attr(n, "driver.docker.version", fp->version);
        set_attr(n, "driver.docker.bridge_ip", fp->bridge_ip);
        set_attr(n, "driver.docker.runtimes", fp->runtimes);
        set_attr(n, "driver.docker.os_type", fp->os_type);
        set_attr(n, "driver.docker.privileged.enabled",
                 dk.set.allow_privileged ? "true" : NULL);
        set_attr(n, "driver.docker.volumes.enabled",
                 dk.set.volumes_enabled ? "true" : NULL);
    }
    bool changed = d->detected != detected || d->healthy != reached ||
                   !nc_streq(d->health_description, desc);
    if (!reached && (!fp->answered || changed))
        LOG_WARN("docker", "docker daemon at %s: %s", dk.set.endpoint,
                 why ? why : "no answer");
    fp->answered = true;
    if (!changed)
        return;
    if (reached)
        LOG_INFO("docker", "docker daemon at %s: healthy (version %s)",
                 dk.set.endpoint, fp->version ? fp->version : "?");
    d->detected = detected;
    d->healthy = reached;
    free(d->health_description);
    d->health_description = xstrdup(desc);
    if (!detected)
        kv_remove(&n->attributes, "driver.docker");
    node_add_event(n, "Driver", desc, "driver", driver_docker.name);
}

static void fingerprint_next(struct fingerprint *fp);
static void on_fingerprint_timer(uv_timer_t *t);

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void fingerprint_again(struct fingerprint *fp)
{
    uv_timer_start(&fp->timer, on_fingerprint_timer, FINGERPRINT_PERIOD_MS, 0);
}

static void on_fingerprint_answer(void *arg, const struct docker_reply *r)
{
    struct fingerprint *fp = arg;
    fp->call = NULL;
    if (fp->step == 0) {
        if (r->error) {
            fingerprint_apply(fp, false, r->error);
            fingerprint_again(fp);
            return;
        }
        free(fp->version);
        fp->version =
            xstrdup(json_string_value(json_object_get(r->json, "Version")));
    } else if (fp->step == 1 && !r->error) {
        /* runtimes sorted and comma-joined, as Nomad */
        json_t *rt = json_object_get(r->json, "Runtimes");
        struct strlist names = {0};
        const char *k;
        json_t *v;
        json_object_foreach(rt, k, v) strlist_add(&names, k);
        qsort(names.items, names.n, sizeof(*names.items), compare_names);
        struct nc_buf b = {0};
        for (size_t i = 0; i < names.n; i++)
            nc_buf_printf(&b, "%s%s", i ? "," : "", names.items[i]);
        strlist_free(&names);
        free(fp->runtimes);
        fp->runtimes = b.data ? nc_buf_take(&b) : NULL;
        free(fp->os_type);
        fp->os_type =
            xstrdup(json_string_value(json_object_get(r->json, "OSType")));
    } else if (fp->step == 2) {
        /* no bridge network (dockerd --bridge=none): no bridge_ip */
        json_t *cfgs =
            json_object_get(json_object_get(r->json, "IPAM"), "Config");
        const char *gw = json_string_value(
            json_object_get(json_array_get(cfgs, 0), "Gateway"));
        free(fp->bridge_ip);
        fp->bridge_ip = !r->error && gw && *gw ? xstrdup(gw) : NULL;
    }
    if (fp->step == 1 && r->error)
        LOG_WARN("docker", "failed to get Docker system info: %s", r->error);
    if (++fp->step <= 2) {
        fingerprint_next(fp);
        return;
    }
    fingerprint_apply(fp, true, NULL);
    fingerprint_again(fp);
}

static void on_fingerprint_timer(uv_timer_t *t)
{
    struct fingerprint *fp = t->data;
    fp->step = 0;
    fp->last_ms = uv_now(dk.loop);
    fingerprint_next(fp);
}

void docker_driver_saw(const struct docker_reply *r)
{
    struct fingerprint *fp = dk.fp;
    struct node_driver *d = node_entry(dk.node);
    if (!fp || !d || fp->call || dk.closing)
        return;
    bool away = docker_reply_unreachable(r);
    if (away == !d->healthy)
        return; /* the node says so already */
    /* at most one a second, however many calls notice */
    uint64_t now = uv_now(dk.loop);
    uint64_t due = fp->last_ms + 1000 > now ? fp->last_ms + 1000 - now : 0;
    if (uv_timer_get_due_in(&fp->timer) > due)
        uv_timer_start(&fp->timer, on_fingerprint_timer, due, 0);
}

/* One step: the version (after a look at the socket), the info, the
 * bridge network. */
static void fingerprint_next(struct fingerprint *fp)
{
    if (fp->step == 0) {
        char why[256] = "";
        if (!docker_endpoint_listening(dk.set.endpoint, why, sizeof(why))) {
            fingerprint_apply(fp, false, why);
            fingerprint_again(fp);
            return;
        }
    }
    static const char *const paths[] = {"/version", "/info",
                                        "/networks/bridge"};
    struct nc_error err = {0};
    struct docker_api *api = docker_api_get(&err);
    struct docker_call_opts o = {.path = paths[fp->step],
                                 .timeout_ms = FINGERPRINT_TIMEOUT_MS};
    if (!api ||
        docker_call(api, &o, on_fingerprint_answer, fp, &fp->call) < 0) {
        fingerprint_apply(fp, false, err.msg[0] ? err.msg : "cannot call");
        fingerprint_again(fp);
    }
}

static void on_fingerprint_closed(uv_handle_t *h)
{
    struct fingerprint *fp = h->data;
    free(fp->version);
    free(fp->runtimes);
    free(fp->os_type);
    free(fp->bridge_ip);
    free(fp);
}

/* At start, before the loop runs: whether anything listens (see the top
 * of this file). */
static void docker_fingerprint(const struct driver *d,
                               const struct agent_config *cfg, struct node *n)
{
    struct docker_settings s;
    settings_load(cfg, &s);
    char why[256] = "";
    bool unix_ep = nc_str_has_prefix(s.endpoint, "unix://");
    bool up =
        unix_ep && docker_endpoint_listening(s.endpoint, why, sizeof(why));
    node_add_driver(n, d->name, up, up,
                    up        ? HEALTHY
                    : unix_ep ? UNREACHABLE
                              : "");
    if (!up && unix_ep)
        LOG_DEBUG("docker", "no docker daemon at %s: %s", s.endpoint, why);
}

void docker_driver_start(uv_loop_t *loop, const struct agent_config *cfg,
                         struct node *n)
{
    struct nc_error err = {0};
    if (docker_driver_setup(loop, cfg, &err) < 0) {
        LOG_ERROR("docker", "%s", err.msg);
        return;
    }
    dk.node = n;
    if (!dk.fp) {
        struct fingerprint *fp = xcalloc(1, sizeof(*fp));
        struct node_driver *d = node_entry(n);
        fp->ever_detected = d && d->detected;
        uv_timer_init(loop, &fp->timer);
        fp->timer.data = fp;
        uv_timer_start(&fp->timer, on_fingerprint_timer, 0, 0);
        dk.fp = fp;
    }
    docker_reaper_start();
}

void docker_driver_stop(void)
{
    struct fingerprint *fp = dk.fp;
    if (fp) {
        if (fp->call)
            docker_call_cancel(dk.api, fp->call);
        uv_close((uv_handle_t *)&fp->timer, on_fingerprint_closed);
        dk.fp = NULL;
    }
    docker_reaper_stop();
    docker_tasks_close();
    docker_net_close();
    docker_images_close();
    dk.closing = true;
    docker_api_close(dk.api);
    dk.api = NULL;
    dk.node = NULL;
    dk.loop = NULL;
    dk.cfg = NULL;
}

/* ---- the table ---------------------------------------------------------- */

const struct driver driver_docker = {
    .name = "docker",
    .fingerprint = docker_fingerprint,
    .config_defaults = docker_config_defaults,
    .plugin_keys = docker_plugin_keys,
    .nplugin_keys = DOCKER_NPLUGIN_KEYS,
    .validate = docker_validate,
    .start = docker_start,
    .release = docker_release,
    .abort = docker_abort,
    .recover = docker_recover,
    .signal = docker_signal,
    .stop = docker_stop,
    .stats = docker_task_stats,
    .destroy = docker_destroy,
    .exec = docker_task_exec,
    .exec_session = docker_task_exec_session,
    .detach = docker_detach,
    .leftovers = docker_leftovers,
    .net_create = docker_net_create,
    .net_destroy = docker_net_destroy,
};
