"""Seamless joins: consecutive files decimated separately, in any order and concurrently,
join into exactly what decimating the whole record gives."""

import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from obspy import Stream, read

from scripts.sample_data import START, array_record, split_record
from shared_code.cli import main
from shared_code.dsp import decimate, design, output_span
from shared_code.fields import load_fields
from shared_code.seam_sweep import sweep
from shared_code.settings import APP_ROOT
from shared_code.waveforms import TraceMeta
from tests.numeric_bounds import difference_bound

RATE, TARGET, N_FILES, SECONDS = 1000.0, 100.0, 6, 36.0
PLAN = design(RATE, TARGET)
T0_NS = int(START.timestamp()) * 1_000_000_000


@pytest.fixture(scope="module")
def record() -> np.ndarray:
    return array_record(n_stations=2, seconds=SECONDS, rate_hz=RATE, n_events=4, seed=3)


@pytest.fixture(scope="module")
def float_files(record: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return split_record(
        tmp_path_factory.mktemp("float"), record, RATE, N_FILES, sample_format="float32"
    )


def _run(files: list[Path], share: Path) -> None:
    assert main(["process", "--field", "grane", "--output", str(share), *map(str, files)]) == 0


def _sweep_all(share: Path) -> list:
    registry = load_fields(APP_ROOT / "config" / "fields.toml")
    return sweep(share, registry, timeout_minutes=30, now=time.time() + 3600)


def _merged(share: Path) -> list:
    """All MiniSEED on the share, merged, in the record's trace order (row i = trace i)."""
    st = Stream()
    for path in sorted((share / "mseed").rglob("*.mseed")):
        st += read(str(path))
    st.sort()
    assert st.get_gaps() == [], st.get_gaps()[:3]
    st.merge(method=-1)
    cfg = load_fields(APP_ROOT / "config" / "fields.toml").get("grane")
    by_id = {tr.id: tr for tr in st}
    assert len(by_id) == len(st)
    return [by_id[cfg.seed_id(TraceMeta(index=i), TARGET)] for i in range(len(st))]


def _whole(record: np.ndarray, dtype) -> tuple[np.ndarray, int, np.ndarray, int]:
    plan = PLAN
    ext = decimate(record.astype(dtype), T0_NS, plan, "extend")
    valid = output_span(plan, T0_NS, record.shape[1], "valid")
    first_ext = output_span(plan, T0_NS, record.shape[1], "extend").first_index
    return ext.data, first_ext, np.arange(valid.n_samples) + valid.first_index, first_ext


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_any_order_joins_exactly(record, float_files, tmp_path: Path, seed: int) -> None:
    order = float_files[:]
    random.Random(seed).shuffle(order)
    share = tmp_path / "share"
    _run(order, share)
    swept = _sweep_all(share)
    assert sorted(s.half for s in swept) == ["left", "right"]  # only the record's own two ends
    st = _merged(share)
    assert len(st) == record.shape[0]
    whole, first, valid_k, _ = _whole(record, np.float32)
    for i, tr in enumerate(st):
        assert tr.stats.sampling_rate == TARGET
        k0 = round(tr.stats.starttime.ns * TARGET / 1e9)
        assert k0 == first  # on the absolute grid, from the record's first sample
        assert tr.stats.npts == whole.shape[1]
        inside = valid_k - k0
        # Where the unbroken record is exact, the joined files are identical to float32
        # rounding (the BLAS kernel's summation order).
        bound = difference_bound(PLAN, float(np.abs(record[i]).max()))
        np.testing.assert_allclose(tr.data[inside], whole[i, inside], rtol=0, atol=bound)
        # At the record's two real ends, both extend the edge the same way.
        np.testing.assert_allclose(tr.data, whole[i], rtol=0, atol=1e-3 * np.abs(whole[i]).max())


def test_two_at_once(record, float_files, tmp_path: Path) -> None:
    share = tmp_path / "share"
    pairs = [float_files[0::2], float_files[1::2]]  # neighbours always run side by side
    errors: list[BaseException] = []

    def worker(files: list[Path]) -> None:
        try:
            _run(files, share)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(files,)) for files in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _sweep_all(share)
    st = _merged(share)
    whole, _first, valid_k, k_first = _whole(record, np.float32)
    for i, tr in enumerate(st):
        inside = valid_k - k_first
        bound = difference_bound(PLAN, float(np.abs(record[i]).max()))
        np.testing.assert_allclose(tr.data[inside], whole[i, inside], rtol=0, atol=bound)


