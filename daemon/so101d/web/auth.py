"""Access to the web process: the token file, the cookie it is exchanged for, and the
per-address backoff after wrong tokens.

Nothing here imports aiohttp: the token file is also read by ``so101d web-url`` and written
by the installer's call of ``so101d web-token``.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("so101d.web")

TOKEN_MODE = 0o640  # root and the service group read it; nobody else
COOKIE = "so101d_token"
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
FREE_FAILURES = 3  # wrong tokens from one address before it has to wait
FAILURE_LOG_INTERVAL_S = 10.0
MAX_TRACKED_ADDRESSES = 1024  # beyond this, addresses no longer waiting are forgotten
HOW_TO_GET_THE_URL = "run `sudo so101d web-url` on the Pi and open the address it prints"


class TokenError(Exception):
    """The token file cannot be read or made: the message names it and what to do."""


def read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise TokenError(
            f"no web token at {path}: `sudo deploy/install.sh` makes it, or start "
            "`so101d web` once (it makes one when it may write there)"
        ) from None
    except PermissionError:
        raise TokenError(f"cannot read the web token {path}: run with sudo") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenError(f"cannot read the web token {path}: {exc}") from exc
    if len(token) < 16:
        raise TokenError(f"the web token in {path} is too short; delete the file to make one")
    return token


def ensure_token(path: Path) -> str:
    """The token in ``path``; a new random one (mode 0640) when the file does not exist."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, TOKEN_MODE)
    except FileExistsError:
        return read_token(path)
    except OSError as exc:
        raise TokenError(f"cannot create the web token {path}: {exc.strerror}") from exc
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        os.fchmod(file.fileno(), TOKEN_MODE)  # whatever the umask
        file.write(token + "\n")
    log.info("made a new web token in %s", path)
    return token


def web_url(hostname: str, port: int, token: str) -> str:
    """The address a person opens: the Pi's mDNS name, so it works from any machine on the LAN."""
    host = hostname if hostname.endswith(".local") else f"{hostname}.local"
    return f"http://{host}:{port}/?token={token}"


@dataclass
class _Failures:
    count: int = 0
    blocked_until: float = 0.0


class Gate:
    """Checks tokens; an address that sends wrong ones waits longer and longer."""

    def __init__(self, token: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._token = token.encode()
        self._clock = clock
        self._failures: dict[str, _Failures] = {}
        self._unlogged = 0
        self._next_log = 0.0

    def valid(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), self._token)

    def retry_after(self, address: str) -> float:
        """Seconds ``address`` must wait before its next try counts; 0 when it may try."""
        failures = self._failures.get(address)
        return max(0.0, failures.blocked_until - self._clock()) if failures else 0.0

    def failed(self, address: str) -> None:
        if len(self._failures) >= MAX_TRACKED_ADDRESSES:
            now = self._clock()
            self._failures = {a: f for a, f in self._failures.items() if f.blocked_until > now}
        failures = self._failures.setdefault(address, _Failures())
        failures.count += 1
        if failures.count > FREE_FAILURES:
            backoff = FIRST_BACKOFF_S * 2 ** (failures.count - FREE_FAILURES - 1)
            failures.blocked_until = self._clock() + min(MAX_BACKOFF_S, backoff)
        self._unlogged += 1
        now = self._clock()
        if now >= self._next_log:
            log.warning(
                "web: %d request(s) with a wrong token since the last report (latest from %s)",
                self._unlogged,
                address,
            )
            self._unlogged = 0
            self._next_log = now + FAILURE_LOG_INTERVAL_S

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)
