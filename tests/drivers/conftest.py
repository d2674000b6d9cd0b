"""Fixtures shared by the driver tests."""

# PC/SC: a private pcscd with the vpcd virtual reader, and virtual cards (tests/drivers/vcard).
from tests.drivers.vcard.fixtures import pcscd, pcscd_session, vcards  # noqa: F401
