"""The kiosk's message catalog: every text a resident or technician sees, in Russian and English.

Theory of operation: screens never hold literal user text; they ask
:func:`t` for a key in the session's language. Both languages have exactly the
same keys and the same ``{placeholders}`` (checked by the tests), so switching
language on the welcome screen can never leave a hole. Texts that arrive from
devices (the payment terminal's decline reason, a card reader's hint) are data,
passed in as placeholder values.

Money on screen is :func:`money`: ``1 234,56 ₽`` in Russian, ``1,234.56 RUB``
in English, from ``int`` kopecks (never a float).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Final, Literal

__all__ = ["LANGUAGES", "MESSAGES", "Lang", "money", "period_label", "reading", "t"]

Lang = Literal["ru", "en"]
LANGUAGES: Final[tuple[Lang, ...]] = ("ru", "en")

MESSAGES: Final[Mapping[Lang, Mapping[str, str]]] = {
    "ru": {
        # common
        "back": "Назад",
        "next": "Далее",
        "cancel": "Отмена",
        "ok": "OK",
        "done": "Готово",
        "retry": "Повторить",
        "clear": "Стереть",
        "idle": "Возврат в начало через {seconds} с",
        "lang_button": "English",
        "currency": "₽",
        # welcome
        "welcome.title": "Оплата коммунальных услуг",
        "welcome.subtitle": "Добро пожаловать!",
        "welcome.how": "Приложите карту жителя, отсканируйте QR-код квитанции или введите номер "
        "лицевого счёта",
        "welcome.number": "Номер лицевого счёта",
        "welcome.find": "Найти",
        "welcome.looking": "Ищем лицевой счёт…",
        "welcome.unknown": "Лицевой счёт не найден. Проверьте номер и попробуйте ещё раз.",
        "welcome.unavailable": "Данные о счетах сейчас недоступны. Обратитесь к администратору.",
        "welcome.demo_cards": "Демо: F5, F6 — приложить карту; F7 — QR квитанции",
        "welcome.paused": "Оплата временно недоступна: проверяем предыдущий платёж.",
        # services
        "services.title": "Услуги по счёту {account}",
        "services.holder": "{holder}, {address}",
        "services.open": "К оплате",
        "services.paid": "Оплачено",
        "services.col_service": "Услуга",
        "services.col_provider": "Поставщик",
        "services.col_period": "Период",
        "services.col_due": "Сумма",
        "services.owed": "долг",
        "services.overpaid": "переплата {amount}",
        "services.nothing_due": "оплачено",
        "services.paid_here": "оплачено здесь {amount}",
        "services.instalments": "Рассрочка: {service}",
        "services.instalment_row": "до {date} — {amount}",
        "services.none_open": "Задолженности нет. Спасибо!",
        "services.none_paid": "Нет оплаченных услуг",
        "services.recent": "Платежи в этом терминале",
        "services.pay": "Оплатить",
        "services.meters": "Показания счётчиков",
        "services.statement": "Выписка",
        "services.total_due": "Всего к оплате: {amount}",
        # amounts
        "amounts.title": "Сумма оплаты",
        "amounts.hint": "Отметьте услуги и при необходимости измените сумму",
        "amounts.edit": "Изменить",
        "amounts.total": "Итого: {amount}",
        "amounts.from_bill": "Сумма из квитанции: {amount}",
        "amounts.nothing": "Выберите хотя бы одну услугу",
        "amounts.keypad_title": "{service}: сумма, ₽",
        "amounts.debt": "Долг {amount}",
        "amounts.next_instalment": "Платёж по рассрочке до {date}: {amount}",
        "amounts.bad_amount": "Неверная сумма",
        # surcharge
        "surcharge.title": "Комиссия",
        "surcharge.intro": "За этот платёж взимается комиссия:",
        "surcharge.row": "{service}: {amount}",
        "surcharge.provider_pays": "{service}: комиссию {amount} оплачивает поставщик",
        "surcharge.total": "Комиссия всего: {amount}",
        "surcharge.accept": "Принять и продолжить",
        "surcharge.decline": "Отказаться",
        "surcharge.declinable": "от этой комиссии можно отказаться",
        "surcharge.declined_cancel": "Вы отказались от комиссии — платёж отменён.",
        # confirm
        "confirm.title": "Проверьте платёж",
        "confirm.account": "Лицевой счёт {account}",
        "confirm.fee": "Комиссия",
        "confirm.total": "К оплате картой: {amount}",
        "confirm.pay": "Оплатить картой",
        # payment
        "payment.title": "Оплата картой",
        "payment.amount": "Сумма: {amount}",
        "payment.starting": "Подключаемся к терминалу…",
        "payment.insert_card": "Приложите или вставьте карту",
        "payment.enter_pin": "Введите ПИН-код на терминале",
        "payment.processing": "Обработка платежа…",
        "payment.remove_card": "Заберите карту",
        "payment.wait": "Пожалуйста, подождите…",
        "payment.cancelling": "Отменяем…",
        "payment.checking": "Проверяем результат платежа в терминале…",
        "payment.declined": "Платёж отклонён: {reason}",
        "payment.cancelled": "Платёж отменён. Деньги не списаны.",
        "payment.failed": "Платёж не прошёл: {reason}. Деньги не списаны.",
        "payment.busy": "Терминал занят. Попробуйте ещё раз через минуту.",
        "payment.terminal_down": "Терминал оплаты недоступен. Деньги не списаны.",
        "payment.offline_limit": "Сейчас терминал не может принять этот платёж: {reason}. "
        "Деньги не списаны. Попробуйте позже.",
        "payment.unknown": "Не удалось подтвердить платёж. Не платите повторно — администратор "
        "проверит его. Номер платежа: {reference}",
        "payment.reversed": "Платёж отменён, деньги будут возвращены на карту.",
        "payment.journal_down": "Платёж сейчас невозможен: ошибка хранилища. Деньги не списаны.",
        "payment.starting_up": "Терминал готовится к работе. Попробуйте через минуту.",
        "limit.payment_amount": "сумма больше допустимой без связи с банком",
        "limit.amount_total": "достигнут лимит платежей без связи",
        "limit.payments_count": "достигнут лимит числа платежей без связи",
        "limit.age": "нет связи с центром слишком долго",
        # receipt
        "receipt.title": "Платёж выполнен",
        "receipt.thanks": "Спасибо! Заберите чек.",
        "receipt.paper_out": "В принтере закончилась бумага. Платёж выполнен — чек на экране, "
        "администратор уведомлён.",
        "receipt.printer_fault": "Чек не напечатан ({reason}). Платёж выполнен — чек на экране, "
        "администратор уведомлён.",
        "receipt.printing": "Печатаем чек…",
        "receipt.finish": "Завершить",
        # meters
        "meters.title": "Показания счётчиков",
        "meters.none": "По этому счёту нет счётчиков",
        "meters.row": "{service}, счётчик № {meter}",
        "meters.previous": "Предыдущее: {value} {unit} ({date})",
        "meters.enter": "Новое показание, {unit}",
        "meters.submit": "Передать",
        "meters.saved": "Показание {value} {unit} принято. Расход: {consumption} {unit}.",
        "meters.too_low": "Показание меньше предыдущего ({previous}). Проверьте цифры.",
        "meters.too_high": "Расход {consumption} {unit} слишком велик. Проверьте цифры.",
        "meters.bad": "Введите показание цифрами, до трёх знаков после запятой",
        "meters.history": "История показаний",
        "meters.col_date": "Дата",
        "meters.col_value": "Показание",
        "meters.col_consumption": "Расход",
        "meters.chart": "Расход по месяцам",
        "meters.no_history": "Показаний ещё нет",
        # statement
        "statement.title": "Выписка по счёту {account}",
        "statement.period": "Период: {start} — {end}",
        "statement.months": "{n} мес.",
        "statement.col_date": "Дата",
        "statement.col_what": "Операция",
        "statement.col_amount": "Сумма",
        "statement.charges": "Начислено и к оплате",
        "statement.payments": "Платежи в этом терминале",
        "statement.no_payments": "Платежей за период нет",
        "statement.print": "Печать",
        "statement.printed": "Выписка напечатана",
        "statement.print_failed": "Не удалось напечатать: {reason}",
        "statement.payment_row": "Оплата картой, платёж {reference}",
        # staff line and service mode
        "staff.online": "в сети",
        "staff.offline": "нет связи",
        "staff.stored": "сохранено платежей: {count}",
        "staff.alarm": "⚠ нужен администратор",
        "staff.starting": "запуск…",
        "pin.title": "Сервисный режим",
        "pin.enter": "Введите ПИН-код техника",
        "pin.wrong": "Неверный ПИН-код. Осталось попыток: {left}",
        "pin.locked": "Ввод ПИН-кода заблокирован на {seconds} с",
        "pin.disabled": "Сервисный режим не настроен",
        "service.title": "Сервисный режим",
        "service.devices": "Устройства",
        "service.terminal": "Терминал оплаты: {state}",
        "service.printer": "Принтер чеков: {state}",
        "service.card_reader": "Считыватель карт: {state}",
        "service.scanner": "Сканер QR: {state}",
        "service.journal": "Журнал",
        "service.queue": "Не отправлено в центр: {entries} записей, старейшая {age}",
        "service.stored": "Сохранено платежей без подтверждения: {count} на {amount}",
        "service.unknown": "Платежей с неизвестным результатом: {count}",
        "service.catalog": "Каталог: версия {version}, счетов {accounts}, возраст {age}{stale}",
        "service.stale": " — УСТАРЕЛ",
        "service.sync": "Синхронизация: подтверждено по № {acked}, {ago}; "
        "каталог получен {applied}",
        "service.central": "Центр: {state}",
        "service.alarms": "Тревоги: {alarms}",
        "service.no_alarms": "нет",
        "service.test_receipt": "Тестовый чек",
        "service.end_of_day": "Закрытие дня",
        "service.reprint": "Повторить последний чек",
        "service.resolve": "Проверить платежи",
        "service.clear_alarms": "Сбросить тревоги",
        "service.exit": "Выход",
        "service.done": "Выполнено: {what}",
        "service.failed": "Ошибка: {what}: {reason}",
        "service.eod_result": "Закрытие дня: {result}, итого {amount}",
        "service.never": "никогда",
        "service.none": "нет",
        "state.ok": "готов",
        "state.absent": "не подключён",
        "state.fault": "неисправность: {reason}",
        "state.paper_out": "нет бумаги",
        "state.paper_low": "бумага заканчивается",
        "state.unknown": "неизвестно",
        "age.seconds": "{n} с",
        "age.minutes": "{n} мин",
        "age.hours": "{n} ч",
        "age.days": "{n} дн",
        "age.ago": "{age} назад",
        "alarm.paper_out": "нет бумаги в принтере",
        "alarm.printer_fault": "неисправен принтер",
        "alarm.payment_unknown": "платёж с неизвестным результатом",
        "alarm.recovered": "платёж восстановлен после сбоя, чек не выдан",
        "alarm.reversal_failed": "не удалось отменить платёж в терминале",
        "alarm.terminal_down": "терминал оплаты недоступен",
        "alarm.unattributed": "операция терминала не сопоставлена с платежом — сверить с банком",
        "alarm.journal": "ошибка журнала платежей",
        "alarm.catalog_stale": "каталог счетов устарел (не обновляется)",
    },
    "en": {
        "back": "Back",
        "next": "Next",
        "cancel": "Cancel",
        "ok": "OK",
        "done": "Done",
        "retry": "Try again",
        "clear": "Clear",
        "idle": "Back to start in {seconds} s",
        "lang_button": "Русский",
        "currency": "RUB",
        "welcome.title": "Utility bill payments",
        "welcome.subtitle": "Welcome!",
        "welcome.how": "Tap your resident card, scan the QR code on your bill, or type your "
        "account number",
        "welcome.number": "Account number",
        "welcome.find": "Find",
        "welcome.looking": "Looking up your account…",
        "welcome.unknown": "Account not found. Check the number and try again.",
        "welcome.unavailable": "Account data is not available right now. Please ask staff.",
        "welcome.demo_cards": "Demo: F5, F6 tap a card; F7 scans a bill's QR",
        "welcome.paused": "Payments are paused while the previous payment is being checked.",
        "services.title": "Services of account {account}",
        "services.holder": "{holder}, {address}",
        "services.open": "Open",
        "services.paid": "Paid",
        "services.col_service": "Service",
        "services.col_provider": "Provider",
        "services.col_period": "Period",
        "services.col_due": "Amount",
        "services.owed": "owed",
        "services.overpaid": "overpaid {amount}",
        "services.nothing_due": "paid",
        "services.paid_here": "paid here {amount}",
        "services.instalments": "Instalments: {service}",
        "services.instalment_row": "by {date} — {amount}",
        "services.none_open": "Nothing is owed. Thank you!",
        "services.none_paid": "No paid services",
        "services.recent": "Payments at this kiosk",
        "services.pay": "Pay",
        "services.meters": "Meter readings",
        "services.statement": "Statement",
        "services.total_due": "Total due: {amount}",
        "amounts.title": "Amount to pay",
        "amounts.hint": "Tick the services and change the amounts if you wish",
        "amounts.edit": "Edit",
        "amounts.total": "Total: {amount}",
        "amounts.from_bill": "Amount from your bill: {amount}",
        "amounts.nothing": "Choose at least one service",
        "amounts.keypad_title": "{service}: amount, RUB",
        "amounts.debt": "Owed {amount}",
        "amounts.next_instalment": "Instalment due {date}: {amount}",
        "amounts.bad_amount": "Invalid amount",
        "surcharge.title": "Surcharge",
        "surcharge.intro": "A surcharge applies to this payment:",
        "surcharge.row": "{service}: {amount}",
        "surcharge.provider_pays": "{service}: the provider pays the {amount} fee",
        "surcharge.total": "Total surcharge: {amount}",
        "surcharge.accept": "Accept and continue",
        "surcharge.decline": "Decline",
        "surcharge.declinable": "you may decline this fee",
        "surcharge.declined_cancel": "You declined the surcharge, so the payment was cancelled.",
        "confirm.title": "Check your payment",
        "confirm.account": "Account {account}",
        "confirm.fee": "Surcharge",
        "confirm.total": "To pay by card: {amount}",
        "confirm.pay": "Pay by card",
        "payment.title": "Card payment",
        "payment.amount": "Amount: {amount}",
        "payment.starting": "Connecting to the payment terminal…",
        "payment.insert_card": "Tap or insert your card",
        "payment.enter_pin": "Enter your PIN on the terminal",
        "payment.processing": "Processing the payment…",
        "payment.remove_card": "Please remove your card",
        "payment.wait": "Please wait…",
        "payment.cancelling": "Cancelling…",
        "payment.checking": "Checking the payment's result with the terminal…",
        "payment.declined": "Payment declined: {reason}",
        "payment.cancelled": "Payment cancelled. No money was taken.",
        "payment.failed": "The payment did not go through: {reason}. No money was taken.",
        "payment.busy": "The terminal is busy. Please try again in a minute.",
        "payment.terminal_down": "The payment terminal is not available. No money was taken.",
        "payment.offline_limit": "The kiosk cannot take this payment right now: {reason}. "
        "No money was taken. Please try later.",
        "payment.unknown": "We could not confirm the payment. Do not pay again: staff will check "
        "it. Payment reference: {reference}",
        "payment.reversed": "Payment cancelled; the money will return to your card.",
        "payment.journal_down": "Payments are not possible right now: a storage fault. No money "
        "was taken.",
        "payment.starting_up": "The kiosk is getting ready. Please try again in a minute.",
        "limit.payment_amount": "the amount is above the offline limit",
        "limit.amount_total": "the offline payments limit is reached",
        "limit.payments_count": "too many payments are waiting to be sent",
        "limit.age": "the kiosk has been offline for too long",
        "receipt.title": "Payment complete",
        "receipt.thanks": "Thank you! Please take your receipt.",
        "receipt.paper_out": "The printer is out of paper. Your payment went through — here is "
        "your receipt on screen; staff have been told.",
        "receipt.printer_fault": "The receipt was not printed ({reason}). Your payment went "
        "through — here is your receipt on screen; staff have been told.",
        "receipt.printing": "Printing your receipt…",
        "receipt.finish": "Finish",
        "meters.title": "Meter readings",
        "meters.none": "This account has no meters",
        "meters.row": "{service}, meter no. {meter}",
        "meters.previous": "Previous: {value} {unit} ({date})",
        "meters.enter": "New reading, {unit}",
        "meters.submit": "Submit",
        "meters.saved": "Reading {value} {unit} accepted. Consumption: {consumption} {unit}.",
        "meters.too_low": "The reading is below the previous one ({previous}). Check the digits.",
        "meters.too_high": "Consumption of {consumption} {unit} is too large. Check the digits.",
        "meters.bad": "Type the reading in digits, with up to three decimals",
        "meters.history": "Reading history",
        "meters.col_date": "Date",
        "meters.col_value": "Reading",
        "meters.col_consumption": "Consumption",
        "meters.chart": "Consumption by month",
        "meters.no_history": "No readings yet",
        "statement.title": "Statement of account {account}",
        "statement.period": "Period: {start} — {end}",
        "statement.months": "{n} mo.",
        "statement.col_date": "Date",
        "statement.col_what": "Item",
        "statement.col_amount": "Amount",
        "statement.charges": "Charges and amounts due",
        "statement.payments": "Payments at this kiosk",
        "statement.no_payments": "No payments in this period",
        "statement.print": "Print",
        "statement.printed": "Statement printed",
        "statement.print_failed": "Could not print: {reason}",
        "statement.payment_row": "Card payment, reference {reference}",
        "staff.online": "online",
        "staff.offline": "offline",
        "staff.stored": "stored payments: {count}",
        "staff.alarm": "⚠ staff needed",
        "staff.starting": "starting…",
        "pin.title": "Service mode",
        "pin.enter": "Enter the technician PIN",
        "pin.wrong": "Wrong PIN. Attempts left: {left}",
        "pin.locked": "PIN entry is locked for {seconds} s",
        "pin.disabled": "Service mode is not configured",
        "service.title": "Service mode",
        "service.devices": "Devices",
        "service.terminal": "Payment terminal: {state}",
        "service.printer": "Receipt printer: {state}",
        "service.card_reader": "Card reader: {state}",
        "service.scanner": "QR scanner: {state}",
        "service.journal": "Journal",
        "service.queue": "Not yet sent to central: {entries} entries, oldest {age}",
        "service.stored": "Payments stored without acknowledgement: {count}, {amount}",
        "service.unknown": "Payments with unknown outcome: {count}",
        "service.catalog": "Catalog: version {version}, {accounts} accounts, age {age}{stale}",
        "service.stale": " — STALE",
        "service.sync": "Last sync: acknowledged through no. {acked}, {ago}; "
        "catalog received {applied}",
        "service.central": "Central: {state}",
        "service.alarms": "Alarms: {alarms}",
        "service.no_alarms": "none",
        "service.test_receipt": "Test receipt",
        "service.end_of_day": "End of day",
        "service.reprint": "Reprint last receipt",
        "service.resolve": "Check payments",
        "service.clear_alarms": "Clear alarms",
        "service.exit": "Exit",
        "service.done": "Done: {what}",
        "service.failed": "Failed: {what}: {reason}",
        "service.eod_result": "End of day: {result}, total {amount}",
        "service.never": "never",
        "service.none": "none",
        "state.ok": "ready",
        "state.absent": "not connected",
        "state.fault": "fault: {reason}",
        "state.paper_out": "out of paper",
        "state.paper_low": "paper running low",
        "state.unknown": "unknown",
        "age.seconds": "{n} s",
        "age.minutes": "{n} min",
        "age.hours": "{n} h",
        "age.days": "{n} d",
        "age.ago": "{age} ago",
        "alarm.paper_out": "printer out of paper",
        "alarm.printer_fault": "printer fault",
        "alarm.payment_unknown": "payment with unknown outcome",
        "alarm.recovered": "payment recovered after a crash; no receipt was handed out",
        "alarm.reversal_failed": "a payment could not be reversed on the terminal",
        "alarm.terminal_down": "payment terminal not available",
        "alarm.unattributed": "a terminal transaction matches no payment: reconcile with the bank",
        "alarm.journal": "payment journal fault",
        "alarm.catalog_stale": "the account catalog has expired (not being renewed)",
    },
}


def t(lang: str, key: str, **fields: object) -> str:
    """The text of ``key`` in ``lang`` (English for an unknown language), with ``fields``."""
    table = MESSAGES["ru"] if lang == "ru" else MESSAGES["en"]
    text = table[key]
    return text.format(**fields) if fields else text


def placeholders(text: str) -> frozenset[str]:
    """The ``{names}`` a message uses (the tests compare them across languages)."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


