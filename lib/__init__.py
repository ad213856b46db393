"""The app's logic: plain Python, no Streamlit import. See docs/ARCHITECTURE.md."""
