"""``aftersales``: run a worker, prepare infrastructure, administer reasons, read audit trails."""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

import typer

from services.common.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False)
db_app = typer.Typer(no_args_is_help=True)
topics_app = typer.Typer(no_args_is_help=True)
reasons_app = typer.Typer(no_args_is_help=True)
ticket_app = typer.Typer(no_args_is_help=True)
contracts_app = typer.Typer(no_args_is_help=True)
warehouse_app = typer.Typer(no_args_is_help=True)
erp_app = typer.Typer(no_args_is_help=True)
dlq_app = typer.Typer(no_args_is_help=True)
quarantine_app = typer.Typer(no_args_is_help=True)
app.add_typer(db_app, name="db", help="Database schema (Alembic)")
app.add_typer(topics_app, name="topics", help="Kafka topics from the contracts' catalogue")
app.add_typer(reasons_app, name="reasons", help="The after-sales reasons catalogue")
app.add_typer(ticket_app, name="ticket", help="Read tickets and their audit trail")
app.add_typer(contracts_app, name="contracts", help="JSON Schemas and AsyncAPI document")
app.add_typer(warehouse_app, name="warehouse", help="After-sales receipts and shipments")
app.add_typer(erp_app, name="erp", help="Orders sent to merchants' ERPs")
app.add_typer(dlq_app, name="dlq", help="Dead letters: list, show, replay to the source topic")
app.add_typer(quarantine_app, name="quarantine", help="Periodic-job items set aside after failing")

WORKERS = {
    "intake": "services.intake.app",
    "review": "services.review.app",
    "finance": "services.finance.app",
    "warehouse": "services.warehouse.app",
    "erp_sync": "services.erp_sync.app",
    "scheduler": "services.scheduler.app",
    "dead_letters": "services.dead_letters.app",
    "payment-channel": "services.simulators.payment",
    "wms": "services.simulators.wms",
    "erp": "services.simulators.erp",
    "marketing": "services.simulators.marketing",
    "order-system": "services.simulators.order_system",
}


