/* fingerprint.c - see client/node/node.h. */
#include "client/node/node.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "client/agent.h"

#define SMALL_FILE (1u << 20)

static char *read_under(const char *root, const char *dflt, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", root ? root : dflt, rel);
    size_t len;
    return nc_read_file(path, &len, SMALL_FILE);
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

/* Value of "key<spaces>: value" in /proc/cpuinfo (first occurrence). */
static char *cpuinfo_field(const char *info, const char *key)
{
    for (const char *l = info; l && *l;) {
        if (strncmp(l, key, strlen(key)) == 0) {
            const char *colon = strchr(l, ':');
            const char *end = strchr(l, '\n');
            if (colon && (!end || colon < end)) {
                colon++;
                while (*colon == ' ' || *colon == '\t')
                    colon++;
                char *v = xstrndup(colon, end ? (size_t)(end - colon) : strlen(colon));
                trim(v);
                return v;
            }
        }
        l = strchr(l, '\n');
        if (l)
            l++;
    }
    return NULL;
}

static const char *go_arch(const char *machine)
{
    if (strcmp(machine, "x86_64") == 0)
        return "amd64";
    if (strcmp(machine, "aarch64") == 0)
        return "arm64";
    if (strncmp(machine, "armv", 4) == 0)
        return "arm";
    if (strcmp(machine, "i686") == 0 || strcmp(machine, "i386") == 0)
        return "386";
    return machine;
}

static char *os_release_field(const char *txt, const char *key)
{
    size_t kl = strlen(key);
    for (const char *l = txt; l && *l;) {
        if (strncmp(l, key, kl) == 0 && l[kl] == '=') {
            const char *v = l + kl + 1;
            const char *end = strchr(v, '\n');
            size_t n = end ? (size_t)(end - v) : strlen(v);
            if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
                v++;
                n -= 2;
            }
            return xstrndup(v, n);
        }
        l = strchr(l, '\n');
        if (l)
            l++;
    }
    return NULL;
}

/* Interface of the default route (from /proc/net/route), or NULL. */
static char *default_route_iface(const char *proc)
{
    char *txt = read_under(proc, "/proc", "net/route");
    char *iface = NULL;
    for (char *l = txt ? strchr(txt, '\n') : NULL; l && *++l;) {
        char name[IF_NAMESIZE + 1];
        unsigned long dest;
        if (sscanf(l, "%16s %lx", name, &dest) == 2 && dest == 0) {
            iface = xstrdup(name);
            break;
        }
        l = strchr(l, '\n');
    }
    free(txt);
    return iface;
}

static char *iface_ipv4(const char *iface)
{
    struct ifaddrs *list, *i;
    char *ip = NULL;
    if (!iface || getifaddrs(&list) < 0)
        return NULL;
    for (i = list; i && !ip; i = i->ifa_next) {
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
            strcmp(i->ifa_name, iface) == 0) {
            char buf[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
                      buf, sizeof(buf));
            ip = xstrdup(buf);
        }
    }
    freeifaddrs(list);
    return ip;
}

static bool valid_uuid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

static int load_or_create_id(const char *path, char **out, struct nc_error *err)
{
    size_t len;
    char *txt = nc_read_file(path, &len, 4096);
    if (txt) {
        trim(txt);
        if (!valid_uuid(txt)) {
            free(txt);
            return nc_error_set(err, -EINVAL,
                                "%s does not hold a UUID; fix or remove it "
                                "(removing gives this node a new identity)",
                                path);
        }
        *out = txt;
        return 0;
    }
    if (errno != ENOENT)
        return nc_error_set(err, -errno, "read %s: %s", path, strerror(errno));
    char id[37];
    nc_uuid(id);
    int r = nc_write_file_atomic(path, id, strlen(id), 0600);
    if (r < 0)
        return nc_error_set(err, r, "write %s: %s", path, strerror(-r));
    *out = xstrdup(id);
    return 0;
}

int fingerprint_node_id(const char *data_dir, char **id, char **secret_id,
                        struct nc_error *err)
{
    *id = *secret_id = NULL;
    char *dir = xasprintf("%s/client", data_dir);
    int r = nc_mkdir_p(dir, 0700);
    if (r < 0) {
        nc_error_set(err, r, "create %s: %s", dir, strerror(-r));
        free(dir);
        return r;
    }
    char *p1 = xasprintf("%s/client-id", dir), *p2 = xasprintf("%s/secret-id", dir);
    r = load_or_create_id(p1, id, err);
    if (r == 0)
        r = load_or_create_id(p2, secret_id, err);
    if (r < 0) {
        free(*id);
        *id = NULL;
    }
    free(p1);
    free(p2);
    free(dir);
    return r;
}

