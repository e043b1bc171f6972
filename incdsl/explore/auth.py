"""Ray's token authentication when `incdsl explore --address HOST:PORT` joins a cluster.

Ray 2.60 turns token authentication on for every cluster it starts while a token exists on the
machine (~/.ray/auth_token, which a local `ray.init()` writes), `ray start --head` included; a
driver given an explicit address does not send its token unless RAY_AUTH_MODE=token, and then
retries for about 21 s, printing a warning each second, before a bare ConnectionError. Here: Ray's
connect window is cut to a few seconds; a driver refused for want of a token tries once more with
the token found on this machine (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token), as Ray
does itself for `address="auto"` (not at first: a cluster without auth fails a driver in token
mode when it creates actors), its warnings are kept off the terminal, and a refusal for want of
the right token becomes one error naming the fix. No Ray import here."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from ..errors import UsageError

MODE = "RAY_AUTH_MODE"
WAIT = "RAY_gcs_server_port_wait_time_s"  # Ray's tries (about 1 s each) to reach a cluster's GCS
WAIT_TRIES = 5
REFUSED = ("Unauthenticated", "InvalidAuthToken")  # what Ray's GCS client logs for a missing token


def token_here() -> bool:
    """Whether this machine has a Ray token where Ray looks for one: the RAY_AUTH_TOKEN variable, the
    file RAY_AUTH_TOKEN_PATH names, or ~/.ray/auth_token (not empty)."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    try:
        return bool(Path(path).read_text().strip())
    except OSError:
        return False


def send_token_if_here() -> bool:
    """Set RAY_AUTH_MODE=token for this process where it is unset and a token is here, and have Ray
    read its configuration again (as Ray's own `ray.init(address="auto")` does: Ray is loaded by
    then). Returns whether it did (an explicit RAY_AUTH_MODE is the user's choice and stays). Only
    after a refusal: a driver in token mode is refused in turn by a cluster without auth."""
    if os.environ.get(MODE) is not None or not token_here():
        return False
    os.environ[MODE] = "token"
    if "ray" in sys.modules:
        from ray._raylet import Config  # Ray's own refresh (authentication_token_setup)
        Config.initialize("")
    return True


class TokenRefused(UsageError):
    """A Ray cluster refused this driver for want of the right token (`refused` words it)."""


@contextlib.contextmanager
def joining(address: str):
    """Around `ray.init(address=...)`: Ray's connect window cut to WAIT_TRIES seconds (the address
    answered on TCP already: tuning.check_reachable), Ray's C++ warnings on stderr (file descriptor
    2) kept aside, and a `ConnectionError` they show to be an authentication refusal raised as
    `UsageError` naming the fix; any other is raised again, its warnings printed."""
    wait = os.environ.get(WAIT)
    os.environ[WAIT] = str(WAIT_TRIES)
    kept = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as aside:
        os.dup2(aside.fileno(), 2)
        try:
            yield
        except ConnectionError:
            os.dup2(kept, 2)
            aside.seek(0)
            said = aside.read().decode(errors="replace")
            if any(word in said for word in REFUSED):
                raise refused(address) from None
            os.write(2, said.encode()[-4000:])
            raise
        finally:
            os.dup2(kept, 2)
            os.close(kept)
            if wait is None:
                os.environ.pop(WAIT, None)
            else:
                os.environ[WAIT] = wait


def refused(address: str) -> TokenRefused:
    """The error for a cluster that refused this machine's token (or its lack of one)."""
    sent = os.environ.get(MODE) == "token"
    return TokenRefused(
        f"the Ray cluster at {address} uses token authentication (Ray's default where a token exists "
        f"on the head node) and "
        + ("refused the token of this machine" if sent else "this machine has no token")
        + ": copy the head's token (`ray get-auth-token` there) to ~/.ray/auth_token here or into "
        "RAY_AUTH_TOKEN, or start the cluster with RAY_AUTH_MODE=disabled")
