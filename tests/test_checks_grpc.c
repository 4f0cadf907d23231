// deps: checks/ client/util.c client/curl_uv.c
/* The gRPC and script probes of the check engine: the gRPC request frame,
 * response message and grpc-status/grpc-message parsing, the status and
 * output an answer maps to, the script exit-code mapping, and script
 * checks on a live engine through a fake runner (exit 0/1/2, a runner
 * error, and a run still going at the deadline: cancelled, critical,
 * "context deadline exceeded"). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "checks/checks.h"

#define SEC 1000000000LL

static void test_request_frame(void **state)
{
    struct nc_buf b = {0};
    chk_grpc_request_frame("web", &b);
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.data, "\0\0\0\0\x05\x0a\x03web", 10);
    chk_grpc_request_frame("", &b); /* proto3: empty string not sent */
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "\0\0\0\0\0", 5);
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    chk_grpc_request_frame(big, &b); /* two-byte varint length */
    assert_int_equal(b.len, 5 + 1 + 2 + 299);
    assert_memory_equal(b.data + 5, "\x0a\xab\x02", 3);
    nc_buf_free(&b);
}

static int parse(const char *bytes, size_t len, uint64_t *v)
{
    const char *why = NULL;
    int r = chk_grpc_parse_response((const unsigned char *)bytes, len, v,
                                    &why);
    if (r < 0)
        assert_non_null(why);
    return r;
}

static void test_parse_response(void **state)
{
    uint64_t v;
    assert_int_equal(parse("\0\0\0\0\x02\x08\x01", 7, &v), 0);
    assert_int_equal(v, CHK_GRPC_SERVING);
    assert_int_equal(parse("\0\0\0\0\x02\x08\x02", 7, &v), 0);
    assert_int_equal(v, CHK_GRPC_NOT_SERVING);
    assert_int_equal(parse("\0\0\0\0\0", 5, &v), 0); /* default: UNKNOWN */
    assert_int_equal(v, CHK_GRPC_UNKNOWN);
    /* unknown fields of every wire type are skipped */
    assert_int_equal(parse("\0\0\0\0\x14"
                           "\x12\x02hi"                  /* 2: bytes */
                           "\x19\1\2\3\4\5\6\7\0"        /* 3: fixed64 */
                           "\x2d\1\2\3\4"                /* 5: fixed32 */
                           "\x08\x01",
                           25, &v),
                     0);
    assert_int_equal(v, CHK_GRPC_SERVING);
    assert_true(parse("", 0, &v) < 0);                      /* no message */
    assert_true(parse("\0\0\0", 3, &v) < 0);                /* short frame */
    assert_true(parse("\1\0\0\0\x02\x08\x01", 7, &v) < 0);  /* compressed */
    assert_true(parse("\7\0\0\0\x02\x08\x01", 7, &v) < 0);  /* bad flag */
    assert_true(parse("\0\0\0\0\x09\x08\x01", 7, &v) < 0);  /* short msg */
    assert_true(parse("\0\0\0\0\x01\x08\x01", 7, &v) < 0);  /* trailing */
    assert_true(parse("\0\0\0\0\x01\x08", 6, &v) < 0);      /* no varint */
    assert_true(parse("\0\0\0\0\x02\x0a\x05", 7, &v) < 0);  /* long field */
    assert_true(parse("\0\0\0\0\x02\x0b\x00", 7, &v) < 0);  /* wire type 3 */
    assert_true(parse("\0\0\0\0\x01\x00", 6, &v) < 0);      /* field 0 */
    assert_true(parse("\0\0\0\0\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff"
                      "\x7f",
                      16, &v) < 0); /* varint beyond 64 bits */
}

static void test_trailers(void **state)
{
    const char *h = "HTTP/2 200\r\ncontent-type: application/grpc\r\n\r\n"
                    "Grpc-Status: 5\r\ngrpc-message: unknown%20service%2\r\n";
    int code;
    struct nc_buf m = {0};
    chk_grpc_trailers(h, strlen(h), &code, &m);
    assert_int_equal(code, 5);
    assert_string_equal(m.data, "unknown service%2");
    nc_buf_free(&m);
    chk_grpc_trailers("a: b\r\n", 6, &code, &m);
    assert_int_equal(code, -1);
    assert_null(m.data);
    chk_grpc_trailers("grpc-status: x7\n", 16, &code, &m);
    assert_int_equal(code, 2); /* garbage: Unknown */
    char buf[32];
    assert_string_equal(chk_grpc_code_name(14, buf, sizeof(buf)),
                        "Unavailable");
    assert_string_equal(chk_grpc_code_name(99, buf, sizeof(buf)), "Code(99)");
    assert_string_equal(chk_grpc_serving_name(2), "NOT_SERVING");
    assert_null(chk_grpc_serving_name(9));
}

