import json
import subprocess
import sys
import textwrap

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from aoi.cli import app
from aoi.settings import Settings, env_var_names
from tests.conftest import REPO_ROOT


def test_defaults_put_all_state_under_home(settings, aoi_home):
    assert settings.home == aoi_home
    assert settings.catalog_url == f"sqlite:///{aoi_home / 'catalog.db'}"
    for path in (settings.store_dir, settings.quarantine_dir, settings.reports_dir, settings.prefect_home):
        assert aoi_home in path.parents


def test_environment_overrides_nested_values(configure):
    settings = configure(INGEST__MAX_PIXELS=1234, DB_URL="postgresql://u:secret@db/aoi")
    assert settings.ingest.max_pixels == 1234
    assert settings.catalog_url == "postgresql://u:secret@db/aoi"
    assert "secret" not in json.dumps(settings.describe())


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
    home, prefect_home = tmp_path / "home", tmp_path / "prefect"
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import aoi, evaluation, features, flows, serving, training, validation
        for pkg in (aoi, evaluation, features, flows, serving, training, validation):
            for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
                importlib.import_module(mod.name)
        print("imported", len(sys.modules))
        """
    )
    env = {"AOI_HOME": str(home), "PREFECT_HOME": str(prefect_home), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not home.exists(), "importing created AOI_HOME"
    written = [p.name for p in tmp_path.iterdir() if p != prefect_home]
    assert written == [], f"importing wrote {written}"
