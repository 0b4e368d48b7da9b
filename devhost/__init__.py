"""A local Azure Functions host for when Core Tools are absent (`marketflow host`).

It reads the registered functions of a v2 `FunctionApp` (the same `function_app.app` the Python
worker indexes) and host.json's Event Hubs settings, consumes each Event Hub trigger's hub with
the azure-eventhub SDK and a Blob checkpoint store, turns each received batch into
`azure.functions.EventHubEvent`s through the azure-functions library's own trigger converter
(with the trigger metadata the real host sends), applies each function's retry policy, and
checkpoints after each batch even when the function raised, once the policy is done, as the
Functions host does. Dev tooling, not the product: it depends on neither `shared` nor the emulator.
"""
