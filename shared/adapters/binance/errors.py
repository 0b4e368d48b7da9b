"""What a Binance REST call can end in: the executor's error taxonomy (`shared.execution.venue`),
with the endpoint and Binance's own words.

Binance's documentation decides the class (rest-api.md "HTTP Return Codes", errors.md):

- `Rejected` (a `VenueRejected`): refused, nothing happened (4XX with a code: -1013 filter
  failure, -2010 new order rejected, -1121 bad symbol...). `reason` is Binance's message.
  `AuthError` (key, permissions, signature: -1022, -2014, -2015) and `TimestampError` (-1021
  even after a re-sync and one re-signed retry) are rejections too.
- `NotFound` (an `OrderNotFound`): -2013 "Order does not exist." / -2011 "Unknown order sent.";
  right after a send it can mean "not visible yet".
- `Ambiguous` (a `VenueAmbiguous`): the order may exist (transport error, timeout, dropped
  connection, HTTP 5XX, -1000 / -1006 / -1007 / -1008, a malformed 200). Query, never resend.
- `RateLimited`: HTTP 429 (or -1003 / -1015); nothing is sent until `retry_after_s` passed.
- `Banned`: HTTP 418, the IP is banned for `retry_after_s`; trading halts.

Messages carry the endpoint, the HTTP status, the code and Binance's message; never a key,
secret, signature or the request's parameters.
"""

from __future__ import annotations

import time

from shared.execution import venue as v


class BinanceError(v.VenueError):
    """Base of every error a Binance call raises."""

    def __init__(self, endpoint: str, http_status: int | None, code: int | None, reason: str,
                 retry_after_s: float | None = None) -> None:
        self.endpoint = endpoint
        self.http_status = http_status
        self.code = code
        self.reason = reason
        self.retry_after_s = retry_after_s
        self.until_ms: int | None = (int(time.time() * 1000 + retry_after_s * 1000)
                                     if retry_after_s is not None else None)
        self.detail = self._text()
        Exception.__init__(self, self.detail)

    def _text(self) -> str:
        status = f"HTTP {self.http_status}" if self.http_status is not None else "no response"
        code = f" code {self.code}" if self.code is not None else ""
        after = f" (retry after {self.retry_after_s:g} s)" if self.retry_after_s is not None else ""
        return f"{type(self).__name__}: {self.endpoint}: {status}{code}: {self.reason}{after}"


class Rejected(BinanceError, v.VenueRejected):
    """Refused; nothing happened."""


class AuthError(Rejected):
    """The API key, its permissions or the signature were refused."""


class TimestampError(Rejected):
    """-1021 after a re-sync and one re-signed retry."""


class NotFound(BinanceError, v.OrderNotFound):
    """-2013 / -2011: no such order (or not visible yet)."""


class Ambiguous(BinanceError, v.VenueAmbiguous):
    """Outcome unknown: the request may have been executed."""


class RateLimited(BinanceError, v.RateLimited):
    """HTTP 429: back off for `retry_after_s`."""


class Banned(BinanceError, v.Banned):
    """HTTP 418: the IP is banned for `retry_after_s` (until `until_ms`)."""


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
    if code in AUTH_CODES or http_status == 401:
        return AuthError(endpoint, http_status, code, reason)
    if code == -1021:
        return TimestampError(endpoint, http_status, code, reason)
    return Rejected(endpoint, http_status, code, reason)
