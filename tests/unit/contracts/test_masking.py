"""Masking of ID numbers, phones and names before anything is logged."""

from __future__ import annotations

import logging

import pytest

from contracts.masking import (
    MaskingFilter,
    mask_id,
    mask_name,
    mask_phone,
    mask_text,
    mask_value,
)

ID = "320102199005170017"
ID_X = "11010519491231002X"
PHONE = "13812345678"


def test_mask_id_keeps_area_and_last_four() -> None:
    assert mask_id(ID) == "320102********0017"
    assert mask_id("1234567890") == "**********"  # too short to show anything
    assert mask_id("") == ""


def test_mask_phone_and_name() -> None:
    assert mask_phone(PHONE) == "138****5678"
    assert mask_phone("12345") == "*****"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("A") == "A*"
    assert mask_name("") == ""


def test_mask_text_masks_ids_and_phones_in_free_text() -> None:
    text = f"职工{ID}(电话{PHONE})参保失败; 另一人 {ID_X}, tel:{PHONE[:3]}-x"
    masked = mask_text(text)
    assert ID not in masked and PHONE not in masked and ID_X not in masked
    assert "320102********0017" in masked
    assert "138****5678" in masked
    assert "110105********002X" in masked
    assert masked.startswith("职工") and masked.endswith("tel:138-x")


def test_mask_text_masks_a_lower_case_x_id() -> None:
    assert mask_text(ID_X.lower()) == "110105********002x"


@pytest.mark.parametrize("text", [
    "serial 12345678901234567890123 is not an id",  # longer digit runs are left alone
    "accept no A32010219900517001799",  # glued to letters/digits
    "amount 1381234567",  # ten digits: not a phone
    "order 2138123456789",  # phone inside a longer number
    "plain text",
])
def test_mask_text_leaves_other_numbers_alone(text: str) -> None:
    assert mask_text(text) == text


def test_mask_value_by_key() -> None:
    value = {
        "id_number": ID, "certno": ID, "phone": PHONE, "Mobile": PHONE, "name": "张三",
        "psn_name": "李四", "unit_name": "南京示例科技有限公司", "wage": 5000, "ok": True,
        "nested": {"xm": "王五", "note": f"call {PHONE}"},
        "people": [{"zjhm": ID}, f"id {ID}"],
        "phones": [PHONE, PHONE],
    }
    masked = mask_value(value)
    assert masked == {
        "id_number": "320102********0017", "certno": "320102********0017",
        "phone": "138****5678", "Mobile": "138****5678", "name": "张*", "psn_name": "李*",
        "unit_name": "南京示例科技有限公司", "wage": 5000, "ok": True,
        "nested": {"xm": "王*", "note": "call 138****5678"},
        "people": [{"zjhm": "320102********0017"}, "id 320102********0017"],
        "phones": ["138****5678", "138****5678"],
    }
    assert value["id_number"] == ID  # the input is not modified


def test_mask_value_masks_short_ids_by_key_and_leaves_scalars() -> None:
    assert mask_value("12345", "id_number") == "*****"
    assert mask_value(None, "id_number") is None
    assert mask_value(42) == 42


def _record(msg: str, args: tuple[object, ...] | None) -> logging.LogRecord:
    return logging.LogRecord("hub.test", logging.INFO, __file__, 1, msg, args, None)


def test_masking_filter_masks_the_rendered_message() -> None:
    record = _record("enroll %s phone %s failed", (ID, PHONE))
    assert MaskingFilter().filter(record) is True
    assert record.getMessage() == "enroll 320102********0017 phone 138****5678 failed"
    assert record.args is None


def test_masking_filter_masks_a_dict_arg() -> None:
    record = _record("payload %s", ({"id": ID},))
    MaskingFilter().filter(record)
    assert ID not in record.getMessage()


def test_masking_filter_leaves_clean_records_untouched() -> None:
    record = _record("attempt %d of %d", (2, 8))
    assert MaskingFilter().filter(record) is True
    assert record.msg == "attempt %d of %d"
    assert record.args == (2, 8)


def test_masking_filter_on_a_handler(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("hub.test.masking")
    caplog.handler.addFilter(MaskingFilter())
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("person %s", ID)
    finally:
        caplog.handler.removeFilter(caplog.handler.filters[-1])
    assert caplog.messages == ["person 320102********0017"]


ID15 = "320102900517001"


def test_an_old_15_digit_id_is_masked_in_free_text_but_other_numbers_are_not() -> None:
    assert mask_text(f"old id {ID15} here") == "old id 320102*****7001 here"
    assert mask_text("amount 123456789012345 fen") == "amount 123456789012345 fen"


@pytest.mark.parametrize(("key", "value", "masked"), [
    ("legal_rep", "王大明", "王**"), ("fddbr", "王大明", "王**"),
    ("payer_name", "李四", "李*"),
    ("household_address", "南京市玄武区北京东路41号", "南京市玄武区***"),
    ("hjdz", "南京市鼓楼区中山路1号", "南京市鼓楼区***"), ("residence_address", "秦淮区", "***"),
])
def test_people_and_addresses_are_masked_by_field_name(key: str, value: str,
                                                       masked: str) -> None:
    assert mask_value({key: value}) == {key: masked}


def test_an_id_list_is_masked_item_by_item() -> None:
    assert mask_value({"id_numbers": [ID, ID_X]}) == {
        "id_numbers": ["320102********0017", "110105********002X"]}


def test_a_traceback_is_masked_too(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("hub.test.masking.tb")
    caplog.handler.addFilter(MaskingFilter())
    try:
        with caplog.at_level(logging.ERROR, logger=logger.name):
            try:
                {}[ID]
            except KeyError:
                logger.exception("lookup failed")
    finally:
        caplog.handler.removeFilter(caplog.handler.filters[-1])
    assert ID not in caplog.text
    assert "320102********0017" in caplog.text
