"""What a reload applies: runtime keys from the new settings, every other key kept."""

from __future__ import annotations

from pathlib import Path

from radius_contracts.reload import RUNTIME_KEYS, changed_keys, merge
from radius_contracts.settings import Settings, load_settings


def settings(**sections: dict[str, object]) -> Settings:
    return load_settings(None, state_dir=Path("/tmp/rc-state"), **sections)


def test_merge_takes_runtime_keys_and_keeps_the_others() -> None:
    old = settings(radius={"auth_port": 1812, "reply_message": True}, coa={"tries": 3})
    new = settings(
        radius={"auth_port": 11812, "reply_message": False},
        coa={"tries": 5, "max_in_flight": 10},
        api={"port": 9999},
        logging={"level": "DEBUG"},
    )
    merged = merge(old, new)
    assert merged.radius.reply_message is False and merged.coa.tries == 5
    assert merged.logging.level == "DEBUG"
    # Sockets, queues and the API are built at start: they keep their running values.
    assert merged.radius.auth_port == 1812
    assert merged.coa.max_in_flight == old.coa.max_in_flight
    assert merged.api.port == old.api.port
    assert changed_keys(old, merged) == ["coa.tries", "logging.level", "radius.reply_message"]


def test_changed_keys_names_every_difference_by_its_dotted_key() -> None:
    old = settings()
    new = settings(database={"url": "sqlite:///x.db"}, radius={"bind": ["127.0.0.1", "::1"]})
    assert changed_keys(old, new) == ["database.url", "radius.bind"]
    assert changed_keys(old, old) == []


def test_every_runtime_key_is_a_setting() -> None:
    dumped = settings().model_dump()
    for key in RUNTIME_KEYS:
        section, name = key.split(".")
        assert name in dumped[section], key