static void set_int(struct kvlist *a, const char *k, long long v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", v);
    kv_set(a, k, buf);
}

void node_add_driver(struct node *n, const char *name, bool detected,
                     bool healthy, const char *desc)
{
    n->drivers = xrealloc(n->drivers, (n->ndrivers + 1) * sizeof(*n->drivers));
    struct node_driver *d = &n->drivers[n->ndrivers++];
    d->name = xstrdup(name);
    d->detected = detected;
    d->healthy = healthy;
    d->health_description = xstrdup(desc);
    if (detected) {
        char *key = xasprintf("driver.%s", name);
        kv_set(&n->attributes, key, "1");
        free(key);
    }
}

void node_add_event(struct node *n, const char *subsystem, const char *message,
                    const char *detail_key, const char *detail_value)
{
    if (!n->events)
        n->events = json_array();
    json_t *details = json_object();
    if (detail_key)
        json_object_set_new(details, detail_key,
                            json_string(detail_value ? detail_value : ""));
    json_array_append_new(
        n->events, json_pack("{s:s, s:s, s:o, s:I}", "Message", message,
                             "Subsystem", subsystem, "Details", details,
                             "Timestamp", (json_int_t)nc_now_unix_ns()));
    while (json_array_size(n->events) > NODE_MAX_EVENTS - 1)
        json_array_remove(n->events, 0);
}

