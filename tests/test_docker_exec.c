// deps: client/drivers/docker_exec.c client/util.c
/* `alloc exec` in a docker task (client/drivers/docker_exec.c) against a
 * real Docker Engine of the test's own: a private dockerd (own socket,
 * data-root, exec-root, pid file, containerd namespace) with a busybox
 * image imported from busybox-static, one running container; output and
 * exit code, stderr apart, stdin through `cat`, a terminal with its size,
 * a paused reader that still gets everything, a cancel that kills the
 * command, and the Engine's refusals in Nomad's words. Skipped unless
 * root with /usr/sbin/dockerd, /usr/bin/docker and /bin/busybox. The
 * daemon is stopped and its files removed at the end. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/drivers/internal.h"

static char dk[64];        /* the daemon's directory */
static char endpoint[128]; /* unix://<dk>/sock */
static char container[80]; /* the running container's ID */
static char stopped[80];   /* a container that is not running */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

static bool read_word(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(out, (int)len, f) != NULL;
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
    return ok && *out;
}

#define DOCKER "/usr/bin/docker -H unix://%s/sock"

static int setup(void **state)
{
    (void)state;
    if (getuid() != 0 || access("/usr/sbin/dockerd", X_OK) != 0 ||
        access("/usr/bin/docker", X_OK) != 0 ||
        access("/bin/busybox", X_OK) != 0)
        return 0; /* the tests skip */
    snprintf(dk, sizeof(dk), "/tmp/nc-dxXXXXXX");
    if (!mkdtemp(dk))
        return -1;
    snprintf(endpoint, sizeof(endpoint), "unix://%s/sock", dk);
    int r = sh("/usr/sbin/dockerd --host unix://%s/sock --data-root %s/root "
               "--exec-root %s/exec --pidfile %s/pid --bridge none "
               "--iptables=false --ip6tables=false --ip-masq=false "
               "--userland-proxy=false --storage-driver vfs "
               "--containerd-namespace ncdx%d --containerd-plugins-namespace "
               "ncdxp%d >%s/log 2>&1 & echo $! >%s/dockerd.pid",
               dk, dk, dk, dk, (int)getpid(), (int)getpid(), dk, dk);
    if (r != 0)
        return -1;
    r = sh("for i in $(seq 200); do " DOCKER
           " version >/dev/null 2>&1 && exit 0; "
           "sleep 0.05; done; exit 1",
           dk);
    if (r != 0) {
        fprintf(stderr, "dockerd did not start:\n");
        sh("cat %s/log >&2", dk);
        return -1;
    }
    r = sh("mkdir -p %s/rootfs/bin && cp /bin/busybox %s/rootfs/bin/ && "
           "for a in sh cat echo sleep tty stty id ls head yes; do "
           "ln -s busybox %s/rootfs/bin/$a; done && "
           "tar -C %s/rootfs -c . | " DOCKER
           " import - nctest/busybox:1 >/dev/null && " DOCKER
           " run -d nctest/busybox:1 /bin/sleep 3000 >%s/cid && " DOCKER
           " create nctest/busybox:1 /bin/true >%s/stopped",
           dk, dk, dk, dk, dk, dk, dk, dk, dk);
    if (r != 0 ||
        !read_word(strcat(strcpy((char[128]){0}, dk), "/cid"), container,
                   sizeof(container)) ||
        !read_word(strcat(strcpy((char[128]){0}, dk), "/stopped"), stopped,
                   sizeof(stopped)))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (!dk[0])
        return 0;
    sh(DOCKER " rm -f $(" DOCKER " ps -aq) >/dev/null 2>&1; "
              "p=$(cat %s/dockerd.pid); kill -TERM $p; "
              "for i in $(seq 200); do kill -0 $p 2>/dev/null || break; sleep "
              "0.05; done; "
              "kill -9 $p 2>/dev/null; "
              "grep -o ' %s[^ ]*' /proc/self/mountinfo | sort -r | "
              "while read m; do umount -l $m; done; rm -rf %s",
       dk, dk, dk, dk, dk);
    return 0;
}

/* ---- one session at a time, the loop run until it ends ---- */

struct run {
    uv_loop_t loop;
    uv_timer_t watchdog, later;
    struct driver_session *s;
    struct nc_buf out[3];
    bool closed[3];
    bool exited, timed_out;
    int code;
    char *error;
    bool pause_first; /* pause on the first output, resume 200 ms later */
    bool paused_once;
    int drained;
};

static void on_resume(uv_timer_t *t)
{
    struct run *r = t->data;
    if (r->s)
        r->s->ops->pause_output(r->s, false);
}

