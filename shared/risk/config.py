"""Risk configuration: every limit with a documented default, from environment or a file.

The environment variable of a key is `MARKETFLOW_RISK_` plus the key in upper case.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RiskConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETFLOW_RISK_", extra="forbid", frozen=True)

    order_equity_share: float = Field(
        default=1.0, gt=0, le=1, description="share of equity a BUY spends (fees included)")
