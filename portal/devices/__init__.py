"""Signed-in devices: a server-side record for each signed-in session, listed and ended from
the account page."""
