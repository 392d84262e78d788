"""Ray's token authentication as a driver sets it up, without starting Ray: always on, the cluster's token from
the settings, a fresh one for a local Ray, and a clear refusal to join a cluster without one."""

from __future__ import annotations

import pytest

from training.trainer import RayAuthError, ray_auth_env


@pytest.fixture
def no_ray_env(monkeypatch):
    for name in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)


def test_a_local_ray_gets_token_auth_with_a_fresh_token_each_time(settings, no_ray_env):
    first, second = ray_auth_env(settings, joining=False), ray_auth_env(settings, joining=False)
    assert first["RAY_AUTH_MODE"] == second["RAY_AUTH_MODE"] == "token"
    assert len(first["RAY_AUTH_TOKEN"]) >= 32 and first["RAY_AUTH_TOKEN"] != second["RAY_AUTH_TOKEN"]


def test_joining_a_cluster_needs_its_token(configure, no_ray_env, monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_ADDRESS", "10.1.2.3:6379")
    with pytest.raises(RayAuthError, match="AOI_RAY__AUTH_TOKEN") as refused:
        ray_auth_env(configure(), joining=True)
    assert "10.1.2.3:6379" in str(refused.value)
    settings = configure(RAY__AUTH_TOKEN="the-cluster-token")
    assert ray_auth_env(settings, joining=True) == {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "the-cluster-token"}
    assert "the-cluster-token" not in str(settings.describe())  # a secret: masked in `aoi config`
    # Ray's own variables, set by whoever runs the driver, are used as they are.
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "ray-token"))
    assert ray_auth_env(configure(RAY__AUTH_TOKEN="null"), joining=True) == {"RAY_AUTH_MODE": "token"}
