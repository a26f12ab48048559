"""Each worker names only the tables it owns, the shared ones and the documented extra reads
(services/common/tables.py says why for each); every table has exactly one entry."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from services.cli import WORKERS as WORKER_MODULES
from services.common import tables
from services.common.migrations_check import applied_with, head_revision
from services.common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ["intake", "review", "finance", "warehouse", "erp_sync", "scheduler", "dead_letters", "simulators",
           "backoffice"]
TABLE_OF = {mapper.class_.__name__: mapper.class_.__tablename__ for mapper in tables.Base.registry.mappers}


def tables_named_by(worker: str) -> set[str]:
    """The tables whose row classes the worker's package imports from services.common.tables."""
    named: set[str] = set()
    for module in (ROOT / "services" / worker).glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "services.common.tables":
                named |= {TABLE_OF[alias.name] for alias in node.names if alias.name in TABLE_OF}
    return named


def test_every_table_has_one_owner_or_a_reason_to_be_shared() -> None:
    every = set(TABLE_OF.values())
    assert set(tables.OWNERS) | set(tables.SHARED) == every
    assert not set(tables.OWNERS) & set(tables.SHARED)


@pytest.mark.parametrize("worker", WORKERS)
def test_a_worker_names_only_its_tables_the_shared_ones_and_its_documented_reads(worker: str) -> None:
    allowed = ({t for t, owner in tables.OWNERS.items() if owner == worker} | set(tables.SHARED)
               | set(tables.ALSO_READS.get(worker, {})))
    assert tables_named_by(worker) <= allowed, tables_named_by(worker) - allowed


def test_finance_reads_what_an_order_paid_from_its_own_copy() -> None:
    assert "orders" not in tables_named_by("finance")
    assert "finance_orders" in tables_named_by("finance")


@pytest.mark.parametrize("module", sorted(WORKER_MODULES.values()))
def test_each_worker_declares_a_minimum_schema_this_code_ships(module: str) -> None:
    worker = importlib.import_module(module).build_worker(Settings())
    assert (worker.needs_schema or head_revision()) in applied_with(head_revision()), worker.name
