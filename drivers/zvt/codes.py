"""ZVT code tables: result codes, intermediate status, terminal status, currencies.

ZVT ECR interface rev. 13, chapter 10 ("Error messages"), chapter 11
("Terminal status codes") and the intermediate status table of command 04 FF
(chapter 3.7). Texts are ours, in English and Russian; the kiosk shows the
Russian or English one, a technician sees both through the CLI.
"""

from __future__ import annotations

from typing import Final, Literal

Lang = Literal["en", "ru"]

RESULT_OK: Final = 0x00
RESULT_ABORT: Final = 0x6C  # abort via time-out or abort key
RESULT_SYSTEM_ERROR: Final = 0xFF

# Result codes (BMP 27, APDU 06 1E and the 84 xx negative acknowledgement).
# 0x01..0x63 are reserved for the network operator / authorisation system and
# are mapped by :func:`result_text` to one generic text.
RESULT_CODES: Final[dict[int, tuple[str, str]]] = {
    0x00: ("no error, approved", "нет ошибки, одобрено"),
    0x62: ("date/time incorrect", "неверные дата/время"),
    0x64: ("card not readable (LRC/parity error)", "карта не читается (ошибка чётности)"),
    0x65: ("card data not present", "нет данных карты"),
    0x66: ("processing error", "ошибка обработки"),
    0x67: (
        "function not permitted for ec and Maestro cards",
        "функция недоступна для карт Maestro",
    ),
    0x68: ("function not permitted for credit cards", "функция недоступна для кредитных карт"),
    0x6A: ("turnover file full", "журнал операций переполнен"),
    0x6B: (
        "function deactivated (PT not registered)",
        "функция отключена (терминал не зарегистрирован)",
    ),
    0x6C: ("aborted: time-out or abort key", "отменено: истекло время или нажата отмена"),
    0x6E: ("card in blocked list", "карта в стоп-листе"),
    0x6F: ("wrong currency", "неверная валюта"),
    0x71: ("credit not sufficient (chip card)", "недостаточно средств (чип)"),
    0x72: ("chip error", "ошибка чипа"),
    0x73: ("card data incorrect", "неверные данные карты"),
    0x77: ("end-of-day batch not possible", "закрытие смены невозможно"),
    0x78: ("card expired", "срок действия карты истёк"),
    0x79: ("card not yet valid", "карта ещё не действует"),
    0x7A: ("card unknown", "карта неизвестна"),
    0x7D: ("communication error", "ошибка связи"),
    0x83: ("function not possible", "функция невозможна"),
    0x85: ("key missing", "отсутствует ключ"),
    0x89: ("PIN pad defective", "неисправна ПИН-клавиатура"),
    0x9A: ("transfer protocol error", "ошибка протокола передачи"),
    0x9B: ("dial-up / communication fault", "сбой связи"),
    0x9C: ("please wait (terminal busy)", "подождите (терминал занят)"),
    0xA0: ("receiver not ready", "получатель не готов"),
    0xA1: ("remote station does not respond", "удалённая сторона не отвечает"),
    0xA3: ("no connection", "нет соединения"),
    0xA4: ("submission of Geldkarte not possible", "передача Geldkarte невозможна"),
    0xB1: ("memory full", "память переполнена"),
    0xB2: ("merchant journal full", "журнал продавца переполнен"),
    0xB4: ("already reversed", "операция уже отменена"),
    0xB5: ("reversal not possible", "отмена невозможна"),
    0xB7: ("pre-authorisation incorrect or amount wrong", "неверная преавторизация или сумма"),
    0xB8: ("error pre-authorisation", "ошибка преавторизации"),
    0xBF: ("voltage supply too low", "низкое напряжение питания"),
    0xC0: ("card locking mechanism defective", "неисправен механизм фиксации карты"),
    0xC1: ("merchant card locked", "карта продавца заблокирована"),
    0xC2: ("diagnosis required", "требуется диагностика"),
    0xC3: ("maximum amount exceeded", "превышена максимальная сумма"),
    0xC4: ("card profile invalid", "неверный профиль карт"),
    0xC5: ("payment method not supported", "способ оплаты не поддерживается"),
    0xC6: ("currency not applicable", "валюта не применима"),
    0xC8: ("amount too small", "сумма слишком мала"),
    0xC9: ("max. transaction amount too small", "максимальная сумма операции слишком мала"),
    0xCB: ("function only allowed in EURO", "функция доступна только в евро"),
    0xCC: ("printer not ready", "принтер не готов"),
    0xD2: ("function not permitted for service cards", "функция недоступна для сервисных карт"),
    0xDC: ("card inserted", "карта вставлена"),
    0xDD: ("error during card eject", "ошибка извлечения карты"),
    0xDE: ("error during card insertion", "ошибка приёма карты"),
    0xE0: ("remote maintenance activated", "включено удалённое обслуживание"),
    0xE2: ("card reader does not answer / defective", "картридер не отвечает или неисправен"),
    0xE3: ("shutter closed", "шторка закрыта"),
    0xE7: ("min. one goods group not found", "не найдена товарная группа"),
    0xE8: ("no goods groups table loaded", "таблица товарных групп не загружена"),
    0xE9: ("restriction code not permitted", "код ограничения не разрешён"),
    0xEA: ("card code not permitted", "код карты не разрешён"),
    0xEB: (
        "function not executable (PIN algorithm unknown)",
        "функция невыполнима (неизвестен алгоритм ПИН)",
    ),
    0xEC: ("PIN processing not possible", "обработка ПИН невозможна"),
    0xED: ("PIN pad defective", "неисправна ПИН-клавиатура"),
    0xF0: ("open end-of-day batch present", "есть незакрытая смена"),
    0xF1: ("offline error", "ошибка офлайн-операции"),
    0xF5: ("OPT error", "ошибка OPT"),
    0xF6: ("OPT data not available", "нет данных OPT"),
    0xFA: ("error transmitting offline transactions", "ошибка передачи офлайн-операций"),
    0xFB: ("turnover data set defective", "повреждены данные оборота"),
    0xFC: (
        "necessary device not present or defective",
        "необходимое устройство отсутствует или неисправно",
    ),
    0xFD: ("baud rate not supported", "скорость обмена не поддерживается"),
    0xFE: ("register unknown", "регистр неизвестен"),
    0xFF: ("system error", "системная ошибка"),
}

