"""Binance adapters: the REST venue parts (python-binance's AsyncClient) and the market streams.

REST modules: `credentials` (keys from the environment, redacted), `rest` (the client with its
base URL set before the first request, time sync, per-request headers, typed calls),
`throttle` (request-weight and order-count budgets), `errors` (what a call can end in),
`models` (typed responses), `exchange_info` (filters and rate limits, cached and refreshed).
"""
