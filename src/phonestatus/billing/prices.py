"""Unit prices per action, in li (0.001 CNY)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from phonestatus.billing.errors import InvalidAmount, InvalidPrice
from phonestatus.billing.money import parse_cny

if TYPE_CHECKING:
    from phonestatus.settings import Settings


def _price_list(standard_li: int, overrides_li: dict[str, int]) -> PriceList:
    """Rebuild a pickled ``PriceList``."""
    return PriceList(standard_li=standard_li, overrides_li=MappingProxyType(overrides_li))


# 0.1 CNY per billable query, the standard price of every status action.
STANDARD_UNIT_PRICE_LI = 100


@dataclass(frozen=True, slots=True)
class PriceList:
    """The standard unit price plus per-action overrides, all in li."""

    standard_li: int = STANDARD_UNIT_PRICE_LI
    overrides_li: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def unit_price_li(self, action: str) -> int:
        return self.overrides_li.get(action, self.standard_li)

    def __reduce__(self) -> tuple[object, tuple[int, dict[str, int]]]:
        # A mapping proxy cannot be pickled, and writer-process requests carry prices.
        return _price_list, (self.standard_li, dict(self.overrides_li))

    @classmethod
    def from_cny(cls, standard: str, overrides: Mapping[str, str] | None = None) -> PriceList:
        """Build a price list from CNY text such as ``"0.1"``; raises ``InvalidPrice``."""
        parsed: dict[str, int] = {}
        for action, text in (overrides or {}).items():
            parsed[action] = _parse_price(action, text)
        return cls(standard_li=_parse_price("*", standard), overrides_li=MappingProxyType(parsed))

    @classmethod
    def from_settings(cls, settings: Settings) -> PriceList:
        return cls.from_cny(settings.billing_unit_price_cny, settings.billing_action_prices_cny)


def _parse_price(action: str, text: str) -> int:
    try:
        return parse_cny(text)
    except InvalidAmount as exc:
        raise InvalidPrice(action, text) from exc
