#!/usr/bin/env python3
"""A stand-in for a Consul agent's HTTP API, for nomclient's tests and bench.

Only the standard library, only 127.0.0.1 or a unix socket. It answers like
Consul's agent (agent/agent_endpoint.go, agent/structs, acl) for:

  PUT /v1/agent/service/register[?replace-existing-checks=true]
  PUT /v1/agent/service/deregister/:id
  PUT /v1/agent/check/update/:id            {"Status", "Output"}
  PUT /v1/agent/check/pass|warn|fail/:id   (?note=)
  GET /v1/agent/services                   keyed by ID, Consul's fields
  GET /v1/agent/checks                     keyed by CheckID
  GET /v1/agent/self, /v1/status/leader

with Consul's status codes and wording where they matter:
  400 "Request decode failed: ..." (not JSON, Port not a number, bad TTL)
  400 "Missing service name", "Invalid service address"
  400 "Invalid Service Meta: Couldn't load metadata pair ('k', 'v'): ..."
  400 "Invalid check: TTL must be > 0 for TTL checks" (and the interval one)
  400 "Status for checks must 'passing', 'warning', 'critical'"
  400 "Invalid check status: 'x'"
  404 "Unknown service ID ..." on deregistration of an unknown ID
  500 'CheckID "x" does not have associated TTL' on updating an unknown check
  403 "ACL not found" for a token it does not know (--token set), and
  403 "Permission denied: token with AccessorID '...' lacks permission
      'service:write' on \"name\"" for writes without a token; reads without
      a token are filtered to nothing, as Consul's anonymous token would.
TTL checks expire: no update within the TTL turns a check critical with
output "TTL expired" (plus the last output, as Consul words it).

For tests: a JSON-lines request log (--log), GET /fake/stats (counters and
this process's CPU time, to show the server is not a bench's bottleneck),
GET /fake/events (check status transitions), PUT /fake/down?seconds=N
(stop listening and drop every connection, back after N seconds; 0 = until
SIGUSR2; SIGUSR1 does the same as seconds=0; &mode=reset keeps listening
but resets every connection at once, each logged with method "DOWN", so a
test can count the attempts made while "down"), PUT /fake/reset, and
--state FILE to keep services and checks across a restart. Control paths
need no token.
"""
import argparse
import asyncio
import json
import os
import re
import signal
import ssl
import sys
import time
import urllib.parse

ANON_ACCESSOR = "00000000-0000-0000-0000-000000000002"
CHECK_BUF_SIZE = 4096
META_KEY_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
DURATION_RE = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|\u00b5s|ms|s|m|h)")
UNITS = {"ns": 1, "us": 1e3, "\u00b5s": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9,
         "h": 3600e9}
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 411: "Length Required",
           413: "Request Entity Too Large", 500: "Internal Server Error"}


class HTTPError(Exception):
    def __init__(self, status, text):
        super().__init__(text)
        self.status = status
        self.text = text


