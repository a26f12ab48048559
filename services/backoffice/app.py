"""The back-office process: the HTTP API for people, and a consumer of the workers' answers.

Both run in one process on one event loop: FastStream runs the worker side (its consumer of
ticket moves and rejections, its outbox relay that publishes decisions) and, once started, the
uvicorn server; a SIGTERM stops the server first (no new decisions), then the worker (the relay
flushes what was accepted)."""

from __future__ import annotations

import asyncio

from services.common.metrics import EmbeddedServer, serve, stop_serving
from services.common.routes import Deps
from services.common.runtime import Worker, run_worker
from services.common.settings import Settings

from . import handlers
from .repository import SCHEMA, BackOfficeUnitOfWork, SqlBackOfficeUnitOfWork
from .web import create_api

NAME = "back-office"  # the producer the topic catalogue names for aftersales.decisions


def build_worker(settings: Settings, deps: Deps | None = None) -> Worker[BackOfficeUnitOfWork]:
    """``deps``: a rebuild's clock (the log's time) instead of the system's."""
    return Worker(NAME, settings, handlers.subscriptions(), unit_of_work=SqlBackOfficeUnitOfWork,
                  deps=deps or Deps(settings), needs_schema=SCHEMA)


def run(settings: Settings) -> None:
    worker = build_worker(settings)
    app = worker.build_app()
    serving: list[tuple[EmbeddedServer, asyncio.Task[None]]] = []

    @app.after_startup
    async def serve_http() -> None:
        ctx = worker.context
        api = create_api(ctx.uow, worker.deps.clock, wake=ctx.relay.wake,
                         cookie_secure=settings.backoffice_cookie_secure,
                         reporting_timezone=settings.reporting_timezone)
        serving.append(await serve(api, settings.backoffice_host, settings.backoffice_port))

    @app.on_shutdown
    async def stop_http() -> None:
        for server, task in serving:
            await stop_serving(server, task, grace=settings.shutdown_grace_seconds)

    run_worker(worker, app)
