"""The kiosk's screens, one module each; they post and receive messages and do no I/O."""
