"""What a Binance REST call can end in, classified for the executor.

Binance's own words decide the class (rest-api.md "HTTP Return Codes", errors.md):

- `Rejected`: the request was refused and nothing happened (4XX with a code, e.g. -1013 filter
  failure, -2010 new order rejected, -1121 bad symbol). `reason` is Binance's message.
- `NotFound`: -2013 "Order does not exist" (or -2011 "Unknown order sent" on cancel); right
  after a send it can also mean "not visible yet".
- `Ambiguous`: the outcome is unknown and the order may exist (a transport error, a timeout, a
  dropped connection, HTTP 5XX, -1006 / -1007). The caller must query, never resend blindly.
- `RateLimited`: HTTP 429 (or -1003 / -1015); nothing is sent until `retry_after_s` has passed.
- `Banned`: HTTP 418, the IP is banned for `retry_after_s`; trading halts.
- `AuthError`: the key, its permissions or the signature were refused (-1022, -2014, -2015).
- `TimestampError`: -1021 even after re-syncing the clock and re-signing once.

Messages carry the endpoint, the HTTP status, the code and Binance's message; never a key,
secret, signature or the request's parameters.
"""

from __future__ import annotations


class BinanceError(Exception):
    """Base of every error a Binance call raises."""

    def __init__(self, endpoint: str, http_status: int | None, code: int | None, reason: str,
                 retry_after_s: float | None = None) -> None:
        self.endpoint = endpoint
        self.http_status = http_status
        self.code = code
        self.reason = reason
        self.retry_after_s = retry_after_s
        super().__init__(self._text())

    def _text(self) -> str:
        status = f"HTTP {self.http_status}" if self.http_status is not None else "no response"
        code = f" code {self.code}" if self.code is not None else ""
        after = f" (retry after {self.retry_after_s:g} s)" if self.retry_after_s is not None else ""
        return f"{type(self).__name__}: {self.endpoint}: {status}{code}: {self.reason}{after}"


class Rejected(BinanceError):
    """Refused; nothing happened."""


class NotFound(Rejected):
    """-2013 / -2011: no such order (or not visible yet)."""


class Ambiguous(BinanceError):
    """Outcome unknown: the request may have been executed."""


class RateLimited(BinanceError):
    """HTTP 429: back off for `retry_after_s`."""


class Banned(BinanceError):
    """HTTP 418: the IP is banned for `retry_after_s`."""


class AuthError(Rejected):
    """The API key, its permissions or the signature were refused."""


class TimestampError(Rejected):
    """-1021 after a re-sync and one re-signed retry."""


AMBIGUOUS_CODES = frozenset({-1000, -1001, -1006, -1007, -1008})
AUTH_CODES = frozenset({-1002, -1022, -2014, -2015})
NOT_FOUND_CODES = frozenset({-2011, -2013})
RATE_CODES = frozenset({-1003, -1015})


def classify(endpoint: str, http_status: int, code: int | None, reason: str,
             retry_after_s: float | None) -> BinanceError:
    """The error for one non-2XX response."""
    if http_status == 418:
        return Banned(endpoint, http_status, code, reason, retry_after_s)
    if http_status == 429 or code in RATE_CODES:
        return RateLimited(endpoint, http_status, code, reason, retry_after_s)
    if http_status >= 500 or code in AMBIGUOUS_CODES:
        return Ambiguous(endpoint, http_status, code, reason, retry_after_s)
    if code in NOT_FOUND_CODES:
        return NotFound(endpoint, http_status, code, reason)
    if code in AUTH_CODES or http_status in (401, 403):
        return AuthError(endpoint, http_status, code, reason)
    if code == -1021:
        return TimestampError(endpoint, http_status, code, reason)
    return Rejected(endpoint, http_status, code, reason)
