"""The case model, read from TOML: errors that name the file, the step and the field; templates; match rules;
declarations and plans. Pure: no sockets."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gateway.chargertest.model import (PLANS, CaseError, Expect, Send, TemplateError, Unordered, catalogue,
                                       declarations, dig, fill, load_case, mismatches, parse_case, plan)

HEAD = 'id = "TC_900_CS"\ntitle = "t"\nprofile = "Core"\n'


def parse(steps: str, head: str = HEAD):
    return parse_case(tomllib.loads(head + steps), "core/TC_900_CS.toml")


def test_a_case_is_read_with_its_step_kinds():
    case = parse('''
[[steps]]
kind = "send"
name = "trigger"
action = "TriggerMessage"
payload = {requestedMessage = "Heartbeat"}
expect = {status = "Accepted"}
[[steps]]
kind = "unordered"
steps = [{action = "StartTransaction", name = "start"}, {kind = "expect", action = "StatusNotification"}]
[[steps]]
kind = "store"
from = "start"
path = "transactionId"
as = "transaction_id"
[[steps]]
kind = "absent"
action = "StopTransaction"
for = "{transaction_duration}"
''')
    send, unordered, store, absent = case.steps
    assert isinstance(send, Send) and send.payload == {"requestedMessage": "Heartbeat"} and send.timeout == 30
    assert isinstance(unordered, Unordered) and all(isinstance(s, Expect) for s in unordered.steps)
    assert (store.from_, store.path, store.as_) == ("start", "transactionId", "transaction_id")
    assert absent.for_ == "{transaction_duration}"
    assert case.automation == ("AUTO",) and case.unattended and not case.is_approximate()


@pytest.mark.parametrize(("steps", "says"), [
    ('kind = "send"\n', "step 0: required field missing in field action"),
    ('kind = "send"\naction = "Reset"\npaylod = {}\n', "step 0: extra fields found (paylod)"),
    ('kind = "expect"\naction = "Heartbeat"\ntimes = "three"\n', "expected int in field times"),
    ('kind = "expect"\naction = "Heartbeat"\ntimes = 0\n', "times must be at least 1"),
    ('kind = "teleport"\n', "kind 'teleport' is not a step kind"),
    ('kind = "wait"\nseconds = "soon"\n', "number of seconds or one placeholder"),
    ('kind = "wait"\nseconds = -2\n', "cannot be negative"),
    ('kind = "manual"\naction = "dance"\n', "manual action 'dance' is not one of"),
    ('kind = "store"\nfrom = "nowhere"\npath = "x"\nas = "y"\n', "from refers to 'nowhere'"),
    ('kind = "send"\naction = "Reset"\npayload = {type = "{kind_of_reset}"}\n', "{kind_of_reset} is neither"),
    ('kind = "answer"\naction = "Authorize"\npayload = {}\nuntil = "later"\n', "no step has that name"),
    ('kind = "reset_reboot"\ntype = "Warm"\n', "type must be Hard or Soft"),
])
def test_errors_name_the_file_the_step_and_the_field(steps, says):
    with pytest.raises(CaseError) as caught:
        parse("[[steps]]\n" + steps)
    assert str(caught.value).startswith("core/TC_900_CS.toml: step 0") and says in str(caught.value)


@pytest.mark.parametrize(("head", "says"), [
    ('id = "X"\ntitle = "t"\nprofile = "Billing"\n', "profile 'Billing' is not one of"),
    ('id = "X"\ntitle = "t"\nprofile = "Core"\nautomation = ["ROBOT"]\n', "automation 'ROBOT'"),
    ('id = "X"\ntitle = "t"\nprofile = "Core"\nrequires = ["teleporter"]\n', "'teleporter' is not a declaration"),
    ('id = "X"\nprofile = "Core"\n', "required field missing in field title"),
])
def test_errors_in_the_head_of_a_case(head, says):
    with pytest.raises(CaseError, match="core/TC_900_CS.toml: ") as caught:
        parse('[[steps]]\nkind = "wait"\nseconds = 1\n', head)
    assert says in str(caught.value)


def test_a_file_must_be_named_after_its_id(tmp_path: Path):
    folder = tmp_path / "core"
    folder.mkdir()
    path = folder / "TC_901_CS.toml"
    path.write_text(HEAD + '[[steps]]\nkind = "wait"\nseconds = 1\n')
    with pytest.raises(CaseError, match="differs from the file name"):
        load_case(path)
    path.write_text("id = ")
    with pytest.raises(CaseError, match="core/TC_901_CS.toml: not valid TOML"):
        load_case(path)


def test_templates_keep_a_lone_placeholders_type():
    values = {"connector": 2, "valid_tag": "TAG1", "flag": True}
    assert fill({"connectorId": "{connector}", "text": "on {connector} for {valid_tag}", "list": ["{flag}"]},
                values) == {"connectorId": 2, "text": "on 2 for TAG1", "list": [True]}
    with pytest.raises(TemplateError, match="no value for the placeholder {missing}"):
        fill("{missing}", values)


@pytest.mark.parametrize(("pattern", "actual", "ok"), [
    ({"status": "Accepted"}, {"status": "Accepted", "extra": 1}, True),
    ({"status": "Accepted"}, {"status": "Rejected"}, False),
    ({"status": ["Accepted", "Scheduled"]}, {"status": "Scheduled"}, True),
    ({"idTagInfo": {"status": "Accepted"}}, {"idTagInfo": {"status": "Blocked"}}, False),
    ({"transactionId": "*"}, {"transactionId": 7}, True),
    ({"transactionId": "*"}, {}, False),
    ({"value": 10}, {"value": "10"}, True),  # a number as text
    ({"value": 10}, {"value": "10.0"}, False),
    ({"value": "10"}, {"value": 10}, False),  # text stays text
    ({"connectorId": 1}, {"connectorId": 1.0}, True),
    ({"flag": True}, {"flag": 1}, False),
    ({"keys": [{"key": "A"}]}, {"keys": [{"key": "B"}, {"key": "A", "value": "1"}]}, True),
])
def test_match_rules(pattern, actual, ok):
    assert (mismatches(pattern, actual) == []) is ok, mismatches(pattern, actual)


def test_a_mismatch_says_where_and_what():
    assert mismatches({"idTagInfo": {"status": "Accepted"}}, {"idTagInfo": {"status": "Invalid"}}) == [
        'idTagInfo.status: expected "Accepted", got "Invalid"']
    assert dig({"a": [{"b": 3}]}, "a.0.b") == 3
    with pytest.raises(KeyError, match="no 'c'"):
        dig({"a": {}}, "a.c")


def test_declarations_have_defaults_and_refuse_what_they_do_not_know():
    declared = declarations({"security_profiles": [0, 2], "connectors": 2})
    assert declared.connector == 1 and declared.reservation is True and declared.security_profiles == (0, 2)
    assert declared.satisfies("security_profiles=2") is None
    assert declared.satisfies("security_profiles:1,3") is not None
    assert declared.satisfies("security_profiles:1,2") is None
    assert declared.satisfies("connectors>=2") is None and declared.satisfies("connectors>=3") is not None
    assert declared.satisfies("!fixed_cable") is None
    assert "reserve_connector_zero is declared false" in declared.satisfies("reserve_connector_zero")
    assert "webhook_secret" not in declared.public()
    for bad, says in [({"conectors": 2}, "conectors"), ({"connectors": "two"}, "connectors"),
                      ({"connectors": 1, "connector": 2}, "connector 2"),
                      ({"manual_backends": ["webhook"]}, "webhook_url"),
                      ({"manual_backends": ["pigeon"]}, "pigeon")]:
        with pytest.raises(ValueError, match=says):
            declarations(bad)


def test_plans_and_the_shipped_catalogue():
    cases = catalogue()
    assert len(cases) == 102 and len({c.id for c in cases}) == 102
    assert set(PLANS) == {"core", "all", "local_auth_list", "firmware", "reservation", "remote_trigger",
                          "smart_charging", "security"}
    assert len(plan("all", cases)) == 102
    assert {c.profile for c in plan("core", cases)} == {"Core"}
    assert sum(len(plan(p, cases)) for p in PLANS if p not in ("all",)) == 102
    assert [c.id for c in plan("core", cases, ["TC_013_CS", "TC_013_CS"])] == ["TC_013_CS"]
    with pytest.raises(ValueError, match="unknown plan"):
        plan("everything", cases)
    with pytest.raises(ValueError, match="not in plan 'core': TC_073_CS"):
        plan("core", cases, ["TC_073_CS"])
    ids = [c.id for c in cases]
    assert ids.index("TC_004_2_CS") < ids.index("TC_005_1_CS") < ids.index("TC_010_CS")
