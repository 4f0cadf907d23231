#!/usr/bin/env python3
"""Targets for tests/integration/test_checks.sh, all on 127.0.0.1.

  checks_servers.py serve PORTFILE [CERT KEY [EXPIRED_CERT EXPIRED_KEY]]
      listens on one free port per behaviour, writes "name port" lines to
      PORTFILE once all listen, and serves until killed:
        ok        200 "healthy"
        warn      429
        fail      503 "down"
        hang      accepts, reads, never answers
        trickle   a 200 answer, one byte per second
        endless   200 and a body that never ends
        midbody   200 with Content-Length 100, 7 bytes, then close
        midhead   half a status line, then close
        loop      302 to itself, forever
        redirect  301 /old -> /new, which answers 200
        tls       HTTPS 200 with the given (self-signed) certificate
        expired   HTTPS 200 with the given expired certificate
        tlsendless  HTTPS (self-signed) 200 and a body that never ends
  checks_servers.py field RESULTS ID KEY [N]
      prints KEY of the Nth (default 1st) "result" line for check ID in the
      JSON lines file RESULTS (empty if none).
  checks_servers.py final RESULTS ID KEY [SUBKEY]
      prints a key of check ID in the "final" engine dump.
"""
import json
import socket
import ssl
import sys
import threading
import time


def read_request(conn):
    data = b""
    conn.settimeout(10)
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def answer(conn, status, body=b"", extra=b""):
    conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: " +
                 str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


def handle(name, conn):
    try:
        req = read_request(conn)
        if name == "ok":
            answer(conn, b"200 OK", b"healthy")
        elif name == "warn":
            answer(conn, b"429 Too Many Requests", b"slow down")
        elif name == "fail":
            answer(conn, b"503 Service Unavailable", b"down")
        elif name == "hang":
            time.sleep(30)
        elif name == "trickle":
            for b in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
                conn.sendall(bytes([b]))
                time.sleep(1)
        elif name in ("endless", "tlsendless"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
            chunk = b"x" * 65536
            deadline = time.time() + 30
            while time.time() < deadline:
                conn.sendall(chunk)
        elif name == "midbody":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        elif name == "midhead":
            conn.sendall(b"HTTP/1.1 200 O")
        elif name == "loop":
            answer(conn, b"302 Found", b"", b"Location: /loop\r\n")
        elif name == "redirect":
            path = req.split(b" ")[1] if req.count(b" ") >= 2 else b"/"
            if path == b"/new":
                answer(conn, b"200 OK", b"moved fine")
            else:
                answer(conn, b"301 Moved Permanently", b"",
                       b"Location: /new\r\n")
        elif name in ("tls", "expired"):
            answer(conn, b"200 OK", b"secure")
    except (OSError, ssl.SSLError):
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def serve_port(name, sock, tls_ctx):
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        if tls_ctx is not None:
            def wrap_and_handle(c=conn):
                try:
                    c.settimeout(10)
                    s = tls_ctx.wrap_socket(c, server_side=True)
                except (OSError, ssl.SSLError):
                    c.close()
                    return
                handle(name, s)
            threading.Thread(target=wrap_and_handle, daemon=True).start()
        else:
            threading.Thread(target=handle, args=(name, conn),
                             daemon=True).start()


def serve(portfile, cert=None, key=None, expired_cert=None,
          expired_key=None):
    names = ["ok", "warn", "fail", "hang", "trickle", "endless", "midbody",
             "midhead", "loop", "redirect"]
    certs = {}
    if cert:
        names += ["tls", "tlsendless"]
        certs["tls"] = certs["tlsendless"] = (cert, key)
    if expired_cert:
        names.append("expired")
        certs["expired"] = (expired_cert, expired_key)
    lines = []
    for name in names:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        ctx = None
        if name in certs:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*certs[name])
        threading.Thread(target=serve_port, args=(name, s, ctx),
                         daemon=True).start()
        lines.append("%s %d\n" % (name, s.getsockname()[1]))
    with open(portfile + ".tmp", "w") as f:
        f.writelines(lines)
    import os
    os.rename(portfile + ".tmp", portfile)
    while True:
        time.sleep(3600)


def events(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except ValueError:
                    pass


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        serve(*sys.argv[2:7])
    elif len(sys.argv) >= 5 and sys.argv[1] == "field":
        n = int(sys.argv[5]) if len(sys.argv) > 5 else 1
        seen = 0
        for e in events(sys.argv[2]):
            if e.get("event") == "result" and e.get("id") == sys.argv[3]:
                seen += 1
                if seen == n:
                    v = e.get(sys.argv[4], "")
                    print(json.dumps(v) if isinstance(v, bool) else v)
                    return
    elif len(sys.argv) >= 5 and sys.argv[1] == "final":
        for e in events(sys.argv[2]):
            if e.get("event") == "final":
                v = e["checks"].get(sys.argv[3], {}).get(sys.argv[4], "")
                if len(sys.argv) > 5 and isinstance(v, dict):
                    v = v.get(sys.argv[5], "")
                print(v)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
