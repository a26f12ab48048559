"""Workers refuse to start on a database whose schema is older than the migration they need.

One Alembic history serves every worker (see ``tables.py`` for who owns which table). Each worker
declares the revision its repositories need (``SCHEMA`` in its ``repository.py``) and starts on a
database at that revision or any later one, so workers deploy one at a time: migrate first, then
roll the workers. That holds because migrations are expand-then-contract: a revision only adds
(tables, nullable or defaulted columns, indexes); a column or table is dropped only by a revision
that comes after every worker's ``SCHEMA`` has moved past the last code reading it.

A database at a revision this code does not know was migrated by newer code; it is accepted for
the same reason, and the worker logs it.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

HERE = Path(__file__).parent


class SchemaNotCurrent(RuntimeError):
    pass


def alembic_config(database_url: str | None = None) -> Config:
    cfg = Config(str(HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    if database_url:
        cfg.set_main_option("sqlalchemy.url", database_url)
    return cfg


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    if head is None:
        raise RuntimeError("the migrations folder holds no revision: the package was built without them")
    return head


def applied_with(revision: str) -> set[str]:
    """The revisions a database at ``revision`` has applied: it and all its ancestors."""
    return {script.revision for script in _scripts().walk_revisions(base="base", head=revision)}


async def schema_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        try:
            return (await conn.execute(text("select version_num from alembic_version"))).scalar()
        except ProgrammingError:
            return None


async def require_schema(engine: AsyncEngine, needs: str | None = None) -> str:
    """Returns the database's revision when it is ``needs`` (default: this code's head) or later."""
    needs = needs or head_revision()
    current = await schema_revision(engine)
    known = {script.revision for script in _scripts().walk_revisions()}
    if current is None or (current in known and needs not in applied_with(current)):
        raise SchemaNotCurrent(
            f"database schema is at {current or 'nothing'}, this worker needs {needs} or later: "
            "run `aftersales db upgrade` first")
    return current


async def require_current_schema(engine: AsyncEngine) -> None:
    """The whole code base's check (``aftersales db`` and the tests): the schema is at the head."""
    current = await schema_revision(engine)
    head = head_revision()
    if current != head:
        raise SchemaNotCurrent(
            f"database schema is at {current or 'nothing'}, this code needs {head}: "
            "run `aftersales db upgrade` first")
