"""Hypothesis strategies for JSON data an event payload may hold."""

from __future__ import annotations

from hypothesis import strategies as st

#: Text jsonb can hold: no NUL, no lone surrogates (not encodable as UTF-8).
json_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4)
    ),
    max_leaves=20,
)
payloads = st.dictionaries(json_text, json_values, max_size=6)
