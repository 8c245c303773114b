"""The stream server's WebM reader (sandbox/webm.py), fed MediaRecorder-like
audio in whole, in chunks and byte by byte, and fed what is not WebM/Opus."""

from __future__ import annotations

import pytest

from sandbox.webm import WebMReader
from tests.support.webm import (
    cluster_start,
    ebml_header,
    element,
    segment_start,
    simple_block,
    webm_opus,
)


def read(*pieces: bytes) -> WebMReader:
    reader = WebMReader()
    for piece in pieces:
        reader.feed(piece)
    return reader


def test_whole_stream_is_valid_opus_of_its_length():
    chunks = webm_opus(5)
    reader = read(b"".join(chunks))
    assert reader.valid
    assert reader.error is None
    assert (reader.doc_type, reader.codec) == ("webm", "A_OPUS")
    assert reader.blocks == 250
    assert reader.duration_ms == 5000.0
    assert reader.bytes_seen == sum(map(len, chunks))


def test_mediarecorder_chunks_hold_the_header_first_and_250_ms_each():
    chunks = webm_opus(2)
    assert len(chunks) == 8
    assert chunks[0].startswith(bytes.fromhex("1A45DFA3"))
    durations = []
    reader = WebMReader()
    for chunk in chunks:
        reader.feed(chunk)
        durations.append(reader.duration_ms)
    # 20 ms frames do not split evenly into 250 ms: the odd chunks hold 13.
    assert durations == [260, 500, 760, 1000, 1260, 1500, 1760, 2000]


def test_byte_by_byte_gives_the_same_answer():
    data = b"".join(webm_opus(3, chunk_ms=100))
    reader = read(*(data[i : i + 1] for i in range(len(data))))
    assert reader.valid
    assert reader.blocks == 150
    assert reader.duration_ms == 3000.0
    assert reader.bytes_seen == len(data)


def test_unknown_size_clusters_end_where_the_next_begins():
    data = (
        ebml_header()
        + segment_start()
        + cluster_start(0)
        + simple_block(0)
        + simple_block(20)
        + cluster_start(40)
        + simple_block(0)
        + cluster_start(60)
        + simple_block(0)
    )
    reader = read(data)
    assert reader.valid
    assert reader.blocks == 4
    assert reader.duration_ms == 80.0


def test_blocks_in_block_groups_are_read():
    block = element(0xA1, b"\x81\x00\x28\x00\xf8\xff\xfe")  # 40 ms in
    data = ebml_header() + segment_start() + cluster_start(0) + element(0xA0, block)
    reader = read(data)
    assert reader.valid
    assert reader.blocks == 1
    assert reader.duration_ms == 60.0


def test_a_scale_of_half_a_millisecond_halves_the_time():
    tracks_and_rest = segment_start()
    info_end = tracks_and_rest.index(bytes.fromhex("1654AE6B"))
    info = element(0x1549A966, element(0x2AD7B1, (500_000).to_bytes(3, "big")))
    data = (
        ebml_header()
        + tracks_and_rest[:12]
        + info
        + tracks_and_rest[info_end:]
        + cluster_start(0)
        + simple_block(1000)
    )
    assert read(data).duration_ms == 520.0


@pytest.mark.parametrize(
    "data",
    [
        b"RIFF\x24\x08\x00\x00WAVEfmt ",
        b"OggS\x00\x02" + bytes(30),
        bytes(64),
        b'{"type": "config"}',
    ],
    ids=["wav", "ogg", "zeros", "json"],
)
def test_not_webm_is_invalid_and_still_counted(data):
    reader = read(data, data)
    assert not reader.valid
    assert reader.error == "the stream does not start with an EBML header"
    assert reader.bytes_seen == 2 * len(data)
    assert reader.duration_ms == 0.0


def test_the_first_wrong_byte_is_enough():
    reader = read(b"\x1a\x45")
    assert reader.error is None
    reader.feed(b"\x00")
    assert reader.error == "the stream does not start with an EBML header"


def test_another_doc_type_is_invalid():
    reader = read(ebml_header("matroska") + segment_start())
    assert not reader.valid
    assert reader.error == "the DocType is 'matroska', not webm"


def test_another_codec_is_invalid_but_named():
    reader = read(*webm_opus(1, codec="A_VORBIS"))
    assert not reader.valid
    assert reader.codec == "A_VORBIS"
    assert reader.error == "the codec is A_VORBIS, not Opus"


def test_truncated_input_is_not_yet_valid_and_counts_what_came():
    data = b"".join(webm_opus(1))
    header_only = read(data[:40])
    assert not header_only.valid
    assert header_only.error is None
    assert header_only.bytes_seen == 40
    cut = read(data[:-2])  # the last block is cut short
    assert cut.valid
    assert cut.duration_ms == 980.0
    cut.feed(data[-2:])
    assert cut.duration_ms == 1000.0


def test_blocks_going_back_in_time_are_invalid():
    data = (
        ebml_header()
        + segment_start()
        + cluster_start(1000)
        + simple_block(0)
        + cluster_start(0)
        + simple_block(0)
    )
    reader = read(data)
    assert not reader.valid
    assert reader.error == "the blocks go back in time"
    assert reader.duration_ms == 1020.0


def test_nothing_read_after_an_error_but_bytes_are_counted():
    reader = read(b"nope")
    reader.feed(b"".join(webm_opus(1)))
    assert not reader.valid
    assert reader.blocks == 0
    assert reader.bytes_seen == 4 + len(b"".join(webm_opus(1)))
