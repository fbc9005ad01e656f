"""The scene table, cell by cell, and the invariants every cell must keep."""

from __future__ import annotations

from pathlib import Path

import pytest

from phonestatus.detection.scenes import (
    SCENE_VALUES,
    STATUS_SCENES,
    TABLE_SCENES,
    NetworkState,
    Scene,
    cell,
    read_state,
    state_for,
)
from phonestatus.numbers import Carrier, PhoneStatus

# Expected readings, written out independently of the module's table.
# Columns: REAL, SMS, VOICE, ACCOUNT, PUBLIC, LEGACY ("-" = no value), EMPTY.
EXPECTED_GENERAL = {
    "in_service": "NORMAL NORMAL NORMAL NORMAL NORMAL NORMAL NORMAL",
    "busy": "BUSY NORMAL NORMAL NORMAL BUSY NORMAL NORMAL",
    "detached": "POWER_OFF POWER_OFF POWER_OFF POWER_OFF POWER_OFF NORMAL NORMAL",
    "probably_detached": "SUSPECTED_POWER_OFF POWER_OFF SUSPECTED_POWER_OFF POWER_OFF SUSPECTED_POWER_OFF NORMAL NORMAL",
    "suspended": "SHUTDOWN SHUTDOWN SHUTDOWN SHUTDOWN SHUTDOWN SHUTDOWN SUSPECT_EMPTY",
    "lost": "SHUTDOWN SHUTDOWN SHUTDOWN SHUTDOWN SHUTDOWN SHUTDOWN NORMAL",
    "sms_barred": "NORMAL SHUTDOWN NORMAL NORMAL NORMAL NORMAL NORMAL",
    "voice_barred": "NORMAL NORMAL SHUTDOWN NORMAL NORMAL NORMAL NORMAL",
    "never_activated": "POWER_OFF POWER_OFF POWER_OFF POWER_OFF POWER_OFF NOT_EXIST SUSPECT_EMPTY",
    "not_allocated": "NOT_EXIST NOT_EXIST NOT_EXIST NOT_EXIST NOT_EXIST NOT_EXIST EMPTY",
    "unknown": "UNKNOWN UNKNOWN UNKNOWN UNKNOWN UNKNOWN - UNKNOWN",
    "defect": "DEFECT DEFECT DEFECT DEFECT UNKNOWN - SUSPECT_EMPTY",
}
EXPECTED_TELECOM = {
    **EXPECTED_GENERAL,
    "busy": "NORMAL NORMAL NORMAL NORMAL NORMAL NORMAL NORMAL",
    "detached": "NORMAL NORMAL NORMAL NORMAL NORMAL NORMAL NORMAL",
    "probably_detached": "NORMAL NORMAL NORMAL NORMAL NORMAL NORMAL NORMAL",
    "never_activated": "NOT_EXIST NOT_EXIST NOT_EXIST NOT_EXIST NOT_EXIST NOT_EXIST SUSPECT_EMPTY",
}


def _cells(expected: dict[str, str], carriers: tuple[Carrier, ...]) -> list[object]:
    cases = []
    for state, row in expected.items():
        for scene, value in zip(TABLE_SCENES, row.split(), strict=True):
            for carrier in carriers:
                cases.append(
                    pytest.param(
                        NetworkState(state),
                        scene,
                        carrier,
                        None if value == "-" else value,
                        id=f"{state}-{scene}-{carrier}",
                    )
                )
    return cases


GENERAL_CELLS = _cells(EXPECTED_GENERAL, (Carrier.CMCC, Carrier.CUCC, Carrier.CBN))
TELECOM_CELLS = _cells(EXPECTED_TELECOM, (Carrier.CTCC,))


