// deps: client/drivers/ client/curl_uv.c client/alloc/alloc.c client/node/
// deps: client/job/ client/hcl/ client/util.c volumes/
/* The docker driver's runtime against a fake Engine API served by a thread
 * of this test on a unix socket, with answers scripted per case: a task's
 * start (inspect, create, start, inspect) and its exit (the wait, the
 * exit code and OOMKilled, the removal), the record written before the
 * start, a name conflict with a running container of the allocation
 * (adopted), with a dead one (removed, made again) and with someone
 * else's (refused), a wait the daemon drops (asked again), a stop during
 * the create (what was made goes), a pull that fails while the image is
 * present locally (a warning, the local image), an answer that is not
 * JSON, a log stream cut mid-frame and followed again from its last
 * timestamp (no line lost or repeated), a re-attach after an agent
 * restart by the recorded pid, the dangling containers' reaper, and the
 * fingerprint going unhealthy and back with node events. Also the pure
 * parts: the log stream parser fed at every split, the rotated files. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/drivers/docker_api.h"
#include "client/drivers/docker_config.h"
#include "client/drivers/driver.h"
#include "client/drivers/internal.h"
#include "client/drivers/logfile.h"

/* ---- the fake Engine ------------------------------------------------------
 */

#define MAX_ANSWERS 32
#define MAX_SEEN 256

struct answer {
    const char *method, *prefix; /* after /v1.41 */
    int status;
    const char *body; /* JSON text */
    const void *raw;  /* a streamed body (chunked) */
    size_t rawlen;
    bool cut;  /* the stream ends without its last chunk */
    int gate;  /* > 0: answered once the test opens it */
    int times; /* 0: every time; else that many */
    int used;
};

static struct {
    char dir[64], sock[128], endpoint[160];
    int lfd;
    int stop[2];
    pthread_t acceptor;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct answer answers[MAX_ANSWERS];
    size_t nanswers;
    bool gates[16];
    char *seen[MAX_SEEN]; /* "METHOD target" */
    char *bodies[MAX_SEEN];
    size_t nseen;
    pthread_t conns[128];
    size_t nconns;
} fk;

static void fake_answer(struct answer a)
{
    pthread_mutex_lock(&fk.mu);
    assert_true(fk.nanswers < MAX_ANSWERS);
    fk.answers[fk.nanswers++] = a;
    pthread_mutex_unlock(&fk.mu);
}

static void fake_reset(void)
{
    pthread_mutex_lock(&fk.mu);
    fk.nanswers = 0;
    memset(fk.gates, 0, sizeof(fk.gates));
    for (size_t i = 0; i < fk.nseen; i++) {
        free(fk.seen[i]);
        free(fk.bodies[i]);
    }
    fk.nseen = 0;
    pthread_cond_broadcast(&fk.cv);
    pthread_mutex_unlock(&fk.mu);
}

static void fake_open_gate(int g)
{
    pthread_mutex_lock(&fk.mu);
    fk.gates[g] = true;
    pthread_cond_broadcast(&fk.cv);
    pthread_mutex_unlock(&fk.mu);
}

/* How many requests began with `what` ("POST /containers/create"). */
static int fake_count(const char *what)
{
    int n = 0;
    pthread_mutex_lock(&fk.mu);
    for (size_t i = 0; i < fk.nseen; i++)
        n += strncmp(fk.seen[i], what, strlen(what)) == 0;
    pthread_mutex_unlock(&fk.mu);
    return n;
}

/* The target of the last request that began with `what`; caller frees. */
static char *fake_last(const char *what, char **body)
{
    char *out = NULL;
    pthread_mutex_lock(&fk.mu);
    for (size_t i = 0; i < fk.nseen; i++)
        if (strncmp(fk.seen[i], what, strlen(what)) == 0) {
            free(out);
            out = strdup(fk.seen[i]);
            if (body) {
                free(*body);
                *body = strdup(fk.bodies[i] ? fk.bodies[i] : "");
            }
        }
    pthread_mutex_unlock(&fk.mu);
    return out;
}

static bool send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

/* One request at a time per connection; false ends it. */
static bool serve_one(int fd, char *buf, size_t *len, size_t cap)
{
    char *end;
    while (!(end = memmem(buf, *len, "\r\n\r\n", 4))) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = fk.stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
            return false;
        ssize_t n = read(fd, buf + *len, cap - *len - 1);
        if (n <= 0)
            return false;
        *len += (size_t)n;
    }
    size_t hlen = (size_t)(end - buf) + 4;
    char method[16] = "", target[1024] = "";
    sscanf(buf, "%15s %1023s", method, target);
    long clen = 0;
    char *cl = strcasestr(buf, "\r\nContent-Length:");
    if (cl && cl < end)
        clen = atol(cl + 17);
    while (*len < hlen + (size_t)clen) {
        ssize_t n = read(fd, buf + *len, cap - *len - 1);
        if (n <= 0)
            return false;
        *len += (size_t)n;
    }
    char *body = strndup(buf + hlen, (size_t)clen);
    memmove(buf, buf + hlen + clen, *len - hlen - (size_t)clen);
    *len -= hlen + (size_t)clen;
    const char *t = strncmp(target, "/v1.41", 6) == 0 ? target + 6 : target;
    pthread_mutex_lock(&fk.mu);
    if (fk.nseen < MAX_SEEN) {
        char what[1100];
        snprintf(what, sizeof(what), "%s %s", method, t);
        fk.seen[fk.nseen] = strdup(what);
        fk.bodies[fk.nseen++] = strdup(body);
    }
    free(body);
    struct answer *a = NULL;
    for (size_t i = 0; i < fk.nanswers && !a; i++) {
        struct answer *c = &fk.answers[i];
        if (strcmp(c->method, method) == 0 &&
            strncmp(t, c->prefix, strlen(c->prefix)) == 0 &&
            (!c->times || c->used < c->times))
            a = c;
    }
    struct answer copy = {.status = 404,
                          .body = "{\"message\":\"no answer scripted\"}"};
    if (a) {
        a->used++;
        copy = *a;
        while (copy.gate && !fk.gates[copy.gate])
            pthread_cond_wait(&fk.cv, &fk.mu);
    }
    pthread_mutex_unlock(&fk.mu);
    char head[512];
    if (copy.raw) {
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 %d X\r\nContent-Type: "
                         "application/vnd.docker.multiplexed-stream\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n",
                         copy.status);
        char ch[32];
        int k = snprintf(ch, sizeof(ch), "%zx\r\n", copy.rawlen);
        if (!send_all(fd, head, (size_t)n) ||
            (copy.rawlen && (!send_all(fd, ch, (size_t)k) ||
                             !send_all(fd, copy.raw, copy.rawlen) ||
                             !send_all(fd, "\r\n", 2))))
            return false;
        if (copy.cut)
            return false;
        return send_all(fd, "0\r\n\r\n", 5);
    }
    size_t blen = copy.body ? strlen(copy.body) : 0;
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     copy.status, blen);
    return send_all(fd, head, (size_t)n) &&
           (!blen || send_all(fd, copy.body, blen));
}

