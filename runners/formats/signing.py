"""OpenSSF model-signing files beside a checkpoint: the signed root digest, recorded as is.

A model-signing (`model_signing`) signature is a Sigstore bundle JSON whose DSSE payload is
an in-toto Statement: its subject digest is the root digest over the signed files, and its
predicate lists each file (`resources`: name, algorithm, digest). evledger records the
subject digest and checks the listed sha256 digests against the files it hashed itself; it
does not verify the Sigstore signature (that needs the signer's identity policy), and says so.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SIGNATURE_NAMES = ("model.sig", "model.sig.json", "model.sigstore.json", "model.sigstore")


@dataclass
class SigningRecord:
    """What a model-signing file claims and what evledger checked of it."""

    file: Path
    root_digest: dict[str, str] | None
    resources: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def check(self, hashed: dict[str, str]) -> dict[str, Any]:
        """Compare listed sha256 digests with `hashed` (name -> sha256) of files evledger read."""
        matched = sorted(n for n, d in self.resources.items() if hashed.get(n) == d)
        differ = sorted(n for n, d in self.resources.items() if n in hashed and hashed[n] != d)
        return {
            "file": self.file.name,
            "root_digest": self.root_digest,
            "signature_checked": False,
            "signature_note": "the Sigstore signature was not verified (needs the signer's "
            "identity); only the listed file digests were compared with the files read",
            "resources_listed": len(self.resources),
            "resources_matching": matched,
            "resources_differing": differ,
            "error": self.error,
        }


def find_signatures(folder: Path) -> list[Path]:
    """Model-signing files in `folder` (by their conventional names, or *.sig)."""
    if not folder.is_dir():
        return []
    found = {p for n in SIGNATURE_NAMES if (p := folder / n).is_file()}
    found |= {p for p in folder.glob("*.sig") if p.is_file()}
    return sorted(found)


def read_signature(path: Path) -> SigningRecord:
    """Parse a Sigstore bundle's DSSE in-toto payload; errors are recorded, never raised."""
    try:
        bundle = json.loads(path.read_text("utf-8"))
        env = bundle.get("dsseEnvelope") or bundle
        payload = json.loads(base64.b64decode(env["payload"], validate=True))
        subject = payload["subject"][0]
        digest = {str(k): str(v) for k, v in dict(subject["digest"]).items()}
        resources = {}
        for r in (payload.get("predicate") or {}).get("resources", []) or []:
            if str(r.get("algorithm", "sha256")).lower() == "sha256":
                resources[str(r["name"])] = str(r["digest"])
        return SigningRecord(path, digest, resources)
    except Exception as exc:
        return SigningRecord(
            path, None, error=f"unreadable model-signing file: {type(exc).__name__}"
        )
