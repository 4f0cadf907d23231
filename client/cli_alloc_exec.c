/* cli_alloc_exec.c - the terminal side of `alloc exec`: one websocket to
 * the agent's /v1/client/allocation/:id/exec, in Nomad's frames, driven by
 * a poll loop over stdin, the socket and a signalfd. With a terminal, the
 * local one is put in raw mode (restored on every way out), its size goes
 * to the task's on start and on SIGWINCH, and the escape character at the
 * start of a line followed by '.' disconnects (ssh's and Nomad's "~.").
 * Stdin is read only while little is waiting to be sent, so a slow agent
 * is not buffered for without end; a heartbeat goes out every 10 s, as
 * Nomad's client sends it. */
#include "client/cli_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "client/api/api.h"
#include "client/api/websocket.h"
#include "client/tls.h"

#define EXEC_HEARTBEAT_MS 10000
#define EXEC_STDIN_CHUNK 2048     /* as Nomad's client reads stdin */
#define EXEC_SEND_HIGH (1u << 20) /* stop reading stdin beyond this */
#define EXEC_HANDSHAKE_TIMEOUT_MS 60000

/* The terminal's state before raw mode, restored on the way out. */
static struct termios saved_termios;
static bool raw_mode;

static void terminal_restore(void)
{
    if (raw_mode) {
        tcsetattr(0, TCSADRAIN, &saved_termios);
        raw_mode = false;
    }
}

static int terminal_raw(struct nc_error *err)
{
    if (tcgetattr(0, &saved_termios) < 0)
        return nc_error_set(err, -errno, "not a terminal");
    struct termios t = saved_termios;
    cfmakeraw(&t);
    if (tcsetattr(0, TCSADRAIN, &t) < 0)
        return nc_error_set(err, -errno, "%s", strerror(errno));
    raw_mode = true;
    atexit(terminal_restore);
    return 0;
}

/* Nomad's escape reader (helper/escapingio): at the start of a line,
 * "~." disconnects, "~~" sends one '~', "~" and anything else sends both;
 * elsewhere '~' is data. */
enum { ESC_MID_LINE, ESC_LINE_START, ESC_SEEN };

