"""Widgets of the kiosk, one module per screen area (keypad, chrome, charts, rows)."""
