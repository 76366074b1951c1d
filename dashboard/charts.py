"""Figures reused while their data is unchanged: each distinct input is drawn once, for every session.

Building a Plotly figure in Python costs 0.1-0.5 s (plotly validates every property), and a page
redraws its figures on every rerun: each click, each live refresh. ``figure(builder, *args)`` keys
the pure builder's result on a digest of its inputs (DataFrames by content), so a rerun over the
same data reuses the figure and new data draws a new one at once: a figure is never older than the
data it was given. Streamlit copies a figure into JSON when it sends it and never changes it, so one
figure object can serve every session.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

FIGURE_TTL_S = 600  # an unused figure is dropped after this long
MAX_FIGURES = 64  # distinct inputs kept (pages x machines x windows x filters in use)


def _feed(h: Any, value: Any) -> None:
    if isinstance(value, pd.DataFrame | pd.Series):
        frame = value.to_frame() if isinstance(value, pd.Series) else value
        h.update(pickle.dumps((type(value).__name__, list(frame.columns))))
        h.update(pickle.dumps([str(t) for t in frame.dtypes]))
        try:
            h.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
        except TypeError:  # unhashable cells (lists, dicts): their pickle says the same
            h.update(pickle.dumps(value))
    elif isinstance(value, list | tuple):
        h.update(f"{type(value).__name__}{len(value)}".encode())
        for v in value:
            _feed(h, v)
    elif isinstance(value, dict):
        h.update(f"dict{len(value)}".encode())
        for k, v in value.items():
            _feed(h, k)
            _feed(h, v)
    else:
        h.update(pickle.dumps(value))


def digest(*args: Any, **kwargs: Any) -> str:
    """A digest of a builder's inputs: equal for equal data, different when any value differs."""
    h = hashlib.blake2b(digest_size=16)
    _feed(h, args)
    _feed(h, sorted(kwargs.items()))
    return h.hexdigest()


@st.cache_resource(ttl=FIGURE_TTL_S, max_entries=MAX_FIGURES, show_spinner=False)
def _built(
    name: str, key: str, _build: Callable[..., go.Figure], _args: Any, _kwargs: Any
) -> go.Figure:
    return _build(*_args, **_kwargs)


def figure(build: Callable[..., go.Figure], *args: Any, **kwargs: Any) -> go.Figure:
    """``build(*args, **kwargs)``, drawn once per distinct input (not to be modified: it is shared)."""
    name = f"{build.__module__}.{build.__qualname__}"
    return _built(name, digest(*args, **kwargs), build, args, kwargs)
