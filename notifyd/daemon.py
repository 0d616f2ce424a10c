"""The composition root of `notifyd serve`: config, store, lock, workers, writer, listener, signals."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from notifyd import __version__
from notifyd.config import Config, load_config, parse_listen
from notifyd.config.model import outside_state_directory
from notifyd.config_reload import ConfigHolder, ConfigWatcher
from notifyd.errors import ConfigError, ListenError, StoreUnavailable
from notifyd.ingest import IngestWriter
from notifyd.listener import ListenerDeps, create_app
from notifyd.logs import LOG_LEVELS, Redactor, setup_logging
from notifyd.metrics import Metrics
from notifyd.preflight import check_config, check_store
from notifyd.retention import FIRST_AFTER as RETENTION_FIRST_AFTER
from notifyd.retention import schedule_retention
from notifyd.run_poll import schedule_run_poll
from notifyd.sd_notify import SystemdNotifier
from notifyd.store import open_store
from notifyd.supervisor import Supervisor
from notifyd.worker import WorkerPool

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("notifyd")
SHUTDOWN_GRACE = 10.0


@dataclass(frozen=True)
class ServeOptions:
    """What the command line may override in the config."""

    config: str | None = None
    listen: str | None = None
    threads: int | None = None
    log_format: str = "text"
    log_level: str = "info"             # debug | info | warning | error
    watch: bool = True


def effective_config(options: ServeOptions) -> Config:
    """The loaded config with the command line's overrides applied and the listen rule checked."""
    return apply_overrides(load_config(options.config), options)


def apply_overrides(config: Config, options: ServeOptions) -> Config:
    """--listen and --threads over the file's values, then the checks of `check_config` (a public
    address needs a token, Apprise URLs a plugin accepts). Applied at start and again on every
    reload, so a reload can never open the daemon up."""
    server, worker = config.server, config.worker
    if options.listen:
        try:
            host, port = parse_listen(options.listen)
        except ValueError as exc:
            raise ConfigError(str(exc), file="--listen") from None
        server = replace(server, host=host, port=port)
    if options.threads:
        worker = replace(worker, threads=options.threads)
    config = replace(config, server=server, worker=worker)
    check_config(config)
    return config


def quiet_server(config: uvicorn.Config) -> uvicorn.Server:
    """A uvicorn Server whose supervisor loop ticks once a second instead of ten times, so an idle
    daemon stays near 0 % CPU; a signal to stop wakes it at once (anything else that sets
    `should_exit` is seen within the second)."""
    import asyncio
    from types import FrameType

    import uvicorn

    class Server(uvicorn.Server):
        _wake: asyncio.Event | None = None
        _loop: asyncio.AbstractEventLoop | None = None

        async def main_loop(self) -> None:
            self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
            # on_tick does its once-a-second work (the Date header) when the counter is a multiple of 10.
            while not await self.on_tick(0):
                try:
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                except TimeoutError:
                    pass

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            if self._loop is not None and self._wake is not None:
                self._loop.call_soon_threadsafe(self._wake.set)

    return Server(config)


