# A minimal grpc.health.v1 server over h2c, Python stdlib only, for
# test_script_grpc.sh and bench_script_grpc.sh: SERVING while the flag
# file exists, NOT_SERVING otherwise, grpc-status NOT_FOUND for a service
# other than the one named. Loopback only. It reads no request header
# (HPACK is not decoded): every stream's DATA is a Health/Check call.
# (Debian's python3-grpcio 1.51 stalled answers on this machine.) With a
# fourth argument CERT:KEY it speaks TLS (ALPN h2) instead of h2c.
import os
import socket
import ssl
import struct
import sys
import threading

port, flag, service = int(sys.argv[1]), sys.argv[2], sys.argv[3]
tls = None
if len(sys.argv) > 4:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(*sys.argv[4].split(":", 1))
    tls.set_alpn_protocols(["h2"])
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack(">I", stream) + payload


def literal(name, value):  # literal header field, new name, not indexed
    return bytes([0, len(name)]) + name + bytes([len(value)]) + value


def answer(stream, message):
    asked = b""
    body = message[5:]
    if body[:1] == b"\x0a":
        asked = body[2:2 + body[1]]
    # :status 200 (static index 8), content-type (name index 31)
    head = b"\x88" + b"\x0f\x10" + bytes([16]) + b"application/grpc"
    out = frame(1, 4, stream, head)  # HEADERS, END_HEADERS
    if asked and asked.decode() != service:
        trailers = literal(b"grpc-status", b"5") + \
            literal(b"grpc-message", b"unknown service")
    else:
        status = b"\x08\x01" if os.path.exists(flag) else b"\x08\x02"
        out += frame(0, 0, stream, b"\x00" + struct.pack(">I", 2) + status)
        trailers = literal(b"grpc-status", b"0")
    return out + frame(1, 5, stream, trailers)  # END_STREAM|END_HEADERS


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def serve(conn):
    try:
        if read_exact(conn, len(PREFACE)) != PREFACE:
            return
        conn.sendall(frame(4, 0, 0))  # our SETTINGS
        data = {}
        while True:
            hdr = read_exact(conn, 9)
            length = struct.unpack(">I", b"\0" + hdr[:3])[0]
            kind, flags = hdr[3], hdr[4]
            stream = struct.unpack(">I", hdr[5:9])[0] & 0x7fffffff
            payload = read_exact(conn, length)
            if kind == 4 and not flags & 1:
                conn.sendall(frame(4, 1, 0))  # SETTINGS ACK
            elif kind == 6 and not flags & 1:
                conn.sendall(frame(6, 1, 0, payload))  # PING ACK
            elif kind == 0:
                if flags & 8:  # PADDED
                    payload = payload[1:len(payload) - payload[0]]
                data[stream] = data.get(stream, b"") + payload
                if flags & 1:
                    conn.sendall(answer(stream, data.pop(stream)))
    except (EOFError, OSError):
        pass
    finally:
        conn.close()


srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
def serve_tls(conn):
    try:
        conn = tls.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError):
        conn.close()
        return
    serve(conn)


while True:
    c, _ = srv.accept()
    threading.Thread(target=serve_tls if tls else serve, args=(c,),
                     daemon=True).start()
