"""Operator commands for two-step sign-in: `flask two-factor new-key`, `two-factor rotate-key`.

Rotation: put a new key first in FLASK_TOTP_ENCRYPTION_KEYS (keep the old one after it),
restart, run `flask two-factor rotate-key`, then remove the old key (docs/security.md)."""

import click
from cryptography.fernet import Fernet, InvalidToken
from flask.cli import AppGroup

from portal.extensions import db
from portal.twofa import service

two_factor_cli = AppGroup("two-factor", help="Two-step sign-in: the encryption keys.")


@two_factor_cli.command("new-key")
def new_key_command() -> None:
    """Print a new random key for FLASK_TOTP_ENCRYPTION_KEYS."""
    click.echo(Fernet.generate_key().decode())


@two_factor_cli.command("rotate-key")
def rotate_key_command() -> None:
    """Re-encrypt every authenticator secret with the first key of TOTP_ENCRYPTION_KEYS."""
    try:
        count = service.rotate_all()
    except InvalidToken:
        db.session.rollback()
        raise click.ClickException(
            "a secret opens with none of the keys in TOTP_ENCRYPTION_KEYS: nothing was changed;"
            " add the key it was encrypted with"
        ) from None
    db.session.commit()
    click.echo(f"{count} secret(s) re-encrypted with the first key")