static void on_output(void *arg, int stream, const char *p, size_t n)
{
    struct run *r = arg;
    assert_true(stream == 1 || stream == 2);
    if (n == 0) {
        r->closed[stream] = true;
        return;
    }
    nc_buf_append(&r->out[stream], p, n);
    if (r->pause_first && !r->paused_once) {
        r->paused_once = true;
        r->s->ops->pause_output(r->s, true);
        uv_timer_start(&r->later, on_resume, 200, 0);
    }
}

static void on_exited(void *arg, int code, const char *error)
{
    struct run *r = arg;
    r->exited = true;
    r->code = code;
    r->error = error ? strdup(error) : NULL;
    r->s = NULL;
    uv_stop(&r->loop);
}

static void on_drained(void *arg)
{
    ((struct run *)arg)->drained++;
}

static const struct driver_session_cb cb = {on_output, on_exited, on_drained};

static void on_watchdog(uv_timer_t *t)
{
    struct run *r = t->data;
    r->timed_out = true;
    uv_stop(&r->loop);
}

static void run_init(struct run *r)
{
    memset(r, 0, sizeof(*r));
    uv_loop_init(&r->loop);
    uv_timer_init(&r->loop, &r->watchdog);
    uv_timer_init(&r->loop, &r->later);
    r->watchdog.data = r->later.data = r;
    uv_timer_start(&r->watchdog, on_watchdog, 15000, 0);
}

static int run_start(struct run *r, const char *cid, bool tty,
                     const char *const *argv)
{
    struct nc_error err = {0};
    return docker_exec_session(&r->loop, endpoint, cid, NULL,
                               (char *const *)argv, tty, &cb, r, &r->s, &err);
}

static void run_loop(struct run *r)
{
    uv_run(&r->loop, UV_RUN_DEFAULT);
}

static void run_free(struct run *r)
{
    if (r->s)
        r->s->ops->cancel(r->s);
    uv_close((uv_handle_t *)&r->watchdog, NULL);
    uv_close((uv_handle_t *)&r->later, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT); /* the session's handles close */
    assert_int_equal(uv_loop_close(&r->loop), 0);
    for (int i = 0; i < 3; i++)
        nc_buf_free(&r->out[i]);
    free(r->error);
}

static const char *text(struct nc_buf *b)
{
    nc_buf_puts(b, "");
    return b->data;
}

#define SKIP_WITHOUT_DOCKER()                                                  \
    do {                                                                       \
        if (!container[0]) {                                                   \
            skip();                                                            \
            return;                                                            \
        }                                                                      \
    } while (0)

static void test_output_and_exit_code(void **state)
{
    (void)state;
    SKIP_WITHOUT_DOCKER();
    struct run r;
    run_init(&r);
    const char *argv[] = {"sh", "-c", "echo hi; echo err >&2; exit 3", NULL};
    assert_int_equal(run_start(&r, container, false, argv), 0);
    r.s->ops->close_stdin(r.s);
    run_loop(&r);
    assert_false(r.timed_out);
    assert_true(r.exited);
    assert_null(r.error);
    assert_int_equal(r.code, 3);
    assert_string_equal(text(&r.out[1]), "hi\n");
    assert_string_equal(text(&r.out[2]), "err\n");
    assert_true(r.closed[1] && r.closed[2]);
    run_free(&r);
}

static void test_stdin_through_cat(void **state)
{
    (void)state;
    SKIP_WITHOUT_DOCKER();
    struct run r;
    run_init(&r);
    const char *argv[] = {"cat", NULL};
    assert_int_equal(run_start(&r, container, false, argv), 0);
    /* written before the exec is even created: kept, then sent */
    assert_true(r.s->ops->write(r.s, "hello\n", 6) >= 6);
    assert_true(r.s->ops->write(r.s, "world\n", 6) >= 6);
    r.s->ops->close_stdin(r.s);
    assert_int_equal(r.s->ops->write(r.s, "late", 4), -EPIPE);
    run_loop(&r);
    assert_true(r.exited);
    assert_int_equal(r.code, 0);
    assert_string_equal(text(&r.out[1]), "hello\nworld\n");
    assert_true(r.drained >= 1);
    run_free(&r);
}

static void test_tty(void **state)
{
    (void)state;
    SKIP_WITHOUT_DOCKER();
    struct run r;
    run_init(&r);
    const char *argv[] = {"sh", "-c", "tty; sleep 0.5; stty size; exit 2",
                          NULL};
    assert_int_equal(run_start(&r, container, true, argv), 0);
    r.s->ops->resize(r.s, 100, 40);
    run_loop(&r);
    assert_true(r.exited);
    assert_null(r.error);
    assert_int_equal(r.code, 2);
    const char *o = text(&r.out[1]);
    assert_non_null(strstr(o, "/dev/pts/"));
    assert_non_null(
        strstr(o, "40 100\r\n"));      /* the terminal's size, its CRLF */
    assert_int_equal(r.out[2].len, 0); /* one stream with a terminal */
    run_free(&r);
}

