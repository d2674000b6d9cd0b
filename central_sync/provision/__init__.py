"""Field-technician lifecycle of a terminal: provision, re-key, decommission (issue 8).

* :mod:`~central_sync.provision.cli` — `lobbypay provision`, `lobbypay rekey`,
  `lobbypay decommission` (argparse only at import time).
* :mod:`~central_sync.provision.messages` — the signed re-key and decommission
  requests and central's signed answers (sans-I/O; central's handlers use them too).
* :mod:`~central_sync.provision.answers` — what the technician answered (flags,
  an answer file or prompts), checked before anything changes.
* :mod:`~central_sync.provision.provision` — the steps of `lobbypay provision`.
* :mod:`~central_sync.provision.lifecycle` — the terminal side of re-key and decommission.
* :mod:`~central_sync.provision.enrollment` — the enrollment record kept beside the key.
* :mod:`~central_sync.provision.units` — installing, enabling and removing systemd units.
"""
