"""The executor service on AKS: the single writer of orders (last-look risk, idempotent orders).

`service` wires the shared executor core to the hubs through the same batch processor the
Functions use; `main` is the process entry point (Event Hubs consumers with a Blob checkpoint
store). Only this service talks to the venue (static egress IP, one rate-limit budget).
"""
