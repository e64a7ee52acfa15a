"""Ray for sweeps: a local instance started here, or a cluster joined, boundedly.

Ray waits for a head that does not answer for a long time and logs a line per attempt. Here
an address is first checked with a plain TCP connection (:func:`check_ray_address`), and
joining is bounded and quiet (:func:`ray_init`): either works, or one line says why.
"""
from __future__ import annotations

import os
import sys

from scenarios.overrides import ConfigError

#: How long a --ray-address HOST:PORT may take to accept a connection before it is refused.
RAY_CONNECT_TIMEOUT_S = 5.0
#: Attempts (about 1 s each) Ray makes to reach a cluster's head (Ray's default: 20).
RAY_CONNECT_RETRIES = 5


def ray_init(address: str, num_cpus: int) -> bool:
    """Start (``local``) or join Ray unless it runs already; True if this call started it.

    Joining is bounded (:data:`RAY_CONNECT_RETRIES` attempts) and its log lines are held back:
    a head that does not answer is one line, not minutes of retries.
    """
    os.environ.setdefault("RAY_NUM_REDIS_GET_RETRIES", str(RAY_CONNECT_RETRIES))  # read on import
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray-address needs Ray: pip install 'sflsim[ray]'") from None
    if ray.is_initialized():
        return False
    env = {"runtime_env": {"env_vars": {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}}}
    if address == "local":
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, **env)
        return True
    held = _HeldStderr()
    try:
        with held:
            ray.init(address=address, log_to_driver=False, **env)
    except ConnectionError:
        raise ConfigError(f"--ray-address {address}: no Ray cluster answered within "
                          f"{RAY_CONNECT_RETRIES} attempts; check the address (ray status on the head)") from None
    held.replay()
    return True


class _HeldStderr:
    """Hold what is written to file descriptor 2 (Ray's C++ core logs there) until replayed."""

    def __enter__(self):
        import tempfile

        sys.stderr.flush()
        self.file = tempfile.TemporaryFile()
        self.saved = os.dup(2)
        os.dup2(self.file.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)

    def replay(self) -> None:
        self.file.seek(0)
        text = self.file.read().decode(errors="replace")
        self.file.close()
        if text:
            sys.stderr.write(text)


def check_ray_address(address: str | None, timeout_s: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """A ``HOST:PORT`` (or ``ray://HOST:PORT``) Ray address accepts a TCP connection in time.

    ``ray.init`` waits for an unreachable head for minutes and logs many lines; a plain
    connection attempt with a timeout says the same in one line, before anything is written.
    ``local`` and ``auto`` are left to Ray.

    Raises:
        ConfigError: a malformed address, an unknown host, or no answer within ``timeout_s``.
    """
    if address is None or address in ("local", "auto"):
        return
    import socket

    text = address.removeprefix("ray://")
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"--ray-address {address}: expected local, auto or HOST:PORT (port 1-65535)")
    try:
        socket.create_connection((host, int(port_text)), timeout=timeout_s).close()
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc) or type(exc).__name__)
        raise ConfigError(f"--ray-address {address}: cannot reach a Ray head there within "
                          f"{timeout_s:g} s ({why})") from None


__all__ = ["RAY_CONNECT_TIMEOUT_S", "RAY_CONNECT_RETRIES", "check_ray_address", "ray_init"]
