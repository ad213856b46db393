"""Altair chart builders: each takes a tidy pandas DataFrame and returns an `alt.Chart`.

Pages only place the charts; what is drawn, its encodings, units and tooltips are decided here, so
they can be unit-tested by inspecting `chart.to_dict()`. Colours use a colour-blind-safe scheme.
This is the only `lib` module that imports Altair.
"""

from __future__ import annotations

COLOR_SCHEME = "tableau10"  # colour-blind-safe categorical scheme


# --- Datasets page charts ---


# --- "What is a GPU?" page charts ---


# --- Training results charts ---
