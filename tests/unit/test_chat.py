"""evoembedding_core.chat: the one rule that folds chat messages into segments."""

from __future__ import annotations

import pytest

from evoembedding_core.chat import MessageFormatError, fold_chat, fold_messages, format_message, validate_messages

CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "I grew up in Porto."},
    {"role": "assistant", "content": "Porto is lovely."},
    {"role": "assistant", "content": "Anything else?"},
    {"role": "user", "content": "I moved to Oslo."},
    {"role": "user", "content": "Last spring."},
]


def test_unit_message_is_one_segment_per_message():
    assert fold_messages(CHAT) == fold_messages(CHAT, unit="message") == [format_message(m) for m in CHAT]
    assert fold_messages(CHAT)[:3] == ["System: Be brief.", "User: I grew up in Porto.", "Assistant: Porto is lovely."]


def test_unit_pair_joins_a_user_message_and_the_reply_after_it():
    assert fold_messages(CHAT, unit="pair") == [
        "System: Be brief.",
        "User: I grew up in Porto.\nAssistant: Porto is lovely.",
        "Assistant: Anything else?",
        "User: I moved to Oslo.",
        "User: Last spring.",
    ]
    # the last message pairs too: no sentinel message is needed to fold a whole conversation
    assert fold_messages(CHAT[1:3], unit="pair") == ["User: I grew up in Porto.\nAssistant: Porto is lovely."]
    assert fold_messages([], unit="pair") == fold_messages([]) == []


def test_fold_chat_splits_off_the_query():
    assert fold_chat(CHAT[:5]) == (fold_messages(CHAT[:4], unit="pair"), "I moved to Oslo.")
    assert fold_chat(CHAT[:5], unit="message") == (fold_messages(CHAT[:4]), "I moved to Oslo.")
    assert fold_chat(CHAT[-1:]) == ([], "Last spring.")


def test_validate_messages_returns_clean_copies():
    source = [{"role": "user", "content": "Hi.", "name": "ana"}]
    assert validate_messages(source) == [{"role": "user", "content": "Hi."}]
    assert source[0]["name"] == "ana"


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: fold_chat([]), MessageFormatError, "non-empty list"),
        (lambda: fold_chat("hello"), MessageFormatError, "non-empty list"),
        (lambda: fold_messages("hello"), MessageFormatError, r"messages must be a list"),
        (lambda: fold_messages([{"role": "user"}]), MessageFormatError, r"messages\[0\] must be a dict"),
        (lambda: fold_messages(["hi"]), MessageFormatError, r"messages\[0\] must be a dict"),
        (lambda: fold_messages([{"role": "bot", "content": "hi"}]), ValueError, r"messages\[0\]\['role'\]"),
        (lambda: fold_messages([{"role": "user", "content": " "}]), ValueError, r"messages\[0\]\['content'\]"),
        (lambda: fold_messages([{"role": "user", "content": 3}]), TypeError, r"messages\[0\]\['content'\]"),
        (lambda: fold_messages(CHAT, unit="turn"), ValueError, "unit must be"),
        (lambda: format_message({"content": "hi"}), MessageFormatError, "message"),
    ],
)
def test_bad_input_raises_naming_the_problem(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_shape_errors_are_both_type_and_value_errors():
    assert issubclass(MessageFormatError, TypeError) and issubclass(MessageFormatError, ValueError)
