"""MarketFlow's domain and adapters: one implementation for the Functions, the executor and replay."""
