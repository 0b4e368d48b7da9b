"""The ingestor service on AKS: Binance market streams into the `market-data` hub.

The same image as the executor, started with `python -m aks_ingestor` (settings from the
environment, see `settings`); `marketflow ingest` runs the same code with CLI options.
"""
