"""The catalogue of charge-point test cases as shipped: every file loads into the engine's model, the ids are
the 102 of the OCPP 1.6 charge-point test plan, each in its profile's folder, and what each case says it needs
(automation codes, requirements) agrees with the steps it has."""

from __future__ import annotations

from collections import Counter
from importlib import resources

import pytest

from gateway.chargertest import model
from gateway.chargertest.model import Manual, Unordered

# The charge-point cases of the 2024-04 test plan by how much of them runs without a person (written out here
# from the plan's own tables, independently of the case files).
UNATTENDED = {
    "Core": ["TC_011_2_CS", "TC_013_CS", "TC_014_CS", "TC_017_1_CS", "TC_017_2_CS", "TC_019_CS", "TC_021_CS",
             "TC_027_CS", "TC_031_CS", "TC_040_1_CS", "TC_040_2_CS", "TC_062_CS"],
    "LocalAuthListManagement": ["TC_042_1_CS", "TC_042_2_CS", "TC_043_CS", "TC_043_1_CS", "TC_043_2_CS"],
    "FirmwareManagement": ["TC_044_1_CS", "TC_044_2_CS", "TC_044_3_CS", "TC_045_1_CS", "TC_045_2_CS"],
    "Reservation": ["TC_048_3_CS", "TC_048_4_CS", "TC_050_3_CS", "TC_050_4_CS", "TC_052_CS"],
    "RemoteTrigger": ["TC_054_CS", "TC_055_CS"],
    "SmartCharging": ["TC_056_CS", "TC_058_1_CS", "TC_060_CS", "TC_067_CS", "TC_072_CS"],
    "Security": ["TC_073_CS", "TC_074_CS", "TC_075_1_CS", "TC_075_2_CS", "TC_076_CS", "TC_077_CS", "TC_078_CS",
                 "TC_079_CS", "TC_080_CS", "TC_081_CS", "TC_083_CS", "TC_084_CS", "TC_085_CS", "TC_086_CS",
                 "TC_087_CS"],
}
AUTO_BUT_FINAL_CHECK = ["TC_047_CS", "TC_051_CS"]
EV = ["TC_005_1_CS", "TC_005_2_CS", "TC_005_3_CS", "TC_008_CS", "TC_010_CS", "TC_011_1_CS", "TC_012_CS", "TC_015_CS",
      "TC_016_CS", "TC_018_1_CS", "TC_018_2_CS", "TC_026_CS", "TC_028_CS", "TC_046_2_CS", "TC_048_2_CS", "TC_049_CS",
      "TC_050_2_CS", "TC_057_CS", "TC_058_2_CS", "TC_059_CS", "TC_066_CS", "TC_070_CS", "TC_071_CS", "TC_082_CS",
      "TC_036_CS"]
ID = ["TC_003_CS", "TC_004_1_CS", "TC_004_2_CS", "TC_007_CS", "TC_061_CS", "TC_068_CS", "TC_069_CS", "TC_023_CS",
      "TC_046_1_CS", "TC_053_CS", "TC_037_1_CS", "TC_037_2_CS", "TC_037_3_CS", "TC_038_CS", "TC_039_CS"]
PWR = ["TC_001_CS", "TC_002_CS", "TC_034_CS", "TC_032_2_CS", "TC_032_1_CS"]
FAULT = ["TC_024_CS", "TC_030_CS", "TC_041_CS", "TC_043_3_CS", "TC_048_1_CS", "TC_050_1_CS"]

# Which manual actions stand for which automation code.
NEEDS = {"EV": {"plug_in", "plug_out", "ev_side_unplug", "ev_suspend", "ev_resume"}, "ID": {"present_id"},
         "PWR": {"power_cycle"}, "FAULT": {"set_fault", "lock_failure"}}


def manual_actions(case: model.Case) -> set[str]:
    found = set()
    for step in case.steps:
        for inner in (step.steps if isinstance(step, Unordered) else (step,)):
            if isinstance(inner, Manual):
                found.add(inner.action)
    return found


def automation_class(case: model.Case) -> str:
    """The class of section 5 of the plan a case falls in, from its automation codes."""
    codes = set(case.automation)
    if codes == {"AUTO"}:
        return "AUTO"
    if codes == {"AUTO", "EV"}:
        return "AUTO_BUT_FINAL_CHECK"
    for code in ("FAULT", "PWR", "ID", "EV"):
        if code in codes:
            return code
    raise AssertionError(f"{case.id}: automation {case.automation} fits no class")


@pytest.fixture(scope="module")
def catalogue() -> tuple[model.Case, ...]:
    return model.catalogue()


def test_every_file_loads_and_the_ids_are_the_102_of_the_plan(catalogue):
    ids = [c.id for c in catalogue]
    assert len(ids) == 102
    assert len(set(ids)) == 102, [i for i, n in Counter(ids).items() if n > 1]
    planned = {i for group in UNATTENDED.values() for i in group} | set(AUTO_BUT_FINAL_CHECK) | set(EV) | set(ID) \
        | set(PWR) | set(FAULT)
    assert len(planned) == 102
    assert set(ids) == planned