static void *conn_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *buf = malloc(1 << 20);
    size_t len = 0;
    while (serve_one(fd, buf, &len, 1 << 20))
        ;
    free(buf);
    close(fd);
    return NULL;
}

static void *accept_thread(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = fk.lfd, .events = POLLIN},
                              {.fd = fk.stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
            return NULL;
        int fd = accept4(fk.lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&fk.mu);
        if (fk.nconns < NC_ARRAY_LEN(fk.conns) &&
            pthread_create(&fk.conns[fk.nconns], NULL, conn_thread,
                           (void *)(intptr_t)fd) == 0)
            fk.nconns++;
        else
            close(fd);
        pthread_mutex_unlock(&fk.mu);
    }
}

static void fake_listen(void)
{
    fk.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, fk.sock, strlen(fk.sock) + 1); /* short: /tmp/... */
    unlink(fk.sock);
    assert_int_equal(bind(fk.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fk.lfd, 64), 0);
}

static void fake_start(void)
{
    snprintf(fk.dir, sizeof(fk.dir), "/tmp/nc-dkdrv-XXXXXX");
    assert_non_null(mkdtemp(fk.dir));
    snprintf(fk.sock, sizeof(fk.sock), "%s/docker.sock", fk.dir);
    snprintf(fk.endpoint, sizeof(fk.endpoint), "unix://%s", fk.sock);
    pthread_mutex_init(&fk.mu, NULL);
    pthread_cond_init(&fk.cv, NULL);
    assert_int_equal(pipe(fk.stop), 0);
    fake_listen();
    pthread_create(&fk.acceptor, NULL, accept_thread, NULL);
}

static void fake_stop(void)
{
    if (write(fk.stop[1], "x", 1) != 1)
        fail();
    pthread_mutex_lock(&fk.mu);
    for (int g = 0; g < 16; g++)
        fk.gates[g] = true;
    pthread_cond_broadcast(&fk.cv);
    pthread_mutex_unlock(&fk.mu);
    pthread_join(fk.acceptor, NULL);
    for (size_t i = 0; i < fk.nconns; i++)
        pthread_join(fk.conns[i], NULL);
    close(fk.lfd);
    fake_reset();
    unlink(fk.sock);
}

/* ---- the driver under test ----------------------------------------------- */

static uv_loop_t loop;
static struct agent_config cfg;
static struct node node;
static struct driver_env env;
static char alloc_root[128];
static int exited_n, started_n;
static struct driver_exit last_exit;
static char last_failure[1024];
static char events[4096];

static void on_exited(struct alloc_task *t, const struct driver_exit *res)
{
    exited_n++;
    last_exit = *res;
    snprintf(last_failure, sizeof(last_failure), "%s",
             res->failure ? res->failure : "");
    last_exit.failure = NULL;
    t->starting = false;
}

static void on_started(struct alloc_task *t)
{
    started_n++;
    t->starting = false;
}

