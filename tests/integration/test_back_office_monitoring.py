"""The back office's monitoring views on the real PostgreSQL: the dashboard's figures for a
person's shops (the hand-computed day), the work queue each role sees and may act on (what an
acknowledgement stages), the serial-returner flag and the order page's line states in the ticket
detail, and the pages people read (charts drawn on the server)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import delete, select

from contracts import Envelope, new_envelope
from contracts.ops import OpsAlert, Severity
from services.backoffice import service
from services.backoffice.repository import SqlBackOfficeUnitOfWork
from services.backoffice.staff import StaffRole
from services.backoffice.web import create_api
from services.common.routes import Deps
from services.common.settings import Settings
from services.common.tables import OutboxRow
from services.domain.line_state import Line
from services.domain.model import AfterSalesType
from services.domain.serial_returner import ReturnerFlag
from services.monitoring import handlers
from services.monitoring.repository import SqlMonitoringUnitOfWork
from tests.unit.use_cases.monitoring_day import (
    DAY,
    EXPECTED_REASONS,
    EXPECTED_TIME_IN_STATE,
    EXPECTED_UNITS,
    NEXT_DAY,
    day,
)

from .helpers import open_ticket

pytestmark = pytest.mark.asyncio(loop_scope="session")
PASSWORD = "correct horse battery"


class Desk:
    """The back office in-process, people of one shop, and monitoring's use cases to feed it."""

    def __init__(self, sessions: Any, settings: Settings, shop: str) -> None:
        self.sessions, self.settings, self.shop = sessions, settings, shop
        api = create_api(lambda: SqlBackOfficeUnitOfWork(sessions, "back-office"), lambda: datetime.now(UTC),
                         cookie_secure=False, reporting_timezone="Asia/Shanghai")
        self.transport = httpx.ASGITransport(app=api)
        self.client = httpx.AsyncClient(transport=self.transport, base_url="http://office")
        self.routes = {r.message.event_type: r for sub in handlers.subscriptions() for r in sub.routes}
        self.orders: list[str] = []

    async def person(self, role: StaffRole, shops: list[str] | None = None) -> tuple[str, dict[str, str]]:
        username = f"{role.value}-{uuid.uuid4().hex[:8]}"
        async with SqlBackOfficeUnitOfWork(self.sessions, "back-office") as uow:
            await service.add_user(uow, username, PASSWORD, role, [self.shop] if shops is None else shops)
        answer = await self.client.post("/api/session", json={"username": username, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        return username, {"authorization": f"Bearer {answer.json()['token']}"}

    async def read(self, envelope: Envelope[Any]) -> None:
        """Monitoring consumes one message (its use case in one committed unit of work)."""
        async with SqlMonitoringUnitOfWork(self.sessions, "monitoring") as uow:
            await self.routes[envelope.type].use_case(envelope, uow, Deps(self.settings))
            await uow.commit()

    async def staged(self, order_id: str) -> list[OutboxRow]:
        async with self.sessions() as session:
            return list((await session.execute(select(OutboxRow).where(
                OutboxRow.producer == "back-office", OutboxRow.key == order_id))).scalars().all())


@pytest_asyncio.fixture(loop_scope="session")
async def desk(stack: Settings, sessions: Any) -> AsyncIterator[Desk]:
    the_day = day()
    desk = Desk(sessions, stack, the_day.shop_id)
    for _, envelope in the_day.messages:
        await desk.read(envelope)
    desk.day = the_day  # type: ignore[attr-defined]
    yield desk
    await desk.client.aclose()
    async with sessions() as session, session.begin():  # no relay runs here: these would wait for ever
        await session.execute(delete(OutboxRow).where(OutboxRow.producer.in_(["back-office", "monitoring"]),
                                                      OutboxRow.key.in_(desk.orders)))


async def test_the_dashboard_shows_the_days_figures_of_the_persons_shops_only(desk: Desk) -> None:
    _, ops = await desk.person(StaffRole.OPS)
    answer = await desk.client.get("/api/dashboard", params={"from": DAY.isoformat(), "to": NEXT_DAY.isoformat()},
                                   headers=ops)
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert (found["rate"]["in_tickets"], found["rate"]["sold"]) == (EXPECTED_UNITS["in_tickets"],
                                                                     EXPECTED_UNITS["sold"])
    assert {c["key"]: c["value"] for c in found["reasons"]} == {f"{k}/{r}": n for (k, r), n in EXPECTED_REASONS.items()}
    assert {t["status"]: (t["tickets"], t["p50_seconds"], t["p95_seconds"], t["max_seconds"])
            for t in found["time_in_state"]} == EXPECTED_TIME_IN_STATE
    assert found["refunded"] == [{"currency": "CNY", "cents": 5000}]
    assert found["refunds_per_day"] == [{"day": DAY.isoformat(), "currency": "CNY", "cents": 5000}]
    assert found["sla_breaches"] == [{"key": "AWAITING_RETURN", "value": 1}]
    assert found["dead_letters"] == []  # an admin's figure

    _, stranger = await desk.person(StaffRole.OPS, ["shop-elsewhere"])
    other = (await desk.client.get("/api/dashboard", params={"from": DAY.isoformat()}, headers=stranger)).json()
    assert (other["tickets_opened"], other["rate"]["sold"]) == (0, 0)
    refused = await desk.client.get("/api/dashboard", params={"shop": desk.shop}, headers=stranger)
    assert refused.status_code == 403
    backwards = await desk.client.get("/api/dashboard", params={"from": NEXT_DAY.isoformat(),
                                                                "to": DAY.isoformat()}, headers=ops)
    assert backwards.status_code == 422


async def test_the_work_queue_shows_a_shops_items_and_its_owner_acknowledges_one(desk: Desk) -> None:
    ticket = await open_ticket(desk.sessions, desk.settings, shop=desk.shop)
    desk.orders.append(ticket.order_id)
    alert = OpsAlert(kind="AWAITING_RETURN_SLA_BREACHED", severity=Severity.WARNING, message="return late",
                     order_id=ticket.order_id, ticket_id=ticket.ticket_id)
    await desk.read(new_envelope(alert, key=ticket.order_id, producer="scheduler"))
    _, ops = await desk.person(StaffRole.OPS)
    _, finance = await desk.person(StaffRole.FINANCE)
    _, stranger = await desk.person(StaffRole.OPS, ["shop-elsewhere"])

    listed = (await desk.client.get("/api/work-items", headers=ops)).json()
    (item,) = [i for i in listed if i["ticket_id"] == ticket.ticket_id]
    assert (item["owner"], item["state"], item["shop_id"], item["severity"]) == ("ops", "OPEN", desk.shop, "WARNING")
    assert all(i["ticket_id"] != ticket.ticket_id
               for i in (await desk.client.get("/api/work-items", headers=stranger)).json())

    path = f"/api/work-items/{item['item_id']}/acknowledge"
    assert (await desk.client.post(path, headers=finance)).status_code == 403  # ops' item
    assert (await desk.client.post(path, headers=stranger)).status_code == 404  # not their shop
    assert await desk.staged(ticket.order_id) == []
    answer = await desk.client.post(path, headers=ops)
    assert answer.status_code == 202, answer.text
    (row,) = await desk.staged(ticket.order_id)
    assert (row.topic, row.type) == ("aftersales.admin-commands", "AcknowledgeWorkItem")
    command = json.loads(row.value)["payload"]
    me = (await desk.client.get("/api/me", headers=ops)).json()
    assert (command["item_id"], command["requested_by"]) == (item["item_id"], me["user_id"])
    decision = (await desk.client.get(answer.json()["outcome_at"], headers=ops)).json()
    assert (decision["outcome"], decision["command_type"]) == ("ACCEPTED", "AcknowledgeWorkItem")


async def test_the_ticket_detail_shows_the_buyer_flag_and_each_lines_order_page_state(desk: Desk) -> None:
    ticket = await open_ticket(desk.sessions, desk.settings, shop=desk.shop)
    desk.orders.append(ticket.order_id)
    async with SqlMonitoringUnitOfWork(desk.sessions, "monitoring") as uow:
        line = Line(ticket.order_id, 1, "SKU-IT", 3, currency="CNY").opened(
            ticket.ticket_id, AfterSalesType.REFUND_ONLY, 2)
        await uow.monitoring.save_line(line)
        await uow.monitoring.flag_buyer(desk.shop, "buyer-it", ticket.ticket_id, ReturnerFlag(
            window_days=30, tickets_in_window=6, orders_in_window=7, max_tickets=5, max_rate_percent=50,
            min_orders=5, reason="6 tickets in 30 days (more than 5)"), datetime.now(UTC))
        await uow.commit()
    _, ops = await desk.person(StaffRole.OPS)
    detail = (await desk.client.get(f"/api/tickets/{ticket.ticket_id}", headers=ops)).json()
    assert detail["buyer_flag"]["reason"] == "6 tickets in 30 days (more than 5)"
    assert [(s["line_no"], s["label"], s["in_progress_units"]) for s in detail["line_states"]] == [(1, "售后中", 2)]

    username, _ = await desk.person(StaffRole.OPS)
    signed = await desk.client.post("/sign-in", data={"username": username, "password": PASSWORD})
    assert signed.status_code == 303
    page = await desk.client.get(f"/tickets/{ticket.ticket_id}")
    assert page.status_code == 200
    assert 'id="buyer-flag"' in page.text
    assert "售后中" in page.text


async def test_the_pages_draw_the_dashboard_and_list_the_work_queue(desk: Desk) -> None:
    username, _ = await desk.person(StaffRole.OPS)
    await desk.client.post("/sign-in", data={"username": username, "password": PASSWORD})
    page = await desk.client.get("/dashboard", params={"from": DAY.isoformat(), "to": NEXT_DAY.isoformat()})
    assert page.status_code == 200
    assert page.text.count("<svg") >= 5
    assert f'id="rate">{EXPECTED_UNITS["rate"]}<' in page.text
    assert "SKU-A" in page.text
    queue = await desk.client.get("/work-items")
    assert queue.status_code == 200
    assert "Work items" in queue.text
    await desk.client.post("/sign-out")
    assert (await desk.client.get("/dashboard")).status_code == 303  # to the sign-in page
