"""The verifier's own identity, for the verdict cache.

A stored verdict is reused for the same code, problem and device. Without the verifier in that
key, a database kept across an upgrade would return the old verifier's `correct` for a candidate
the new one rejects (a column maximum started at 0, which the negative trial's gap below zero
now catches): a verdict is the verifier's as much as the candidate's. The digest covers every source file of
this package, so any change to a rule or a trial starts a fresh cache without a version to bump.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def verifier_digest() -> str:
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
