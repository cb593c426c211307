"""Key files, keygen and signature verification."""

from __future__ import annotations

import os
import stat

import pytest

from pyastore import keys
from pyastore.errors import KeyFileError


def test_keygen_writes_secret_0600_and_public(tmp_path):
    secret, public = keys.keygen(tmp_path / "alice")
    assert secret.name == "alice.key" and public.name == "alice.pub"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    signing = keys.SigningKey.load(secret)
    assert keys.load_public_key(public) == signing.public_key
    assert public.read_text().startswith("ed25519-public:")


def test_keygen_refuses_to_overwrite(tmp_path):
    keys.keygen(tmp_path / "alice")
    before = (tmp_path / "alice.key").read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        keys.keygen(tmp_path / "alice")
    assert (tmp_path / "alice.key").read_bytes() == before


def test_keygen_refuses_when_only_the_public_half_exists(tmp_path):
    (tmp_path / "bob.pub").write_text("x")
    with pytest.raises(KeyFileError, match="bob.pub: already exists"):
        keys.keygen(tmp_path / "bob")
    assert not (tmp_path / "bob.key").exists()


def test_wrong_kind_of_key_file_is_named(tmp_path):
    secret, public = keys.keygen(tmp_path / "k")
    with pytest.raises(KeyFileError, match="secret key, expected a public key"):
        keys.load_public_key(secret)
    with pytest.raises(KeyFileError, match="public key, expected a secret key"):
        keys.load_secret_seed(public)


@pytest.mark.parametrize("content", [b"", b"hello", b"ed25519-public:abcd", b"\xff\xfe\x00binary",
                                     b"ed25519-public:" + b"g" * 64, b"x" * 5000])
def test_malformed_key_files(tmp_path, content):
    path = tmp_path / "bad.pub"
    path.write_bytes(content)
    with pytest.raises(KeyFileError, match="bad.pub"):
        keys.load_public_key(path)


def test_missing_and_directory_key_files(tmp_path):
    with pytest.raises(KeyFileError, match="nope.pub: no such file"):
        keys.load_public_key(tmp_path / "nope.pub")
    with pytest.raises(KeyFileError, match="is a directory"):
        keys.load_public_key(tmp_path)


def test_bare_hex_public_key_accepted():
    key = keys.SigningKey(bytes(32))
    assert keys.parse_public_key(key.public_key.hex()) == key.public_key
    assert keys.parse_public_key(key.public_key.hex().upper()) == key.public_key


def test_fast_and_public_verification_agree():
    key = keys.SigningKey(bytes(range(32)))
    message = b"pyastore container signature v1\n"
    signature = key.sign(message)
    assert keys._verify_fast(key.public_key, message, signature) is True
    assert keys._verify_public_api(key.public_key, message, signature) is True
    for i in range(0, 64, 7):
        forged = bytearray(signature)
        forged[i] ^= 1
        assert keys._verify_fast(key.public_key, message, bytes(forged)) is False
        assert keys._verify_public_api(key.public_key, message, bytes(forged)) is False
    assert keys.verify(key.public_key, message + b"x", signature) is False
    assert keys.verify(key.public_key[:31], message, signature) is False


HEX64 = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "text, store_key, payload_digest, public_key",
    [
        (HEX64, True, False, True),
        ("sha256:" + HEX64, False, True, False),
        (HEX64.upper(), False, False, False),  # stored text is lowercase only
        ("sha256:" + HEX64.upper(), False, False, False),
        ("SHA256:" + HEX64, False, False, False),
        (HEX64[:-1], False, False, False),
        (HEX64 + "0", False, False, False),
        (HEX64[:-1] + "g", False, False, False),
        (" " + HEX64[1:], False, False, False),
        ("sha512:" + HEX64, False, False, False),
        ("", False, False, False),
        (HEX64.encode(), False, False, False),  # bytes are not text
        (None, False, False, False),
    ],
)
def test_hex_text_checks(text, store_key, payload_digest, public_key):
    assert keys.is_store_key(text) is store_key
    assert keys.is_payload_digest(text) is payload_digest
    assert keys.is_public_key_hex(text) is public_key


def test_signature_hex_is_128_lowercase_hex():
    assert keys.is_signature_hex(HEX64 * 2)
    assert not keys.is_signature_hex(HEX64)
    assert not keys.is_signature_hex((HEX64 * 2).upper())
    assert keys.is_hex("", 0) and keys.is_hex("ab", 2) and not keys.is_hex("AB", 2)
