"""The topic catalogue and the domain agree with the contracts."""

from contracts import CATALOGUE
from contracts import aftersales as c
from contracts import warehouse as w
from contracts.envelope import registry
from services.domain import model


def test_every_message_is_on_exactly_one_topic():
    placed = [m.event_type for t in CATALOGUE for m in t.messages]
    assert sorted(placed) == sorted(registry())


def test_topic_names_are_unique_and_dotted():
    names = [t.name for t in CATALOGUE]
    assert len(names) == len(set(names))
    assert all("." in n for n in names)


def test_domain_and_contract_names_agree():
    for contract_enum, domain_enum in [(c.AfterSalesType, model.AfterSalesType), (c.TicketStatus, model.TicketStatus),
                                       (c.Role, model.Role), (w.Inspection, model.Inspection)]:
        assert [e.value for e in contract_enum] == [e.value for e in domain_enum]