struct exec_cli {
    struct ws_client *ws;
    bool tty, reading_stdin;
    int escape; /* -1: none */
    int esc_state;
    bool disconnect;
    int64_t next_heartbeat;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void send_json(struct exec_cli *x, json_t *j)
{
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (txt)
        ws_client_send(x->ws, WS_TEXT, txt, strlen(txt));
    free(txt);
}

static void send_stdin(struct exec_cli *x, const char *p, size_t n)
{
    if (!n)
        return;
    char *b64 = nc_base64_encode(p, n, false);
    send_json(x, json_pack("{s:{s:s}}", "stdin", "data", b64));
    free(b64);
}

static void send_size(struct exec_cli *x)
{
    struct winsize w;
    if (ioctl(1, TIOCGWINSZ, &w) < 0 || !w.ws_row || !w.ws_col)
        return;
    send_json(x, json_pack("{s:{s:i, s:i}}", "tty_size", "height",
                           (int)w.ws_row, "width", (int)w.ws_col));
}

static bool line_end(char c)
{
    return c == '\n' || c == '\r';
}

/* Filters what was typed through the escape state; sends the rest. */
static void typed(struct exec_cli *x, const char *p, size_t n)
{
    if (x->escape < 0) {
        send_stdin(x, p, n);
        return;
    }
    char out[2 * EXEC_STDIN_CHUNK + 1];
    size_t o = 0;
    char esc = (char)x->escape;
    for (size_t i = 0; i < n && !x->disconnect; i++) {
        char c = p[i];
        switch (x->esc_state) {
        case ESC_SEEN:
            if (c == esc) {
                out[o++] = esc;
                x->esc_state = ESC_MID_LINE;
            } else if (c == '.') {
                x->disconnect = true;
            } else {
                out[o++] = esc;
                out[o++] = c;
                x->esc_state = line_end(c) ? ESC_LINE_START : ESC_MID_LINE;
            }
            break;
        case ESC_LINE_START:
            if (c == esc) {
                x->esc_state = ESC_SEEN; /* held until the next character */
                break;
            }
            /* fall through */
        default:
            out[o++] = c;
            x->esc_state = line_end(c) ? ESC_LINE_START : ESC_MID_LINE;
        }
    }
    send_stdin(x, out, o);
}

/* Nomad's words for a close before the exit code (gorilla's CloseError). */
static void close_reason(const struct ws_message *m, struct nc_error *err)
{
    static const struct {
        int code;
        const char *name;
    } names[] = {{1000, "normal"},
                 {1001, "going away"},
                 {1002, "protocol error"},
                 {1003, "unsupported data"},
                 {1005, "no status"},
                 {1007, "invalid payload data"},
                 {1008, "policy violation"},
                 {1009, "message too big"},
                 {1010, "mandatory extension missing"},
                 {1011, "internal server error"}};
    const char *name = NULL;
    for (size_t i = 0; i < NC_ARRAY_LEN(names); i++)
        if (names[i].code == m->close_code)
            name = names[i].name;
    char what[160];
    snprintf(what, sizeof(what), "websocket: close %d%s%s%s", m->close_code,
             name ? " (" : "", name ? name : "", name ? ")" : "");
    if (m->close_code == WS_CLOSE_NORMAL)
        nc_error_set(err, -EPIPE,
                     "websocket closed before receiving exit "
                     "code: %s%s%.*s",
                     what, m->len ? ": " : "", (int)m->len, m->data);
    else if (m->len)
        nc_error_set(err, -EPIPE, "%.*s", (int)m->len, m->data);
    else
        nc_error_set(err, -EPIPE, "%s", what);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* our stdout is gone: nothing to do with the output */
        p += w;
        n -= (size_t)w;
    }
}

/* One message from the agent: 1 with *code once the command exited, 0 to
 * go on, -1 with err. */
static int on_message(struct exec_cli *x, const struct ws_message *m, int *code,
                      struct nc_error *err)
{
    if (m->opcode == WS_CLOSE) {
        close_reason(m, err);
        return -1;
    }
    if (m->opcode != WS_TEXT && m->opcode != WS_BINARY)
        return 0;
    json_error_t jerr;
    json_t *j = json_loadb(m->data, m->len, 0, &jerr);
    if (!j) {
        nc_error_set(err, -EPROTO, "invalid message from the agent: %s",
                     jerr.text);
        return -1;
    }
    int r = 0;
    const char *names[] = {"stdout", "stderr"};
    for (int i = 0; i < 2; i++) {
        const char *b64 = json_string_value(
            json_object_get(json_object_get(j, names[i]), "data"));
        if (!b64)
            continue;
        struct nc_buf raw = {0};
        if (nc_base64_decode(b64, strlen(b64), &raw) == 0 && raw.len)
            write_all(i + 1, raw.data, raw.len);
        nc_buf_free(&raw);
    }
    json_t *res = json_object_get(j, "result");
    if (json_is_true(json_object_get(j, "exited")) && json_is_object(res)) {
        *code = (int)json_integer_value(json_object_get(res, "exit_code"));
        r = 1;
    }
    json_decref(j);
    return r;
}