def go_duration(v):
    """time.ParseDuration's rules, and its error wording."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return int(v)  # nanoseconds, as a Go time.Duration in JSON
    if not isinstance(v, str):
        raise HTTPError(400, "Request decode failed: time: invalid duration "
                        + json.dumps(str(v)))
    s = v
    if s in ("0", ""):
        if s == "":
            raise HTTPError(400, 'Request decode failed: time: invalid '
                            'duration ""')
        return 0
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    pos, total = 0, 0.0
    while pos < len(s):
        m = DURATION_RE.match(s, pos)
        if not m or m.group(1) in ("", "."):
            raise HTTPError(400, "Request decode failed: time: invalid "
                            "duration " + json.dumps(v))
        total += float(m.group(1)) * UNITS[m.group(2)]
        pos = m.end()
    if pos == 0:
        raise HTTPError(400, "Request decode failed: time: invalid duration "
                        + json.dumps(v))
    return sign * int(total)


def go_string(ns):
    """A Go time.Duration's String() for whole milliseconds and up."""
    if ns == 0:
        return "0s"
    out, neg = "", ns < 0
    ns = abs(ns)
    if ns < 1000000000:
        return ("-" if neg else "") + ("%gms" % (ns / 1e6))
    h, rem = divmod(ns, 3600 * 10**9)
    m, rem = divmod(rem, 60 * 10**9)
    if h:
        out += "%dh" % h
    if h or m:
        out += "%dm" % m
    out += ("%d" % (rem // 10**9)) if rem % 10**9 == 0 else ("%g" % (rem / 1e9))
    return ("-" if neg else "") + out + "s"


def ci_get(obj, key, default=None):
    """Consul decodes bodies case-insensitively (and snake_case)."""
    if key in obj:
        return obj[key]
    low = key.lower()
    for k, v in obj.items():
        if k.lower() == low or k.replace("_", "").lower() == low:
            return v
    return default


class Consul:
    def __init__(self, args):
        self.args = args
        self.services = {}
        self.checks = {}
        self.timers = {}
        self.index = 1
        self.gen = 0
        self.cache = {}
        self.events = []
        self.requests = 0
        self.writes = 0
        self.by_kind = {}
        self.started = time.time()
        self.logf = open(args.log, "a", buffering=1) if args.log else None
        if args.state and os.path.exists(args.state):
            with open(args.state) as f:
                st = json.load(f)
            self.services = st.get("services", {})
            self.checks = st.get("checks", {})
            for cid, c in self.checks.items():
                self.arm(cid, c)

    # ---- state ----

    def save(self):
        if self.args.state:
            tmp = self.args.state + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"services": self.services, "checks": self.checks}, f)
            os.replace(tmp, self.args.state)

    def changed(self):
        self.gen += 1
        self.index += 1

    def event(self, cid, old, new, output):
        self.events.append({"t": time.time(), "CheckID": cid, "From": old,
                            "To": new, "Output": output[:200]})
        if len(self.events) > 100000:
            del self.events[:50000]

    def arm(self, cid, c):
        t = self.timers.pop(cid, None)
        if t:
            t.cancel()
        ttl = c.get("_ttl", 0)
        if ttl > 0:
            loop = asyncio.get_event_loop()
            self.timers[cid] = loop.call_later(ttl / 1e9, self.expire, cid)

    def expire(self, cid):
        self.timers.pop(cid, None)
        c = self.checks.get(cid)
        if not c:
            return
        last = c.get("_last_output", "")
        out = "TTL expired" if not last else \
            "TTL expired (last output before timeout follows): " + last
        if c["Status"] != "critical" or c["Output"] != out:
            self.event(cid, c["Status"], "critical", out)
            c["Status"], c["Output"] = "critical", out
            self.changed()

    # ---- ACLs ----

    def resolve(self, token):
        """None: anonymous; raises on a token Consul does not know."""
        if not self.args.token:
            return "management"
        if not token:
            return None
        if token != self.args.token:
            raise HTTPError(403, "ACL not found")
        return "management"

    def need_write(self, who, name):
        if who is None:
            raise HTTPError(403, "Permission denied: token with AccessorID "
                            "'%s' lacks permission 'service:write' on %s"
                            % (ANON_ACCESSOR, json.dumps(name)))

    # ---- endpoints ----

    def register(self, body, query, who):
        try:
            d = json.loads(body.decode("utf-8") if body else "")
        except Exception as e:
            raise HTTPError(400, "Request decode failed: %s" % e)
        if not isinstance(d, dict):
            raise HTTPError(400, "Request decode failed: json: cannot "
                            "unmarshal %s into Go value of type "
                            "structs.ServiceDefinition" % type(d).__name__)
        port = ci_get(d, "Port", 0)
        if port is None:
            port = 0
        if not isinstance(port, int) or isinstance(port, bool):
            raise HTTPError(400, "Request decode failed: json: cannot "
                            "unmarshal %s into Go struct field "
                            "ServiceDefinition.Port of type int"
                            % ("string" if isinstance(port, str)
                               else "number"))
        if port > 2**63 - 1 or port < -2**63:
            raise HTTPError(400, "Request decode failed: json: cannot "
                            "unmarshal number %d into Go struct field "
                            "ServiceDefinition.Port of type int" % port)
        defs = []
        one = ci_get(d, "Check")
        if isinstance(one, dict) and one:
            defs.append(one)
        many = ci_get(d, "Checks") or []
        if not isinstance(many, list):
            raise HTTPError(400, "Request decode failed: json: cannot "
                            "unmarshal object into Go struct field "
                            "ServiceDefinition.Checks of type "
                            "structs.CheckTypes")
        defs += [c for c in many if isinstance(c, dict)]
        for c in defs:  # decoding the durations comes first, as in Go
            for k in ("TTL", "Interval", "Timeout",
                      "DeregisterCriticalServiceAfter"):
                v = ci_get(c, k)
                if v is not None:
                    c["_" + k] = go_duration(v)
        name = ci_get(d, "Name") or ""
        if not isinstance(name, str) or not name:
            raise HTTPError(400, "Missing service name")
        address = ci_get(d, "Address") or ""
        if address in ("0.0.0.0", "::", "[::]"):
            raise HTTPError(400, "Invalid service address")
        meta = ci_get(d, "Meta") or {}
        if len(meta) > 64:
            raise HTTPError(400, "Invalid Service Meta: Node metadata cannot "
                            "contain more than 64 key/value pairs")
        for k, v in meta.items():
            why = None
            if k == "":
                why = "Key cannot be blank"
            elif not META_KEY_RE.match(k):
                why = "Key contains invalid characters"
            elif len(k) > 128:
                why = "Key is too long (limit: 128 characters)"
            elif k.startswith("consul-"):
                why = "Key prefix 'consul-' is reserved for internal use"
            elif len(str(v)) > 512:
                why = "Value is too long (limit: 512 characters)"
            if why:
                raise HTTPError(400, "Invalid Service Meta: Couldn't load "
                                "metadata pair ('%s', '%s'): %s" % (k, v, why))
        for c in defs:
            interval_kind = any(ci_get(c, k) for k in
                                ("HTTP", "TCP", "Args", "ScriptArgs", "GRPC",
                                 "H2PING", "UDP", "OSService",
                                 "DockerContainerID"))
            if interval_kind and ci_get(c, "TTL") is not None:
                raise HTTPError(400, "Invalid check: Interval and TTL cannot "
                                "both be specified")
            if interval_kind and c.get("_Interval", 0) <= 0:
                raise HTTPError(400, "Invalid check: Interval must be > 0 "
                                "for Script, HTTP, H2PING, TCP, UDP or "
                                "OSService checks")
            if not interval_kind and c.get("_TTL", 0) <= 0:
                raise HTTPError(400, "Invalid check: TTL must be > 0 for TTL "
                                "checks")
            st = ci_get(c, "Status")
            if st and st not in ("passing", "warning", "critical"):
                raise HTTPError(400, "Status for checks must 'passing', "
                                "'warning', 'critical'")
        self.need_write(who, name)
        sid = ci_get(d, "ID") or name
        tags = ci_get(d, "Tags") or []
        svc = {"ID": sid, "Service": name, "Tags": tags,
               "Meta": {k: str(v) for k, v in meta.items()}, "Port": port,
               "Address": address,
               "Weights": {"Passing": 1, "Warning": 1},
               "EnableTagOverride": bool(ci_get(d, "EnableTagOverride",
                                                False)),
               "Datacenter": "dc1"}
        if re.match(r"^[0-9.]+$", address):
            svc["TaggedAddresses"] = {
                "lan_ipv4": {"Address": address, "Port": port},
                "wan_ipv4": {"Address": address, "Port": port}}
        self.services[sid] = svc
        replace = query.get("replace-existing-checks", ["false"])[0] in \
            ("", "true")
        keep = set()
        for n, c in enumerate(defs):
            cid = ci_get(c, "CheckID") or ci_get(c, "ID") or \
                ("service:%s" % sid if len(defs) == 1 else
                 "service:%s:%d" % (sid, n + 1))
            keep.add(cid)
            old = self.checks.get(cid)
            status = ci_get(c, "Status") or "critical"
            ttl = c.get("_TTL", 0)
            chk = {"Node": "fake-consul", "CheckID": cid,
                   "Name": ci_get(c, "Name") or "Service '%s' check" % name,
                   "Status": status, "Notes": ci_get(c, "Notes") or "",
                   "Output": "", "ServiceID": sid, "ServiceName": name,
                   "ServiceTags": tags, "Type": "ttl" if ttl else "http",
                   "Interval": "", "Timeout": "", "ExposedPort": 0,
                   # structs.HealthCheckDefinition: TTL is a time.Duration
                   "Definition": {"TTL": ttl} if ttl else {},
                   "CreateIndex": old["CreateIndex"] if old else self.index,
                   "ModifyIndex": self.index, "_ttl": ttl,
                   "_last_output": ""}
            if not old or old["Status"] != status:
                self.event(cid, old["Status"] if old else None, status, "")
            self.checks[cid] = chk
            self.arm(cid, chk)
        if replace:
            for cid in [k for k, c in self.checks.items()
                        if c["ServiceID"] == sid and k not in keep]:
                self.drop_check(cid)
        self.changed()
        return 200, b""

    def drop_check(self, cid):
        self.checks.pop(cid, None)
        t = self.timers.pop(cid, None)
        if t:
            t.cancel()

    def deregister(self, sid, who):
        svc = self.services.get(sid)
        if not svc:
            raise HTTPError(404, "Unknown service ID %s. Ensure that the "
                            "service ID is passed, not the service name."
                            % json.dumps(sid))
        self.need_write(who, svc["Service"])
        del self.services[sid]
        for cid in [k for k, c in self.checks.items() if c["ServiceID"] == sid]:
            self.drop_check(cid)
        self.changed()
        return 200, b""

    def update_check(self, cid, status, output, who):
        if status not in ("passing", "warning", "critical"):
            raise HTTPError(400, "Invalid check status: '%s'" % status)
        c = self.checks.get(cid)
        if c:
            self.need_write(who, c["ServiceName"])
        if not c or not c.get("_ttl"):
            raise HTTPError(500, "CheckID %s does not have associated TTL"
                            % json.dumps(cid))
        if not isinstance(output, str):
            output = ""
        total = len(output.encode())
        if total > CHECK_BUF_SIZE:
            output = "%s ... (captured %d of %d bytes)" % (
                output.encode()[:CHECK_BUF_SIZE].decode("utf-8", "replace"),
                CHECK_BUF_SIZE, total)
        if c["Status"] != status:
            self.event(cid, c["Status"], status, output)
        if c["Status"] != status or c["Output"] != output:
            c["Status"], c["Output"] = status, output
            c["ModifyIndex"] = self.index
            self.changed()
        c["_last_output"] = output
        self.arm(cid, c)
        return 200, b""

    def listing(self, which, who):
        """GET answers, serialised once per change."""
        if who is None and self.args.token:
            return b"{}", True
        key = which
        hit = self.cache.get(key)
        if hit and hit[0] == self.gen:
            return hit[1], False
        if which == "services":
            data = self.services
        else:
            data = {k: {kk: vv for kk, vv in c.items() if kk[0] != "_"}
                    for k, c in self.checks.items()}
        text = json.dumps(data, separators=(",", ":")).encode()
        self.cache[key] = (self.gen, text)
        return text, False

    def handle(self, method, target, headers, body):
        u = urllib.parse.urlsplit(target)
        path = urllib.parse.unquote(u.path)
        query = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        token = headers.get("x-consul-token") or \
            query.get("token", [""])[0]
        auth = headers.get("authorization", "")
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        extra = {}
        if path.startswith("/fake/"):
            return self.control(method, path, query) + (extra,)
        who = self.resolve(token)
        if path == "/v1/agent/services" and method == "GET":
            text, filtered = self.listing("services", who)
            if filtered:
                extra["X-Consul-Results-Filtered-By-ACLs"] = "true"
            return 200, text, extra
        if path == "/v1/agent/checks" and method == "GET":
            text, filtered = self.listing("checks", who)
            if filtered:
                extra["X-Consul-Results-Filtered-By-ACLs"] = "true"
            return 200, text, extra
        if path == "/v1/status/leader":
            return 200, b'"127.0.0.1:8300"', extra
        if path == "/v1/agent/self":
            return 200, json.dumps({"Config": {"Datacenter": "dc1",
                                               "NodeName": "fake-consul",
                                               "Version": "1.17.0"}}
                                   ).encode(), extra
        if method != "PUT" and path.startswith("/v1/agent/") and \
                path.split("/")[3] in ("service", "check"):
            raise HTTPError(405, "method %s not allowed" % method)
        if path == "/v1/agent/service/register":
            return self.register(body, query, who) + (extra,)
        if path.startswith("/v1/agent/service/deregister/"):
            return self.deregister(path[len("/v1/agent/service/deregister/"):],
                                   who) + (extra,)
        if path.startswith("/v1/agent/check/update/"):
            try:
                d = json.loads(body.decode("utf-8") if body else "{}")
                if not isinstance(d, dict):
                    raise ValueError("not an object")
            except Exception as e:
                raise HTTPError(400, "Request decode failed: %s" % e)
            return self.update_check(path[len("/v1/agent/check/update/"):],
                                     ci_get(d, "Status", ""),
                                     ci_get(d, "Output", ""), who) + (extra,)
        for verb, st in (("pass", "passing"), ("warn", "warning"),
                         ("fail", "critical")):
            p = "/v1/agent/check/%s/" % verb
            if path.startswith(p):
                return self.update_check(path[len(p):], st,
                                         query.get("note", [""])[0],
                                         who) + (extra,)
        raise HTTPError(404, "Not Found")

    def control(self, method, path, query):
        if path == "/fake/stats":
            t = os.times()
            return 200, json.dumps({
                "requests": self.requests, "writes": self.writes,
                "by_kind": self.by_kind, "services": len(self.services),
                "checks": len(self.checks),
                "cpu_seconds": t.user + t.system,
                "uptime": time.time() - self.started}).encode()
        if path == "/fake/events":
            since = float(query.get("since", ["0"])[0])
            return 200, json.dumps([e for e in self.events
                                    if e["t"] >= since]).encode()
        if path == "/fake/reset":
            for t in self.timers.values():
                t.cancel()
            self.timers.clear()
            self.services.clear()
            self.checks.clear()
            self.events.clear()
            self.requests = self.writes = 0
            self.by_kind.clear()
            self.changed()
            return 200, b"{}"
        if path == "/fake/down":
            secs = float(query.get("seconds", ["0"])[0])
            mode = query.get("mode", ["refuse"])[0]
            asyncio.get_event_loop().call_later(0.05, SERVER.go_down, secs,
                                                mode)
            return 200, b"{}"
        raise HTTPError(404, "Not Found")

    def log_down(self):
        if self.logf:
            self.logf.write(json.dumps({"t": time.time(), "method": "DOWN",
                                        "path": "", "status": 0,
                                        "token": "", "body": ""}) + "\n")

    def log(self, method, target, status, token, body, t):
        self.requests += 1
        kind = "read" if method == "GET" else "write"
        if target.startswith("/fake/"):
            kind = "control"
        elif method != "GET":
            self.writes += 1
        p = target.split("?")[0]
        for prefix in ("/v1/agent/service/register",
                       "/v1/agent/service/deregister/",
                       "/v1/agent/check/update/", "/v1/agent/services",
                       "/v1/agent/checks"):
            if p.startswith(prefix):
                self.by_kind[prefix] = self.by_kind.get(prefix, 0) + 1
        if self.logf and kind != "control" and not SERVER.resetting:
            self.logf.write(json.dumps({
                "t": t, "method": method, "path": target, "status": status,
                "token": token, "body": body[:4096].decode("utf-8",
                                                            "replace")}) + "\n")


