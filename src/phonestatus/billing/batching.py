"""Metering many queries in one transaction with a few statements: ``record_queries``.

``record_query`` costs two to three statements per query. A caller that
commits queries in groups (the gateway's recorder, batch workers) can pass a
whole group here instead. Per group it runs one multi-row INSERT of the
records, one package claim per account (a claim takes as many units as the
account's billable queries need, package by package), and one multi-row
INSERT of the usage events. The rules are those of ``record_query``. Nothing
here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import BigInteger, Table, bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from phonestatus.billing.metering import PACKAGE_CLAIM_ATTEMPTS, QueryUsage, record_values
from phonestatus.billing.models import Package, QueryRecord, UsageEvent
from phonestatus.billing.prices import PriceList
from phonestatus.storage.db import UTCDateTime

# Rows per INSERT statement on PostgreSQL (one array parameter per column).
INSERT_CHUNK_ROWS = 500

# Take up to :wanted units from the usable package that expires first. The row
# lock (FOR UPDATE) makes `remaining` current before the decrement.
# When nothing was claimed, the last column is whether a usable package is left
# (in the statement's snapshot), so the common case of no package at all costs
# one round trip.
_CLAIM_POSTGRESQL = text(
    """
    WITH candidate AS (
        SELECT id, remaining FROM billing_packages
        WHERE account_id = :account_id AND remaining > 0 AND refunded_at IS NULL
          AND purchased_at <= :first_at AND expires_at > :last_at
        ORDER BY expires_at, id
        LIMIT 1
        FOR UPDATE
    )
    , claimed AS (
        UPDATE billing_packages
        SET remaining = billing_packages.remaining - LEAST(candidate.remaining, :wanted)
        FROM candidate
        WHERE billing_packages.id = candidate.id
        RETURNING billing_packages.id AS id, LEAST(candidate.remaining, :wanted) AS units
    )
    SELECT id, units, TRUE FROM claimed
    UNION ALL
    SELECT CAST(NULL AS VARCHAR), CAST(NULL AS BIGINT), EXISTS (
        SELECT 1 FROM billing_packages
        WHERE account_id = :account_id AND remaining > 0 AND refunded_at IS NULL
          AND purchased_at <= :first_at AND expires_at > :last_at
    )
    WHERE NOT EXISTS (SELECT 1 FROM claimed)
    """
).bindparams(
    bindparam("wanted", type_=BigInteger()),
    bindparam("first_at", type_=UTCDateTime()),
    bindparam("last_at", type_=UTCDateTime()),
)


async def record_queries(
    session: AsyncSession, usages: Sequence[QueryUsage], *, prices: PriceList
) -> list[QueryRecord | None]:
    """Record and charge many queries in the caller's transaction; never commits.

    Returns, in the order of ``usages``, each query's record. A request id that
    was recorded before, or appears twice in ``usages``, gets None and is not
    charged again. The records are not added to the session.
    """
    return await session.run_sync(record_queries_sync, usages, prices=prices)


def record_queries_sync(
    session: Session, usages: Sequence[QueryUsage], *, prices: PriceList
) -> list[QueryRecord | None]:
    """``record_queries`` for a synchronous session, such as one in a writer thread."""
    record_ids = meter_queries(session, usages, prices=prices)
    return [
        None if record_id is None else QueryRecord(id=record_id, **record_values(usage))
        for record_id, usage in zip(record_ids, usages, strict=True)
    ]


def meter_queries(
    session: Session, usages: Sequence[QueryUsage], *, prices: PriceList
) -> list[int | None]:
    """Record and charge like ``record_queries_sync``; return only the new record ids.

    Building ORM objects for the records cost about a quarter of the gateway
    recorder's time, and the recorder only needs to know which usages were new.
    """
    for usage in usages:
        if usage.occurred_at.tzinfo is None:
            raise ValueError(f"occurred_at must be aware UTC, got naive {usage.occurred_at!r}")

    on_sqlite = session.get_bind().dialect.name == "sqlite"
    times = _SqliteTimes()
    if on_sqlite:
        results = _insert_records_sqlite(session, usages, times)
    else:
        results = _new_record_ids(usages, _insert_records_postgresql(session, usages))
    billable: dict[str, list[tuple[int, QueryUsage]]] = {}
    for usage, record_id in zip(usages, results, strict=True):
        if record_id is not None and usage.billable:
            billable.setdefault(usage.account_id, []).append((record_id, usage))

    unit_prices: dict[str, int] = {}

    def unit_price(action: str) -> int:
        price = unit_prices.get(action)
        if price is None:
            price = unit_prices[action] = prices.unit_price_li(action)
        return price

    # Rows in the order of _EVENT_VALUE_COLUMNS.
    events: list[tuple[Any, ...]] = []
    for account_id, charged in billable.items():
        moments = [usage.occurred_at for _, usage in charged]
        claims = _claim_units(session, account_id, len(charged), min(moments), max(moments))
        package_ids: list[str | None] = [
            package_id for package_id, units in claims for _ in range(units)
        ]
        package_ids += [None] * (len(charged) - len(package_ids))
        for (record_id, usage), package_id in zip(charged, package_ids, strict=True):
            occurred_at = times(usage.occurred_at) if on_sqlite else usage.occurred_at
            price = 0 if package_id else unit_price(usage.action)
            events.append((record_id, account_id, usage.action, package_id, price, occurred_at))
    if on_sqlite:
        if events:
            _insert_rows_sqlite(
                session.connection(), UsageEvent.__tablename__, _EVENT_VALUE_COLUMNS, events
            )
    else:
        _insert_events_postgresql(session, events)
    return results


# On PostgreSQL a group is one INSERT ... SELECT FROM unnest(...) per table: one
# array parameter per column, so the statement and its round trip stay the
# same whatever the group size, and the per-row work is building the arrays.
def _unnest_insert(table: Table, columns: Sequence[str], suffix: str = "") -> Any:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    arrays = ", ".join(
        f"CAST(:{name} AS {table.c[name].type.compile(dialect=dialect)}[])" for name in columns
    )
    statement = text(
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays}){suffix}"
    )
    return statement.bindparams(
        *(bindparam(name, type_=postgresql.ARRAY(table.c[name].type)) for name in columns)
    )


_RECORD_TABLE = cast(Table, QueryRecord.__table__)
_EVENT_TABLE = cast(Table, UsageEvent.__table__)
_RECORD_VALUE_COLUMNS = tuple(
    column.name for column in _RECORD_TABLE.columns if column.name != "id"
)
_EVENT_VALUE_COLUMNS = (
    "query_record_id",
    "account_id",
    "action",
    "package_id",
    "unit_price_li",
    "occurred_at",
)
_INSERT_RECORDS_POSTGRESQL = _unnest_insert(
    _RECORD_TABLE,
    _RECORD_VALUE_COLUMNS,
    " ON CONFLICT (request_id) DO NOTHING RETURNING id, request_id",
)
_INSERT_EVENTS_POSTGRESQL = _unnest_insert(_EVENT_TABLE, _EVENT_VALUE_COLUMNS)


def _new_record_ids(usages: Sequence[QueryUsage], inserted: dict[str, int]) -> list[int | None]:
    """Align inserted request ids with ``usages``: None where a usage's request id is not new.

    A request id that appears twice in ``usages`` gets its record on the first only.
    """
    results: list[int | None] = []
    seen: set[str] = set()
    for usage in usages:
        record_id = inserted.get(usage.request_id)
        if record_id is None or usage.request_id in seen:
            results.append(None)
            continue
        seen.add(usage.request_id)
        results.append(record_id)
    return results


def _columns(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in names}


def _insert_records_postgresql(session: Session, usages: Sequence[QueryUsage]) -> dict[str, int]:
    """Insert the records, skipping known request ids; return request id -> new record id."""
    rows = [record_values(usage) for usage in usages]
    inserted: dict[str, int] = {}
    for start in range(0, len(rows), INSERT_CHUNK_ROWS):
        chunk = rows[start : start + INSERT_CHUNK_ROWS]
        result = session.execute(_INSERT_RECORDS_POSTGRESQL, _columns(chunk, _RECORD_VALUE_COLUMNS))
        for record_id, request_id in result.all():
            inserted[request_id] = int(record_id)
    return inserted


def _insert_events_postgresql(session: Session, events: list[tuple[Any, ...]]) -> None:
    for start in range(0, len(events), INSERT_CHUNK_ROWS):
        chunk = events[start : start + INSERT_CHUNK_ROWS]
        columns = {name: [row[i] for row in chunk] for i, name in enumerate(_EVENT_VALUE_COLUMNS)}
        session.execute(_INSERT_EVENTS_POSTGRESQL, columns)


# On SQLite the rows go to the driver as multi-row INSERTs of plain SQL built
# from the tables. Per row, SQLAlchemy's insertmanyvalues cost about 25 µs of
# Python (bind processing, RETURNING rows), and both the gateway's recorder and
# batch workers insert every query here. 12 columns x 500 rows per statement
# stays far below SQLite's limit of 32,766 bound parameters.
SQLITE_ROWS_PER_INSERT = 500


@lru_cache(maxsize=64)
def _sqlite_insert_sql(table: str, columns: tuple[str, ...], rows: int, suffix: str) -> str:
    placeholders = "(" + ", ".join("?" for _ in columns) + ")"
    values = ", ".join(placeholders for _ in range(rows))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}{suffix}"


def _insert_rows_sqlite(
    connection: Connection,
    table: str,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    suffix: str = "",
) -> int:
    """Insert ``rows`` with one multi-row INSERT per ``SQLITE_ROWS_PER_INSERT``; return rowcount.

    One statement per group, not the driver's executemany: executemany gives
    up the interpreter lock around every row and then waits to get it back
    from the busy event loop thread, once per row.
    """
    added = 0
    for start in range(0, len(rows), SQLITE_ROWS_PER_INSERT):
        chunk = rows[start : start + SQLITE_ROWS_PER_INSERT]
        sql = _sqlite_insert_sql(table, columns, len(chunk), suffix)
        parameters = tuple(value for row in chunk for value in row)
        added += connection.exec_driver_sql(sql, parameters).rowcount
    return added


# The dialect's own processor, so times are stored exactly as the ORM stores them
# (the plain type's processor would leave the format to the sqlite3 module).
_SQLITE_DIALECT = sqlite.dialect()
_SQLITE_TIME = UTCDateTime().dialect_impl(_SQLITE_DIALECT).bind_processor(_SQLITE_DIALECT)


class _SqliteTimes:
    """SQLite's stored text for each time, converted once per group.

    A group's usages mostly share a few times (a batch chunk has one), and the
    conversion costs microseconds per value.
    """

    def __init__(self) -> None:
        self._texts: dict[datetime, Any] = {}

    def __call__(self, value: datetime) -> Any:
        text = self._texts.get(value)
        if text is None:
            text = _SQLITE_TIME(value) if _SQLITE_TIME is not None else value
            self._texts[value] = text
        return text


_RECORD_VALUES = attrgetter(*_RECORD_VALUE_COLUMNS)
_RECORD_TIME_INDEX = _RECORD_VALUE_COLUMNS.index("occurred_at")


def _insert_records_sqlite(
    session: Session, usages: Sequence[QueryUsage], times: _SqliteTimes
) -> list[int | None]:
    """Insert the records, skipping known request ids; return ids aligned with ``usages``.

    The INSERT comes first, so the transaction becomes the writer before it
    reads (a read first could not be upgraded once another process wrote).
    While it is the writer no other connection inserts, so the rows it added
    are exactly the newest ``rowcount`` ids, given in the order of the
    VALUES rows. When every row was added, as for every batch chunk, that
    order is the order of ``usages`` and nothing is read back.
    """
    connection = session.connection()
    rows: list[tuple[Any, ...]] = []
    for usage in usages:
        row = list(_RECORD_VALUES(usage))
        row[_RECORD_TIME_INDEX] = times(usage.occurred_at)
        rows.append(tuple(row))
    added = _insert_rows_sqlite(
        connection,
        QueryRecord.__tablename__,
        _RECORD_VALUE_COLUMNS,
        rows,
        " ON CONFLICT (request_id) DO NOTHING",
    )
    if added <= 0:
        return [None] * len(usages)
    table = QueryRecord.__tablename__
    if added == len(usages):
        last_id = int(connection.exec_driver_sql(f"SELECT MAX(id) FROM {table}").scalar_one())
        return list(range(last_id - added + 1, last_id + 1))
    result = connection.exec_driver_sql(
        f"SELECT id, request_id FROM {table} WHERE id > (SELECT MAX(id) FROM {table}) - ?",
        (added,),
    )
    return _new_record_ids(usages, {request_id: int(record_id) for record_id, request_id in result})


def _claim_units(
    session: Session, account_id: str, wanted: int, first_at: datetime, last_at: datetime
) -> list[tuple[str, int]]:
    """Take up to ``wanted`` units from usable packages, first-expiring first.

    A package counts as usable for the whole group only if it is usable at the
    group's first and last moments. Returns (package id, units) pairs.
    """
    claims: list[tuple[str, int]] = []
    is_postgresql = session.get_bind().dialect.name == "postgresql"
    lost_races = 0
    while wanted > 0:
        row: tuple[Any, ...] | None
        if is_postgresql:
            package_id, claimed_units, usable_left = session.execute(
                _CLAIM_POSTGRESQL,
                {
                    "account_id": account_id,
                    "wanted": wanted,
                    "first_at": first_at,
                    "last_at": last_at,
                },
            ).one()
            if package_id is None:
                # A package locked and emptied by another transaction while this
                # one waited yields no claim; look again if any is left.
                if not usable_left or lost_races >= PACKAGE_CLAIM_ATTEMPTS:
                    break
                lost_races += 1
                continue
            row = (package_id, claimed_units)
        else:
            row = _claim_sqlite(session, account_id, wanted, first_at, last_at)
        if row is None:
            break
        package_id, units = str(row[0]), int(row[1])
        claims.append((package_id, units))
        wanted -= units
    return claims


# Built once: building the ORM query per group cost about a sixth of a
# SQLite writer's time, and most groups find no package at all.
_FIRST_USABLE_PACKAGE = (
    select(Package.id, Package.remaining)
    .where(
        Package.account_id == bindparam("account_id"),
        Package.remaining > 0,
        Package.refunded_at.is_(None),
        Package.purchased_at <= bindparam("first_at", type_=UTCDateTime()),
        Package.expires_at > bindparam("last_at", type_=UTCDateTime()),
    )
    .order_by(Package.expires_at, Package.id)
    .limit(1)
)


def _claim_sqlite(
    session: Session, account_id: str, wanted: int, first_at: datetime, last_at: datetime
) -> tuple[str, int] | None:
    # SQLite runs one writer at a time, and the caller's transaction already
    # wrote the records, so nothing changes between this SELECT and the UPDATE.
    candidate = session.execute(
        _FIRST_USABLE_PACKAGE,
        {"account_id": account_id, "first_at": first_at, "last_at": last_at},
    ).one_or_none()
    if candidate is None:
        return None
    units = min(int(candidate.remaining), wanted)
    claimed = session.scalar(
        update(Package)
        .where(Package.id == candidate.id, Package.remaining >= units)
        .values(remaining=Package.remaining - units)
        .returning(Package.id)
        .execution_options(synchronize_session=False)
    )
    return (str(candidate.id), units) if claimed is not None else None
