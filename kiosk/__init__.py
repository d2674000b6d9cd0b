"""The resident kiosk (Textual) and the one-command demo.

* :mod:`kiosk.app` — :class:`~kiosk.app.KioskApp`, the Textual app (``lobbypay kiosk``);
  :mod:`kiosk.controller` the resident's flow; :mod:`kiosk.screens` and
  :mod:`kiosk.widgets` the screens (no I/O), :mod:`kiosk.messages` what they post.
* :mod:`kiosk.services` — :class:`~kiosk.services.KioskServices`, all I/O: journal,
  catalog, devices (:mod:`kiosk.devices`, back-ends by name), write-ahead card payments
  and start-up recovery (:mod:`kiosk.payment`), the journal read model (:mod:`kiosk.history`).
* :mod:`kiosk.model` — the session as values (amounts, fees, readings); :mod:`kiosk.i18n`
  every text in Russian and English; :mod:`kiosk.documents` receipts and statements.
* :mod:`kiosk.app_cli` — ``lobbypay kiosk [--serve]``; :mod:`kiosk.demo` and
  :mod:`kiosk.demo_ui` — ``lobbypay demo``.
"""
