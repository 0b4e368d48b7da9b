"""The intent store in Azure Table storage: the executor's in Azure (tested on Azurite).

One table; every entity of one account shares a partition (`account`, the PartitionKey), so a
record and the book it changed are written in one entity-group transaction: both or neither.
Rows: `o:<intent id>` (one per intent: its record as JSON, its state, `Open`) and `book` (the
position book as JSON). Concurrency is Table storage's own: each write names the ETag it read
(`If-Match`), and a write over a newer version fails (StaleRecord) instead of overwriting.
A string property holds at most 64 KiB (32K UTF-16 characters), so JSON is split over `Body0`,
`Body1`, ... (an entity holds at most 1 MiB; a record or the book stays far below that).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters.azure.settings import aio_credential, resolve_connection
from shared.execution.orders import FINAL
from shared.execution.records import OrderRecord
from shared.execution.store import StaleRecord, book_state
from shared.portfolio import PositionBook

DEFAULT_TABLE = "marketflowintents"
INTENT_STORAGE_SETTING = "INTENT_STORAGE"  # connection string, or INTENT_STORAGE__tableServiceUri (identity)
BOOK_ROW = "book"
_CHUNK = 30_000  # characters per string property (the limit is 32K UTF-16 code units)
_STALE_CODES = frozenset({"UpdateConditionNotSatisfied", "EntityAlreadyExists", "ConditionNotMet"})


def _row(intent_id: str) -> str:
    return f"o:{intent_id}"


def _split(body: str) -> dict[str, str]:
    parts = [body[i:i + _CHUNK] for i in range(0, len(body), _CHUNK)] or [""]
    return {f"Body{i}": part for i, part in enumerate(parts)}


def _joined(entity: Any) -> str:
    out = []
    i = 0
    while f"Body{i}" in entity:
        out.append(entity[f"Body{i}"])
        i += 1
    return "".join(out)


def _stale(err: HttpResponseError) -> bool:
    code = getattr(err, "error_code", None)
    return str(code) in _STALE_CODES or err.status_code in (409, 412)


class TableIntentStore:
    """`IntentStore` on Azure Table storage. Build it with `from_connection_string` or a
    `TableClient`; `ensure_table()` creates the table if needed."""

    def __init__(self, client: TableClient, account: str = "executor") -> None:
        self._client = client
        self.account = account
        self._book_etag: str | None = None

    @classmethod
    def from_connection_string(cls, conn_str: str, table: str = DEFAULT_TABLE, account: str = "executor"
                               ) -> TableIntentStore:
        return cls(TableClient.from_connection_string(conn_str, table_name=table), account)

    @classmethod
    def from_settings(cls, setting: str = INTENT_STORAGE_SETTING, *, table: str = DEFAULT_TABLE,
                      account: str = "executor", environ: Mapping[str, str] | None = None,
                      credential: Any | None = None) -> TableIntentStore:
        """`<setting>` connection string (`UseDevelopmentStorage=true` for Azurite), or
        `<setting>__tableServiceUri` with the workload identity (Storage Table Data Contributor)."""
        conn = resolve_connection(setting, "tableServiceUri", environ)
        if conn.connection_string is not None:
            return cls.from_connection_string(conn.connection_string, table, account)
        assert conn.endpoint is not None
        cred = credential if credential is not None else aio_credential(conn.client_id)
        return cls(TableClient(conn.endpoint, table_name=table, credential=cred), account)

    async def ensure_table(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._client.create_table()

    def _order_entity(self, record: OrderRecord) -> dict[str, Any]:
        return {"PartitionKey": self.account, "RowKey": _row(record.intent_id),
                "ClientOrderId": record.client_order_id, "Symbol": record.symbol, "State": record.state.value,
                "Open": record.state not in FINAL, **_split(record.to_json())}

    def _book_entity(self, book: PositionBook) -> dict[str, Any]:
        return {"PartitionKey": self.account, "RowKey": BOOK_ROW,
                **_split(json.dumps(book_state(book), separators=(",", ":")))}

    async def get(self, intent_id: str) -> OrderRecord | None:
        try:
            entity = await self._client.get_entity(self.account, _row(intent_id))
        except ResourceNotFoundError:
            return None
        return OrderRecord.from_json(_joined(entity), etag=entity.metadata["etag"])

    async def create(self, record: OrderRecord) -> bool:
        try:
            meta = await self._client.create_entity(self._order_entity(record))
        except ResourceExistsError:
            return False
        record.etag = meta["etag"]
        return True

    def _book_operation(self, book: PositionBook) -> tuple[Any, ...]:
        entity = self._book_entity(book)
        if self._book_etag is None:
            return ("create", entity)
        return ("update", entity, {"mode": UpdateMode.REPLACE, "etag": self._book_etag,
                                   "match_condition": MatchConditions.IfNotModified})

    async def save(self, record: OrderRecord, book: PositionBook | None = None) -> None:
        op = ("update", self._order_entity(record), {"mode": UpdateMode.REPLACE, "etag": record.etag,
                                                     "match_condition": MatchConditions.IfNotModified})
        if book is None:
            try:
                meta = await self._client.update_entity(op[1], mode=UpdateMode.REPLACE, etag=record.etag,
                                                        match_condition=MatchConditions.IfNotModified)
            except HttpResponseError as err:
                if _stale(err):
                    raise StaleRecord(f"intent {record.intent_id} changed since it was read") from err
                raise
            record.etag = meta["etag"]
            return
        try:
            results = await self._client.submit_transaction([op, self._book_operation(book)])
        except TableTransactionError as err:
            if _stale(err):
                raise StaleRecord(f"intent {record.intent_id} or the book changed since read") from err
            raise
        record.etag = results[0]["etag"]
        self._book_etag = results[1]["etag"]

    async def save_book(self, book: PositionBook) -> None:
        op = self._book_operation(book)
        try:
            if op[0] == "create":
                meta = await self._client.create_entity(op[1])
            else:
                meta = await self._client.update_entity(op[1], **op[2])
        except (ResourceExistsError, HttpResponseError) as err:
            if isinstance(err, ResourceExistsError) or _stale(err):
                raise StaleRecord("the book changed since it was read") from err
            raise
        self._book_etag = meta["etag"]

    async def open_records(self) -> list[OrderRecord]:
        out = []
        entities = self._client.query_entities("PartitionKey eq @pk and Open eq true",
                                               parameters={"pk": self.account})
        async for entity in entities:
            out.append(OrderRecord.from_json(_joined(entity), etag=entity.metadata["etag"]))
        return out

    async def load_book(self) -> dict[str, Any] | None:
        try:
            entity = await self._client.get_entity(self.account, BOOK_ROW)
        except ResourceNotFoundError:
            return None
        self._book_etag = entity.metadata["etag"]
        data: dict[str, Any] = json.loads(_joined(entity))
        return data

    async def close(self) -> None:
        await self._client.close()
