"""idTags a reader or the local API may present, and their masked form."""

from __future__ import annotations

import logging

import pytest

from hal.tokens import Tag, check_id_tag, id_tag_problem, mask_id_tag, same_id_tag


@pytest.mark.parametrize(
    "tag",
    [
        "RFID_VALID1",
        "TAG0001",
        "user-42",
        "abc",
        "a",
        "04a1b2c3",
        "x" * 20,
        "two words",
        "!\"#$%&'()*+,-./:;<=>",  # punctuation is printable ASCII too
        "?@[\\]^_`{|}~",
    ],
)
def test_any_printable_tag_of_1_to_20_characters_is_kept_as_given(tag: str) -> None:
    assert id_tag_problem(tag) is None
    assert check_id_tag(tag) is tag


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "uid must be 1 to 20 characters, got 0"),
        ("x" * 21, "uid must be 1 to 20 characters, got 21"),
        ("04A1\n", "uid must be printable ASCII (0x20-0x7E), got '\\n' at position 5"),
        ("a\tb", "uid must be printable ASCII (0x20-0x7E), got '\\t' at position 2"),
        ("\x7f", "uid must be printable ASCII (0x20-0x7E), got '\\x7f' at position 1"),
        ("carte-é", "uid must be printable ASCII (0x20-0x7E), got 'é' at position 7"),
        (" 04A1", "uid must not start or end with a blank"),
        ("04A1 ", "uid must not start or end with a blank"),
        (" ", "uid must not start or end with a blank"),
        (42, "uid must be a string, got int"),
        (None, "uid must be a string, got NoneType"),
        (b"04A1", "uid must be a string, got bytes"),
    ],
)
def test_bad_tags_are_refused_with_the_reason(value: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        check_id_tag(value)
    assert str(err.value) == message


def test_matching_is_case_insensitive() -> None:
    assert same_id_tag("RFID_valid1", "rfid_VALID1")
    assert not same_id_tag("RFID_VALID1", "RFID_VALID2")
    assert not same_id_tag(None, None) and not same_id_tag("a", None)


@pytest.mark.parametrize(
    ("tag", "masked"),
    [
        ("04A1B2C3", "****B2C3"),
        ("RFID_VALID1", "*******LID1"),
        ("04A1B2C3D4E5F6A7B8C9", "****************B8C9"),
        ("user-42", "****-42"),  # seven characters: three shown, never more than half
        ("abcde", "***de"),
        ("abcd", "**cd"),
        ("abc", "**c"),
        ("ab", "*b"),
        ("a", "*"),
        ("", ""),
        ("z" * 64, "*" * 16 + "zzzz"),  # a junk line does not fill the log with stars
    ],
)
def test_mask_shows_at_most_the_last_four_and_never_half(tag: str, masked: str) -> None:
    assert mask_id_tag(tag) == masked


def test_tag_renders_masked_unless_asked_for_in_full() -> None:
    tag = Tag("RFID_VALID1")
    assert str(tag) == f"{tag}" == "*******LID1"
    assert repr(tag) == "'*******LID1'"
    assert tag.render(True) == "RFID_VALID1" and tag.render(False) == "*******LID1"
    assert str(Tag(None)) == "None" and Tag(None).render(True) is None


def test_a_foreign_formatter_gets_the_masked_form(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="test.tokens"):
        logging.getLogger("test.tokens").info("token %s presented", Tag("04A1B2C3"))
    assert caplog.messages == ["token ****B2C3 presented"]