static enum chk_status conclude(long http, const char *lines, const char *body,
                                size_t blen, const char *want)
{
    struct nc_buf out = {0};
    enum chk_status st =
        chk_grpc_conclude("127.0.0.1:9090/web", http, lines, strlen(lines),
                          (const unsigned char *)body, blen, &out);
    assert_string_equal(out.data, want);
    nc_buf_free(&out);
    return st;
}

static void test_conclude(void **state)
{
    const char *ok = "HTTP/2 200\r\ngrpc-status: 0\r\n";
    assert_int_equal(conclude(200, ok, "\0\0\0\0\x02\x08\x01", 7,
                              "gRPC check 127.0.0.1:9090/web: success"),
                     CHK_PASSING);
    assert_int_equal(
        conclude(200, ok, "\0\0\0\0\x02\x08\x02", 7,
                 "gRPC 127.0.0.1:9090/web serving status: NOT_SERVING"),
        CHK_CRITICAL);
    assert_int_equal(
        conclude(200, ok, "\0\0\0\0\x02\x08\x03", 7,
                 "gRPC 127.0.0.1:9090/web serving status: SERVICE_UNKNOWN"),
        CHK_CRITICAL);
    assert_int_equal(conclude(200, ok, "\0\0\0\0\x02\x08\x07", 7,
                              "gRPC 127.0.0.1:9090/web serving status: 7"),
                     CHK_CRITICAL);
    assert_int_equal(
        conclude(200, "grpc-status: 5\r\ngrpc-message: unknown service\r\n",
                 "", 0, "rpc error: code = NotFound desc = unknown service"),
        CHK_CRITICAL);
    assert_int_equal(conclude(404, "", "", 0,
                              "rpc error: code = Unimplemented desc = "
                              "unexpected HTTP status code received from "
                              "server: 404"),
                     CHK_CRITICAL);
    assert_int_equal(conclude(200, "HTTP/2 200\r\n", "\0\0\0\0\x02\x08\x01", 7,
                              "rpc error: code = Internal desc = server "
                              "closed the stream without sending trailers"),
                     CHK_CRITICAL);
    assert_int_equal(conclude(200, ok, "\1\0\0\0\x02\x08\x01", 7,
                              "rpc error: code = Internal desc = compressed "
                              "response messages are not supported"),
                     CHK_CRITICAL);
}

static void test_script_status(void **state)
{
    assert_int_equal(chk_script_status(0), CHK_PASSING);
    assert_int_equal(chk_script_status(1), CHK_WARNING);
    assert_int_equal(chk_script_status(2), CHK_CRITICAL);
    assert_int_equal(chk_script_status(-1), CHK_CRITICAL);
    assert_int_equal(chk_script_status(127), CHK_CRITICAL);
}

static struct chk_def script_def(const char *id, const char *const *args,
                                 size_t nargs)
{
    struct chk_def d = {
        .id = id,
        .type = CHK_TYPE_SCRIPT,
        .command = "/bin/check",
        .args = args,
        .nargs = nargs,
        .interval_ns = SEC,
        .timeout_ns = SEC,
    };
    return d;
}

static void test_validate(void **state)
{
    struct nc_error err = {0};
    const char *args[] = {"-c", "exit 0"};
    struct chk_def d = script_def("s", args, 2);
    assert_int_equal(chk_validate(&d, &err), 0); /* no address needed */
    d.command = "";
    assert_int_equal(chk_validate(&d, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "command"));
    d = script_def("s", NULL, 1);
    assert_int_equal(chk_validate(&d, &err), -EINVAL);
    struct chk_def g = {.id = "g", .type = CHK_TYPE_GRPC,
                        .address = "127.0.0.1", .port = 0,
                        .interval_ns = SEC, .timeout_ns = SEC};
    assert_int_equal(chk_validate(&g, &err), -EINVAL); /* needs a port */
    g.port = 9090;
    g.grpc_service = "web";
    assert_int_equal(chk_validate(&g, &err), 0);
}