int fingerprint_node(struct node *n, const struct agent_config *cfg,
                     const struct fingerprint_root *root, struct nc_error *err)
{
    static const struct fingerprint_root none;
    if (!root)
        root = &none;
    memset(n, 0, sizeof(*n));
    int r = fingerprint_node_id(cfg->data_dir, &n->id, &n->secret_id, err);
    if (r < 0)
        return r;
    struct utsname uts_buf;
    const struct utsname *uts = root->uts;
    if (!uts) {
        uname(&uts_buf);
        uts = &uts_buf;
    }
    struct kvlist *a = &n->attributes;
    n->name = xstrdup(cfg->name ? cfg->name : uts->nodename);
    n->node_class = xstrdup(cfg->client.node_class ? cfg->client.node_class : "");
    n->node_pool = xstrdup(cfg->client.node_pool ? cfg->client.node_pool : "default");
    n->datacenter = xstrdup(cfg->datacenter ? cfg->datacenter : "dc1");
    n->region = xstrdup(cfg->region ? cfg->region : "global");
    n->http_addr = xasprintf("%s:%d", cfg->bind_addr ? cfg->bind_addr : "127.0.0.1",
                             cfg->http_port);
    n->status = xstrdup("ready");
    n->eligible = true;
    n->start_time_unix_ns = nc_now_unix_ns();
    kv_copy(&n->meta, &cfg->client.meta);

    /* CPU */
    char *info = read_under(root->proc, "/proc", "cpuinfo");
    int cores = 0;
    for (const char *p = info; p && (p = strstr(p, "processor")); p++)
        if (p == info || p[-1] == '\n')
            cores++;
    if (cores == 0)
        cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (cores <= 0)
        cores = 1;
    double mhz = 0;
    char *freq = read_under(root->sys, "/sys",
                            "devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");
    if (freq)
        mhz = strtod(freq, NULL) / 1000.0;
    free(freq);
    char *model = info ? cpuinfo_field(info, "model name") : NULL;
    if (mhz <= 0 && info) {
        char *m = cpuinfo_field(info, "cpu MHz");
        if (m)
            mhz = strtod(m, NULL);
        free(m);
    }
    free(info);
    if (mhz <= 0)
        mhz = 1000; /* unknown: Nomad also falls back to a guess */
    int total = cfg->client.cpu_total_compute > 0
                    ? cfg->client.cpu_total_compute
                    : (int)(mhz * cores);
    kv_set(a, "cpu.arch", go_arch(uts->machine));
    set_int(a, "cpu.numcores", cores);
    set_int(a, "cpu.frequency", (long long)mhz);
    set_int(a, "cpu.totalcompute", total);
    set_int(a, "cpu.reservablecores", cores);
    if (model)
        kv_set(a, "cpu.modelname", model);
    free(model);
    n->resources.cpu_mhz = total;
    n->resources.cores = cores;

    /* memory */
    char *mem = read_under(root->proc, "/proc", "meminfo");
    long long kb = 0;
    const char *mt = mem ? strstr(mem, "MemTotal:") : NULL;
    if (mt)
        kb = atoll(mt + strlen("MemTotal:"));
    free(mem);
    long long bytes = cfg->client.memory_total_mb > 0
                          ? (long long)cfg->client.memory_total_mb << 20
                          : kb << 10;
    set_int(a, "memory.totalbytes", bytes);
    n->resources.memory_mb = bytes >> 20;

    /* kernel and OS */
    kv_set(a, "kernel.name", "linux");
    kv_set(a, "kernel.version", uts->release);
    kv_set(a, "kernel.arch", uts->machine);
    kv_set(a, "unique.hostname", uts->nodename);
    char *osr = read_under(root->etc, "/etc", "os-release");
    if (!osr && !root->etc) {
        size_t len;
        osr = nc_read_file("/usr/lib/os-release", &len, SMALL_FILE);
    }
    char *os_id = osr ? os_release_field(osr, "ID") : NULL;
    char *os_ver = osr ? os_release_field(osr, "VERSION_ID") : NULL;
    kv_set(a, "os.name", os_id ? os_id : "linux");
    if (os_ver)
        kv_set(a, "os.version", os_ver);
    free(os_id);
    free(os_ver);
    free(osr);
    kv_set(a, "os.signals",
           "SIGABRT,SIGALRM,SIGBUS,SIGCHLD,SIGCONT,SIGFPE,SIGHUP,SIGILL,SIGINT,"
           "SIGIO,SIGKILL,SIGPIPE,SIGPROF,SIGQUIT,SIGSEGV,SIGSTOP,SIGSYS,"
           "SIGTERM,SIGTRAP,SIGTSTP,SIGTTIN,SIGTTOU,SIGURG,SIGUSR1,SIGUSR2,"
           "SIGWINCH,SIGXCPU,SIGXFSZ");

    /* network */
    char *iface = cfg->client.network_interface
                      ? xstrdup(cfg->client.network_interface)
                      : default_route_iface(root->proc);
    char *ip = iface ? iface_ipv4(iface) : NULL;
    kv_set(a, "unique.network.ip-address", ip ? ip : "127.0.0.1");
    free(ip);
    free(iface);

    /* storage: the filesystem of data_dir */
    struct statvfs vfs;
    if (statvfs(cfg->data_dir, &vfs) == 0) {
        set_int(a, "unique.storage.bytestotal",
                (long long)vfs.f_blocks * (long long)vfs.f_frsize);
        set_int(a, "unique.storage.bytesfree",
                (long long)vfs.f_bavail * (long long)vfs.f_frsize);
        n->resources.disk_mb = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize >> 20;
    }
    char *mounts = read_under(root->proc, "/proc", "self/mounts");
    size_t best = 0;
    for (char *l = mounts; l && *l;) {
        char dev[256], mnt[512];
        if (sscanf(l, "%255s %511s", dev, mnt) == 2) {
            size_t ml = strlen(mnt);
            if (nc_str_has_prefix(cfg->data_dir, mnt) &&
                (ml == 1 || cfg->data_dir[ml] == '/' || cfg->data_dir[ml] == '\0') &&
                ml >= best) {
                best = ml;
                kv_set(a, "unique.storage.volume", dev);
            }
        }
        l = strchr(l, '\n');
        if (l)
            l++;
    }
    free(mounts);

    /* cgroups */
    char *ctl = read_under(root->sys, "/sys", "fs/cgroup/cgroup.controllers");
    kv_set(a, "unique.cgroup.version", ctl ? "v2" : "v1");
    kv_set(a, "unique.cgroup.mountpoint", "/sys/fs/cgroup");
    free(ctl);

    /* agent */
    kv_set(a, "nomad.version", NOMCLIENT_VERSION);
    kv_set(a, "nomad.revision", "nomclient");
    kv_set(a, "nomad.advertise.address", n->http_addr);
    kv_set(a, "nomad.service_discovery", "true");

    /* host volumes */
    n->nhost_volumes = cfg->client.nhost_volumes;
    n->host_volumes = xcalloc(n->nhost_volumes + 1, sizeof(*n->host_volumes));
    for (size_t i = 0; i < n->nhost_volumes; i++) {
        n->host_volumes[i].name = xstrdup(cfg->client.host_volumes[i].name);
        n->host_volumes[i].path = xstrdup(cfg->client.host_volumes[i].path);
        n->host_volumes[i].read_only = cfg->client.host_volumes[i].read_only;
    }

    /* reserved */
    n->reserved.cpu_mhz = cfg->client.reserved.cpu;
    n->reserved.cores = cfg->client.reserved.cores;
    n->reserved.memory_mb = cfg->client.reserved.memory_mb;
    n->reserved.disk_mb = cfg->client.reserved.disk_mb;
    n->reserved.reserved_ports = xstrdup(cfg->client.reserved.reserved_ports);
    return 0;
}