@app.command()
def run(worker: str = typer.Argument(..., help=" | ".join(WORKERS))) -> None:
    """Runs one worker process until SIGTERM/SIGINT."""
    from services.common.runtime import run_worker

    if worker not in WORKERS:
        raise typer.BadParameter(f"unknown worker {worker!r}; choose from {', '.join(WORKERS)}")
    module = importlib.import_module(WORKERS[worker])
    run_worker(module.build_worker(Settings()))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrates the database to the current schema."""
    from alembic import command

    from services.common.migrations_check import alembic_config

    command.upgrade(alembic_config(Settings().database_url), "head")
    typer.echo("database schema is current")


@topics_app.command("create")
def topics_create() -> None:
    """Waits for the broker to serve metadata, then creates missing catalogue topics."""
    from services.common.kafka import ensure_topics

    created = asyncio.run(ensure_topics(Settings()))
    typer.echo(f"created {len(created)} topics" + (f": {', '.join(created)}" if created else ""))


@app.command("init")
def init() -> None:
    """Topics and schema: everything the workers need before they start."""
    topics_create()
    db_upgrade()


@contracts_app.command("export")
def contracts_export(out: str = typer.Option("contracts", help="folder for schemas/ and asyncapi.json")) -> None:
    from contracts.export import export

    written = export(out)
    typer.echo(f"wrote {written} files under {out}")


def _catalogue() -> Any:
    from redis.asyncio import Redis

    from services.common.db import make_engine, make_session_factory
    from services.intake.reasons import ReasonCatalogue

    settings = Settings()
    engine = make_engine(settings)
    return engine, ReasonCatalogue(make_session_factory(engine), Redis.from_url(settings.redis_url))


def _with_catalogue(action: Any) -> Any:
    async def go() -> Any:
        engine, catalogue = _catalogue()
        try:
            return await action(catalogue)
        finally:
            await engine.dispose()
    return asyncio.run(go())


def _type(name: str) -> Any:
    from services.domain.model import AfterSalesType

    return AfterSalesType(name.upper())


@reasons_app.command("list")
def reasons_list(type_: str = typer.Argument(..., metavar="TYPE"), all_: bool = typer.Option(False, "--all")) -> None:
    """Lists reasons of a type, in order (``--all`` includes hidden ones)."""
    async def go(cat: Any) -> None:
        if all_:
            for r in await cat.all(_type(type_)):
                typer.echo(f"{r.position:>3} {r.code:<22} {'visible' if r.visible else 'hidden ':<8} {r.label}")
        else:
            for r in await cat.visible(_type(type_)):
                typer.echo(f"{r['code']:<22} {r['label']}")
    _with_catalogue(go)


@reasons_app.command("add")
def reasons_add(type_: str = typer.Argument(..., metavar="TYPE"), code: str = typer.Argument(...),
                label: str = typer.Argument(...)) -> None:
    _with_catalogue(lambda cat: cat.add(_type(type_), code, label))


@reasons_app.command("edit")
def reasons_edit(type_: str = typer.Argument(..., metavar="TYPE"), code: str = typer.Argument(...),
                 label: str = typer.Argument(...)) -> None:
    _with_catalogue(lambda cat: cat.edit(_type(type_), code, label))


@reasons_app.command("hide")
def reasons_hide(type_: str = typer.Argument(..., metavar="TYPE"), code: str = typer.Argument(...)) -> None:
    _with_catalogue(lambda cat: cat.hide(_type(type_), code, True))


@reasons_app.command("show")
def reasons_show(type_: str = typer.Argument(..., metavar="TYPE"), code: str = typer.Argument(...)) -> None:
    _with_catalogue(lambda cat: cat.hide(_type(type_), code, False))


@reasons_app.command("delete")
def reasons_delete(type_: str = typer.Argument(..., metavar="TYPE"), code: str = typer.Argument(...)) -> None:
    _with_catalogue(lambda cat: cat.delete(_type(type_), code))


@reasons_app.command("reorder")
def reasons_reorder(type_: str = typer.Argument(..., metavar="TYPE"),
                    codes: list[str] = typer.Argument(..., help="codes in their new order")) -> None:
    _with_catalogue(lambda cat: cat.reorder(_type(type_), codes))


@reasons_app.command("seed")
def reasons_seed() -> None:
    added = _with_catalogue(lambda cat: cat.seed_defaults())
    typer.echo(f"seeded {added} reasons")


@ticket_app.command("history")
def ticket_history(ticket: str = typer.Argument(..., help="ticket id or ticket number"),
                   as_json: bool = typer.Option(False, "--json")) -> None:
    """The ticket's audit trail, in order: who, role, when, from → to, why, amount."""
    from services.common.audit import read_history

    entries = asyncio.run(read_history(Settings(), ticket))
    if as_json:
        typer.echo(json.dumps(entries, default=str, ensure_ascii=False, indent=2))
        return
    for e in entries:
        amount = ""
        if e["amount_after_cents"] is not None:
            amount = f"  amount {e['amount_before_cents']} -> {e['amount_after_cents']}"
        typer.echo(f"{e['at']:%Y-%m-%d %H:%M:%S}  {e['from_status']:>19} -> {e['to_status']:<19} "
                   f"{e['actor_role']}:{e['actor_id']:<10} {e['action']:<22} {e['reason']}{amount}")


def _with_session(action: Any) -> Any:
    from services.common.db import make_engine, make_session_factory

    async def go() -> Any:
        engine = make_engine(Settings())
        try:
            async with make_session_factory(engine)() as session, session.begin():
                return await action(session)
        finally:
            await engine.dispose()
    return asyncio.run(go())


@warehouse_app.command("receipts")
def warehouse_receipts(ticket: str = typer.Option(None), sku: str = typer.Option(None),
                       day: str = typer.Option(None, help="YYYY-MM-DD (UTC)")) -> None:
    """After-sales receipts (售后入库), filtered by ticket, sku or day."""
    from datetime import date

    from services.warehouse.repository import WarehouseRecords

    rows = _with_session(lambda s: WarehouseRecords(s).receipts(
        ticket_id=ticket, sku=sku, day=date.fromisoformat(day) if day else None))
    for r in rows:
        lines = ", ".join(f"{ln['sku']}×{ln['quantity']}" for ln in r.lines)
        typer.echo(f"{r.received_at:%Y-%m-%d %H:%M} {r.ticket_no} {r.receipt_type:<16} {r.inspection:<16} "
                   f"{r.operator:<8} {lines}")


