"""Decimation engine: linear-phase FIR anti-alias filtering and downsampling onto the output
rate's absolute time grid, for trace blocks (traces × samples).

Typical use::

    plan = design(1000.0, 100.0)            # cached per (input Hz, output Hz)
    res = decimate(data, starttime_ns, plan, mode="extend")
    res.data, res.starttime_ns               # traces × samples at 100 Hz, first sample's ns

Only numpy is imported (no scipy.signal, no obspy): cold start stays cheap.
"""

from shared_code.dsp.design import (
    DecimationPlan,
    Stage,
    design,
    frequency_response,
    max_up,
)
from shared_code.dsp.engine import (
    DEFAULT_EXTENSION,
    Decimated,
    Extension,
    Mode,
    OutputSpan,
    decimate,
    decimate_block,
    extended,
    input_needed,
    output_span,
)

__all__ = [
    "DEFAULT_EXTENSION",
    "Decimated",
    "DecimationPlan",
    "Extension",
    "Mode",
    "OutputSpan",
    "Stage",
    "decimate",
    "decimate_block",
    "design",
    "extended",
    "frequency_response",
    "input_needed",
    "max_up",
    "output_span",
]