/* ---- script checks on a live engine, through a fake runner ---- */

struct fake_run {
    uv_timer_t timer;
    chk_script_done_fn done;
    void *ctx;
    int code; /* -2: a runner error; -3: never ends */
    bool cancelled;
    char argv0[64], last_arg[64];
};

struct fake {
    uv_loop_t *loop;
    struct chk_engine *e;
    int code;
    int starts, cancels, results;
    enum chk_status last;
    char output[256];
    char argv0[64], last_arg[64];
};

static void fake_fire(uv_timer_t *t)
{
    struct fake_run *r = t->data;
    if (r->code == -2)
        r->done(r->ctx, -1, NULL, 0, "exec: \"nope\": executable file not "
                                     "found in $PATH");
    else
        r->done(r->ctx, r->code, "out\0put", 7, NULL); /* NUL made valid */
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

static int fake_start(void *arg, struct chk *c, char *const argv[],
                      int64_t timeout_ns, chk_script_done_fn done, void *ctx,
                      void **run, struct nc_error *err)
{
    struct fake *f = arg;
    f->starts++;
    snprintf(f->argv0, sizeof(f->argv0), "%s", argv[0]);
    size_t n = 0;
    while (argv[n])
        n++;
    snprintf(f->last_arg, sizeof(f->last_arg), "%s", argv[n - 1]);
    if (f->code == -4)
        return nc_error_set(err, -ESRCH, "task \"box\" is not running");
    struct fake_run *r = calloc(1, sizeof(*r));
    r->done = done;
    r->ctx = ctx;
    r->code = f->code;
    uv_timer_init(f->loop, &r->timer);
    r->timer.data = r;
    if (f->code != -3)
        uv_timer_start(&r->timer, fake_fire, 1, 0);
    *run = r;
    return 0;
}

static void fake_cancel(void *arg, void *run)
{
    struct fake *f = arg;
    struct fake_run *r = run;
    f->cancels++;
    uv_close((uv_handle_t *)&r->timer, (uv_close_cb)free);
}

static void fake_result(void *arg, struct chk *c, const struct chk_result *r)
{
    struct fake *f = arg;
    f->results++;
    f->last = r->status;
    snprintf(f->output, sizeof(f->output), "%s", r->output);
    uv_stop(f->loop);
}

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void run_script(int code, enum chk_status want, const char *output)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake f = {.loop = &loop, .code = code};
    struct chk_callbacks cb = {.on_result = fake_result,
                               .script_start = fake_start,
                               .script_cancel = fake_cancel};
    assert_int_equal(chk_engine_new(&f.e, &loop, &cb, &f), 0);
    const char *args[] = {"-c", "check it"};
    struct chk_def d = script_def("s", args, 2);
    struct nc_error err = {0};
    assert_int_equal(chk_add(f.e, &d, &err), 0);
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, stop_loop, 8000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(f.results, 1);
    assert_int_equal(f.last, want);
    assert_string_equal(f.output, output);
    assert_string_equal(f.argv0, "/bin/check");
    assert_string_equal(f.last_arg, "check it");
    json_t *j = chk_to_json(chk_find(f.e, "s"));
    assert_string_equal(json_string_value(json_object_get(j, "Type")),
                        "script");
    assert_string_equal(json_string_value(json_object_get(j, "Command")),
                        "/bin/check");
    assert_int_equal(json_array_size(json_object_get(j, "Args")), 2);
    json_decref(j);
    if (code == -3)
        assert_int_equal(f.cancels, 1); /* the deadline killed it */
    uv_close((uv_handle_t *)&guard, NULL);
    chk_engine_close(f.e);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_script_engine(void **state)
{
    run_script(0, CHK_PASSING, "out\xef\xbf\xbdput");
    run_script(1, CHK_WARNING, "out\xef\xbf\xbdput");
    run_script(2, CHK_CRITICAL, "out\xef\xbf\xbdput");
    run_script(-2, CHK_CRITICAL,
               "exec: \"nope\": executable file not found in $PATH");
    run_script(-4, CHK_CRITICAL, "task \"box\" is not running");
    run_script(-3, CHK_CRITICAL, "context deadline exceeded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_frame),
        cmocka_unit_test(test_parse_response),
        cmocka_unit_test(test_trailers),
        cmocka_unit_test(test_conclude),
        cmocka_unit_test(test_script_status),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_script_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
