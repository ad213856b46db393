"""Streamlit-side: the presenter view, one switch that readies every page for a projector.

The switch sits in the shared sidebar and lives in the session; the link carries it as `presenter=1`
(`lib.links.presenter_from_query_params` reads it, a value it cannot use leaves the view off and is quoted
under the switch). While it is on, every page gets larger type and high contrast (`PRESENTER_CSS`), the
sidebar folds away, and every chart is drawn in `lib.charts.PRESENTER`: sized for 1280 x 720 px at 150 % zoom,
larger text, black on white.
"""

from __future__ import annotations

import streamlit as st

from lib.charts import PRESENTER, SCREEN, ChartStyle
from lib.links import PRESENTER_PARAM, presenter_from_query_params
from ui.keys import Key

PRESENTER_FONT_PX = 20  # the page's base font in the presenter view: 1.25 x Streamlit's 16 px
PRESENTER_LINK_VALUE = "1"  # what the link says while the view is on
SWITCH_HELP = (
    "For a projector: larger type, high contrast and charts sized for a 1280 x 720 screen at 150 % zoom. "
    "The link keeps it, so a shared address opens in this view."
)

# Streamlit sizes text in rem, so a larger root font grows every text; captions and labels are grey by
# default, too light on a projector, so they turn black. The wider content leaves more room to each chart.
PRESENTER_CSS = f"""<style>
html {{ font-size: {PRESENTER_FONT_PX}px !important; }}
[data-testid="stMain"] [data-testid="stMarkdownContainer"],
[data-testid="stMain"] [data-testid="stCaptionContainer"],
[data-testid="stMain"] [data-testid="stWidgetLabel"],
[data-testid="stMain"] [data-testid="stMetricLabel"],
[data-testid="stMain"] [data-testid="stMetricValue"],
[data-testid="stMain"] h1, [data-testid="stMain"] h2, [data-testid="stMain"] h3,
[data-testid="stSidebar"] [data-testid="stMarkdownContainer"],
[data-testid="stSidebar"] [data-testid="stCaptionContainer"],
[data-testid="stSidebarNav"] span {{ color: #000000 !important; opacity: 1 !important; }}
[data-testid="stMainBlockContainer"] {{ padding-left: 1.5rem !important; padding-right: 1.5rem !important; }}
</style>"""


def presenter_on() -> bool:
    """Whether this session shows the presenter view."""
    return bool(st.session_state.get(Key.PRESENTER, False))


def chart_style() -> ChartStyle:
    """The style every chart of this session is drawn in: `PRESENTER` while the view is on, else `SCREEN`."""
    return PRESENTER if presenter_on() else SCREEN


def draw_switch() -> None:
    """The sidebar's presenter switch; a session's first run sets it from the link, quoting a value it ignored."""
    if Key.PRESENTER not in st.session_state:
        on, notices = presenter_from_query_params(st.query_params.to_dict())
        st.session_state[Key.PRESENTER] = on
        st.session_state[Key.PRESENTER_NOTICES] = tuple(notices)
    st.toggle("Presenter view", key=Key.PRESENTER, help=SWITCH_HELP, on_change=_forget_notices)
    for notice in st.session_state.get(Key.PRESENTER_NOTICES, ()):
        st.caption(f":material/link: {notice.markdown()}")  # a caption, not a warning: the view is the only loss


def apply_presenter_view() -> None:
    """While the view is on: larger type and high contrast for the whole page, and the sidebar folded away.

    The style takes no space on the page. The sidebar folds when the view starts, leaving the projector's
    whole width to the page; once someone opens or closes it by hand, the browser keeps their choice.
    """
    if presenter_on():
        st.html(PRESENTER_CSS)
        st.set_page_config(initial_sidebar_state="collapsed")


def keep_in_link() -> None:
    """Puts `presenter=1` in the address while the view is on, and takes it out when it is off.

    Called after the page has run: the Build and Train pages rewrite the whole link, and switching pages
    starts from an address without it.
    """
    if presenter_on():
        if st.query_params.get(PRESENTER_PARAM) != PRESENTER_LINK_VALUE:
            st.query_params[PRESENTER_PARAM] = PRESENTER_LINK_VALUE
    elif PRESENTER_PARAM in st.query_params:
        del st.query_params[PRESENTER_PARAM]


def _forget_notices() -> None:
    """Once the switch is used, what the link said about it no longer matters."""
    st.session_state[Key.PRESENTER_NOTICES] = ()
