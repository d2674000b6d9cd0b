"""Serial magstripe / barcode / QR scanners and what they read.

Modules (import them directly; this package file stays import-free so that
``lobbypay --help`` does not pay for pyserial):

* :mod:`drivers.scanner.errors` -- the error taxonomy (``ScanError`` and friends).
* :mod:`drivers.scanner.gost_qr` -- GOST R 56042-2014 payment QR decoder/encoder.
* :mod:`drivers.scanner.track2` -- ISO/IEC 7813 track 2 parsing, resident card
  profile, bank-card detection.
* :mod:`drivers.scanner.framing` -- sans-I/O line framer (bytes in, lines out).
* :mod:`drivers.scanner.classify` -- what a scanned line is (QR, track 2, digits).
* :mod:`drivers.scanner.serial_scanner` -- pyserial transport + asyncio wrapper.
* :mod:`drivers.scanner.simulator` -- a scanner that "scans" over a real pty.
* :mod:`drivers.scanner.samples` -- sample bills for the simulator and technicians.
* :mod:`drivers.scanner.cli` -- ``lobbypay qr ...``.
"""
