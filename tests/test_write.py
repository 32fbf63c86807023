"""Result files: JSON lines that read back to the records, whatever their strings hold."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from dedup.write import json_line

# Strings with any code point, lone surrogates included (valid in JSON input, not encodable as UTF-8); not a high
# surrogate right before a low one, which no reader gives (JSON reads "\ud800\udc00" as one character).
PAIRED = re.compile("[\ud800-\udbff][\udc00-\udfff]")
any_text = st.text(st.one_of(st.characters(blacklist_categories=()), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
                   ).filter(lambda text: not PAIRED.search(text))
records = st.dictionaries(any_text, st.one_of(any_text, st.integers(), st.booleans(), st.none(),
                                              st.floats(allow_nan=False, allow_infinity=False)), max_size=6)


@given(records)
def test_json_line_reads_back_to_the_record(record: dict[str, object]) -> None:
    line = json_line(record)
    assert line.endswith("\n") and "\n" not in line[:-1]
    line.encode("utf-8")  # (what the result file is written as: a lone surrogate must be escaped)
    assert json.loads(line) == record


def test_a_file_in_a_missing_directory_is_a_clear_error(tmp_path) -> None:
    import pytest

    from dedup.errors import OutputError
    from dedup.write import atomic_open

    with pytest.raises(OutputError, match="cannot write it"):
        with atomic_open(tmp_path / "gone" / "out.jsonl"):
            raise AssertionError("opened")
