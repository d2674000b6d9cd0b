"""Device protocols (payment terminal, card readers, scanners, printer) and their simulators.

Each protocol is a sans-I/O core, a thin transport and a simulator. This package
imports nothing else of lobbypay's.
"""
