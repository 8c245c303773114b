"""An incremental reader of WebM/Opus audio, as a browser's MediaRecorder sends it.

The stream server feeds it each binary message as it arrives. It parses just
enough EBML to tell how much audio came in and whether it is WebM with Opus:
the EBML header (DocType), the track's CodecID, the TimecodeScale, and the
timestamps of the Cluster and its (Simple)Blocks. Everything else is skipped
without being held in memory. MediaRecorder writes the Segment and every
Cluster with an unknown size (it cannot seek back to fill them in): an
unknown-size Cluster ends where the next top-level element begins.
"""

from __future__ import annotations

from dataclasses import dataclass

EBML_MAGIC = bytes.fromhex("1A45DFA3")

EBML = 0x1A45DFA3
DOC_TYPE = 0x4282
SEGMENT = 0x18538067
INFO = 0x1549A966
TIMECODE_SCALE = 0x2AD7B1
TRACKS = 0x1654AE6B
TRACK_ENTRY = 0xAE
CODEC_ID = 0x86
CLUSTER = 0x1F43B675
CLUSTER_TIMECODE = 0xE7
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1

#: Elements whose children are read; every other element is skipped whole.
CONTAINERS = frozenset({EBML, SEGMENT, INFO, TRACKS, TRACK_ENTRY, CLUSTER, BLOCK_GROUP})
#: The Segment's children: one of them starting closes an unknown-size Cluster.
SEGMENT_CHILDREN = frozenset(
    {
        INFO,
        TRACKS,
        CLUSTER,
        0x114D9B74,  # SeekHead
        0x1C53BB6B,  # Cues
        0x1043A770,  # Chapters
        0x1254C367,  # Tags
        0x1941A469,  # Attachments
    }
)
#: Small values read whole (strings and unsigned integers).
VALUES = frozenset({DOC_TYPE, TIMECODE_SCALE, CODEC_ID, CLUSTER_TIMECODE})
BLOCKS = frozenset({SIMPLE_BLOCK, BLOCK})
#: A value longer than this is not a WebM header field: the input is not WebM.
MAX_VALUE_SIZE = 256
#: Enough of a block for its track number (up to 8 bytes), timecode and flags.
BLOCK_HEAD = 11
DEFAULT_TIMECODE_SCALE = 1_000_000  # nanoseconds per timecode tick
#: An Opus packet in a browser's recording holds 20 ms: the last block's
#: timestamp marks its start, so the audio lasts one frame longer.
OPUS_FRAME_MS = 20.0


class NotWebM(ValueError):
    """The bytes are not (or stopped being) a WebM/Opus stream."""


@dataclass
class _Open:
    """A container being read: its ID and where it ends (None: unknown size)."""

    element: int
    end: int | None


def _vint_length(first: int) -> int:
    """How many bytes an EBML variable-length integer takes, from its first."""
    for length in range(1, 9):
        if first & (0x80 >> (length - 1)):
            return length
    raise NotWebM("an EBML number has no length marker")