void node_free(struct node *n)
{
    if (!n)
        return;
    free(n->id);
    free(n->secret_id);
    free(n->name);
    free(n->node_class);
    free(n->node_pool);
    free(n->datacenter);
    free(n->region);
    free(n->http_addr);
    free(n->status);
    kv_free(&n->attributes);
    kv_free(&n->meta);
    json_decref(n->events);
    for (size_t i = 0; i < n->ndrivers; i++) {
        free(n->drivers[i].name);
        free(n->drivers[i].health_description);
    }
    free(n->drivers);
    for (size_t i = 0; i < n->nhost_volumes; i++) {
        free(n->host_volumes[i].name);
        free(n->host_volumes[i].path);
    }
    free(n->host_volumes);
    free(n->reserved.reserved_ports);
    memset(n, 0, sizeof(*n));
}

const struct node_driver *node_driver_find(const struct node *n,
                                           const char *name)
{
    for (size_t i = 0; i < n->ndrivers; i++)
        if (strcmp(n->drivers[i].name, name) == 0)
            return &n->drivers[i];
    return NULL;
}

/* ---- CNI plugin versions, in the background ---------------------------- */

int fingerprint_cni_parse_version(const char *output, char *out, size_t outlen)
{
    /* "CNI bridge plugin v1.1.1" (or "version unknown") */
    const char *p = output ? strstr(output, " plugin ") : NULL;
    if (!p)
        return -ENOENT;
    p += strlen(" plugin ");
    size_t n = strcspn(p, " \r\n");
    if (n == 0 || strncmp(p, "version", 7) == 0 || !isdigit((unsigned char)p[p[0] == 'v']))
        return -ENOENT;
    snprintf(out, outlen, "%.*s", (int)n, p);
    return 0;
}

struct cni_probe {
    struct fingerprint_cni *owner;
    uv_process_t proc;
    uv_pipe_t out;
    uv_timer_t timer;
    char name[64];
    char buf[512];
    size_t len;
    int open_handles;
    /* the version is read once the plugin exited and its stderr is all
     * read: the exit can be seen before the last bytes of the pipe */
    bool exited, eof;
    struct cni_probe *next;
};

struct fingerprint_cni {
    struct node *node;
    char pkg_version[64]; /* Debian's package version, for "version unknown" */
    struct cni_probe *probes;
    int live;
    bool stopping;
};

static void probe_closed(uv_handle_t *h)
{
    struct cni_probe *p = h->data;
    if (--p->open_handles > 0)
        return;
    struct fingerprint_cni *c = p->owner;
    struct cni_probe **pp = &c->probes;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    free(p);
    if (--c->live == 0 && c->stopping)
        free(c);
}

static void probe_finish(struct cni_probe *p)
{
    if (uv_is_closing((uv_handle_t *)&p->timer))
        return;
    p->buf[p->len] = '\0';
    char ver[64];
    bool known = fingerprint_cni_parse_version(p->buf, ver, sizeof(ver)) == 0;
    if (!known && strstr(p->buf, " plugin version unknown") &&
        p->owner->pkg_version[0]) {
        snprintf(ver, sizeof(ver), "%s", p->owner->pkg_version);
        known = true;
    }
    if (!p->owner->stopping && known) {
        char key[128];
        snprintf(key, sizeof(key), "plugins.cni.version.%s", p->name);
        kv_set(&p->owner->node->attributes, key, ver);
    }
    uv_close((uv_handle_t *)&p->timer, probe_closed);
    if (!uv_is_closing((uv_handle_t *)&p->out))
        uv_close((uv_handle_t *)&p->out, probe_closed);
}

static void probe_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    struct cni_probe *p = h->data;
    b->base = p->buf + p->len;
    b->len = sizeof(p->buf) - 1 - p->len;
}

