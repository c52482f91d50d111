"""Helpers shared by the tests (import as ``from helpers import ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from warcio.archiveiterator import ArchiveIterator


def read_warc(path: Path, *, check_digests: bool = True) -> list[dict[str, Any]]:
    """Every record of a WARC file read back with warcio, in file order.

    Each record is a dict: ``type``, ``id`` (WARC-Record-ID), ``uri`` (WARC-Target-URI),
    ``headers`` (the WARC head), ``http`` (the HTTP head or None), ``payload`` (raw, content
    coding kept), ``offset``/``length`` of its gzip member and ``member`` (those bytes).
    With ``check_digests`` every block and payload digest is verified (a mismatch raises).
    """
    data = Path(path).read_bytes()
    records = []
    with open(path, "rb") as fh:
        iterator = ArchiveIterator(fh, check_digests="raise" if check_digests else False)
        for record in iterator:
            payload = record.raw_stream.read()
            if check_digests and record.rec_type != "revisit":
                assert record.digest_checker.passed is not False, record.digest_checker.problems
            offset, length = iterator.get_record_offset(), iterator.get_record_length()
            records.append(
                {
                    "type": record.rec_type,
                    "id": record.rec_headers.get_header("WARC-Record-ID"),
                    "uri": record.rec_headers.get_header("WARC-Target-URI"),
                    "headers": record.rec_headers,
                    "http": record.http_headers,
                    "payload": payload,
                    "offset": offset,
                    "length": length,
                    "member": data[offset : offset + length],
                }
            )
    return records
