"""Binance adapters: the REST venue and the market streams (python-binance, websockets)."""
