"""Sealing: the API's secrets encrypted under a key that Neo4j never sees.

Neo4j Community has no access control below the database, so anything stored in the graph can
be read by any Cypher that reaches it. What must stay secret (webhook signing secrets, webhook
URLs, which often carry tokens, and API key hashes) is therefore stored *sealed*: AES-256-GCM
under a key derived from one master secret kept outside the database, bound (as associated data)
to the record and field it belongs to, so a sealed value copied elsewhere does not open.

The master secret comes from, in this order:

* the setting `PROVGRAPH_SECRET_KEY` (at least 32 characters; give every API host, and every
  host that runs `provgraph keys create`, the same value: they must open each other's seals);
* the file `PROVGRAPH_SECRET_KEY_FILE` names;
* else `<state root>/api/secret.key` (beside the managed Neo4j instances' state, see
  `graph.local.instance.state_root`), created on first use with mode 0600.

Two keys are derived from it with HKDF-SHA256: one seals, one keys the HMAC-SHA256 of API key
secrets, so a hash read from the graph cannot be checked offline. A sealed value reads
`pgs1:<key fingerprint>:<base64url nonce+ciphertext>`; the fingerprint (not secret, derived
separately) lets a host with the wrong key say so instead of failing obscurely.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import stat
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from provgraph.api.settings import Settings, get_settings
from provgraph.core.errors import ProvgraphError
from provgraph.graph.local.instance import state_root

log = logging.getLogger("provgraph.api.sealing")

PREFIX = "pgs1:"
MIN_SECRET_CHARS = 32
NONCE_BYTES = 12
KEY_FILE_NAME = "secret.key"


class SealingError(ProvgraphError):
    """A sealed value cannot be opened (another host's key, a damaged value) or the sealing key
    itself is unusable. The message says which value or file, never any secret."""


def default_key_file() -> Path:
    return state_root() / "api" / KEY_FILE_NAME


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


class Sealer:
    """Seals and opens the API's secrets, and keys the hashes of API key secrets."""

    def __init__(self, master: str, *, source: str) -> None:
        if len(master) < MIN_SECRET_CHARS:
            raise SealingError(
                f"the sealing key from {source} has {len(master)} characters; it needs at "
                f"least {MIN_SECRET_CHARS} (generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        raw = master.encode()
        self.source = source
        self._aead = AESGCM(_derive(raw, b"provgraph/seal/v1"))
        self._hash_key = _derive(raw, b"provgraph/api-key-hash/v1")
        self.fingerprint = _derive(raw, b"provgraph/fingerprint/v1")[:4].hex()

    # -- sealing ---------------------------------------------------------------------------
    @staticmethod
    def is_sealed(value: object) -> bool:
        return isinstance(value, str) and value.startswith(PREFIX)

    def seal(self, value: str, *, context: str) -> str:
        """`context` names the record and field (e.g. `webhook.secret:<id>`): the value opens
        only under the same context."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, value.encode(), context.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{PREFIX}{self.fingerprint}:{body}"

    def unseal(self, sealed: str, *, context: str) -> str:
        """The clear value, or SealingError naming `context` and what is wrong."""
        if not self.is_sealed(sealed):
            raise SealingError(f"{context}: the stored value is not sealed")
        fingerprint, sep, body = sealed[len(PREFIX) :].partition(":")
        if not sep:
            raise SealingError(f"{context}: the sealed value is damaged (no key fingerprint)")
        if fingerprint != self.fingerprint:
            raise SealingError(
                f"{context} was sealed with the key whose fingerprint is {fingerprint}, but this "
                f"host's key (from {self.source}) has fingerprint {self.fingerprint}: give every "
                "API host the same PROVGRAPH_SECRET_KEY"
            )
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            clear = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except (InvalidTag, ValueError) as error:
            raise SealingError(
                f"{context}: the sealed value does not open with this host's key (damaged, or "
                "copied from another record)"
            ) from error
        return clear.decode()

    def open_or_clear(self, value: str, *, context: str) -> str:
        """`unseal` for a sealed value; a value stored before sealing existed is returned as
        is (the start-up migration seals it)."""
        return self.unseal(value, context=context) if self.is_sealed(value) else value

    # -- keyed hashes ----------------------------------------------------------------------
    def keyed_hash(self, value: str) -> str:
        """HMAC-SHA256 under the derived hash key, hex: useless without the master secret."""
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()


def _check_mode(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "sealing key file %s has mode %o: other users may read it (chmod 600 it)", path, mode
        )


def read_or_create_key_file(path: Path) -> str:
    """The master secret in `path`, creating the file (mode 0600, folder 0700) when missing."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = ""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            text = path.read_text().strip()
        else:
            text = secrets.token_urlsafe(32)
            with os.fdopen(fd, "w") as handle:
                handle.write(text + "\n")
            log.info("created the sealing key file %s (mode 0600)", path)
    except OSError as error:
        raise SealingError(f"cannot read the sealing key file {path}: {error}") from error
    if not text:
        raise SealingError(f"the sealing key file {path} is empty")
    _check_mode(path)
    return text


def load_sealer(settings: Settings) -> Sealer:
    """The sealer for these settings (see the module's notes for where the key comes from)."""
    if settings.secret_key is not None:
        return Sealer(settings.secret_key.get_secret_value(), source="PROVGRAPH_SECRET_KEY")
    path = settings.secret_key_file or default_key_file()
    return _file_sealer(str(path))


@lru_cache(maxsize=8)
def _file_sealer(path: str) -> Sealer:
    return Sealer(read_or_create_key_file(Path(path)), source=path)


def default_sealer() -> Sealer:
    """The sealer of this process's own settings (environment): what the CLI uses."""
    return load_sealer(get_settings())
