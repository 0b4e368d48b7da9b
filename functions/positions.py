"""Function `positions`: execution reports from hub `executions` and marks from `market-data` ->
the account book -> the account snapshot document `risk` reads.

Two triggers, one book: `positions` books fills, `positions_marks` marks the positions at each
closed kline's close (equity, the UTC day's start, the peak). Each batch is one compare-and-set
transaction on the shared account document (shared.adapters.account.StoredPositions), so any
number of instances owning any partitions keep one consistent account. Nothing is published to
a hub. Same annotation and retry rules as `functions.signals`.
"""

import typing

import azure.functions as func

from functions import runtime
from functions.signals import RETRY_MAX_COUNT, RETRY_MAX_INTERVAL, RETRY_MIN_INTERVAL, RETRY_STRATEGY
from shared import topology

bp = func.Blueprint()


@bp.function_name("positions")
@bp.retry(strategy=RETRY_STRATEGY, max_retry_count=RETRY_MAX_COUNT, minimum_interval=RETRY_MIN_INTERVAL,
          maximum_interval=RETRY_MAX_INTERVAL)
@bp.event_hub_message_trigger(
    arg_name="events",
    connection=topology.EVENTHUB_CONNECTION_SETTING,
    event_hub_name=topology.EXECUTIONS.name,
    consumer_group=topology.consumer_group(topology.EXECUTIONS.name, runtime.POSITIONS_CONSUMER),
    cardinality=func.Cardinality.MANY,
    data_type=func.DataType.BINARY,
)
def positions(events: typing.List[func.EventHubEvent]) -> None:  # noqa: UP006 (see functions.signals)
    """Execution reports in, the account document updated; store failures raise for a retry."""
    runtime.run(runtime.positions_processor(), events)


@bp.function_name("positions_marks")
@bp.retry(strategy=RETRY_STRATEGY, max_retry_count=RETRY_MAX_COUNT, minimum_interval=RETRY_MIN_INTERVAL,
          maximum_interval=RETRY_MAX_INTERVAL)
@bp.event_hub_message_trigger(
    arg_name="events",
    connection=topology.EVENTHUB_CONNECTION_SETTING,
    event_hub_name=topology.MARKET_DATA.name,
    consumer_group=topology.consumer_group(topology.MARKET_DATA.name, runtime.POSITIONS_CONSUMER),
    cardinality=func.Cardinality.MANY,
    data_type=func.DataType.BINARY,
)
def positions_marks(events: typing.List[func.EventHubEvent]) -> None:  # noqa: UP006 (see functions.signals)
    """Closed klines in, the account marked; store failures raise for a retry."""
    runtime.run(runtime.positions_marks_processor(), events)
