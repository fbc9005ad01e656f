import pytest

from phonestatus.numbers import RESPONSE_CODE_OK, Carrier, PhoneStatus, is_billable


class TestIsBillable:
    @pytest.mark.parametrize("status", [s for s in PhoneStatus if s is not PhoneStatus.UNKNOWN])
    def test_is_billable_ok_with_known_status(self, status: PhoneStatus) -> None:
        assert is_billable(RESPONSE_CODE_OK, status)

    def test_is_billable_unknown_free(self) -> None:
        assert not is_billable(RESPONSE_CODE_OK, PhoneStatus.UNKNOWN)

    def test_is_billable_no_result_free(self) -> None:
        assert not is_billable(RESPONSE_CODE_OK, None)

    @pytest.mark.parametrize("code", ["OperatorLimit", "isv.InvalidParameter", "ok", ""])
    def test_is_billable_failed_code_free(self, code: str) -> None:
        assert not is_billable(code, PhoneStatus.NORMAL)


class TestLabels:
    @pytest.mark.parametrize("status", list(PhoneStatus))
    def test_status_labels_present(self, status: PhoneStatus) -> None:
        assert status.label_zh
        assert status.label_en

    def test_carrier_labels(self) -> None:
        assert {c: c.label_zh for c in Carrier} == {
            Carrier.CMCC: "中国移动",
            Carrier.CUCC: "中国联通",
            Carrier.CTCC: "中国电信",
            Carrier.CBN: "中国广电",
        }
