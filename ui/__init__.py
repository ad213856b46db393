"""What the pages share beyond `lib`: Streamlit wiring and the pages' own plain helpers.

`runtime`, `session`, `build_state` and `rerun_cleanup` import Streamlit and hold no logic beyond wiring `lib`
to the server process and the session. `keys` (widget and session-state keys) and `page_data` (widget values
<-> spec, filters, history tables) are plain Python, tested without a browser: presentation, not domain logic,
so they live here rather than in `lib`. No `lib` module imports `ui`.
"""