/* The session's loop: returns the command's exit code, or -1 with err. */
static int exec_loop(struct exec_cli *x, int sigfd, struct nc_error *err)
{
    int code = -1;
    x->next_heartbeat = now_ms() + EXEC_HEARTBEAT_MS;
    for (;;) {
        if (ws_client_flush(x->ws) < 0) {
            nc_error_set(err, -EPIPE, "failed to send input: %s",
                         strerror(errno));
            return -1;
        }
        struct pollfd p[3] = {
            {.fd = ws_client_fd(x->ws),
             .events =
                 (short)(POLLIN | (ws_client_pending(x->ws) ? POLLOUT : 0))},
            {.fd = sigfd, .events = POLLIN},
            {.fd = x->reading_stdin && ws_client_pending(x->ws) < EXEC_SEND_HIGH
                       ? 0
                       : -1,
             .events = POLLIN},
        };
        int64_t wait = x->next_heartbeat - now_ms();
        int n = poll(p, 3, wait < 0 ? 0 : (int)wait);
        if (n < 0 && errno != EINTR)
            return nc_error_set(err, -errno, "poll: %s", strerror(errno)), -1;
        if (now_ms() >= x->next_heartbeat) {
            send_json(x, json_object()); /* Nomad's heartbeat */
            x->next_heartbeat = now_ms() + EXEC_HEARTBEAT_MS;
        }
        if (n <= 0)
            continue;
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGWINCH) {
                    if (x->tty)
                        send_size(x);
                } else {
                    nc_error_set(err, -ECANCELED, "context canceled");
                    return -1;
                }
            }
        }
        if (p[2].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
            char buf[EXEC_STDIN_CHUNK];
            ssize_t got = read(0, buf, sizeof(buf));
            if (got > 0) {
                typed(x, buf, (size_t)got);
                if (x->disconnect) {
                    terminal_restore();
                    fputs("\nConnection closed\n", stderr);
                    nc_error_set(err, -ECANCELED, "context canceled");
                    return -1;
                }
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                if (x->esc_state == ESC_SEEN)
                    send_stdin(x, (char[]){(char)x->escape}, 1);
                send_json(x, json_pack("{s:{s:b}}", "stdin", "close", true));
                x->reading_stdin = false;
            }
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            for (;;) {
                struct ws_message m;
                int r = ws_client_recv(x->ws, &m, err);
                if (r == 0)
                    break;
                if (r == -EPIPE) {
                    nc_error_set(err, -EPIPE, "unexpected EOF");
                    return -1;
                }
                if (r < 0)
                    return -1;
                int done = on_message(x, &m, &code, err);
                if (done < 0)
                    return -1;
                if (done > 0)
                    return code;
            }
        }
    }
}

int cli_exec_session(struct api_client *api, const char *path, bool tty,
                     bool use_stdin, int escape, struct nc_error *err)
{
    int fd = -1;
    struct tls_conn *tls = NULL;
    char *headers = NULL;
    struct exec_cli x = {.tty = tty,
                         .reading_stdin = use_stdin,
                         .escape = tty ? escape : -1,
                         .esc_state = ESC_LINE_START};
    int r = api_dial(api, path, &fd, &tls, &headers, err);
    if (r == 0) {
        r = ws_client_open(&x.ws, fd, tls, path, headers,
                           EXEC_HANDSHAKE_TIMEOUT_MS, err);
        if (r < 0) {
            tls_conn_free(tls);
            close(fd);
        }
    }
    free(headers);
    if (r < 0)
        return -1;
    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGWINCH);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &sigs, &old);
    int sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    int code = -1;
    if (sigfd < 0) {
        nc_error_set(err, -errno, "signalfd: %s", strerror(errno));
    } else if (!tty || terminal_raw(err) == 0) {
        if (tty)
            send_size(&x);
        if (!use_stdin)
            send_json(&x, json_pack("{s:{s:b}}", "stdin", "close", true));
        code = exec_loop(&x, sigfd, err);
        terminal_restore();
        if (code >= 0) {
            /* a clean close, so the agent need not wait for one */
            ws_client_send(x.ws, WS_CLOSE, (char[]){0x03, (char)0xe8}, 2);
            ws_client_flush(x.ws);
        }
    }
    if (sigfd >= 0)
        close(sigfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    ws_client_free(x.ws);
    return code;
}
