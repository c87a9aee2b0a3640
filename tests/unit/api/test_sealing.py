"""Sealing without a database: round trips, the wrong key, damaged values, the key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from provgraph.api.sealing import (
    PREFIX,
    Sealer,
    SealingError,
    load_sealer,
    read_or_create_key_file,
)
from provgraph.api.settings import Settings

KEY_A = "a" * 16 + "-first-test-sealing-key"
KEY_B = "b" * 16 + "-other-test-sealing-key"


def test_round_trip_is_bound_to_its_context() -> None:
    sealer = Sealer(KEY_A, source="test")
    sealed = sealer.seal("whsec-value-1234", context="webhook.secret:s1")
    assert sealed.startswith(f"{PREFIX}{sealer.fingerprint}:")
    assert "whsec-value-1234" not in sealed
    assert sealer.unseal(sealed, context="webhook.secret:s1") == "whsec-value-1234"
    # Random nonces: sealing the same value twice gives different text.
    assert sealer.seal("whsec-value-1234", context="webhook.secret:s1") != sealed
    with pytest.raises(SealingError, match="copied from another record"):
        sealer.unseal(sealed, context="webhook.secret:s2")
    with pytest.raises(SealingError, match="copied from another record"):
        sealer.unseal(sealed, context="webhook.url:s1")


def test_wrong_key_names_both_fingerprints_and_never_the_value() -> None:
    first = Sealer(KEY_A, source="test")
    other = Sealer(KEY_B, source="PROVGRAPH_SECRET_KEY")
    assert first.fingerprint != other.fingerprint
    sealed = first.seal("https://hooks.example/x?token=t0k3n", context="webhook.url:s1")
    with pytest.raises(SealingError) as error:
        other.unseal(sealed, context="webhook.url:s1")
    message = str(error.value)
    assert "webhook.url:s1" in message
    assert first.fingerprint in message and other.fingerprint in message
    assert "PROVGRAPH_SECRET_KEY" in message and "t0k3n" not in message


def test_damaged_and_unsealed_values_are_errors() -> None:
    sealer = Sealer(KEY_A, source="test")
    sealed = sealer.seal("value", context="c")
    body_start = len(PREFIX) + len(sealer.fingerprint) + 1
    flipped = (
        sealed[:body_start] + ("A" if sealed[body_start] != "A" else "B") + sealed[body_start + 1 :]
    )
    with pytest.raises(SealingError, match="does not open"):
        sealer.unseal(flipped, context="c")
    with pytest.raises(SealingError, match="no key fingerprint"):
        sealer.unseal(PREFIX + "garbage", context="c")
    with pytest.raises(SealingError, match="not sealed"):
        sealer.unseal("clear text", context="c")
    assert sealer.open_or_clear("clear text", context="c") == "clear text"
    assert sealer.open_or_clear(sealed, context="c") == "value"


def test_keyed_hash_depends_on_the_key() -> None:
    first, other = Sealer(KEY_A, source="a"), Sealer(KEY_B, source="b")
    assert first.keyed_hash("s") == Sealer(KEY_A, source="again").keyed_hash("s")
    assert first.keyed_hash("s") != other.keyed_hash("s")
    assert len(first.keyed_hash("s")) == 64


def test_short_key_is_refused_with_its_source() -> None:
    with pytest.raises(SealingError, match="PROVGRAPH_SECRET_KEY.*at least 32"):
        Sealer("too-short", source="PROVGRAPH_SECRET_KEY")


def test_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "state" / "api" / "secret.key"
    made = read_or_create_key_file(path)
    assert len(made) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert read_or_create_key_file(path) == made  # reused, not replaced
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    with pytest.raises(SealingError, match="empty"):
        read_or_create_key_file(empty)


def test_settings_choose_the_key(tmp_path: Path) -> None:
    from_setting = load_sealer(Settings(secret_key=KEY_A))  # type: ignore[call-arg]
    assert from_setting.fingerprint == Sealer(KEY_A, source="x").fingerprint
    assert from_setting.source == "PROVGRAPH_SECRET_KEY"
    path = tmp_path / "named.key"
    from_file = load_sealer(Settings(secret_key_file=path))  # type: ignore[call-arg]
    assert path.exists() and from_file.source == str(path)
    assert from_file.fingerprint == Sealer(path.read_text().strip(), source="y").fingerprint
