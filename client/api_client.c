/* api_client.c - see api_client.h. */
#include "api_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define API_MAX_RESPONSE (64u << 20)

static json_t *last_error_body;

void api_client_init(struct api_client *c, const char *flag_address)
{
    const char *a = flag_address;
    if (!a || !*a)
        a = getenv("NOMCLIENT_ADDR");
    if (!a || !*a)
        a = "http://127.0.0.1:4646";
    if (strstr(a, "://"))
        c->address = xstrdup(a);
    else
        c->address = xasprintf("http://%s", a);
    size_t n = strlen(c->address);
    while (n > 0 && c->address[n - 1] == '/')
        c->address[--n] = '\0';
}

void api_client_free(struct api_client *c)
{
    free(c->address);
    c->address = NULL;
    json_decref(last_error_body);
    last_error_body = NULL;
}

const json_t *api_last_error_body(void) { return last_error_body; }

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct nc_buf *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > API_MAX_RESPONSE)
        return 0; /* aborts the transfer */
    nc_buf_append(b, ptr, n);
    return n;
}

int api_request(struct api_client *c, const char *method, const char *path,
                const json_t *body, json_t **out, long *status,
                struct nc_error *err)
{
    static bool curl_ready;
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = true;
    }
    if (out)
        *out = NULL;
    json_decref(last_error_body);
    last_error_body = NULL;

    char *url = xasprintf("%s%s", c->address, path);
    CURL *h = curl_easy_init();
    if (!h) {
        free(url);
        return nc_error_set(err, -ENOMEM, "cannot initialise libcurl");
    }
    struct nc_buf resp = {0};
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "nomclient-cli");
    if (payload) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    }
    CURLcode cr = curl_easy_perform(h);
    long code = 0;
    int r = 0;
    if (cr != CURLE_OK) {
        r = cr == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EIO;
        nc_error_set(err, r, "%s %s: %s%s", method, url,
                     errbuf[0] ? errbuf : curl_easy_strerror(cr),
                     cr == CURLE_COULDNT_CONNECT
                         ? " (is the agent running? start one with "
                           "`nomclient agent -dev`, or point -address / "
                           "NOMCLIENT_ADDR at it)"
                         : "");
        goto done;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (status)
        *status = code;
    json_t *doc = NULL;
    if (resp.len) {
        json_error_t jerr;
        doc = json_loadb(resp.data, resp.len, JSON_DECODE_ANY, &jerr);
    }
    if (code < 200 || code > 299) {
        const char *msg = NULL;
        if (json_is_object(doc))
            msg = json_string_value(json_object_get(doc, "error"));
        if (!msg && resp.len)
            msg = resp.data;
        nc_error_set(err, -EPROTO, "Unexpected response code: %ld (%s)", code,
                     msg ? msg : "no body");
        last_error_body = doc;
        r = -EPROTO;
        goto done;
    }
    if (resp.len && !doc) {
        r = nc_error_set(err, -EPROTO, "%s %s: the agent sent invalid JSON",
                         method, url);
        goto done;
    }
    if (out)
        *out = doc;
    else
        json_decref(doc);
done:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(payload);
    free(url);
    nc_buf_free(&resp);
    return r;
}
