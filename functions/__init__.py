"""Azure Functions (Python v2 programming model, blueprints): the `signals` and `risk` triggers.

Each trigger only converts its Event Hubs batch and hands it to the shared batch processor
(`functions.runtime`), which decodes, calls the shared handler, dead-letters bad events and
publishes with the symbol as partition key. There is no trading logic in this package.

Slot isolation: the bindings use the topology's hub names and consumer groups and the connection
setting `EVENTHUB` (topology.EVENTHUB_CONNECTION_SETTING). A staging slot must not consume the
production hubs, so `EVENTHUB__fullyQualifiedNamespace` (or `EVENTHUB`), `AzureWebJobsStorage`
(checkpoints and partition leases) and `DEADLETTER_STORAGE*` are deployment-slot settings
("slot-sticky") pointing at the staging namespace and account; see local.settings.json.example.
"""
