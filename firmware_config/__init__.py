"""Typed configuration, device identity, provisioning and the `lobbypay` dispatcher.

This package is the bottom layer: it imports nothing else of lobbypay's.
"""
