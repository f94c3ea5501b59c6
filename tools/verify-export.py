#!/usr/bin/env python3
"""Check a Braid export (JSON Lines) on its own, from the hash spec alone.

Format 1 (no "format" key): hash = SHA-256("braid/v1\n" u64(position)
str(aggregate_type) str(aggregate_id) u64(version) str(event_type) u64(schema)
str(actor) str(occurred_at) str(command_id) str(data) parent_hash).
Format 2 ("format":2): hash = SHA-256("braid/v2\n" ... str(command_id)
commitment parent_hash), the 32 commitment bytes in place of str(data), and
commitment = SHA-256("braid/v2 payload\n" salt data) with the line's "salt";
an erased payload ("data":null, "erased_by":P, no salt) is checked from its
commitment alone and counted as erased, P must be a later "erased" event.
u64 = 8 bytes big-endian, str(s) = u64(len(s)) + UTF-8 bytes, parent_hash 32
raw bytes (zeros at 1); a column named in the line's "raw" object hashes
raw's base64-decoded bytes.
Prints "intact: N events, head HEX" (with "; K payloads erased" when K > 0)
or "broken at position P: WHAT".
Exit 0 intact, 1 broken, 2 could not run.  Usage: verify-export.py FILE
"""
import base64, binascii, codecs, hashlib, json, struct, sys

codecs.register_error("perbyte", lambda err: ("\ufffd" * (err.end - err.start), err.end))
def u64(n): return struct.pack(">Q", n)

TEXT = {"aggregate_type", "aggregate_id", "event_type", "actor", "occurred_at", "command_id", "data", "kept"}

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

def h32(e, key):
    v = e[key]
    if not isinstance(v, str) or len(v) != 64 or v != v.lower():
        raise ValueError(f"{key}: want 64 lowercase hex digits")
    return bytes.fromhex(v)

def check(f):
    prev, n, versions, erased, waiting = bytes(32), 0, {}, 0, {}
    for lineno, line in enumerate(f, 1):
        try:
            e = json.loads(line)
            ph, h = h32(e, "parent_hash"), h32(e, "hash")
            s = lambda col: u64(len(text(e, col))) + text(e, col)
            fmt = e.get("format", 1)
            head = (u64(e["position"]) + s("aggregate_type") + s("aggregate_id")
                    + u64(e["version"]) + s("event_type") + u64(e["schema"]) + s("actor")
                    + s("occurred_at") + s("command_id"))
            payload = None  # None: v1 or erased; else (salt, data)
            if fmt == 1:
                if any(k in e for k in ("salt", "commitment", "erased_by", "kept")):
                    raise ValueError("salt, commitment, erased_by and kept belong to format 2 lines only")
                body = b"braid/v1\n" + head + s("data") + ph
            elif fmt == 2:
                commitment = h32(e, "commitment")
                body = b"braid/v2\n" + head + commitment + ph
                if "erased_by" in e:
                    if e.get("data") is not None or "salt" in e or not isinstance(e["erased_by"], int) or e["erased_by"] < 1:
                        raise ValueError("an erased payload has data null, no salt and a position in erased_by")
                else:
                    payload = (h32(e, "salt"), text(e, "data"))
            else:
                raise ValueError(f"format {fmt}: want 1 or 2")
        except (ValueError, KeyError, TypeError, AttributeError, struct.error, binascii.Error) as err:
            sys.exit(print(f"line {lineno}: not an event: {err!r}", file=sys.stderr) or 2)
        p = e["position"]
        if p != n + 1:
            return f"broken at position {n + 1}: position gap: expected position {n + 1}, found {p}"
        if ph != prev:
            return f"broken at position {p}: parent hash mismatch: expected {prev.hex()}, found {ph.hex()}"
        if payload is not None and hashlib.sha256(b"braid/v2 payload\n" + payload[0] + payload[1]).digest() != commitment:
            return f"broken at position {p}: payload commitment mismatch: the salt and data stored do not give the commitment {commitment.hex()}"
        if fmt == 2 and "erased_by" in e and e["erased_by"] <= p:
            return f"broken at position {p}: payload erased by position {e['erased_by']}, which is not later in the log"
        if p in waiting and e["event_type"] != "erased":
            return f"broken at position {waiting[p]}: payload erased by position {p}, which is a {e['event_type']} event, not erased"
        if hashlib.sha256(body).digest() != h:
            return f"broken at position {p}: hash mismatch: expected {hashlib.sha256(body).hexdigest()}, found {h.hex()}"
        key = (text(e, "aggregate_type"), text(e, "aggregate_id"))
        if e["version"] != versions.get(key, 0) + 1:
            return f"broken at position {p}: version gap in {key[0]} {key[1]}: expected version {versions.get(key, 0) + 1}, found {e['version']}"
        versions[key], prev, n = e["version"], h, p
        waiting.pop(p, None)
        if fmt == 2 and "erased_by" in e:
            erased += 1
            waiting.setdefault(e["erased_by"], p)
    for by, at in sorted(waiting.items(), key=lambda kv: kv[1])[:1]:
        return f"broken at position {at}: payload erased by position {by}, which is not in the log"
    verdict = f"intact: {n} events, head {prev.hex()}"
    return verdict + (f"; {erased} payloads erased" if erased else "")

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
