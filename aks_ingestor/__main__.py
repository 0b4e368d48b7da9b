"""`python -m aks_ingestor`: the ingestor with its settings from the environment."""

from .main import main

raise SystemExit(main())
