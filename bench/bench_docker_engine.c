/* bench_docker_engine - the baseline of bench/bench_docker.sh: N
 * allocations' containers started through the Docker Engine API alone, all
 * at once, as a client that keeps its connection (the driver's libcurl
 * does) rather than a curl process per request, so the figures are the
 * Engine's and not process start-ups.
 *
 * Each allocation, in a thread of its own on one connection: create and
 * start a pause container bi-TAG-i (nctest/pause:1, network none), then
 * create and start a task container bt-TAG-i (nctest/busybox:1,
 * `sleep 3600`, NetworkMode container:bi-TAG-i).
 *
 *   bench_docker_engine SOCKET N TAG
 *
 * Prints "start NS" (CLOCK_REALTIME when the threads are let go) and one
 * "done I NS" per allocation once its task container's start answered;
 * exits 1 with the failed request on stderr if any fails. The script reads
 * each task container's State.StartedAt itself. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct alloc_run {
    const char *sock;
    const char *tag;
    int index;
    pthread_barrier_t *go;
    long long done_ns;
    char error[2048];
};

static long long realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* the answers' bodies matter only when a request fails: keep their start */
struct body {
    char text[512];
    size_t len;
};

static size_t body_write(char *data, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t len = size * n;
    size_t room = sizeof(b->text) - 1 - b->len;
    size_t keep = len < room ? len : room;
    memcpy(b->text + b->len, data, keep);
    b->len += keep;
    b->text[b->len] = '\0';
    return len;
}

/* one POST on the allocation's handle: 0, or -1 with r->error filled */
static int engine_post(CURL *h, struct alloc_run *r, const char *path,
                       const char *json)
{
    char url[512];
    snprintf(url, sizeof(url), "http://d/v1.41%s", path);
    struct body b = {.len = 0};
    char curl_error[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers =
        curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, json ? json : "");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_error);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK) {
        snprintf(r->error, sizeof(r->error), "POST %s: %s", path,
                 curl_error[0] ? curl_error : curl_easy_strerror(rc));
        return -1;
    }
    if (status < 200 || status >= 300) {
        snprintf(r->error, sizeof(r->error), "POST %s: HTTP %ld: %s", path,
                 status, b.text);
        return -1;
    }
    return 0;
}

static void *alloc_thread(void *arg)
{
    struct alloc_run *r = arg;
    char pause[128], task[128], path[256], json[512];
    snprintf(pause, sizeof(pause), "bi-%s-%d", r->tag, r->index);
    snprintf(task, sizeof(task), "bt-%s-%d", r->tag, r->index);
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(r->error, sizeof(r->error), "curl_easy_init failed");
        pthread_barrier_wait(r->go);
        return NULL;
    }
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, r->sock);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    pthread_barrier_wait(r->go);

    int ok = 0;
    snprintf(path, sizeof(path), "/containers/create?name=%s", pause);
    if (engine_post(h, r, path,
                    "{\"Image\":\"nctest/pause:1\","
                    "\"HostConfig\":{\"NetworkMode\":\"none\"}}") == 0) {
        snprintf(path, sizeof(path), "/containers/%s/start", pause);
        ok = engine_post(h, r, path, NULL) == 0;
    }
    if (ok) {
        snprintf(path, sizeof(path), "/containers/create?name=%s", task);
        snprintf(json, sizeof(json),
                 "{\"Image\":\"nctest/busybox:1\",\"Cmd\":[\"sleep\",\"3600\"],"
                 "\"StopTimeout\":1,\"HostConfig\":{\"NetworkMode\":"
                 "\"container:%s\"}}",
                 pause);
        ok = engine_post(h, r, path, json) == 0;
    }
    if (ok) {
        snprintf(path, sizeof(path), "/containers/%s/start", task);
        ok = engine_post(h, r, path, NULL) == 0;
    }
    if (ok)
        r->done_ns = realtime_ns();
    curl_easy_cleanup(h);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4 || atoi(argv[2]) <= 0) {
        fprintf(stderr, "usage: bench_docker_engine SOCKET N TAG\n");
        return 2;
    }
    int n = atoi(argv[2]);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "bench_docker_engine: curl_global_init failed\n");
        return 1;
    }
    struct alloc_run *runs = calloc((size_t)n, sizeof(*runs));
    pthread_t *threads = calloc((size_t)n, sizeof(*threads));
    pthread_barrier_t go;
    if (!runs || !threads ||
        pthread_barrier_init(&go, NULL, (unsigned)n + 1) != 0) {
        fprintf(stderr, "bench_docker_engine: out of memory\n");
        return 1;
    }
    int started = 0;
    for (int i = 0; i < n; i++) {
        runs[i] = (struct alloc_run){
            .sock = argv[1], .tag = argv[3], .index = i, .go = &go};
        if (pthread_create(&threads[i], NULL, alloc_thread, &runs[i]) != 0) {
            fprintf(stderr, "bench_docker_engine: cannot start thread %d\n", i);
            return 1; /* the threads wait on the barrier forever: exit */
        }
        started++;
    }
    long long start = realtime_ns();
    pthread_barrier_wait(&go);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    printf("start %lld\n", start);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        if (runs[i].done_ns) {
            printf("done %d %lld\n", i, runs[i].done_ns);
        } else {
            fprintf(stderr, "bench_docker_engine: allocation %d: %s\n", i,
                    runs[i].error);
            failed = 1;
        }
    }
    pthread_barrier_destroy(&go);
    free(runs);
    free(threads);
    curl_global_cleanup();
    return failed;
}
