"""Function `signals`: klines from hub `market-data` -> SignalHandler -> hub `signals`.

Glue only: the processor decodes, calls the shared handler, dead-letters bad events and
publishes. The annotation must stay `typing.List[...]`: the Python worker's Event Hubs converter
does not recognise the builtin `list[...]` generic, and this module must not use
`from __future__ import annotations` (the worker reads the annotation object).
"""

import typing

import azure.functions as func

from functions import runtime
from shared import topology

bp = func.Blueprint()

# Every raise reaches the retry policy: checkpoints are written only after it gives up, and it
# never does (-1) because a raise here means publishing or dead-lettering failed, not a bad event.
RETRY_STRATEGY = "exponential_backoff"
RETRY_MAX_COUNT = "-1"
RETRY_MIN_INTERVAL = "00:00:01"
RETRY_MAX_INTERVAL = "00:05:00"


@bp.function_name("signals")
@bp.retry(strategy=RETRY_STRATEGY, max_retry_count=RETRY_MAX_COUNT, minimum_interval=RETRY_MIN_INTERVAL,
          maximum_interval=RETRY_MAX_INTERVAL)
@bp.event_hub_message_trigger(
    arg_name="events",
    connection=topology.EVENTHUB_CONNECTION_SETTING,
    event_hub_name=topology.MARKET_DATA.name,
    consumer_group=topology.consumer_group(topology.MARKET_DATA.name, runtime.SIGNALS_CONSUMER),
    cardinality=func.Cardinality.MANY,
    data_type=func.DataType.BINARY,
)
def signals(events: typing.List[func.EventHubEvent]) -> None:  # noqa: UP006 (see module docstring)
    """Klines in, signals out; bad events are dead-lettered, publish failures raise for a retry."""
    runtime.run(runtime.signals_processor(), events)