static void probe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct cni_probe *p = s->data;
    if (n > 0)
        p->len += (size_t)n;
    if (n < 0 || p->len >= sizeof(p->buf) - 1) {
        uv_read_stop(s);
        uv_close((uv_handle_t *)&p->out, probe_closed);
        p->eof = true;
        if (p->exited)
            probe_finish(p);
    }
}

static void probe_exit(uv_process_t *proc, int64_t status, int sig)
{
    struct cni_probe *p = proc->data;
    uv_close((uv_handle_t *)proc, probe_closed);
    p->exited = true;
    if (p->eof)
        probe_finish(p);
}

static void probe_timeout(uv_timer_t *t)
{
    struct cni_probe *p = t->data;
    if (p->exited) /* a child of the plugin holds its stderr open */
        probe_finish(p);
    else
        uv_process_kill(&p->proc, SIGKILL);
}

/* Debian builds the plugins without a version string; the package's
 * upstream version ("1.1.1+ds1-3" -> "v1.1.1") says the same thing. */
static void dpkg_version(const char *pkg, char *out, size_t outlen)
{
    size_t len;
    char *txt = nc_read_file("/var/lib/dpkg/status", &len, 64u << 20);
    out[0] = '\0';
    char *want = xasprintf("Package: %s\n", pkg);
    char *p = txt ? strstr(txt, want) : NULL;
    char *end = p ? strstr(p, "\n\n") : NULL;
    char *v = p ? strstr(p, "\nVersion: ") : NULL;
    if (v && (!end || v < end)) {
        v += strlen("\nVersion: ");
        if (strchr(v, ':') && strchr(v, ':') < strchr(v, '\n'))
            v = strchr(v, ':') + 1; /* epoch */
        size_t n = strcspn(v, "+-~\n");
        snprintf(out, outlen, "v%.*s", (int)n, v);
    }
    free(want);
    free(txt);
}

int fingerprint_cni_start(struct fingerprint_cni **out, struct node *n,
                          uv_loop_t *loop, const char *cni_path)
{
    *out = NULL;
    DIR *d = opendir(cni_path);
    if (!d)
        return -errno;
    struct fingerprint_cni *c = xcalloc(1, sizeof(*c));
    c->node = n;
    dpkg_version("containernetworking-plugins", c->pkg_version,
                 sizeof(c->pkg_version));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= 64)
            continue;
        char *path = xasprintf("%s/%s", cni_path, e->d_name);
        if (access(path, X_OK) < 0) {
            free(path);
            continue;
        }
        struct cni_probe *p = xcalloc(1, sizeof(*p));
        p->owner = c;
        snprintf(p->name, sizeof(p->name), "%.63s", e->d_name);
        uv_pipe_init(loop, &p->out, 0);
        uv_timer_init(loop, &p->timer);
        p->out.data = p->timer.data = p->proc.data = p;
        char *args[] = {path, NULL};
        char *env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        /* plugins print "CNI <name> plugin <version>" on stderr */
        uv_stdio_container_t stdio[3] = {
            {.flags = UV_IGNORE},
            {.flags = UV_IGNORE},
            {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
             .data.stream = (uv_stream_t *)&p->out},
        };
        uv_process_options_t opts = {.file = path, .args = args, .env = env,
                                     .stdio = stdio, .stdio_count = 3,
                                     .exit_cb = probe_exit};
        int r = uv_spawn(loop, &p->proc, &opts);
        free(path);
        c->live++;
        p->next = c->probes;
        c->probes = p;
        if (r < 0) {
            p->open_handles = 2;
            uv_close((uv_handle_t *)&p->out, probe_closed);
            uv_close((uv_handle_t *)&p->timer, probe_closed);
            continue;
        }
        p->open_handles = 3;
        uv_read_start((uv_stream_t *)&p->out, probe_alloc, probe_read);
        uv_timer_start(&p->timer, probe_timeout, 2000, 0);
    }
    closedir(d);
    if (c->live == 0) {
        free(c);
        return 0;
    }
    *out = c;
    return 0;
}

void fingerprint_cni_stop(struct fingerprint_cni *c)
{
    if (!c)
        return;
    c->stopping = true;
    if (c->live == 0) {
        free(c);
        return;
    }
    for (struct cni_probe *p = c->probes; p; p = p->next)
        if (!uv_is_closing((uv_handle_t *)&p->proc))
            uv_process_kill(&p->proc, SIGKILL);
}
