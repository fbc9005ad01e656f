from __future__ import annotations

import pickle

from phonestatus.billing import PriceList


class TestPriceList:
    def test_pickle_round_trip(self) -> None:
        prices = PriceList.from_cny("0.12", {"PhoneNumberStatusForSms": "0.05"})

        restored = pickle.loads(pickle.dumps(prices))

        assert restored == prices
        assert restored.unit_price_li("PhoneNumberStatusForSms") == 50
        assert restored.unit_price_li("PhoneNumberStatusForReal") == 120
