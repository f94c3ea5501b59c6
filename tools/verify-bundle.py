#!/usr/bin/env python3
"""Check a Braid proof bundle (GET /tickets/{id}/proof) offline, from the specs alone.

- the checkpoint (C2SP tlog-checkpoint, a signed note) carries a valid Ed25519
  signature by the log key VKEY (name+hash+base64(0x01 || key)); the origin is
  the key's name;
- with --cosigned-by WVKEY (repeatable): it also carries a valid C2SP
  tlog-cosignature (cosignature/v1, name+hash+base64(0x04 || key)) by that
  witness, a further signature line of the same note;
- every event's braid hash recomputes from its fields (docs/braid.md, as
  tools/verify-export.py), it is of the bundle's aggregate, versions run 1, 2, ...;
- every event's leaf SHA-256(0x00 || braid hash) at index position-1 is in
  the checkpoint's tree by its RFC 6962 / RFC 9162 inclusion proof.
Ed25519 verification is RFC 8032's, in pure Python (--selftest runs its
test vectors). Standard library only.

Prints "intact: ..." or "refused: WHAT". Exit 0 intact, 1 refused, 2 could not run.
Usage: verify-bundle.py BUNDLE [--vkey VKEY] [--cosigned-by WVKEY]...
       verify-bundle.py --selftest
"""
import base64, binascii, codecs, hashlib, json, struct, sys

# --- Ed25519 verification, RFC 8032 section 5.1.7 (after its section 6 code).
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
def inv(x): return pow(x, P - 2, P)
D = -121665 * inv(121666) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

def add(a, b):
    A, B = (a[1] - a[0]) * (b[1] - b[0]) % P, (a[1] + a[0]) * (b[1] + b[0]) % P
    C, Dd = 2 * a[3] * b[3] * D % P, 2 * a[2] * b[2] % P
    E, F, G, H = B - A, Dd - C, Dd + C, B + A
    return (E * F % P, G * H % P, F * G % P, E * H % P)

def mul(s, pt):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = add(q, pt)
        pt, s = add(pt, pt), s >> 1
    return q

def equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0

def recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * inv(D * y * y + 1) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    return P - x if (x & 1) != sign else x

GY = 4 * inv(5) % P
GX = recover_x(GY, 0)
BASE = (GX, GY, 1, GX * GY % P)

def decompress(s):
    y = int.from_bytes(s, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)

def ed25519_verify(public, msg, sig):
    if len(public) != 32 or len(sig) != 64:
        return False
    A, R = decompress(public), decompress(sig[:32])
    s = int.from_bytes(sig[32:], "little")
    if A is None or R is None or s >= L:
        return False
    h = int.from_bytes(hashlib.sha512(sig[:32] + public + msg).digest(), "little") % L
    return equal(mul(s, BASE), add(R, mul(h, A)))

