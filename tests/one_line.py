"""The one check every bad-input test makes: a one-line SpecError naming the field and the bad value."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import rooflax


def one_line_error(call: Callable[[], object], *fragments: str) -> str:
    """Run ``call``; assert it raises a one-line SpecError holding every fragment; return the message."""
    with pytest.raises(rooflax.SpecError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message