def test_the_count_per_class_is_the_plans(catalogue):
    classes = Counter(automation_class(c) for c in catalogue)
    assert classes == {"AUTO": 49, "AUTO_BUT_FINAL_CHECK": 2, "EV": 25, "ID": 15, "PWR": 5, "FAULT": 6}
    by_id = {c.id: automation_class(c) for c in catalogue}
    for profile, ids in UNATTENDED.items():
        for case_id in ids:
            assert by_id[case_id] == "AUTO", case_id
    for wanted, ids in (("AUTO_BUT_FINAL_CHECK", AUTO_BUT_FINAL_CHECK), ("EV", EV), ("ID", ID), ("PWR", PWR),
                        ("FAULT", FAULT)):
        assert [i for i in ids if by_id[i] != wanted] == [], wanted


def test_each_case_is_in_its_profiles_folder(catalogue):
    root = resources.files("gateway.chargertest") / "cases"
    for case in catalogue:
        assert (root / case.folder / f"{case.id}.toml").is_file(), case.id
    profiles = {c.id: c.profile for c in catalogue}
    for profile, ids in UNATTENDED.items():
        assert {profiles[i] for i in ids} == {profile}


def test_unattended_cases_ask_nobody_and_the_others_ask_for_what_their_codes_say(catalogue):
    for case in catalogue:
        actions = manual_actions(case)
        if set(case.automation) <= {"AUTO", "NET"}:
            assert actions == set(), f"{case.id} is unattended but asks for {actions}"
            assert case.unattended
            continue
        assert not case.unattended
        for code, kinds in NEEDS.items():
            if code in case.automation:
                assert actions & kinds, f"{case.id} is {code} but has no {sorted(kinds)} step"
        for code, kinds in NEEDS.items():
            if actions & kinds:
                assert code in case.automation, f"{case.id} asks for {sorted(actions & kinds)} but is not {code}"


def test_offline_cases_cut_the_connection_themselves(catalogue):
    for case in catalogue:
        cuts = any(s.kind == "disconnect" for s in case.steps)
        assert cuts == (case.id in {"TC_036_CS", "TC_037_1_CS", "TC_037_2_CS", "TC_037_3_CS", "TC_038_CS",
                                    "TC_039_CS"}), case.id


def test_requirements_name_declarations_and_gate_the_right_cases(catalogue):
    by_id = {c.id: c for c in catalogue}
    plain = model.Declarations()
    for case in catalogue:
        for need in case.requires:
            assert model.requirement_problem(need) is None, (case.id, need)
    # the cases for chargers without a feature are ruled out for one that has it, and the other way round
    fixed = model.Declarations(fixed_cable=True)
    assert plain.satisfies(by_id["TC_017_2_CS"].requires[0]) and not fixed.satisfies("fixed_cable")
    bare = model.Declarations(reservation=False, local_auth_list=False)
    for case_id in ("TC_042_1_CS", "TC_043_1_CS", "TC_048_4_CS", "TC_050_4_CS"):
        assert any(plain.satisfies(n) for n in by_id[case_id].requires), case_id
        assert not any(bare.satisfies(n) for n in by_id[case_id].requires), case_id
    for case_id in ("TC_042_2_CS", "TC_043_CS", "TC_048_3_CS", "TC_052_CS"):
        assert any(bare.satisfies(n) for n in by_id[case_id].requires), case_id


def test_purposes_and_titles_are_our_own_sentences(catalogue):
    titles = [c.title for c in catalogue]
    assert len(set(titles)) == len(titles)
    for case in catalogue:
        assert case.purpose.strip() and case.title.strip(), case.id
        assert len(case.purpose) > 40, case.id


def test_reboot_and_firmware_cases_have_long_timeouts(catalogue):
    for case in catalogue:
        reboots = any(s.kind == "send" and s.action in ("Reset", "UpdateFirmware", "SignedUpdateFirmware")
                      for s in case.steps) or "PWR" in case.automation
        if reboots:
            assert case.timeout >= 600, case.id


def test_every_placeholder_has_a_value_for_a_declared_charger(catalogue):
    values = model.context(model.Declarations(firmware_url="http://files/fw.bin", upload_url="http://files/up",
                                              bad_firmware_url="http://files/bad.bin"))
    for case in catalogue:
        for name in model.placeholders([__import__("attrs").asdict(s, recurse=True) for s in case.steps]):
            stored = {s.as_ for s in case.steps if s.kind == "store"}
            assert name in values or name in stored, (case.id, name)


def test_a_list_where_a_text_belongs_is_refused_not_turned_into_text():
    with pytest.raises(model.CaseError, match="expected (a text|str)"):
        model.parse_case({"id": "TC_1", "title": "t", "profile": "Core",
                          "steps": [{"kind": "expect", "action": ["Heartbeat", "Authorize"]}]}, "core/TC_1.toml")
    case = model.parse_case({"id": "TC_1", "title": "t", "profile": "Core",
                             "steps": [{"kind": "absent", "action": ["Heartbeat", "Authorize"], "for": 1}]},
                            "core/TC_1.toml")
    assert case.steps[0].action == ["Heartbeat", "Authorize"]  # absent takes any of several actions
