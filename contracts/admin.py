"""Admins' and staff's commands from the back office that are not decisions on a ticket: the
reasons catalogue (intake owns it) and restarting an ERP order that gave up (erp_sync owns it).
``requested_by`` is the signed-in person's user id, written by the back office."""

from __future__ import annotations

import uuid

from pydantic import Field

from .aftersales import AfterSalesType
from .envelope import Contract, Id, message


class ReasonCommand(Contract):
    type: AfterSalesType
    requested_by: Id


@message("SaveReason")
class SaveReason(ReasonCommand):
    """Adds a reason (at the end of the list) or edits a reason's label, keeping its place."""

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Z][A-Z0-9_]*$")
    label: str = Field(min_length=1, max_length=200)


@message("SetReasonVisible")
class SetReasonVisible(ReasonCommand):
    """Hides a reason from buyers (requests naming it are refused) or shows it again."""

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Z][A-Z0-9_]*$")
    visible: bool


@message("DeleteReason")
class DeleteReason(ReasonCommand):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Z][A-Z0-9_]*$")


@message("ReorderReasons")
class ReorderReasons(ReasonCommand):
    """The type's reasons in their new order; every reason of the type, each once."""

    codes: list[str] = Field(min_length=1, max_length=100)


@message("RestartErpOrder")
class RestartErpOrder(Contract):
    """A person restarts an ERP order that gave up (FAILED or CANCEL_FAILED): a fresh round of
    attempts with the same order id, so the ERP sees it once."""

    erp_order_id: uuid.UUID
    order_id: Id
    requested_by: Id


@message("ReplayDeadLetter")
class ReplayDeadLetter(Contract):
    """An admin replays a dead letter into the consumer group that gave up on it.

    It names where the original is, not what it was: the worker of ``consumer_group`` reads the
    message back from its source topic (which it may read anyway) and handles it as if it had just
    arrived; the hash makes sure it is the same message. So whoever may send this command can make
    a worker look again at a message it was sent, and nothing more: no message is forged."""

    dead_letter_id: uuid.UUID
    source_topic: str = Field(min_length=1, max_length=128)
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    consumer_group: str = Field(min_length=1, max_length=128)
    original_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    requested_by: Id


@message("AcknowledgeWorkItem")
class AcknowledgeWorkItem(Contract):
    """Someone took an open work item (an alert): it stops escalating."""

    item_id: uuid.UUID
    order_id: Id
    requested_by: Id


@message("ResolveWorkItem")
class ResolveWorkItem(Contract):
    """The condition behind a work item is dealt with; the same alert later opens a new item."""

    item_id: uuid.UUID
    order_id: Id
    requested_by: Id
    note: str = Field("", max_length=500)