class Conn(asyncio.Protocol):
    def __init__(self, server):
        self.server = server
        self.buf = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        if self.server.resetting:
            self.server.consul.log_down()
            transport.abort()
            return
        self.server.conns.add(self)

    def connection_lost(self, exc):
        self.server.conns.discard(self)

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    self.transport.close()
                return
            head = self.buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                self.transport.close()
                return
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                self.reply(411, b"chunked bodies are not supported", {}, True)
                return
            n = int(headers.get("content-length", "0") or 0)
            if n > 32 << 20:
                self.reply(413, b"too large", {}, True)
                return
            if len(self.buf) < end + 4 + n:
                return
            body = self.buf[end + 4:end + 4 + n]
            self.buf = self.buf[end + 4 + n:]
            close = headers.get("connection", "").lower() == "close" or \
                version == "HTTP/1.0"
            t = time.time()
            consul = self.server.consul
            try:
                status, out, extra = consul.handle(method, target, headers, body)
            except HTTPError as e:
                status, out, extra = e.status, e.text.encode(), {}
            consul.log(method, target, status,
                       headers.get("x-consul-token", ""), body, t)
            self.reply(status, out, extra, close)
            if close:
                return

    def reply(self, status, body, extra, close):
        ctype = "application/json" if status == 200 else \
            "text/plain; charset=utf-8"
        head = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status")),
                "Content-Type: " + ctype,
                "Content-Length: %d" % len(body),
                "X-Consul-Index: %d" % self.server.consul.index]
        head += ["%s: %s" % kv for kv in extra.items()]
        if close:
            head.append("Connection: close")
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        if close:
            self.transport.close()


