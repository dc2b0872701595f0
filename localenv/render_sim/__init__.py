"""A local simulator of Render's public API, backed by a real PostgreSQL cluster.

    from localenv.render_sim import start
    server = start(state_dict_or_yaml_path, cluster, api_key="...")
    server.base_url   # http://127.0.0.1:PORT/v1
    ...
    server.stop()

See model.py for the world it simulates (services and their deploys in service.py and
deploys.py, Postgres instances in postgres.py) and server.py for the HTTP side (rate limits,
fault injection, the request journal; routes in routes.py, operations in api_handlers.py,
the /__sim__ control endpoints in control.py). ``python -m localenv.render_sim --help`` runs it alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import yaml

from localenv.render_sim.model import Simulator
from localenv.render_sim.server import SimServer

__all__ = ["SimServer", "Simulator", "load_state", "start"]


def load_state(source) -> dict:
    """A state dict from a dict or a YAML file path."""
    if isinstance(source, dict):
        return source
    with open(source) as handle:
        state = yaml.safe_load(handle) or {}
    if not isinstance(state, dict):
        raise ValueError(f"{source}: the simulator state must be a YAML mapping")
    state.setdefault("workdir", None)
    return state


def start(state, cluster, *, api_key: str, port: int = 0, host: str = "127.0.0.1",
          workdir: str | None = None) -> SimServer:
    """Build the world (roles, databases, processes) and serve the API on a free port."""
    runtime_dir = tempfile.mkdtemp(prefix="render-sim-")
    try:
        sim = Simulator(load_state(state), cluster, runtime_dir=runtime_dir, workdir=workdir)
        server = SimServer(sim, api_key, host=host, port=port)
    except BaseException:
        shutil.rmtree(runtime_dir, ignore_errors=True)
        raise
    original_stop = server.stop

    def stop():
        try:
            original_stop()
        finally:
            shutil.rmtree(runtime_dir, ignore_errors=True)

    server.stop = stop
    server.start()
    try:
        sim.start()
    except BaseException:
        server.stop()
        raise
    return server


def runtime_dir_exists(server: SimServer) -> bool:
    return os.path.isdir(server.sim.runtime_dir)
