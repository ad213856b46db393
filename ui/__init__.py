"""Streamlit helpers shared by several pages: process-wide cached objects and per-session state.

Unlike `lib`, modules here may import Streamlit; they hold no logic beyond wiring `lib` to the session.
"""
