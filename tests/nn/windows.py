"""The window geometry the convolution and pooling kernel tests draw: one strategy for every window kernel."""

from hypothesis import assume
from hypothesis import strategies as st


@st.composite
def windows(draw, maxWidth=7, ceilMode=False):
    """(h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW) with the window fitting at least once; with ``ceilMode``,
    half the time one more window on an axis where it still starts before the trailing pad (ceil mode)."""
    kh, kw, sy, sx = (draw(st.integers(1, 3)) for _ in range(4))
    ph, pw, dy, dx = draw(st.integers(0, 2)), draw(st.integers(0, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, maxWidth))
    outH, outW = (h + 2 * ph - dy * (kh - 1) - 1) // sy + 1, (w + 2 * pw - dx * (kw - 1) - 1) // sx + 1
    assume(outH >= 1 and outW >= 1)
    if ceilMode and draw(st.booleans()):
        outH += (outH * sy < h + ph and (h + 2 * ph - dy * (kh - 1) - 1) % sy != 0)
        outW += (outW * sx < w + pw and (w + 2 * pw - dx * (kw - 1) - 1) % sx != 0)
    return h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW
