#!/usr/bin/env python3
"""Independent PiggyBack 1.1 (protocol version 1) peer, written from PROTOCOL.md.

Standard library only; the RFC 6455 framing is done by hand so that it shares
no code (and no bugs) with the C implementation it is used to test.

  v1-peer.py serve   --port WSPORT [--tunnel-port TPORT]   acts as a 1.1 server
  v1-peer.py forward --server HOST:WSPORT --port LOCALPORT acts as a 1.1 client

Anything suspicious the other side does (v2 frames, v2 HELLO members, RSV bits,
wrong masking...) is reported on stderr as "v1-peer: warning: ...", so a test
can assert that a v2 implementation speaks pure version 1 to a 1.1 peer.
Design: one thread per socket direction; every connection has an unbounded
outbound queue drained by its own writer thread, so the WebSocket reader never
blocks on a slow TCP socket.
"""
import argparse, base64, hashlib, json, os, queue, socket, struct, sys, threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PATH = "/http-stream"
OPEN, DATA, CLOSE, HELLO = 1, 2, 3, 4
CHUNK = 64 * 1024                    # max DATA payload we send
MAX_MESSAGE = 16 * 1024 * 1024       # refuse absurd reassembled messages


def log(msg):
    sys.stderr.write("v1-peer: %s\n" % msg)
    sys.stderr.flush()


def warn(msg):
    log("warning: " + msg)


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


class ProtocolError(Exception):
    def __init__(self, msg, code=1002):
        super().__init__(msg)
        self.code = code


