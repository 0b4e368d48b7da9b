"""Function `risk`: signals from hub `signals` -> RiskHandler -> order intents to hub `orders`.

Glue only, like `functions.signals` (same annotation and retry rules). Risk decisions have no
hub in the topology: they go to logs and the `marketflow.decisions` metric.
"""

import typing

import azure.functions as func

from functions import runtime
from functions.signals import RETRY_MAX_COUNT, RETRY_MAX_INTERVAL, RETRY_MIN_INTERVAL, RETRY_STRATEGY
from shared import topology

bp = func.Blueprint()


@bp.function_name("risk")
@bp.retry(strategy=RETRY_STRATEGY, max_retry_count=RETRY_MAX_COUNT, minimum_interval=RETRY_MIN_INTERVAL,
          maximum_interval=RETRY_MAX_INTERVAL)
@bp.event_hub_message_trigger(
    arg_name="events",
    connection=topology.EVENTHUB_CONNECTION_SETTING,
    event_hub_name=topology.SIGNALS.name,
    consumer_group=topology.consumer_group(topology.SIGNALS.name, runtime.RISK_CONSUMER),
    cardinality=func.Cardinality.MANY,
    data_type=func.DataType.BINARY,
)
def risk(events: typing.List[func.EventHubEvent]) -> None:  # noqa: UP006 (see functions.signals)
    """Signals in, order intents out; bad events are dead-lettered, publish failures raise."""
    runtime.run(runtime.risk_processor(), events)