static void on_event(struct alloc_task *t, const char *type, const char *msg)
{
    size_t n = strlen(events);
    snprintf(events + n, sizeof(events) - n, "%s: %s\n", type, msg);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until cond() or ms passed. */
static bool run_until(bool (*cond)(void), int ms)
{
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    uint64_t end = uv_now(&loop) + (uint64_t)ms;
    bool ok;
    while (!(ok = cond()) && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

static bool is_started(void)
{
    return started_n > 0;
}
static bool is_exited(void)
{
    return exited_n > 0;
}

static const char *job_src = "job \"j\" {\n"
                             "  group \"g\" {\n"
                             "    task \"web\" {\n"
                             "      driver = \"docker\"\n"
                             "      config {\n"
                             "        image   = \"%s\"\n"
                             "        command = \"/bin/sh\"\n"
                             "        args    = [\"-c\", \"echo hi\"]\n"
                             "      }\n"
                             "      kill_timeout = \"2s\"\n"
                             "      %s\n"
                             "    }\n"
                             "  }\n"
                             "}\n";

static const char *ALLOC_ID = "0b5a2c1e-4d3f-4e6a-9b7c-1a2b3c4d5e6f";

static struct alloc *make_alloc(const char *image, const char *extra)
{
    char src[2048];
    snprintf(src, sizeof(src), job_src, image, extra ? extra : "");
    struct job *job = NULL;
    struct nc_error err = {0};
    assert_int_equal(jobspec_parse_hcl("t.nomad", src, strlen(src), &job, &err),
                     0);
    struct alloc *a = xcalloc(1, sizeof(*a));
    a->id = xstrdup(ALLOC_ID);
    a->name = xstrdup("j.g[0]");
    a->job_id = xstrdup("j");
    a->group = xstrdup("g");
    a->namespace = xstrdup("default");
    a->desired_status = xstrdup("run");
    a->client_status = xstrdup("pending");
    a->network_mode = xstrdup("host");
    a->job = job;
    a->ntasks = 1;
    a->tasks = xcalloc(1, sizeof(*a->tasks));
    a->tasks[0].name = xstrdup("web");
    a->tasks[0].state = xstrdup("pending");
    a->tasks[0].alloc = a;
    char *dir = xasprintf("%s/%s/web/local", alloc_root, ALLOC_ID);
    nc_mkdir_p(dir, 0755);
    free(dir);
    dir = xasprintf("%s/%s/alloc/logs", alloc_root, ALLOC_ID);
    nc_mkdir_p(dir, 0755);
    free(dir);
    return a;
}

static void free_alloc(struct alloc *a)
{
    docker_detach(&a->tasks[0]);
    alloc_free(a);
    char *cmd = xasprintf("rm -rf %s/%s", alloc_root, ALLOC_ID);
    if (system(cmd) != 0)
        fail();
    free(cmd);
}

static int setup(void **state)
{
    (void)state;
    fake_start();
    uv_loop_init(&loop);
    memset(&cfg, 0, sizeof(cfg));
    docker_config_defaults(&cfg, false);
    free(cfg.client.docker.endpoint);
    cfg.client.docker.endpoint = xstrdup(fk.endpoint);
    free(cfg.client.docker.infra_image);
    cfg.client.docker.infra_image = xstrdup("nctest/pause:1");
    cfg.client.docker.gc.image_delay_ns = 0;
    snprintf(alloc_root, sizeof(alloc_root), "%s/alloc", fk.dir);
    nc_mkdir_p(alloc_root, 0755);
    memset(&node, 0, sizeof(node));
    kv_set(&node.attributes, "unique.network.ip-address", "127.0.0.1");
    env = (struct driver_env){.loop = &loop,
                              .cfg = &cfg,
                              .node = &node,
                              .alloc_root = alloc_root,
                              .exited = on_exited,
                              .started = on_started,
                              .event = on_event};
    struct nc_error err = {0};
    assert_int_equal(docker_driver_setup(&loop, &cfg, &err), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    docker_driver_stop();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    fake_stop();
    drivers_config_free(&cfg);
    node_free(&node);
    char *cmd = xasprintf("rm -rf %s", fk.dir);
    if (system(cmd) != 0)
        fail();
    free(cmd);
    return 0;
}

static void reset_case(void)
{
    fake_reset();
    exited_n = started_n = 0;
    memset(&last_exit, 0, sizeof(last_exit));
    last_failure[0] = events[0] = '\0';
}

/* A frame of the multiplexed log stream with its timestamp. */
static size_t frame(unsigned char *out, int stream, const char *ts,
                    const char *text)
{
    size_t n = strlen(ts) + 1 + strlen(text);
    out[0] = (unsigned char)stream;
    out[1] = out[2] = out[3] = 0;
    out[4] = (unsigned char)(n >> 24);
    out[5] = (unsigned char)(n >> 16);
    out[6] = (unsigned char)(n >> 8);
    out[7] = (unsigned char)n;
    sprintf((char *)out + 8, "%s %s", ts, text);
    return 8 + n;
}

static char *read_log(const char *stream)
{
    char *p =
        xasprintf("%s/%s/alloc/logs/web.%s.0", alloc_root, ALLOC_ID, stream);
    size_t len;
    char *txt = nc_read_file(p, &len, 0);
    free(p);
    return txt ? txt : xstrdup("");
}

static char running_json[512];

static void script_running(const char *id)
{
    snprintf(running_json, sizeof(running_json),
             "{\"Id\":\"%s\",\"State\":{\"Running\":true,\"Pid\":%d},"
             "\"Config\":{\"Tty\":false,\"Labels\":{\"" DOCKER_LABEL_ALLOC_ID
             "\":\"%s\"}}}",
             id, (int)getpid(), ALLOC_ID);
}

/* ---- the cases -------------------------------------------------------------
 */

static unsigned char logs_stream[512];

static void test_start_wait_exit(void **state)
{
    (void)state;
    reset_case();
    script_running("c1");
    size_t n =
        frame(logs_stream, 1, "2026-01-02T03:04:05.000000001Z", "hello\n");
    n += frame(logs_stream + n, 2, "2026-01-02T03:04:05.000000002Z", "oops\n");
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/images/nctest/busybox:1/json",
                                .status = 200,
                                .body = "{\"Id\":\"sha256:img1\"}"});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/create?name=web-",
                                .status = 201,
                                .body = "{\"Id\":\"c1\",\"Warnings\":[]}"});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/c1/start",
                                .status = 204,
                                .body = NULL});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/c1/json",
                                .status = 200,
                                .body = running_json,
                                .times = 1});
    fake_answer(
        (struct answer){.method = "GET",
                        .prefix = "/containers/c1/json",
                        .status = 200,
                        .body = "{\"Id\":\"c1\",\"State\":{\"Running\":false,"
                                "\"ExitCode\":3,\"OOMKilled\":true}}"});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/c1/wait",
                                .status = 200,
                                .body = "{\"StatusCode\":3}",
                                .gate = 1});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/c1/logs",
                                .status = 200,
                                .raw = logs_stream,
                                .rawlen = n});
    fake_answer((struct answer){.method = "DELETE",
                                .prefix = "/containers/c1?force=true",
                                .status = 204,
                                .body = NULL});
    struct alloc *a = make_alloc("nctest/busybox:1", NULL);
    struct alloc_task *t = &a->tasks[0];
    const char *event = NULL;
    struct nc_error err = {0};
    assert_int_equal(docker_start(&env, t, false, &event, &err),
                     DRIVER_STARTING);
    t->starting = true;
    assert_true(run_until(is_started, 5000));
    assert_int_equal(t->supervisor_pid, getpid());
    /* the record is on disk before the start */
    char *rec =
        xasprintf("%s/%s/.nomclient/web.docker.json", alloc_root, ALLOC_ID);
    size_t len;
    char *txt = nc_read_file(rec, &len, 0);
    assert_non_null(txt);
    assert_non_null(strstr(txt, "\"ContainerID\":\"c1\""));
    free(txt);
    assert_string_equal(
        json_string_value(json_object_get(t->driver_state, "ContainerID")),
        "c1");
    /* where the start went: the image, then create, start and inspect,
     * ids put as {id}; EngineUs their sum */
    json_t *tm = json_object_get(t->driver_state, "Timings");
    json_t *calls = json_object_get(tm, "Calls");
    const char *want[] = {"image", "POST /containers/create",
                          "POST /containers/{id}/start",
                          "GET /containers/{id}/json"};
    assert_int_equal(json_array_size(calls), 4);
    json_int_t sum = 0;
    for (size_t i = 0; i < 4; i++) {
        json_t *c = json_array_get(calls, i);
        assert_string_equal(json_string_value(json_object_get(c, "Call")),
                            want[i]);
        sum += json_integer_value(
            json_object_get(c, i ? "Us" : "OnPathUs"));
    }
    assert_int_equal(json_integer_value(json_object_get(tm, "EngineUs")), sum);
    assert_true(json_integer_value(json_object_get(tm, "StartToRunningUs")) >=
                sum);
    assert_true(json_integer_value(json_object_get(tm, "RunningAt")) > 0);
    char *body = NULL;
    char *create = fake_last("POST /containers/create", &body);
    assert_string_equal(
        create,
        "POST "
        "/containers/create?name=web-0b5a2c1e-4d3f-4e6a-9b7c-1a2b3c4d5e6f");
    json_t *cb = json_loads(body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(cb, "Image")),
                        "nctest/busybox:1");
    json_decref(cb);
    free(create);
    free(body);
    assert_int_equal(docker_image_refs("sha256:img1"), 1);
    /* the exit */
    fake_open_gate(1);
    assert_true(run_until(is_exited, 5000));
    assert_true(last_exit.have_status);
    assert_int_equal(last_exit.exit_code, 3);
    assert_true(last_exit.oom_killed);
    assert_string_equal(last_failure, "");
    assert_int_equal(fake_count("DELETE /containers/c1"), 1);
    assert_int_equal(t->supervisor_pid, 0);
    assert_int_equal(docker_image_refs("sha256:img1"), 0);
    char *out = read_log("stdout"), *errs = read_log("stderr");
    assert_string_equal(out, "hello\n");
    assert_string_equal(errs, "oops\n");
    free(out);
    free(errs);
    /* the exit is in the record, for an agent killed before its save */
    txt = nc_read_file(rec, &len, 0);
    assert_non_null(txt);
    assert_non_null(strstr(txt, "\"Exited\":true"));
    free(txt);
    free(rec);
    free_alloc(a);
}

