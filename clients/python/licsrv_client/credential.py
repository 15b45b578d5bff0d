"""The customer's credential file (from the portal's "Download sign-in file"), opened with their password.

    credential = open_credential_file(Path("acme-credential.txt").read_text(), password)
    session = await client.start_session(None, hardware_id, "2.1.0", credential=credential)

The file holds an account credential sealed with a key derived from the password (argon2id → secretbox);
the password never leaves the machine. A password change on the portal makes the file useless."""

from __future__ import annotations

import base64

import nacl.exceptions
import nacl.pwhash
import nacl.secret

FORMAT = "licsrv-credential/1"


class CredentialFileError(ValueError):
    """Not a credential file, or the password does not open it."""


def open_credential_file(text: str, password: str) -> str:
    """The account credential; argon2id takes ~70 ms, so async programs call this in an executor."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or ":" not in line:
            continue
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    if fields.get("format") != FORMAT or fields.get("kdf") != "argon2id":
        raise CredentialFileError("not a credential file of this format")
    try:
        salt = base64.b64decode(fields["salt"], validate=True)
        box = base64.b64decode(fields["box"], validate=True)
        key = nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE,
            password.encode(),
            salt,
            opslimit=int(fields["opslimit"]),
            memlimit=int(fields["memlimit"]),
        )
        return nacl.secret.SecretBox(key).decrypt(box).decode()
    except (KeyError, ValueError, nacl.exceptions.CryptoError) as exc:
        raise CredentialFileError("the password does not open this file, or the file is damaged") from exc
