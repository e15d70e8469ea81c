"""`psfuture serve --workers N`: N model processes behind one port.

One model thread per process is the fastest a core can go (a second torch thread on the same core only
spins), so a machine with N cores serves more streams from N processes, each with its own model, than
from one process with N torch threads. The parent reserves the port and starts N worker
processes (fresh interpreters, not forks: torch's threads do not survive fork), each listening on the
same port with SO_REUSEPORT. The kernel spreads new connections over the workers' listening sockets by a
hash of the client's address and port (one shared socket would not: the kernel wakes every idle worker
and the same one wins the accept every time); a connection, and every stream on it, then stays in the
process that accepted it. The parent keeps the port bound, not listening, so a restarted worker gets
the same port back.

The parent loads no model and serves nobody: it starts the workers, restarts one that dies (giving up
with a clear message if they keep dying), and on SIGINT/SIGTERM stops them all gracefully. A worker
whose parent is gone (killed with SIGKILL) notices its stdin closing and shuts itself down.
"""
from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from typing import Callable

from psfuture.backends.base import ModelSpec
from psfuture.serve.messages import Limits, StreamSettings

log = logging.getLogger("psfuture.supervisor")

MAX_RESTARTS = 5  # within RESTART_WINDOW_S: a worker that keeps dying is a bug, not bad luck
RESTART_WINDOW_S = 60.0
START_TIMEOUT_S = 300.0  # loading the model and the warm-up translation


class SupervisorError(Exception):
    """The workers could not be started or kept running; the message says why."""


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker process needs to build its server (sent to it as JSON); the model is a ModelSpec,
    so every model option reaches every worker."""

    host: str = "127.0.0.1"
    port: int = 8765
    model: ModelSpec = ModelSpec()
    limits: Limits = Limits()
    defaults: StreamSettings = StreamSettings()
    batch: bool = True
    threads: int = 1
    grace_s: float = 5.0
    log_level: str = "WARNING"

    def to_json(self, index: int) -> str:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(index=index, model=self.model.to_dict(), limits=asdict(self.limits),
                 defaults=[self.defaults.policy, list(self.defaults.options), self.defaults.target_al,
                           list(self.defaults.segment)])
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> tuple[int, "WorkerConfig"]:
        d = json.loads(text)
        policy, options, target_al, segment = d.pop("defaults")
        defaults = StreamSettings(policy, tuple(tuple(o) for o in options), target_al, tuple(tuple(o) for o in segment))
        return d.pop("index"), cls(**{**d, "model": ModelSpec.from_dict(d["model"]), "limits": Limits(**d["limits"]),
                                      "defaults": defaults})


def listen(host: str, port: int, *, reuse_port: bool = False, backlog: int = 1024) -> socket.socket:
    """A listening socket on host:port (port 0: a free one); OSError if it cannot be bound."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=backlog, reuse_port=reuse_port)


