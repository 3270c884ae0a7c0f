#!/usr/bin/env python3
"""Checks an `authledger ledger export` file offline, with only the published seal keys.

Usage: verify_ledger_export.py EXPORT.jsonl KEYS.json
  KEYS.json: the JWKS from /.well-known/ledger-keys (or `authledger ledger keys`), kept apart
  from the database. Exits 0 when the file verifies, 1 at the first break (said on stderr).

The algorithm (docs/audit.md, src/ledger_export.rs):
  canonical(v) = JSON with every object's keys sorted, no whitespace, UTF-8
  line 1: {"format": "authledger-ledger-export/1", "from_link": A, "to_link": B, "previous_digest": HEX, ...}
  event lines, links A..B in order: digest = SHA-256(previous || canonical(event)) must equal "digest"
  seal lines: Ed25519 signature by key "kid" over canonical({digest, kid, link, position, sealed_at})
              and "digest" equal to the digest of that link
Needs the `cryptography` package for Ed25519.
"""
import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "authledger-ledger-export/1"


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fail(line, why):
    print(f"line {line}: {why}", file=sys.stderr)
    sys.exit(1)


def main(export_path, keys_path):
    with open(keys_path, encoding="utf-8") as f:
        keys = {k["kid"]: Ed25519PublicKey.from_public_bytes(b64url(k["x"])) for k in json.load(f)["keys"]}
    with open(export_path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    if not lines or lines[0].get("format") != FORMAT:
        fail(1, f"not a ledger export ({FORMAT})")
    header = lines[0]
    previous = bytes.fromhex(header["previous_digest"])
    link = header["from_link"]
    digests = {}
    events = seals = 0
    for number, line in enumerate(lines[1:], start=2):
        if line.get("type") == "event":
            if line.get("link") != link:
                fail(number, f"expected link {link}")
            digest = hashlib.sha256(previous + canonical(line["event"])).digest()
            if digest.hex() != line.get("digest"):
                fail(number, f"altered: the event at link {link} does not hash to its digest")
            digests[link] = digest.hex()
            previous = digest
            link += 1
            events += 1
        elif line.get("type") == "seal":
            key = keys.get(line.get("kid"))
            signed = canonical({k: line[k] for k in ("digest", "kid", "link", "position", "sealed_at")})
            try:
                if key is None:
                    raise InvalidSignature()
                key.verify(b64url(line["signature"]), signed)
            except InvalidSignature:
                fail(number, f"bad seal: the seal of link {line.get('link')} is not signed by key {line.get('kid')}")
            if digests.get(line["link"]) != line["digest"]:
                fail(number, f"the seal of link {line['link']} does not name that link's digest")
            seals += 1
        else:
            fail(number, "neither an event nor a seal")
    if link <= header["to_link"]:
        fail(len(lines), f"missing: the file ends at link {link - 1}, before link {header['to_link']}")
    print(json.dumps({"events": events, "seals": seals}))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2])