class WebSocket:
    """Minimal RFC 6455 endpoint. `is_client` decides who masks."""

    def __init__(self, sock, is_client, leftover=b""):
        self.sock, self.is_client = sock, is_client
        self.buf = bytearray(leftover)
        self.send_lock = threading.Lock()
        self.close_sent = False

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("WebSocket TCP connection ended")
            self.buf += chunk
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    @staticmethod
    def _mask(key, data):
        # XOR as one big integer: fast enough in pure Python for MiBs.
        if not data:
            return data
        keys = (key * (len(data) // 4 + 1))[:len(data)]
        x = int.from_bytes(data, "big") ^ int.from_bytes(keys, "big")
        return x.to_bytes(len(data), "big")

    def _send_frame(self, opcode, payload):
        n = len(payload)
        head = bytes([0x80 | opcode])
        mbit = 0x80 if self.is_client else 0
        if n < 126:
            head += bytes([mbit | n])
        elif n < 65536:
            head += bytes([mbit | 126]) + struct.pack("!H", n)
        else:
            head += bytes([mbit | 127]) + struct.pack("!Q", n)
        if self.is_client:                      # client → server frames are masked
            key = os.urandom(4)
            head += key
            payload = self._mask(key, payload)
        self.sock.sendall(head + payload)

    def send_binary(self, payload):
        with self.send_lock:
            if not self.close_sent:
                self._send_frame(0x2, payload)

    def send_close(self, code=1000, reason=b""):
        with self.send_lock:
            if self.close_sent:
                return
            self.close_sent = True
            try:
                self._send_frame(0x8, struct.pack("!H", code) + reason[:120])
            except OSError:
                pass

    def recv_message(self):
        """Return the next binary message; None when the peer closed cleanly."""
        message, started = b"", False
        while True:
            b0, b1 = self._read(2)
            fin, rsv, opcode = b0 & 0x80, b0 & 0x70, b0 & 0x0F
            masked, n = b1 & 0x80, b1 & 0x7F
            if rsv:
                raise ProtocolError("RSV bits set (no extension was negotiated)")
            if bool(masked) == self.is_client:
                raise ProtocolError("frame masking is wrong for this direction")
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            if n > MAX_MESSAGE:
                raise ProtocolError("frame too large", 1009)
            key = self._read(4) if masked else None
            payload = self._read(n)
            if key:
                payload = self._mask(key, payload)
            if opcode >= 0x8:                    # control frame
                if not fin or n > 125:
                    raise ProtocolError("bad control frame")
                if opcode == 0x8:                # close: answer with the same code
                    code = struct.unpack("!H", payload[:2])[0] if n >= 2 else 1000
                    log("WebSocket closed by peer: code %d %r" % (code, payload[2:]))
                    self.send_close(code if n >= 2 else 1000)
                    return None
                if opcode == 0x9:                # ping → pong, same payload
                    with self.send_lock:
                        if not self.close_sent:
                            self._send_frame(0xA, payload)
                continue                         # pong or unknown control: ignore
            if opcode == 0x1:
                raise ProtocolError("text message (only binary is allowed)")
            if opcode == 0x2 and not started:
                started, message = True, payload
            elif opcode == 0x0 and started:
                message += payload
                if len(message) > MAX_MESSAGE:
                    raise ProtocolError("message too large", 1009)
            else:
                raise ProtocolError("unexpected opcode %d" % opcode)
            if fin:
                return message


def read_http_head(sock):
    """Read up to the blank line; return (head lines, headers dict, leftover)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk or len(data) > 65536:
            raise EOFError("connection ended during the HTTP handshake")
        data += chunk
    head, leftover = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, leftover


class Conn:
    """One tunneled TCP connection: a socket plus its outbound byte queue."""

    def __init__(self, cid, sock=None):
        self.cid, self.sock, self.q = cid, sock, queue.Queue()


class Peer:
    def __init__(self, ws):
        self.ws = ws
        self.conns = {}                  # connId → Conn
        self.lock = threading.Lock()     # guards self.conns only, never held over I/O

    def send(self, ftype, cid, payload=b""):
        self.ws.send_binary(struct.pack("!BI", ftype, cid) + payload)

    def start(self, conn, connect_port=None):
        threading.Thread(target=self.writer, args=(conn, connect_port), daemon=True).start()

    def writer(self, conn, connect_port):
        if connect_port is not None:     # client side: connect to the local service first
            try:
                conn.sock = socket.create_connection(("127.0.0.1", connect_port), timeout=10)
                conn.sock.settimeout(None)
            except OSError as e:
                log("conn %d: local connect failed: %s" % (conn.cid, e))
                self.local_ended(conn)
                return
        threading.Thread(target=self.reader, args=(conn,), daemon=True).start()
        while True:
            item = conn.q.get()
            if item is None:             # CLOSE: everything queued before it was written
                break
            try:
                conn.sock.sendall(item)
            except OSError:
                self.local_ended(conn)
                break
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)   # also wakes our reader thread
        except OSError:
            pass
        conn.sock.close()

    def reader(self, conn):
        while True:
            try:
                data = conn.sock.recv(CHUNK)
            except OSError:
                data = b""
            if not data:
                break
            with self.lock:
                alive = self.conns.get(conn.cid) is conn
            if not alive:
                break
            try:
                self.send(DATA, conn.cid, data)
            except OSError:
                break
        self.local_ended(conn)

    def local_ended(self, conn):
        """Our TCP side ended: send CLOSE once (unless the peer closed first)."""
        with self.lock:
            mine = self.conns.get(conn.cid) is conn
            if mine:
                del self.conns[conn.cid]
        if mine:
            try:
                self.send(CLOSE, conn.cid)
            except OSError:
                pass
            conn.q.put(None)

    def handle(self, ftype, cid, payload):
        """Frames common to both roles; returns False if not handled."""
        if ftype == DATA or ftype == CLOSE:
            with self.lock:
                conn = self.conns.get(cid)
                if conn and ftype == CLOSE:
                    del self.conns[cid]
            if conn is None:
                return True              # unknown/closed connId: drop silently
            conn.q.put(payload if ftype == DATA else None)
            if ftype == CLOSE and payload:
                warn("CLOSE with a payload on conn %d" % cid)
            return True
        return False

    def run(self, on_frame):
        """WebSocket read loop. Returns the process exit status."""
        status = 0
        try:
            while True:
                msg = self.ws.recv_message()
                if msg is None:
                    break
                if len(msg) < 5:
                    raise ProtocolError("message shorter than 5 bytes")
                ftype, cid = struct.unpack("!BI", msg[:5])
                if not self.handle(ftype, cid, msg[5:]):
                    on_frame(ftype, cid, msg[5:])
        except ProtocolError as e:
            warn("protocol error: %s" % e)
            self.ws.send_close(e.code, str(e).encode())
            status = 2
        except (EOFError, OSError) as e:
            log("WebSocket ended: %s" % e)
        with self.lock:
            conns, self.conns = list(self.conns.values()), {}
        for conn in conns:               # the tunnel is gone: end every connection
            conn.q.put(None)
            if conn.sock:
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        return status


def serve(args):
    lsock = socket.create_server(("127.0.0.1", args.port))
    out("ws-port %d" % lsock.getsockname()[1])
    while True:                          # until one valid upgrade on PATH
        sock, _ = lsock.accept()
        try:
            line, h, leftover = read_http_head(sock)
        except (EOFError, OSError):
            sock.close()
            continue
        parts = line.split(" ")
        path = parts[1].split("?")[0] if len(parts) == 3 else ""
        if parts[0] != "GET" or path != PATH:
            sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n"
                         b"Connection: close\r\n\r\nNot found\n")
            sock.close()
            continue
        if (h.get("upgrade", "").lower() != "websocket" or "sec-websocket-key" not in h
                or "upgrade" not in h.get("connection", "").lower()
                or h.get("sec-websocket-version") != "13"):
            sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\n"
                         b"Connection: close\r\n\r\nBad request\n")
            sock.close()
            continue
        break
    lsock.close()
    if "sec-websocket-extensions" in h:  # we never accept an extension
        log("client offered extensions: %s (ignored)" % h["sec-websocket-extensions"])
    if "piggyback-features" in h:        # a 1.1 server does not know this header
        log("client offered Piggyback-Features: %s (ignored)" % h["piggyback-features"])
    sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                  % accept_key(h["sec-websocket-key"])).encode())
    peer = Peer(WebSocket(sock, is_client=False, leftover=leftover))
    tsock = socket.create_server(("127.0.0.1", args.tunnel_port))
    tport = tsock.getsockname()[1]
    hello = {"publicHost": "127.0.0.1", "tunnelPort": tport, "version": "1.1.0"}
    peer.send(HELLO, 0, json.dumps(hello).encode())
    out("tunnel-port %d" % tport)

    def accept_loop():
        next_id = 1
        while True:
            try:
                csock, _ = tsock.accept()
            except OSError:
                return
            conn = Conn(next_id, csock)
            next_id += 1
            with peer.lock:
                peer.conns[conn.cid] = conn
            try:
                peer.send(OPEN, conn.cid)
            except OSError:
                return
            peer.start(conn)

    threading.Thread(target=accept_loop, daemon=True).start()

    def on_frame(ftype, cid, payload):
        warn("unexpected frame type %d on conn %d from client (dropped)" % (ftype, cid))

    status = peer.run(on_frame)
    try:
        tsock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    tsock.close()
    return status


def forward(args):
    host, _, port = args.server.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n" % (PATH, args.server, key)).encode())
    line, h, leftover = read_http_head(sock)
    if line.split(" ")[1:2] != ["101"]:
        log("upgrade refused: %s" % line)
        return 1
    if h.get("sec-websocket-accept") != accept_key(key):
        log("bad Sec-WebSocket-Accept: %r" % h.get("sec-websocket-accept"))
        return 1
    if "sec-websocket-extensions" in h:
        warn("server accepted an extension we never offered: %s" % h["sec-websocket-extensions"])
        return 1
    sock.settimeout(None)
    peer = Peer(WebSocket(sock, is_client=True, leftover=leftover))
    got_hello = []

    def on_frame(ftype, cid, payload):
        if ftype == HELLO and cid == 0 and not got_hello:
            try:
                hello = json.loads(payload.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                hello = None
            if not isinstance(hello, dict):
                raise ProtocolError("HELLO is not a JSON object")
            if not isinstance(hello.get("publicHost"), str) or \
                    type(hello.get("tunnelPort")) is not int:
                raise ProtocolError("HELLO lacks publicHost/tunnelPort")
            if hello.get("features"):    # we sent no Piggyback-Features header
                raise ProtocolError("HELLO lists features to a 1.1 client")
            log("HELLO %s" % json.dumps(hello))
            got_hello.append(hello)
            out("access tcp://%s:%d" % (hello["publicHost"], hello["tunnelPort"]))
        elif not got_hello:
            raise ProtocolError("frame type %d before HELLO" % ftype)
        elif ftype == OPEN and cid != 0:
            conn = Conn(cid)
            with peer.lock:
                if cid in peer.conns:
                    warn("OPEN for connId %d that is still in use (dropped)" % cid)
                    return
                peer.conns[cid] = conn
            if payload:
                warn("OPEN with a payload on conn %d (v1 OPEN is empty)" % cid)
            peer.start(conn, connect_port=args.port)
        else:
            warn("unexpected frame type %d on conn %d from server (dropped)" % (ftype, cid))

    return peer.run(on_frame)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve", help="act as a PiggyBack 1.1 server")
    s.add_argument("--port", type=int, required=True, help="WebSocket port (0 = random)")
    s.add_argument("--tunnel-port", type=int, default=0, help="public port (0 = random)")
    f = sub.add_parser("forward", help="act as a PiggyBack 1.1 client")
    f.add_argument("--server", required=True, help="HOST:PORT of the WebSocket server")
    f.add_argument("--port", type=int, required=True, help="local service port")
    args = ap.parse_args()
    try:
        status = serve(args) if args.mode == "serve" else forward(args)
    except (OSError, EOFError, IndexError) as e:
        log("error: %s" % e)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)                     # do not wait for daemon threads


if __name__ == "__main__":
    main()
