"""Workers refuse to start on a database whose schema is not at the current migration."""

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


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("the migrations folder holds no revision: the package was built without them")
    return head


async def require_current_schema(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        try:
            current = (await conn.execute(text("select version_num from alembic_version"))).scalar()
        except ProgrammingError:
            current = None
    head = head_revision()
    if current != head:
        raise SchemaNotCurrent(
            f"database schema is at {current or 'nothing'}, this code needs {head}: "
            "run `aftersales db upgrade` first")
