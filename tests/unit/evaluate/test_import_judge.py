"""eval.judge.callable names a module:function; a typo or a non-function must be a UserError
(exit 2, one line) at preflight, not an ImportError after training."""

from __future__ import annotations

import os.path

import pytest

from semrl.errors import UserError
from semrl.evaluate.preference import import_judge


def test_a_named_function_is_imported() -> None:
    assert import_judge("os.path:join") is os.path.join


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("semrl_no_such_module:judge", "cannot import semrl_no_such_module:judge"),
        ("os.path:no_such_function", "cannot import os.path:no_such_function"),
        ("os.path:sep", "os.path:sep is not callable"),
    ],
)
def test_a_bad_judge_is_one_clear_line(spec: str, says: str) -> None:
    with pytest.raises(UserError) as caught:
        import_judge(spec)
    assert says in str(caught.value)
    assert str(caught.value).startswith("eval.judge.callable: ")
    assert "\n" not in str(caught.value)
