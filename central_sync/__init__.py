"""The journal, the local catalog, the signed sync protocol and the central ledger.

Imports only :mod:`firmware_config` of lobbypay's packages.
"""
