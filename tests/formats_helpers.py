"""Synthetic waveform files for tests (made with segyio/ObsPy, or by hand for SEG-2).

Every builder writes ``path`` and returns the samples it wrote (traces × samples), so a test
can compare what a reader returns. ``start`` is ns since 1970 UTC of the first sample.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Literal

import numpy as np

#: 2024-03-05T06:07:08.123456 UTC in ns.
START_NS = 1_709_618_828_123_456_000
#: 2024-03-05T06:07:08.012345 UTC in ns: µs-exact in a standard SEG-Y trace header (delay
#: 12345 with scalar -1000; the int16 delay reaches ±32.767 ms at µs resolution).
SEGY_START_NS = 1_709_618_828_012_345_000
SEGY_FORMAT_CODES = {"ibm": 1, "int32": 2, "int16": 3, "float32": 5}


def samples(n_traces: int, n_samples: int, dtype: str, seed: int = 0) -> np.ndarray:
    """Reproducible test samples: integers within ±20000 counts, floats in physical units."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-20000, 20000, size=(n_traces, n_samples))
    if dtype in ("ibm", "float32"):
        return (values / 8.0).astype(np.float32)  # exact in IBM and IEEE float
    return values.astype(dtype)


def make_segy(
    path: Path,
    n_traces: int,
    n_samples: int,
    rate_hz: float,
    dtype: str = "int32",
    *,
    start: int = SEGY_START_NS,
    endian: str = "big",
) -> np.ndarray:
    """A SEG-Y rev 1 file; ``dtype`` is int16, int32, ibm or float32 (format 3, 2, 1, 5).

    The trace headers hold ``start`` as date fields (whole seconds) + DelayRecordingTime in
    ms, or in µs (ScalarTraceHeader -1000) when the sub-second part is not whole ms (it must
    then be below 32.768 ms). Sample interval (µs) = 1e6 / rate_hz.
    """
    import segyio

    data = samples(n_traces, n_samples, dtype)
    code = SEGY_FORMAT_CODES[dtype]
    interval = round(1e6 / rate_hz)
    seconds, sub_ns = divmod(start, 1_000_000_000)
    delay_scalar = 0 if sub_ns % 1_000_000 == 0 else -1000
    delay_ms = sub_ns // 1_000_000 if delay_scalar == 0 else sub_ns // 1000
    if delay_ms > 32767 or sub_ns % 1000:
        raise ValueError(f"start {start} ns does not fit a standard SEG-Y trace header")
    day = np.datetime64(seconds, "s")
    year = day.astype("datetime64[Y]")
    doy = int((day.astype("datetime64[D]") - year.astype("datetime64[D]")).astype(int)) + 1
    rest = seconds % 86400
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount, spec.endian = (
        code,
        list(range(n_samples)),
        n_traces,
        endian,
    )
    tf = segyio.TraceField
    with segyio.create(str(path), spec) as f:
        f.text[0] = segyio.tools.create_text_header({1: "CCS-passive test file"})
        f.bin.update(
            {
                segyio.BinField.Interval: interval,
                segyio.BinField.Samples: n_samples,
                segyio.BinField.Format: code,
                segyio.BinField.SEGYRevision: 1,
            }
        )
        for i in range(n_traces):
            f.header[i] = {
                tf.TRACE_SEQUENCE_FILE: i + 1,
                tf.TraceNumber: i + 1,
                tf.TRACE_SAMPLE_COUNT: n_samples,
                tf.TRACE_SAMPLE_INTERVAL: interval,
                tf.YearDataRecorded: int(year.astype(int)) + 1970,
                tf.DayOfYear: doy,
                tf.HourOfDay: rest // 3600,
                tf.MinuteOfHour: rest // 60 % 60,
                tf.SecondOfMinute: rest % 60,
                tf.TimeBaseCode: 4,
                tf.DelayRecordingTime: delay_ms,
                tf.ScalarTraceHeader: delay_scalar,
                tf.GroupX: 1000 + 10 * i,
            }
            f.trace[i] = data[i]
    return data