_ISSUER_RANGE_TEXT: Final = (
    "declined by the authorisation system",
    "отклонено системой авторизации",
)


def result_text(code: int, lang: Lang = "en") -> str:
    """Text for a ZVT result code (chapter 10); unknown codes get a generic text."""
    index = 0 if lang == "en" else 1
    if code in RESULT_CODES:
        return RESULT_CODES[code][index]
    if 0x01 <= code <= 0x63:
        return _ISSUER_RANGE_TEXT[index]
    return ("unknown error", "неизвестная ошибка")[index]


# Intermediate status codes (APDU 04 FF, first data byte).
INTERMEDIATE_STATUS: Final[dict[int, tuple[str, str]]] = {
    0x00: ("waiting for amount confirmation", "подтвердите сумму"),
    0x01: ("please watch the PIN pad: enter PIN", "введите ПИН-код на терминале"),
    0x02: ("please watch the PIN pad", "смотрите на ПИН-клавиатуру"),
    0x03: ("not accepted", "не принято"),
    0x04: ("processing: waiting for the bank", "обработка: ожидание ответа банка"),
    0x05: ("sending auto-reversal", "автоматическая отмена"),
    0x06: ("sending post-bookings", "отправка отложенных операций"),
    0x07: ("card not admitted", "карта не принимается"),
    0x08: ("card unknown / undefined", "карта неизвестна"),
    0x09: ("card expired", "срок действия карты истёк"),
    0x0A: ("insert or tap card", "вставьте или приложите карту"),
    0x0B: ("please remove card", "заберите карту"),
    0x0C: ("card not readable", "карта не читается"),
    0x0D: ("processing error", "ошибка обработки"),
    0x0E: ("please wait", "пожалуйста, подождите"),
    0x0F: ("automatic end-of-day batch", "автоматическое закрытие смены"),
    0x10: ("invalid card", "недействительная карта"),
    0x11: ("balance display", "показ баланса"),
    0x12: ("system malfunction", "системный сбой"),
    0x13: ("payment not possible", "оплата невозможна"),
    0x14: ("credit not sufficient", "недостаточно средств"),
    0x15: ("incorrect PIN", "неверный ПИН-код"),
    0x16: ("limit not sufficient", "превышен лимит"),
    0x17: ("please wait", "пожалуйста, подождите"),
    0x18: ("PIN try limit exceeded", "исчерпаны попытки ввода ПИН"),
    0x19: ("card data incorrect", "неверные данные карты"),
    0x1A: ("service mode", "сервисный режим"),
    0x1B: ("approved, please fill up", "одобрено, можно заправляться"),
    0x1C: ("approved", "одобрено"),
    0x1D: ("declined", "отклонено"),
    0x26: ("waiting for mobile number", "введите номер телефона"),
    0x27: ("waiting for mobile number repeat", "повторите номер телефона"),
    0xC7: ("waiting for mileage input", "введите пробег"),
    0xC8: ("waiting for cashier", "ожидание кассира"),
    0xC9: ("automatic diagnosis", "автоматическая диагностика"),
    0xCA: ("automatic initialisation", "автоматическая инициализация"),
    0xCB: ("merchant journal full", "журнал продавца переполнен"),
    0xCC: ("debit advice not possible, PIN required", "требуется ПИН-код"),
    0xD2: ("connecting", "установка соединения"),
    0xD3: ("connection made", "соединение установлено"),
    0xE0: ("waiting for application selection", "выберите приложение карты"),
    0xE1: ("waiting for language selection", "выберите язык"),
    0xF1: ("offline", "офлайн"),
    0xF2: ("online", "онлайн"),
    0xF3: ("offline transaction", "офлайн-операция"),
    0xFF: ("terminal status", "состояние терминала"),
}

