"""The message catalog: both languages complete and consistent; money and readings formatting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.i18n import MESSAGES, money, period_label, placeholders, reading, t

KIOSK = Path(__file__).resolve().parents[2] / "kiosk"


def test_both_languages_have_the_same_keys() -> None:
    assert set(MESSAGES["ru"]) == set(MESSAGES["en"])


@pytest.mark.parametrize("key", sorted(MESSAGES["en"]))
def test_message_placeholders_match_across_languages(key: str) -> None:
    assert placeholders(MESSAGES["ru"][key]) == placeholders(MESSAGES["en"][key])


def test_every_key_used_in_the_code_exists() -> None:
    used: set[str] = set()
    pattern = re.compile(r"""\bt\(\s*[\w.]+,\s*["']([a-z_]+\.[a-z_.]+|[a-z_]+)["']""")
    for path in KIOSK.rglob("*.py"):
        used.update(pattern.findall(path.read_text(encoding="utf-8")))
    assert used, "the pattern found no uses"
    assert used <= set(MESSAGES["en"]), sorted(used - set(MESSAGES["en"]))


def test_unknown_language_falls_back_to_english() -> None:
    assert t("de", "back") == "Back"


@pytest.mark.parametrize(
    ("amount", "lang", "text"),
    [
        (0, "ru", "0,00 ₽"),
        (5, "en", "0.05 RUB"),
        (123_456_78, "ru", "123\u202f456,78 ₽"),
        (123_456_78, "en", "123,456.78 RUB"),
        (-152_300, "ru", "−1\u202f523,00 ₽"),
    ],
)
def test_money_formats_kopecks_exactly(amount: int, lang: str, text: str) -> None:
    assert money(amount, lang) == text


def test_money_refuses_floats() -> None:
    with pytest.raises(TypeError):
        money(1.5, "ru")  # type: ignore[arg-type]


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_money_round_trips_to_the_kopeck(amount: int) -> None:
    text = money(amount, "en").removesuffix(" RUB").replace(",", "")
    negative = text.startswith("−")
    whole, kop = text.lstrip("−").split(".")
    assert (int(whole) * 100 + int(kop)) * (-1 if negative else 1) == amount


def test_reading_and_period_labels() -> None:
    assert reading(123_456, "ru") == "123,456"
    assert reading(5, "en") == "0.005"
    assert period_label("2025-05", "ru") == "май 2025"
    assert period_label("2025-12", "en") == "December 2025"
    assert period_label("garbage", "en") == "garbage"
