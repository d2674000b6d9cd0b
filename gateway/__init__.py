"""The ATM-side gateway: OSMP check/pay and a JSON API (aiohttp)."""