static void test_conflicts(void **state)
{
    (void)state;
    /* ours and running: adopted, not started again */
    reset_case();
    script_running("old");
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/images/",
                                .status = 200,
                                .body = "{\"Id\":\"sha256:i\"}"});
    fake_answer((struct answer){
        .method = "POST",
        .prefix = "/containers/create",
        .status = 409,
        .body = "{\"message\":\"Conflict. The container name is "
                "already in use\"}"});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/web-",
                                .status = 200,
                                .body = running_json});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/old/json",
                                .status = 200,
                                .body = running_json});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/old/wait",
                                .status = 200,
                                .body = "{\"StatusCode\":0}",
                                .gate = 2});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/old/logs",
                                .status = 200,
                                .raw = "",
                                .rawlen = 0});
    struct alloc *a = make_alloc("nctest/busybox:1", NULL);
    struct alloc_task *t = &a->tasks[0];
    const char *event;
    struct nc_error err = {0};
    assert_int_equal(docker_start(&env, t, false, &event, &err),
                     DRIVER_STARTING);
    t->starting = true;
    assert_true(run_until(is_started, 5000));
    assert_int_equal(fake_count("POST /containers/create"), 1);
    assert_int_equal(fake_count("POST /containers/old/start"), 0);
    assert_int_equal(fake_count("DELETE /containers"), 0);
    docker_detach(t);
    free_alloc(a);

    /* ours and dead: removed, made again */
    reset_case();
    script_running("new");
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/images/",
                                .status = 200,
                                .body = "{\"Id\":\"sha256:i\"}"});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/create",
                                .status = 409,
                                .body = "{\"message\":\"Conflict.\"}",
                                .times = 1});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/create",
                                .status = 201,
                                .body = "{\"Id\":\"new\"}"});
    char dead[512];
    snprintf(dead, sizeof(dead),
             "{\"Id\":\"dead\",\"State\":{\"Running\":false},\"Config\":{"
             "\"Labels\":{\"" DOCKER_LABEL_ALLOC_ID "\":\"%s\"}}}",
             ALLOC_ID);
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/web-",
                                .status = 200,
                                .body = dead});
    fake_answer((struct answer){.method = "DELETE",
                                .prefix = "/containers/dead",
                                .status = 204,
                                .body = NULL});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/new/start",
                                .status = 204,
                                .body = NULL});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/new/json",
                                .status = 200,
                                .body = running_json});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/new/wait",
                                .status = 200,
                                .body = "{\"StatusCode\":0}",
                                .gate = 2});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/new/logs",
                                .status = 200,
                                .raw = "",
                                .rawlen = 0});
    a = make_alloc("nctest/busybox:1", NULL);
    t = &a->tasks[0];
    assert_int_equal(docker_start(&env, t, false, &event, &err),
                     DRIVER_STARTING);
    t->starting = true;
    assert_true(run_until(is_started, 5000));
    assert_int_equal(fake_count("POST /containers/create"), 2);
    assert_int_equal(fake_count("DELETE /containers/dead"), 1);
    assert_int_equal(fake_count("POST /containers/new/start"), 1);
    docker_detach(t);
    free_alloc(a);

    /* someone else's: refused, nothing removed */
    reset_case();
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/images/",
                                .status = 200,
                                .body = "{\"Id\":\"sha256:i\"}"});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/create",
                                .status = 409,
                                .body = "{\"message\":\"Conflict.\"}"});
    fake_answer(
        (struct answer){.method = "GET",
                        .prefix = "/containers/web-",
                        .status = 200,
                        .body = "{\"Id\":\"x\",\"State\":{\"Running\":true},"
                                "\"Config\":{\"Labels\":{}}}"});
    a = make_alloc("nctest/busybox:1", NULL);
    t = &a->tasks[0];
    assert_int_equal(docker_start(&env, t, false, &event, &err),
                     DRIVER_STARTING);
    t->starting = true;
    assert_true(run_until(is_exited, 5000));
    assert_non_null(strstr(last_failure, "is taken by a container that is not "
                                         "this allocation's"));
    assert_int_equal(fake_count("DELETE /containers"), 0);
    assert_int_equal(started_n, 0);
    free_alloc(a);
}

static void test_wait_again_and_stop(void **state)
{
    (void)state;
    reset_case();
    script_running("w1");
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/images/",
                                .status = 200,
                                .body = "{\"Id\":\"sha256:i\"}"});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/create",
                                .status = 201,
                                .body = "{\"Id\":\"w1\"}"});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/w1/start",
                                .status = 204,
                                .body = NULL});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/w1/json",
                                .status = 200,
                                .body = running_json,
                                .times = 1});
    fake_answer((struct answer){
        .method = "GET",
        .prefix = "/containers/w1/json",
        .status = 200,
        .body = "{\"State\":{\"Running\":false,\"ExitCode\":143}}"});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/w1/wait",
                                .status = 500,
                                .body = "{\"message\":\"daemon hiccup\"}",
                                .times = 2});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/w1/wait",
                                .status = 200,
                                .body = "{\"StatusCode\":143}",
                                .gate = 3});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/w1/stop",
                                .status = 204,
                                .body = NULL});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/w1/logs",
                                .status = 200,
                                .raw = "",
                                .rawlen = 0});
    fake_answer((struct answer){.method = "DELETE",
                                .prefix = "/containers/w1",
                                .status = 204,
                                .body = NULL});
    struct alloc *a = make_alloc("nctest/busybox:1", NULL);
    struct alloc_task *t = &a->tasks[0];
    const char *event;
    struct nc_error err = {0};
    assert_int_equal(docker_start(&env, t, false, &event, &err),
                     DRIVER_STARTING);
    t->starting = true;
    assert_true(run_until(is_started, 5000));
    /* no kill_signal: the daemon's stop with the kill timeout */
    docker_stop(t);
    fake_open_gate(3);
    assert_true(run_until(is_exited, 8000));
    assert_int_equal(fake_count("POST /containers/w1/wait"), 3);
    char *stop = fake_last("POST /containers/w1/stop", NULL);
    assert_string_equal(stop, "POST /containers/w1/stop?t=2");
    free(stop);
    assert_int_equal(last_exit.exit_code, 143);
    free_alloc(a);
}

