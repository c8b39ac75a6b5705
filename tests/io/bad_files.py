"""Small hand-made files that declare what real files of their kind would: 16-bit PNGs, 100,000² TIFFs."""

import math
import struct
import zlib


def huge_tiff(path, side=100_000, tile=1024):
    """A tiled RGB TIFF declaring side² pixels in ~100 kB: every tile entry points at one deflated black tile."""
    count = math.ceil(side / tile) ** 2
    data = zlib.compress(bytes(tile * tile * 3), 9)
    tags = 11
    ifd_size = 2 + 12 * tags + 4
    bits_at = 8 + ifd_size
    offsets_at = bits_at + 6
    counts_at = offsets_at + 4 * count
    data_at = counts_at + 4 * count
    entries = [
        (256, 4, 1, side),
        (257, 4, 1, side),
        (258, 3, 3, bits_at),
        (259, 3, 1, 8),
        (262, 3, 1, 2),
        (277, 3, 1, 3),
        (284, 3, 1, 1),
        (322, 4, 1, tile),
        (323, 4, 1, tile),
        (324, 4, count, offsets_at),
        (325, 4, count, counts_at),
    ]
    out = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", tags))
    for tag, kind, n, value in entries:
        packed = struct.pack("<HH", value, 0) if kind == 3 and n == 1 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, n) + packed
    out += struct.pack("<I", 0) + struct.pack("<HHH", 8, 8, 8)
    out += struct.pack(f"<{count}I", *([data_at] * count)) + struct.pack(f"<{count}I", *([len(data)] * count))
    out += data
    path.write_bytes(bytes(out))
    return path


def png16(path, rgb):
    """Write ``rgb`` (H, W, 3) uint16 as a 16-bit RGB PNG (the imageio/Pillow writer cannot)."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )
    return path
