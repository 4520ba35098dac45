"""Chat messages as segments: the one rule for turning ``{"role", "content"}`` messages into texts.

A message becomes the segment ``"Role: content"`` (``"User: ..."``, ``"Assistant: ..."``,
``"System: ..."``). :func:`fold_messages` folds a conversation in one of two units:

* ``unit="message"``: one segment per message, in order.
* ``unit="pair"``: a user message and the assistant reply right after it form one segment,
  ``"User: ...\\nAssistant: ..."`` (how the EvoEmbedding authors read conversations); any other
  message (a system message, an assistant message with no user message before it, a user message
  with no reply) is a segment of its own.

:func:`fold_chat` splits off the last message as the query, the way the client reads a chat.

>>> fold_messages([{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello!"}], unit="pair")
['User: Hi.\\nAssistant: Hello!']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .validation import check_choice, validate_id

__all__ = [
    "ROLES",
    "UNITS",
    "MessageFormatError",
    "check_unit",
    "fold_chat",
    "fold_messages",
    "format_message",
    "message_groups",
    "validate_messages",
]

ROLES = {"user": "User", "assistant": "Assistant", "system": "System"}
"""The accepted roles and the label each one gets in a segment."""

UNITS = ("message", "pair")
"""The accepted values of ``unit``."""


class MessageFormatError(TypeError, ValueError):
    """A message list or a message has the wrong shape (not a list, not a dict, or a key missing).

    It is both a ``TypeError`` and a ``ValueError``, so either ``except`` clause catches it.
    """


def validate_messages(messages, what: str = "messages", *, non_empty: bool = False) -> list[dict]:
    """Check a list of chat messages.

    Args:
        messages: A list of mappings, each with ``"role"`` (``"user"``, ``"assistant"`` or
            ``"system"``) and ``"content"`` (a non-empty string); other keys are ignored.
        what: The argument's name, used in error messages.
        non_empty: Reject an empty list.

    Returns:
        The messages as new ``{"role", "content"}`` dicts, in order.

    Raises:
        MessageFormatError: ``messages`` is not a list (or is empty with ``non_empty``), or an item
            is not a mapping with ``"role"`` and ``"content"``.
        ValueError: A role is not one of :data:`ROLES`, or a content is empty or whitespace-only.
        TypeError: A content is not a string.
    """
    shape = "a non-empty list" if non_empty else "a list"
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes, bytearray)):
        raise MessageFormatError(
            f"{what} must be {shape} of {{'role', 'content'}} dicts, got {type(messages).__name__}"
        )
    if non_empty and not messages:
        raise MessageFormatError(f"{what} must be {shape} of {{'role', 'content'}} dicts, got an empty list")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise MessageFormatError(f"{what}[{i}] must be a dict with 'role' and 'content'")
        role = message["role"]
        if not isinstance(role, str) or role not in ROLES:
            raise ValueError(f"{what}[{i}]['role'] must be 'user', 'assistant' or 'system', got {role!r}")
        out.append({"role": role, "content": validate_id(message["content"], f"{what}[{i}]['content']")})
    return out


def format_message(message: Mapping) -> str:
    """One message as a segment.

    Args:
        message: A mapping with ``"role"`` and ``"content"`` (as for :func:`validate_messages`).

    Returns:
        ``"Role: content"``, e.g. ``"User: I moved to Oslo."``.

    Raises:
        MessageFormatError: ``message`` is not a mapping with ``"role"`` and ``"content"``.
        ValueError: The role is unknown or the content is empty.
        TypeError: The content is not a string.
    """
    (message,) = validate_messages([message], "message")
    return _segment(message)


def fold_messages(messages: Sequence[Mapping], *, unit: str = "message") -> list[str]:
    """Fold a conversation into segments, in order (see the module docstring for the rule).

    Args:
        messages: Chat messages (as for :func:`validate_messages`); an empty list gives no segments.
        unit: ``"message"`` (one segment per message) or ``"pair"`` (a user message and the
            assistant reply right after it form one segment).

    Returns:
        The segments, in conversation order.

    Raises:
        MessageFormatError: ``messages`` or one of its items has the wrong shape.
        ValueError: A role is unknown, a content is empty, or ``unit`` is not one of :data:`UNITS`.
        TypeError: A content is not a string.
    """
    messages = validate_messages(messages)
    return ["\n".join(_segment(messages[i]) for i in group) for group in message_groups(messages, unit=unit)]


def check_unit(unit: str) -> str:
    """``unit`` if it is one of :data:`UNITS`.

    Raises:
        ValueError: Another value.
    """
    return check_choice(unit, "unit", UNITS)


def message_groups(messages: Sequence[Mapping], *, unit: str = "message") -> list[list[int]]:
    """Which messages each segment of :func:`fold_messages` holds: their indices, in order.

    Args:
        messages: Validated chat messages.
        unit: As in :func:`fold_messages`.

    Returns:
        One list of message indices per segment.

    Raises:
        ValueError: ``unit`` is not one of :data:`UNITS`.
    """
    if check_unit(unit) == "message":
        return [[i] for i in range(len(messages))]
    groups: list[list[int]] = []
    i = 0
    while i < len(messages):
        if messages[i]["role"] == "user" and i + 1 < len(messages) and messages[i + 1]["role"] == "assistant":
            groups.append([i, i + 1])
            i += 2
        else:
            groups.append([i])
            i += 1
    return groups


def fold_chat(messages: Sequence[Mapping], *, unit: str = "pair") -> tuple[list[str], str]:
    """Split a chat into its history segments and the query (the last message's content).

    Args:
        messages: A non-empty list of chat messages (as for :func:`validate_messages`).
        unit: How the history is folded, as for :func:`fold_messages`.

    Returns:
        ``(segments, query)``: the history before the last message folded into segments, and the
        last message's content (without its role label).

    Raises:
        MessageFormatError: ``messages`` is empty or not a list, or an item has the wrong shape.
        ValueError: A role is unknown, a content is empty, or ``unit`` is not one of :data:`UNITS`.
        TypeError: A content is not a string.
    """
    *history, last = validate_messages(messages, non_empty=True)
    return fold_messages(history, unit=unit), last["content"]


def _segment(message: dict) -> str:
    return f"{ROLES[message['role']]}: {message['content']}"
