"""WebM/Opus audio as a browser's MediaRecorder writes it, for the stream tests.

Chrome's recorder writes the EBML header, a Segment of unknown size, Info,
Tracks with one Opus track, then Clusters of unknown size holding SimpleBlocks
of 20 ms Opus packets; `MediaRecorder.start(250)` hands the page a chunk every
250 ms, the first one holding the header. The packets here are Opus silence.
"""

from __future__ import annotations

import struct

OPUS_SILENCE = b"\xf8\xff\xfe"
FRAME_MS = 20
#: Chrome starts a new Cluster every few seconds; this splits within chunks.
CLUSTER_MS = 2_500
UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def _size(length: int) -> bytes:
    """An EBML data size in as few bytes as it fits (all ones means unknown)."""
    for width in range(1, 9):
        if length < (1 << (7 * width)) - 1:
            return (length | (1 << (7 * width))).to_bytes(width, "big")
    raise ValueError("too long for EBML")


def element(element_id: int, payload: bytes) -> bytes:
    """One EBML element: its ID, data size and payload."""
    id_bytes = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    return id_bytes + _size(len(payload)) + payload


def uint(element_id: int, value: int) -> bytes:
    width = max(1, (value.bit_length() + 7) // 8)
    return element(element_id, value.to_bytes(width, "big"))


def text(element_id: int, value: str) -> bytes:
    return element(element_id, value.encode("ascii"))


def ebml_header(doc_type: str = "webm") -> bytes:
    return element(
        0x1A45DFA3,
        uint(0x4286, 1)  # EBMLVersion
        + uint(0x42F7, 1)  # EBMLReadVersion
        + uint(0x42F2, 4)  # EBMLMaxIDLength
        + uint(0x42F3, 8)  # EBMLMaxSizeLength
        + text(0x4282, doc_type)
        + uint(0x4287, 4)  # DocTypeVersion
        + uint(0x4285, 2),  # DocTypeReadVersion
    )


def opus_head() -> bytes:
    """CodecPrivate of an Opus track: mono, 312 samples pre-skip, 48 kHz."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48_000, 0, 0)


def segment_start(codec: str = "A_OPUS") -> bytes:
    """The Segment (unknown size) with Info and Tracks: what precedes audio."""
    info = element(
        0x1549A966,
        uint(0x2AD7B1, 1_000_000)  # TimecodeScale: 1 ms
        + text(0x4D80, "Chrome")  # MuxingApp
        + text(0x5741, "Chrome"),  # WritingApp
    )
    audio = element(0xE1, element(0xB5, struct.pack(">d", 48_000.0)) + uint(0x9F, 1))
    track = element(
        0xAE,
        uint(0xD7, 1)  # TrackNumber
        + uint(0x73C5, 0x5EED)  # TrackUID
        + uint(0x83, 2)  # TrackType: audio
        + text(0x86, codec)
        + element(0x63A2, opus_head())
        + audio,
    )
    return b"\x18\x53\x80\x67" + UNKNOWN_SIZE + info + element(0x1654AE6B, track)


def cluster_start(timecode_ms: int) -> bytes:
    return b"\x1f\x43\xb6\x75" + UNKNOWN_SIZE + uint(0xE7, timecode_ms)


def simple_block(relative_ms: int, packet: bytes = OPUS_SILENCE) -> bytes:
    # Track 1, the timecode relative to the Cluster's, keyframe flag.
    return element(0xA3, b"\x81" + struct.pack(">hB", relative_ms, 0x80) + packet)


def webm_opus(
    seconds: float, *, chunk_ms: int = 250, codec: str = "A_OPUS"
) -> list[bytes]:
    """`seconds` of Opus silence in WebM, in the chunks MediaRecorder would send."""
    chunks: list[bytearray] = [bytearray(ebml_header() + segment_start(codec))]
    cluster = -1
    for at in range(0, round(seconds * 1000), FRAME_MS):
        index = at // chunk_ms
        while len(chunks) <= index:
            chunks.append(bytearray())
        if at // CLUSTER_MS != cluster:
            cluster = at // CLUSTER_MS
            chunks[index] += cluster_start(cluster * CLUSTER_MS)
        chunks[index] += simple_block(at - cluster * CLUSTER_MS)
    return [bytes(chunk) for chunk in chunks]
