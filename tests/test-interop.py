#!/usr/bin/env python3
"""Wire-compatibility tests between piggyback and an independent 1.1 peer.

  test-interop.py --piggyback build/src/piggyback --peer tests/v1-peer.py

Case A: the 1.1 peer's `forward` (a PiggyBack 1.1 client) against our `serve`.
Case B: our `forward` against the 1.1 peer's `serve` (a PiggyBack 1.1 server).
Prints TAP; exits non-zero if any test failed. Standard library only; every
process is started here, stopped by its own PID, and every wait is bounded.
"""
import argparse, os, re, shutil, signal, socket, subprocess, sys, threading, time

HOST = "127.0.0.1"
MIB = 1024 * 1024


class Abort(Exception):
    """A setup step failed: the rest of the case cannot run."""


class Proc:
    """A child process whose stdout/stderr lines are collected by threads."""

    def __init__(self, name, argv):
        self.name, self.argv = name, argv
        self.lines = {"stdout": [], "stderr": []}
        self.cond = threading.Condition()
        self.eof = set()                  # streams whose pipe reached EOF
        env = dict(os.environ, LC_ALL="C", LANG="C")   # untranslated messages
        env.pop("LANGUAGE", None)
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        for stream in ("stdout", "stderr"):
            threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for raw in getattr(self.p, stream):
            with self.cond:
                self.lines[stream].append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof.add(stream)
            self.cond.notify_all()

    def wait_line(self, pattern, timeout, stream="stdout"):
        """First match of `pattern` in a line of `stream`, or None on timeout/exit."""
        deadline, seen = time.monotonic() + timeout, 0
        with self.cond:
            while True:
                for line in self.lines[stream][seen:]:
                    m = re.search(pattern, line)
                    if m:
                        return m
                seen = len(self.lines[stream])
                left = deadline - time.monotonic()
                if left <= 0 or stream in self.eof:
                    return None
                self.cond.wait(min(left, 0.1))

    def alive(self):
        return self.p.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            os.kill(self.p.pid, sig)
        try:
            return self.p.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(self.p.pid, signal.SIGKILL)
            return self.p.wait(5)

    def output(self):
        with self.cond:
            return ["%s %s: %s" % (self.name, s, l)
                    for s in ("stdout", "stderr") for l in self.lines[s][-15:]]


class EchoServer:
    """The local service: echoes every byte back, one thread per connection."""

    def __init__(self):
        self.lsock = socket.create_server((HOST, 0))
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    @staticmethod
    def _echo(c):
        with c:
            while True:
                try:
                    d = c.recv(65536)
                    if not d:
                        return
                    c.sendall(d)
                except OSError:
                    return

    def stop(self):
        """Stop listening (shutdown wakes the blocked accept; close alone would not)."""
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_accepts(port):
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