def make_su(
    path: Path,
    n_traces: int,
    n_samples: int,
    rate_hz: float,
    *,
    start: int = SEGY_START_NS,
    endian: str = "little",
) -> np.ndarray:
    """An SU file (float32, the given byte order): a SEG-Y without its 3600-byte file headers."""
    full = path.with_suffix(".tmp-segy")
    data = make_segy(full, n_traces, n_samples, rate_hz, "float32", start=start, endian=endian)
    path.write_bytes(full.read_bytes()[3600:])
    full.unlink()
    return data


def _seg2_strings(strings: dict[str, str], order: str) -> bytes:
    out = b""
    for key, value in strings.items():
        text = f"{key} {value}".encode("ascii") + b"\x00"
        out += struct.pack(f"{order}H", len(text) + 2) + text
    return out + struct.pack(f"{order}H", 0)


def make_seg2(
    path: Path,
    n_traces: int,
    n_samples: int,
    rate_hz: float,
    dtype: str = "int32",
    *,
    date: str = "05/MAR/2024",
    time: str = "06:07:08.123456",
    delay_s: str = "0",
    endian: str = "little",
) -> np.ndarray:
    """A SEG-2 rev 1 file; ``dtype`` int16, int32 or float32 (codes 1, 2, 4)."""
    order: Literal["<", ">"] = "<" if endian == "little" else ">"
    code = {"int16": 1, "int32": 2, "float32": 4}[dtype]
    data = samples(n_traces, n_samples, dtype)
    file_strings = _seg2_strings({"ACQUISITION_DATE": date, "ACQUISITION_TIME": time}, order)
    pointers_size = 4 * n_traces
    offset = 32 + pointers_size + len(file_strings)
    blocks, pointers = b"", []
    for i in range(n_traces):
        strings = _seg2_strings(
            {"CHANNEL_NUMBER": str(i + 1), "SAMPLE_INTERVAL": repr(1 / rate_hz), "DELAY": delay_s},
            order,
        )
        size = 32 + len(strings)
        size += -size % 4
        payload = data[i].astype(data.dtype.newbyteorder(order)).tobytes()
        head = struct.pack(f"{order}HHII", 0x4422, size, len(payload), n_samples)
        head += bytes([code]) + bytes(19)
        blocks += (head + strings).ljust(size, b"\x00") + payload
        pointers.append(offset)
        offset += size + len(payload)
    fdb = struct.pack(f"{order}HHHH", 0x3A55, 1, pointers_size, n_traces)
    fdb += bytes([1]) + b"\x00\x00" + bytes([1]) + b"\n\x00" + bytes(18)
    path.write_bytes(fdb + struct.pack(f"{order}{n_traces}I", *pointers) + file_strings + blocks)
    return data


def obspy_stream(
    ids: list[str],
    n_samples: int,
    rate_hz: float,
    dtype: str = "int32",
    starts: list[int] | None = None,
):  # -> obspy.Stream
    """An ObsPy Stream with one trace per SEED id (NET.STA.LOC.CHA); start times in ns."""
    from obspy import Stream, Trace, UTCDateTime

    data = samples(len(ids), n_samples, dtype)
    stream = Stream()
    for i, seed_id in enumerate(ids):
        net, sta, loc, cha = seed_id.split(".")
        tr = Trace(data=data[i].copy())
        tr.stats.update({"network": net, "station": sta, "location": loc, "channel": cha})
        tr.stats.sampling_rate = rate_hz
        tr.stats.starttime = UTCDateTime(ns=(starts or [START_NS] * len(ids))[i])
        stream.append(tr)
    return stream


def obspy_metas(ids: list[str]) -> list:  # -> list[TraceMeta]
    """TraceMeta for SEED ids (NET.STA.LOC.CHA), indexed 0, 1, ..."""
    from shared_code.waveforms import TraceMeta

    metas = []
    for i, seed_id in enumerate(ids):
        net, sta, loc, cha = seed_id.split(".")
        metas.append(TraceMeta(i, network=net, station=sta, location=loc, channel=cha))
    return metas


