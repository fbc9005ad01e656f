"""Billing: metering, packages, prepaid balance, bills, arrears, refunds and invoices.

Money is integer li (0.001 CNY) throughout; see ``money``. The gateway and
batch workers use ``record_query`` (or ``record_queries`` for a group of
queries in one transaction), ``account_block_reason`` and ``PriceList``.
"""

from phonestatus.billing.batching import record_queries
from phonestatus.billing.metering import (
    BlockReason,
    QueryUsage,
    account_block_reason,
    record_query,
)
from phonestatus.billing.models import QueryRecord
from phonestatus.billing.prices import PriceList

__all__ = [
    "BlockReason",
    "PriceList",
    "QueryRecord",
    "QueryUsage",
    "account_block_reason",
    "record_queries",
    "record_query",
]
