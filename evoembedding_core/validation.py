"""Argument checks shared by the whole library: texts, ids, integers, flags, choices.

Every public entry point validates its input through these functions, so one rule (and one error
message) holds everywhere: a bad argument raises ``TypeError`` / ``ValueError`` naming the argument
and the problem before anything is computed or stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def validate_texts(texts, what: str = "texts") -> list[str]:
    """Check a list of texts to embed.

    Args:
        texts: A list of non-empty strings; a single string is accepted as one text.
        what: The argument's name, used in error messages.

    Returns:
        The texts as a new list.

    Raises:
        TypeError: ``texts`` is not a string or a sequence of strings.
        ValueError: A text is empty, whitespace-only, or not valid Unicode.
    """
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or isinstance(texts, (bytes, bytearray)):
        raise TypeError(f"{what} must be a list of strings, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{what}[{i}] must be a string, got {type(text).__name__}")
        if not text.strip():
            raise ValueError(f"{what}[{i}] is empty or whitespace-only")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"{what}[{i}] is not valid Unicode text (lone surrogate at {exc.start})") from None
    return list(texts)


def validate_id(value, what: str, *, optional: bool = False) -> str | None:
    """Check one identifier (a stream id, a user id, a document id).

    Args:
        value: The id: a non-empty string.
        what: The argument's name, used in error messages.
        optional: Accept ``None`` (and return it).

    Returns:
        The id, unchanged.

    Raises:
        TypeError: ``value`` is not a string.
        ValueError: ``value`` is empty, whitespace-only or not valid Unicode.
    """
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    return validate_texts([value], what)[0]


def validate_ids(ids, what: str = "ids") -> list[str]:
    """Check one id or an iterable of ids.

    Args:
        ids: A string or an iterable of strings.
        what: The argument's name, used in error messages.

    Returns:
        The ids as a list.

    Raises:
        TypeError: ``ids`` is not a string or an iterable of strings.
    """
    if isinstance(ids, str):
        return [ids]
    if not isinstance(ids, Iterable) or isinstance(ids, (bytes, bytearray, Mapping)):
        raise TypeError(f"{what} must be a list of strings, got {type(ids).__name__}")
    ids = list(ids)
    for k, i in enumerate(ids):
        if not isinstance(i, str):
            raise TypeError(f"{what}[{k}] must be a string, got {type(i).__name__}")
    return ids


def is_int(value) -> bool:
    """True for a real integer (``bool`` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(value, what: str, *, minimum: int | None = None, maximum: int | None = None, optional: bool = False):
    """Check an integer argument and its range.

    Args:
        value: The value to check.
        what: The argument's name, used in error messages.
        minimum: Smallest allowed value, if any.
        maximum: Largest allowed value, if any.
        optional: Accept ``None`` (and return it).

    Returns:
        ``value``, unchanged.

    Raises:
        ValueError: ``value`` is not an integer (``True`` is not one) or is out of range.
    """
    if value is None and optional:
        return None
    in_range = is_int(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not in_range:
        bounds = {(1, None): "a positive integer", (0, None): "a non-negative integer"}.get((minimum, maximum))
        if bounds is None:
            limits = [f">= {minimum}"] * (minimum is not None) + [f"<= {maximum}"] * (maximum is not None)
            bounds = (
                " and ".join(["an integer", *limits]) if len(limits) < 2 else f"an integer in [{minimum}, {maximum}]"
            )
        raise ValueError(f"{what} must be {bounds}, got {value!r}")
    return value


def check_positive_int(value, what: str, *, optional: bool = False):
    """Check a positive integer (``k``, ``top_k``, ``limit``, sizes).

    Args:
        value: The value to check.
        what: The argument's name, used in error messages.
        optional: Accept ``None`` (and return it).

    Returns:
        ``value``, unchanged.

    Raises:
        ValueError: ``value`` is not an integer >= 1.
    """
    return check_int(value, what, minimum=1, optional=optional)


def check_bool(value, what: str, *, optional: bool = False):
    """Check a flag.

    Args:
        value: The value to check.
        what: The argument's name, used in error messages.
        optional: Accept ``None`` (and return it).

    Returns:
        ``value``, unchanged.

    Raises:
        TypeError: ``value`` is not ``True`` or ``False``.
    """
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return value


def check_number(value, what: str, *, minimum: float | None = None, maximum: float | None = None):
    """Check a real number (an int or a float; ``bool`` is not one) and its range.

    Args:
        value: The value to check.
        what: The argument's name, used in error messages.
        minimum: Smallest allowed value, if any.
        maximum: Largest allowed value, if any.

    Returns:
        ``value``, unchanged.

    Raises:
        ValueError: ``value`` is not a number, is NaN, or is out of range.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        bounds = {
            (True, True): f" in [{minimum}, {maximum}]",
            (True, False): f" >= {minimum}",
            (False, True): f" <= {maximum}",
        }.get((minimum is not None, maximum is not None), "")
        raise ValueError(f"{what} must be a number{bounds}, got {value!r}")
    return value


def check_choice(value, what: str, choices: Sequence):
    """Check that a value is one of a few allowed ones.

    Args:
        value: The value to check.
        what: The argument's name, used in error messages.
        choices: The allowed values, in the order the error message lists them.

    Returns:
        ``value``, unchanged.

    Raises:
        ValueError: ``value`` is none of ``choices``.
    """
    if value not in choices:
        names = [repr(c) for c in choices]
        allowed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise ValueError(f"{what} must be {allowed}, got {value!r}")
    return value
