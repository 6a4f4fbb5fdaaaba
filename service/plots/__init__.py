"""Plots of a study: data from trials (`data.py`, no Plotly), Plotly rendering and the registry of plot kinds
(`figures.py`), and the comparison of studies (`compare.py`)."""
