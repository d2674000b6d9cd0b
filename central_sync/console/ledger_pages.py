"""Pages on the ledger itself: terminals, batches, daily volume and the payout exports."""

from __future__ import annotations

import asyncio
import datetime as dt

from aiohttp import web

from central_sync.central.app import storage_key
from central_sync.central.storage import TerminalRecord, TerminalState
from central_sync.console import ledger
from central_sync.console.chart import Bar, bar_chart
from central_sync.console.days import DAY_MS, day_of, day_start_ms, parse_day, span
from central_sync.console.errors import ConsoleInputError
from central_sync.console.html import Markup, html, join
from central_sync.console.i18n import Lang, duration, money, t, when
from central_sync.console.layout import PREFIX, esc_or_dash, notice, page, pager, table
from central_sync.console.reports import PayoutReport, payouts_csv, payouts_pdf
from central_sync.console.web import ctx, now_ms, policy, session, settings

SILENT_AFTER_MS = 3_600_000
FILTER_CHARS_MAX = 128
PAGE_NO_MAX = 1_000_000


def html_response(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html")


def page_no(request: web.Request) -> int:
    """The ``page`` query parameter, 1 if absent; ConsoleInputError if malformed."""
    raw = request.query.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= PAGE_NO_MAX:
        raise ConsoleInputError("page must be a positive whole number")
    return int(raw)


def text_filter(request: web.Request, name: str) -> str:
    value = request.query.get(name, "").strip()
    if len(value) > FILTER_CHARS_MAX:
        raise ConsoleInputError(f"{name} is longer than {FILTER_CHARS_MAX} characters")
    return value


def _terminal_row(record: TerminalRecord, lang: Lang, now: int, offset_min: int) -> Markup:
    silent = record.last_seen_ms is None or now - record.last_seen_ms > SILENT_AFTER_MS
    css = "bad" if record.state is not TerminalState.ENROLLED else "warn" if silent else ""
    state = t(lang, f"state.{record.state.value}")
    if record.state_reason:
        state = f"{state}: {record.state_reason}"
    cells = (
        html(
            '<a href="{href}">{id}</a>',
            href=f"{PREFIX}/batches?terminal={record.terminal_id}",
            id=record.terminal_id,
        ),
        record.label,
        record.location,
        state,
        when(record.last_seen_ms, lang, offset_min=offset_min),
        esc_or_dash(record.queue_depth),
        duration(record.oldest_pending_age_s, lang),
        record.head_seq,
        esc_or_dash(record.software_version),
        esc_or_dash(record.catalog_version),
        esc_or_dash(record.config_version),
    )
    return html(
        '<tr class="{css}" data-terminal="{id}">{cells}</tr>',
        css=css,
        id=record.terminal_id,
        cells=join(html("<td>{c}</td>", c=c) for c in cells),
    )


@policy()
async def terminals(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    records = await request.config_dict[storage_key].list_terminals()
    now = now_ms()
    lang = c.lang
    if not records:
        body = notice(t(lang, "terminals.empty"))
    else:
        summary = t(
            lang,
            "terminals.summary",
            total=len(records),
            quarantined=sum(r.state is TerminalState.QUARANTINED for r in records),
            revoked=sum(r.state is TerminalState.REVOKED for r in records),
            stale=sum(
                r.last_seen_ms is None or now - r.last_seen_ms > SILENT_AFTER_MS for r in records
            ),
        )
        keys = (
            "terminals.id",
            "terminals.label",
            "terminals.location",
            "terminals.state",
            "terminals.last_seen",
            "terminals.queue",
            "terminals.oldest",
            "terminals.head",
            "terminals.software",
            "terminals.catalog",
            "terminals.config",
        )
        head = join(html("<th>{h}</th>", h=t(lang, k)) for k in keys)
        rows = join(_terminal_row(r, lang, now, c.offset_min) for r in records)
        body = html(
            '<p>{summary}</p><table id="terminals"><thead><tr>{head}</tr></thead>'
            "<tbody>{rows}</tbody></table>",
            summary=summary,
            head=head,
            rows=rows,
        )
    return html_response(page(c, t(lang, "terminals.title"), body, active="terminals"))


@policy()
async def batches(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    lang = c.lang
    terminal = text_filter(request, "terminal")
    number = page_no(request)
    per_page = settings(request).page_rows_max
    total, rows = await ledger.batches(
        request.config_dict[storage_key],
        terminal_id=terminal or None,
        limit=per_page,
        offset=(number - 1) * per_page,
    )
    pages = max(1, -(-total // per_page))
    form = html(
        '<form class="filters" method="get" action="{action}"><label>{label}'
        '<input name="terminal" value="{terminal}" maxlength="128"></label>'
        '<button type="submit">{go}</button></form>',
        action=f"{PREFIX}/batches",
        label=t(lang, "terminals.id"),
        terminal=terminal,
        go=t(lang, "common.filter"),
    )
    if not rows:
        listing = notice(t(lang, "batches.empty"))
    else:
        listing = table(
            (
                t(lang, "batches.received"),
                t(lang, "terminals.id"),
                t(lang, "batches.range"),
                t(lang, "batches.applied"),
                t(lang, "batches.outcome"),
                t(lang, "batches.bytes"),
            ),
            [
                (
                    when(r.received_ms, lang, offset_min=c.offset_min),
                    r.terminal_id,
                    f"{r.from_seq}–{r.to_seq}",
                    r.applied,
                    r.outcome,
                    r.wire_bytes,
                )
                for r in rows
            ],
            numeric=(3, 5),
        )
    body = html(
        "{form}<p>{count}</p>{listing}{pager}",
        form=form,
        count=t(lang, "common.rows", count=total),
        listing=listing,
        pager=pager(c, f"{PREFIX}/batches", {"terminal": terminal}, number, pages),
    )
    return html_response(page(c, t(lang, "batches.title"), body, active="batches"))


@policy()
async def volume(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    lang = c.lang
    conf = settings(request)
    storage = request.config_dict[storage_key]
    if "to" in request.query:
        last = parse_day(request.query["to"], "to")
    else:
        # The newest payment's day: today on a live system, the data's last day otherwise.
        newest = await ledger.newest_payment_ms(storage)
        last = day_of(now_ms() if newest is None else newest, c.offset_min)
    days = conf.volume_days_max
    first = last - dt.timedelta(days=days - 1)
    start = day_start_ms(first, c.offset_min)
    rows = await ledger.daily_volume(
        storage, from_ms=start, to_ms=start + days * DAY_MS, offset_min=c.offset_min
    )
    by_day = {r.day_index: r for r in rows}
    first_index = (start + c.offset_min * 60_000) // DAY_MS
    bars = []
    table_rows = []
    for i in range(days):
        day = first + dt.timedelta(days=i)
        found = by_day.get(first_index + i)
        count = 0 if found is None else found.payments
        amount = 0 if found is None else found.amount_minor
        bars.append(
            Bar(
                label=day.strftime("%d.%m"),
                value=count,
                title=f"{day.isoformat()}: {count} · {money(amount, lang)}",
            )
        )
        if found is not None:
            table_rows.append((day.isoformat(), count, money(amount, lang)))
    chart = bar_chart(
        bars, caption=t(lang, "volume.chart", days=days), value_label=t(lang, "volume.payments")
    )
    form = html(
        '<form class="filters" method="get" action="{action}"><label>{label}'
        '<input type="date" name="to" value="{to}"></label><button type="submit">{go}</button>'
        "</form>",
        action=f"{PREFIX}/volume",
        label=t(lang, "common.day"),
        to=last.isoformat(),
        go=t(lang, "common.show"),
    )
    listing = (
        table(
            (t(lang, "common.day"), t(lang, "volume.payments"), t(lang, "volume.amount")),
            table_rows,
            numeric=(1, 2),
        )
        if table_rows
        else notice(t(lang, "volume.empty"))
    )
    body = html(
        "{form}<h2>{caption}</h2>{chart}{listing}",
        form=form,
        caption=t(lang, "volume.chart", days=days),
        chart=chart,
        listing=listing,
    )
    return html_response(page(c, t(lang, "volume.title"), body, active="volume"))


def _exports_form(lang: Lang, first: str, last: str) -> Markup:
    options = join(
        html('<option value="{v}">{label}</option>', v=by, label=t(lang, f"exports.by.{by}"))
        for by in ledger.PAYOUT_BY
    )
    buttons = html(
        '<button type="submit" formaction="{csv}">{csv_label}</button>'
        '<button type="submit" class="secondary" formaction="{pdf}">{pdf_label}</button>',
        csv=f"{PREFIX}/exports/payouts.csv",
        pdf=f"{PREFIX}/exports/payouts.pdf",
        csv_label=t(lang, "exports.csv"),
        pdf_label=t(lang, "exports.pdf"),
    )
    return html(
        '<form class="filters" method="get" action="{action}">'
        '<label>{from_label}<input type="date" name="from" value="{first}" required></label>'
        '<label>{to_label}<input type="date" name="to" value="{last}" required></label>'
        '<label>{by_label}<select name="by">{options}</select></label>{buttons}</form>',
        action=f"{PREFIX}/exports/payouts.csv",
        from_label=t(lang, "exports.from"),
        to_label=t(lang, "exports.to"),
        by_label=t(lang, "exports.by"),
        first=first,
        last=last,
        options=options,
        buttons=buttons,
    )


@policy()
async def exports(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    lang = c.lang
    newest = await ledger.newest_payment_ms(request.config_dict[storage_key])
    day = day_of(now_ms() if newest is None else newest, c.offset_min).isoformat()
    body = html(
        "<p>{intro}</p>{form}", intro=t(lang, "exports.intro"), form=_exports_form(lang, day, day)
    )
    return html_response(page(c, t(lang, "exports.title"), body, active="exports"))


async def _payout_report(request: web.Request) -> PayoutReport:
    c = ctx(request)
    by = ledger.parse_payout_by(request.query.get("by", "provider"))
    first = parse_day(request.query.get("from"), "from")
    last = parse_day(request.query.get("to"), "to")
    days = span(first, last)
    start = day_start_ms(first, c.offset_min)
    lines = await ledger.payouts(
        request.config_dict[storage_key],
        by,
        from_ms=start,
        to_ms=start + days * DAY_MS,
        rows_max=settings(request).export_rows_max,
    )
    user = session(request).user.name
    return PayoutReport(
        by=by,
        first_day=first.isoformat(),
        last_day=last.isoformat(),
        lines=lines,
        generated=when(now_ms(), c.lang, offset_min=c.offset_min),
        user=user,
    )


def _download(data: bytes, content_type: str, name: str) -> web.Response:
    return web.Response(
        body=data,
        content_type=content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@policy()
async def payouts_csv_download(request: web.Request) -> web.StreamResponse:
    report = await _payout_report(request)
    name = f"payouts-{report.by}-{report.first_day}-{report.last_day}.csv"
    return _download(payouts_csv(report), "text/csv", name)


@policy()
async def payouts_pdf_download(request: web.Request) -> web.StreamResponse:
    report = await _payout_report(request)
    # fpdf2 lays the pages out in Python: off the event loop.
    data = await asyncio.to_thread(payouts_pdf, report, ctx(request).lang)
    name = f"payouts-{report.by}-{report.first_day}-{report.last_day}.pdf"
    return _download(data, "application/pdf", name)