@warehouse_app.command("shipments")
def warehouse_shipments(ticket: str = typer.Option(None), sku: str = typer.Option(None),
                        day: str = typer.Option(None, help="YYYY-MM-DD (UTC), by dispatch day")) -> None:
    """After-sales shipments (售后出库), filtered by ticket, sku or day."""
    from datetime import date

    from services.warehouse.repository import WarehouseRecords

    rows = _with_session(lambda s: WarehouseRecords(s).shipments(
        ticket_id=ticket, sku=sku, day=date.fromisoformat(day) if day else None))
    for r in rows:
        lines = ", ".join(f"{ln['sku']}×{ln['quantity']}" for ln in r.lines)
        typer.echo(f"{r.requested_at:%Y-%m-%d %H:%M} {r.ticket_no} {r.shipment_type:<18} {r.status:<10} "
                   f"{r.carrier or '-'} {r.waybill or '-'} {lines}")


@erp_app.command("failed")
def erp_failed() -> None:
    """ERP orders that were never acknowledged after every attempt."""
    from services.erp_sync.repository import ErpOrderRepository

    for r in _with_session(lambda s: ErpOrderRepository(s).failed()):
        typer.echo(f"{r.erp_order_id} {r.shop_id} {r.ticket_no} {r.kind} attempts={r.attempts} {r.last_error}")


@erp_app.command("resend")
def erp_resend(erp_order_id: str) -> None:
    """Resends a FAILED ERP order (a fresh round of attempts; the erp_sync worker relays it)."""
    import uuid

    from services.common.db import make_engine, make_session_factory
    from services.erp_sync.repository import SqlErpUnitOfWork
    from services.erp_sync.service import Deps, resend

    async def go() -> bool:
        settings = Settings()
        engine = make_engine(settings)
        try:
            async with SqlErpUnitOfWork(make_session_factory(engine), "erp_sync") as uow:
                done = await resend(uow, Deps(settings), uuid.UUID(erp_order_id))
                await uow.commit()
                return done
        finally:
            await engine.dispose()
    if not asyncio.run(go()):
        raise typer.BadParameter(f"no FAILED ERP order {erp_order_id}")
    typer.echo("resent")


def _since(text: str | None) -> Any:
    """``--since`` as an ISO time or a duration back from now (``30m``, ``2h``, ``7d``)."""
    import re
    from datetime import UTC, datetime, timedelta

    if not text:
        return None
    match = re.fullmatch(r"(\d+)([smhd])", text)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dlq_app.command("list")
def dlq_list(topic: str = typer.Option(None, help="source topic"), reason: str = typer.Option(None, help="reason code"),
             since: str = typer.Option(None, help="ISO time or 30m / 2h / 7d"),
             limit: int = typer.Option(100), as_json: bool = typer.Option(False, "--json")) -> None:
    """Dead letters, newest first (recorded by the dead_letters worker)."""
    from services.dead_letters.repository import DeadLetterRepository

    async def go(session: Any) -> None:
        rows = await DeadLetterRepository(session).find(topic=topic, reason=reason, since=_since(since), limit=limit)
        if as_json:
            typer.echo(json.dumps([{"id": str(r.dead_letter_id), "failed_at": r.failed_at.isoformat(),
                                    "source_topic": r.source_topic, "partition": r.partition, "offset": r.offset,
                                    "consumer_group": r.consumer_group, "reason_code": r.reason_code,
                                    "original_type": r.original_type, "replays": r.replays} for r in rows]))
            return
        for r in rows:
            typer.echo(f"{r.dead_letter_id}  {r.failed_at:%Y-%m-%d %H:%M:%S}  {r.source_topic}[{r.partition}]@"
                       f"{r.offset}  {r.consumer_group}  {r.reason_code}  {r.original_type or '-'}"
                       f"{'  replayed×' + str(r.replays) if r.replays else ''}")
        typer.echo(f"{len(rows)} dead letter(s)")
    _with_session(go)


@dlq_app.command("show")
def dlq_show(dead_letter_id: str) -> None:
    """One dead letter: where it came from, why, and the original (as kept)."""
    import uuid

    from services.dead_letters.repository import DeadLetterRepository

    async def go(session: Any) -> None:
        row = await DeadLetterRepository(session).get(uuid.UUID(dead_letter_id))
        if row is None:
            raise typer.BadParameter(f"no dead letter {dead_letter_id}")
        for name in ("dead_letter_id", "failed_at", "source_topic", "partition", "offset", "consumer_group",
                     "producer", "reason_code", "error_class", "reason", "original_event_id", "original_type",
                     "original_key", "original_key_encoding", "original_size", "original_sha256",
                     "original_truncated", "original_encoding", "replayed_at", "replays"):
            typer.echo(f"{name:22} {getattr(row, name)}")
        typer.echo("original:")
        typer.echo(row.original_value[:4000] + (" …" if len(row.original_value) > 4000 else ""))
    _with_session(go)


