"""SGLang's multi-node launch (--nnodes, --node-rank, --dist-init-addr): the head's rendezvous and the worker nodes."""

import json
import os
import socket
import threading
import time
from urllib.parse import urlsplit

from sglang import __version__
from sglang._sim.cli import parse_dist_init_addr
from sglang._sim.http_server import Handler, SimHTTPServer
from sglang._sim.logs import _env_float, log

HELLO_TIMEOUT = 10.0  # seconds either side waits for the other's join line


def _send_line(sock, obj):
    sock.sendall(json.dumps(obj).encode() + b"\n")


def _why(exc):
    """Short reason for a socket error, e.g. 'connection refused'."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror})"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


class HeadGroup:
    """Node rank 0's side of the simulated distributed init (torch/NCCL rendezvous).

    Listens on the --dist-init-addr port; every worker rank sends one JSON hello
    line {"rank", "nnodes", "tp_size", ...} and gets {"ok": true|false, ...} back,
    then keeps the connection open. When the last rank joins, all_joined is set and
    the workers get {"event": "all_joined"}. A joined rank that drops calls on_lost
    (the head then exits 1, as a real head does when NCCL breaks).
    """

    def __init__(self, args, on_lost):
        self.args = args
        self.nnodes = args.nnodes
        self.addr = args.dist_init_addr
        self.port = parse_dist_init_addr(args.dist_init_addr)[1]
        self.bind_host = os.environ.get("SGLANG_SIM_DIST_BIND_HOST", "").strip() or "0.0.0.0"
        self.on_lost = on_lost
        self.lock = threading.Lock()
        self.members = {}  # rank -> {"peer": "ip:port", "joined_at": epoch, "sock": socket}
        self.all_joined = threading.Event()
        self.closing = False
        self.listener = None

    def bind(self):
        """Open the listener; returns an error message or None."""
        family = socket.AF_INET6 if ":" in self.bind_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.bind_host, self.port))
            sock.listen(64)
        except OSError as exc:
            sock.close()
            return (f"Cannot listen on the dist-init port {self.bind_host}:{self.port} "
                    f"(--dist-init-addr {self.addr}): {_why(exc)}. Is another SGLang head "
                    "(or another program) using that port?")
        self.listener = sock
        return None

    def start(self):
        a = self.args
        log(f"node rank 0 of {self.nnodes} (head): distributed init on "
            f"{self.bind_host}:{self.port} (--dist-init-addr {self.addr}); no HTTP on "
            f"{a.host}:{a.port} until node rank(s) {self._missing_text()} join")
        threading.Thread(target=self._accept_loop, name="dist-accept", daemon=True).start()

    def _accept_loop(self):
        while True:
            try:
                conn, peer = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve_peer, args=(conn, f"{peer[0]}:{peer[1]}"),
                             name="dist-peer", daemon=True).start()

    # -- state for HTTP
    def _missing(self):
        return [r for r in range(1, self.nnodes) if r not in self.members]

    def _missing_text(self):
        return ", ".join(str(r) for r in self._missing())

    def joined_ranks(self):
        with self.lock:
            return [0] + sorted(self.members)

    def describe(self):
        with self.lock:
            return {"nnodes": self.nnodes, "node_rank": 0, "dist_init_addr": self.addr,
                    "dist_bind": f"{self.bind_host}:{self.port}",
                    "joined_ranks": [0] + sorted(self.members), "missing_ranks": self._missing(),
                    "workers": {str(r): {"peer": m["peer"], "joined_at": m["joined_at"]}
                                for r, m in sorted(self.members.items())}}

    # -- one worker connection
    def _check_hello(self, hello):
        a = self.args
        rank, nnodes = hello.get("rank"), hello.get("nnodes")
        if nnodes != self.nnodes:
            return (f"nnodes mismatch: the joining node runs --nnodes {nnodes}, "
                    f"the head runs --nnodes {self.nnodes}")
        if not isinstance(rank, int) or isinstance(rank, bool) or not 1 <= rank < self.nnodes:
            return f"node rank {rank!r} is not a worker rank of this group (1..{self.nnodes - 1})"
        if rank in self.members:
            return f"node rank {rank} already joined (from {self.members[rank]['peer']})"
        if hello.get("tp_size") != a.tp_size:
            return (f"tp_size mismatch: the joining node runs --tp-size {hello.get('tp_size')}, "
                    f"the head runs --tp-size {a.tp_size}")
        return None

    def _serve_peer(self, conn, peer):
        rank = None
        try:
            conn.settimeout(HELLO_TIMEOUT)
            reader = conn.makefile("rb")
            line = reader.readline(65536)
            if not line:
                log(f"dist-init: {peer} closed the connection without a join message", "warning")
                return
            try:
                hello = json.loads(line)
                if not isinstance(hello, dict):
                    raise ValueError("not an object")
            except ValueError:
                log(f"dist-init: rejected a connection from {peer}: not a join message", "warning")
                _send_line(conn, {"ok": False, "error": "not a join message"})
                return
            with self.lock:
                err = None if not self.closing else "the head is shutting down"
                err = err or self._check_hello(hello)
                if err is None:
                    rank = hello["rank"]
                    self.members[rank] = {"peer": peer, "joined_at": time.time(), "sock": conn}
                    joined, complete = len(self.members) + 1, not self._missing()
            if err:
                log(f"dist-init: rejected the join of node rank {hello.get('rank')!r} from {peer}: {err}",
                    "warning")
                _send_line(conn, {"ok": False, "error": err})
                return
            _send_line(conn, {"ok": True, "nnodes": self.nnodes, "joined": joined})
            log(f"dist-init: node rank {rank} joined from {peer} ({joined} of {self.nnodes} nodes)")
            if complete:
                self._announce_complete()
            conn.settimeout(None)
            reason = "connection closed"
            try:
                while reader.readline(65536):
                    pass  # nothing is expected after the hello; read until the peer goes
            except OSError as exc:
                reason = _why(exc)
            self._lost(rank, peer, reason)
        except OSError as exc:
            if rank is not None:
                self._lost(rank, peer, _why(exc))
            else:
                log(f"dist-init: connection from {peer} failed during the join: {_why(exc)}", "warning")
        finally:
            if rank is None:
                conn.close()

    def _announce_complete(self):
        log(f"dist-init: all {self.nnodes} nodes joined (ranks 0..{self.nnodes - 1}); "
            "starting the model (simulated)")
        with self.lock:
            socks = [m["sock"] for m in self.members.values()]
        for s in socks:
            try:
                _send_line(s, {"event": "all_joined", "nnodes": self.nnodes})
            except OSError:
                pass
        self.all_joined.set()

    def _lost(self, rank, peer, reason):
        with self.lock:
            m = self.members.pop(rank, None)
            closing = self.closing
        if m:
            try:
                m["sock"].close()
            except OSError:
                pass
        if not closing:
            self.on_lost(f"node rank {rank} ({peer}) left the distributed group: {reason}. "
                         "Simulated NCCL failure: the head cannot continue without it.")

    def close(self):
        with self.lock:
            self.closing = True
            socks = [m["sock"] for m in self.members.values()]
        for s in [self.listener, *socks]:
            if s is None:
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass


class DummyHealthHandler(Handler):
    """What a node rank > 0 serves on --host/--port once its schedulers are ready, as SGLang
    0.5.3.post3's launch_dummy_health_check_server (sglang/srt/utils/common.py:2217-2259, called
    by entrypoints/engine.py:845-847): a FastAPI app with GET /health and GET /health_generate
    (200, no body) and, with --enable-metrics, the Prometheus app mounted at /metrics
    (add_prometheus_middleware, common.py:1425-1435: any path that begins with /metrics; neither
    the Mount nor prometheus_client's ASGI app checks the method). No API key middleware. Other paths get FastAPI's 404, other methods its 405.
    Which samples a rank > 0 exports is not simulated: /metrics has none."""

    ROUTES = {"/health": ("GET", None), "/health_generate": ("GET", None)}
    enable_metrics = False  # set on the subclass made per server

    def log_request(self, code="-", size="-"):
        pass  # upstream runs this uvicorn with log_level="warning": no access lines

    def _dispatch(self, _method):
        path = urlsplit(self.path).path
        self._read_body()
        if self.enable_metrics and path.startswith("/metrics"):
            self._send(200, b"", "text/plain; version=0.0.4; charset=utf-8")
        elif path not in self.ROUTES:
            self._send(404, {"detail": "Not Found"})
        elif self.command != "GET":
            self._send(405, {"detail": "Method Not Allowed"}, extra_headers={"Allow": "GET"})
        else:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_OPTIONS(self):
        self._dispatch("OPTIONS")


class WorkerNode:
    """Node rank > 0: joins the head at --dist-init-addr and stays while joined; once every rank
    has joined, serves the dummy health server (DummyHealthHandler) on --host/--port."""

    def __init__(self, server):
        self.server = server
        self.args = server.args
        self.stop = server.stop
        self.sock = None
        self.httpd = None
        self.lock = threading.Lock()
        self.bind_failed = False

    def _tag(self):
        return f"node rank {self.args.node_rank}"

    def connect(self, host, port, timeout):
        """Retry every 0.5 s until `timeout`; returns a socket, None on stop, or an error text."""
        deadline = time.monotonic() + timeout
        next_note = time.monotonic() + 10
        while True:
            left = deadline - time.monotonic()
            try:
                return socket.create_connection((host, port), timeout=min(max(left, 0.2), 5.0))
            except OSError as exc:
                last = _why(exc)
            if time.monotonic() >= deadline:
                return (f"{self._tag()}: cannot reach the head at {self.args.dist_init_addr} "
                        f"(dist-init-addr) after {timeout:g} s: {last}")
            if time.monotonic() >= next_note:
                log(f"{self._tag()}: still waiting for the head at {self.args.dist_init_addr} ({last})")
                next_note += 10
            if self.stop.wait(min(0.5, max(deadline - time.monotonic(), 0.0))):
                return None

    def run(self):
        a = self.args
        addr = a.dist_init_addr
        host, port = parse_dist_init_addr(addr)
        timeout = max(_env_float("SGLANG_SIM_DIST_CONNECT_TIMEOUT", 60.0), 0.0)
        log(f"{self._tag()} of {a.nnodes}: worker node, serves no API (only node rank 0 does; "
            f"{a.host}:{a.port} gets a health check server once every node has joined). "
            f"Joining the head at {addr} (dist-init-addr), retrying for up to {timeout:g} s")
        got = self.connect(host, port, timeout)
        if got is None:
            log("Shutdown complete (simulated).")
            return 0
        if isinstance(got, str):
            log(got, "error")
            return 1
        self.sock = got
        try:
            self.sock.settimeout(HELLO_TIMEOUT)
            _send_line(self.sock, {"rank": a.node_rank, "nnodes": a.nnodes, "tp_size": a.tp_size,
                                   "dp_size": a.dp_size, "model_path": a.model_path,
                                   "version": __version__})
            reader = self.sock.makefile("rb")
            line = reader.readline(65536)
            reply = json.loads(line) if line else None
        except (OSError, ValueError) as exc:
            reply, line = None, None
            log(f"{self._tag()}: join at {addr} failed: {_why(exc) if isinstance(exc, OSError) else exc}",
                "error")
        if not isinstance(reply, dict):
            if line == b"":
                log(f"{self._tag()}: the head at {addr} (dist-init-addr) closed the connection "
                    "without accepting the join", "error")
            self.sock.close()
            return 1
        if not reply.get("ok"):
            log(f"{self._tag()}: the head at {addr} (dist-init-addr) rejected the join: "
                f"{reply.get('error')}", "error")
            self.sock.close()
            return 1
        log(f"{self._tag()}: joined the head at {addr} ({reply.get('joined')} of {a.nnodes} nodes); "
            "serving as a worker node")
        self.sock.settimeout(None)
        threading.Thread(target=self._watch, args=(reader,), name="dist-head", daemon=True).start()
        while not self.stop.wait(0.5):
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            httpd, self.httpd = self.httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self.bind_failed:
            log("Exiting with status 1.", "error")
            return 1
        if self.server.fatal:
            log("Exiting with status 1 (simulated NCCL failure; systemd restarts the node and it "
                "joins again).", "error")
            return 1
        log("Shutdown complete (simulated).")
        return 0

    def serve_health(self):
        """As engine.py:833-847: once this node's schedulers are ready (the sim: once the group is
        complete), the dummy health check server on --host/--port, until the node exits."""
        a = self.args
        handler = type("BoundDummyHealthHandler", (DummyHealthHandler,),
                       {"state": self.server.state, "enable_metrics": bool(a.enable_metrics)})
        with self.lock:
            if self.stop.is_set() or self.httpd is not None:
                return
            log(f"Starting dummy health check server at {a.host}:{a.port}")
            try:
                self.httpd = SimHTTPServer((a.host, a.port), handler)
            except OSError as exc:
                self.httpd = None
                failed = exc
            else:
                failed = None
                threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                 name="health", daemon=True).start()
        if failed is not None:
            self.bind_failed = True
            self.server._fatal(f"{self._tag()}: cannot bind the health check server to "
                               f"{a.host}:{a.port}: {failed}")

    def _watch(self, reader):
        reason = "connection closed"
        try:
            while True:
                line = reader.readline(65536)
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if isinstance(msg, dict) and msg.get("event") == "all_joined":
                    log(f"{self._tag()}: all {msg.get('nnodes')} nodes joined; loading the model "
                        "shard (simulated)")
                    self.serve_health()
        except OSError as exc:
            reason = _why(exc)
        self.server._fatal(f"{self._tag()}: lost the connection to the head at "
                           f"{self.args.dist_init_addr} (dist-init-addr): {reason}. "
                           "Simulated NCCL failure: this node cannot continue without the head.")