static void test_paused_reader_gets_everything(void **state)
{
    (void)state;
    SKIP_WITHOUT_DOCKER();
    struct run r;
    run_init(&r);
    r.pause_first = true;
    const char *argv[] = {"sh", "-c", "yes abcdefghi | head -c 1000000", NULL};
    assert_int_equal(run_start(&r, container, false, argv), 0);
    r.s->ops->close_stdin(r.s);
    run_loop(&r);
    assert_true(r.exited);
    assert_int_equal(r.code, 0);
    assert_true(r.paused_once);
    assert_int_equal(r.out[1].len, 1000000);
    run_free(&r);
}

static void test_cancel_kills(void **state)
{
    (void)state;
    SKIP_WITHOUT_DOCKER();
    struct run r;
    run_init(&r);
    const char *argv[] = {"sleep", "4321", NULL};
    assert_int_equal(run_start(&r, container, false, argv), 0);
    /* let it start, then cancel: no callback, and the process is gone */
    for (int i = 0;
         i < 100 && system("pgrep -x -f 'sleep 4321' >/dev/null") != 0; i++) {
        uv_run(&r.loop, UV_RUN_NOWAIT);
        usleep(20000);
    }
    assert_int_equal(system("pgrep -x -f 'sleep 4321' >/dev/null"), 0);
    r.s->ops->cancel(r.s);
    r.s = NULL;
    for (int i = 0;
         i < 100 && system("pgrep -x -f 'sleep 4321' >/dev/null") == 0; i++) {
        uv_run(&r.loop, UV_RUN_NOWAIT);
        usleep(20000);
    }
    assert_int_not_equal(system("pgrep -x -f 'sleep 4321' >/dev/null"), 0);
    assert_false(r.exited);
    run_free(&r);
}

static void test_refusals(void **state)
{
    (void)state;
    SKIP_WITHOUT_DOCKER();
    struct run r;
    const char *argv[] = {"true", NULL};
    /* no such container */
    run_init(&r);
    char missing[80];
    snprintf(missing, sizeof(missing), "%.60s",
             "0123456789abcdef0123456789abcdef");
    assert_int_equal(run_start(&r, missing, false, argv), 0);
    run_loop(&r);
    assert_true(r.exited);
    assert_int_equal(r.code, -1);
    assert_non_null(r.error);
    assert_non_null(strstr(r.error, "failed to create exec object: API error "
                                    "(404): No such container"));
    run_free(&r);
    /* a container that does not run */
    run_init(&r);
    assert_int_equal(run_start(&r, stopped, false, argv), 0);
    run_loop(&r);
    assert_non_null(r.error);
    assert_non_null(strstr(r.error, "failed to create exec object: API error "
                                    "(409)"));
    assert_non_null(strstr(r.error, "is not running"));
    run_free(&r);
    /* a command the container lacks: the Engine's message and code */
    run_init(&r);
    const char *nope[] = {"/no/such/cmd", NULL};
    assert_int_equal(run_start(&r, container, false, nope), 0);
    run_loop(&r);
    assert_true(r.exited);
    assert_null(r.error);
    assert_true(r.code == 126 || r.code == 127);
    assert_non_null(strstr(text(&r.out[1]), "no such file or directory"));
    run_free(&r);
    /* bad arguments fail at once, with no callback */
    struct nc_error err = {0};
    struct driver_session *s = NULL;
    uv_loop_t loop;
    uv_loop_init(&loop);
    assert_int_equal(docker_exec_session(&loop, endpoint, "../x", NULL,
                                         (char *const *)argv, false, &cb, NULL,
                                         &s, &err),
                     -EINVAL);
    assert_int_equal(docker_exec_session(&loop, "tcp://1.2.3.4:2375", container,
                                         NULL, (char *const *)argv, false, &cb,
                                         NULL, &s, &err),
                     -EINVAL);
    const char *none[] = {NULL};
    assert_int_equal(docker_exec_session(&loop, endpoint, container, NULL,
                                         (char *const *)none, false, &cb, NULL,
                                         &s, &err),
                     -EINVAL);
    assert_null(s);
    assert_int_equal(uv_loop_close(&loop), 0);
    /* an endpoint nobody listens on */
    run_init(&r);
    struct nc_error e2 = {0};
    assert_int_equal(docker_exec_session(&r.loop, "unix:///nonexistent/sock",
                                         container, NULL, (char *const *)argv,
                                         false, &cb, &r, &r.s, &e2),
                     0);
    run_loop(&r);
    assert_non_null(r.error);
    assert_non_null(strstr(r.error, "failed to create exec object: "));
    run_free(&r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_and_exit_code),
        cmocka_unit_test(test_stdin_through_cat),
        cmocka_unit_test(test_tty),
        cmocka_unit_test(test_paused_reader_gets_everything),
        cmocka_unit_test(test_cancel_kills),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
