"""The console's texts in English and Russian, and how money and times are shown.

Every text an operator sees is a key here with both languages side by side, so
a language can never miss one (and the tests check the placeholders agree).
The language is the operator's choice (a cookie set by the switch in the header),
Russian by default.
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Mapping
from typing import Final, Literal

Lang = Literal["ru", "en"]
LANGUAGES: Final[tuple[Lang, ...]] = ("ru", "en")
DEFAULT_LANG: Final[Lang] = "ru"

# key: (English, Russian)
MESSAGES: Final[Mapping[str, tuple[str, str]]] = {
    "app.title": ("lobbypay operator console", "Консоль оператора lobbypay"),
    "nav.terminals": ("Terminals", "Терминалы"),
    "nav.batches": ("Batches", "Пакеты"),
    "nav.volume": ("Volume", "Объём"),
    "nav.reconciliation": ("Reconciliation", "Сверка"),
    "nav.discrepancies": ("Discrepancies", "Расхождения"),
    "nav.days": ("Day close", "Закрытие дня"),
    "nav.exports": ("Exports", "Выгрузки"),
    "nav.logout": ("Log out", "Выйти"),
    "nav.signed_in": ("{user} ({role})", "{user} ({role})"),
    "role.operator": ("operator", "оператор"),
    "role.supervisor": ("supervisor", "старший смены"),
    "role.auditor": ("auditor", "аудитор"),
    "login.title": ("Sign in", "Вход"),
    "login.user": ("User name", "Имя пользователя"),
    "login.password": ("Password", "Пароль"),
    "login.submit": ("Sign in", "Войти"),
    "login.failed": ("Wrong user name or password.", "Неверное имя пользователя или пароль."),
    "login.throttled": (
        "Too many failed attempts. Try again in {minutes} min.",
        "Слишком много неудачных попыток. Повторите через {minutes} мин.",
    ),
    "login.expired": (
        "Your session has ended. Please sign in again.",
        "Сеанс завершён. Войдите снова.",
    ),
    "error.title": ("Something is wrong", "Ошибка"),
    "error.forbidden": (
        "Your role does not allow this.",
        "Ваша роль не позволяет это действие.",
    ),
    "error.csrf": (
        "The form has expired or came from elsewhere. Reload the page and try again.",
        "Форма устарела или отправлена с другого сайта. Обновите страницу и повторите.",
    ),
    "error.not_found": ("Not found.", "Не найдено."),
    "error.bad_input": ("The request is not valid: {detail}", "Неверный запрос: {detail}"),
    "error.conflict": ("Not possible now: {detail}", "Сейчас невозможно: {detail}"),
    "error.unavailable": (
        "The ledger database is busy. Try again in a moment.",
        "База данных занята. Повторите через минуту.",
    ),
    "error.internal": (
        "An internal error occurred; it has been logged.",
        "Внутренняя ошибка; она записана в журнал.",
    ),
    "error.back": ("Back to the console", "Вернуться в консоль"),
    "common.none": ("none", "нет"),
    "common.never": ("never", "никогда"),
    "common.filter": ("Filter", "Найти"),
    "common.reset": ("Reset", "Сбросить"),
    "common.all": ("all", "все"),
    "common.page": ("Page {page} of {pages}", "Страница {page} из {pages}"),
    "common.prev": ("Previous", "Назад"),
    "common.next": ("Next", "Далее"),
    "common.rows": ("{count} rows", "Строк: {count}"),
    "common.day": ("Day", "День"),
    "common.show": ("Show", "Показать"),
    "common.total": ("Total", "Итого"),
    "common.yes": ("yes", "да"),
    "common.no": ("no", "нет"),
    "terminals.title": ("Terminals", "Терминалы"),
    "terminals.empty": ("No terminal has enrolled yet.", "Ни один терминал ещё не подключён."),
    "terminals.id": ("Terminal", "Терминал"),
    "terminals.label": ("Label", "Название"),
    "terminals.location": ("Location", "Адрес"),
    "terminals.state": ("State", "Состояние"),
    "terminals.last_seen": ("Last seen", "Последний сеанс"),
    "terminals.queue": ("Queue", "Очередь"),
    "terminals.oldest": ("Oldest pending", "Старейшая запись"),
    "terminals.head": ("Head seq", "Последний №"),
    "terminals.software": ("Software", "ПО"),
    "terminals.catalog": ("Catalog", "Каталог"),
    "terminals.config": ("Config", "Конфигурация"),
    "terminals.summary": (
        "{total} terminals: {quarantined} quarantined, {revoked} revoked, {stale} silent "
        "for over an hour",
        "Терминалов: {total}; в карантине: {quarantined}, отозвано: {revoked}, "
        "молчат больше часа: {stale}",
    ),
    "state.enrolled": ("enrolled", "подключён"),
    "state.revoked": ("revoked", "отозван"),
    "state.quarantined": ("quarantined", "карантин"),
    "batches.title": ("Batches received", "Полученные пакеты"),
    "batches.received": ("Received", "Получен"),
    "batches.range": ("Entries", "Записи"),
    "batches.applied": ("Applied", "Применено"),
    "batches.outcome": ("Outcome", "Итог"),
    "batches.bytes": ("Bytes", "Байт"),
    "batches.empty": ("No batch yet.", "Пакетов ещё нет."),
    "volume.title": ("Daily volume", "Объём по дням"),
    "volume.payments": ("Payments", "Платежи"),
    "volume.amount": ("Amount", "Сумма"),
    "volume.chart": (
        "Approved payments per day, last {days} days",
        "Одобренные платежи по дням за {days} дн.",
    ),
    "volume.empty": ("No payments in these days.", "За эти дни платежей нет."),
    "exports.title": ("Exports", "Выгрузки"),
    "exports.intro": (
        "Payouts owed for approved, not reversed payments taken on the chosen days.",
        "Суммы к перечислению по одобренным и не отменённым платежам за выбранные дни.",
    ),
    "exports.from": ("From", "С"),
    "exports.to": ("To (inclusive)", "По (включительно)"),
    "exports.by": ("Per", "В разрезе"),
    "exports.by.provider": ("service provider", "поставщика услуг"),
    "exports.by.terminal": ("terminal", "терминала"),
    "exports.by.agent": ("agent", "агента"),
    "exports.csv": ("Download CSV", "Скачать CSV"),
    "exports.pdf": ("Download PDF", "Скачать PDF"),
    "payouts.title": ("Payouts per {by}", "Перечисления в разрезе {by}"),
    "payouts.period": ("{start} to {end}", "с {start} по {end}"),
    "payouts.key": ("Recipient", "Получатель"),
    "payouts.count": ("Payments", "Платежей"),
    "payouts.amount": ("Amount", "Сумма"),
    "payouts.currency": ("Currency", "Валюта"),
    "payouts.generated": ("Generated {when} by {user}", "Сформировано {when}, {user}"),
    "payouts.direct": ("(own cash desk)", "(собственная касса)"),
}

_COLUMN = {"en": 0, "ru": 1}


def lang_of(value: str | None) -> Lang:
    """The language a cookie or form names; the default for anything else."""
    return "en" if value == "en" else "ru" if value == "ru" else DEFAULT_LANG


def t(lang: Lang, key: str, **fields: object) -> str:
    """The text of ``key`` in ``lang``, with ``fields`` filled in."""
    text = MESSAGES[key][_COLUMN[lang]]
    return text.format(**fields) if fields else text


def placeholders(text: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


def money(amount_minor: int, lang: Lang) -> str:
    """``1 234,56`` (ru) or ``1,234.56`` (en) from minor units; the currency is a column."""
    if type(amount_minor) is not int:
        raise TypeError("money is int minor units")
    whole, minor = divmod(abs(amount_minor), 100)
    sign = "−" if amount_minor < 0 else ""
    if lang == "ru":
        return sign + f"{whole:,}".replace(",", "\u00a0") + f",{minor:02d}"
    return sign + f"{whole:,}.{minor:02d}"


def when(ts_ms: int | None, lang: Lang, *, offset_min: int = 0) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM`` at the console's UTC offset; 'never' for None."""
    if ts_ms is None:
        return t(lang, "common.never")
    zone = dt.timezone(dt.timedelta(minutes=offset_min))
    return dt.datetime.fromtimestamp(ts_ms / 1000, zone).strftime("%Y-%m-%d %H:%M")


def duration(seconds: int | None, lang: Lang) -> str:
    """``2 h 05 min`` / ``2 ч 05 мин`` (or ``45 s`` / ``45 с``); '—' for None."""
    if seconds is None:
        return "—"
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    units = ("h", "min", "s") if lang == "en" else ("ч", "мин", "с")
    if hours:
        return f"{hours} {units[0]} {minutes:02d} {units[1]}"
    if minutes:
        return f"{minutes} {units[1]}"
    return f"{secs} {units[2]}"