def _announce_ready(server: uvicorn.Server, notifier: SystemdNotifier, supervisor: Supervisor,
                    config: Config) -> None:
    """READY=1 once uvicorn serves the bound socket (the store is already open), then supervise."""
    while not server.started and not server.should_exit:
        time.sleep(0.01)
    if server.started:
        notifier.ready(f"listening on {config.server.listen}")
        supervisor.start()


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is announced as ready."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(options: ServeOptions) -> int:
    """Run the daemon until SIGTERM or SIGINT; returns the exit code."""
    import uvicorn

    from notifyd.connections import ConnectionLimits, fit_open_files, guarded_protocol

    redact = Redactor()
    setup_logging(redact, options.log_format, LOG_LEVELS[options.log_level])
    config = effective_config(options)
    if not config.store.url:    # PostgreSQL: opening and migrating the store below is that check, made once
        check_store(config.store)
    redact.update(config.secrets())
    holder = ConfigHolder(config, on_change=lambda new: redact.update(new.secrets()),
                          prepare=lambda new: apply_overrides(new, options))
    # Workers, the lease keeper, the ingest writer and HTTP reads each hold a connection at times.
    store = open_store(config.store, node_id=config.server.node_id, pool_size=config.worker.threads + 4)
    lock = store.serve_lock()
    try:
        lock.__enter__()
    except OSError as exc:
        raise StoreUnavailable(f"cannot create the folder of {store.location}: {exc.strerror}") from None
    released = 0
    try:
        try:
            sock = bind_socket(config.server.host, config.server.port)
        except OSError as exc:
            raise ListenError(f"cannot listen on {config.server.listen}: {exc.strerror}") from None
        stop_requested = threading.Event()
        servers: list[uvicorn.Server] = []

        def on_stop(signum: int, frame: object) -> None:
            stop_requested.set()
            for running in servers:
                running.should_exit = True

        def on_hup(signum: int, frame: object) -> None:
            threading.Thread(target=holder.reload, name="notifyd-sighup", daemon=True).start()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

        store.migrate()
        recovered = store.recover(time.time())
        if recovered:
            log.warning("%d job(s) left running by a previous process are queued again", recovered)

        metrics = Metrics(store)
        pool = WorkerPool(store, holder, config.worker.threads, redact, observe=metrics.observe_outcome).start()
        stop_listening = store.subscribe(pool.notify)
        writer = IngestWriter(store, holder, on_commit=pool.notify).start()
        schedule_retention(store, delay=RETENTION_FIRST_AFTER, now=time.time())
        schedule_run_poll(store, config, now=time.time())      # only with [runs] stale_after and a status API

        def on_change(new: Config) -> None:
            redact.update(new.secrets())
            try:                # a reload that turns polling on starts it; a running poll is left as it is
                schedule_run_poll(store, new, now=time.time())
            except StoreUnavailable as exc:
                log.warning("the poll of stale runs could not be scheduled: %s (a restart schedules it)", exc)

        holder.on_change = on_change
        app = create_app(ListenerDeps(config=holder, writer=writer, store=store,
                                      config_state=lambda: holder.state, metrics=metrics,
                                      reload_config=holder.reload))
        # Header and body deadlines and the connection budget live in the protocol and are fixed at
        # start (a reload leaves them). No websockets: an upgraded connection would escape the budget.
        # uvicorn annotates timeout_keep_alive as int but only hands it to call_later: "500ms" works.
        limits = ConnectionLimits.from_server(config.server)
        fit_open_files(limits)      # raises the soft RLIMIT_NOFILE if need be, or warns what to set
        server = quiet_server(uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=5,
            loop="auto", http=guarded_protocol(limits), ws="none", server_header=False, date_header=False,
            timeout_keep_alive=limits.idle_timeout))  # type: ignore[arg-type]
        servers.append(server)
        watcher = ConfigWatcher(holder, config.path).start() if config.path and options.watch else None
        log.info("notifyd %s listening on http://%s (store: %s %s, node %s, %d worker threads, %d services)",
                 __version__, config.server.listen, store.engine, store.location, store.node_id,
                 config.worker.threads, len(config.services))
        where = outside_state_directory(config.store)
        if where:
            log.warning("%s", where)
        notifier = SystemdNotifier()
        supervisor = Supervisor(notifier, {"delivery workers": pool.alive, "ingest writer": writer.alive})
        server_started = threading.Thread(target=_announce_ready, args=(server, notifier, supervisor, config),
                                          name="notifyd-ready", daemon=True)
        server_started.start()
        if not stop_requested.is_set():
            server.run(sockets=[sock])
        notifier.stopping()
        supervisor.stop()

        log.info("stopping: no new events")
        writer.stop()
        stop_listening()
        released = pool.stop(grace=SHUTDOWN_GRACE)
        if watcher:
            watcher.stop()
        log.info("stopped%s", f" ({released} unfinished job(s) given back)" if released else "")
    finally:
        lock.__exit__(None, None, None)
        if not released:
            store.close()
    if released:
        # A delivery still hangs in a thread (Apprise's executor threads are joined at exit);
        # its job is already back in the queue, so leave now rather than outlast the grace.
        logging.shutdown()
        os._exit(0)
    return 0