static void test_stop_during_create(void **state)
{
    (void)state;
    reset_case();
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/images/",
                                .status = 200,
                                .body = "{\"Id\":\"sha256:i\"}"});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/create",
                                .status = 201,
                                .body = "{\"Id\":\"made\"}",
                                .gate = 4});
    fake_answer((struct answer){.method = "DELETE",
                                .prefix = "/containers/made",
                                .status = 204,
                                .body = NULL});
    struct alloc *a = make_alloc("nctest/busybox:1", NULL);
    struct alloc_task *t = &a->tasks[0];
    const char *event;
    struct nc_error err = {0};
    assert_int_equal(docker_start(&env, t, false, &event, &err),
                     DRIVER_STARTING);
    t->starting = true;
    run_until(is_exited, 300); /* the create is held */
    docker_stop(t);
    fake_open_gate(4);
    assert_true(run_until(is_exited, 5000));
    assert_int_equal(fake_count("DELETE /containers/made"), 1);
    assert_int_equal(fake_count("POST /containers/made/start"), 0);
    assert_int_equal(started_n, 0);
    free_alloc(a);
}

static void test_pull_fails_local_image(void **state)
{
    (void)state;
    reset_case();
    script_running("p1");
    static const char pull_error[] =
        "{\"status\":\"Pulling from x\"}\n"
        "{\"errorDetail\":{\"message\":\"dial tcp 127.0.0.1:1: connect: "
        "connection refused\"},\"error\":\"dial tcp\"}\n";
    fake_answer((struct answer){
        .method = "POST",
        .prefix = "/images/create?fromImage=127.0.0.1%3A1%2Fx&tag=latest",
        .status = 200,
        .raw = pull_error,
        .rawlen = sizeof(pull_error) - 1});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/images/127.0.0.1:1/x:latest/json",
                                .status = 200,
                                .body = "{\"Id\":\"sha256:local\"}"});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/create",
                                .status = 201,
                                .body = "{\"Id\":\"p1\"}"});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/p1/start",
                                .status = 204,
                                .body = NULL});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/p1/json",
                                .status = 200,
                                .body = running_json});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/p1/wait",
                                .status = 200,
                                .body = "{\"StatusCode\":0}",
                                .gate = 5});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/p1/logs",
                                .status = 200,
                                .raw = "",
                                .rawlen = 0});
    struct alloc *a = make_alloc("127.0.0.1:1/x:latest", NULL);
    struct alloc_task *t = &a->tasks[0];
    const char *event;
    struct nc_error err = {0};
    assert_int_equal(docker_start(&env, t, false, &event, &err),
                     DRIVER_STARTING);
    t->starting = true;
    assert_true(run_until(is_started, 5000));
    assert_non_null(strstr(events, "Driver: Downloading image\n"));
    assert_non_null(strstr(events,
                           "Driver: Failed to pull `127.0.0.1:1/x:latest`: "
                           "dial tcp 127.0.0.1:1: connect: connection "
                           "refused; using the local image\n"));
    /* no local image: the task fails with the pull's words */
    docker_detach(t);
    free_alloc(a);
    reset_case();
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/images/create",
                                .status = 200,
                                .raw = pull_error,
                                .rawlen = sizeof(pull_error) - 1});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/images/",
                                .status = 404,
                                .body = "{\"message\":\"No such image\"}"});
    a = make_alloc("127.0.0.1:1/x:latest", NULL);
    t = &a->tasks[0];
    assert_int_equal(docker_start(&env, t, false, &event, &err),
                     DRIVER_STARTING);
    t->starting = true;
    assert_true(run_until(is_exited, 5000));
    assert_string_equal(last_failure,
                        "Failed to pull `127.0.0.1:1/x:latest`: dial "
                        "tcp 127.0.0.1:1: connect: connection refused");
    assert_int_equal(fake_count("POST /containers/create"), 0);
    free_alloc(a);
}

static void test_garbage_answer(void **state)
{
    (void)state;
    reset_case();
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/images/",
                                .status = 200,
                                .body = "{\"Id\":\"sha256:i\"}"});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/create",
                                .status = 500,
                                .body = "<html>no</html>"});
    struct alloc *a = make_alloc("nctest/busybox:1", NULL);
    struct alloc_task *t = &a->tasks[0];
    const char *event;
    struct nc_error err = {0};
    assert_int_equal(docker_start(&env, t, false, &event, &err),
                     DRIVER_STARTING);
    t->starting = true;
    assert_true(run_until(is_exited, 10000));
    assert_true(
        nc_str_has_prefix(last_failure, "failed to create container: "));
    /* a 500 is worth trying again, a few times */
    assert_true(fake_count("POST /containers/create") > 1);
    free_alloc(a);
}

static unsigned char cut1[256], cut2[256];