def money(amount_minor: int, lang: str, *, sign: bool = False) -> str:
    """``1 234,56 ₽`` (ru) or ``1,234.56 RUB`` (en) from kopecks; ``sign`` adds ``+`` when > 0."""
    if type(amount_minor) is not int:
        raise TypeError("money is int kopecks")
    negative = amount_minor < 0
    whole, kop = divmod(abs(amount_minor), 100)
    if lang == "ru":
        # A narrow no-break space groups thousands, as Russian typography does.
        text = f"{whole:,}".replace(",", "\u202f") + f",{kop:02d} ₽"
    else:
        text = f"{whole:,}.{kop:02d} RUB"
    if negative:
        return "−" + text
    return ("+" + text) if sign and amount_minor > 0 else text


def reading(value_milli: int, lang: str) -> str:
    """A meter reading from thousandths: ``123,456`` (ru) or ``123.456`` (en)."""
    whole, frac = divmod(value_milli, 1000)
    return f"{whole}{',' if lang == 'ru' else '.'}{frac:03d}"


_MONTHS_RU: Final = (
    "январь", "февраль", "март", "апрель", "май", "июнь",
    "июль", "август", "сентябрь", "октябрь", "ноябрь", "декабрь",
)  # fmt: skip
_MONTHS_EN: Final = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def period_label(period: str, lang: str) -> str:
    """A billing period "2025-05" as "май 2025" / "May 2025" (unchanged if malformed)."""
    if len(period) != 7 or period[4] != "-" or not (period[:4] + period[5:]).isdigit():
        return period
    month = int(period[5:])
    if not 1 <= month <= 12:
        return period
    names = _MONTHS_RU if lang == "ru" else _MONTHS_EN
    return f"{names[month - 1]} {period[:4]}"