class Server:
    def __init__(self, args):
        self.args = args
        self.consul = Consul(args)
        self.conns = set()
        self.servers = []
        self.port = None
        self.up_timer = None
        self.resetting = False
        self.sslctx = None
        if args.tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.tls_cert, args.tls_key)
            if args.tls_client_ca:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(args.tls_client_ca)
            self.sslctx = ctx

    async def listen(self):
        loop = asyncio.get_event_loop()
        if self.args.unix:
            try:
                os.unlink(self.args.unix)
            except FileNotFoundError:
                pass
            self.servers.append(await loop.create_unix_server(
                lambda: Conn(self), self.args.unix, ssl=self.sslctx))
        if self.args.port is not None:
            srv = await loop.create_server(
                lambda: Conn(self), "127.0.0.1",
                self.port if self.port is not None else self.args.port,
                ssl=self.sslctx, reuse_address=True, backlog=1024)
            self.port = srv.sockets[0].getsockname()[1]
            self.servers.append(srv)

    def go_down(self, seconds, mode="refuse"):
        if mode == "reset":
            self.resetting = True
        else:
            for s in self.servers:
                s.close()
            self.servers = []
        for c in list(self.conns):
            c.transport.abort()
        if self.up_timer:
            self.up_timer.cancel()
            self.up_timer = None
        if seconds > 0:
            self.up_timer = asyncio.get_event_loop().call_later(
                seconds, self.come_up)
        print("down", flush=True)

    def come_up(self):
        self.up_timer = None
        self.resetting = False
        if not self.servers:
            asyncio.ensure_future(self.listen())
            print("up", flush=True)


SERVER = None


async def main():
    global SERVER
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=None,
                    help="TCP port on 127.0.0.1 (0 = any)")
    ap.add_argument("--unix", help="also (or only) listen on this socket")
    ap.add_argument("--ready-file", help="written once listening: the port")
    ap.add_argument("--token", help="ACLs on: the one token that may write")
    ap.add_argument("--log", help="append one JSON line per request here")
    ap.add_argument("--state", help="keep services and checks in this file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-client-ca", help="require client certificates")
    args = ap.parse_args()
    if args.port is None and not args.unix:
        args.port = 0
    SERVER = Server(args)
    await SERVER.listen()
    loop = asyncio.get_event_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(1))
    loop.add_signal_handler(signal.SIGUSR1, SERVER.go_down, 0)
    loop.add_signal_handler(signal.SIGUSR2, SERVER.come_up)
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%s\n" % (SERVER.port if SERVER.port is not None else 0))
        os.replace(tmp, args.ready_file)
    print("listening on 127.0.0.1:%s%s" % (SERVER.port,
                                           " and " + args.unix
                                           if args.unix else ""), flush=True)
    await stop
    SERVER.consul.save()
    if args.unix:
        try:
            os.unlink(args.unix)
        except OSError:
            pass


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
