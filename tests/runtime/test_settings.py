"""Every environment variable is read by `Settings.from_env`, on/off ones by one parser."""
from __future__ import annotations

from pathlib import Path

import pytest

from plugin.config import PROJECT_ROOT, Settings, parse_boolean
from tests.conftest import build_app

SWITCHES = {"INFLOW_PANEL_CACHE": "panel_cache"}
ON = ["1", "true", "TRUE", "yes", "On", " on ", ""]
OFF = ["0", "false", "False", "no", "OFF", " off "]


@pytest.mark.parametrize("name", sorted(SWITCHES))
@pytest.mark.parametrize("value", ON + OFF)
def test_every_switch_reads_the_same_spellings_of_on_and_off(name: str, value: str) -> None:
    assert getattr(Settings.from_env({name: value}), SWITCHES[name]) is (value not in OFF)


@pytest.mark.parametrize("name", sorted(SWITCHES))
def test_a_misspelt_switch_stops_the_start_and_names_the_variable(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: "of"})


def test_config_overrides_are_read_by_the_same_parser() -> None:
    assert parse_boolean(False, True) is False and parse_boolean(0, True) is False
    assert parse_boolean(None, True) is True and parse_boolean("0", True) is False


def test_defaults_are_the_documented_ones() -> None:
    s = Settings.from_env({})
    assert (s.base_url, s.port, s.redis_url, s.app_key, s.purge_after_days) == (
        "http://localhost:8000", 8000, None, "io.inflow.app", 30)
    assert s.database_url == f"sqlite:///{PROJECT_ROOT / 'instance' / 'inflow.db'}"
    assert Settings.from_env({"PORT": "8011"}).base_url == "http://localhost:8011"  # where it listens
    assert s.auth_server_url == "https://oauth-2-authorization-server.services.atlassian.com"
    assert (s.valkey_dir, s.valkey_port) == (PROJECT_ROOT / "instance" / "valkey", None)
    assert (s.index_dir, s.shards) == (PROJECT_ROOT / "instance" / "index", ("0",))
    assert (s.analysis_processes, s.panel_cache) == (None, True)
    assert (s.access_log, s.log_level, s.web_concurrency, s.web_threads) == ("-", "INFO", 2, 16)
    assert s.forwarded_allow_ips == "127.0.0.1,::1"
    assert (s.metrics_token, s.prometheus_multiproc_dir, s.forge_app_id) == (None, None, None)


def test_each_variable_lands_in_its_field(tmp_path: Path) -> None:
    s = Settings.from_env({
        "INFLOW_AUTH_SERVER_URL": "http://127.0.0.1:9/", "INFLOW_VALKEY_DIR": str(tmp_path),
        "INFLOW_VALKEY_PORT": "16400", "INFLOW_ANALYSIS_PROCESSES": "3", "INFLOW_ACCESS_LOG": "",
        "INFLOW_LOG_LEVEL": "debug", "WEB_CONCURRENCY": "5", "INFLOW_WEB_THREADS": "8",
        "FORWARDED_ALLOW_IPS": "*", "INFLOW_METRICS_TOKEN": "t",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"), "INFLOW_SHARDS": "a,b",
    })
    assert s.auth_server_url == "http://127.0.0.1:9"
    assert (s.valkey_dir, s.valkey_port, s.analysis_processes) == (tmp_path, 16400, 3)
    assert (s.access_log, s.log_level) == (None, "DEBUG")
    assert (s.web_concurrency, s.web_threads) == (5, 8)
    assert (s.forwarded_allow_ips, s.metrics_token) == ("*", "t")
    assert (s.prometheus_multiproc_dir, s.shards) == (str(tmp_path / "prom"), ("a", "b"))


def test_a_number_that_is_not_one_names_the_variable() -> None:
    with pytest.raises(ValueError, match="WEB_CONCURRENCY"):
        Settings.from_env({"WEB_CONCURRENCY": "two"})
    # As before: any other value leaves the helper count to the machine.
    assert Settings.from_env({"INFLOW_ANALYSIS_PROCESSES": "many"}).analysis_processes is None


def test_the_app_config_carries_what_connect_and_the_views_read(sqlite_url: str) -> None:
    app = build_app(sqlite_url)
    for key in ("INFLOW_AUTH_SERVER_URL", "INFLOW_PANEL_CACHE",
                "INFLOW_METRICS_TOKEN", "PROMETHEUS_MULTIPROC_DIR"):
        assert key in app.config
    app.extensions["inflow.db"].dispose()


def test_the_web_server_takes_its_settings_from_the_environment(tmp_path: Path) -> None:
    from plugin.runtime import web

    settings = Settings.from_env({"PORT": "8123", "WEB_CONCURRENCY": "3", "INFLOW_WEB_THREADS": "2",
                                  "INFLOW_ACCESS_LOG": "", "INFLOW_LOG_LEVEL": "WARNING"})
    server = web.server(settings, host="127.0.0.1")
    assert (server.bind_addr, server.bind_port, server.workers, server.blocking_threads) == (
        "127.0.0.1", 8123, 3, 2)
    assert (server.log_access, server.log_level.value) == (False, "warning")
    # Idle keep-alive connections outlive a load balancer's 60 s idle timeout (hyper's default 30 s
    # closed them under a balancer that was about to reuse them).
    assert server.http1_settings.header_read_timeout > 60_000
    logs = web.log_config(Settings.from_env({"INFLOW_ACCESS_LOG": str(tmp_path / "access.log")}))
    assert logs["handlers"]["access"]["filename"] == str(tmp_path / "access.log")
    assert web.log_config(settings)["handlers"]["access"]["stream"] == "ext://sys.stderr"