static void test_logs_cut_and_followed_again(void **state)
{
    (void)state;
    reset_case();
    script_running("l1");
    /* the first stream: one message whole, the next cut inside its frame */
    size_t n1 = frame(cut1, 1, "2026-01-02T03:04:05.100000000Z", "one\n");
    size_t full2 =
        frame(cut1 + n1, 1, "2026-01-02T03:04:05.200000000Z", "two\n");
    size_t len1 = n1 + full2 / 2;
    /* the second, from the first's last timestamp: it again (dropped),
     * then the rest */
    size_t n2 = frame(cut2, 1, "2026-01-02T03:04:05.100000000Z", "one\n");
    n2 += frame(cut2 + n2, 1, "2026-01-02T03:04:05.200000000Z", "two\n");
    n2 += frame(cut2 + n2, 2, "2026-01-02T03:04:05.300000000Z", "three\n");
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/images/",
                                .status = 200,
                                .body = "{\"Id\":\"sha256:i\"}"});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/create",
                                .status = 201,
                                .body = "{\"Id\":\"l1\"}"});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/l1/start",
                                .status = 204,
                                .body = NULL});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/l1/json",
                                .status = 200,
                                .body = running_json});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/l1/wait",
                                .status = 200,
                                .body = "{\"StatusCode\":0}",
                                .gate = 6});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/l1/logs",
                                .status = 200,
                                .raw = cut1,
                                .rawlen = len1,
                                .cut = true,
                                .times = 1});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/l1/logs",
                                .status = 200,
                                .raw = cut2,
                                .rawlen = n2});
    struct alloc *a = make_alloc("nctest/busybox:1", NULL);
    struct alloc_task *t = &a->tasks[0];
    const char *event;
    struct nc_error err = {0};
    assert_int_equal(docker_start(&env, t, false, &event, &err),
                     DRIVER_STARTING);
    t->starting = true;
    assert_true(run_until(is_started, 5000));
    struct docker_task *h = t->handle;
    for (int i = 0; i < 400 && !docker_logs_done(h->logs); i++)
        run_until(is_exited, 10);
    assert_true(docker_logs_done(h->logs));
    assert_int_equal(fake_count("GET /containers/l1/logs"), 2);
    char *second = fake_last("GET /containers/l1/logs", NULL);
    /* 2026-01-02T03:04:05.1Z */
    assert_non_null(strstr(second, "&since=1767323045.100000000"));
    free(second);
    char *out = read_log("stdout"), *errs = read_log("stderr");
    assert_string_equal(out, "one\ntwo\n");
    assert_string_equal(errs, "three\n");
    free(out);
    free(errs);
    free_alloc(a);
}

static void test_recover(void **state)
{
    (void)state;
    reset_case();
    script_running("r1");
    struct alloc *a = make_alloc("nctest/busybox:1", NULL);
    struct alloc_task *t = &a->tasks[0];
    free(t->state);
    t->state = xstrdup("running");
    /* the record a previous agent left: this process stands for the
     * container's (alive, same start time) */
    char *dir = xasprintf("%s/%s/.nomclient", alloc_root, ALLOC_ID);
    nc_mkdir_p(dir, 0700);
    char *rec = xasprintf("%s/web.docker.json", dir);
    char *txt = xasprintf("{\"ContainerID\":\"r1\",\"Name\":\"web-%s\","
                          "\"Image\":\"nctest/busybox:1\",\"ImageID\":"
                          "\"sha256:ri\",\"Pid\":%d,\"PidStart\":%llu}",
                          ALLOC_ID, (int)getpid(),
                          (unsigned long long)docker_pid_start_time(getpid()));
    assert_int_equal(nc_write_file_replace(rec, txt, strlen(txt), 0600), 0);
    free(txt);
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/r1/json",
                                .status = 200,
                                .body = running_json,
                                .times = 1});
    fake_answer((struct answer){
        .method = "GET",
        .prefix = "/containers/r1/json",
        .status = 200,
        .body = "{\"State\":{\"Running\":false,\"ExitCode\":7}}"});
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/r1/wait",
                                .status = 200,
                                .body = "{\"StatusCode\":7}",
                                .gate = 7});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/r1/logs",
                                .status = 200,
                                .raw = "",
                                .rawlen = 0});
    fake_answer((struct answer){.method = "DELETE",
                                .prefix = "/containers/r1",
                                .status = 204,
                                .body = NULL});
    assert_true(docker_recover(&env, t, true));
    assert_int_equal(t->supervisor_pid, getpid());
    assert_int_equal(docker_image_refs("sha256:ri"), 1);
    for (int i = 0; i < 200 && !fake_count("POST /containers/r1/wait"); i++)
        run_until(is_exited, 10);
    assert_int_equal(fake_count("POST /containers/r1/wait"), 1);
    assert_int_equal(fake_count("POST /containers/create"), 0);
    fake_open_gate(7);
    assert_true(run_until(is_exited, 5000));
    assert_int_equal(last_exit.exit_code, 7);
    docker_detach(t);

    /* a dead pid of a task that ran: its end comes from an inspect */
    reset_case();
    txt = xasprintf("{\"ContainerID\":\"r2\",\"Pid\":%d,\"PidStart\":1}",
                    (int)getpid());
    assert_int_equal(nc_write_file_replace(rec, txt, strlen(txt), 0600), 0);
    free(txt);
    fake_answer(
        (struct answer){.method = "GET",
                        .prefix = "/containers/r2/json",
                        .status = 200,
                        .body = "{\"Id\":\"r2\",\"State\":{\"Running\":false,"
                                "\"ExitCode\":9,\"OOMKilled\":false}}"});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/r2/logs",
                                .status = 200,
                                .raw = "",
                                .rawlen = 0});
    fake_answer((struct answer){.method = "DELETE",
                                .prefix = "/containers/r2",
                                .status = 204,
                                .body = NULL});
    t->supervisor_pid = 0;
    assert_false(docker_recover(&env, t, true));
    assert_true(t->starting); /* active until its end is told */
    assert_true(run_until(is_exited, 5000));
    assert_int_equal(last_exit.exit_code, 9);
    assert_int_equal(fake_count("DELETE /containers/r2"), 1);
    assert_int_equal(fake_count("POST /containers/create"), 0);
    free(rec);
    free(dir);
    free_alloc(a);
}

static int net_pid = -1;
static char net_error[512];

static void on_net_done(struct alloc *a, int pid, const char *error)
{
    (void)a;
    net_pid = pid;
    snprintf(net_error, sizeof(net_error), "%s", error ? error : "");
}

static bool net_reported(void)
{
    return net_pid >= 0;
}
static bool pause_removed(void)
{
    return fake_count("DELETE /containers/pz") > 0;
}

