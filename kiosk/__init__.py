"""The resident kiosk (Textual) and the one-command demo."""
