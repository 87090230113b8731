"""The app each worker process of ``digitrec serve --workers N`` builds for itself.

uvicorn starts worker processes from an import string, not from an app object,
so the command line puts its settings in an environment variable that every
worker inherits, and each worker builds its own app (and loads its own copy of
the model) from them.
"""

from __future__ import annotations

import json
import os
from typing import Any

#: The environment variable that carries the settings to the workers (JSON).
SETTINGS_VARIABLE = "DIGITREC_SERVE_SETTINGS"
#: What ``uvicorn.run`` imports in each worker.
FACTORY = "digitrec.serving._workers:app_from_environment"


def settings_json(model: str | None, threads: int, options: dict[str, Any]) -> str:
    """The settings as workers read them: model path, torch threads, ``create_app`` options."""
    return json.dumps({"model": model, "threads": threads, "options": options})


def app_from_environment() -> Any:
    """Build the app from the settings in ``$DIGITREC_SERVE_SETTINGS``."""
    import torch

    from .app import create_app

    settings = json.loads(os.environ[SETTINGS_VARIABLE])
    torch.set_num_threads(settings["threads"])
    return create_app(settings["model"], **settings["options"])