def segyio_samples(path: Path, endian: str = "big", su: bool = False) -> np.ndarray:
    """All samples as segyio decodes them: the reference for readers (for IBM floats only of
    normalised words in float32's normal range: segyio's table method is wrong for the rest,
    see tests/test_formats_segy_ibm.py)."""
    import segyio
    import segyio.su

    opened = segyio.su.open if su else segyio.open
    with opened(str(path), ignore_geometry=True, endian=endian) as f:
        return f.trace.raw[:]


def segyio_write(recording, path: Path, *, su: bool = False) -> None:  # recording: Recording
    """The whole-recording writer as it was before streaming (all through segyio).

    The byte reference for the streaming SEG-Y/SU writer: same plan (input headers with new
    start time, sample count and interval), every header word and sample written by segyio.
    """
    import shutil
    import tempfile

    import segyio

    from shared_code.formats import segy, traceheader

    planned = segy.plan(recording, floats_only=su)
    assert isinstance(planned, segy.Plan), planned
    fh = recording.file_headers
    endian = fh.get("endian", "little" if su else "big")
    textual = [] if su else fh.get("textual", [])
    binary = {} if su else fh.get("binary", {})
    spec = segyio.spec()
    spec.format = planned.format_code
    spec.samples = list(range(planned.n_samples))
    spec.tracecount = recording.n_traces
    spec.endian = endian
    spec.ext_headers = max(len(textual) - 1, 0)
    bin_fields = {str(f): int(f) for f in segyio.BinField.enums()}
    trace_fields = {str(f): int(f) for f in segyio.TraceField.enums()}
    dtype = np.float32 if planned.format_code == 5 else np.int32
    rows = [
        (meta, row, b.starttime_ns)
        for b in recording.blocks
        for meta, row in zip(b.traces, b.data, strict=True)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "out.segy"
        with segyio.create(str(full), spec) as f:
            for i, text in enumerate(textual):
                f.text[i] = text
            words = {
                bin_fields[k]: v
                for k, v in binary.items()
                if k in bin_fields and not k.startswith("Unassigned")
            }
            words.update(
                {
                    bin_fields["Interval"]: planned.interval_us,
                    bin_fields["Samples"]: planned.n_samples,
                    bin_fields["Format"]: planned.format_code,
                    bin_fields["ExtSamples"]: 0,
                    bin_fields["ExtendedHeaders"]: spec.ext_headers,
                }
            )
            f.bin.update(words)
            for i, (meta, row, start) in enumerate(rows):
                timing = traceheader.encode_start(start, meta.headers)
                assert timing is not None
                header = {
                    **meta.headers,
                    **timing,
                    "TRACE_SAMPLE_COUNT": planned.n_samples,
                    "TRACE_SAMPLE_INTERVAL": planned.interval_us,
                }
                f.header[i] = {trace_fields[k]: v for k, v in header.items() if k in trace_fields}
                f.trace[i] = np.asarray(row, dtype=dtype)
        with open(full, "rb") as src, open(path, "wb") as out:
            src.seek(segy.FILE_HEADER_BYTES if su else 0)
            shutil.copyfileobj(src, out)


def make_segy_rev2(
    path: Path,
    n_traces: int,
    n_samples: int,
    interval_us: float,
    dtype: str = "int32",
    *,
    start: int = START_NS + 789,
    endian: str = "big",
    extensions: int = 1,
    binary_extended: bool = True,
) -> np.ndarray:
    """A SEG-Y rev 2.0 file with ``extensions`` trace header extensions per trace, by hand.

    ``dtype`` is int16, int32 or float32 (format 3, 2, 5). The binary header carries the byte
    order constant (bytes 3297-3300), revision 2.0, the fixed-length flag and the extension
    count (bytes 3507-3510, int32). Standard words (binary 3217/3221, trace 115/117) hold the
    sample interval (µs) and count only where they fit (whole µs, count <= 32767), else 0;
    with ``binary_extended`` the binary header's extended words (3269-3272 count, 3273-3280
    IEEE double interval) hold them too, otherwise only each trace's Trace Header Extension 1
    (bytes 137-140, 145-152) does. ``start`` (ns since 1970 UTC) is the date fields (whole
    seconds) + "nanoseconds to add to Second of minute" (extension 1 bytes 141-144), no delay.
    Extensions after the first are named ``ACME0002``, ... (bytes 233-240), else zeros.
    """
    from shared_code.formats import traceheader

    order: Literal["<", ">"] = "<" if endian == "little" else ">"
    code = SEGY_FORMAT_CODES[dtype]
    data = samples(n_traces, n_samples, dtype)
    short_ns = n_samples if n_samples <= 32767 else 0
    short_dt = int(interval_us) if float(interval_us).is_integer() else 0

    text = "C 1 CCS-passive SEG-Y rev 2 test file".ljust(3200).encode("cp037")
    binary = bytearray(400)
    struct.pack_into(f"{order}HHHH", binary, 16, short_dt, short_dt, short_ns, short_ns)
    struct.pack_into(f"{order}H", binary, 24, code)
    if binary_extended:
        struct.pack_into(f"{order}idd", binary, 68, n_samples, interval_us, interval_us)
    struct.pack_into(f"{order}I", binary, 96, 0x01020304)
    binary[300], binary[301] = 2, 0  # rev 2.0
    struct.pack_into(f"{order}hhihQ", binary, 302, 1, 0, extensions, 4, n_traces)

    seconds, sub_ns = divmod(start, 1_000_000_000)
    day = np.datetime64(seconds, "s")
    year = day.astype("datetime64[Y]")
    doy = int((day.astype("datetime64[D]") - year.astype("datetime64[D]")).astype(int)) + 1
    rest = seconds % 86400
    sample = np.dtype(order + {"int16": "i2", "int32": "i4", "float32": "f4"}[dtype])
    record = [
        ("h", traceheader.header_dtype(endian)),
        ("x", "u1", (240 * extensions,)),
        ("s", sample, (n_samples,)),
    ]
    records = np.zeros(n_traces, record)
    h = records["h"]
    h["TRACE_SEQUENCE_FILE"] = np.arange(1, n_traces + 1)
    h["TraceNumber"] = np.arange(1, n_traces + 1)
    h["TRACE_SAMPLE_COUNT"] = short_ns
    h["TRACE_SAMPLE_INTERVAL"] = short_dt
    h["YearDataRecorded"] = int(year.astype(int)) + 1970
    h["DayOfYear"] = doy
    h["HourOfDay"] = rest // 3600
    h["MinuteOfHour"] = rest // 60 % 60
    h["SecondOfMinute"] = rest % 60
    h["TimeBaseCode"] = 4
    h["GroupX"] = 1000 + 10 * np.arange(n_traces)
    ext = np.zeros(n_traces, traceheader.extension1_dtype(endian))
    ext["ExtTraceSequenceLine"] = np.arange(1, n_traces + 1)
    ext["ExtTraceSequenceFile"] = np.arange(1, n_traces + 1) + 5_000_000_000  # beyond int32
    ext["ExtSampleCount"] = n_samples
    ext["NanosecondsOfSecond"] = sub_ns
    ext["ExtSampleInterval"] = interval_us
    ext["CableNumber"] = 7
    ext["ExtensionCount"] = extensions
    ext["HeaderName"] = b"SEG00001"
    raw = records.view(np.uint8).reshape(n_traces, -1)
    raw[:, 232:240] = np.frombuffer(b"SEG00000", np.uint8)  # standard header's name
    raw[:, 240:480] = ext.view(np.uint8).reshape(n_traces, 240)
    for k in range(2, extensions + 1):
        raw[:, 240 * k + 232 : 240 * k + 240] = np.frombuffer(f"ACME{k:04d}".encode(), np.uint8)
    records["s"] = data
    path.write_bytes(text + bytes(binary) + records.tobytes())
    return data