def reserve(host: str, port: int) -> socket.socket:
    """Bind host:port (0: a free one) with SO_REUSEPORT without listening: the workers' listening sockets
    join it there, and no one else can take the port while a worker restarts. OSError if it is taken."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen


class Supervisor:
    """Runs `n` workers on config.host:config.port until `stop()`; see the module docstring."""

    def __init__(self, n: int, config: WorkerConfig):
        self.n, self.config = n, config
        self.workers: list[_Worker] = []
        self.restarts: list[float] = []
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def _spawn(self, index: int) -> _Worker:
        proc = subprocess.Popen([sys.executable, "-m", "psfuture.serve.supervisor", self.config.to_json(index)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                start_new_session=True)  # Ctrl-C reaches the parent only, which stops them in order
        return _Worker(index, proc)

    def _await_ready(self, worker: _Worker) -> None:
        """The worker's first status line: "ready" or "error <why>"; SupervisorError on anything else.
        Returns early, quietly, when `stop()` is called meanwhile."""
        sel = selectors.DefaultSelector()
        sel.register(worker.proc.stdout, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            if not any(key.fileobj is worker.proc.stdout for key, _ in sel.select(START_TIMEOUT_S)):
                if self._stopping:
                    return
                raise SupervisorError(f"worker {worker.index} did not start within {START_TIMEOUT_S:g} s")
            line = worker.proc.stdout.readline().decode("utf-8", "replace").strip()
        finally:
            sel.close()
        if line != "ready":
            worker.proc.wait()
            why = line[len("error "):] if line.startswith("error ") else f"it exited with code {worker.proc.returncode}"
            raise SupervisorError(f"worker {worker.index} failed to start: {why}")

    def start(self) -> None:
        """Start every worker and wait until all serve; SupervisorError (after stopping them) if one cannot."""
        try:
            self.workers = [self._spawn(i) for i in range(self.n)]
            for worker in self.workers:
                self._await_ready(worker)
        except BaseException:
            self._terminate(grace_s=0.0)
            raise

    def stop(self) -> None:
        """Ask `run()` to stop the workers (safe from a signal handler)."""
        self._stopping = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def run(self) -> None:
        """Watch the workers until `stop()`; restart one that dies. SupervisorError if they keep dying."""
        try:
            while not self._stopping:
                sel = selectors.DefaultSelector()
                sel.register(self._wake_r, selectors.EVENT_READ)
                for w in self.workers:  # a worker's stdout closes when it exits
                    sel.register(w.proc.stdout, selectors.EVENT_READ, w)
                events = sel.select(1.0)
                sel.close()
                for key, _ in events:
                    if key.data is not None:
                        key.fileobj.read1(4096)  # a dead worker's EOF, or stray output to drop
                for i, w in enumerate(self.workers):
                    if w.proc.poll() is not None and not self._stopping:
                        self.workers[i] = self._restart(w)
        finally:
            self._terminate(self.config.grace_s)

    def _restart(self, dead: _Worker) -> _Worker:
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW_S] + [now]
        code = dead.proc.returncode
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        if len(self.restarts) > MAX_RESTARTS:
            raise SupervisorError(f"worker {dead.index} {how}, and workers died {len(self.restarts)} times in "
                                  f"{RESTART_WINDOW_S:g} s; giving up (see the log above; --workers 1 runs in one process)")
        log.warning("worker %d (pid %d) %s; its connections were lost; restarting it", dead.index, dead.proc.pid, how)
        worker = self._spawn(dead.index)
        self._await_ready(worker)
        return worker

    def _terminate(self, grace_s: float) -> None:
        """SIGTERM every worker (each lets its ended streams finish for `grace_s`), then SIGKILL stragglers."""
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s + 10.0
        for w in self.workers:
            try:
                w.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d (pid %d) did not stop; killing it", w.index, w.proc.pid)
                w.proc.kill()
                w.proc.wait()
            for pipe in (w.proc.stdin, w.proc.stdout):
                if pipe:
                    pipe.close()

    def close(self) -> None:
        os.close(self._wake_r)
        os.close(self._wake_w)

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers]


def supervise(n: int, config: WorkerConfig, on_ready: Callable[[Supervisor], None] | None = None) -> None:
    """Serve with `n` workers until SIGINT/SIGTERM; SupervisorError if they cannot be started or kept up.
    config.port must be reserved (`reserve`) and not 0."""
    sup = Supervisor(n, config)
    previous = {sig: signal.signal(sig, lambda *_: sup.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        sup.start()
        if on_ready and not sup.stopping:
            on_ready(sup)
        sup.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sup.close()


# --- the worker process ------------------------------------------------------------------------------------

def _worker(config_json: str) -> int:
    # The status pipe is stdout; everything else anything prints goes to stderr, beside the parent's log.
    status = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    index, config = WorkerConfig.from_json(config_json)
    logging.basicConfig(level=config.log_level, format=f"%(asctime)s %(levelname)s worker {index} %(name)s: %(message)s")
    import asyncio

    from psfuture.backends import load
    from psfuture.errors import PsFutureError
    from psfuture.serve.server import EngineOptions, ShutdownOptions, serve
    try:
        model = load(config.model)
    except PsFutureError as e:
        status.write(f"error {e}\n")
        return 1
    logging.getLogger().setLevel(config.log_level)  # importing fairseq resets the root logger
    try:
        sock = listen(config.host, config.port, reuse_port=True)
    except OSError as e:
        status.write(f"error cannot listen on {config.host}:{config.port}: {e.strerror or e}\n")
        return 1

    def ready(server) -> None:
        loop = asyncio.get_running_loop()

        def parent_gone() -> None:  # stdin is a pipe from the parent: EOF means it is gone, and so is our reason to serve
            if not os.read(0, 4096):
                loop.remove_reader(0)
                os.kill(os.getpid(), signal.SIGTERM)
        loop.add_reader(0, parent_gone)
        status.write("ready\n")
        status.flush()

    asyncio.run(serve(model=model, limits=config.limits, defaults=config.defaults, sock=sock,
                      engine=EngineOptions(batch=config.batch, threads=config.threads),
                      shutdown=ShutdownOptions(config.grace_s), on_ready=ready, info={"worker": index}))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
