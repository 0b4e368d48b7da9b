"""Publishing with the azure-eventhub SDK: one producer client per hub, batches keyed by symbol."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from shared import topology
from shared.adapters.publisher import (
    CONTENT_TYPE,
    PROP_EVENT_TYPE,
    PROP_INTERVAL,
    PROP_SCHEMA_VERSION,
    PublishError,
    group_by_partition_key,
)
from shared.events import Event, encode

from ..tracing import with_current_trace
from .settings import ConfigurationError, default_credential, resolve_connection

log = logging.getLogger(__name__)


class ProducerClient(Protocol):
    """The part of `azure.eventhub.EventHubProducerClient` the publisher uses (tests fake it)."""

    def create_batch(self, *, partition_key: str | None = None, **kwargs: Any) -> Any: ...

    def send_batch(self, event_data_batch: Any, **kwargs: Any) -> None: ...

    def close(self) -> None: ...


ClientFactory = Callable[[str], ProducerClient]


def to_event_data(event: Event, properties: Mapping[str, str] | None = None) -> Any:
    """The wire form: canonical JSON body, deterministic message id, correlation id, type property
    (and the caller's extra application `properties`, such as a replay's `replay` mark)."""
    from azure.eventhub import EventData

    data = EventData(encode(event))
    data.content_type = CONTENT_TYPE
    data.message_id = event.event_id
    data.correlation_id = event.correlation_id
    data.properties = {PROP_EVENT_TYPE: getattr(event, "type", event.TYPE),
                       PROP_SCHEMA_VERSION: event.schema_version}
    interval = getattr(event, "interval", None)
    if isinstance(interval, str):
        data.properties[PROP_INTERVAL] = interval
    if properties:
        data.properties.update(properties)
    return data


class EventHubPublisher:
    """Publishes with the azure-eventhub SDK: one lazily created producer client per hub.

    Events are grouped by partition key (the symbol) and sent in `EventDataBatch`es created with
    that key, so the service keeps each symbol on one partition in order. A batch that fills up
    is sent and a new one started; an event too large for an empty batch is an error.
    """

    def __init__(self, client_factory: ClientFactory) -> None:
        self._factory = client_factory
        self._clients: dict[str, ProducerClient] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, setting: str = topology.EVENTHUB_CONNECTION_SETTING,
                      environ: Mapping[str, str] | None = None,
                      credential: Any | None = None) -> EventHubPublisher:
        """Connect as the trigger bindings do: `<setting>` connection string, or
        `<setting>__fullyQualifiedNamespace` with the managed identity (DefaultAzureCredential)."""
        conn = resolve_connection(setting, "fullyQualifiedNamespace", environ)

        def factory(hub: str) -> ProducerClient:
            from azure.eventhub import EventHubProducerClient

            if conn.connection_string is not None:
                client = EventHubProducerClient.from_connection_string(conn.connection_string,
                                                                       eventhub_name=hub)
            else:
                assert conn.endpoint is not None
                cred = credential if credential is not None else default_credential(conn.client_id)
                client = EventHubProducerClient(fully_qualified_namespace=conn.endpoint, eventhub_name=hub,
                                                credential=cred)
            log.info("event hub producer created for hub %s from setting %s (%s)", hub, conn.setting,
                     "identity" if conn.uses_identity else "connection string")
            return client

        return cls(factory)

    def _client(self, hub: str) -> ProducerClient:
        client = self._clients.get(hub)
        if client is None:
            with self._lock:
                client = self._clients.get(hub)
                if client is None:
                    client = self._clients[hub] = self._factory(hub)
        return client

    def publish(self, hub: str, events: Sequence[Event], properties: Mapping[str, str] | None = None) -> None:
        if not events:
            return
        groups = group_by_partition_key(hub, events)
        properties = with_current_trace(properties)  # the trace this publish continues
        client = self._client(hub)
        try:
            for key, group in groups.items():
                self._send_group(client, hub, key, group, properties)
        except (ConfigurationError, PublishError):
            raise
        except Exception as exc:
            # The SDK already retried; surface a typed error (the trigger lets it propagate so the
            # host retries the input batch). Its text names the hub, never credentials.
            raise PublishError(f"publishing {len(events)} events to hub {hub!r} failed: "
                               f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _send_group(client: ProducerClient, hub: str, key: str, group: Sequence[Event],
                    properties: Mapping[str, str] | None = None) -> None:
        batch = client.create_batch(partition_key=key)
        for event in group:
            data = to_event_data(event, properties)
            try:
                batch.add(data)
                continue
            except ValueError:
                if len(batch) == 0:
                    raise PublishError(f"{type(event).__name__} {event.event_id} does not fit in an empty "
                                       f"batch of hub {hub!r}") from None
            client.send_batch(batch)
            batch = client.create_batch(partition_key=key)
            try:
                batch.add(data)
            except ValueError:
                raise PublishError(f"{type(event).__name__} {event.event_id} does not fit in an empty "
                                   f"batch of hub {hub!r}") from None
        if len(batch):
            client.send_batch(batch)

    def close(self) -> None:
        """Close every producer (process shutdown, tests)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                client.close()
            except Exception:  # closing is best effort; a failure must not mask the caller's error
                log.warning("closing an event hub producer failed", exc_info=True)
