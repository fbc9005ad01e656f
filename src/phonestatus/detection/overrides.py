"""The overrides file of the simulated network: numbers pinned to exact states.

CSV with a header row ``number,status,carrier,barred,ported_to``:

* ``number``: any form a user could type; it is parsed to 11 digits;
* ``status``: an API status (NORMAL, SHUTDOWN, POWER_OFF, NOT_EXIST, BUSY,
  SUSPECTED_POWER_OFF, DEFECT, UNKNOWN) or a network state name such as
  ``lost`` or ``never_activated``;
* ``carrier``: the segment owner, when it should differ from the segment table;
* ``barred``: ``sms`` or ``voice`` for a functional suspension of that channel;
* ``ported_to``: the carrier now serving the number.

Empty cells fall back to the defaults.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from phonestatus.detection.scenes import NetworkState
from phonestatus.numbers import Carrier, NumberParseError, PhoneStatus, parse_mobile

OVERRIDE_COLUMNS = ("number", "status", "carrier", "barred", "ported_to")

# The ``status`` column of the overrides file takes these API statuses too.
STATE_FOR_STATUS: dict[PhoneStatus, NetworkState] = {
    PhoneStatus.NORMAL: NetworkState.IN_SERVICE,
    PhoneStatus.SHUTDOWN: NetworkState.SUSPENDED,
    PhoneStatus.POWER_OFF: NetworkState.DETACHED,
    PhoneStatus.NOT_EXIST: NetworkState.NOT_ALLOCATED,
    PhoneStatus.BUSY: NetworkState.BUSY,
    PhoneStatus.SUSPECTED_POWER_OFF: NetworkState.PROBABLY_DETACHED,
    PhoneStatus.DEFECT: NetworkState.DEFECT,
    PhoneStatus.UNKNOWN: NetworkState.UNKNOWN,
}


class SimulatorConfigError(ValueError):
    """A simulator setting or the overrides file is invalid."""


@dataclass(frozen=True, slots=True)
class Override:
    """One row of the overrides file; None fields fall back to the hashed line."""

    number: str
    state: NetworkState
    basic_carrier: Carrier | None
    ported_to: Carrier | None


def _parse_carrier(value: str, column: str, line: int, path: Path) -> Carrier | None:
    code = value.strip().upper()
    if not code:
        return None
    if code not in Carrier.__members__:
        raise SimulatorConfigError(
            f"{path}:{line}: invalid {column} {value!r}; expected one of CMCC, CUCC, CTCC, CBN"
        )
    return Carrier(code)


def _parse_state(status: str, barred: str, line: int, path: Path) -> NetworkState:
    value = status.strip()
    channel = barred.strip().lower()
    if channel not in ("", "sms", "voice"):
        raise SimulatorConfigError(
            f"{path}:{line}: invalid barred {barred!r}; expected sms, voice or empty"
        )
    if channel:
        # A barred channel is a functional suspension of an otherwise live line.
        if value.upper() not in ("", "NORMAL", "SHUTDOWN", "IN_SERVICE"):
            raise SimulatorConfigError(
                f"{path}:{line}: barred={channel} needs status NORMAL, SHUTDOWN or empty, "
                f"got {status!r}"
            )
        return NetworkState.SMS_BARRED if channel == "sms" else NetworkState.VOICE_BARRED
    if value.upper() in PhoneStatus.__members__:
        return STATE_FOR_STATUS[PhoneStatus(value.upper())]
    if value.lower() in NetworkState._value2member_map_:
        return NetworkState(value.lower())
    raise SimulatorConfigError(
        f"{path}:{line}: invalid status {status!r}; expected an API status such as NORMAL "
        f"or a network state such as lost"
    )


def load_overrides(path: Path) -> dict[str, Override]:
    """Read the overrides CSV (header ``number,status,carrier,barred,ported_to``).

    Numbers are parsed like user input. Raises ``SimulatorConfigError``
    naming the file and line for anything malformed.
    """
    overrides: dict[str, Override] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in OVERRIDE_COLUMNS if name not in (reader.fieldnames or ())]
        if missing:
            raise SimulatorConfigError(f"{path}: missing columns {', '.join(missing)}")
        for row in reader:
            line = reader.line_num
            try:
                number = parse_mobile(row["number"] or "").digits
            except NumberParseError as exc:
                raise SimulatorConfigError(f"{path}:{line}: {exc}") from exc
            overrides[number] = Override(
                number=number,
                state=_parse_state(row["status"] or "", row["barred"] or "", line, path),
                basic_carrier=_parse_carrier(row["carrier"] or "", "carrier", line, path),
                ported_to=_parse_carrier(row["ported_to"] or "", "ported_to", line, path),
            )
    return overrides
