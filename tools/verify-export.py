#!/usr/bin/env python3
"""Check a Braid export (JSON Lines) on its own, from the hash spec alone.

hash = SHA-256("braid/v1\n" u64(position) str(aggregate_type) str(aggregate_id)
u64(version) str(event_type) u64(schema) str(actor) str(occurred_at)
str(command_id) str(data) parent_hash), u64 = 8 bytes big-endian,
str(s) = u64(len(s)) + UTF-8 bytes, parent_hash 32 raw bytes (zeros at 1);
a column named in the line's "raw" object hashes raw's base64-decoded bytes.
Prints "intact: N events, head HEX" or "broken at position P: WHAT".
Exit 0 intact, 1 broken, 2 could not run.  Usage: verify-export.py FILE
"""
import base64, binascii, codecs, hashlib, json, struct, sys

codecs.register_error("perbyte", lambda err: ("\ufffd" * (err.end - err.start), err.end))
def u64(n): return struct.pack(">Q", n)

TEXT = {"aggregate_type", "aggregate_id", "event_type", "actor", "occurred_at", "command_id", "data"}

def text(e, col):
    """The exact bytes of a text column: raw's (not UTF-8) when the line has them."""
    raw = e.get("raw", {})
    if not set(raw) <= TEXT:
        raise ValueError(f"raw names columns that are not text: {sorted(set(raw) - TEXT)}")
    if col not in raw:
        return e[col].encode("utf-8")
    b = base64.b64decode(raw[col], validate=True)
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        if b.decode("utf-8", "perbyte") == e[col]:
            return b
    raise ValueError(f"raw {col} does not read as {col}")

def check(f):
    prev, n, versions = bytes(32), 0, {}
    for lineno, line in enumerate(f, 1):
        try:
            e = json.loads(line)
            ph, h = bytes.fromhex(e["parent_hash"]), bytes.fromhex(e["hash"])
            s = lambda col: u64(len(text(e, col))) + text(e, col)
            body = (b"braid/v1\n" + u64(e["position"]) + s("aggregate_type") + s("aggregate_id")
                    + u64(e["version"]) + s("event_type") + u64(e["schema"]) + s("actor")
                    + s("occurred_at") + s("command_id") + s("data") + ph)
        except (ValueError, KeyError, TypeError, AttributeError, struct.error, binascii.Error) as err:
            sys.exit(print(f"line {lineno}: not an event: {err!r}", file=sys.stderr) or 2)
        p = e["position"]
        if p != n + 1:
            return f"broken at position {n + 1}: position gap: expected position {n + 1}, found {p}"
        if ph != prev:
            return f"broken at position {p}: parent hash mismatch: expected {prev.hex()}, found {ph.hex()}"
        if hashlib.sha256(body).digest() != h:
            return f"broken at position {p}: hash mismatch: expected {hashlib.sha256(body).hexdigest()}, found {h.hex()}"
        key = (text(e, "aggregate_type"), text(e, "aggregate_id"))
        if e["version"] != versions.get(key, 0) + 1:
            return f"broken at position {p}: version gap in {key[0]} {key[1]}: expected version {versions.get(key, 0) + 1}, found {e['version']}"
        versions[key], prev, n = e["version"], h, p
    return f"intact: {n} events, head {prev.hex()}"

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(print(__doc__, file=sys.stderr) or 2)
    try:
        with open(sys.argv[1], encoding="utf-8", newline="\n") as f:
            verdict = check(f)
    except (OSError, UnicodeDecodeError) as err:
        sys.exit(print(f"verify-export: {err}", file=sys.stderr) or 2)
    print(verdict)
    sys.exit(0 if verdict.startswith("intact") else 1)
