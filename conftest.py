"""Names every doctest in src/ can use without importing them."""

from typing import Any

import numpy as np
import pytest
import torch

import digitrec


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace: dict[str, Any]) -> None:
    doctest_namespace.update(digitrec=digitrec, torch=torch, np=np)
