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
app.add_typer(db_app, name="db", help="Database schema (Alembic)")
app.add_typer(topics_app, name="topics", help="Kafka topics from the contracts' catalogue")
app.add_typer(reasons_app, name="reasons", help="The after-sales reasons catalogue")
app.add_typer(ticket_app, name="ticket", help="Read tickets and their audit trail")
app.add_typer(contracts_app, name="contracts", help="JSON Schemas and AsyncAPI document")
app.add_typer(warehouse_app, name="warehouse", help="After-sales receipts and shipments")
app.add_typer(erp_app, name="erp", help="Orders sent to merchants' ERPs")

WORKERS = {
    "intake": "services.intake.app",
    "review": "services.review.app",
    "finance": "services.finance.app",
    "warehouse": "services.warehouse.app",
    "erp_sync": "services.erp_sync.app",
    "scheduler": "services.scheduler.app",
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

    from services.warehouse.repository import WarehouseRepository

    rows = _with_session(lambda s: WarehouseRepository(s).receipts(
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

    from services.warehouse.repository import WarehouseRepository

    rows = _with_session(lambda s: WarehouseRepository(s).shipments(
        ticket_id=ticket, sku=sku, day=date.fromisoformat(day) if day else None))
    for r in rows:
        lines = ", ".join(f"{ln['sku']}×{ln['quantity']}" for ln in r.lines)
        typer.echo(f"{r.requested_at:%Y-%m-%d %H:%M} {r.ticket_no} {r.shipment_type:<18} {r.status:<10} "
                   f"{r.carrier or '-'} {r.waybill or '-'} {lines}")


@erp_app.command("failed")
def erp_failed() -> None:
    """ERP orders that were never acknowledged after every attempt."""
    from services.erp_sync.repository import ErpRepository

    for r in _with_session(lambda s: ErpRepository(s).failed()):
        typer.echo(f"{r.erp_order_id} {r.shop_id} {r.ticket_no} {r.kind} attempts={r.attempts} {r.last_error}")


@erp_app.command("resend")
def erp_resend(erp_order_id: str) -> None:
    """Resends a FAILED ERP order (a fresh round of attempts; the erp_sync worker relays it)."""
    import uuid
    from datetime import UTC, datetime

    from services.common.db import make_engine, make_session_factory
    from services.common.uow import UnitOfWork
    from services.erp_sync.service import Deps, resend

    async def go() -> bool:
        settings = Settings()
        engine = make_engine(settings)
        try:
            async with UnitOfWork(make_session_factory(engine), "erp_sync") as uow:
                done = await resend(uow, Deps(settings, lambda: datetime.now(UTC)), uuid.UUID(erp_order_id))
                await uow.commit()
                return done
        finally:
            await engine.dispose()
    if not asyncio.run(go()):
        raise typer.BadParameter(f"no FAILED ERP order {erp_order_id}")
    typer.echo("resent")


@app.command()
def demo() -> None:
    """Drives realistic orders and tickets through every flow against running workers."""
    from services.demo import main as demo_main

    raise typer.Exit(asyncio.run(demo_main(Settings())))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