@dlq_app.command("replay")
def dlq_replay(ids: list[str] = typer.Argument(None, help="dead letter ids"),
               reason: str = typer.Option(None, help="replay every dead letter with this reason code"),
               force: bool = typer.Option(False, help="replay even if replayed before")) -> None:
    """Sends originals back to their source topic (inboxes drop what was applied meanwhile)."""
    import uuid

    from services.common.db import make_engine, make_session_factory
    from services.common.kafka import make_producer
    from services.dead_letters.repository import DeadLetterRepository
    from services.dead_letters.service import replay

    if not ids and not reason:
        raise typer.BadParameter("name dead letter ids or --reason CODE")

    async def go() -> list[Any]:
        settings = Settings()
        engine = make_engine(settings)
        sessions = make_session_factory(engine)
        producer = make_producer(settings, client_id="dlq-replay")
        await producer.start()

        async def send(topic: str, key: bytes | None, value: bytes) -> None:
            await producer.send_and_wait(topic, value, key=key)

        try:
            chosen = [uuid.UUID(i) for i in ids or []]
            if reason:
                async with sessions() as session:
                    chosen += [r.dead_letter_id for r in await DeadLetterRepository(session).find(
                        reason=reason, limit=10_000) if force or r.replayed_at is None]
            return [await replay(sessions, settings, send, one, force=force) for one in chosen]
        finally:
            await producer.stop()
            await engine.dispose()

    results = asyncio.run(go())
    for result in results:
        typer.echo(f"{result.dead_letter_id}  {result.outcome}")
    typer.echo(f"{sum(r.outcome == 'replayed' for r in results)} of {len(results)} replayed")


@quarantine_app.command("list")
def quarantine_list() -> None:
    """Items periodic jobs set aside after they failed for a reason of their own."""
    from services.common.quarantine import quarantined

    async def go(session: Any) -> None:
        rows = await quarantined(session)
        for r in rows:
            typer.echo(f"{r.quarantined_at:%Y-%m-%d %H:%M:%S}  {r.worker}/{r.job}  {r.item_id}  "
                       f"order {r.order_id}  {r.error}")
        typer.echo(f"{len(rows)} item(s)")
    _with_session(go)


@quarantine_app.command("release")
def quarantine_release(worker: str, job: str, item_id: str) -> None:
    """Lets the job pick the item up again at its next tick (after the cause was fixed)."""
    from services.common.quarantine import release

    async def go(session: Any) -> bool:
        return await release(session, worker, job, item_id)
    if not _with_session(go):
        raise typer.BadParameter(f"no quarantined item {worker}/{job}/{item_id}")
    typer.echo("released")


def _quiet_driver_clients() -> None:
    """The run's own Kafka clients complain loudly while the broker is down on purpose."""
    import logging

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


@app.command()
def chaos(tickets: int = typer.Option(10_000, help="after-sales tickets, every type mixed"),
          kills: int = typer.Option(10, help="SIGKILLs of random workers and the payment simulator"),
          broker_restart: bool = typer.Option(True, help="restart Kafka once, mid-run"),
          postgres_restart: bool = typer.Option(True, help="restart PostgreSQL once, mid-run"),
          freeze: bool = typer.Option(True, help="SIGSTOP one worker past the session timeout"),
          seed: int = typer.Option(11)) -> None:
    """Mixed flows under failures, then the invariants from the topics; non-zero exit on a violation."""
    from services.chaos import run as chaos_run

    _quiet_driver_clients()
    violations = asyncio.run(chaos_run(Settings(log_level="WARNING"), tickets=tickets, kills=kills,
                                       broker_restart=broker_restart, postgres_restart=postgres_restart,
                                       freeze=freeze, seed=seed))
    raise typer.Exit(1 if violations else 0)


@app.command()
def fuzz(messages: int = typer.Option(1000, help="hostile messages"),
         flows: int = typer.Option(50, help="valid refund flows among them"),
         seed: int = typer.Option(7)) -> None:
    """Hostile messages on every consumed topic among valid flows; exits non-zero on a violation."""
    from services.fuzz import run as fuzz_run

    _quiet_driver_clients()
    violations = asyncio.run(fuzz_run(Settings(log_level="WARNING"), messages=messages, flows=flows, seed=seed))
    raise typer.Exit(1 if violations else 0)


@app.command()
def demo() -> None:
    """Drives realistic orders and tickets through every flow against running workers."""
    from services.demo import main as demo_main

    raise typer.Exit(asyncio.run(demo_main(Settings())))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
