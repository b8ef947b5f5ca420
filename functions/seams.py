"""Timer: emit seam halves whose neighbouring file never came (see shared_code.seam_sweep)."""

from __future__ import annotations

import logging

import azure.functions as func

from shared_code import telemetry
from shared_code.fields import load_fields
from shared_code.seam_sweep import sweep
from shared_code.settings import get_settings

bp = func.Blueprint()

#: NCRONTAB (with seconds), UTC: every 5 minutes; the delivery delay of data next to a real
#: gap is SEAM_TIMEOUT_MINUTES plus at most this period.
SEAM_SWEEP_SCHEDULE = "0 */5 * * * *"


@bp.function_name("seams")
@bp.timer_trigger(arg_name="timer", schedule=SEAM_SWEEP_SCHEDULE, run_on_startup=False)
def seams(timer: func.TimerRequest, context: func.Context) -> None:
    settings = get_settings()
    telemetry.configure(settings.appinsights_connection_string)
    with telemetry.operation(
        telemetry.new_operation_id(), traceparent=telemetry.trace_parent_of(context), stage="seams"
    ):
        swept = sweep(
            settings.share_root, load_fields(settings.fields_config), settings.seam_timeout_minutes
        )
        logging.info("seam sweep: %d lonely half(s) emitted", len(swept))
