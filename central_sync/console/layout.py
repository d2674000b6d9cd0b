"""The console's page shell: header, navigation, language switch, stylesheet, script.

Pages give a title and a body (:class:`Markup`); :func:`page` wraps them. The
stylesheet and the small script are served as files from ``/console/static/``
(the Content-Security-Policy allows nothing inline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from central_sync.console.accounts import Role, Session
from central_sync.console.html import Markup, esc, html, join, query
from central_sync.console.i18n import LANGUAGES, Lang, t

PREFIX = "/console"


@dataclass(frozen=True, slots=True, kw_only=True)
class Ctx:
    """What a page knows of its request: the language, the session (if any), the path."""

    lang: Lang
    session: Session | None
    path: str
    """The request's path and query (for the language switch to come back to)."""
    offset_min: int = 0

    @property
    def role(self) -> Role | None:
        return None if self.session is None else self.session.user.role

    def csrf_field(self) -> Markup:
        assert self.session is not None
        return html(
            '<input type="hidden" name="csrf" value="{token}">', token=self.session.csrf_token
        )


NAV: tuple[tuple[str, str], ...] = (
    ("terminals", "nav.terminals"),
    ("batches", "nav.batches"),
    ("volume", "nav.volume"),
    ("reconciliation", "nav.reconciliation"),
    ("discrepancies", "nav.discrepancies"),
    ("days", "nav.days"),
    ("exports", "nav.exports"),
)


def _header(ctx: Ctx, active: str) -> Markup:
    switch = join(
        html('<span class="lang-current">{code}</span>', code=code.upper())
        if code == ctx.lang
        else html(
            '<a class="lang" hreflang="{code}" href="{href}">{label}</a>',
            code=code,
            href=query(f"{PREFIX}/lang", {"set": code, "next": ctx.path}),
            label=code.upper(),
        )
        for code in LANGUAGES
    )
    if ctx.session is None:
        return html(
            '<header><div class="brand">{title}</div><div class="lang-switch">{switch}</div>'
            "</header>",
            title=t(ctx.lang, "app.title"),
            switch=switch,
        )
    links = join(
        html(
            '<a href="{href}"{current}>{label}</a>',
            href=f"{PREFIX}/{name}",
            current=Markup(' aria-current="page"' if name == active else ""),
            label=t(ctx.lang, key),
        )
        for name, key in NAV
    )
    user = ctx.session.user
    return html(
        '<header><div class="brand">{title}</div><nav>{links}</nav>'
        '<div class="who"><span>{who}</span>'
        '<form method="post" action="{prefix}/logout">{csrf}<button class="link">{logout}</button>'
        '</form><div class="lang-switch">{switch}</div></div></header>',
        title=t(ctx.lang, "app.title"),
        links=links,
        who=t(ctx.lang, "nav.signed_in", user=user.name, role=t(ctx.lang, f"role.{user.role}")),
        prefix=PREFIX,
        csrf=ctx.csrf_field(),
        logout=t(ctx.lang, "nav.logout"),
        switch=switch,
    )


def page(ctx: Ctx, title: str, body: Markup, *, active: str = "") -> str:
    """A whole HTML document."""
    return html(
        '<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>{title} · {app}</title>"
        '<link rel="stylesheet" href="{prefix}/static/console.css">'
        '<script src="{prefix}/static/console.js" defer></script>'
        "</head><body>{header}<main><h1>{title}</h1>{body}</main></body></html>\n",
        lang=ctx.lang,
        title=title,
        app=t(ctx.lang, "app.title"),
        prefix=PREFIX,
        header=_header(ctx, active),
        body=body,
    )


def table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, numeric: Sequence[int] = ()
) -> Markup:
    """A table; cells are escaped unless Markup; ``numeric`` columns align right."""
    head = join(
        html("<th{cls}>{h}</th>", h=h, cls=Markup(' class="num"' if i in numeric else ""))
        for i, h in enumerate(headers)
    )
    body = join(
        Markup("<tr>")
        + join(
            html("<td{cls}>{c}</td>", c=c, cls=Markup(' class="num"' if i in numeric else ""))
            for i, c in enumerate(row)
        )
        + Markup("</tr>")
        for row in rows
    )
    return html(
        "<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>", head=head, body=body
    )


