"""idTags: what a reader or the local API may present, and how logs show one.

An OCPP 1.6 idTag is a CiString20Type: up to 20 printable characters,
compared case-insensitively. The OCA JSON schema asks only for a string of
at most 20 characters; the station takes 1 to 20 printable ASCII characters
(0x20-0x7E) and keeps the token exactly as given. Blanks are printable and
allowed inside a token, not at either end: a leading or trailing blank
cannot be told from a reader's padding, so it is refused rather than kept
or silently trimmed.

idTags are personal data (card numbers). Log calls wrap them in ``Tag``:
the log formatter (``firmware.logs``) writes the whole tag only when the
daemon logs at DEBUG, and ``mask_id_tag`` (``****B2C3``) everywhere else.
``str()`` of a ``Tag`` is always the masked form, so a tag that reaches a
log line some other way still does not give the card number away.
"""

from __future__ import annotations

ID_TAG_MAX_CHARS = 20
VISIBLE_CHARS = 4  # at most this many characters at the end stay readable
MAX_STARS = 16  # longer text (a junk reader line) does not fill the line with stars


def id_tag_problem(value: object) -> str | None:
    """Why ``value`` is not an idTag a driver may present, None when it is one."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not 1 <= len(value) <= ID_TAG_MAX_CHARS:
        return f"must be 1 to {ID_TAG_MAX_CHARS} characters, got {len(value)}"
    for position, char in enumerate(value, start=1):
        if not " " <= char <= "~":
            return f"must be printable ASCII (0x20-0x7E), got {char!r} at position {position}"
    if value[0] == " " or value[-1] == " ":
        return "must not start or end with a blank"
    return None


def check_id_tag(value: object, name: str = "uid") -> str:
    """``value`` unchanged when it is an idTag; ``ValueError`` naming ``name`` otherwise."""
    problem = id_tag_problem(value)
    if problem is not None:
        raise ValueError(f"{name} {problem}")
    assert isinstance(value, str)
    return value


def same_id_tag(a: str | None, b: str | None) -> bool:
    """Whether two idTags are the same CiString20 (case-insensitive); None matches nothing."""
    return a is not None and b is not None and a.casefold() == b.casefold()


def mask_id_tag(value: str) -> str:
    """``04A1B2C3`` → ``****B2C3``.

    The last four characters stay, but never more than half the tag: a tag of
    four characters or fewer shows at most half of it (``abc`` → ``**c``,
    ``ab`` → ``*b``, ``a`` → ``*``). One star per hidden character, at most
    ``MAX_STARS``.
    """
    visible = min(VISIBLE_CHARS, len(value) // 2)
    hidden = len(value) - visible
    return "*" * min(hidden, MAX_STARS) + value[hidden:]


class Tag:
    """An idTag as a log argument: ``log.info("token %s presented", Tag(id_tag))``.

    ``firmware.logs`` renders it in full at DEBUG and masked otherwise;
    ``str()``/``repr()`` outside that formatter give the masked form.
    """

    __slots__ = ("value",)

    def __init__(self, value: str | None) -> None:
        self.value = value

    def render(self, full: bool) -> str | None:
        """The text a log line shows (None stays None)."""
        if self.value is None or full:
            return self.value
        return mask_id_tag(self.value)

    def __str__(self) -> str:
        return str(self.render(False))

    def __repr__(self) -> str:
        return repr(self.render(False))
