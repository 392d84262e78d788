import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from aoi.settings import Settings, env_var_names
from cli import app
from tests.helpers import REPO_ROOT


def test_defaults_put_all_state_under_home(settings, aoi_home):
    assert settings.home == aoi_home
    assert settings.catalog_url == f"sqlite:///{aoi_home / 'catalog.db'}"
    for path in (settings.store_dir, settings.quarantine_dir, settings.reports_dir, settings.prefect_home):
        assert aoi_home in path.parents


def test_environment_overrides_nested_values(configure):
    settings = configure(INGEST__MAX_PIXELS=1234, DB_URL="postgresql://u:pa55-zq7@db/aoi")
    assert settings.ingest.max_pixels == 1234
    assert settings.catalog_url == "postgresql://u:pa55-zq7@db/aoi"
    assert "pa55-zq7" not in json.dumps(settings.describe())  # the password; setting names may say "secret"


def test_null_unsets_an_optional_setting(configure):
    settings = configure(MONITORING__NUM_METHOD="null", MONITORING__NUM_THRESHOLD="null", FEAST_ONLINE="null")
    assert settings.monitoring.num_method is None and settings.monitoring.num_threshold is None
    assert settings.feast_online is None and settings.monitoring.cat_method == "jensenshannon"


def test_settings_are_frozen_and_strict(settings, monkeypatch):
    with pytest.raises(ValidationError):
        settings.home = settings.home / "elsewhere"
    monkeypatch.setenv("AOI_INGEST__CROP_SIZE", "0")
    with pytest.raises(ValidationError):
        Settings()


def test_readme_documents_every_setting():
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [name for name in env_var_names() if name not in readme]
    assert not missing, f"README does not document {missing}"


def test_config_command_prints_json(aoi_home):
    result = CliRunner().invoke(app, ["config", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["home"] == str(aoi_home)
    assert data["derived"]["store_dir"].startswith(str(aoi_home))


def test_importing_every_module_has_no_side_effects(tmp_path):
    """Importing our packages must not create AOI_HOME, a database or any file of ours.

    Prefect itself creates PREFECT_HOME when it is imported (a library's behaviour, not ours): the test
    points it at its own folder and ignores that folder.
    """
    root = Path(__file__).resolve().parents[2]
    packages = sorted(p.parent.name for p in root.glob("*/__init__.py") if p.parent.name not in ("tests", "bench"))
    assert {"aoi", "export", "serving", "cli"} <= set(packages)
    home, prefect_home = tmp_path / "home", tmp_path / "prefect"
    code = f"PACKAGES = {packages!r}\n" + textwrap.dedent(
        """
        import importlib, pkgutil, sys
        for name in PACKAGES:
            pkg = importlib.import_module(name)
            for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
                if not mod.name.endswith(".__main__"):  # running a package is no import
                    importlib.import_module(mod.name)
        print("imported", len(sys.modules))
        """
    )
    env = {"AOI_HOME": str(home), "PREFECT_HOME": str(prefect_home), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert not home.exists(), "importing created AOI_HOME"
    written = [p.name for p in tmp_path.iterdir() if p != prefect_home]
    assert written == [], f"importing wrote {written}"


def _secret_settings() -> list[str]:
    """Every setting whose type is (or holds) SecretStr, as AOI_... names: this helper's and any added later."""
    from pydantic import BaseModel, SecretStr

    names = []
    for name, field in Settings.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            names += [
                f"AOI_{name.upper()}__{sub.upper()}"
                for sub, f in field.annotation.model_fields.items()
                if "SecretStr" in str(f.annotation)
            ]
        elif "SecretStr" in str(field.annotation) or field.annotation is SecretStr:
            names.append(f"AOI_{name.upper()}")
    return names


def test_config_masks_every_secret_in_every_output(configure):
    secrets = {
        "AOI_DB_URL": ("postgresql://aoi:db-pa55word@db:5432/aoi", "db-pa55word"),
        "AOI_FEAST_ONLINE": ("rediss://feast:redis-pa%40ss@cache:6380/0", "redis-pa"),
    }
    for n, name in enumerate(_secret_settings()):
        value = f"secret-value-{n}-x9q-" + "k" * 24  # long enough for a key with a minimum length
        secrets[name] = (value, value)
    assert "AOI_API_KEY" in secrets
    configure(**{name.removeprefix("AOI_"): value for name, (value, _) in secrets.items()})
    for argv in (["config", "--json"], ["config"]):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 0, result.output
        leaked = [name for name, (_, secret) in secrets.items() if secret in result.output]
        assert leaked == [], f"`aoi {' '.join(argv)}` printed {leaked}"
    data = json.loads(CliRunner().invoke(app, ["config", "--json"]).stdout)
    assert data["db_url"] == "postgresql://aoi:***@db:5432/aoi"
    assert data["feast_online"] == "rediss://feast:***@cache:6380/0" and data["api_key"] == "***"


def test_mask_password_hides_any_url_password_in_text():
    from aoi.settings import mask_password, mask_secrets

    text = "cannot reach redis://:p@ss@h:6379/0 nor postgresql+psycopg://u:pw@db/aoi; sqlite:////x/catalog.db is fine"
    assert (
        mask_password(text) == "cannot reach redis://:***@h:6379/0 nor postgresql+psycopg://u:***@db/aoi; "
        "sqlite:////x/catalog.db is fine"
    )
    assert mask_secrets({"x": {"ray_token": "abc", "note": "http://a:b@h"}, "n": [1, "amqp://u:v@q"]}) == {
        "x": {"ray_token": "***", "note": "http://a:***@h"},
        "n": [1, "amqp://u:***@q"],
    }


def test_cli_outputs_and_errors_mask_url_passwords(capsys):
    import typer

    from cli.output import emit, fail

    emit({"catalog": "postgresql://u:pw-123@db/aoi", "rows": [("redis://:pw-456@r", 1)]}, True)
    with pytest.raises(typer.Exit):
        fail("cannot reach postgresql://u:pw-789@db/aoi", False)
    out = capsys.readouterr()
    assert "postgresql://u:***@db/aoi" in out.out and "redis://:***@r" in out.out
    assert not any(secret in out.out + out.err for secret in ("pw-123", "pw-456", "pw-789"))
