"""Settings: TOML file, environment overrides, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from radius_contracts.errors import ConfigError
from radius_contracts.settings import Settings, load_settings

DOCUMENTED = Path(__file__).parents[2] / "config" / "radius-contracts.toml"


def test_documented_config_matches_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RADIUS_CONTRACTS_CONFIG", raising=False)
    assert load_settings(DOCUMENTED) == Settings()


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "rc.toml"
    config.write_text('[api]\nport = 9000\nhost = "127.0.0.2"\n')
    monkeypatch.setenv("RADIUS_CONTRACTS_API__PORT", "9100")
    settings = load_settings(config)
    assert settings.api.port == 9100 and settings.api.host == "127.0.0.2"


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "rc.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n')
    monkeypatch.setenv("RADIUS_CONTRACTS_CONFIG", str(config))
    settings = load_settings()
    assert settings.state_dir == tmp_path
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/radius-contracts.db"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[radius]\nauth_port = 70000\n", "radius.auth_port"),
        ("[radius]\nbind = 'not-an-ip'\n", "radius.bind"),
        ("[api]\nprot = 8080\n", "api.prot"),
        ("[database]\nurl = 'mysql://x'\n", "database.url"),
        ("[logging]\nlevel = 'LOUD'\n", "logging.level"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    config = tmp_path / "rc.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert caught.value.field == key and key in caught.value.detail


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[api\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_database_urls_get_async_drivers() -> None:
    assert (
        load_settings(None, database={"url": "postgresql://u@h/db"}).database_url
        == "postgresql+asyncpg://u@h/db"
    )
    assert (
        load_settings(None, database={"url": "sqlite:////tmp/x.db"}).database_url
        == "sqlite+aiosqlite:////tmp/x.db"
    )