def test_integer_counts_join_to_the_count(record, tmp_path: Path) -> None:
    files = split_record(tmp_path, record, RATE, N_FILES, sample_format="int32")
    share = tmp_path / "share"
    _run(files[::-1], share)  # newest first
    _sweep_all(share)
    st = _merged(share)
    counts = np.clip(np.round(record), -(2**31), 2**31 - 1).astype(np.int32)
    whole, _first, valid_k, k_first = _whole(counts, np.int32)
    for i, tr in enumerate(st):
        assert tr.data.dtype == np.int32
        inside = valid_k - k_first
        assert np.abs(tr.data[inside].astype(np.int64) - whole[i, inside]).max() <= 1


def test_a_missing_neighbour_is_a_gap_delivered_after_the_timeout(
    record, float_files, tmp_path: Path
) -> None:
    share = tmp_path / "share"
    _run([f for k, f in enumerate(float_files) if k != 3], share)  # file 3 never arrives
    registry = load_fields(APP_ROOT / "config" / "fields.toml")
    assert sweep(share, registry, timeout_minutes=30) == []  # not yet: within the timeout
    swept = sweep(share, registry, timeout_minutes=30, now=time.time() + 3600)
    assert sorted(s.half for s in swept) == ["left", "left", "right", "right"]
    st = Stream()
    for path in sorted((share / "mseed").rglob("*.mseed")):
        st += read(str(path))
    gaps = st.get_gaps()
    n_ids = record.shape[0]
    assert len(gaps) == n_ids  # exactly one gap per channel: the missing file
    per_file = SECONDS / N_FILES
    for gap in gaps:
        assert (
            abs(gap[4].timestamp - (START.timestamp() + 3 * per_file)) < 0.02
        )  # data up to the gap
        assert abs(gap[5].timestamp - (START.timestamp() + 4 * per_file)) < 0.02


def test_edge_files_round_trip_and_refuse_other_files(tmp_path: Path) -> None:
    from shared_code.seams import HEAD, Edge, SeamStore

    store = SeamStore(tmp_path, "grane", "abc")
    data = np.arange(24, dtype=np.int32).reshape(3, 8)
    meta = {"field": "grane", "traces": [{"index": i} for i in range(3)]}
    store.put_edge(42, HEAD, Edge(data, 123, "blob@etag"), meta)
    edge = store.get_edge(42, HEAD)
    assert edge is not None
    np.testing.assert_array_equal(edge.data, data)
    assert edge.data.dtype == np.int32
    assert (edge.starttime_ns, edge.owner) == (123, "blob@etag")
    assert store.edge_meta(42, HEAD) == {**meta, "starttime_ns": 123, "owner": "blob@etag"}
    path = next((tmp_path / "state").rglob("head.edge"))
    path.write_bytes(b"PK\x03\x04 not an edge")
    with pytest.raises(ValueError, match="not a seam edge file"):
        store.get_edge(42, HEAD)


def test_trace_identities_travel_as_columns() -> None:
    from shared_code.seams import trace_columns, traces_from_columns

    traces = [TraceMeta(index=i, network="XG", station=f"S{i}", channel="HHZ") for i in range(4)]
    columns = trace_columns(traces)
    assert columns["station"] == ["S0", "S1", "S2", "S3"]
    assert traces_from_columns(columns) == traces
