"""The restricted template engine: syntax, errors with positions, rendering, no Python reach."""

from __future__ import annotations

import pytest

from radius_contracts.aaa.templates import (
    MissingVariable,
    Template,
    TemplateError,
    Text,
    Variable,
    parse_template,
)


def test_parse_template_splits_literals_and_variables() -> None:
    template = parse_template("{max_upload}/{max_download}")

    assert template.parts == (
        Variable("max_upload", 0),
        Text("/"),
        Variable("max_download", 13),
    )
    assert template.variables == frozenset({"max_upload", "max_download"})
    assert template.render({"max_upload": "10M", "max_download": "50M"}) == "10M/50M"


def test_parse_template_without_variables_renders_the_text() -> None:
    template = parse_template("rate-limit")

    assert template.variables == frozenset()
    assert template.render({}) == "rate-limit"


def test_empty_template_renders_empty() -> None:
    assert parse_template("").render({}) == ""


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("{{", "{"),
        ("}}", "}"),
        ("{{username}}", "{username}"),
        ("{{{username}}}", "{sample}"),
        ("a{{b}}c{username}", "a{b}csample"),
        ("}}{username}{{", "}sample{"),
    ],
)
def test_doubled_braces_are_literal(text: str, rendered: str) -> None:
    assert parse_template(text).render({"username": "sample"}) == rendered


def test_literal_braces_do_not_declare_variables() -> None:
    assert parse_template("{{username}}").variables == frozenset()


@pytest.mark.parametrize(
    "name",
    ["custom.vlan", "custom.Static-IP_2", "customer.segment", "customer.ERP-id"],
)
def test_custom_field_forms_are_variables(name: str) -> None:
    template = parse_template(f"x-{{{name}}}")

    assert template.variables == frozenset({name})
    assert template.render({name: "v"}) == "x-v"


def test_same_variable_twice_renders_twice() -> None:
    template = parse_template("{username}@{username}")

    assert template.variables == frozenset({"username"})
    assert template.render({"username": "u"}) == "u@u"


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("abc {def", 4, "unbalanced '{'"),
        ("{max_upload/{max_download}", 0, "unbalanced '{'"),
        ("{", 0, "unbalanced '{'"),
        ("a}b", 1, "unbalanced '}'"),
        ("{username}}", 10, "unbalanced '}'"),
        ("{{username}", 10, "unbalanced '}'"),
        ("x{}", 1, "empty '{}'"),
        ("{a.b}", 2, "attribute access is not allowed"),
        ("{custom.a.b}", 9, "attribute access is not allowed"),
        ("{custom.}", 8, "missing custom field key"),
        ("{customer.}", 10, "missing custom field key"),
        ("{a[0]}", 2, "indexing is not allowed"),
        ("{a!r}", 2, "conversions such as !r are not allowed"),
        ("{a:>10}", 2, "format specs are not allowed"),
        ("{ a}", 1, "spaces are not allowed"),
        ("{a }", 2, "spaces are not allowed"),
        ("{custom.a b}", 9, "spaces are not allowed"),
        ("{Username}", 1, "start with a lowercase letter"),
        ("{user-name}", 5, "variable names use a-z 0-9 _"),
        ("{custom.a$}", 9, "custom field keys use"),
    ],
)
def test_bad_templates_name_the_position(text: str, position: int, reason: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_template(text)

    assert caught.value.position == position
    assert reason in caught.value.reason
    assert str(caught.value).endswith(f"at position {position}")


def test_error_message_reads_as_a_sentence() -> None:
    with pytest.raises(TemplateError, match=r"^unbalanced '\{' at position 7$"):
        parse_template("rate = {max_upload")


def test_template_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="position"):
        parse_template("}")


@pytest.mark.parametrize(
    "text",
    [
        "{__class__}",
        "{username.__class__}",
        "{username.__class__.__mro__}",
        "{0}",
        "{0.__class__}",
        "{username!r}",
        "{username!s}",
        "{username:>99999}",
        "{username:{max_upload}}",
        "{username[0]}",
        "{custom.vlan.__class__}",
        "{custom.__init__.__globals__}",
        "{_private}",
        "{}",
    ],
)
def test_python_attributes_and_format_features_are_unreachable(text: str) -> None:
    with pytest.raises(TemplateError):
        parse_template(text)


