"""Configuration: flags > environment > config file > defaults, and the file's safety rules."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from cli.cli_support import Pki, RunningServer, assert_one_error_line
from eventsvc.cli.config import (
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_URL,
    ConfigError,
    ConfigFlags,
    load_config,
)

Run = Callable[..., Result]


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def _ca_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    files = tuple(_write(tmp_path / f"{label}.pem", "x") for label in ("flag", "env", "file"))
    return files[0], files[1], files[2]


def test_defaults_without_any_source(isolated_env: Path) -> None:
    config = load_config(ConfigFlags(), {"HOME": str(isolated_env)})
    assert config.url == DEFAULT_URL
    assert config.timeout == DEFAULT_TIMEOUT_SECONDS
    assert config.ca_file is None
    assert config.token is None


def test_flag_beats_env_beats_file(tmp_path: Path, isolated_env: Path) -> None:
    flag_ca, env_ca, file_ca = _ca_files(tmp_path)
    config_file = _write(
        isolated_env / ".config/eventsvc/config.toml",
        f'url = "https://file.example"\nca_file = "{file_ca}"\ntimeout = 3\ntoken = "file-token"\n',
    )
    environ = {
        "HOME": str(isolated_env),
        "EVENTSVC_URL": "https://env.example",
        "EVENTSVC_CA_FILE": str(env_ca),
        "EVENTSVC_TIMEOUT": "4",
    }
    flags = ConfigFlags(url="https://flag.example", ca_file=flag_ca)
    config = load_config(flags, environ)
    assert (config.url, config.ca_file, config.timeout) == ("https://flag.example", flag_ca, 4.0)
    assert config.token == "file-token"

    config = load_config(ConfigFlags(), environ)
    assert (config.url, config.ca_file) == ("https://env.example", env_ca)

    config = load_config(ConfigFlags(), {"HOME": str(isolated_env)})
    assert (config.url, config.ca_file, config.timeout) == ("https://file.example", file_ca, 3.0)
    assert config_file.exists()


def test_env_token_beats_file_token(isolated_env: Path) -> None:
    _write(isolated_env / ".config/eventsvc/config.toml", 'token = "from-file"\n')
    environ = {"HOME": str(isolated_env), "EVENTSVC_TOKEN": "from-env"}
    assert load_config(ConfigFlags(), environ).token == "from-env"


def test_config_flag_beats_config_env_beats_default_path(
    tmp_path: Path, isolated_env: Path
) -> None:
    _write(isolated_env / ".config/eventsvc/config.toml", 'url = "https://default.example"\n')
    env_file = _write(tmp_path / "env.toml", 'url = "https://envfile.example"\n')
    flag_file = _write(tmp_path / "flag.toml", 'url = "https://flagfile.example"\n')
    environ = {"HOME": str(isolated_env), "EVENTSVC_CONFIG": str(env_file)}
    assert load_config(ConfigFlags(config_file=flag_file), environ).url == (
        "https://flagfile.example"
    )
    assert load_config(ConfigFlags(), environ).url == "https://envfile.example"
    assert load_config(ConfigFlags(), {"HOME": str(isolated_env)}).url == (
        "https://default.example"
    )


def test_relative_paths_in_the_file_are_relative_to_the_file(tmp_path: Path) -> None:
    ca = _write(tmp_path / "conf" / "ca.pem", "x")
    config_file = _write(tmp_path / "conf" / "c.toml", 'ca_file = "ca.pem"\n')
    config = load_config(ConfigFlags(config_file=config_file), {"HOME": str(tmp_path)})
    assert config.ca_file == ca


def test_token_in_a_file_others_can_read_is_refused(tmp_path: Path) -> None:
    config_file = _write(tmp_path / "c.toml", 'token = "abc"\n', mode=0o640)
    with pytest.raises(ConfigError, match=r"holds a token .* \(mode 0640\); run: chmod 600"):
        load_config(ConfigFlags(config_file=config_file), {})


def test_readable_file_without_token_is_fine(tmp_path: Path) -> None:
    config_file = _write(tmp_path / "c.toml", 'url = "https://a.example"\n', mode=0o644)
    assert load_config(ConfigFlags(config_file=config_file), {}).url == "https://a.example"


def test_file_others_can_write_is_refused(tmp_path: Path) -> None:
    config_file = _write(tmp_path / "c.toml", 'url = "https://a.example"\n', mode=0o666)
    with pytest.raises(ConfigError, match="writable by others"):
        load_config(ConfigFlags(config_file=config_file), {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("insecure = true\n", "unknown key"),
        ('timeout = "fast"\n', "timeout must be a number"),
        ("url = 5\n", "url must be a string"),
        ("url = \n", "not valid TOML"),
        ("timeout = 0\n", "must be in"),
        ('url = "ftp://a.example"\n', "must start with https://"),
        ('url = "https://user:pw@a.example"\n', "must not contain credentials"),
        ('ca_file = "missing.pem"\n', "is not a readable file"),
    ],
    # Test ids end up in the JUnit results kept with the evidence: no URL with userinfo there.
    ids=lambda value: value.replace("@", " at ").strip() if isinstance(value, str) else None,
)
def test_bad_config_file_values(tmp_path: Path, text: str, message: str) -> None:
    config_file = _write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError, match=message):
        load_config(ConfigFlags(config_file=config_file), {})


def test_credentials_in_the_url_are_refused_without_echoing_them(run: Run) -> None:
    result = run("list", env={"EVENTSVC_URL": "https://alice:hunter2@api.example"})
    line = assert_one_error_line(result, exit_code=2)
    assert line == "error: url (from EVENTSVC_URL) must not contain credentials"


def test_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(ConfigFlags(), {"EVENTSVC_CONFIG": str(tmp_path / "nope.toml")})


def test_token_never_in_repr(tmp_path: Path) -> None:
    config = load_config(ConfigFlags(), {"HOME": str(tmp_path), "EVENTSVC_TOKEN": "s3cr3t"})
    assert "s3cr3t" not in repr(config)


# --- through the CLI, against a real server --------------------------------------------------


def test_cli_env_beats_config_file(
    run: Run, api: RunningServer, pki: Pki, isolated_env: Path
) -> None:
    _write(
        isolated_env / ".config/eventsvc/config.toml",
        f'url = "https://file.invalid:1"\nca_file = "{pki.ca}"\n',
    )
    result = run("list", env={"EVENTSVC_URL": api.url})
    assert result.exit_code == 0, result.output


def test_cli_flag_beats_env(run: Run, api: RunningServer, pki: Pki) -> None:
    env = {"EVENTSVC_URL": "https://env.invalid:1", "EVENTSVC_CA_FILE": str(pki.ca)}
    assert run("--url", api.url, "list", env=env).exit_code == 0


def test_cli_config_file_with_token_and_0600(
    run: Run, api: RunningServer, pki: Pki, tmp_path: Path
) -> None:
    api.state.token = "file-token"
    config_file = _write(
        tmp_path / "c.toml", f'url = "{api.url}"\nca_file = "{pki.ca}"\ntoken = "file-token"\n'
    )
    assert run("--config", str(config_file), "list").exit_code == 0
    config_file.chmod(0o644)
    line = assert_one_error_line(run("--config", str(config_file), "list"), exit_code=2)
    assert "chmod 600" in line
    assert "file-token" not in line
    assert api.state.received[-1].headers["Authorization"] == "Bearer file-token"
    assert len(api.state.received) == 1


def test_version_does_not_need_a_client_config(run: Run) -> None:
    assert run("--version", env={"EVENTSVC_URL": "ftp://nope"}).exit_code == 0


def test_serve_delegates_to_the_server_module_lazily(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    fake_server = types.ModuleType("eventsvc.server")
    fake_server.main = lambda: calls.append("main")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "eventsvc.server", fake_server)
    result = run("serve", env={"EVENTSVC_URL": "ftp://client-config-is-irrelevant"})
    assert result.exit_code == 0, result.output
    assert calls == ["main"]


def test_serve_without_a_server_module_is_one_line(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "eventsvc.server", None)
    line = assert_one_error_line(run("serve"))
    assert line.startswith("error: cannot load the server: ")