def echo(port, data, timeout=30):
    """Send `data` through the tunnel and check it comes back byte-exact."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        errors = []

        def sender():
            try:
                s.sendall(data)        # no shutdown(SHUT_WR): in v1 that ends both ways
            except OSError as e:
                errors.append(e)

        threading.Thread(target=sender, daemon=True).start()
        got, deadline = bytearray(), time.monotonic() + timeout
        while len(got) < len(data) and time.monotonic() < deadline:
            d = s.recv(65536)
            if not d:
                break
            got += d
        if errors:
            raise AssertionError("send failed: %s" % errors[0])
        if bytes(got) != data:
            first = next((i for i in range(min(len(got), len(data))) if got[i] != data[i]),
                         min(len(got), len(data)))
            raise AssertionError("got %d of %d bytes back, first difference at %d"
                                 % (len(got), len(data), first))
    return True


def concurrent_echo(port, n=5, size=MIB, rounds=3):
    """`rounds` times, `n` connections at once, each echoing `size` random bytes."""
    for _ in range(rounds):
        concurrent_round(port, n, size)
    return True


def concurrent_round(port, n, size):
    results = [None] * n

    def one(i):
        try:
            results[i] = echo(port, os.urandom(size))
        except Exception as e:           # noqa: BLE001 - reported below
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    bad = [r for r in results if r is not True]
    if bad:
        raise AssertionError("%d of %d connections failed: %s" % (len(bad), n, bad[0]))
    return True


def closed_within(sock, timeout=5):
    """True if the peer closes/resets `sock` within `timeout` without sending data."""
    sock.settimeout(timeout)
    try:
        d = sock.recv(4096)
    except socket.timeout:
        raise AssertionError("still open after %g s" % timeout)
    except ConnectionResetError:
        return True
    if d:
        raise AssertionError("unexpected data %r" % d[:40])
    return True


def stops_accepting(port, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not port_accepts(port):
            return True
        time.sleep(0.1)
    raise AssertionError("port %d still accepts after %g s" % (port, timeout))


def random_payload():
    # every byte value, in order and shuffled, plus random bytes: 1 MiB in all
    return bytes(range(256)) * 64 + os.urandom(MIB - 256 * 64)


class Runner:
    def __init__(self, args):
        self.args, self.procs, self.failed, self.n = args, [], 0, 0
        self.wrap = [] if args.no_stdbuf or not shutil.which("stdbuf") else ["stdbuf", "-oL"]

    def start(self, name, argv):
        p = Proc(name, argv)
        self.procs.append(p)
        return p

    def peer(self, name, *argv):
        return self.start(name, [sys.executable, self.args.peer] + list(argv))

    def piggyback(self, name, *argv):
        return self.start(name, self.wrap + [self.args.piggyback] + list(argv))

    def report(self, ok, name, diag=()):
        self.n += 1
        print("%s %d - %s" % ("ok" if ok else "not ok", self.n, name))
        if not ok:
            self.failed += 1
            for line in diag:
                print("# " + line)
        sys.stdout.flush()

    def run_case(self, steps):
        """steps: list of (name, fn). An Abort fails the rest of the case."""
        aborted = None
        for name, fn in steps:
            if aborted:
                self.report(False, name, ["not run: %s" % aborted])
                continue
            try:
                ok, diag = bool(fn()), []
            except Abort as e:
                ok, diag, aborted = False, [str(e)], name
            except Exception as e:       # noqa: BLE001 - any failure is a test failure
                ok, diag = False, ["%s: %s" % (type(e).__name__, e)]
            if not ok:
                for p in self.procs:
                    diag += p.output()
            self.report(ok, name, diag)

    def cleanup(self):
        for p in self.procs:
            p.kill(signal.SIGTERM)
        self.procs = []


def no_warnings(*procs):
    bad = [l for p in procs for l in p.lines["stderr"] if "warning:" in l]
    if bad:
        raise AssertionError("; ".join(bad[:5]))
    return True


def no_glib_criticals(*procs):
    bad = [l for p in procs for l in p.lines["stderr"] + p.lines["stdout"]
           if re.search(r"-(CRITICAL|WARNING) \*\*", l)]
    if bad:
        raise AssertionError("; ".join(bad[:5]))
    return True


def case_a(r):
    """v1 peer `forward` (a 1.1 client) against our `piggyback serve`."""
    st = {"echo": EchoServer()}

    def server_starts():
        for attempt in range(3):
            ws, tp = free_port(), free_port()
            srv = r.piggyback("server", "serve", "-p", str(ws), "-l", HOST, "-t", str(tp), "-H", HOST)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and srv.alive():
                if srv.wait_line(r"ws://", 0.1) or port_accepts(ws):
                    st.update(srv=srv, ws=ws, tp=tp)
                    return True
            srv.kill()
        raise Abort("piggyback serve did not start listening within 10 s (3 attempts)")

    def client_gets_hello():
        st["peer"] = r.peer("v1-client", "forward", "--server", "%s:%d" % (HOST, st["ws"]),
                            "--port", str(st["echo"].port))
        m = st["peer"].wait_line(r"access tcp://([^:\s]+):(\d+)", 10)
        if not m:
            raise Abort("no HELLO/access line from the v1 client within 10 s")
        if int(m.group(2)) != st["tp"]:
            raise AssertionError("HELLO tunnelPort %s, expected %d" % (m.group(2), st["tp"]))
        return True

    def idle_then_local_down():
        st["idle"] = socket.create_connection((HOST, st["tp"]), timeout=5)
        st["idle"].sendall(b"ping")
        if st["idle"].recv(4) != b"ping":
            raise AssertionError("idle connection did not echo")
        st["echo"].stop()
        with socket.create_connection((HOST, st["tp"]), timeout=5) as s:
            return closed_within(s)

    def kill_client_closes_idle():
        st["peer"].kill()
        return closed_within(st["idle"])

    def new_client():
        st["echo"] = EchoServer()
        peer2 = r.peer("v1-client2", "forward", "--server", "%s:%d" % (HOST, st["ws"]),
                       "--port", str(st["echo"].port))
        st["peer2"] = peer2
        m = peer2.wait_line(r"access tcp://([^:\s]+):(\d+)", 10)
        if not m:
            raise AssertionError("no HELLO for a second v1 client")
        return echo(int(m.group(2)), random_payload())

    r.run_case([
        ("A: piggyback serve starts listening", server_starts),
        ("A: v1 client gets HELLO with our tunnel port", client_gets_hello),
        ("A: 1 MiB through the tunnel byte-exact", lambda: echo(st["tp"], random_payload())),
        ("A: 3 rounds of 5 concurrent connections byte-exact", lambda: concurrent_echo(st["tp"])),
        ("A: local service down -> public connection closed within 5 s", idle_then_local_down),
        ("A: v1 client killed -> open public connection closed within 5 s",
         kill_client_closes_idle),
        ("A: v1 client killed -> tunnel port stops accepting within 5 s",
         lambda: stops_accepting(st["tp"])),
        ("A: server accepts a new v1 client afterwards", new_client),
        ("A: v1 client saw no protocol violations",
         lambda: no_warnings(*[st[k] for k in ("peer", "peer2") if k in st])),
        ("A: piggyback serve still running", lambda: st["srv"].alive()),
        ("A: piggyback serve logged no GLib criticals", lambda: no_glib_criticals(st["srv"])),
    ])
    st["echo"].stop()
    if "idle" in st:
        st["idle"].close()
    r.cleanup()


def case_b(r):
    """our `piggyback forward` against the v1 peer `serve` (a 1.1 server)."""
    st = {"echo": EchoServer()}

    def server_starts():
        st["peer"] = r.peer("v1-server", "serve", "--port", "0", "--tunnel-port", "0")
        m = st["peer"].wait_line(r"ws-port (\d+)", 10)
        if not m:
            raise Abort("v1 server did not start")
        st["ws"] = int(m.group(1))
        return True

    def client_connects():
        # --no-reconnect: this case checks that a lost server is noticed and reported
        st["cli"] = r.piggyback("client", "forward", "-p", str(st["echo"].port),
                                "-s", "%s:%d" % (HOST, st["ws"]), "--no-reconnect")
        m = st["cli"].wait_line(r"tcp://[^:\s]+:(\d+)", 10)
        if not m:
            raise Abort("no 'Access URL: tcp://HOST:PORT' line from piggyback forward in 10 s")
        st["tp"] = int(m.group(1))
        m2 = st["peer"].wait_line(r"tunnel-port (\d+)", 5)
        if not m2 or int(m2.group(1)) != st["tp"]:
            raise AssertionError("access port %d, v1 server says %s"
                                 % (st["tp"], m2 and m2.group(1)))
        return True

    def local_down():
        st["echo"].stop()
        with socket.create_connection((HOST, st["tp"]), timeout=5) as s:
            return closed_within(s)

    def client_exits():
        if not st["cli"].alive():
            raise AssertionError("piggyback forward exited early (%s)" % st["cli"].p.returncode)
        st["peer"].kill()
        try:
            rc = st["cli"].p.wait(10)
        except subprocess.TimeoutExpired:
            raise AssertionError("piggyback forward still running 10 s after the server died")
        if rc == 0:
            raise AssertionError("piggyback forward exited with status 0")
        return True

    r.run_case([
        ("B: v1 server starts", server_starts),
        ("B: piggyback forward connects and shows the v1 tunnel port", client_connects),
        ("B: 1 MiB through the tunnel byte-exact", lambda: echo(st["tp"], random_payload())),
        ("B: 3 rounds of 5 concurrent connections byte-exact", lambda: concurrent_echo(st["tp"])),
        ("B: local service down -> public connection closed within 5 s", local_down),
        ("B: v1 server saw no protocol violations", lambda: no_warnings(st["peer"])),
        ("B: v1 server killed -> piggyback forward --no-reconnect exits non-zero within 10 s",
         client_exits),
        ("B: piggyback forward logged no GLib criticals", lambda: no_glib_criticals(st["cli"])),
    ])
    st["echo"].stop()
    r.cleanup()


def main():
    ap = argparse.ArgumentParser(description="PiggyBack 1.1 interoperability tests (TAP)")
    ap.add_argument("--piggyback", required=True, help="path to the piggyback binary")
    ap.add_argument("--peer", required=True, help="path to v1-peer.py")
    ap.add_argument("--no-stdbuf", action="store_true",
                    help="do not run piggyback under stdbuf -oL (line-buffered stdout)")
    args = ap.parse_args()
    print("1..19")
    sys.stdout.flush()
    for path in (args.piggyback, args.peer):
        if not os.path.isfile(path):
            print("Bail out! %s not found" % path)
            return 1
    # a harness timeout (SIGTERM) must still stop every child we started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    r = Runner(args)
    try:
        case_a(r)
        case_b(r)
    finally:
        r.cleanup()
    return 1 if r.failed or r.n != 19 else 0


if __name__ == "__main__":
    sys.exit(main())
