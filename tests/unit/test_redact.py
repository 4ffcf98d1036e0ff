"""Redaction with many known secrets (a process of many portfolios) replaces exactly what
searching the text for every secret in turn replaces."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.logs import FEW_SECRETS, GRAM, REDACTED, Secrets

ALPHABET = "abcAB01*-_ "
secret_text = st.text(alphabet=ALPHABET, min_size=GRAM, max_size=12)


def _every_secret_in_turn(secrets: tuple[str, ...], text: str) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


@settings(max_examples=300, deadline=None)
@given(
    secrets=st.lists(secret_text, min_size=0, max_size=3 * FEW_SECRETS, unique=True),
    pieces=st.lists(st.one_of(st.text(alphabet=ALPHABET, max_size=8), st.integers(0, 99))),
)
def test_indexed_redaction_replaces_what_a_search_for_every_secret_replaces(
    secrets: list[str], pieces: list[str | int]
) -> None:
    registry = Secrets()
    for secret in secrets:
        registry.add(secret)
    # The text: free pieces and some of the secrets themselves, side by side.
    text = "".join(
        secrets[p % len(secrets)] if isinstance(p, int) and secrets else str(p) for p in pieces
    )
    assert registry.redact(text) == _every_secret_in_turn(registry.longest_first, text)


def test_a_secret_among_thousands_is_redacted_and_other_text_is_left_alone() -> None:
    registry = Secrets()
    keys = [f"Key{i:05d}abcdefABCDEF0123" for i in range(3000)]
    for key in keys:
        registry.add(key)
    line = f'{{"error": "Invalid API-key {keys[1234]}", "nav": "1000.5"}}'
    assert registry.redact(line) == f'{{"error": "Invalid API-key {REDACTED}", "nav": "1000.5"}}'
    assert registry.redact("no secret here") == "no secret here"