def pager(ctx: Ctx, path: str, params: dict[str, object], page_no: int, pages: int) -> Markup:
    """Previous / next links keeping the filters in ``params``."""
    parts = []
    if page_no > 1:
        parts.append(
            html(
                '<a rel="prev" href="{href}">{label}</a>',
                href=query(path, {**params, "page": page_no - 1}),
                label=t(ctx.lang, "common.prev"),
            )
        )
    parts.append(
        html("<span>{text}</span>", text=t(ctx.lang, "common.page", page=page_no, pages=pages))
    )
    if page_no < pages:
        parts.append(
            html(
                '<a rel="next" href="{href}">{label}</a>',
                href=query(path, {**params, "page": page_no + 1}),
                label=t(ctx.lang, "common.next"),
            )
        )
    return html('<nav class="pager">{parts}</nav>', parts=join(parts, " "))


def notice(text: str, kind: str = "info") -> Markup:
    return html('<p class="notice {kind}" role="status">{text}</p>', kind=kind, text=text)


STYLESHEET = """\
:root { --fg: #1d2430; --muted: #5b6573; --line: #d9dee5; --bg: #f6f7f9; --accent: #1f5fbf;
  --bad: #b3261e; --warn: #8a5a00; --ok: #1e6b35; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 "DejaVu Sans", system-ui, sans-serif; color: var(--fg);
  background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem 2rem; padding: .6rem 1.5rem;
  background: #fff; border-bottom: 1px solid var(--line); }
.brand { font-weight: 700; }
nav a { margin-right: 1rem; color: var(--accent); text-decoration: none; }
nav a[aria-current="page"] { color: var(--fg); font-weight: 700; }
.who { margin-left: auto; display: flex; gap: 1rem; align-items: center; color: var(--muted); }
.who form { margin: 0; }
.lang-switch a, .lang-current { margin-left: .4rem; }
.lang-current { font-weight: 700; }
main { padding: 1rem 1.5rem 3rem; max-width: 1400px; }
h1 { font-size: 1.4rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { padding: .35rem .6rem; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.bad td { background: #fdecea; }
tr.warn td { background: #fff6e0; }
form.filters { display: flex; flex-wrap: wrap; gap: .6rem 1rem; align-items: end;
  margin-bottom: 1rem; }
label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); gap: .2rem; }
input, select, textarea, button { font: inherit; padding: .3rem .5rem;
  border: 1px solid var(--line); border-radius: 4px; background: #fff; color: var(--fg); }
button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
button.link { background: none; border: none; color: var(--accent); padding: 0; }
button.secondary { background: #fff; color: var(--accent); }
.notice { padding: .6rem .8rem; border-radius: 4px; background: #e8f0fc; }
.notice.bad { background: #fdecea; color: var(--bad); }
.notice.ok { background: #e6f4ea; color: var(--ok); }
.pager { margin: .8rem 0; display: flex; gap: 1rem; }
.login { max-width: 22rem; margin: 3rem auto; background: #fff; padding: 1.5rem;
  border: 1px solid var(--line); border-radius: 6px; display: flex; flex-direction: column;
  gap: 1rem; }
.chart { background: #fff; border: 1px solid var(--line); max-width: 100%; height: auto; }
.chart .bar { fill: var(--accent); }
.chart text { font-size: 11px; fill: var(--muted); }
.muted { color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
dl.facts dt { color: var(--muted); }
.actions { display: flex; flex-wrap: wrap; gap: 1.5rem; margin: 1rem 0; }
.actions form { background: #fff; border: 1px solid var(--line); padding: .8rem; border-radius: 6px;
  display: flex; flex-direction: column; gap: .6rem; min-width: 18rem; }
"""

# Asks before a form marked data-confirm is sent (a closed day is frozen).
SCRIPT = """\
document.addEventListener("submit", function (event) {
  var text = event.target.getAttribute("data-confirm");
  if (text && !window.confirm(text)) { event.preventDefault(); }
});
"""


def esc_or_dash(value: object) -> Markup:
    return esc("—" if value is None or value == "" else value)