static void test_pause_container(void **state)
{
    (void)state;
    reset_case();
    net_pid = -1;
    char created[512], running[512];
    snprintf(created, sizeof(created),
             "{\"Id\":\"pz\",\"State\":{\"Running\":false,\"Status\":"
             "\"created\"},\"Config\":{\"Labels\":{\"" DOCKER_LABEL_ALLOC_ID
             "\":\"%s\"}}}",
             ALLOC_ID);
    snprintf(running, sizeof(running),
             "{\"Id\":\"pz\",\"State\":{\"Running\":true,\"Pid\":%d}}",
             (int)getpid());
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/images/nctest/pause:1/json",
                                .status = 200,
                                .body = "{\"Id\":\"sha256:pause\"}"});
    /* an earlier agent made it and died before starting it */
    fake_answer((struct answer){.method = "POST",
                                .prefix = "/containers/create?name=nomad_init_",
                                .status = 409,
                                .body = "{\"message\":\"Conflict.\"}"});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/nomad_init_",
                                .status = 200,
                                .body = created});
    fake_answer((struct answer){
        .method = "POST", .prefix = "/containers/pz/start", .status = 204});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/pz/json",
                                .status = 200,
                                .body = running});
    fake_answer((struct answer){
        .method = "DELETE", .prefix = "/containers/pz", .status = 204});
    struct alloc *a = make_alloc("nctest/busybox:1", NULL);
    free(a->network_mode);
    a->network_mode = xstrdup("bridge");
    struct nc_error err = {0};
    assert_int_equal(docker_net_create(&env, a, on_net_done, &err), 0);
    assert_true(run_until(net_reported, 5000));
    assert_string_equal(net_error, "");
    assert_int_equal(net_pid, getpid());
    assert_int_equal(fake_count("POST /containers/create"), 1);
    assert_int_equal(fake_count("DELETE"), 0);
    char *body = NULL;
    char *create = fake_last("POST /containers/create", &body);
    json_t *cb = json_loads(body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(cb, "HostConfig"), "NetworkMode")),
                        "none");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(cb, "Labels"),
                                          DOCKER_LABEL_ALLOC_ID)),
        ALLOC_ID);
    json_decref(cb);
    free(body);
    free(create);
    assert_string_equal(
        json_string_value(json_object_get(a->net_driver, "ContainerID")), "pz");
    /* the image (and its inspect) first; start and inspect last */
    json_t *ptm = json_object_get(a->net_driver, "Timings");
    json_t *pcalls = json_object_get(ptm, "Calls");
    size_t np = json_array_size(pcalls);
    assert_true(np >= 4);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(pcalls, np - 2), "Call")),
                        "POST /containers/{id}/start");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(pcalls, np - 1), "Call")),
                        "GET /containers/{id}/json");
    assert_true(json_integer_value(json_object_get(ptm, "TotalUs")) >=
                json_integer_value(json_object_get(ptm, "EngineUs")));
    assert_true(docker_net_tracked("pz"));
    assert_string_equal(docker_net_pause_id(a), "pz");
    assert_int_equal(docker_image_refs("sha256:pause"), 1);
    /* a second agent's view (the record alone): adopted, kept */
    docker_net_close();
    assert_false(docker_net_tracked("pz"));
    docker_net_adopt(a);
    assert_true(docker_net_tracked("pz"));
    /* after the teardown it goes */
    docker_net_destroy(&env, a);
    assert_null(a->net_driver);
    assert_true(run_until(pause_removed, 5000));
    run_until(is_exited, 50);
    assert_false(docker_net_tracked("pz"));
    free_alloc(a);
}

static char listing[2048];
static bool reaped(void)
{
    return fake_count("DELETE") > 0;
}

static void test_reaper(void **state)
{
    (void)state;
    reset_case();
    long now = (long)time(NULL);
    snprintf(listing, sizeof(listing),
             "[{\"Id\":\"old\",\"Names\":[\"/web-%s\"],\"Created\":%ld,"
             "\"State\":\"running\",\"Labels\":{\"" DOCKER_LABEL_ALLOC_ID
             "\":\"%s\"}},"
             "{\"Id\":\"young\",\"Names\":[\"/web-%s\"],\"Created\":%ld,"
             "\"State\":\"running\",\"Labels\":{\"" DOCKER_LABEL_ALLOC_ID
             "\":\"%s\"}},"
             "{\"Id\":\"theirs\",\"Names\":[\"/db\"],\"Created\":%ld,"
             "\"State\":\"running\",\"Labels\":{}}]",
             ALLOC_ID, now - 3600, ALLOC_ID, ALLOC_ID, now + 3600, ALLOC_ID,
             now - 3600);
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/containers/json?all=1&filters=",
                                .status = 200,
                                .body = listing,
                                .times = 1});
    fake_answer((struct answer){.method = "DELETE",
                                .prefix = "/containers/old",
                                .status = 204,
                                .body = NULL});
    docker_driver_state.set.dangling_enabled = true;
    docker_driver_state.set.dangling_period_ns = 20000000;
    docker_driver_state.set.dangling_grace_ns = 1000000000LL;
    docker_reaper_start();
    assert_true(run_until(reaped, 5000));
    run_until(is_exited, 100);
    assert_int_equal(fake_count("DELETE /containers/old"), 1);
    assert_int_equal(fake_count("DELETE /containers/young"), 0);
    assert_int_equal(fake_count("DELETE /containers/theirs"), 0);
    docker_reaper_stop();
}

static bool node_unhealthy(void)
{
    const struct node_driver *d = node_driver_find(&node, "docker");
    return d && !d->healthy;
}

static bool node_healthy(void)
{
    const struct node_driver *d = node_driver_find(&node, "docker");
    return d && d->healthy &&
           kv_get(&node.attributes, "driver.docker.version") != NULL;
}

