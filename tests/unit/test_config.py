"""gateway.config.load: defaults, config.toml, GATEWAY_* variables and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ChargerConfig, Config, ConfigError, FramesConfig, env_overrides, load, parse_address

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, "utf-8")
    return path


def config_error(**kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load(**kwargs)
    return str(info.value)


# --- defaults and the shipped file ------------------------------------------------------------


def test_defaults_equal_config():
    assert load(None, env={}) == Config()


def test_defaults_have_the_documented_values():
    config = Config()
    assert config.http == "0.0.0.0:8080"
    assert config.ocpp == "0.0.0.0:9000"
    assert config.charger == ChargerConfig()
    assert config.charger.heartbeat_interval == 60
    assert config.charger.require_subprotocol is False
    assert config.frames == FramesConfig()
    assert config.frames.retention_days == 30.0


def test_repository_config_toml_equals_the_embedded_defaults():
    assert REPO_CONFIG.is_file()
    assert load(REPO_CONFIG, env={}) == Config()


def test_empty_file_gives_defaults(tmp_path):
    assert load(write(tmp_path, ""), env={}) == Config()


def test_file_values_are_used(tmp_path):
    path = write(tmp_path, 'http = "127.0.0.1:8081"\n[charger]\nvalidation = "strict"\n[frames]\nflush_size = 10\n')
    config = load(path, env={})
    assert config.http == "127.0.0.1:8081"
    assert config.charger.validation == "strict"
    assert config.frames.flush_size == 10
    assert config.charger.heartbeat_interval == 60  # untouched keys keep their default


def test_path_may_be_a_string(tmp_path):
    path = write(tmp_path, 'db = "x.db"\n')
    assert load(str(path), env={}).db == "x.db"


# --- environment ------------------------------------------------------------------------------


def test_env_http():
    assert load(None, env={"GATEWAY_HTTP": "127.0.0.1:1234"}).http == "127.0.0.1:1234"


def test_env_heartbeat_interval_is_an_int():
    config = load(None, env={"GATEWAY_CHARGER_HEARTBEAT_INTERVAL": "15"})
    assert config.charger.heartbeat_interval == 15
    assert type(config.charger.heartbeat_interval) is int


@pytest.mark.parametrize("raw, expected", [("yes", True), ("1", True), ("true", True), ("ON", True),
                                           (" True ", True), ("0", False), ("no", False), ("false", False),
                                           ("off", False)])
def test_env_require_subprotocol(raw, expected):
    config = load(None, env={"GATEWAY_CHARGER_REQUIRE_SUBPROTOCOL": raw})
    assert config.charger.require_subprotocol is expected


def test_env_require_subprotocol_no_overrides_a_file_yes(tmp_path):
    path = write(tmp_path, "[charger]\nrequire_subprotocol = true\n")
    assert load(path, env={"GATEWAY_CHARGER_REQUIRE_SUBPROTOCOL": "0"}).charger.require_subprotocol is False


def test_env_retention_days_is_a_float():
    assert load(None, env={"GATEWAY_FRAMES_RETENTION_DAYS": "7.5"}).frames.retention_days == 7.5
    assert load(None, env={"GATEWAY_FRAMES_RETENTION_DAYS": "0"}).frames.retention_days == 0


def test_env_variables_of_other_programs_are_ignored():
    assert load(None, env={"GATEWAY_NOPE": "1", "HTTP": "x", "GATEWAY_CHARGER": "x"}) == Config()


def test_env_overrides_shape():
    assert env_overrides({"GATEWAY_HTTP": "h:1", "GATEWAY_FRAMES_FLUSH_SIZE": "3"}) == {
        "http": "h:1",
        "frames": {"flush_size": 3},
    }
    assert env_overrides({}) == {}


def test_env_none_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("GATEWAY_LOG_LEVEL", "debug")
    assert load(None).log_level == "debug"


# --- precedence: overrides > env > file > defaults --------------------------------------------


def test_overrides_beat_env_which_beats_file(tmp_path):
    path = write(tmp_path, 'http = "127.0.0.1:1"\nocpp = "127.0.0.1:2"\n[charger]\nheartbeat_interval = 10\n'
                           'validation = "strict"\n')
    env = {"GATEWAY_HTTP": "127.0.0.1:3", "GATEWAY_CHARGER_HEARTBEAT_INTERVAL": "20"}

    from_file_and_env = load(path, env=env)
    assert from_file_and_env.http == "127.0.0.1:3"  # env beats file
    assert from_file_and_env.ocpp == "127.0.0.1:2"  # file beats default
    assert from_file_and_env.charger.heartbeat_interval == 20
    assert from_file_and_env.charger.validation == "strict"  # a nested env key keeps the file's siblings

    everything = load(path, env=env, overrides={"http": "127.0.0.1:4", "charger": {"heartbeat_interval": 30}})
    assert everything.http == "127.0.0.1:4"
    assert everything.charger.heartbeat_interval == 30
    assert everything.charger.validation == "strict"
    assert everything.ocpp == "127.0.0.1:2"


def test_none_overrides_are_ignored(tmp_path):
    path = write(tmp_path, 'db = "from-file.db"\n')
    assert load(path, env={}, overrides={"db": None, "http": None}).db == "from-file.db"


# --- bad values -------------------------------------------------------------------------------


def test_bad_address():
    message = config_error(env={"GATEWAY_HTTP": "nope"})
    assert "http" in message
    assert "'nope'" in message
    assert "HOST:PORT" in message


def test_port_out_of_range():
    assert "ocpp" in config_error(env={}, overrides={"ocpp": "127.0.0.1:65536"})


def test_bad_enum_value():
    message = config_error(env={"GATEWAY_CHARGER_VALIDATION": "paranoid"})
    assert "validation" in message
    assert "lenient" in message and "strict" in message
    assert "'paranoid'" in message


def test_bad_log_level_in_a_file(tmp_path):
    message = config_error(path=write(tmp_path, 'log_level = "loud"\n'), env={})
    assert "log_level" in message
    assert "'loud'" in message


def test_non_number_in_env():
    message = config_error(env={"GATEWAY_CHARGER_HEARTBEAT_INTERVAL": "often"})
    assert "GATEWAY_CHARGER_HEARTBEAT_INTERVAL" in message
    assert "'often'" in message
    assert "number" in message


def test_non_number_in_a_file(tmp_path):
    message = config_error(path=write(tmp_path, '[charger]\nheartbeat_interval = "often"\n'), env={})
    assert "heartbeat_interval" in message


def test_non_boolean_in_env():
    message = config_error(env={"GATEWAY_CHARGER_REQUIRE_SUBPROTOCOL": "maybe"})
    assert "GATEWAY_CHARGER_REQUIRE_SUBPROTOCOL" in message
    assert "boolean" in message


@pytest.mark.parametrize("value", ["0", "-5"])
def test_heartbeat_interval_must_be_positive(value):
    message = config_error(env={"GATEWAY_CHARGER_HEARTBEAT_INTERVAL": value})
    assert "heartbeat_interval" in message
    assert "greater than 0" in message


def test_negative_retention_is_refused():
    assert "retention_days" in config_error(env={"GATEWAY_FRAMES_RETENTION_DAYS": "-1"})


def test_unknown_key_in_a_file(tmp_path):
    message = config_error(path=write(tmp_path, 'htpp = "127.0.0.1:1"\n'), env={})
    assert "htpp" in message


def test_unknown_nested_key_in_a_file(tmp_path):
    message = config_error(path=write(tmp_path, "[charger]\nheartbeat = 10\n"), env={})
    assert "heartbeat" in message
    assert "charger" in message


def test_missing_file(tmp_path):
    missing = tmp_path / "nowhere.toml"
    message = config_error(path=missing, env={})
    assert str(missing) in message
    assert "does not exist" in message


def test_broken_toml(tmp_path):
    path = write(tmp_path, 'http = "127.0.0.1:1\n[charger\n')
    message = config_error(path=path, env={})
    assert str(path) in message


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("value", ['"false"', '"no"', "0", "1"])
def test_non_boolean_in_a_file_is_refused_not_coerced(tmp_path, value):
    # bool("false") is True: a string must not silently switch the option on.
    message = config_error(path=write(tmp_path, f"[charger]\nrequire_subprotocol = {value}\n"), env={})
    assert "require_subprotocol" in message


@pytest.mark.parametrize("value", ["60.7", "true", '"60"'])
def test_non_integer_heartbeat_interval_in_a_file_is_refused_not_coerced(tmp_path, value):
    # int(60.7) is 60 and int(True) is 1: neither may pass silently.
    message = config_error(path=write(tmp_path, f"[charger]\nheartbeat_interval = {value}\n"), env={})
    assert "heartbeat_interval" in message


def test_integer_is_accepted_for_a_float_setting(tmp_path):
    config = load(write(tmp_path, "[charger]\ncall_timeout = 5\n[frames]\nretention_days = 7\n"), env={})
    assert config.charger.call_timeout == 5.0
    assert type(config.charger.call_timeout) is float
    assert config.frames.retention_days == 7.0


def test_number_is_refused_for_a_string_setting(tmp_path):
    assert "log_level" in config_error(path=write(tmp_path, "log_level = 3\n"), env={})


# --- parse_address ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0.0.0.0:9000", ("0.0.0.0", 9000)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("localhost:65535", ("localhost", 65535)),
        ("[::1]:9000", ("::1", 9000)),
        ("[::]:8080", ("::", 8080)),
    ],
)
def test_parse_address(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["9000", ":9000", "host:", "host:abc", "host:65536", "host:-1", "[::1]", ""])
def test_parse_address_refuses(text):
    with pytest.raises(ConfigError) as info:
        parse_address(text)
    assert "HOST:PORT" in str(info.value)


def test_idle_limit():
    charger = ChargerConfig(heartbeat_interval=60, idle_heartbeats=2.0, ping_interval=30.0)
    assert charger.idle_limit == 150.0