def test_values_are_not_expanded_again() -> None:
    template = parse_template("{username}")

    assert template.render({"username": "{ipv4}{{", "ipv4": "x"}) == "{ipv4}{{"


def test_missing_variable_names_it_and_its_position() -> None:
    template = parse_template("ip={ipv4}")

    with pytest.raises(MissingVariable) as caught:
        template.render({"username": "u"})

    assert caught.value.name == "ipv4"
    assert caught.value.position == 3
    assert str(caught.value) == "no value for variable 'ipv4' at position 3"


def test_missing_variable_is_a_template_error_not_a_key_error() -> None:
    template = parse_template("{ipv4}")

    with pytest.raises(TemplateError) as caught:
        template.render({})

    assert not isinstance(caught.value, KeyError)
    assert caught.value.__cause__ is None


def test_missing_variable_reports_the_first_missing_one() -> None:
    template = parse_template("{username}-{ipv4}-{ipv6}")

    with pytest.raises(MissingVariable) as caught:
        template.render({"username": "u", "ipv6": "p"})

    assert caught.value.name == "ipv4"


def test_parse_template_is_cached() -> None:
    assert parse_template("{username}/cached") is parse_template("{username}/cached")


def test_templates_are_immutable_values() -> None:
    first = parse_template("{username}")

    assert first == Template("{username}", (Variable("username", 0),))
    assert hash(first) == hash(Template("{username}", (Variable("username", 0),)))
    with pytest.raises(AttributeError):
        first.source = "{ipv4}"  # type: ignore[misc]


# --- {name|fallback} -------------------------------------------------------------------------


def test_fallback_is_part_of_the_variable() -> None:
    template = parse_template("{max_upload}/{min_upload|0}")

    assert template.parts == (
        Variable("max_upload", 0),
        Text("/"),
        Variable("min_upload", 13, fallback="0"),
    )
    assert template.variables == frozenset({"max_upload", "min_upload"})
    assert template.required == frozenset({"max_upload"})


def test_fallback_renders_when_the_variable_has_no_value() -> None:
    template = parse_template("{max_upload}/{min_upload|0}")

    assert template.render({"max_upload": "10M"}) == "10M/0"
    assert template.render({"max_upload": "10M", "min_upload": "2M"}) == "10M/2M"


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("{ipv4|}", ""),
        ("a{ipv4|}b", "ab"),
        ("{ipv4|no address}", "no address"),
        ("{custom.vlan|1}", "1"),
        ("{ipv4|x.y:z!r[0]}", "x.y:z!r[0]"),
        ("{{{ipv4|0}}}", "{0}"),
    ],
)
def test_fallback_is_literal_text(text: str, rendered: str) -> None:
    assert parse_template(text).render({}) == rendered


def test_fallback_is_not_expanded() -> None:
    assert parse_template("{ipv4|username}").render({"username": "u"}) == "username"


def test_missing_required_variable_next_to_a_fallback_still_raises() -> None:
    template = parse_template("{min_upload|0}/{ipv4}")

    with pytest.raises(MissingVariable) as caught:
        template.render({})

    assert (caught.value.name, caught.value.position) == ("ipv4", 15)


def test_same_variable_with_and_without_fallback_is_required() -> None:
    template = parse_template("{ipv4|0}-{ipv4}")

    assert template.required == frozenset({"ipv4"})
    with pytest.raises(MissingVariable):
        template.render({})


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("{|0}", 1, "missing variable name before '|'"),
        ("{min_upload|{max_upload}}", 12, "a fallback is literal text: no braces"),
        ("{min_upload|a{b}", 13, "a fallback is literal text: no braces"),
        ("{min_upload|0|1}", 13, "a fallback is literal text: no second '|'"),
        ("{min_upload|0", 0, "unbalanced '{'"),
        ("{min_upload|0}}", 14, "unbalanced '}'"),
        ("{a.b|0}", 2, "attribute access is not allowed"),
        ("{a:>3|0}", 2, "format specs are not allowed"),
        ("{ a|0}", 1, "spaces are not allowed"),
    ],
)
def test_bad_fallbacks_name_the_position(text: str, position: int, reason: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_template(text)

    assert caught.value.position == position
    assert reason in caught.value.reason


def test_templates_with_different_fallbacks_differ() -> None:
    assert parse_template("{ipv4|0}") != parse_template("{ipv4|1}")
    assert parse_template("{ipv4|}") != parse_template("{ipv4}")