static void test_fingerprint_health(void **state)
{
    (void)state;
    reset_case();
    fake_answer((struct answer){
        .method = "GET",
        .prefix = "/version",
        .status = 200,
        .body = "{\"Version\":\"20.10.24\",\"ApiVersion\":\"1.41\"}"});
    fake_answer((struct answer){
        .method = "GET",
        .prefix = "/info",
        .status = 200,
        .body = "{\"OSType\":\"linux\",\"Runtimes\":{\"runc\":{},"
                "\"io.containerd.runc.v2\":{}}}"});
    fake_answer((struct answer){.method = "GET",
                                .prefix = "/networks/bridge",
                                .status = 200,
                                .body = "{\"IPAM\":{\"Config\":[{\"Gateway\":"
                                        "\"172.17.0.1\"}]}}"});
    drivers_fingerprint(&cfg, &node);
    const struct node_driver *d = node_driver_find(&node, "docker");
    assert_non_null(d);
    assert_true(d->detected && d->healthy); /* the socket accepts */
    docker_driver_start(&loop, &cfg, &node);
    assert_true(run_until(node_healthy, 5000));
    assert_string_equal(kv_get(&node.attributes, "driver.docker.version"),
                        "20.10.24");
    assert_string_equal(kv_get(&node.attributes, "driver.docker.runtimes"),
                        "io.containerd.runc.v2,runc");
    assert_string_equal(kv_get(&node.attributes, "driver.docker.bridge_ip"),
                        "172.17.0.1");
    assert_string_equal(kv_get(&node.attributes, "driver.docker.os_type"),
                        "linux");
    assert_null(node.events); /* no change of health yet */
    /* the daemon goes: a call notices, the fingerprint says so */
    char *away = xasprintf("%s.away", fk.sock);
    assert_int_equal(rename(fk.sock, away), 0);
    struct docker_reply gone = {.status = 0, .error = "connection refused"};
    docker_driver_saw(&gone);
    assert_true(run_until(node_unhealthy, 5000));
    d = node_driver_find(&node, "docker");
    assert_true(d->detected); /* seen before: unhealthy, not undetected */
    assert_string_equal(d->health_description,
                        "Failed to connect to docker daemon");
    json_t *ev = json_array_get(node.events, json_array_size(node.events) - 1);
    assert_string_equal(json_string_value(json_object_get(ev, "Subsystem")),
                        "Driver");
    assert_string_equal(json_string_value(json_object_get(ev, "Message")),
                        "Failed to connect to docker daemon");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(ev, "Details"), "driver")),
                        "docker");
    /* and comes back */
    assert_int_equal(rename(away, fk.sock), 0);
    free(away);
    struct docker_reply back = {.status = 200};
    docker_driver_saw(&back);
    assert_true(run_until(node_healthy, 5000));
    assert_int_equal(json_array_size(node.events), 2);
    ev = json_array_get(node.events, 1);
    assert_string_equal(json_string_value(json_object_get(ev, "Message")),
                        "Healthy");
}

/* ---- the pure parts -------------------------------------------------------
 */

static char parsed[3][512];

static void on_parsed(void *arg, int stream, const char *p, size_t n)
{
    (void)arg;
    size_t have = strlen(parsed[stream - 1]);
    assert_true(have + n < sizeof(parsed[0]));
    memcpy(parsed[stream - 1] + have, p, n);
    parsed[stream - 1][have + n] = '\0';
}

static void test_log_parser(void **state)
{
    (void)state;
    unsigned char s[512];
    size_t n = frame(s, 1, "2026-01-02T03:04:05.000000001Z", "first\n");
    n += frame(s + n, 2, "2026-01-02T03:04:05.000000002Z", "err\n");
    n += frame(s + n, 1, "2026-01-02T03:04:05.000000003Z", "part");
    n += frame(s + n, 1, "2026-01-02T03:04:05.000000004Z", "ial\n");
    s[n] = 3; /* the daemon's own words */
    memset(s + n + 1, 0, 6);
    s[n + 7] = 4;
    memcpy(s + n + 8, "bad!", 4);
    n += 12;
    for (size_t split = 0; split <= n; split++) {
        memset(parsed, 0, sizeof(parsed));
        struct docker_log_parser p;
        docker_log_parser_init(&p, false, 0, on_parsed, NULL);
        assert_int_equal(docker_log_parser_feed(&p, (char *)s, split), 0);
        assert_int_equal(
            docker_log_parser_feed(&p, (char *)s + split, n - split), 0);
        assert_string_equal(parsed[0], "first\npartial\n");
        assert_string_equal(parsed[1], "err\n");
        assert_string_equal(parsed[2], "bad!");
        assert_true(p.last_ts == 1767323045000000004LL);
    }
    /* since: what was written before is dropped, what came after kept */
    memset(parsed, 0, sizeof(parsed));
    struct docker_log_parser p;
    docker_log_parser_init(&p, false, 1767323045000000002LL, on_parsed, NULL);
    assert_int_equal(docker_log_parser_feed(&p, (char *)s, n), 0);
    assert_string_equal(parsed[0], "partial\n");
    assert_string_equal(parsed[1], "");
    /* a tty's raw stream: one timestamp per line */
    const char *tty = "2026-01-02T03:04:05.000000001Z a\r\n"
                      "2026-01-02T03:04:05.000000002Z b\n";
    for (size_t split = 0; split <= strlen(tty); split++) {
        memset(parsed, 0, sizeof(parsed));
        docker_log_parser_init(&p, true, 0, on_parsed, NULL);
        docker_log_parser_feed(&p, tty, split);
        docker_log_parser_feed(&p, tty + split, strlen(tty) - split);
        assert_string_equal(parsed[0], "a\r\nb\n");
    }
    /* not a multiplexed stream */
    docker_log_parser_init(&p, false, 0, on_parsed, NULL);
    assert_int_equal(docker_log_parser_feed(&p, "HTTP/1.1 200", 12), -EPROTO);
    assert_int_equal(docker_log_parser_feed(&p, "x", 1), -EPROTO);
}

static void test_logfile_rotation(void **state)
{
    (void)state;
    char dir[] = "/tmp/nc-logfile-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct logfile l;
    assert_int_equal(logfile_open(&l, dir, "t", "stdout", 3, 10), 0);
    for (int i = 0; i < 10; i++)
        logfile_write(&l, "0123456", 7); /* 70 bytes: 7 files of 10 */
    logfile_close(&l);
    int present = 0;
    for (int i = 0; i < 10; i++) {
        char *p = xasprintf("%s/t.stdout.%d", dir, i);
        struct stat st;
        if (stat(p, &st) == 0) {
            present++;
            assert_true(st.st_size <= 10);
        }
        free(p);
    }
    assert_int_equal(present, 3);
    /* a reopened stream goes on after the highest index */
    assert_int_equal(logfile_open(&l, dir, "t", "stdout", 3, 10), 0);
    assert_int_equal(l.index, 6);
    logfile_close(&l);
    char *cmd = xasprintf("rm -rf %s", dir);
    if (system(cmd) != 0)
        fail();
    free(cmd);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_log_parser),
        cmocka_unit_test(test_logfile_rotation),
    };
    const struct CMUnitTest engine[] = {
        cmocka_unit_test(test_start_wait_exit),
        cmocka_unit_test(test_conflicts),
        cmocka_unit_test(test_wait_again_and_stop),
        cmocka_unit_test(test_stop_during_create),
        cmocka_unit_test(test_pull_fails_local_image),
        cmocka_unit_test(test_garbage_answer),
        cmocka_unit_test(test_logs_cut_and_followed_again),
        cmocka_unit_test(test_recover),
        cmocka_unit_test(test_pause_container),
        cmocka_unit_test(test_reaper),
        cmocka_unit_test(test_fingerprint_health),
    };
    int r = cmocka_run_group_tests(pure, NULL, NULL);
    return r | cmocka_run_group_tests(engine, setup, teardown);
}