RFC8032_VECTORS = [  # section 7.1, TEST 1, 2, 3: public key, message, signature
    ("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]

def selftest():
    for pub, msg, sig in RFC8032_VECTORS:
        pub, msg, sig = bytes.fromhex(pub), bytes.fromhex(msg), bytes.fromhex(sig)
        if not ed25519_verify(pub, msg, sig):
            return "RFC 8032 vector does not verify"
        bad = bytearray(sig); bad[5] ^= 1
        if ed25519_verify(pub, msg, bytes(bad)) or ed25519_verify(pub, msg + b"x", sig):
            return "RFC 8032 vector verifies with a changed signature or message"
    return None

# --- Signed notes (C2SP signed-note) and keys.
class Refused(Exception):
    pass

def parse_vkey(vkey, alg):
    try:
        name, h, b64 = vkey.split("+", 2)
        key = base64.b64decode(b64, validate=True)
        khash = bytes.fromhex(h)
    except (ValueError, binascii.Error):
        raise ValueError(f"verifier key {vkey!r}: want name+hash+base64")
    if len(khash) != 4 or len(key) != 33 or key[0] != alg:
        raise ValueError(f"verifier key {vkey!r}: not an Ed25519 key of type 0x{alg:02x}")
    if hashlib.sha256(name.encode() + b"\n" + key).digest()[:4] != khash:
        raise ValueError(f"verifier key {vkey!r}: its hash does not match its name and key")
    return name, khash, key[1:]

def parse_note(note):
    text, sep, sigs = note.partition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise Refused("the checkpoint is not a signed note")
    lines = []
    for line in sigs[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            raise Refused(f"the checkpoint's signature line {line!r} is malformed")
        name, _, b64 = line[2:].rpartition(" ")
        try:
            sig = base64.b64decode(b64, validate=True)
        except binascii.Error:
            raise Refused(f"the checkpoint's signature line {line!r} is malformed")
        if len(sig) < 5:
            raise Refused(f"the checkpoint's signature line {line!r} is malformed")
        lines.append((name, sig[:4], sig[4:]))
    return (text + "\n").encode(), lines

def check_signatures(note, vkey, witnesses):
    text, sigs = parse_note(note)
    name, khash, pub = vkey
    mine = [s for n, h, s in sigs if n == name and h == khash]
    if not mine or not all(ed25519_verify(pub, text, s) for s in mine):
        raise Refused(f"the checkpoint does not open with key {name}: no valid signature by it")
    cosigned = []
    for wname, whash, wpub in witnesses:
        theirs = [s for n, h, s in sigs if n == wname and h == whash]
        if not theirs:
            raise Refused(f"the checkpoint carries no cosignature by witness {wname}")
        for s in theirs:
            if len(s) != 72:
                raise Refused(f"the cosignature of witness {wname} on the checkpoint is invalid")
            t = struct.unpack(">Q", s[:8])[0]
            if not ed25519_verify(wpub, b"cosignature/v1\ntime %d\n" % t + text, s[8:]):
                raise Refused(f"the cosignature of witness {wname} on the checkpoint is invalid")
        cosigned.append(wname)
    return text.decode(), cosigned

def parse_checkpoint(text):
    lines = text.split("\n")
    if len(lines) < 4:
        raise Refused("the checkpoint wants an origin, a size and a root line")
    origin, size, root = lines[0], lines[1], lines[2]
    if not size.isdigit() or str(int(size)) != size:
        raise Refused(f"the checkpoint's size {size!r} is not a decimal number")
    try:
        root = base64.b64decode(root, validate=True)
    except binascii.Error:
        root = b""
    if len(root) != 32:
        raise Refused("the checkpoint's root is not 32 bytes in base64")
    return origin, int(size), root

# --- The braid hash (docs/braid.md), as tools/verify-export.py computes it.
codecs.register_error("perbyte", lambda err: ("\ufffd" * (err.end - err.start), err.end))
def u64(n): return struct.pack(">Q", n)
TEXT = {"aggregate_type", "aggregate_id", "event_type", "actor", "occurred_at", "command_id", "data"}

def text_bytes(e, col):
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

def braid_hash(e):
    s = lambda col: u64(len(text_bytes(e, col))) + text_bytes(e, col)
    ph = bytes.fromhex(e["parent_hash"])
    if len(ph) != 32:
        raise ValueError("parent_hash is not 32 bytes")
    head = (u64(e["position"]) + s("aggregate_type") + s("aggregate_id") + u64(e["version"])
            + s("event_type") + u64(e["schema"]) + s("actor") + s("occurred_at") + s("command_id"))
    if e.get("format", 1) == 1:
        return hashlib.sha256(b"braid/v1\n" + head + s("data") + ph).digest()
    if e["format"] != 2:
        raise ValueError(f"format {e['format']}: want 1 or 2")
    # braid v2 (docs/braid.md): the body holds the payload's commitment; a
    # payload that is there must give it with its salt (an erased one,
    # "data": null, is checked from the commitment alone).
    commitment = bytes.fromhex(e["commitment"])
    if len(commitment) != 32:
        raise ValueError("commitment is not 32 bytes")
    if e.get("erased_by") is None:
        salt = bytes.fromhex(e["salt"])
        if hashlib.sha256(b"braid/v2 payload\n" + salt + text_bytes(e, "data")).digest() != commitment:
            return None  # the payload is not the one committed to: tampered
    return hashlib.sha256(b"braid/v2\n" + head + commitment + ph).digest()

# --- RFC 9162 section 2.1.3.2: the root an inclusion proof leads to.
def root_from_proof(index, size, leaf, proof):
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None

def check(b, vkey, witnesses):
    if b.get("format") != "braid-proof-bundle/v1":
        raise ValueError(f"format {b.get('format')!r}, want 'braid-proof-bundle/v1'")
    text, cosigned = check_signatures(b["checkpoint"], vkey, witnesses)
    origin, size, root = parse_checkpoint(text)
    if origin != vkey[0]:
        raise Refused(f"the checkpoint's origin {origin!r} is not the key's name {vkey[0]!r}")
    if not b["events"]:
        raise Refused("the bundle holds no event")
    for i, be in enumerate(b["events"]):
        e = json.loads(be["event"]) if isinstance(be["event"], str) else be["event"]
        pos = e["position"]
        if braid_hash(e) != bytes.fromhex(e["hash"]):
            raise Refused(f"event at position {pos}: its hash is not the braid hash of its fields (tampered)")
        if (e["aggregate_type"], e["aggregate_id"]) != (b["aggregate_type"], b["aggregate_id"]):
            raise Refused(f"event at position {pos} is of {e['aggregate_type']} {e['aggregate_id']}, not {b['aggregate_type']} {b['aggregate_id']}")
        if e["version"] != i + 1:
            raise Refused(f"event at position {pos} has version {e['version']}, want {i + 1}")
        if not 1 <= pos <= size:
            raise Refused(f"event at position {pos} is beyond the checkpoint's tree of {size}")
        proof = []
        for h in be["proof"]:
            try:
                p = base64.b64decode(h, validate=True)
            except binascii.Error:
                p = b""
            if len(p) != 32:
                raise Refused(f"event at position {pos}: proof hash {h!r} is not 32 bytes in base64")
            proof.append(p)
        leaf = hashlib.sha256(b"\x00" + bytes.fromhex(e["hash"])).digest()
        if root_from_proof(pos - 1, size, leaf, proof) != root:
            raise Refused(f"event at position {pos}: its inclusion proof does not lead to the checkpoint's root")
    line = (f"intact: {len(b['events'])} events, each in the tree of {origin} at size {size} "
            f"(root {base64.b64encode(root).decode()})")
    if cosigned:
        line += "\ncosigned by " + ", ".join(cosigned)
    return line

def main(argv):
    if argv == ["--selftest"]:
        err = selftest()
        print(err or "ed25519: RFC 8032 test vectors verify")
        return 1 if err else 0
    path, vkey, wkeys, i = None, None, [], 0
    while i < len(argv):
        a = argv[i]
        if a in ("--vkey", "--cosigned-by") and i + 1 < len(argv):
            if a == "--vkey":
                vkey = argv[i + 1]
            else:
                wkeys.append(argv[i + 1])
            i += 2
        elif path is None and not a.startswith("--"):
            path, i = a, i + 1
        else:
            print(__doc__, file=sys.stderr)
            return 2
    if path is None:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with open(path, encoding="utf-8") as f:
            b = json.load(f)
        pinned = vkey is not None
        key = parse_vkey(vkey if pinned else b["vkey"], 0x01)
        witnesses = [parse_vkey(w, 0x04) for w in wkeys]
        verdict = check(b, key, witnesses)
    except Refused as err:
        print(f"refused: {err}")
        return 1
    except (OSError, ValueError, KeyError, TypeError, AttributeError, struct.error, binascii.Error) as err:
        print(f"verify-bundle: {path}: {err}", file=sys.stderr)
        return 2
    print(verdict)
    if not pinned:
        print("the signature was checked with the key the bundle carries, which anyone can replace: pass --vkey with the log's key")
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