class WebMReader:
    """Reads a WebM/Opus stream fed in pieces of any size."""

    def __init__(self) -> None:
        self.bytes_seen = 0
        self.doc_type: str | None = None
        self.codec: str | None = None
        self.timecode_scale = DEFAULT_TIMECODE_SCALE
        self.blocks = 0
        self.error: str | None = None
        self._buffer = bytearray()
        self._position = 0  # absolute offset of self._buffer[0]
        self._skip = 0
        self._open: list[_Open] = []
        self._cluster_timecode: int | None = None
        self._last_timecode: int | None = None

    # --- what it found ----------------------------------------------------

    @property
    def valid(self) -> bool:
        """WebM with an Opus track, and nothing wrong so far."""
        return self.error is None and self.doc_type == "webm" and self.codec == "A_OPUS"

    @property
    def duration_ms(self) -> float:
        """Milliseconds of audio so far: the last block's start plus one frame."""
        if self._last_timecode is None:
            return 0.0
        start = self._last_timecode * self.timecode_scale / 1_000_000
        return start + OPUS_FRAME_MS

    # --- feeding ----------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Read `data`, the next bytes of the stream; never raises."""
        self.bytes_seen += len(data)
        if self.error is not None:
            return  # counted, not read: what follows a fault means nothing
        self._buffer += data
        try:
            self._read()
        except NotWebM as exc:
            self.error = str(exc)
            self._buffer.clear()

    def _read(self) -> None:
        if self._position == 0 and not self._magic_so_far():
            raise NotWebM("the stream does not start with an EBML header")
        offset = 0
        while True:
            offset = self._skip_some(offset)
            if self._skip:
                break
            self._close_finished(self._position + offset)
            used = self._element(offset)
            if used == 0:
                break
            offset += used
        del self._buffer[:offset]
        self._position += offset

    def _magic_so_far(self) -> bool:
        head = bytes(self._buffer[: len(EBML_MAGIC)])
        return EBML_MAGIC.startswith(head)

    def _skip_some(self, offset: int) -> int:
        step = min(self._skip, len(self._buffer) - offset)
        self._skip -= step
        return offset + step

    def _close_finished(self, at: int) -> None:
        while (
            self._open and self._open[-1].end is not None and at >= self._open[-1].end
        ):
            self._open.pop()

    def _element(self, offset: int) -> int:
        """Read one element header (and a value) at `offset`; 0 if incomplete."""
        header = self._header(offset)
        if header is None:
            return 0
        element, size, header_length = header
        start = self._position + offset + header_length
        if self._position == 0 and offset == 0 and element != EBML:
            raise NotWebM("the stream does not start with an EBML header")
        self._close_unknown(element)
        if element in CONTAINERS:
            return self._enter(element, size, start, header_length)
        if size is None:
            raise NotWebM(f"element {element:X} has an unknown size")
        if element in VALUES:
            return self._value(element, size, offset, header_length)
        if element in BLOCKS:
            return self._block(size, offset, header_length)
        self._skip = size
        return header_length

    def _header(self, offset: int) -> tuple[int, int | None, int] | None:
        """The element ID, data size and header length at `offset`, if all here."""
        buffer = self._buffer
        if offset >= len(buffer):
            return None
        id_length = _vint_length(buffer[offset])
        if id_length > 4:
            raise NotWebM("an element ID is longer than 4 bytes")
        size_at = offset + id_length
        if size_at >= len(buffer):
            return None
        size_length = _vint_length(buffer[size_at])
        end = size_at + size_length
        if end > len(buffer):
            return None
        element = int.from_bytes(buffer[offset:size_at], "big")
        raw = int.from_bytes(buffer[size_at:end], "big")
        value = raw & ((1 << (7 * size_length)) - 1)
        unknown = value == (1 << (7 * size_length)) - 1
        return element, None if unknown else value, end - offset

    def _close_unknown(self, element: int) -> None:
        """A top-level element ends the unknown-size Cluster before it."""
        if element in SEGMENT_CHILDREN:
            while self._open and self._open[-1].element != SEGMENT:
                if self._open[-1].end is not None:
                    break
                self._open.pop()
                self._cluster_timecode = None

    def _enter(self, element: int, size: int | None, start: int, used: int) -> int:
        if size is None and element not in (SEGMENT, CLUSTER):
            raise NotWebM(f"element {element:X} has an unknown size")
        if element == SEGMENT and self.doc_type is None:
            raise NotWebM("the EBML header has no DocType")
        if element == CLUSTER:
            self._cluster_timecode = None
        self._open.append(_Open(element, None if size is None else start + size))
        return used

    def _value(self, element: int, size: int, offset: int, header_length: int) -> int:
        if size > MAX_VALUE_SIZE:
            raise NotWebM(f"element {element:X} is too long for a header field")
        begin = offset + header_length
        if begin + size > len(self._buffer):
            return 0
        data = bytes(self._buffer[begin : begin + size])
        if element == DOC_TYPE:
            self.doc_type = data.rstrip(b"\0").decode("ascii", "replace")
            if self.doc_type != "webm":
                raise NotWebM(f"the DocType is {self.doc_type!r}, not webm")
        elif element == CODEC_ID:
            self._codec(data.rstrip(b"\0").decode("ascii", "replace"))
        elif element == TIMECODE_SCALE:
            self.timecode_scale = int.from_bytes(data, "big") or DEFAULT_TIMECODE_SCALE
        elif element == CLUSTER_TIMECODE:
            self._cluster_timecode = int.from_bytes(data, "big")
        return header_length + size

    def _codec(self, codec: str) -> None:
        if self.codec is None:
            self.codec = codec
        if codec != "A_OPUS":
            raise NotWebM(f"the codec is {codec}, not Opus")

    def _block(self, size: int, offset: int, header_length: int) -> int:
        begin = offset + header_length
        head = bytes(self._buffer[begin : begin + min(size, BLOCK_HEAD)])
        if len(head) < min(size, BLOCK_HEAD):
            return 0
        if self._cluster_timecode is None:
            raise NotWebM("a block comes before its Cluster's Timecode")
        track_length = _vint_length(head[0]) if head else 9
        if len(head) < track_length + 2:
            raise NotWebM("a block is too short for its timecode")
        relative = int.from_bytes(
            head[track_length : track_length + 2], "big", signed=True
        )
        timecode = self._cluster_timecode + relative
        if self._last_timecode is not None and timecode < self._last_timecode:
            raise NotWebM("the blocks go back in time")
        self._last_timecode = timecode
        self.blocks += 1
        self._skip = size - len(head)
        return header_length + len(head)
