"""Order execution: the venue protocol, the order state machine, the intent store, the executor
core (store before send, last look, reconciliation) and the paper venue."""

from .executor import Executor, IntentOutcome, QueryPolicy, Reconciled, run_sync
from .orders import OrderState, client_order_id
from .paper import PaperVenue
from .records import OrderRecord
from .store import IntentStore, MemoryIntentStore, StaleRecord, restore_book
from .venue import Venue

__all__ = ["Executor", "IntentOutcome", "IntentStore", "MemoryIntentStore", "OrderRecord", "OrderState",
           "PaperVenue", "QueryPolicy", "Reconciled", "StaleRecord", "Venue", "client_order_id", "restore_book",
           "run_sync"]