class TestReadState:
    @pytest.mark.parametrize(("state", "scene", "carrier", "expected"), GENERAL_CELLS)
    def test_read_state_general_cell(
        self, state: NetworkState, scene: Scene, carrier: Carrier, expected: str | None
    ) -> None:
        assert read_state(state, scene, carrier).scene_status == expected

    @pytest.mark.parametrize(("state", "scene", "carrier", "expected"), TELECOM_CELLS)
    def test_read_state_telecom_cell(
        self, state: NetworkState, scene: Scene, carrier: Carrier, expected: str | None
    ) -> None:
        assert read_state(state, scene, carrier).scene_status == expected

    @pytest.mark.parametrize("state", list(NetworkState))
    @pytest.mark.parametrize("scene", TABLE_SCENES)
    @pytest.mark.parametrize("carrier", [*Carrier, None])
    def test_read_state_stays_in_documented_set(
        self, state: NetworkState, scene: Scene, carrier: Carrier | None
    ) -> None:
        value = read_state(state, scene, carrier).scene_status
        if value is not None:
            assert value in SCENE_VALUES[scene]

    @pytest.mark.parametrize("state", list(NetworkState))
    @pytest.mark.parametrize("scene", STATUS_SCENES)
    def test_read_state_telecom_withholds_reachability(
        self, state: NetworkState, scene: Scene
    ) -> None:
        status = read_state(state, scene, Carrier.CTCC).status
        assert status not in {
            PhoneStatus.BUSY,
            PhoneStatus.POWER_OFF,
            PhoneStatus.SUSPECTED_POWER_OFF,
        }

    @pytest.mark.parametrize("scene", STATUS_SCENES)
    def test_read_state_status_matches_wire_value(self, scene: Scene) -> None:
        answer = read_state(NetworkState.BUSY, scene, Carrier.CMCC)
        assert answer.status is not None
        assert answer.status.value == answer.scene_status

    def test_read_state_none_reads_unknown(self) -> None:
        answer = read_state(None, Scene.REAL, Carrier.CMCC)
        assert answer.status is PhoneStatus.UNKNOWN

    def test_read_state_legacy_without_value(self) -> None:
        answer = read_state(NetworkState.DEFECT, Scene.LEGACY, Carrier.CMCC)
        assert answer.scene_status is None
        assert answer.status is PhoneStatus.UNKNOWN

    def test_read_state_empty_carries_real_status(self) -> None:
        answer = read_state(NetworkState.NOT_ALLOCATED, Scene.EMPTY, Carrier.CMCC)
        assert answer.scene_status == "EMPTY"
        assert answer.status is PhoneStatus.NOT_EXIST

    def test_read_state_virtual_has_no_wire_status(self) -> None:
        answer = read_state(NetworkState.DETACHED, Scene.VIRTUAL, Carrier.CUCC)
        assert answer.scene_status is None
        assert answer.status is PhoneStatus.POWER_OFF

    def test_read_state_attribute_has_no_status(self) -> None:
        answer = read_state(NetworkState.IN_SERVICE, Scene.ATTRIBUTE, Carrier.CMCC)
        assert answer.status is None
        assert answer.scene_status is None


class TestStateFor:
    @pytest.mark.parametrize("scene", TABLE_SCENES)
    def test_state_for_round_trips_every_value(self, scene: Scene) -> None:
        for value in SCENE_VALUES[scene]:
            state = state_for(scene, value)
            assert state is not None, value
            assert read_state(state, scene, Carrier.CMCC).scene_status == value

    def test_state_for_sms_shutdown_is_suspension(self) -> None:
        assert state_for(Scene.SMS, "SHUTDOWN") is NetworkState.SUSPENDED

    def test_state_for_foreign_value(self) -> None:
        assert state_for(Scene.SMS, "BUSY") is None


DOCS = Path(__file__).resolve().parents[2] / "docs" / "detection.md"


def _markdown_table() -> str:
    lines = [
        "| network state | " + " | ".join(scene.name for scene in TABLE_SCENES) + " |",
        "|---" * (len(TABLE_SCENES) + 1) + "|",
    ]
    for state in NetworkState:
        cells = []
        for scene in TABLE_SCENES:
            general = cell(state, scene, Carrier.CMCC) or "—"
            telecom = cell(state, scene, Carrier.CTCC) or "—"
            cells.append(general if general == telecom else f"{general} (CTCC: {telecom})")
        lines.append(f"| `{state.value}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


class TestDocumentation:
    def test_docs_show_current_table(self) -> None:
        assert _markdown_table() in DOCS.read_text(encoding="utf-8")
