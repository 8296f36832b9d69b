"""The listing index: right rows, fast substring search, cache reuse and incremental update."""

from __future__ import annotations

from legacy import LEGACY_SAMPLES

from ledger.api import Ledger
from ledger.index import cached_index, load_index


def test_rows_follow_the_ledger(filled: Ledger) -> None:
    index = load_index(filled.store)
    assert len(index) == 5
    assert [index.row(i).kind for i in range(5)] == ["genesis"] + ["evidence"] * 4
    entries = list(filled.entries())
    assert [index.row(i).digest for i in range(5)] == [e.digest for e in entries]
    assert index.row(2).runner == "evidence.v43.v1"


def test_search_finds_rows_by_any_column_any_case(filled: Ledger) -> None:
    index = load_index(filled.store)
    entries = list(filled.entries())
    assert index.search("EVIDENCE.V43") == [2, 4]
    assert index.search(entries[3].digest[7:19]) == [3]
    assert index.search("genesis") == [0]
    assert index.search("no such text") == []
    assert index.search("") == [0, 1, 2, 3, 4]
    assert index.search("v43", among=[0, 1, 2]) == [2]
    # a match never spills over into the next row's text
    last_of_row0, first_of_row1 = index.search_text()[0][-3:], index.search_text()[1][:3]
    assert index.search(last_of_row0 + " " + first_of_row1) == []


def test_cache_is_reused_and_updated_incrementally(filled: Ledger) -> None:
    first = load_index(filled.store)
    assert cached_index(filled.store) is not None  # exact cache for HEAD now exists
    filled.append_files(LEGACY_SAMPLES[:1], key_name="alice")
    assert cached_index(filled.store) is None  # HEAD moved
    reads: list[int] = []
    original = filled.store.read_blobs

    def counting(shas):  # type: ignore[no-untyped-def]
        shas = list(shas)
        reads.append(len(shas))
        return original(shas)

    filled.store.read_blobs = counting  # type: ignore[method-assign]
    second = load_index(filled.store)
    assert len(second) == len(first) + 1
    assert sum(reads) == 1  # only the new entry was read


def test_preview_of_the_first_rows_while_building(filled: Ledger) -> None:
    previews = []
    index = load_index(filled.store, preview=previews.append, preview_rows=2)
    [head] = previews
    assert head.seq == [0, 1] and len(index) == 5
    assert [head.row(i).digest for i in range(2)] == [index.row(i).digest for i in range(2)]
    previews.clear()
    load_index(filled.store, preview=previews.append, preview_rows=2)  # from cache: none
    assert previews == []
