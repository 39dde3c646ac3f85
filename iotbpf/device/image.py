"""Reading a device image on the board (MicroPython): check magic, version and tag, then parse the JSON
payload. It never runs what it reads and refuses any image whose tag does not match; the format is
in docs/mcu.md ("The image format").
"""

import hashlib
import json
import struct

MAGIC = b"IDIM"
VERSION = 1
SIGNED = 1


class ImageError(Exception):
    pass


def hmac_sha256(key, data):
    """HMAC-SHA256 (RFC 2104) from hashlib alone: MicroPython has no hmac module."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(data)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def _same(a, b):
    diff = len(a) ^ len(b)
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0


def parse(data, key=None):
    """The payload dict of image bytes ``data``; ImageError unless intact (and signed with
    ``key`` when one is given)."""
    if len(data) < 44 or data[:4] != MAGIC:
        raise ImageError("not a device image")
    version, flags, size = struct.unpack_from("<HHI", data, 4)
    if version != VERSION:
        raise ImageError("image version %d (this runtime reads %d)" % (version, VERSION))
    if 12 + size + 32 != len(data):
        raise ImageError("truncated image")
    body = memoryview(data)[:12 + size]
    tag = data[12 + size:]
    if key is not None:
        if not flags & SIGNED or not _same(hmac_sha256(key, body), tag):
            raise ImageError("bad signature")
    elif flags & SIGNED:
        raise ImageError("signed image: the node's key is needed")
    elif not _same(hashlib.sha256(body).digest(), tag):
        raise ImageError("bad checksum")
    return json.loads(bytes(body[12:]))


def load(path, key=None):
    with open(path, "rb") as f:
        return parse(f.read(), key)
