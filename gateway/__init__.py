"""The ATM-side gateway: OSMP check/pay and a signed JSON API (aiohttp); docs/gateway.md.

* :mod:`gateway.app` — ``create_app(settings)``: the aiohttp application.
* :mod:`gateway.server` — ``serve(settings)``: sockets, TLS, signals, systemd.
* :mod:`gateway.service` — :class:`~gateway.service.PaymentService`: check and
  pay against the catalog, the journal and the index, whatever the protocol.
* :mod:`gateway.osmp` — the OSMP protocol core, sans-I/O (parameters in, XML out).
* :mod:`gateway.osmp_handlers`, :mod:`gateway.json_handlers`, :mod:`gateway.routes`.
* :mod:`gateway.agents` — the agents file; :mod:`gateway.security` — Basic
  auth, HMAC signatures, nonces, rate limits.
* :mod:`gateway.index` — the payment index (derived from the journal) and
  registries; :mod:`gateway.registry` — CSV / JSON registries.
* :mod:`gateway.money`, :mod:`gateway.identifiers` — exact sums, accounts, ids.
* :mod:`gateway.errors` — the error taxonomy.

Nothing is imported here, so ``lobbypay --help`` stays fast.
"""
