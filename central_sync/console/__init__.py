"""The operator console: web pages of the central service for central's operators.

Served under ``/console/`` by ``lobbypay central serve`` (mounted by
:func:`central_sync.console.app.setup_console`). Operators, supervisors and
auditors log in (``lobbypay central user add``), watch terminals, batches and
daily volume, reconcile days against the banks' registries, resolve
discrepancies with two-person approval, close days, and export payouts as CSV
and PDF, in Russian or English.

Modules: ``web`` (sessions, roles, CSRF, error pages), ``accounts`` (users,
sessions, login throttling), ``passwords`` (scrypt), ``layout``/``html``
(escaped pages), ``i18n``, ``ledger``/``ledger_pages`` (terminals, batches,
volume, exports), ``recon_pages`` (reconciliation, discrepancies, day close),
``chart`` (SVG), ``reports`` (CSV, PDF), ``cli`` (user management).
"""
