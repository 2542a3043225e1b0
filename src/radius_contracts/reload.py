"""What a SIGHUP may change: the settings applied at once, and those that wait for a restart.

A reload re-reads the config file and validates it whole; then only the keys in
:data:`RUNTIME_KEYS` take their new values. Every other key that changed (sockets, the
database, the API, state_dir, sizes of queues and pools built at start) keeps its old value,
and the daemon names it in a warning, so the running process and its settings never disagree.
"""

from __future__ import annotations

from typing import Any

from radius_contracts.settings import Settings

RUNTIME_KEYS = frozenset(
    {
        "logging.level",
        "logging.format",
        "radius.dictionary",
        "radius.extra_dictionary_dirs",
        "radius.reject_delay",
        "radius.reply_message",
        "radius.duplicate_window",
        "radius.max_delayed_rejects",
        "radius.chap_challenge_window",
        "accounting.interim_interval",
        "auth_log.retention_days",
        "auth_log.max_rows",
        "auth_log.flush_interval",
        "auth_log.max_pending",
        "auth_log.unknown_rows_per_minute",
        "coa.timeout",
        "coa.tries",
        "coa.backoff",
        # RadSec: new TLS files for new handshakes (established connections keep theirs), and
        # the limits; enabled, bind and port need a restart.
        "radsec.certificate",
        "radsec.private_key",
        "radsec.ca_file",
        "radsec.handshake_timeout",
        "radsec.idle_timeout",
        "radsec.max_connections",
        "radsec.max_in_flight",
        "radsec.radius_1_1",
    }
)
"""Dotted keys a reload applies; their consumers read them on every use or take new values."""


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """Dotted keys whose value differs between ``old`` and ``new``, sorted."""
    before, after = _flatten(old.model_dump()), _flatten(new.model_dump())
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def merge(old: Settings, new: Settings) -> Settings:
    """``old`` with the keys of :data:`RUNTIME_KEYS` taken from ``new``."""
    updates: dict[str, dict[str, Any]] = {}
    for key in RUNTIME_KEYS:
        section, _, name = key.partition(".")
        updates.setdefault(section, {})[name] = getattr(getattr(new, section), name)
    # Both are validated already: copying whole sections keeps each one valid.
    return old.model_copy(
        update={
            section: getattr(old, section).model_copy(update=values)
            for section, values in updates.items()
        }
    )