# Codes 0x41..0x67 are 0x01..0x27 with "please remove card" added (bit 0x40).
_REMOVE_CARD_BIT: Final = 0x40
_REMOVE_CARD_TEXT: Final = ("please remove card", "заберите карту")

# The statuses the kiosk maps to its own screens.
STATUS_INSERT_CARD: Final = 0x0A
STATUS_ENTER_PIN: Final = 0x01
STATUS_PROCESSING: Final = 0x04
STATUS_PLEASE_WAIT: Final = 0x17
STATUS_REMOVE_CARD: Final = 0x0B


def intermediate_status_text(code: int, lang: Lang = "en") -> str:
    """Text for an intermediate status code (04 FF, chapter 3.7)."""
    index = 0 if lang == "en" else 1
    if code in INTERMEDIATE_STATUS:
        return INTERMEDIATE_STATUS[code][index]
    base = code & ~_REMOVE_CARD_BIT
    if 0x41 <= code <= 0x67 and base in INTERMEDIATE_STATUS:
        if base == STATUS_REMOVE_CARD:
            return _REMOVE_CARD_TEXT[index]
        return f"{INTERMEDIATE_STATUS[base][index]}; {_REMOVE_CARD_TEXT[index]}"
    return ("please wait", "пожалуйста, подождите")[index]


# Terminal status codes (Completion after Status Enquiry 05 01, chapter 11).
TERMINAL_STATUS: Final[dict[int, tuple[str, str]]] = {
    0x00: ("terminal ready", "терминал готов"),
    0x51: ("initialisation required", "требуется инициализация"),
    0x62: ("date/time incorrect", "неверные дата/время"),
    0x9C: ("please wait (e.g. software update running)", "подождите (идёт обновление ПО)"),
    0xB1: ("memory full", "память переполнена"),
    0xB2: ("merchant journal full", "журнал продавца переполнен"),
    0xBF: ("voltage supply too low", "низкое напряжение питания"),
    0xC0: ("card locking mechanism defective", "неисправен механизм фиксации карты"),
    0xC1: ("merchant card locked", "карта продавца заблокирована"),
    0xC2: ("diagnosis required", "требуется диагностика"),
    0xC4: ("card profile invalid", "неверный профиль карт"),
    0xCC: ("printer not ready", "принтер не готов"),
    0xDC: ("card inserted", "карта вставлена"),
    0xDF: ("out of order", "не работает"),
    0xE0: ("remote maintenance activated", "включено удалённое обслуживание"),
    0xE1: ("card not completely removed", "карта извлечена не полностью"),
    0xE2: ("card reader does not answer / defective", "картридер не отвечает или неисправен"),
    0xE3: ("shutter closed", "шторка закрыта"),
    0xF6: ("OPT data not available", "нет данных OPT"),
}


def terminal_status_text(code: int, lang: Lang = "en") -> str:
    """Text for a terminal status code (chapter 11)."""
    index = 0 if lang == "en" else 1
    if code in TERMINAL_STATUS:
        return TERMINAL_STATUS[code][index]
    return ("unknown terminal status", "неизвестное состояние терминала")[index]


# ZVT card type IDs (BMP 8A) that the public references agree on; anything else
# is shown by the card name (BMP 8B) the terminal sends.
CARD_TYPES: Final[dict[int, str]] = {
    0x02: "ec-card",
    0x05: "girocard",
    0x06: "Mastercard",
    0x0A: "VISA",
}

# ISO 4217 alphabetic → numeric codes we accept (BMP 49 carries the numeric code
# as 2 bytes BCD, e.g. 09 78 for EUR).
CURRENCIES: Final[dict[str, int]] = {
    "RUB": 643,
    "EUR": 978,
    "USD": 840,
    "KZT": 398,
    "BYN": 933,
    "AMD": 51,
    "UZS": 860,
    "KGS": 417,
    "CNY": 156,
}
CURRENCY_BY_NUMBER: Final[dict[int, str]] = {v: k for k, v in CURRENCIES.items()}
