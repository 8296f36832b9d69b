"""Ed25519 keys: keyids, the private key store in $EVLEDGER_HOME/keys, PEM import/export."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import InputError, SigningKeyError, UsageError

MAX_PRIVATE_KEY_BYTES = 64 * 1024
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def evledger_home() -> Path:
    """`$EVLEDGER_HOME`, default `~/.config/evledger`."""
    return Path(os.environ.get("EVLEDGER_HOME") or Path.home() / ".config" / "evledger")


def keys_dir() -> Path:
    """Where private keys live (mode 0700 folder, 0600 files)."""
    return evledger_home() / "keys"


def check_name(name: str) -> str:
    """Validate a key name (also used as the checkpoint signer name: no spaces or '+')."""
    if not NAME_RE.match(name):
        raise UsageError(f"bad key name {name!r}: use letters, digits, '.', '_' or '-' (max 64)")
    return name


def keyid_of(public_key: Ed25519PublicKey) -> str:
    """Hex sha256 of the public key's DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> str:
    """SubjectPublicKeyInfo PEM text."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_pem(data: bytes | str, *, path: Path | str | None = None) -> Ed25519PublicKey:
    """Parse an Ed25519 public key from PEM (SubjectPublicKeyInfo)."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        key = serialization.load_pem_public_key(raw)
    except (ValueError, TypeError) as e:
        raise InputError("not a PEM public key", path=path) from e
    if not isinstance(key, Ed25519PublicKey):
        raise InputError("not an Ed25519 public key", path=path)
    return key


def verify_signature(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """True if the Ed25519 signature is valid."""
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class SigningKey:
    """A loaded private key with its name and keyid."""

    name: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The matching public key."""
        return self.private_key.public_key()

    @property
    def keyid(self) -> str:
        """Hex keyid (sha256 of DER SPKI)."""
        return keyid_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of `message`."""
        return self.private_key.sign(message)

    def __repr__(self) -> str:  # never leak key material into logs
        return f"SigningKey(name={self.name!r}, keyid={self.keyid[:16]}…)"


def _inside_git_repo(path: Path) -> Path | None:
    for parent in [path, *path.parents]:
        if (parent / ".git").exists():
            return parent
    return None


def _passphrase(passphrase: str | None) -> bytes | None:
    value = passphrase if passphrase is not None else os.environ.get("EVLEDGER_PASSPHRASE")
    return value.encode() if value else None


def generate_key(
    name: str, *, passphrase: str | None = None, directory: Path | None = None
) -> SigningKey:
    """Create a new Ed25519 key pair in the key store; refuses to overwrite or write into a repo."""
    check_name(name)
    directory = directory or keys_dir()
    repo = _inside_git_repo(directory.resolve())
    if repo is not None:
        raise UsageError(f"refusing to store a private key inside the git repository {repo}")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path, pub_path = directory / f"{name}.key", directory / f"{name}.pub"
    if key_path.exists() or pub_path.exists():
        raise UsageError(f"key {name!r} already exists in {directory}")
    private_key = Ed25519PrivateKey.generate()
    secret = _passphrase(passphrase)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption()
    )
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub_path.write_text(public_pem(private_key.public_key()))
    return SigningKey(name, private_key)


def load_key(
    name: str, *, passphrase: str | None = None, directory: Path | None = None
) -> SigningKey:
    """Load a private key by name from the key store."""
    check_name(name)
    key_path = (directory or keys_dir()) / f"{name}.key"
    if not key_path.is_file():
        local = [n for n, _ in list_keys(directory)]
        hint = (
            f"; choose one with --key NAME or EVLEDGER_KEY (you have: {', '.join(local)})"
            if local
            else "; create one with `evledger keys generate NAME`"
        )
        raise SigningKeyError(f"no private key named {name!r} (looked in {key_path.parent}){hint}")
    try:
        info = key_path.stat()
        if info.st_mode & 0o077:
            raise SigningKeyError(f"{key_path} is readable by others; run: chmod 600 {key_path}")
        if info.st_size > MAX_PRIVATE_KEY_BYTES:
            raise SigningKeyError(f"key {name!r} is not a PEM key (file too large): {key_path}")
        data = key_path.read_bytes()
    except OSError as e:
        raise SigningKeyError(f"cannot read key {name!r}: {e.strerror or e}") from e
    secret = _passphrase(passphrase)
    try:
        key = serialization.load_pem_private_key(data, password=secret)
    except TypeError as e:
        if secret is not None:
            raise SigningKeyError(
                f"key {name!r} is not encrypted: unset EVLEDGER_PASSPHRASE"
            ) from e
        raise SigningKeyError(f"key {name!r} is encrypted: set EVLEDGER_PASSPHRASE") from e
    except (ValueError, UnsupportedAlgorithm) as e:
        raise SigningKeyError(
            f"cannot read key {name!r}: wrong passphrase, or the file is corrupt or not a PEM "
            f"private key ({key_path})"
        ) from e
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"key {name!r} is not an Ed25519 key")
    _check_matches_public(name, key, key_path.with_suffix(".pub"))
    return SigningKey(name, key)


def _check_matches_public(name: str, key: Ed25519PrivateKey, pub_path: Path) -> None:
    """A private key file altered in one base64 digit still parses, as another key: refuse
    it when the public key stored beside it says otherwise."""
    try:
        pub = load_public_pem(pub_path.read_bytes(), path=pub_path)
    except (OSError, InputError):
        return  # no (readable) public half: the ledger's trust check still applies
    if keyid_of(pub) != keyid_of(key.public_key()):
        raise SigningKeyError(
            f"key {name!r} does not match {pub_path.name} beside it: the private key file is "
            "corrupt or was replaced"
        )


def list_keys(directory: Path | None = None) -> list[tuple[str, str]]:
    """(name, keyid) for every key pair in the store."""
    directory = directory or keys_dir()
    out = []
    for pub in sorted(directory.glob("*.pub")) if directory.is_dir() else []:
        if (directory / f"{pub.stem}.key").exists():
            out.append((pub.stem, keyid_of(load_public_pem(pub.read_bytes(), path=pub))))
    return out


def default_key_name(directory: Path | None = None) -> str:
    """`$EVLEDGER_KEY`, else the only key in the store, else 'default'."""
    if name := os.environ.get("EVLEDGER_KEY"):
        return name
    names = [name for name, _ in list_keys(directory)]
    return names[0] if len(names) == 1 else "default"
